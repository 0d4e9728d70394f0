//! A TFTP client (RFC 1350 read requests, with the option extension of
//! RFC 2347 for `blksize` (RFC 2348) and `tsize` (RFC 2349)), as a
//! machine's PXE firmware uses to fetch its bootloader, configs, kernel and
//! ramdisk.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

const OP_RRQ: u16 = 1;
const OP_DATA: u16 = 3;
const OP_ACK: u16 = 4;
const OP_ERROR: u16 = 5;
const OP_OACK: u16 = 6;
const DEFAULT_BLKSIZE: usize = 512;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TftpError {
    /// The server answered with an ERROR packet (code 1 is "file not found").
    #[error("TFTP server {server} refused {filename}: error {code}: {message}")]
    Server {
        server: SocketAddr,
        filename: String,
        code: u16,
        message: String,
    },
    #[error("TFTP transfer of {filename} from {server} timed out after {attempts} attempts")]
    Timeout {
        server: SocketAddr,
        filename: String,
        attempts: u32,
    },
    #[error("TFTP transfer of {filename} from {server}: {message}")]
    Protocol {
        server: SocketAddr,
        filename: String,
        message: String,
    },
    #[error("TFTP transfer of {filename} from {server}: {message}")]
    Io {
        server: SocketAddr,
        filename: String,
        message: String,
    },
}

impl TftpError {
    /// Whether the server said the file does not exist (error code 1).
    pub fn is_not_found(&self) -> bool {
        matches!(self, TftpError::Server { code: 1, .. })
    }
}

/// Client settings; the defaults suit a local network.
#[derive(Debug, Clone)]
pub struct TftpClient {
    /// How long to wait for each packet before retransmitting.
    pub timeout: Duration,
    /// Retransmissions of one packet before giving up.
    pub retries: u32,
    /// Block size asked for (RFC 2348: 8..=65464); the server may lower it
    /// or ignore options altogether (then 512).
    pub blksize: u16,
    /// Largest file accepted, bytes.
    pub max_size: u64,
}

impl Default for TftpClient {
    fn default() -> TftpClient {
        TftpClient {
            timeout: Duration::from_secs(1),
            retries: 5,
            blksize: 1468,
            max_size: 4 << 30,
        }
    }
}

fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?]))
}

/// NUL-terminated strings of `buf`.
fn strings(buf: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = buf
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    // The final NUL leaves an empty trailing piece.
    if buf.last() == Some(&0) {
        out.pop();
    }
    out
}

fn error_packet(code: u16, message: &str) -> Vec<u8> {
    let mut pkt = Vec::with_capacity(5 + message.len());
    pkt.extend_from_slice(&OP_ERROR.to_be_bytes());
    pkt.extend_from_slice(&code.to_be_bytes());
    pkt.extend_from_slice(message.as_bytes());
    pkt.push(0);
    pkt
}

fn ack_packet(block: u16) -> Vec<u8> {
    let mut pkt = OP_ACK.to_be_bytes().to_vec();
    pkt.extend_from_slice(&block.to_be_bytes());
    pkt
}

impl TftpClient {
    /// Reads `filename` from the server at `server` (octet mode).
    pub async fn get(&self, server: SocketAddr, filename: &str) -> Result<Vec<u8>, TftpError> {
        let io = |message: String| TftpError::Io {
            server,
            filename: filename.to_string(),
            message,
        };
        let protocol = |message: String| TftpError::Protocol {
            server,
            filename: filename.to_string(),
            message,
        };
        if filename.is_empty() || filename.contains('\0') {
            return Err(protocol("invalid file name".into()));
        }
        let local: SocketAddr = if server.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local)
            .await
            .map_err(|e| io(format!("cannot bind a UDP socket: {e}")))?;

        let blksize = self.blksize.clamp(8, 65464);
        let mut rrq = OP_RRQ.to_be_bytes().to_vec();
        for part in [
            filename,
            "octet",
            "blksize",
            &blksize.to_string(),
            "tsize",
            "0",
        ] {
            rrq.extend_from_slice(part.as_bytes());
            rrq.push(0);
        }

        // The server answers from a new port (its transfer ID); until then
        // retransmissions go to the well-known port.
        let mut peer: Option<SocketAddr> = None;
        let mut last_sent = rrq;
        let mut block_size = DEFAULT_BLKSIZE;
        let mut expected_size: Option<u64> = None;
        let mut expected_block: u16 = 1;
        let mut data: Vec<u8> = Vec::new();
        let mut attempts: u32 = 0;
        let mut buf = vec![0u8; 65536];

        socket
            .send_to(&last_sent, server)
            .await
            .map_err(|e| io(format!("send failed: {e}")))?;
        loop {
            let received = tokio::time::timeout(self.timeout, socket.recv_from(&mut buf)).await;
            let (len, from) = match received {
                Err(_elapsed) => {
                    attempts += 1;
                    if attempts > self.retries {
                        return Err(TftpError::Timeout {
                            server,
                            filename: filename.to_string(),
                            attempts,
                        });
                    }
                    socket
                        .send_to(&last_sent, peer.unwrap_or(server))
                        .await
                        .map_err(|e| io(format!("send failed: {e}")))?;
                    continue;
                }
                Ok(Err(e)) => {
                    // ICMP port unreachable surfaces here on some systems:
                    // treat it like a lost packet.
                    tracing::debug!(error = %e, "TFTP receive error");
                    attempts += 1;
                    if attempts > self.retries {
                        return Err(io(format!("receive failed: {e}")));
                    }
                    tokio::time::sleep(self.timeout).await;
                    socket
                        .send_to(&last_sent, peer.unwrap_or(server))
                        .await
                        .map_err(|e| io(format!("send failed: {e}")))?;
                    continue;
                }
                Ok(Ok(got)) => got,
            };
            let pkt = &buf[..len];
            match peer {
                None if from.ip() == server.ip() || server.ip().is_unspecified() => {
                    peer = Some(from);
                }
                None => continue,
                Some(p) if p != from => {
                    // RFC 1350: a packet from another transfer ID gets an
                    // error, and the transfer goes on.
                    let _ = socket
                        .send_to(&error_packet(5, "Unknown transfer ID"), from)
                        .await;
                    continue;
                }
                Some(_) => {}
            }
            let Some(opcode) = u16_at(pkt, 0) else {
                continue;
            };
            match opcode {
                OP_ERROR => {
                    let code = u16_at(pkt, 2).unwrap_or(0);
                    let message = strings(pkt.get(4..).unwrap_or_default())
                        .into_iter()
                        .next()
                        .unwrap_or_default();
                    return Err(TftpError::Server {
                        server,
                        filename: filename.to_string(),
                        code,
                        message,
                    });
                }
                OP_OACK if expected_block == 1 && data.is_empty() => {
                    let fields = strings(&pkt[2..]);
                    let mut pairs = fields.chunks(2);
                    for pair in &mut pairs {
                        let [name, value] = pair else {
                            break;
                        };
                        match name.to_ascii_lowercase().as_str() {
                            "blksize" => match value.parse::<usize>() {
                                Ok(v) if (8..=usize::from(blksize)).contains(&v) => block_size = v,
                                _ => {
                                    let _ =
                                        socket.send_to(&error_packet(8, "bad blksize"), from).await;
                                    return Err(protocol(format!(
                                        "server offered an invalid blksize {value:?}"
                                    )));
                                }
                            },
                            "tsize" => {
                                let size = value.parse::<u64>().map_err(|_| {
                                    protocol(format!("server sent an invalid tsize {value:?}"))
                                })?;
                                if size > self.max_size {
                                    let _ = socket
                                        .send_to(&error_packet(3, "file too large"), from)
                                        .await;
                                    return Err(protocol(format!(
                                        "file is {size} bytes, more than the {} allowed",
                                        self.max_size
                                    )));
                                }
                                expected_size = Some(size);
                            }
                            _ => {}
                        }
                    }
                    last_sent = ack_packet(0);
                    attempts = 0;
                    socket
                        .send_to(&last_sent, from)
                        .await
                        .map_err(|e| io(format!("send failed: {e}")))?;
                }
                OP_DATA => {
                    let Some(block) = u16_at(pkt, 2) else {
                        continue;
                    };
                    let payload = &pkt[4..];
                    if block == expected_block {
                        if payload.len() > block_size {
                            let _ = socket
                                .send_to(&error_packet(4, "block too large"), from)
                                .await;
                            return Err(protocol(format!(
                                "block {block} has {} bytes, more than the block size {block_size}",
                                payload.len()
                            )));
                        }
                        data.extend_from_slice(payload);
                        if data.len() as u64 > self.max_size {
                            let _ = socket
                                .send_to(&error_packet(3, "file too large"), from)
                                .await;
                            return Err(protocol(format!(
                                "file exceeds the {} bytes allowed",
                                self.max_size
                            )));
                        }
                        last_sent = ack_packet(block);
                        attempts = 0;
                        socket
                            .send_to(&last_sent, from)
                            .await
                            .map_err(|e| io(format!("send failed: {e}")))?;
                        if payload.len() < block_size {
                            if let Some(size) = expected_size {
                                if size != data.len() as u64 {
                                    return Err(protocol(format!(
                                        "server announced {size} bytes but sent {}",
                                        data.len()
                                    )));
                                }
                            }
                            return Ok(data);
                        }
                        expected_block = expected_block.wrapping_add(1);
                    } else if block == expected_block.wrapping_sub(1) {
                        // Our ACK was lost: acknowledge again.
                        let _ = socket.send_to(&ack_packet(block), from).await;
                    }
                }
                _ => {}
            }
        }
    }
}
