//! The deploy agent: ironic-python-agent's API (lookup, heartbeat,
//! commands) over the disk operations of `ferrite-imaging`.
//!
//! Contract used by the fleet (which runs agents in-process) and the binary:
//! [`start`] with an [`AgentConfig`] returns a running [`Agent`].
//!
//! Layout: [`cmdline`] reads the kernel command line; `ironic` is the
//! client of the Bare Metal API (version discovery, lookup, heartbeat);
//! `api` serves the command API; `commands` keeps command results and
//! runs them one at a time; `ext` holds the commands themselves; `logs`
//! keeps the agent's log for `log.collect_system_logs`; [`errors`] renders
//! errors as upstream.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrite_imaging::hardware::Hardware;
use ferrite_imaging::image::WriteOutcome;
use futures::future::BoxFuture;
use serde_json::{Map, Value};
use tokio::sync::mpsc;

mod api;
pub mod cmdline;
mod commands;
pub mod errors;
mod ext;
mod ironic;
mod logs;

pub use errors::CommandError;
pub use ext::{clean_steps, deploy_steps, HARDWARE_MANAGER_NAME, HARDWARE_MANAGER_VERSION};

/// The ironic-python-agent release whose API this agent implements; sent
/// as `agent_version` in heartbeats and shown by `GET /v1/status`.
pub const AGENT_VERSION: &str = "13.0.0";

/// What the agent asks of the machine it runs on (a real agent would call
/// the OS; the fleet's machines act on these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEvent {
    /// `standby.power_off`: the machine must power off.
    PowerOff,
    /// `standby.run_image` / reboot requests.
    Reboot,
}

#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The kernel command line the agent was booted with
    /// (`ipa-api-url=… BOOTIF=01-aa-bb-… ipa-global-request-id=…`).
    pub cmdline: String,
    pub hardware: Hardware,
    /// Where the command API listens (port 9999 upstream; port 0 allowed).
    pub listen: SocketAddr,
    /// Host put in `callback_url` (default: the listen address's IP).
    pub advertise_host: Option<String>,
    /// Scratch space (downloads, conversions).
    pub work_dir: PathBuf,
    /// Where machine-level requests go; `None`: ignored (logged).
    pub events: Option<mpsc::UnboundedSender<AgentEvent>>,
}

impl AgentConfig {
    /// A configuration without advertise host nor event channel.
    pub fn new(
        cmdline: impl Into<String>,
        hardware: Hardware,
        listen: SocketAddr,
        work_dir: PathBuf,
    ) -> AgentConfig {
        AgentConfig {
            cmdline: cmdline.into(),
            hardware,
            listen,
            advertise_host: None,
            work_dir,
            events: None,
        }
    }
}

/// A command added to the agent, as upstream's extension plugins add
/// commands: it runs asynchronously (RUNNING, then SUCCEEDED with the
/// returned value or FAILED with the error).
pub type CustomCommand = Arc<
    dyn Fn(Map<String, Value>) -> BoxFuture<'static, Result<Value, CommandError>> + Send + Sync,
>;

/// Tunables with upstream's defaults (tests and simulations shorten them).
#[derive(Clone)]
pub struct AgentOptions {
    /// Upstream's minimum heartbeat interval: the longest wait between
    /// checks whether a heartbeat is due, the base of the retry interval
    /// after a failed heartbeat (×1–2) and the earliest a forced heartbeat
    /// (after a command finished) is sent. Default 5 s.
    pub min_heartbeat_interval: Duration,
    /// Longest wait between lookup attempts. Default 60 s.
    pub lookup_max_interval: Duration,
    /// First pause after a lookup answered 409 (node locked); the next
    /// ones are ×2 then ×6. Default 5 s.
    pub lookup_conflict_pause: Duration,
    /// The node's UUID when already known (sent as `node_uuid` in lookup).
    pub node_uuid: Option<String>,
    /// Extra commands by full name (`<extension>.<command>`).
    pub commands: HashMap<String, CustomCommand>,
}

impl Default for AgentOptions {
    fn default() -> AgentOptions {
        AgentOptions {
            min_heartbeat_interval: Duration::from_secs(5),
            lookup_max_interval: Duration::from_secs(60),
            lookup_conflict_pause: Duration::from_secs(5),
            node_uuid: None,
            commands: HashMap::new(),
        }
    }
}

impl std::fmt::Debug for AgentOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentOptions")
            .field("min_heartbeat_interval", &self.min_heartbeat_interval)
            .field("lookup_max_interval", &self.lookup_max_interval)
            .field("lookup_conflict_pause", &self.lookup_conflict_pause)
            .field("node_uuid", &self.node_uuid)
            .field("commands", &self.commands.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Io(String),
}

/// State shared by the API, the commands and the heartbeater.
pub(crate) struct Shared {
    hardware: Hardware,
    work_dir: PathBuf,
    events: Option<mpsc::UnboundedSender<AgentEvent>>,
    boot: cmdline::BootParams,
    started_at: f64,
    token: Mutex<Option<String>>,
    node: Mutex<Option<Value>>,
    md5_allowed: AtomicBool,
    commands: commands::Commands,
    written: Mutex<Option<(WriteOutcome, Value)>>,
    heartbeat_forced: AtomicBool,
    log: logs::LogBuffer,
    runtime: tokio::runtime::Handle,
    custom: HashMap<String, CustomCommand>,
}

impl Shared {
    pub(crate) fn hardware(&self) -> &Hardware {
        &self.hardware
    }

    pub(crate) fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    pub(crate) fn node(&self) -> Option<Value> {
        self.node.lock().ok().and_then(|n| n.clone())
    }

    fn token(&self) -> Option<String> {
        self.token.lock().ok().and_then(|t| t.clone())
    }

    pub(crate) fn md5_allowed(&self) -> bool {
        self.md5_allowed.load(Ordering::Relaxed)
    }

    /// As upstream: a command needs the token the lookup issued; without
    /// one (no lookup yet) every command is refused.
    pub(crate) fn validate_token(&self, given: Option<&str>) -> bool {
        match (given.filter(|t| !t.is_empty()), self.token()) {
            (Some(given), Some(ours)) => {
                use subtle::ConstantTimeEq;
                given.as_bytes().ct_eq(ours.as_bytes()).into()
            }
            _ => false,
        }
    }

    pub(crate) fn force_heartbeat(&self) {
        self.heartbeat_forced.store(true, Ordering::Relaxed);
    }

    pub(crate) fn send_event(&self, event: AgentEvent) {
        match &self.events {
            Some(tx) => {
                if tx.send(event.clone()).is_err() {
                    self.log
                        .warn(format!("nobody listens for {event:?}; ignored"));
                }
            }
            None => self
                .log
                .warn(format!("no machine to ask for {event:?}; ignored")),
        }
    }

    pub(crate) fn remember_write(&self, outcome: WriteOutcome, uuids: Value) {
        if let Ok(mut slot) = self.written.lock() {
            *slot = Some((outcome, uuids));
        }
    }

    /// `standby.get_partition_uuids`: `{}` until an image was written.
    pub(crate) fn partition_uuids(&self) -> Value {
        self.written
            .lock()
            .ok()
            .and_then(|w| w.as_ref().map(|(_, uuids)| uuids.clone()))
            .unwrap_or_else(|| Value::Object(Map::new()))
    }

    /// Remembers the node the conductor talks about; when it is a new
    /// node, waits (as upstream) for its root device to appear.
    pub(crate) async fn cache_node(&self, node: Value) {
        let uuid = node.get("uuid").cloned();
        let is_new = match self.node.lock() {
            Ok(mut slot) => {
                let old = slot.as_ref().and_then(|n| n.get("uuid").cloned());
                *slot = Some(node);
                old != uuid
            }
            Err(_) => false,
        };
        if is_new {
            self.wait_for_disks().await;
        }
    }

    async fn wait_for_disks(&self) {
        let attempts = self.boot.disk_wait_attempts;
        let hints = self
            .node()
            .and_then(|n| n.pointer("/properties/root_device").cloned())
            .filter(|h| !h.is_null());
        for attempt in 0..attempts {
            match ferrite_imaging::hints::select_root_device(&self.hardware.disks, hints.as_ref()) {
                Ok(_) => return,
                Err(ferrite_imaging::ImagingError::NoDisk(_)) => {
                    if attempt + 1 < attempts {
                        tokio::time::sleep(self.boot.disk_wait_delay).await;
                    }
                }
                // Bad hints do not get better by waiting; the step that
                // needs the disk reports the error.
                Err(_) => return,
            }
        }
        if attempts > 0 {
            self.log
                .warn("the root device did not appear in time".to_string());
        }
    }
}

/// A running agent.
pub struct Agent {
    shared: Arc<Shared>,
    callback_url: String,
    server: actix_web::dev::ServerHandle,
    server_task: tokio::task::JoinHandle<()>,
    background: tokio::task::JoinHandle<()>,
}

impl Agent {
    /// `http://host:port` the conductor calls back on.
    pub fn callback_url(&self) -> String {
        self.callback_url.clone()
    }

    /// The node found by the lookup (or sent by the conductor since).
    pub fn node(&self) -> Option<Value> {
        self.shared.node()
    }

    /// The agent token the lookup issued, once it did.
    pub fn agent_token(&self) -> Option<String> {
        self.shared.token()
    }

    /// What `standby.get_partition_uuids` answers and the outcome of the
    /// last image write, once an image was written.
    pub fn last_write(&self) -> Option<WriteOutcome> {
        self.shared
            .written
            .lock()
            .ok()
            .and_then(|w| w.as_ref().map(|(outcome, _)| outcome.clone()))
    }

    /// The agent's log (what `log.collect_system_logs` packs).
    pub fn log_text(&self) -> String {
        self.shared.log.text()
    }

    /// Stops heartbeating and serving (the machine powered off); running
    /// commands are abandoned.
    pub async fn stop(self) {
        self.background.abort();
        self.shared.commands.abort_all();
        self.server.stop(false).await;
        let _ = self.server_task.await;
        self.shared.log.info("agent stopped".to_string());
    }
}

/// Binds the command API, then looks the node up and heartbeats in the
/// background; returns once the API is listening.
pub async fn start(config: AgentConfig) -> Result<Agent, AgentError> {
    start_with(config, AgentOptions::default()).await
}

/// [`start`] with explicit tunables and extra commands.
pub async fn start_with(config: AgentConfig, options: AgentOptions) -> Result<Agent, AgentError> {
    let boot = cmdline::parse(&config.cmdline).map_err(AgentError::Config)?;
    if let Some(bad) = options.commands.keys().find(|k| !k.contains('.')) {
        return Err(AgentError::Config(format!(
            "command name {bad:?} must be of the form <extension>.<name>"
        )));
    }
    let client = if boot.api_urls.is_empty() {
        None
    } else {
        Some(ironic::IronicClient::new(&boot).map_err(AgentError::Config)?)
    };
    let listener = std::net::TcpListener::bind(config.listen)
        .map_err(|err| AgentError::Io(format!("cannot listen on {}: {err}", config.listen)))?;
    let local = listener
        .local_addr()
        .map_err(|err| AgentError::Io(format!("cannot read the listen address: {err}")))?;
    let callback_url = callback_url(&config, &boot, local);
    let started_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let shared = Arc::new(Shared {
        hardware: config.hardware,
        work_dir: config.work_dir,
        events: config.events,
        token: Mutex::new(boot.agent_token.clone()),
        boot,
        started_at,
        node: Mutex::new(None),
        md5_allowed: AtomicBool::new(false),
        commands: commands::Commands::default(),
        written: Mutex::new(None),
        heartbeat_forced: AtomicBool::new(false),
        log: logs::LogBuffer::default(),
        runtime: tokio::runtime::Handle::current(),
        custom: options.commands.clone(),
    });
    shared.log.info(format!(
        "agent {AGENT_VERSION} listening on {local}, callback URL {callback_url}"
    ));

    let data = actix_web::web::Data::new(shared.clone());
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            // Config drives travel in command bodies.
            .app_data(actix_web::web::PayloadConfig::new(256 * 1024 * 1024))
            .default_service(actix_web::web::to(api::entry))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)
    .map_err(|err| AgentError::Io(format!("cannot serve on {local}: {err}")))?
    .run();
    let handle = server.handle();
    let server_task = {
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(err) = server.await {
                shared.log.warn(format!("command API stopped: {err}"));
            }
        })
    };
    let background = {
        let shared = shared.clone();
        let callback_url = callback_url.clone();
        tokio::spawn(async move {
            match client {
                Some(client) => run_ironic(shared, client, callback_url, options).await,
                None => shared.log.warn(
                    "no ipa-api-url on the kernel command line: not looking the node up"
                        .to_string(),
                ),
            }
        })
    };
    Ok(Agent {
        shared,
        callback_url,
        server: handle,
        server_task,
        background,
    })
}

fn callback_url(config: &AgentConfig, boot: &cmdline::BootParams, local: SocketAddr) -> String {
    let host = config
        .advertise_host
        .clone()
        .or_else(|| boot.advertise_host.clone())
        .unwrap_or_else(|| {
            if local.ip().is_unspecified() {
                let nics = &config.hardware.interfaces;
                nics.iter()
                    .filter(|n| Some(&n.mac_address) == boot.bootif.as_ref())
                    .chain(nics.iter())
                    .find_map(|n| n.ipv4_address.clone())
                    .unwrap_or_else(|| "127.0.0.1".to_string())
            } else {
                local.ip().to_string()
            }
        });
    let host = match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => host,
    };
    let port = boot.advertise_port.unwrap_or(local.port());
    format!("http://{host}:{port}")
}

/// The MAC addresses sent in the lookup: every interface's, the boot
/// interface's first when the hardware description lacks it.
fn lookup_addresses(shared: &Shared) -> String {
    let mut macs: Vec<String> = Vec::new();
    if let Some(bootif) = &shared.boot.bootif {
        if !shared
            .hardware
            .interfaces
            .iter()
            .any(|n| n.mac_address.eq_ignore_ascii_case(bootif))
        {
            macs.push(bootif.clone());
        }
    }
    macs.extend(
        shared
            .hardware
            .interfaces
            .iter()
            .filter(|n| !n.mac_address.is_empty())
            .map(|n| n.mac_address.to_ascii_lowercase()),
    );
    macs.join(",")
}

/// Lookup until a node is found, then heartbeat forever.
async fn run_ironic(
    shared: Arc<Shared>,
    client: ironic::IronicClient,
    callback_url: String,
    options: AgentOptions,
) {
    let addresses = lookup_addresses(&shared);
    let mut attempt: u32 = 0;
    let mut conflict_pause = Duration::ZERO;
    let content = loop {
        match client
            .lookup(&addresses, options.node_uuid.as_deref())
            .await
        {
            ironic::Lookup::Found(content) => break content,
            ironic::Lookup::Conflict(err) => {
                let base = options.lookup_conflict_pause;
                conflict_pause = if conflict_pause.is_zero() {
                    base
                } else if conflict_pause == base {
                    base * 2
                } else {
                    base * 6
                };
                shared.log.warn(format!(
                    "lookup: the node is locked, waiting {conflict_pause:?}: {err}"
                ));
                tokio::time::sleep(conflict_pause).await;
            }
            ironic::Lookup::Retry(err) => shared.log.warn(err),
        }
        let wait = ironic::lookup_wait(
            shared.boot.lookup_interval,
            options.lookup_max_interval,
            attempt,
        );
        attempt = attempt.saturating_add(1);
        tokio::time::sleep(wait).await;
    };
    let heartbeat_timeout = process_lookup(&shared, &content).await;
    let Some(uuid) = shared
        .node()
        .and_then(|n| n.get("uuid").and_then(Value::as_str).map(str::to_string))
    else {
        return;
    };
    heartbeat_loop(
        &shared,
        &client,
        &uuid,
        &callback_url,
        heartbeat_timeout,
        &options,
    )
    .await;
}

/// Takes the node, token and settings from a lookup reply; returns the
/// heartbeat timeout.
async fn process_lookup(shared: &Shared, content: &Value) -> Duration {
    let config = content.get("config").cloned().unwrap_or(Value::Null);
    let timeout = config
        .get("heartbeat_timeout")
        .and_then(|t| {
            t.as_f64()
                .or_else(|| t.as_str().and_then(|s| s.parse().ok()))
        })
        .filter(|t| t.is_finite() && *t > 0.0)
        .unwrap_or(300.0);
    if let Some(md5) = config
        .get("agent_md5_checksum_enable")
        .and_then(Value::as_bool)
    {
        shared.md5_allowed.store(md5, Ordering::Relaxed);
    }
    match config.get("agent_token").and_then(Value::as_str) {
        Some(token) if token.len() >= 32 => {
            if let Ok(mut slot) = shared.token.lock() {
                *slot = Some(token.to_string());
            }
            shared
                .log
                .info("agent token recorded from the lookup".to_string());
        }
        Some("******") => {
            let known = shared.token().is_some();
            shared.log.warn(format!(
                "the agent token was already retrieved by another agent{}",
                if known {
                    ""
                } else {
                    "; no token on file: every command will be refused"
                }
            ));
        }
        Some(_) => shared
            .log
            .warn("the lookup returned an invalid agent token".to_string()),
        None => {}
    }
    let node = content.get("node").cloned().unwrap_or(Value::Null);
    shared.log.info(format!(
        "lookup succeeded, node {}",
        node.get("uuid").and_then(Value::as_str).unwrap_or("?")
    ));
    shared.cache_node(node).await;
    Duration::from_secs_f64(timeout)
}

/// Upstream's heartbeater: the next heartbeat is due `heartbeat_timeout ×
/// U(0.3, 0.6)` after a success, `min × U(1, 2)` after a failure (409
/// included); a forced heartbeat (a command finished) goes out once `min`
/// passed since the last one.
async fn heartbeat_loop(
    shared: &Shared,
    client: &ironic::IronicClient,
    uuid: &str,
    callback_url: &str,
    heartbeat_timeout: Duration,
    options: &AgentOptions,
) {
    let min = options.min_heartbeat_interval;
    let mut interval = Duration::ZERO;
    let mut previous: Option<Instant> = None;
    loop {
        let elapsed = previous.map_or(Duration::MAX, |p| p.elapsed());
        tokio::time::sleep(min.min(interval.saturating_sub(elapsed))).await;
        let elapsed = previous.map_or(Duration::MAX, |p| p.elapsed());
        let forced = shared.heartbeat_forced.load(Ordering::Relaxed);
        if elapsed >= interval || (forced && elapsed > min) {
            let token = shared.token();
            match client.heartbeat(uuid, callback_url, token.as_deref()).await {
                Ok(()) => {
                    shared.heartbeat_forced.store(false, Ordering::Relaxed);
                    interval = ironic::jitter(heartbeat_timeout, 0.3, 0.6);
                }
                Err(err) => {
                    let kind = match err {
                        ironic::HeartbeatError::Conflict(_) => "conflict",
                        ironic::HeartbeatError::Other(_) => "error",
                    };
                    shared.log.warn(format!("heartbeat {kind}: {err}"));
                    interval = ironic::jitter(min, 1.0, 2.0);
                }
            }
            previous = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(100).min(min)).await;
    }
}
