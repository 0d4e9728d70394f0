//! The `placement` binary: parses flags, loads config, serves.

use std::path::PathBuf;

use clap::Parser;
use ferrite_placement::config::{Config, Overrides};

#[derive(Parser, Debug)]
#[command(
    name = "placement",
    about = "OpenStack Placement API compatible service"
)]
struct Args {
    /// Address to listen on (host:port).
    #[arg(long, env = "FERRITE_PLACEMENT_BIND")]
    bind: Option<String>,
    /// sqlite://PATH?mode=rwc, postgres://…, mysql://…
    #[arg(long, env = "FERRITE_PLACEMENT_DATABASE_URL")]
    database_url: Option<String>,
    /// Where the default SQLite database lives.
    #[arg(long, env = "FERRITE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// TOML configuration file.
    #[arg(long, env = "FERRITE_PLACEMENT_CONFIG")]
    config: Option<String>,
    /// Database connection pool size.
    #[arg(long, env = "FERRITE_PLACEMENT_MAX_CONNECTIONS")]
    max_connections: Option<u32>,
    /// Secure RBAC defaults (true) or legacy rules (false).
    #[arg(long, env = "FERRITE_PLACEMENT_ENFORCE_NEW_DEFAULTS")]
    enforce_new_defaults: Option<bool>,
    /// YAML/JSON policy overrides.
    #[arg(long, env = "FERRITE_PLACEMENT_POLICY_FILE")]
    policy_file: Option<String>,
    /// CORS allowed origin (repeatable or comma separated).
    #[arg(
        long,
        env = "FERRITE_PLACEMENT_CORS_ALLOWED_ORIGIN",
        value_delimiter = ','
    )]
    cors_allowed_origin: Option<Vec<String>>,
    /// CORS headers clients may send (comma separated).
    #[arg(
        long,
        env = "FERRITE_PLACEMENT_CORS_ALLOW_HEADERS",
        value_delimiter = ','
    )]
    cors_allow_headers: Option<Vec<String>>,
    /// Random `limit`-sized samples of allocation candidates.
    #[arg(long, env = "FERRITE_PLACEMENT_RANDOMIZE_ALLOCATION_CANDIDATES")]
    randomize_allocation_candidates: Option<bool>,
}

fn main() -> std::process::ExitCode {
    // Log lines escape control characters (a client's text cannot forge
    // lines or send terminal escapes).
    ferrite_service_kit::logs::init("warn");
    let args = Args::parse();
    let overrides = Overrides {
        bind: args.bind,
        database_url: args.database_url,
        data_dir: args.data_dir,
        max_connections: args.max_connections,
        enforce_new_defaults: args.enforce_new_defaults,
        policy_file: args.policy_file,
        cors_allowed_origin: args.cors_allowed_origin,
        cors_allow_headers: args.cors_allow_headers,
        randomize_allocation_candidates: args.randomize_allocation_candidates,
    };
    let config = match Config::load(args.config.as_deref(), overrides) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("placement: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("placement: cannot start runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let listener = std::net::TcpListener::bind(&config.bind)?;
        let address = listener.local_addr()?;
        println!("placement listening on http://{address}");
        ferrite_placement::run(listener, config, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(std::io::Error::other)
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("placement: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
