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
pub mod client;
pub mod config;
pub mod deploy;
pub mod drivers;
pub mod engine;
pub mod error;
pub mod handlers;
pub mod hardware;
pub mod http;
pub mod model;
pub mod ops;
pub mod storage;

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
}

/// Connects, migrates, registers this conductor and recovers the nodes a
/// previous run of it left reserved.
pub async fn prepare(config: Config) -> Result<Arc<AppState>, StartError> {
    let config = Arc::new(config);
    let registry = Arc::new(
        hardware::Registry::new(config.hardware.clone())
            .map_err(|e| StartError::Hardware(e.to_string()))?,
    );
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
            .app_data(actix_web::web::PayloadConfig::new(
                // Config drives are the largest bodies.
                data.config.max_configdrive_bytes + 1024 * 1024,
            ))
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
    tokio::select! {
        result = server => result?,
        () = shutdown => handle.stop(true).await,
    }
    heartbeat.abort();
    state.engine.drain().await;
    if let Err(err) = storage::unregister_conductor(&state.db, &state.config.host).await {
        tracing::warn!(error = %err, "failed to mark the conductor offline");
    }
    Ok(())
}
