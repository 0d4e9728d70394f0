//! Test doubles shared by the fleet's tests: an agent launcher that
//! records what it was asked, a TFTP server and a static HTTP server.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrite_agent::{AgentConfig, AgentEvent};
use ferrite_fleet::{AgentLauncher, Fleet, FleetConfig, RunningAgent};
use futures::future::BoxFuture;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// One agent start as the launcher saw it.
#[derive(Clone)]
pub struct Launch {
    pub config: AgentConfig,
    pub callback_url: String,
    pub events: mpsc::UnboundedSender<AgentEvent>,
}

/// Records agent starts; agents "run" until stopped.
#[derive(Clone, Default)]
pub struct RecordingLauncher {
    pub launches: Arc<Mutex<Vec<Launch>>>,
    pub stops: Arc<Mutex<Vec<String>>>,
    /// When set, launching fails with this message.
    pub fail: Arc<Mutex<Option<String>>>,
}

struct FakeAgent {
    url: String,
    stops: Arc<Mutex<Vec<String>>>,
}

impl RunningAgent for FakeAgent {
    fn callback_url(&self) -> String {
        self.url.clone()
    }
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            self.stops.lock().unwrap().push(self.url.clone());
        })
    }
}

impl AgentLauncher for RecordingLauncher {
    fn launch(
        &self,
        config: AgentConfig,
    ) -> BoxFuture<'static, Result<Box<dyn RunningAgent>, String>> {
        let this = self.clone();
        Box::pin(async move {
            if let Some(message) = this.fail.lock().unwrap().clone() {
                return Err(message);
            }
            let mut launches = this.launches.lock().unwrap();
            let url = format!("http://127.0.0.1:{}", 40000 + launches.len());
            let events = config.events.clone().unwrap();
            launches.push(Launch {
                config,
                callback_url: url.clone(),
                events,
            });
            Ok(Box::new(FakeAgent {
                url,
                stops: this.stops.clone(),
            }) as Box<dyn RunningAgent>)
        })
    }
}

impl RecordingLauncher {
    pub fn launches(&self) -> Vec<Launch> {
        self.launches.lock().unwrap().clone()
    }
    pub fn stops(&self) -> Vec<String> {
        self.stops.lock().unwrap().clone()
    }
}

/// A fleet of `n` machines in `dir` with a recording launcher.
pub fn config(n: usize, dir: &Path, launcher: &RecordingLauncher) -> FleetConfig {
    let mut config = FleetConfig::new(n, dir.join("state"));
    config.dhcp_dir = dir.join("dhcp");
    std::fs::create_dir_all(&config.dhcp_dir).unwrap();
    config.disk_sizes = vec![8 << 30];
    config.launcher = Arc::new(launcher.clone());
    config.tftp.timeout = Duration::from_millis(200);
    config.tftp.retries = 3;
    config
}

pub async fn start(config: FleetConfig) -> Fleet {
    Fleet::start(config).await.unwrap()
}

// ---------------------------------------------------------------- TFTP

#[derive(Clone)]
pub struct TftpServerOptions {
    pub root: PathBuf,
    /// Answer option requests with an OACK (else plain RFC 1350).
    pub options: bool,
    /// Largest block size granted.
    pub max_blksize: usize,
    /// Do not send the first transmission of every n-th DATA block (as if
    /// lost on the wire); the client's retransmitted ACK recovers it.
    pub lose_every: Option<u16>,
}

impl TftpServerOptions {
    pub fn new(root: &Path) -> TftpServerOptions {
        TftpServerOptions {
            root: root.to_path_buf(),
            options: true,
            max_blksize: 1024,
            lose_every: None,
        }
    }
}

pub struct TftpServer {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TftpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TftpServer {
    pub async fn start(options: TftpServerOptions) -> TftpServer {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            loop {
                let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let pkt = buf[..len].to_vec();
                if pkt.len() < 4 || pkt[1] != 1 {
                    continue;
                }
                let fields: Vec<String> = pkt[2..]
                    .split(|b| *b == 0)
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect();
                let filename = fields[0].clone();
                log.lock().unwrap().push(filename.clone());
                let opts = options.clone();
                tokio::spawn(async move { transfer(opts, peer, fields).await });
            }
        });
        TftpServer {
            addr,
            requests,
            task,
        }
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

async fn send_wait_ack(socket: &UdpSocket, pkt: &[u8], block: u16, skip_first: bool) -> bool {
    let mut buf = [0u8; 1024];
    for attempt in 0..8 {
        if attempt > 0 || !skip_first {
            socket.send(pkt).await.unwrap();
        }
        loop {
            match tokio::time::timeout(Duration::from_millis(300), socket.recv(&mut buf)).await {
                Ok(Ok(n)) if n >= 4 && buf[1] == 4 => {
                    let acked = u16::from_be_bytes([buf[2], buf[3]]);
                    if acked == block {
                        return true;
                    }
                    // A duplicate ACK of the previous block: resend.
                    break;
                }
                Ok(Ok(n)) if n >= 2 && buf[1] == 5 => return false,
                Ok(_) => continue,
                Err(_) => break,
            }
        }
    }
    false
}

async fn transfer(options: TftpServerOptions, peer: SocketAddr, fields: Vec<String>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(peer).await.unwrap();
    let name = fields[0].trim_start_matches('/').to_string();
    let path = options.root.join(&name);
    let data = if name.split('/').any(|p| p == "..") {
        None
    } else {
        std::fs::read(&path).ok()
    };
    let Some(data) = data else {
        let mut pkt = vec![0, 5, 0, 1];
        pkt.extend_from_slice(b"File not found\0");
        socket.send(&pkt).await.unwrap();
        return;
    };
    let mut blksize = 512usize;
    let requested: Vec<(String, String)> = fields[2..]
        .chunks(2)
        .filter(|c| c.len() == 2 && !c[0].is_empty())
        .map(|c| (c[0].to_ascii_lowercase(), c[1].clone()))
        .collect();
    if options.options && !requested.is_empty() {
        let mut oack = vec![0u8, 6];
        for (k, v) in &requested {
            let value = match k.as_str() {
                "blksize" => {
                    blksize = v.parse::<usize>().unwrap().min(options.max_blksize);
                    blksize.to_string()
                }
                "tsize" => data.len().to_string(),
                _ => continue,
            };
            oack.extend_from_slice(k.as_bytes());
            oack.push(0);
            oack.extend_from_slice(value.as_bytes());
            oack.push(0);
        }
        if !send_wait_ack(&socket, &oack, 0, false).await {
            return;
        }
    }
    let mut block: u16 = 1;
    let mut offset = 0usize;
    loop {
        let end = (offset + blksize).min(data.len());
        let mut pkt = vec![0u8, 3];
        pkt.extend_from_slice(&block.to_be_bytes());
        pkt.extend_from_slice(&data[offset..end]);
        let lose = options
            .lose_every
            .is_some_and(|n| block.checked_rem(n) == Some(0));
        if !send_wait_ack(&socket, &pkt, block, lose).await {
            return;
        }
        if end - offset < blksize {
            return;
        }
        offset = end;
        block = block.wrapping_add(1);
    }
}

// ---------------------------------------------------------------- HTTP

pub struct HttpFiles {
    pub url: String,
    pub requests: Arc<Mutex<Vec<String>>>,
    handle: actix_web::dev::ServerHandle,
}

impl HttpFiles {
    pub async fn start(root: &Path) -> HttpFiles {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let root = root.to_path_buf();
        let server = actix_web::HttpServer::new(move || {
            let root = root.clone();
            let log = log.clone();
            actix_web::App::new().default_service(actix_web::web::to(
                move |req: actix_web::HttpRequest| {
                    let root = root.clone();
                    let log = log.clone();
                    async move {
                        let path = req.path().trim_start_matches('/').to_string();
                        log.lock().unwrap().push(path.clone());
                        match std::fs::read(root.join(&path)) {
                            Ok(body) if !path.contains("..") => {
                                actix_web::HttpResponse::Ok().body(body)
                            }
                            _ => actix_web::HttpResponse::NotFound().finish(),
                        }
                    }
                },
            ))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        HttpFiles {
            url,
            requests,
            handle,
        }
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

pub fn write(path: &Path, contents: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}
