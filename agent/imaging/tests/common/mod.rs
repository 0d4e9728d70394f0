//! Shared helpers of the integration tests: a tiny HTTP server and tools.
#![allow(clippy::unwrap_used)]
#![allow(dead_code)]
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves `routes` (path → body) on 127.0.0.1:<ephemeral>; 404 otherwise.
/// Returns the base URL.
pub async fn serve(routes: HashMap<String, Vec<u8>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = Arc::new(routes);
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let routes = routes.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&req);
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (status, body) = match routes.get(&path) {
                    Some(b) => ("200 OK", b.clone()),
                    None => ("404 Not Found", b"not found".to_vec()),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

/// `sfdisk --json` of `path`.
pub fn sfdisk(path: &Path) -> serde_json::Value {
    let out = Command::new("sfdisk")
        .arg("--json")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sfdisk: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["partitiontable"].clone()
}

/// `blkid -p -O offset -o export` as a map; empty when nothing is found.
pub fn blkid(path: &Path, offset: u64) -> HashMap<String, String> {
    let out = Command::new("blkid")
        .args(["-p", "-O", &offset.to_string(), "-o", "export"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Copies `len` bytes at `offset` of `path` into a temp file.
pub fn extract(path: &Path, offset: u64, len: u64, dir: &Path) -> std::path::PathBuf {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut src = std::fs::File::open(path).unwrap();
    src.seek(SeekFrom::Start(offset)).unwrap();
    let out_path = dir.join(format!("extract-{offset}.img"));
    let mut out = std::fs::File::create(&out_path).unwrap();
    let mut left = len;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let n = src.read(&mut buf[..left.min(1 << 20) as usize]).unwrap();
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    out_path
}

/// `debugfs -R 'cat <file>'` on an extracted ext4 filesystem.
pub fn debugfs_cat(fs: &Path, file: &str) -> String {
    let out = Command::new("debugfs")
        .args(["-R", &format!("cat {file}")])
        .arg(fs)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn read_bytes(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, offset).unwrap();
    buf
}

/// Bytes actually allocated for `path`.
pub fn allocated(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().blocks() * 512
}
