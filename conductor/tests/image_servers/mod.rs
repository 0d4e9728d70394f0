//! HTTP servers that misbehave on purpose, for the image download tests: a
//! tiny HTTP/1.1 server over a tokio listener (one request per connection)
//! whose routes answer in full, chunked without a length, a byte at a time
//! forever, or not at all after the headers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How a route answers.
#[derive(Clone)]
pub enum Reply {
    /// 200 with `Content-Length` and the whole body.
    Full(Vec<u8>),
    /// 200 with chunked transfer encoding: no length announced.
    Chunked(Vec<u8>),
    /// 200 announcing `length` bytes, then one byte per `every`, forever.
    Drip { length: u64, every: Duration },
    /// 200 announcing `length` bytes, then nothing.
    Stall { length: u64 },
}

pub struct ImageServer {
    pub url: String,
    hits: Arc<HashMap<String, AtomicU32>>,
    started: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl ImageServer {
    /// Serves `routes` (path → reply) on an ephemeral port.
    pub async fn start(routes: Vec<(&str, Reply)>) -> ImageServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let routes: Arc<HashMap<String, Reply>> = Arc::new(
            routes
                .into_iter()
                .map(|(path, reply)| (path.to_string(), reply))
                .collect(),
        );
        let hits: Arc<HashMap<String, AtomicU32>> = Arc::new(
            routes
                .keys()
                .map(|path| (path.clone(), AtomicU32::new(0)))
                .collect(),
        );
        let started = Arc::new(tokio::sync::Notify::new());
        let (routes_in, hits_in, started_in) = (routes.clone(), hits.clone(), started.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (routes, hits, started) =
                    (routes_in.clone(), hits_in.clone(), started_in.clone());
                tokio::spawn(async move {
                    let _ = answer(stream, &routes, &hits, &started).await;
                });
            }
        });
        ImageServer {
            url,
            hits,
            started,
            task,
        }
    }

    /// How many requests `path` received.
    pub fn hits(&self, path: &str) -> u32 {
        self.hits
            .get(path)
            .map_or(0, |count| count.load(Ordering::SeqCst))
    }

    /// Waits until some request started being answered.
    pub async fn wait_for_request(&self) {
        self.started.notified().await;
    }
}

impl Drop for ImageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    mut stream: TcpStream,
    routes: &HashMap<String, Reply>,
    hits: &HashMap<String, AtomicU32>,
    started: &tokio::sync::Notify,
) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
    let Some(reply) = routes.get(&path) else {
        stream
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await?;
        return Ok(());
    };
    if let Some(count) = hits.get(&path) {
        count.fetch_add(1, Ordering::SeqCst);
    }
    started.notify_waiters();
    match reply {
        Reply::Full(body) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(body).await?;
        }
        Reply::Chunked(body) => {
            stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
                )
                .await?;
            for chunk in body.chunks(64 * 1024) {
                stream
                    .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
                stream.write_all(chunk).await?;
                stream.write_all(b"\r\n").await?;
            }
            stream.write_all(b"0\r\n\r\n").await?;
        }
        Reply::Drip { length, every } => {
            let head =
                format!("HTTP/1.1 200 OK\r\ncontent-length: {length}\r\nconnection: close\r\n\r\n");
            stream.write_all(head.as_bytes()).await?;
            loop {
                stream.write_all(b"x").await?;
                stream.flush().await?;
                tokio::time::sleep(*every).await;
            }
        }
        Reply::Stall { length } => {
            let head =
                format!("HTTP/1.1 200 OK\r\ncontent-length: {length}\r\nconnection: close\r\n\r\n");
            stream.write_all(head.as_bytes()).await?;
            // Hold the connection open until the client gives up.
            let mut sink = [0u8; 64];
            while stream.read(&mut sink).await? > 0 {}
        }
    }
    stream.flush().await?;
    Ok(())
}
