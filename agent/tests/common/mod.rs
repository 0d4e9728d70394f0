//! Test harness: a fake Bare Metal API (version discovery, lookup with a
//! token, heartbeats recorded, images served) and helpers to start an agent
//! against it and call its command API.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use ferrite_agent::{Agent, AgentConfig, AgentEvent, AgentOptions};
use ferrite_imaging::hardware::Hardware;
use serde_json::{json, Value};
use tokio::sync::mpsc;

pub const MAC: &str = "52:54:00:12:34:56";
pub const OTHER_MAC: &str = "52:54:00:ab:cd:ef";
pub const NODE_UUID: &str = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123";
pub const TOKEN: &str = "sYxPt5OK1Zgb2Ck0zQ7Y2VdAGo0r7Tg3D5Jc8Jb2AFw";

#[derive(Debug, Clone)]
pub struct Request {
    pub at: Instant,
    pub path: String,
    pub query: String,
    pub headers: HashMap<String, String>,
    pub body: Value,
}

pub struct ConductorState {
    pub lookups: Mutex<Vec<Request>>,
    pub heartbeats: Mutex<Vec<Request>>,
    pub node: Mutex<Value>,
    pub heartbeat_timeout: Mutex<f64>,
    /// The first N lookups are answered 404.
    pub lookup_failures: AtomicUsize,
    /// The first N heartbeats are answered 409.
    pub heartbeat_conflicts: AtomicUsize,
    pub images: Mutex<HashMap<String, Vec<u8>>>,
}

pub struct FakeConductor {
    pub url: String,
    pub state: Arc<ConductorState>,
    handle: actix_web::dev::ServerHandle,
}

fn record(req: &HttpRequest, body: &Bytes) -> Request {
    Request {
        at: Instant::now(),
        path: req.path().to_string(),
        query: req.query_string().to_string(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or("").to_string(),
                )
            })
            .collect(),
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
    }
}

fn ironic_error(status: u16, text: &str) -> HttpResponse {
    let inner = json!({"faultstring": text, "faultcode": "Client", "debuginfo": null}).to_string();
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .content_type("application/json")
        .body(json!({ "error_message": inner }).to_string())
}

async fn entry(req: HttpRequest, body: Bytes, state: Data<Arc<ConductorState>>) -> HttpResponse {
    let path = req.path().to_string();
    if path == "/" {
        return HttpResponse::Ok().json(json!({
            "name": "OpenStack Ironic API",
            "default_version": {"id": "v1", "version": "1.99", "min_version": "1.1", "status": "CURRENT"},
        }));
    }
    if path == "/v1/lookup" {
        state.lookups.lock().unwrap().push(record(&req, &body));
        let failures = &state.lookup_failures;
        if failures.load(Ordering::SeqCst) > 0 {
            failures.fetch_sub(1, Ordering::SeqCst);
            return ironic_error(404, "Node with addresses could not be found.");
        }
        return HttpResponse::Ok().json(json!({
            "node": state.node.lock().unwrap().clone(),
            "config": {
                "heartbeat_timeout": *state.heartbeat_timeout.lock().unwrap(),
                "agent_token": TOKEN,
                "agent_token_required": true,
                "agent_md5_checksum_enable": false,
            },
        }));
    }
    if let Some(uuid) = path.strip_prefix("/v1/heartbeat/") {
        let _ = uuid;
        state.heartbeats.lock().unwrap().push(record(&req, &body));
        let conflicts = &state.heartbeat_conflicts;
        if conflicts.load(Ordering::SeqCst) > 0 {
            conflicts.fetch_sub(1, Ordering::SeqCst);
            return ironic_error(409, "Node is locked by host conductor-1, please retry after the current operation is completed.");
        }
        return HttpResponse::Accepted().finish();
    }
    if let Some(name) = path.strip_prefix("/images/") {
        if let Some(data) = state.images.lock().unwrap().get(name) {
            return HttpResponse::Ok()
                .content_type("application/octet-stream")
                .body(data.clone());
        }
        return HttpResponse::NotFound().finish();
    }
    HttpResponse::NotFound().finish()
}

impl FakeConductor {
    pub async fn start(heartbeat_timeout: f64) -> FakeConductor {
        let state = Arc::new(ConductorState {
            lookups: Mutex::new(Vec::new()),
            heartbeats: Mutex::new(Vec::new()),
            node: Mutex::new(json!({
                "uuid": NODE_UUID,
                "properties": {"cpu_arch": "x86_64"},
                "instance_info": {},
                "driver_internal_info": {},
            })),
            heartbeat_timeout: Mutex::new(heartbeat_timeout),
            lookup_failures: AtomicUsize::new(0),
            heartbeat_conflicts: AtomicUsize::new(0),
            images: Mutex::new(HashMap::new()),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let data = Data::new(state.clone());
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(data.clone())
                .default_service(actix_web::web::to(entry))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        FakeConductor { url, state, handle }
    }

    pub fn lookups(&self) -> Vec<Request> {
        self.state.lookups.lock().unwrap().clone()
    }

    pub fn heartbeats(&self) -> Vec<Request> {
        self.state.heartbeats.lock().unwrap().clone()
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// One NIC, one 8 GiB sparse disk, one 1 GiB disk.
pub fn hardware(dir: &std::path::Path) -> Hardware {
    let disk = dir.join("sda.img");
    let small = dir.join("sdb.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(8 << 30)
        .unwrap();
    std::fs::File::create(&small)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    serde_json::from_value(json!({
        "system_vendor": {"product_name": "Sim", "serial_number": "S1", "manufacturer": "Ferrite"},
        "cpu": {"model_name": "Sim CPU", "count": 4, "architecture": "x86_64"},
        "memory_mb": 4096,
        "interfaces": [
            {"name": "eth0", "mac_address": MAC, "ipv4_address": "127.0.0.1"},
            {"name": "eth1", "mac_address": OTHER_MAC},
        ],
        "disks": [
            {"name": "/dev/sda", "path": disk, "size": 8u64 << 30, "serial": "disk-a"},
            {"name": "/dev/sdb", "path": small, "size": 1u64 << 30, "serial": "disk-b"},
        ],
        "boot_mode": "uefi",
    }))
    .unwrap()
}

pub fn cmdline(api: &str) -> String {
    format!(
        "initrd=ramdisk ipa-api-url={api} BOOTIF=01-52-54-00-12-34-56 \
         ipa-global-request-id=req-3c0f1ea4-test ipa-lookup-interval=0.05 \
         ipa-disk-wait-attempts=1 ipa-disk-wait-delay=0 nofb"
    )
}

pub struct Running {
    pub agent: Agent,
    pub events: mpsc::UnboundedReceiver<AgentEvent>,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

pub async fn start_agent(conductor: &FakeConductor, options: AgentOptions) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let hw = hardware(dir.path());
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let mut config = AgentConfig::new(
        cmdline(&conductor.url),
        hw,
        "127.0.0.1:0".parse().unwrap(),
        work,
    );
    config.events = Some(tx);
    let agent = ferrite_agent::start_with(config, options).await.unwrap();
    Running {
        agent,
        events: rx,
        dir,
        http: reqwest::Client::new(),
    }
}

/// Polls `cond` every 20 ms up to `timeout`.
pub async fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.agent.callback_url())
    }

    pub async fn wait_for_token(&self) {
        assert!(
            wait_until(Duration::from_secs(10), || self
                .agent
                .agent_token()
                .is_some())
            .await,
            "the agent never got a token"
        );
    }

    /// POST /v1/commands/ → (status, body).
    pub async fn command(
        &self,
        name: &str,
        params: Value,
        token: Option<&str>,
        wait: bool,
    ) -> (u16, Value) {
        let mut query = vec![("wait", wait.to_string())];
        if let Some(token) = token {
            query.push(("agent_token", token.to_string()));
        }
        let response = self
            .http
            .post(self.url("/v1/commands/"))
            .query(&query)
            .json(&json!({ "name": name, "params": params }))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = token {
            request = request.query(&[("agent_token", token)]);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// Polls a command until it is no longer RUNNING.
    pub async fn poll(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = self.get(&format!("/v1/commands/{id}"), Some(TOKEN)).await;
            assert_eq!(status, 200, "{body}");
            if body["command_status"] != "RUNNING" || Instant::now() > deadline {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
