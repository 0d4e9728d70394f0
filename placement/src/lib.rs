//! Ferrite Placement: an OpenStack Placement API (up to microversion 1.39)
//! over SQLite, PostgreSQL or MySQL/MariaDB.
//!
//! Layers, in the one direction requests travel:
//! - [`http`]: the edge (auth, microversions, routing, rendering);
//! - [`handlers`]: one thin function per route;
//! - [`domain`]: pure rules (does a claim fit?);
//! - [`storage`]: every SQL statement, with generation compare-and-swap.
//!
//! [`run`] serves the API on a listener until `shutdown` resolves; the
//! `placement` binary and the tests both use it.

pub mod candidates;
pub mod config;
pub mod cors;
pub mod domain;
pub mod error;
pub mod handlers;
pub mod http;
pub mod microversion;
pub mod policy;
pub mod pyjson;
pub mod schema;
pub mod storage;

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;

pub use config::Config;

/// Everything a handler may use; shared by all workers.
pub struct AppState {
    pub config: Config,
    pub db: storage::Db,
    pub policy: policy::Policy,
    /// The last loaded provider snapshot and the write epoch it reflects.
    /// Readers take the read lock only to clone the `Arc`.
    snapshot: std::sync::RwLock<Option<(i64, Arc<candidates::Snapshot>)>>,
    /// Serialises refreshes so that a burst of requests after a write
    /// refreshes once, not once per request.
    refresh: tokio::sync::Mutex<()>,
    /// Per-client rate limit.
    pub limiter: ferrite_service_kit::RateLimiter,
}

impl AppState {
    fn cached_snapshot(&self, epoch: i64) -> Option<Arc<candidates::Snapshot>> {
        let cached = self.snapshot.read().ok()?;
        match cached.as_ref() {
            Some((seen, snapshot)) if *seen >= epoch => Some(snapshot.clone()),
            _ => None,
        }
    }

    /// A snapshot no older than the last committed write: reused while the
    /// database's write epoch is unchanged, refreshed incrementally
    /// otherwise. Writes of other processes bump the same epoch, so several
    /// placement processes stay consistent; the claim itself is always
    /// checked in the database.
    pub async fn snapshot(&self) -> Result<Arc<candidates::Snapshot>, storage::StorageError> {
        let epoch = storage::snapshot::epoch(self.db.conn()).await?;
        if let Some(snapshot) = self.cached_snapshot(epoch) {
            return Ok(snapshot);
        }
        let _refreshing = self.refresh.lock().await;
        if let Some(snapshot) = self.cached_snapshot(epoch) {
            return Ok(snapshot);
        }
        // Read the epoch again: the refresh below sees at least this much.
        let epoch = storage::snapshot::epoch(self.db.conn()).await?;
        // Take it out of the cache so that, unless a reader still holds it,
        // the refresh below mutates it in place instead of copying it.
        let previous = self
            .snapshot
            .write()
            .ok()
            .and_then(|mut cached| cached.take().map(|(_, s)| s));
        let fresh = match previous {
            Some(mut snapshot) => {
                // Copy-on-write: readers still holding the old one keep it.
                storage::snapshot::refresh(self.db.conn(), Arc::make_mut(&mut snapshot)).await?;
                snapshot
            }
            None => Arc::new(storage::snapshot::load(self.db.conn()).await?),
        };
        if let Ok(mut cached) = self.snapshot.write() {
            *cached = Some((epoch, fresh.clone()));
        }
        Ok(fresh)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error(transparent)]
    Policy(#[from] policy::PolicyFileError),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Connects to the database (creating the schema) and builds the state.
pub async fn prepare(config: Config) -> Result<Arc<AppState>, StartError> {
    let overrides = match &config.policy_file {
        Some(path) => policy::Policy::read_overrides(path)?,
        None => Default::default(),
    };
    let policy = policy::Policy::new(config.enforce_new_defaults, &overrides);
    let limiter =
        ferrite_service_kit::RateLimiter::new(&config.rate_limit).map_err(StartError::Config)?;
    let db = storage::connect(&config.database_url, config.max_connections).await?;
    Ok(Arc::new(AppState {
        config,
        db,
        policy,
        snapshot: std::sync::RwLock::new(None),
        refresh: tokio::sync::Mutex::new(()),
        limiter,
    }))
}

/// Serves Placement on `listener` until `shutdown` completes, then drains.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let state = prepare(config).await?;
    serve(listener, state, shutdown).await
}

/// Serves an already prepared state (lets callers share one database).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let data = actix_web::web::Data::new(state);
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            // Request bodies are read by the edge with a cap per route
            // (`http::body_limit`).
            .default_service(actix_web::web::to(http::entry))
    })
    // Two workers per core is plenty for an I/O-bound API on small hosts.
    .workers(
        std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(2, 8),
    )
    .shutdown_timeout(10)
    .listen(listener)?
    .run();
    let handle = server.handle();
    tokio::select! {
        result = server => result?,
        () = shutdown => handle.stop(true).await,
    }
    Ok(())
}
