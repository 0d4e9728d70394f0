//! `ferrite up`: every service in one process.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use ferrite_baremetal_client::BaremetalClient;
use serde_json::json;
use tokio::sync::watch;

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Where the SQLite databases live (default `$FERRITE_DATA_DIR` or
    /// `~/.local/share/ferrite`).
    #[arg(long, env = "FERRITE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Start and enroll this many simulated machines and make them
    /// available.
    #[arg(long, default_value_t = 0)]
    fleet: usize,
    /// What `--fleet` machines are: `simulated` (Redfish BMCs, iPXE boot,
    /// the deploy agent writing images to file-backed disks; nodes use
    /// `redfish` + `ipxe` + `direct`) or `fake` (`fake-hardware` nodes
    /// that deploy nothing).
    #[arg(long, default_value = "simulated", value_parser = ["simulated", "fake"])]
    fleet_hardware: String,
    /// Address the three APIs listen on.
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
    #[arg(long, default_value_t = 8778)]
    placement_port: u16,
    #[arg(long, default_value_t = 6385)]
    conductor_port: u16,
    #[arg(long, default_value_t = 8774)]
    compute_port: u16,
    /// A conductor TOML file (e.g. `[fake] deploy_delay`); its bind and
    /// database are replaced by `up`'s.
    #[arg(long)]
    conductor_config: Option<String>,
    /// A compute TOML file (e.g. `deploy_timeout_secs`); its bind, database
    /// and service URLs are replaced by `up`'s.
    #[arg(long)]
    compute_config: Option<String>,
}

fn bind(address: &str, port: u16, what: &str) -> Result<TcpListener, String> {
    TcpListener::bind((address, port))
        .map_err(|e| format!("cannot listen for {what} on {address}:{port}: {e}"))
}

/// The SQLite URL of database file `name` under `dir` (created on first use).
pub fn sqlite_url(dir: &std::path::Path, name: &str) -> String {
    format!("sqlite://{}?mode=rwc", dir.join(name).display())
}

/// A service's shutdown future: resolves once `stop` reads `true`.
pub async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Runs one service's `serve` future in a task; its error names the service.
pub fn spawn_service<E: std::fmt::Display>(
    name: &'static str,
    serve: impl std::future::Future<Output = Result<(), E>> + Send + 'static,
) -> tokio::task::JoinHandle<Result<(), String>> {
    tokio::spawn(async move { serve.await.map_err(|e| format!("{name}: {e}")) })
}

pub async fn run(args: UpArgs) -> Result<(), String> {
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(crate::default_data_dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Absolute: file:// URLs and the conductor's allowed paths are made of it.
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    let placement_listener = bind(&args.address, args.placement_port, "placement")?;
    let conductor_listener = bind(&args.address, args.conductor_port, "the conductor")?;
    let compute_listener = bind(&args.address, args.compute_port, "compute")?;
    let placement_url = format!(
        "http://{}",
        placement_listener.local_addr().map_err(|e| e.to_string())?
    );
    let conductor_url = format!(
        "http://{}",
        conductor_listener.local_addr().map_err(|e| e.to_string())?
    );
    let compute_url = format!(
        "http://{}",
        compute_listener.local_addr().map_err(|e| e.to_string())?
    );

    let (stop, rx) = watch::channel(false);
    let placement_config =
        ferrite_placement::Config::for_database(sqlite_url(&dir, "placement.db"));
    let placement = ferrite_placement::prepare(placement_config)
        .await
        .map_err(|e| format!("placement: {e}"))?;
    let mut conductor_config = ferrite_conductor::Config::load(
        args.conductor_config.as_deref(),
        ferrite_conductor::config::Overrides {
            database_url: Some(sqlite_url(&dir, "conductor.db")),
            host: Some("ferrite".into()),
            ..Default::default()
        },
    )
    .map_err(|e| format!("conductor: {e}"))?;
    conductor_config.bind = conductor_url.trim_start_matches("http://").to_string();
    let simulated = args.fleet > 0 && args.fleet_hardware == "simulated";
    crate::up_fleet::deploy_config(
        &mut conductor_config.deploy,
        &dir,
        &args.address,
        &conductor_url,
        simulated,
    );
    let conductor = ferrite_conductor::prepare(conductor_config)
        .await
        .map_err(|e| format!("conductor: {e}"))?;
    let deploy = conductor.config.deploy.clone();

    let mut tasks = Vec::new();
    tasks.push(spawn_service(
        "placement",
        ferrite_placement::serve(placement_listener, placement, stopped(rx.clone())),
    ));
    tasks.push(spawn_service(
        "conductor",
        ferrite_conductor::serve(conductor_listener, conductor, stopped(rx.clone())),
    ));
    // Compute starts last: at start it reconciles with the other two
    // (recovering interrupted builds), so they must already be serving.
    let mut compute_config = ferrite_compute::Config::load(
        args.compute_config.as_deref(),
        ferrite_compute::config::Overrides {
            database_url: Some(sqlite_url(&dir, "compute.db")),
            placement_url: Some(placement_url.clone()),
            ironic_url: Some(conductor_url.clone()),
            host: Some("ferrite".into()),
            sync_interval_secs: if args.compute_config.is_some() {
                None
            } else {
                Some(10.0)
            },
            ..Default::default()
        },
    )
    .map_err(|e| format!("compute: {e}"))?;
    compute_config.bind = compute_url.trim_start_matches("http://").to_string();
    let compute = ferrite_compute::prepare(compute_config)
        .await
        .map_err(|e| format!("compute: {e}"))?;
    let driver = compute.manager.driver.clone();
    tasks.push(spawn_service(
        "compute",
        ferrite_compute::serve(compute_listener, compute, stopped(rx.clone())),
    ));
    println!("placement  {placement_url}");
    println!("baremetal  {conductor_url}");
    println!("compute    {compute_url}");
    println!("data       {}", dir.display());
    if let Some(tftp) = &deploy.tftp_bind {
        println!("tftp       {tftp}");
    }
    if let Some(http) = &deploy.http_url {
        println!("httpboot   {http}");
    }

    let mut fleet = None;
    if simulated {
        let (url, sha256) = crate::up_fleet::demo_image(&deploy)?;
        crate::demo_image::register(&compute_url, &reqwest::Client::new(), &url, &sha256).await?;
        println!("image      {} {url}", crate::demo_image::NAME);
        let machines = crate::up_fleet::start(&dir, args.fleet, &deploy).await?;
        let api = BaremetalClient::new(conductor_url.clone(), "latest");
        let enrolled = crate::up_fleet::enroll(&api, &machines, &dir).await;
        fleet = Some(machines);
        enrolled?;
        driver
            .sync()
            .await
            .map_err(|e| format!("reporting the fleet to placement: {e}"))?;
        println!(
            "fleet      {} simulated machines available (redfish, ipxe, direct)",
            args.fleet
        );
    } else if args.fleet > 0 {
        let api = BaremetalClient::new(conductor_url.clone(), "latest");
        enroll_fleet(&api, args.fleet).await?;
        // Report the machines to Placement now rather than at the next
        // periodic, so the first boot finds them.
        driver
            .sync()
            .await
            .map_err(|e| format!("reporting the fleet to placement: {e}"))?;
        println!("fleet      {} fake-hardware machines available", args.fleet);
    }
    println!("ready: try `ferrite demo` (Ctrl-C stops)");

    wait_for_signal().await;
    if let Some(fleet) = fleet {
        fleet.stop().await;
    }
    let _ = stop.send(true);
    for task in tasks {
        match task.await {
            Ok(Err(err)) => eprintln!("ferrite: {err}"),
            Err(err) => eprintln!("ferrite: {err}"),
            Ok(Ok(())) => {}
        }
    }
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Enrolls `count` simulated machines (`fleet-0`, …) unless they exist, and
/// brings each to `available`.
pub async fn enroll_fleet(api: &BaremetalClient, count: usize) -> Result<(), String> {
    let mut pending = Vec::new();
    for i in 0..count {
        let name = format!("fleet-{i}");
        let node = match api.get_node(&name).await {
            Ok(node) => node,
            Err(err) if err.status() == Some(404) => {
                let node = api
                    .create_node(&json!({
                        "driver": "fake-hardware",
                        "name": name,
                        "resource_class": "baremetal",
                        "properties": {
                            "cpus": 8, "memory_mb": 16384, "local_gb": 100,
                            "cpu_arch": "x86_64", "capabilities": "boot_mode:uefi",
                        },
                    }))
                    .await
                    .map_err(|e| format!("enrolling {name}: {e}"))?;
                api.create_port(&json!({
                    "address": format!("52:54:00:{:02x}:{:02x}:{:02x}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff),
                    "node_uuid": node["uuid"],
                }))
                .await
                .map_err(|e| format!("port of {name}: {e}"))?;
                node
            }
            Err(err) => return Err(format!("looking up {name}: {err}")),
        };
        let state = node["provision_state"].as_str().unwrap_or("").to_string();
        if node["power_state"].is_null() {
            // An idle machine is off; Nova does not schedule to a node whose
            // power state is unknown.
            api.set_power_state(&name, "power off")
                .await
                .map_err(|e| format!("power off {name}: {e}"))?;
            api.wait_for_power_state(&name, "power off", Duration::from_secs(60))
                .await
                .map_err(|e| format!("{name}: {e}"))?;
        }
        pending.push((name, state));
    }
    for (name, state) in pending {
        let steps: &[(&str, &str)] = match state.as_str() {
            "enroll" => &[("manage", "manageable"), ("provide", "available")],
            "manageable" => &[("provide", "available")],
            _ => &[],
        };
        for (target, wanted) in steps {
            api.set_provision_state(&name, target, None)
                .await
                .map_err(|e| format!("{target} {name}: {e}"))?;
            api.wait_for_provision_state(&name, wanted, Duration::from_secs(120))
                .await
                .map_err(|e| format!("{name}: {e}"))?;
        }
    }
    Ok(())
}
