//! The TFTP client against a TFTP server (the test double in `common`,
//! or python's tftpy when FLEET_TFTPY_PYTHON names a python with it).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{TftpServer, TftpServerOptions};
use ferrite_fleet::{TftpClient, TftpError};

fn client() -> TftpClient {
    TftpClient {
        timeout: Duration::from_millis(150),
        retries: 4,
        ..TftpClient::default()
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[tokio::test]
async fn reads_files_with_negotiated_block_size() {
    let dir = tempfile::tempdir().unwrap();
    // Sizes around the negotiated 1024-byte blocks: empty, short, exact
    // multiple (needs the final empty block), and several blocks.
    let sizes = [0usize, 5, 1024, 2048, 5000];
    for size in sizes {
        common::write(&dir.path().join(format!("sub/f{size}")), pattern(size));
    }
    let server = TftpServer::start(TftpServerOptions::new(dir.path())).await;
    for size in sizes {
        let got = client()
            .get(server.addr, &format!("sub/f{size}"))
            .await
            .unwrap();
        assert_eq!(got, pattern(size), "file of {size} bytes");
    }
}

#[tokio::test]
async fn reads_from_servers_without_option_support() {
    let dir = tempfile::tempdir().unwrap();
    common::write(&dir.path().join("pxelinux.0"), pattern(1300));
    let mut options = TftpServerOptions::new(dir.path());
    options.options = false;
    let server = TftpServer::start(options).await;
    let got = client().get(server.addr, "pxelinux.0").await.unwrap();
    assert_eq!(got, pattern(1300));
}

#[tokio::test]
async fn recovers_lost_packets_by_retransmitting() {
    let dir = tempfile::tempdir().unwrap();
    common::write(&dir.path().join("kernel"), pattern(10_000));
    let mut options = TftpServerOptions::new(dir.path());
    options.lose_every = Some(3);
    let server = TftpServer::start(options).await;
    let got = client().get(server.addr, "kernel").await.unwrap();
    assert_eq!(got, pattern(10_000));
}

#[tokio::test]
async fn missing_file_is_a_not_found_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = TftpServer::start(TftpServerOptions::new(dir.path())).await;
    let err = client().get(server.addr, "nope.cfg").await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert!(err.to_string().contains("nope.cfg"), "{err}");
    assert!(err.to_string().contains("File not found"), "{err}");
}

#[tokio::test]
async fn silent_server_times_out() {
    // A bound socket that never answers.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let started = std::time::Instant::now();
    let err = client().get(addr, "x").await.unwrap_err();
    assert!(
        matches!(err, TftpError::Timeout { attempts: 5, .. }),
        "{err:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(600));
}

#[tokio::test]
async fn rejects_an_oversized_file_announced_by_tsize() {
    let dir = tempfile::tempdir().unwrap();
    common::write(&dir.path().join("big"), pattern(4096));
    let server = TftpServer::start(TftpServerOptions::new(dir.path())).await;
    let small = TftpClient {
        max_size: 1000,
        ..client()
    };
    let err = small.get(server.addr, "big").await.unwrap_err();
    assert!(err.to_string().contains("more than the 1000"), "{err}");
}

/// Against python's tftpy: FLEET_TFTPY_PYTHON names a python with tftpy
/// (`scripts/test-venvs` builds one; `.ci/run` sets it). Without it the test
/// is skipped with a note, and fails under `CI=true`.
#[tokio::test]
async fn reads_from_tftpy() {
    let Some(python) = ferrite_test_support::env_var(
        "FLEET_TFTPY_PYTHON",
        "a python with tftpy, e.g. the one scripts/test-venvs builds",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    common::write(&dir.path().join("deploy_kernel"), pattern(70_000));
    common::write(&dir.path().join("empty"), b"");
    // Pick a free UDP port for the server.
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let script = format!(
        "import tftpy, logging\nlogging.basicConfig(level=logging.WARNING)\n\
         tftpy.TftpServer({:?}).listen('127.0.0.1', {port})\n",
        dir.path().display().to_string()
    );
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Kill(
        std::process::Command::new(python)
            .arg("-c")
            .arg(script)
            .spawn()
            .unwrap(),
    );
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut result = None;
    for _ in 0..50 {
        match client().get(addr, "deploy_kernel").await {
            Ok(data) => {
                result = Some(data);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(result.unwrap(), pattern(70_000));
    assert_eq!(client().get(addr, "empty").await.unwrap(), Vec::<u8>::new());
    assert!(client()
        .get(addr, "missing")
        .await
        .unwrap_err()
        .is_not_found());
}
