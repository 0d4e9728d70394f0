//! The `compute` binary: the compute API, scheduler and virt driver in one process.

use std::path::PathBuf;

use clap::Parser;
use ferrite_compute::config::{Config, Overrides};

#[derive(Parser, Debug)]
#[command(
    name = "compute",
    about = "OpenStack Compute (Nova) API compatible service for bare metal"
)]
struct Args {
    /// Address to listen on (host:port).
    #[arg(long, env = "FERRITE_COMPUTE_BIND")]
    bind: Option<String>,
    /// sqlite://PATH?mode=rwc, postgres://…, mysql://…
    #[arg(long, env = "FERRITE_COMPUTE_DATABASE_URL")]
    database_url: Option<String>,
    /// Where the default SQLite database lives.
    #[arg(long, env = "FERRITE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// TOML configuration file.
    #[arg(long, env = "FERRITE_COMPUTE_CONFIG")]
    config: Option<String>,
    /// Database connection pool size.
    #[arg(long, env = "FERRITE_COMPUTE_MAX_CONNECTIONS")]
    max_connections: Option<u32>,
    /// Placement base URL.
    #[arg(long, env = "FERRITE_COMPUTE_PLACEMENT_URL")]
    placement_url: Option<String>,
    /// Bare Metal API base URL.
    #[arg(long, env = "FERRITE_COMPUTE_IRONIC_URL")]
    ironic_url: Option<String>,
    /// This compute host's name (defaults to the machine's).
    #[arg(long, env = "FERRITE_COMPUTE_HOST")]
    host: Option<String>,
    /// Builds running at once.
    #[arg(long, env = "FERRITE_COMPUTE_MAX_CONCURRENT_BUILDS")]
    max_concurrent_builds: Option<usize>,
    /// Seconds between node polls while deploying.
    #[arg(long, env = "FERRITE_COMPUTE_POLL_INTERVAL")]
    poll_interval: Option<f64>,
    /// Seconds after which a deploy fails.
    #[arg(long, env = "FERRITE_COMPUTE_DEPLOY_TIMEOUT")]
    deploy_timeout: Option<f64>,
    /// Seconds between resource syncs with Placement.
    #[arg(long, env = "FERRITE_COMPUTE_SYNC_INTERVAL")]
    sync_interval: Option<f64>,
    /// Scheduling attempts per build, reschedules included.
    #[arg(long, env = "FERRITE_COMPUTE_MAX_ATTEMPTS")]
    max_attempts: Option<u32>,
    /// Base URL for links in responses (default: from the request's Host).
    #[arg(long, env = "FERRITE_COMPUTE_PUBLIC_ENDPOINT")]
    public_endpoint: Option<String>,
}

fn main() -> std::process::ExitCode {
    // Log lines escape control characters (a client's text cannot forge
    // lines or send terminal escapes).
    ferrite_service_kit::logs::init("info");
    let args = Args::parse();
    let overrides = Overrides {
        bind: args.bind,
        database_url: args.database_url,
        data_dir: args.data_dir,
        max_connections: args.max_connections,
        placement_url: args.placement_url,
        ironic_url: args.ironic_url,
        host: args.host,
        max_concurrent_builds: args.max_concurrent_builds,
        poll_interval_secs: args.poll_interval,
        deploy_timeout_secs: args.deploy_timeout,
        sync_interval_secs: args.sync_interval,
        max_attempts: args.max_attempts,
        public_endpoint: args.public_endpoint,
    };
    let config = match Config::load(args.config.as_deref(), overrides) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("compute: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("compute: cannot start runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let listener = std::net::TcpListener::bind(&config.bind)?;
        tracing::info!(bind = %config.bind, host = %config.host, "compute listening");
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        ferrite_compute::run(listener, config, shutdown)
            .await
            .map_err(std::io::Error::other)
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("compute: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
