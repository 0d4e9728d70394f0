//! `ferrite`: the whole stack in one command (library part, shared by the
//! `ferrite` binary and the tempest-like tests' copy of it).
//!
//! - `ferrite up [--fleet N]` runs Placement (:8778), the Bare Metal API and
//!   conductor (:6385) and the compute API with its scheduler and virt
//!   driver (:8774) in one process, on SQLite files in the data directory;
//!   with `--fleet N` it also runs N simulated machines (Redfish BMCs,
//!   netboot, the deploy agent, file-backed disks), enrolls them and makes
//!   them available (`--fleet-hardware fake`: fake-hardware nodes).
//! - `ferrite demo` (against those default ports) makes sure a flavor and an
//!   image exist, boots a server and follows it to ACTIVE.

pub mod demo;
mod demo_image;
pub mod lab;
pub mod up;
mod up_fleet;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "ferrite", about = "A bare-metal cloud that speaks OpenStack")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run placement, the conductor and compute in this process.
    Up(up::UpArgs),
    /// Boot a demo server on a running stack and follow it to ACTIVE.
    Demo(demo::DemoArgs),
}

pub use ferrite_service_kit::defaults::default_data_dir;

/// The whole command line program; `main` of every `ferrite` binary.
pub fn main() -> std::process::ExitCode {
    // Log lines escape control characters (a client's text cannot forge
    // lines or send terminal escapes).
    ferrite_service_kit::logs::init("warn");
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("ferrite: cannot start runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Up(args) => up::run(args).await,
            Command::Demo(args) => demo::run(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ferrite: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
