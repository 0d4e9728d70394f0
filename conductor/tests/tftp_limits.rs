//! The TFTP server's bounds: a flood of read requests cannot take more
//! than the transfer caps' worth of descriptors, one client cannot take
//! every slot, and a client's options are clamped.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use ferrite_conductor::tftp;
use tokio::net::UdpSocket;

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|entries| entries.count())
        .unwrap_or(0)
}

fn rrq(parts: &[&str]) -> Vec<u8> {
    let mut packet = 1u16.to_be_bytes().to_vec();
    for part in parts {
        packet.extend_from_slice(part.as_bytes());
        packet.push(0);
    }
    packet
}

/// Transfers stay open (long timeout, no retries) so that what the server
/// holds can be counted.
async fn server(root: &Path) -> tftp::TftpServer {
    tftp::start(
        "127.0.0.1:0",
        root.to_path_buf(),
        tftp::TftpOptions {
            timeout: Duration::from_secs(30),
            retries: 0,
            ..tftp::TftpOptions::default()
        },
    )
    .await
    .expect("tftp server")
}

/// Sends one RRQ from each socket; how many got a first packet back.
async fn flood(clients: Vec<UdpSocket>, server: SocketAddr, packet: Vec<u8>) -> usize {
    let mut waits = tokio::task::JoinSet::new();
    for client in clients {
        client.send_to(&packet, server).await.expect("send");
        waits.spawn(async move {
            let mut buf = vec![0u8; 70_000];
            let answered =
                tokio::time::timeout(Duration::from_secs(2), client.recv_from(&mut buf)).await;
            // Keep the socket (and so its descriptor) until counted.
            (matches!(answered, Ok(Ok(_))), client)
        });
    }
    let mut answered = 0;
    let mut keep = Vec::new();
    while let Some(joined) = waits.join_next().await {
        let (got, client) = joined.expect("join");
        answered += usize::from(got);
        keep.push(client);
    }
    answered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_read_requests_stays_under_the_transfer_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("f"), vec![7u8; 10_000]).expect("write");
    let server = server(dir.path()).await;
    let cap = tftp::TftpOptions::default().max_transfers;
    // 320 requests from 40 addresses, under the per-client cap each.
    let mut clients = Vec::new();
    for host in 2..42u8 {
        for _ in 0..8 {
            let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)), 0);
            clients.push(UdpSocket::bind(addr).await.expect("bind"));
        }
    }
    let before = open_descriptors();
    let answered = flood(clients, server.local_addr, rrq(&["f", "octet"])).await;
    let held = open_descriptors().saturating_sub(before);
    assert!(answered >= 1, "the server answers within its cap");
    assert!(
        answered <= cap,
        "{answered} transfers started, the cap is {cap}"
    );
    // A transfer holds a socket and a file; some slack for the runtime and
    // the other test of this file.
    assert!(
        held <= 2 * cap + 40,
        "{held} descriptors opened by 320 requests (cap {cap})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_gets_its_share_and_options_are_clamped() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("f"), vec![7u8; 100_000]).expect("write");
    let server = server(dir.path()).await;
    let per_client = tftp::TftpOptions::default().max_transfers_per_client;
    let mut clients = Vec::new();
    for _ in 0..20 {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 200)), 0);
        clients.push(UdpSocket::bind(addr).await.expect("bind"));
    }
    let answered = flood(clients, server.local_addr, rrq(&["f", "octet"])).await;
    assert!(
        (1..=per_client).contains(&answered),
        "{answered} transfers for one client (cap {per_client})"
    );

    // Huge block size and timeout: the block size is cut to the cap, the
    // timeout is not acknowledged.
    let client = UdpSocket::bind("127.0.0.201:0").await.expect("bind");
    client
        .send_to(
            &rrq(&[
                "f", "octet", "blksize", "65464", "timeout", "255", "tsize", "0",
            ]),
            server.local_addr,
        )
        .await
        .expect("send");
    let mut buf = vec![0u8; 70_000];
    let (len, _) = tokio::time::timeout(Duration::from_secs(10), client.recv_from(&mut buf))
        .await
        .expect("an answer")
        .expect("recv");
    assert_eq!(u16::from_be_bytes([buf[0], buf[1]]), 6, "an OACK");
    let fields: Vec<String> = buf[2..len]
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).to_string())
        .collect();
    let max = tftp::TftpOptions::default().max_blksize.to_string();
    assert_eq!(
        fields,
        vec![
            "blksize".to_string(),
            max,
            "tsize".to_string(),
            "100000".to_string()
        ]
    );
}
