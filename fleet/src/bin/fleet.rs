//! `fleet`: serves the BMCs of simulated machines until Ctrl-C and writes
//! their enrollment document to `<state-dir>/nodes.json`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ferrite_fleet::{BootMode, Fleet, FleetConfig};

#[derive(Debug, Parser)]
#[command(
    name = "fleet",
    about = "Simulated bare-metal machines with Redfish BMCs"
)]
struct Args {
    /// Number of machines.
    #[arg(long, default_value_t = 4)]
    machines: usize,
    /// Disks, identities and hardware descriptions of the machines.
    #[arg(long)]
    state_dir: PathBuf,
    /// Per-MAC DHCP options written by the conductor (default: <state-dir>/dhcp).
    #[arg(long)]
    dhcp_dir: Option<PathBuf>,
    /// The conductor's TFTP port.
    #[arg(long, default_value_t = 69)]
    tftp_port: u16,
    /// BMC of machine i on port P+i (default: ephemeral ports).
    #[arg(long)]
    bmc_base_port: Option<u16>,
    /// Boot mode of the machines: uefi or bios.
    #[arg(long, default_value = "uefi")]
    boot_mode: BootMode,
    /// Size of each machine's disk, GiB.
    #[arg(long, default_value_t = 10)]
    disk_gb: u64,
    /// BMC user name.
    #[arg(long, default_value = "admin")]
    username: String,
    /// BMC password.
    #[arg(long, default_value = "password")]
    password: String,
}

async fn run(args: Args) -> Result<(), String> {
    let mut config = FleetConfig::new(args.machines, &args.state_dir);
    if let Some(dir) = args.dhcp_dir {
        config.dhcp_dir = dir;
    }
    config.tftp_port = args.tftp_port;
    config.bmc_base_port = args.bmc_base_port;
    config.boot_mode = args.boot_mode;
    config.disk_sizes = vec![args.disk_gb << 30];
    config.username = args.username;
    config.password = args.password;
    std::fs::create_dir_all(&config.dhcp_dir)
        .map_err(|e| format!("cannot create {}: {e}", config.dhcp_dir.display()))?;
    let fleet = Fleet::start(config).await.map_err(|e| e.to_string())?;
    let inventory = fleet.inventory();
    let path = args.state_dir.join("nodes.json");
    let text = serde_json::to_string_pretty(&inventory).map_err(|e| e.to_string())?;
    // Written whole, then renamed: readers never see a partial document.
    let tmp = args.state_dir.join(".nodes.json.tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    for machine in fleet.machines() {
        println!(
            "{} {} {}",
            machine.name(),
            machine.uuid(),
            machine.bmc_url()
        );
    }
    println!("enrollment document: {}", path.display());
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| format!("cannot wait for Ctrl-C: {e}"))?;
    fleet.stop().await;
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
        Err(e) => {
            eprintln!("fleet: {e}");
            ExitCode::FAILURE
        }
    }
}
