//! Ferrite Compute: a Nova-compatible compute API subset at `/v2.1` (plus a
//! small Glance-like image registry at `/v2/images`) and the scheduler that
//! claims bare-metal nodes through Placement and deploys them with the
//! Ironic virt driver.
//!
//! Layers, in the direction requests travel:
//! - [`http`]: the edge (noauth2, compute microversions, Nova's faults);
//! - [`handlers`]: one thin function per route;
//! - [`manager`]: the work after the 202 (builds, deletes, actions,
//!   recovery), bounded by `max_concurrent_builds`;
//! - [`scheduler`]: flavor → allocation-candidate query and capabilities
//!   filter (pure), then the claim;
//! - [`model`]: the domain, pure; [`storage`]: every SQL statement.

pub mod config;
pub mod error;
pub mod handlers;
pub mod http;
pub mod manager;
pub mod model;
pub mod scheduler;
pub mod storage;

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;

pub use config::Config;
use ferrite_db::Db;
use ferrite_virt_driver::IronicDriver;

/// Everything a handler may use.
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub manager: Arc<manager::Manager>,
    /// Interrupted deletes found at start, resumed by `serve`.
    resume_deletes: std::sync::Mutex<Vec<String>>,
    /// Per-client rate limit of the API.
    pub limiter: ferrite_service_kit::RateLimiter,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error("invalid configuration: {0}")]
    Config(#[from] config::ConfigError),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Connects, migrates, and recovers what a previous run left unfinished:
/// builds interrupted by the restart become ERROR (their claims are freed).
pub async fn prepare(config: Config) -> Result<Arc<AppState>, StartError> {
    config.validate()?;
    let limiter = ferrite_service_kit::RateLimiter::new(&config.rate_limit)
        .map_err(config::ConfigError::Invalid)?;
    let config = Arc::new(config);
    let db = storage::connect(&config.database_url, config.max_connections).await?;
    let driver = Arc::new(IronicDriver::with_options(
        config.driver_config(),
        config.driver_options(),
    ));
    let manager = Arc::new(manager::Manager::new(config.clone(), db.clone(), driver));
    let resume_deletes = manager.recover().await?;
    Ok(Arc::new(AppState {
        config,
        db,
        manager,
        resume_deletes: std::sync::Mutex::new(resume_deletes),
        limiter,
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

/// Serves a prepared state; runs the driver's periodic sync every
/// `sync_interval` and the build workers; stops background work on
/// shutdown (builds it interrupts fail at the next start).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let data = actix_web::web::Data::new(state.clone());
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            // Bodies are read by the edge, capped at max_request_body_bytes.
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
    let deletes: Vec<String> = state
        .resume_deletes
        .lock()
        .map(|mut d| d.drain(..).collect())
        .unwrap_or_default();
    for uuid in deletes {
        state.manager.start_delete(uuid);
    }
    let sync = {
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                match state.manager.driver.sync().await {
                    Ok(report) => tracing::debug!(?report, "resource sync"),
                    Err(err) => tracing::warn!(error = %err, "resource sync failed"),
                }
                tokio::time::sleep(state.config.sync_interval).await;
            }
        })
    };
    tokio::select! {
        result = server => result?,
        () = shutdown => handle.stop(true).await,
    }
    sync.abort();
    state.manager.shutdown().await;
    Ok(())
}
