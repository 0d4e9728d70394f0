//! `deploy-bench --machines N`: a lab (conductor + a fleet of N simulated
//! machines on SQLite in a temp dir), enrollment (redfish + ipxe + direct),
//! cleaning, then one raw whole-disk image with a config drive deployed to
//! every machine at once. Prints throughput, per-phase timings and the
//! image write rate beside `qemu-img convert` of the same image; the last
//! line is `deployed A/N machines in S s`.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use ferrite::lab::{self, Enrollment, ImageSpec, Lab, LabOptions};
use ferrite_fleet::MachineState;

#[derive(Parser, Debug)]
#[command(
    name = "deploy-bench",
    about = "Deploy an image to N simulated machines at once"
)]
struct Args {
    /// How many machines.
    #[arg(long, default_value_t = 10)]
    machines: usize,
    /// Image size, MiB.
    #[arg(long, default_value_t = 64)]
    image_mib: u64,
    /// Incompressible data in the image's root filesystem, MiB (the rest
    /// of the image is holes).
    #[arg(long, default_value_t = 24)]
    fill_mib: u64,
    /// Give up after this many seconds per phase.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
}

const MIB: f64 = 1024.0 * 1024.0;

/// When each deploy phase was first seen, per node (seconds since the
/// deploy request).
#[derive(Debug, Default, Clone)]
struct Seen {
    agent_running: Option<f64>,
    wait_callback: Option<f64>,
    /// Left `wait call-back` (the first heartbeat was processed).
    heartbeat: Option<f64>,
    active: Option<f64>,
    failed: Option<String>,
}

fn stats(values: &mut [f64]) -> String {
    if values.is_empty() {
        return "n/a".into();
    }
    values.sort_by(f64::total_cmp);
    let pick = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    format!(
        "min {:.2}s  median {:.2}s  p90 {:.2}s  max {:.2}s",
        pick(0.0),
        pick(0.5),
        pick(0.9),
        pick(1.0)
    )
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRITE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .init();
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("deploy-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("deploy-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<bool, String> {
    let n = args.machines;
    let timeout = Duration::from_secs(args.timeout_secs);
    let image_bytes = args.image_mib * 1024 * 1024;
    println!(
        "deploy-bench: {n} machines, {} MiB raw whole-disk image with a config drive",
        args.image_mib
    );

    let started = Instant::now();
    let lab = Lab::start(LabOptions::new(n))
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "lab started in {:.2}s (conductor {}, TFTP {}, HTTP {})",
        started.elapsed().as_secs_f64(),
        lab.api_url,
        lab.tftp_addr,
        lab.http_url
    );

    // The image and the baseline: qemu-img convert of the same image.
    let t = Instant::now();
    let image = lab::whole_disk_image_with(
        lab.dir(),
        "bench.raw",
        image_bytes,
        "bench-host",
        args.fill_mib * 1024 * 1024,
    )
    .map_err(|e| e.to_string())?;
    let allocated = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&image.path)
            .map(|m| m.blocks() * 512)
            .unwrap_or(0)
    };
    println!(
        "image built in {:.2}s ({} MiB, {:.1} MiB allocated: the rest is holes)",
        t.elapsed().as_secs_f64(),
        args.image_mib,
        allocated as f64 / MIB
    );
    let baseline_target = lab.dir().join("baseline.raw");
    let t = Instant::now();
    // Nothing else runs yet: blocking the runtime here is harmless.
    let status = std::process::Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "raw"])
        .arg(&image.path)
        .arg(&baseline_target)
        .status()
        .map_err(|e| format!("cannot run qemu-img: {e}"))?;
    let baseline_secs = t.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("qemu-img convert failed: {status}"));
    }
    let _ = std::fs::remove_file(&baseline_target);
    let spec = ImageSpec::publish(&lab, &image.path, "bench.raw", "raw", true)
        .map_err(|e| e.to_string())?;

    // Enroll.
    let t = Instant::now();
    let enrollment = Enrollment {
        boot_interface: "ipxe".into(),
    };
    let enrolled = futures::future::join_all((0..n).map(|i| lab.enroll(i, &enrollment))).await;
    let mut uuids = Vec::with_capacity(n);
    for result in enrolled {
        uuids.push(result.map_err(|e| format!("enrollment failed: {e}"))?);
    }
    let enroll_secs = t.elapsed().as_secs_f64();
    println!("enroll: {n} nodes with ports in {enroll_secs:.2}s");

    // Clean (manage → provide).
    let t = Instant::now();
    let provided =
        futures::future::join_all(uuids.iter().map(|u| lab.make_available(u, timeout))).await;
    let clean_secs = t.elapsed().as_secs_f64();
    let available = provided.iter().filter(|r| r.is_ok()).count();
    println!("clean/provide: {available}/{n} available in {clean_secs:.2}s");
    for (uuid, result) in uuids.iter().zip(&provided) {
        if let Err(e) = result {
            println!("  {uuid}: {e}");
        }
    }
    let ready: Vec<String> = uuids
        .iter()
        .zip(&provided)
        .filter(|(_, r)| r.is_ok())
        .map(|(u, _)| u.clone())
        .collect();

    // Deploy all at once, watching phases.
    let seen: Arc<Mutex<HashMap<String, Seen>>> = Arc::new(Mutex::new(
        ready.iter().map(|u| (u.clone(), Seen::default())).collect(),
    ));
    let deploy_start = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let seen = seen.clone();
        let stop = stop.clone();
        let api = lab.api.clone();
        let machines: HashMap<String, ferrite_fleet::Machine> = lab
            .fleet
            .machines()
            .iter()
            .map(|m| (m.uuid().to_string(), m.clone()))
            .collect();
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let now = deploy_start.elapsed().as_secs_f64();
                let nodes = api
                    .list_nodes("?fields=uuid,provision_state,last_error")
                    .await
                    .unwrap_or_default();
                if let Ok(mut seen) = seen.lock() {
                    observe(&mut seen, &machines, &nodes, now);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let requests = futures::future::join_all(ready.iter().map(|uuid| {
        let lab = &lab;
        let spec = &spec;
        async move {
            let drive = lab::config_drive(uuid, &format!("bench-{uuid}"))?;
            lab.deploy(uuid, spec, Some(&drive)).await
        }
    }))
    .await;
    let request_secs = deploy_start.elapsed().as_secs_f64();
    for (uuid, result) in ready.iter().zip(&requests) {
        if let Err(e) = result {
            println!("  deploy request for {uuid} failed: {e}");
        }
    }
    let waits = futures::future::join_all(
        ready
            .iter()
            .zip(&requests)
            .filter(|(_, r)| r.is_ok())
            .map(|(uuid, _)| lab.api.wait_for_provision_state(uuid, "active", timeout)),
    )
    .await;
    let all_active_secs = deploy_start.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = watcher.await;
    let active = waits.iter().filter(|r| r.is_ok()).count();
    for result in &waits {
        if let Err(e) = result {
            println!("  {e}");
        }
    }
    // Deployed instances boot from disk.
    let mut running = 0;
    for m in lab.fleet.machines() {
        if m.wait_for(Duration::from_secs(10), |s| {
            *s == MachineState::RunningInstance
        })
        .await
        .is_ok()
        {
            running += 1;
        }
    }

    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    let mut ramdisk = Vec::new();
    let mut heartbeat = Vec::new();
    let mut write = Vec::new();
    let mut to_active = Vec::new();
    let mut first_heartbeat = f64::MAX;
    let mut last_active: f64 = 0.0;
    for entry in seen.values() {
        if let Some(a) = entry.agent_running {
            ramdisk.push(a);
            if let Some(h) = entry.heartbeat {
                heartbeat.push((h - a).max(0.0));
            }
        }
        if let (Some(h), Some(done)) = (entry.heartbeat, entry.active) {
            write.push((done - h).max(0.0));
            first_heartbeat = first_heartbeat.min(h);
            last_active = last_active.max(done);
        }
        if let Some(done) = entry.active {
            to_active.push(done);
        }
        if let Some(e) = &entry.failed {
            println!("  deploy failed: {e}");
        }
    }
    let mut per_node_rate: Vec<f64> = write
        .iter()
        .filter(|s| **s > 0.0)
        .map(|s| image_bytes as f64 / MIB / s)
        .collect();
    per_node_rate.sort_by(f64::total_cmp);
    let median_rate = per_node_rate
        .get(per_node_rate.len() / 2)
        .copied()
        .unwrap_or(0.0);
    let aggregate_rate = if last_active > first_heartbeat {
        active as f64 * image_bytes as f64 / MIB / (last_active - first_heartbeat)
    } else {
        0.0
    };
    let baseline_rate = image_bytes as f64 / MIB / baseline_secs.max(1e-9);

    println!("deploy requests accepted in {request_secs:.2}s");
    println!("phase enroll:                    {enroll_secs:.2}s for {n}");
    println!("phase clean/provide:             {clean_secs:.2}s for {n}");
    println!(
        "phase ramdisk boot (request -> agent running): {}",
        stats(&mut ramdisk)
    );
    println!(
        "phase first heartbeat (agent running -> deploying): {}",
        stats(&mut heartbeat)
    );
    println!(
        "phase write_image -> active (first heartbeat -> active): {}",
        stats(&mut write)
    );
    println!("time to active per node:        {}", stats(&mut to_active));
    println!(
        "image write: median {median_rate:.1} MB/s per machine, {aggregate_rate:.1} MB/s aggregate (heartbeat→active, {} MiB each); qemu-img convert baseline {baseline_rate:.1} MB/s ({baseline_secs:.3}s)",
        args.image_mib
    );
    println!("instances running from disk:    {running}/{n}");
    println!("time to all-active:             {all_active_secs:.2}s");
    println!(
        "machines per minute:            {:.1}",
        if all_active_secs > 0.0 {
            active as f64 * 60.0 / all_active_secs
        } else {
            0.0
        }
    );
    lab.stop().await;
    println!("deployed {active}/{n} machines in {all_active_secs:.1} s");
    Ok(active == n)
}

/// Records the phases seen in one poll.
fn observe(
    seen: &mut HashMap<String, Seen>,
    machines: &HashMap<String, ferrite_fleet::Machine>,
    nodes: &[serde_json::Value],
    now: f64,
) {
    for (uuid, entry) in seen.iter_mut() {
        if entry.agent_running.is_none() {
            if let Some(m) = machines.get(uuid) {
                if matches!(m.state(), MachineState::AgentRunning { .. }) {
                    entry.agent_running = Some(now);
                }
            }
        }
    }
    for node in nodes {
        let Some(uuid) = node["uuid"].as_str() else {
            continue;
        };
        let Some(entry) = seen.get_mut(uuid) else {
            continue;
        };
        let state = node["provision_state"].as_str().unwrap_or("");
        match state {
            "wait call-back" if entry.wait_callback.is_none() => entry.wait_callback = Some(now),
            "deploying" | "active"
                if entry.wait_callback.is_some() && entry.heartbeat.is_none() =>
            {
                entry.heartbeat = Some(now)
            }
            _ => {}
        }
        if state == "active" && entry.active.is_none() {
            entry.active = Some(now);
        }
        if state == "deploy failed" && entry.failed.is_none() {
            entry.failed = Some(node["last_error"].as_str().unwrap_or("").to_string());
        }
    }
}
