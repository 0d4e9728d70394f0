//! A read-only TFTP server (RFC 1350) with option negotiation (RFC 2347)
//! of `blksize` (RFC 2348), `tsize` and `timeout` (RFC 2349), serving the
//! files under one root. Each transfer runs on its own socket and task;
//! unacknowledged blocks are sent again on timeout. Paths that leave the
//! root (`..`, symlinks pointing outside) are refused.
//!
//! Every input is bounded: at most `max_transfers` transfers run at once
//! (`max_transfers_per_client` per client address), requests beyond that
//! are dropped without an answer (no socket, no task, nothing reflected);
//! a client's `blksize` and `timeout` are capped, and each packet is sent
//! at most `retries + 1` times.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::UdpSocket;

const OP_RRQ: u16 = 1;
const OP_WRQ: u16 = 2;
const OP_DATA: u16 = 3;
const OP_ACK: u16 = 4;
const OP_ERROR: u16 = 5;
const OP_OACK: u16 = 6;

const ERR_NOT_DEFINED: u16 = 0;
const ERR_NOT_FOUND: u16 = 1;
const ERR_ACCESS: u16 = 2;
const ERR_ILLEGAL: u16 = 4;

const DEFAULT_BLKSIZE: usize = 512;
/// The largest block size RFC 2348 allows.
pub const MAX_BLKSIZE: usize = 65464;
const MIN_BLKSIZE: usize = 8;

/// Tunables of the server.
#[derive(Debug, Clone)]
pub struct TftpOptions {
    /// Timeout before a block is sent again, unless the client asks for
    /// another (`timeout` option).
    pub timeout: Duration,
    /// How many times one block is sent again before the transfer is
    /// abandoned.
    pub retries: u32,
    /// Transfers running at once; requests beyond are dropped.
    pub max_transfers: usize,
    /// Transfers running at once for one client address.
    pub max_transfers_per_client: usize,
    /// The largest block size granted (a client asking for more gets this).
    pub max_blksize: usize,
    /// The longest retransmission timeout a client may ask for; a larger
    /// `timeout` option is not acknowledged and `timeout` applies.
    pub max_timeout: Duration,
}

impl Default for TftpOptions {
    fn default() -> TftpOptions {
        TftpOptions {
            timeout: Duration::from_secs(2),
            retries: 5,
            max_transfers: 64,
            max_transfers_per_client: 8,
            // One Ethernet frame (1500 bytes MTU less the IP/UDP/TFTP headers).
            max_blksize: 1468,
            max_timeout: Duration::from_secs(10),
        }
    }
}

/// The transfers in flight, in total and per client address.
#[derive(Default)]
struct Slots {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// A transfer's claim on one slot, given back when dropped.
struct Slot {
    slots: Arc<Mutex<Slots>>,
    client: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.total = slots.total.saturating_sub(1);
            if let Some(count) = slots.per_client.get_mut(&self.client) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    slots.per_client.remove(&self.client);
                }
            }
        }
    }
}

/// A slot for a transfer to `client`, unless the caps are reached.
fn claim(slots: &Arc<Mutex<Slots>>, client: IpAddr, options: &TftpOptions) -> Option<Slot> {
    let mut guard = slots.lock().ok()?;
    let of_client = guard.per_client.get(&client).copied().unwrap_or(0);
    if guard.total >= options.max_transfers || of_client >= options.max_transfers_per_client {
        return None;
    }
    guard.total += 1;
    guard.per_client.insert(client, of_client + 1);
    Some(Slot {
        slots: slots.clone(),
        client,
    })
}

/// A parsed read request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    pub filename: String,
    pub mode: String,
    /// Options in the order the client sent them, names lower-cased.
    pub options: Vec<(String, String)>,
}

/// Why a request packet was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketError {
    pub code: u16,
    pub message: String,
}

fn split_strings(bytes: &[u8]) -> Vec<String> {
    let mut parts: Vec<String> = bytes
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).to_string())
        .collect();
    // The packet ends with a NUL, which leaves one empty tail.
    if parts.last().is_some_and(String::is_empty) {
        parts.pop();
    }
    parts
}

/// Parses a request packet (RRQ; WRQ and others are refused).
pub fn parse_request(packet: &[u8]) -> Result<ReadRequest, PacketError> {
    if packet.len() < 4 {
        return Err(PacketError {
            code: ERR_ILLEGAL,
            message: "Malformed packet".into(),
        });
    }
    let opcode = u16::from_be_bytes([packet[0], packet[1]]);
    match opcode {
        OP_RRQ => {}
        OP_WRQ => {
            return Err(PacketError {
                code: ERR_ACCESS,
                message: "This server is read-only".into(),
            })
        }
        _ => {
            return Err(PacketError {
                code: ERR_ILLEGAL,
                message: "Illegal TFTP operation".into(),
            })
        }
    }
    let parts = split_strings(&packet[2..]);
    if parts.len() < 2 || parts[0].is_empty() {
        return Err(PacketError {
            code: ERR_ILLEGAL,
            message: "Malformed read request".into(),
        });
    }
    let mode = parts[1].to_ascii_lowercase();
    if !matches!(mode.as_str(), "octet" | "netascii") {
        return Err(PacketError {
            code: ERR_ILLEGAL,
            message: format!("Unsupported transfer mode {mode}"),
        });
    }
    let options = parts[2..]
        .chunks(2)
        .filter(|pair| pair.len() == 2)
        .map(|pair| (pair[0].to_ascii_lowercase(), pair[1].clone()))
        .collect();
    Ok(ReadRequest {
        filename: parts[0].clone(),
        mode,
        options,
    })
}

/// Maps a requested name to a file under `root`, refusing anything that
/// leaves it. A name that starts with the root's own absolute path (what
/// clients told the root prefix by DHCP option 210 send) is accepted.
pub fn resolve(root: &Path, filename: &str) -> Result<PathBuf, PacketError> {
    let denied = || PacketError {
        code: ERR_ACCESS,
        message: "Access violation".into(),
    };
    let not_found = || PacketError {
        code: ERR_NOT_FOUND,
        message: "File not found".into(),
    };
    let name = filename.replace('\\', "/");
    let root_text = root.display().to_string();
    let relative = name
        .strip_prefix(root_text.trim_end_matches('/'))
        .filter(|rest| rest.starts_with('/'))
        .unwrap_or(&name)
        .trim_start_matches('/')
        .to_string();
    if relative.is_empty() || name.contains('\0') {
        return Err(not_found());
    }
    let mut path = root.to_path_buf();
    for component in Path::new(&relative).components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir => {}
            _ => return Err(denied()),
        }
    }
    let canonical_root = root.canonicalize().map_err(|_| not_found())?;
    let canonical = path.canonicalize().map_err(|_| not_found())?;
    if !canonical.starts_with(&canonical_root) {
        return Err(denied());
    }
    if !canonical.is_file() {
        return Err(not_found());
    }
    Ok(canonical)
}

fn error_packet(code: u16, message: &str) -> Vec<u8> {
    let mut packet = Vec::with_capacity(5 + message.len());
    packet.extend_from_slice(&OP_ERROR.to_be_bytes());
    packet.extend_from_slice(&code.to_be_bytes());
    packet.extend_from_slice(message.as_bytes());
    packet.push(0);
    packet
}

/// A running server.
pub struct TftpServer {
    pub local_addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TftpServer {
    /// Stops accepting requests (transfers in flight finish on their own).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for TftpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `bind` and serves `root`.
pub async fn start(bind: &str, root: PathBuf, options: TftpOptions) -> std::io::Result<TftpServer> {
    let socket = UdpSocket::bind(bind).await?;
    Ok(serve(socket, root, options))
}

/// Serves `root` on an already bound socket.
pub fn serve(socket: UdpSocket, root: PathBuf, options: TftpOptions) -> TftpServer {
    let local_addr = socket
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let root = Arc::new(root);
    let options = Arc::new(options);
    let slots = Arc::new(Mutex::new(Slots::default()));
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            let (len, peer) = match socket.recv_from(&mut buf).await {
                Ok(got) => got,
                Err(err) => {
                    tracing::warn!(error = %err, "tftp receive failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Malformed requests are answered from the server's own socket:
            // no transfer, no new socket.
            let request = match parse_request(&buf[..len]) {
                Ok(request) => request,
                Err(err) => {
                    let _ = socket
                        .send_to(&error_packet(err.code, &err.message), peer)
                        .await;
                    continue;
                }
            };
            let Some(slot) = claim(&slots, peer.ip(), &options) else {
                tracing::debug!(%peer, "tftp request dropped: too many transfers in flight");
                continue;
            };
            let root = root.clone();
            let options = options.clone();
            let ip = local_addr.ip();
            tokio::spawn(async move {
                let _slot = slot;
                if let Err(err) = transfer(ip, peer, request, &root, &options).await {
                    tracing::debug!(%peer, error = %err, "tftp transfer ended");
                }
            });
        }
    });
    TftpServer { local_addr, task }
}

/// What the server accepted of the client's options.
struct Negotiated {
    blksize: usize,
    timeout: Duration,
    /// Options to acknowledge, in the client's order.
    ack: Vec<(String, String)>,
}

fn negotiate(request: &ReadRequest, size: u64, defaults: &TftpOptions) -> Negotiated {
    let mut result = Negotiated {
        blksize: DEFAULT_BLKSIZE,
        timeout: defaults.timeout,
        ack: Vec::new(),
    };
    for (name, value) in &request.options {
        match name.as_str() {
            "blksize" => {
                if let Ok(asked) = value.parse::<usize>() {
                    if asked >= MIN_BLKSIZE {
                        let size = asked
                            .min(MAX_BLKSIZE)
                            .min(defaults.max_blksize.max(MIN_BLKSIZE));
                        result.blksize = size;
                        result.ack.push((name.clone(), size.to_string()));
                    }
                }
            }
            "tsize" => result.ack.push((name.clone(), size.to_string())),
            "timeout" => {
                if let Ok(secs) = value.parse::<u64>() {
                    let cap = defaults.max_timeout.as_secs().clamp(1, 255);
                    // RFC 2349 has the server acknowledge the client's value
                    // or ignore the option: beyond the cap it is ignored.
                    if (1..=cap).contains(&secs) {
                        result.timeout = Duration::from_secs(secs);
                        result.ack.push((name.clone(), secs.to_string()));
                    }
                }
            }
            _ => {}
        }
    }
    result
}

async fn transfer(
    ip: IpAddr,
    peer: SocketAddr,
    request: ReadRequest,
    root: &Path,
    defaults: &TftpOptions,
) -> std::io::Result<()> {
    // Each transfer gets its own port (the transfer identifier).
    let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
    socket.connect(peer).await?;
    let path = match resolve(root, &request.filename) {
        Ok(path) => path,
        Err(err) => {
            tracing::info!(%peer, file = %request.filename, error = %err.message, "tftp request refused");
            socket.send(&error_packet(err.code, &err.message)).await?;
            return Ok(());
        }
    };
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(_) => {
            socket
                .send(&error_packet(ERR_NOT_FOUND, "File not found"))
                .await?;
            return Ok(());
        }
    };
    let size = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let negotiated = negotiate(&request, size, defaults);
    let mut recv_buf = vec![0u8; 1024];
    if !negotiated.ack.is_empty() {
        let mut oack = OP_OACK.to_be_bytes().to_vec();
        for (name, value) in &negotiated.ack {
            oack.extend_from_slice(name.as_bytes());
            oack.push(0);
            oack.extend_from_slice(value.as_bytes());
            oack.push(0);
        }
        if !send_and_wait(&socket, &oack, 0, &negotiated, defaults, &mut recv_buf).await? {
            return Ok(());
        }
    }
    let mut block: u16 = 1;
    let mut data = vec![0u8; negotiated.blksize];
    loop {
        let filled = read_full(&mut file, &mut data).await?;
        let mut packet = Vec::with_capacity(4 + filled);
        packet.extend_from_slice(&OP_DATA.to_be_bytes());
        packet.extend_from_slice(&block.to_be_bytes());
        packet.extend_from_slice(&data[..filled]);
        if !send_and_wait(
            &socket,
            &packet,
            block,
            &negotiated,
            defaults,
            &mut recv_buf,
        )
        .await?
        {
            return Ok(());
        }
        if filled < negotiated.blksize {
            return Ok(());
        }
        // Block numbers roll over for files beyond 65535 blocks.
        block = block.wrapping_add(1);
    }
}

async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Sends `packet` until the client acknowledges `block`; `false` when the
/// client gave up (error packet) or never answered.
async fn send_and_wait(
    socket: &UdpSocket,
    packet: &[u8],
    block: u16,
    negotiated: &Negotiated,
    defaults: &TftpOptions,
    buf: &mut [u8],
) -> std::io::Result<bool> {
    for _attempt in 0..=defaults.retries {
        socket.send(packet).await?;
        let deadline = tokio::time::Instant::now() + negotiated.timeout;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            if remaining.is_zero() {
                break;
            }
            let len = match tokio::time::timeout(remaining, socket.recv(buf)).await {
                Err(_) => break,
                Ok(Err(err)) => return Err(err),
                Ok(Ok(len)) => len,
            };
            if len < 4 {
                continue;
            }
            let opcode = u16::from_be_bytes([buf[0], buf[1]]);
            let number = u16::from_be_bytes([buf[2], buf[3]]);
            match opcode {
                OP_ACK if number == block => return Ok(true),
                // A duplicate ACK of an earlier block: keep waiting.
                OP_ACK => continue,
                OP_ERROR => return Ok(false),
                _ => {
                    let _ = socket
                        .send(&error_packet(ERR_ILLEGAL, "Illegal TFTP operation"))
                        .await;
                    return Ok(false);
                }
            }
        }
    }
    let _ = socket
        .send(&error_packet(ERR_NOT_DEFINED, "Transfer timed out"))
        .await;
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rrq(parts: &[&str]) -> Vec<u8> {
        let mut packet = OP_RRQ.to_be_bytes().to_vec();
        for part in parts {
            packet.extend_from_slice(part.as_bytes());
            packet.push(0);
        }
        packet
    }

    #[test]
    fn parses_options_and_refuses_writes() {
        let request =
            parse_request(&rrq(&["a/b", "OCTET", "BLKSIZE", "1468", "tsize", "0"])).expect("valid");
        assert_eq!(request.filename, "a/b");
        assert_eq!(request.mode, "octet");
        assert_eq!(
            request.options,
            vec![
                ("blksize".to_string(), "1468".to_string()),
                ("tsize".to_string(), "0".to_string())
            ]
        );
        let mut wrq = rrq(&["x", "octet"]);
        wrq[1] = 2;
        assert_eq!(parse_request(&wrq).map_err(|e| e.code), Err(ERR_ACCESS));
        assert_eq!(
            parse_request(&rrq(&["x", "mail"])).map_err(|e| e.code),
            Err(ERR_ILLEGAL)
        );
    }

    #[test]
    fn negotiation_clamps_and_ignores_unknown() {
        let request = ReadRequest {
            filename: "f".into(),
            mode: "octet".into(),
            options: vec![
                ("blksize".into(), "100000".into()),
                ("foo".into(), "1".into()),
                ("timeout".into(), "0".into()),
                ("tsize".into(), "0".into()),
            ],
        };
        let open = TftpOptions {
            max_blksize: MAX_BLKSIZE,
            ..TftpOptions::default()
        };
        let n = negotiate(&request, 1234, &open);
        assert_eq!(n.blksize, MAX_BLKSIZE);
        assert_eq!(
            n.ack,
            vec![
                ("blksize".to_string(), MAX_BLKSIZE.to_string()),
                ("tsize".to_string(), "1234".to_string())
            ]
        );
        // The defaults cap the block size and the client's timeout.
        let request = ReadRequest {
            filename: "f".into(),
            mode: "octet".into(),
            options: vec![
                ("blksize".into(), "65464".into()),
                ("timeout".into(), "255".into()),
            ],
        };
        let n = negotiate(&request, 1, &TftpOptions::default());
        assert_eq!(n.blksize, 1468);
        assert_eq!(n.timeout, TftpOptions::default().timeout);
        assert_eq!(n.ack, vec![("blksize".to_string(), "1468".to_string())]);
    }

    #[test]
    fn slots_cap_total_and_per_client() {
        let options = TftpOptions {
            max_transfers: 3,
            max_transfers_per_client: 2,
            ..TftpOptions::default()
        };
        let slots = Arc::new(Mutex::new(Slots::default()));
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let first = claim(&slots, a, &options).expect("slot");
        let _second = claim(&slots, a, &options).expect("slot");
        assert!(claim(&slots, a, &options).is_none(), "per client");
        let _third = claim(&slots, b, &options).expect("slot");
        assert!(claim(&slots, b, &options).is_none(), "total");
        drop(first);
        assert!(claim(&slots, a, &options).is_some(), "given back");
    }

    #[test]
    fn resolve_refuses_escapes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("sub/file"), b"x").expect("write");
        std::fs::write(dir.path().join("secret"), b"s").expect("write");
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("evil")).expect("link");
        assert!(resolve(&root, "sub/file").is_ok());
        assert!(resolve(&root, "/sub/file").is_ok());
        let absolute = format!("{}/sub/file", root.display());
        assert!(resolve(&root, &absolute).is_ok());
        assert_eq!(
            resolve(&root, "../secret").map_err(|e| e.code),
            Err(ERR_ACCESS)
        );
        assert_eq!(
            resolve(&root, "sub/../../secret").map_err(|e| e.code),
            Err(ERR_ACCESS)
        );
        assert_eq!(resolve(&root, "evil").map_err(|e| e.code), Err(ERR_ACCESS));
        assert_eq!(
            resolve(&root, "missing").map_err(|e| e.code),
            Err(ERR_NOT_FOUND)
        );
        assert_eq!(
            resolve(&root, "sub").map_err(|e| e.code),
            Err(ERR_NOT_FOUND)
        );
    }
}
