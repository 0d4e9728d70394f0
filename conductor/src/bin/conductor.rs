//! The `conductor` binary: the Bare Metal API and its conductor in one process.

use std::path::PathBuf;

use clap::Parser;
use ferrite_conductor::config::{Config, Overrides};

#[derive(Parser, Debug)]
#[command(
    name = "conductor",
    about = "OpenStack Bare Metal (Ironic) API compatible service and conductor"
)]
struct Args {
    /// Address to listen on (host:port).
    #[arg(long, env = "FERRITE_CONDUCTOR_BIND")]
    bind: Option<String>,
    /// sqlite://PATH?mode=rwc, postgres://…, mysql://…
    #[arg(long, env = "FERRITE_CONDUCTOR_DATABASE_URL")]
    database_url: Option<String>,
    /// Where the default SQLite database lives.
    #[arg(long, env = "FERRITE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// TOML configuration file.
    #[arg(long, env = "FERRITE_CONDUCTOR_CONFIG")]
    config: Option<String>,
    /// Database connection pool size.
    #[arg(long, env = "FERRITE_CONDUCTOR_MAX_CONNECTIONS")]
    max_connections: Option<u32>,
    /// This conductor's host name (defaults to the machine's).
    #[arg(long, env = "FERRITE_CONDUCTOR_HOST")]
    host: Option<String>,
    /// The conductor group served.
    #[arg(long, env = "FERRITE_CONDUCTOR_GROUP")]
    conductor_group: Option<String>,
    /// Base URL for links in responses (default: from the request's Host).
    #[arg(long, env = "FERRITE_CONDUCTOR_PUBLIC_ENDPOINT")]
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
        host: args.host,
        conductor_group: args.conductor_group,
        public_endpoint: args.public_endpoint,
    };
    let config = match Config::load(args.config.as_deref(), overrides) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("conductor: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("conductor: cannot start runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let listener = std::net::TcpListener::bind(&config.bind)?;
        tracing::info!(bind = %config.bind, host = %config.host, "conductor listening");
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        ferrite_conductor::run(listener, config, shutdown)
            .await
            .map_err(std::io::Error::other)
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("conductor: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
