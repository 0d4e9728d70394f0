//! Ferrite Conductor: an OpenStack Bare Metal (Ironic) API, microversions
//! 1.1–1.115, and the conductor engine that owns node state.
//!
//! Layers, in the direction requests travel:
//! - [`http`]: the edge (request ids, microversions, routing, errors);
//! - [`handlers`]: one thin function per route;
//! - [`model`]: the API's view of nodes and ports (fields per microversion,
//!   JSON Patch, body validation);
//! - [`hardware`]: hardware types and interface resolution;
//! - [`engine`]: the conductor (locks, the provision state machine, power),
//!   reached through [`engine::ConductorApi`]; [`drivers`] is what the
//!   interface implementations do;
//! - [`storage`]: every SQL statement.

pub mod agent_client;
pub mod boot;
pub mod config;
pub mod deploy;
pub mod drivers;
pub mod engine;
pub mod error;
pub mod handlers;
pub mod hardware;
pub mod http;
pub mod httpboot;
pub mod image_format;
pub mod images;
pub mod model;
pub mod ops;
pub mod redfish;
pub mod storage;
pub mod tftp;

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

pub use config::Config;
use ferrite_db::Db;

/// Everything a handler may use.
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub registry: Arc<hardware::Registry>,
    /// The conductor, behind the interface a split deployment replaces.
    pub conductor: Arc<dyn engine::ConductorApi>,
    pub engine: Arc<engine::Engine>,
    /// The netboot servers' sockets, bound by [`prepare`] (so the
    /// configuration carries their real addresses) and served by [`serve`].
    pub netboot: std::sync::Mutex<Option<NetbootListeners>>,
    /// Per-client rate limits: the API, and the agents' lookup/heartbeat.
    pub api_limiter: ferrite_service_kit::RateLimiter,
    pub agent_limiter: ferrite_service_kit::RateLimiter,
}

/// Sockets of the built-in TFTP and HTTP boot servers.
pub struct NetbootListeners {
    pub tftp: Option<std::net::UdpSocket>,
    pub http: Option<TcpListener>,
}

/// Binds the netboot servers `[deploy]` asks for and writes their real
/// addresses back (`tftp_bind`, `http_bind`, and `http_url` when unset), so
/// port 0 works; creates the roots and the bootfiles.
pub fn bind_netboot(config: &mut Config) -> Result<NetbootListeners, StartError> {
    let deploy = &mut config.deploy;
    let mut listeners = NetbootListeners {
        tftp: None,
        http: None,
    };
    if deploy.tftp_bind.is_none() && deploy.http_bind.is_none() {
        return Ok(listeners);
    }
    for dir in [&deploy.tftp_root, &deploy.http_root, &deploy.dhcp_dir] {
        std::fs::create_dir_all(dir)
            .map_err(|e| StartError::Netboot(format!("cannot create {}: {e}", dir.display())))?;
    }
    if let Some(bind) = deploy.tftp_bind.clone() {
        let socket = std::net::UdpSocket::bind(&bind).map_err(|e| {
            StartError::Netboot(format!("cannot bind the TFTP server to {bind}: {e}"))
        })?;
        deploy.tftp_bind = Some(socket.local_addr()?.to_string());
        listeners.tftp = Some(socket);
    }
    if let Some(bind) = deploy.http_bind.clone() {
        let listener = TcpListener::bind(&bind).map_err(|e| {
            StartError::Netboot(format!("cannot bind the HTTP boot server to {bind}: {e}"))
        })?;
        let actual = listener.local_addr()?;
        deploy.http_bind = Some(actual.to_string());
        if deploy.http_url.is_none() {
            let host = if actual.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                actual.ip().to_string()
            };
            deploy.http_url = Some(match actual {
                std::net::SocketAddr::V6(_) if !actual.ip().is_unspecified() => {
                    format!("http://[{host}]:{}", actual.port())
                }
                _ => format!("http://{host}:{}", actual.port()),
            });
        }
        listeners.http = Some(listener);
    }
    boot::ensure_bootfiles(config).map_err(StartError::Netboot)?;
    if config.deploy.http_bind.is_some() {
        boot::write_boot_ipxe(config).map_err(StartError::Netboot)?;
    }
    Ok(listeners)
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error("invalid hardware configuration: {0}")]
    Hardware(String),
    #[error("recovery failed: {0}")]
    Recovery(String),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    #[error("netboot: {0}")]
    Netboot(String),
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Connects, migrates, registers this conductor and recovers the nodes a
/// previous run of it left reserved.
pub async fn prepare(config: Config) -> Result<Arc<AppState>, StartError> {
    let mut config = config;
    let netboot = bind_netboot(&mut config)?;
    let config = Arc::new(config);
    let registry = Arc::new(
        hardware::Registry::new(config.hardware.clone())
            .map_err(|e| StartError::Hardware(e.to_string()))?,
    );
    let api_limiter =
        ferrite_service_kit::RateLimiter::new(&config.rate_limit).map_err(StartError::Config)?;
    let agent_limiter = ferrite_service_kit::RateLimiter::new(&config.agent_rate_limit)
        .map_err(StartError::Config)?;
    let db = storage::connect(&config.database_url, config.max_connections).await?;
    let engine = engine::Engine::new(db.clone(), config.clone(), registry.clone());
    let recovered = engine
        .recover()
        .await
        .map_err(|e| StartError::Recovery(e.to_string()))?;
    if recovered > 0 {
        tracing::warn!(
            recovered,
            "failed nodes left in transient states by a previous run"
        );
    }
    // No deploy step survives a restart: what a previous run was serving or
    // half-fetched goes, so the caches' bound holds.
    deploy::clean_up_after_restart(&config);
    storage::register_conductor(
        &db,
        &config.host,
        &config.conductor_group,
        &registry.enabled_hardware_types(),
    )
    .await?;
    Ok(Arc::new(AppState {
        config,
        db,
        registry,
        conductor: Arc::new(engine.clone()),
        engine,
        netboot: std::sync::Mutex::new(Some(netboot)),
        api_limiter,
        agent_limiter,
    }))
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let state = prepare(config).await?;
    serve(listener, state, shutdown).await
}

/// Serves a prepared state; heartbeats while serving, drains background
/// work and marks the conductor offline on shutdown.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let data = actix_web::web::Data::new(state.clone());
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            // Bodies are read by the edge with a cap per route
            // (`http::body_limit`).
            .default_service(actix_web::web::to(http::entry))
    })
    .workers(
        std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(2, 8),
    )
    .shutdown_timeout(10)
    .listen(listener)?
    .run();
    let handle = server.handle();
    let netboot = state
        .netboot
        .lock()
        .map(|mut slot| slot.take())
        .unwrap_or(None);
    let mut tftp_server = None;
    let mut http_boot = None;
    if let Some(listeners) = netboot {
        if let Some(socket) = listeners.tftp {
            socket.set_nonblocking(true)?;
            let socket = tokio::net::UdpSocket::from_std(socket)?;
            let server = tftp::serve(
                socket,
                state.config.deploy.tftp_root.clone(),
                state.config.deploy.tftp_options(),
            );
            tracing::info!(addr = %server.local_addr, "TFTP server listening");
            tftp_server = Some(server);
        }
        if let Some(listener) = listeners.http {
            let server = httpboot::serve(listener, state.config.deploy.http_root.clone())?;
            let boot_handle = server.handle();
            tokio::spawn(server);
            tracing::info!(url = ?state.config.deploy.http_url, "HTTP boot server listening");
            http_boot = Some(boot_handle);
        }
    }
    let heartbeat = {
        let state = state.clone();
        tokio::spawn(async move {
            let period = Duration::from_secs(state.config.heartbeat_interval_secs);
            loop {
                tokio::time::sleep(period).await;
                if let Err(err) = storage::heartbeat_conductor(&state.db, &state.config.host).await
                {
                    tracing::warn!(error = %err, "conductor heartbeat failed");
                }
            }
        })
    };
    // The power periodics: a round is never cut short (it may hold node
    // locks); shutdown waits for the running one.
    let (stop_periodics, periodics_stopped) = tokio::sync::watch::channel(false);
    let mut periodics = Vec::new();
    {
        let engine = state.engine.clone();
        periodics.extend(periodic(
            state.config.sync_power_state_interval_secs,
            periodics_stopped.clone(),
            move || {
                let engine = engine.clone();
                async move {
                    match engine.sync_power_states().await {
                        Ok(report) => tracing::debug!(?report, "power state sync"),
                        Err(err) => tracing::warn!(error = %err, "power state sync failed"),
                    }
                }
            },
        ));
        let engine = state.engine.clone();
        periodics.extend(periodic(
            state.config.power_failure_recovery_interval_secs,
            periodics_stopped,
            move || {
                let engine = engine.clone();
                async move {
                    if let Err(err) = engine.recover_power_failures().await {
                        tracing::warn!(error = %err, "power failure recovery failed");
                    }
                }
            },
        ));
    }
    tokio::select! {
        result = server => result?,
        () = shutdown => handle.stop(true).await,
    }
    heartbeat.abort();
    let _ = stop_periodics.send(true);
    for task in periodics {
        let _ = tokio::time::timeout(Duration::from_secs(120), task).await;
    }
    if let Some(server) = tftp_server {
        server.stop();
    }
    if let Some(handle) = http_boot {
        handle.stop(true).await;
    }
    state.engine.drain().await;
    if let Err(err) = storage::unregister_conductor(&state.db, &state.config.host).await {
        tracing::warn!(error = %err, "failed to mark the conductor offline");
    }
    Ok(())
}

/// Runs `round` every `interval_secs` (none when 0) until `stop` reads
/// true; a round in progress is finished first.
fn periodic<F, Fut>(
    interval_secs: f64,
    mut stop: tokio::sync::watch::Receiver<bool>,
    round: F,
) -> Option<tokio::task::JoinHandle<()>>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    (interval_secs > 0.0).then(|| {
        tokio::spawn(async move {
            let period = Duration::from_secs_f64(interval_secs);
            loop {
                tokio::select! {
                    () = tokio::time::sleep(period) => {}
                    _ = stop.wait_for(|stop| *stop) => break,
                }
                round().await;
            }
        })
    })
}
