//! `agent --hardware hw.json [--cmdline "…"] [--listen 0.0.0.0:9999]`: the
//! deploy agent as a process. It runs until the conductor powers the
//! machine off or reboots it (`standby.power_off` / `standby.run_image`),
//! or until interrupted.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ferrite_agent::{AgentConfig, AgentEvent};
use ferrite_imaging::hardware::Hardware;

#[derive(Parser, Debug)]
#[command(
    name = "agent",
    about = "Deploy agent compatible with ironic-python-agent"
)]
struct Args {
    /// The machine's hardware description (JSON).
    #[arg(long)]
    hardware: PathBuf,
    /// The kernel command line (default: the contents of /proc/cmdline).
    #[arg(long)]
    cmdline: Option<String>,
    /// Where the command API listens.
    #[arg(long, default_value = "0.0.0.0:9999")]
    listen: SocketAddr,
    /// Host put in the callback URL (default: from the command line or the
    /// listen address).
    #[arg(long)]
    advertise_host: Option<String>,
    /// Scratch space for downloads and conversions.
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

async fn run(args: Args) -> Result<(), String> {
    let text = std::fs::read_to_string(&args.hardware)
        .map_err(|err| format!("cannot read {}: {err}", args.hardware.display()))?;
    let hardware: Hardware = serde_json::from_str(&text).map_err(|err| {
        format!(
            "{} is not a hardware description: {err}",
            args.hardware.display()
        )
    })?;
    let cmdline = match args.cmdline {
        Some(cmdline) => cmdline,
        None => std::fs::read_to_string("/proc/cmdline")
            .map_err(|err| format!("cannot read /proc/cmdline: {err}"))?,
    };
    let work_dir = args
        .work_dir
        .unwrap_or_else(|| std::env::temp_dir().join("ferrite-agent"));
    std::fs::create_dir_all(&work_dir)
        .map_err(|err| format!("cannot create {}: {err}", work_dir.display()))?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut config = AgentConfig::new(cmdline, hardware, args.listen, work_dir);
    config.advertise_host = args.advertise_host;
    config.events = Some(tx);
    let agent = ferrite_agent::start(config)
        .await
        .map_err(|err| err.to_string())?;
    tracing::info!(callback_url = %agent.callback_url(), "agent started");
    tokio::select! {
        event = rx.recv() => {
            match event {
                Some(AgentEvent::PowerOff) => tracing::info!("powering off"),
                Some(AgentEvent::Reboot) => tracing::info!("rebooting"),
                None => {}
            }
        }
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted"),
    }
    agent.stop().await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("agent: {err}");
            ExitCode::FAILURE
        }
    }
}
