//! `scale-bench`: the virt driver's periodic at fleet size and a boot storm,
//! against Placement, the conductor and compute running in this process.
//!
//! `scale-bench --nodes 1000,10000[,100000] [--storm 1000] [--db-dir DIR]`
//!
//! Enrollment shortcut: enrolling through the API costs five calls and two
//! waits per node, so only the first node (`fleet-0`) is enrolled through the
//! Bare Metal API exactly as `ferrite up --fleet` does (create with a port,
//! power off, manage, provide). The others are copies of its stored document
//! (new uuid, name, timestamps; its port with a new uuid and MAC) written
//! through `ferrite_conductor::storage` on the conductor's own database
//! handle, so every node ends `available`, `power off`, resource class
//! `baremetal`, like `fleet-0`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use ferrite::up::{spawn_service, stopped};
use ferrite_baremetal_client::BaremetalClient;
use ferrite_conductor::storage;
use ferrite_virt_driver::{DriverConfig, IronicDriver, SyncReport};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Parser, Debug)]
#[command(
    name = "scale-bench",
    about = "Ferrite's sync and boot-storm benchmark"
)]
struct Args {
    /// Fleet sizes of the sync benchmark, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    nodes: Vec<usize>,
    /// Servers booted at once in the boot storm (0 skips it).
    #[arg(long, default_value_t = 1000)]
    storm: usize,
    /// Keep the SQLite files under DIR (a subdirectory per run) instead of
    /// a temporary directory.
    #[arg(long)]
    db_dir: Option<PathBuf>,
    /// Server creates in flight during the storm.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Compute's `max_concurrent_builds` during the storm.
    #[arg(long, default_value_t = 128)]
    max_concurrent_builds: usize,
    /// Placement's `randomize_allocation_candidates` during the storm
    /// (off by default, as in `ferrite up`).
    #[arg(long)]
    randomize_candidates: bool,
    /// Give up on the storm after this many seconds.
    #[arg(long, default_value_t = 1800)]
    storm_timeout: u64,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRITE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("scale-bench: cannot start runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("scale-bench: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Prints `label: value` at once (the run is long; figures show as they come).
fn figure(label: &str, value: impl std::fmt::Display) {
    println!("{label}: {value}");
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// One run's data directory: under `--db-dir`, else a temp dir removed at
/// the end of the run.
enum DataDir {
    Kept(PathBuf),
    Temp(tempfile::TempDir),
}

impl DataDir {
    fn new(root: Option<&Path>, name: &str) -> Result<DataDir, String> {
        match root {
            Some(root) => {
                let dir = root.join(name);
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)
                        .map_err(|e| format!("cannot clear {}: {e}", dir.display()))?;
                }
                std::fs::create_dir_all(&dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                Ok(DataDir::Kept(dir))
            }
            None => tempfile::Builder::new()
                .prefix("scale-bench-")
                .tempdir()
                .map(DataDir::Temp)
                .map_err(|e| format!("cannot create a temp dir: {e}")),
        }
    }

    fn path(&self) -> &Path {
        match self {
            DataDir::Kept(path) => path,
            DataDir::Temp(dir) => dir.path(),
        }
    }

    fn sqlite(&self, name: &str) -> String {
        ferrite::up::sqlite_url(self.path(), name)
    }
}

fn listen() -> Result<(TcpListener, String), String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot listen: {e}"))?;
    let url = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    Ok((listener, url))
}

/// Placement + conductor (+ compute) in this process.
struct Stack {
    placement_url: String,
    conductor_url: String,
    compute_url: Option<String>,
    /// The conductor's state (its database handle writes the copies).
    conductor_db: Arc<ferrite_conductor::AppState>,
    /// Compute's own driver (storm only).
    compute_driver: Option<Arc<IronicDriver>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Result<(), String>>>,
    _dir: DataDir,
}

impl Stack {
    async fn start(
        dir: DataDir,
        with_compute: bool,
        builds: usize,
        randomize: bool,
    ) -> Result<Stack, String> {
        let (placement_listener, placement_url) = listen()?;
        let (conductor_listener, conductor_url) = listen()?;
        let (stop, rx) = watch::channel(false);
        let mut placement_config =
            ferrite_placement::Config::for_database(dir.sqlite("placement.db"));
        placement_config.randomize_allocation_candidates = randomize;
        let placement = ferrite_placement::prepare(placement_config)
            .await
            .map_err(|e| format!("placement: {e}"))?;
        let mut conductor_config =
            ferrite_conductor::Config::for_database(dir.sqlite("conductor.db"));
        conductor_config.host = "ferrite".into();
        conductor_config.bind = conductor_url.trim_start_matches("http://").to_string();
        let conductor = ferrite_conductor::prepare(conductor_config)
            .await
            .map_err(|e| format!("conductor: {e}"))?;
        let conductor_db = conductor.clone();
        let mut tasks = Vec::new();
        tasks.push(spawn_service(
            "placement",
            ferrite_placement::serve(placement_listener, placement, stopped(rx.clone())),
        ));
        tasks.push(spawn_service(
            "conductor",
            ferrite_conductor::serve(conductor_listener, conductor, stopped(rx.clone())),
        ));
        let mut compute_url = None;
        let mut compute_driver = None;
        if with_compute {
            // As in `ferrite up`: compute starts once the other two serve.
            let (compute_listener, url) = listen()?;
            let mut config = ferrite_compute::Config::for_database(dir.sqlite("compute.db"));
            config.bind = url.trim_start_matches("http://").to_string();
            config.placement_url = placement_url.clone();
            config.ironic_url = conductor_url.clone();
            config.host = "bench".into();
            config.max_concurrent_builds = builds;
            config.poll_interval = Duration::from_millis(200);
            config.max_connections = 16;
            let compute = ferrite_compute::prepare(config)
                .await
                .map_err(|e| format!("compute: {e}"))?;
            compute_driver = Some(compute.manager.driver.clone());
            tasks.push(spawn_service(
                "compute",
                ferrite_compute::serve(compute_listener, compute, stopped(rx.clone())),
            ));
            compute_url = Some(url);
        }
        Ok(Stack {
            placement_url,
            conductor_url,
            compute_url,
            conductor_db,
            compute_driver,
            stop,
            tasks,
            _dir: dir,
        })
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            match tokio::time::timeout(Duration::from_secs(30), task).await {
                Ok(Ok(Err(err))) => eprintln!("scale-bench: {err}"),
                Ok(Err(err)) => eprintln!("scale-bench: {err}"),
                Err(_) => eprintln!("scale-bench: a service did not stop in 30 s"),
                Ok(Ok(Ok(()))) => {}
            }
        }
    }

    fn driver(&self) -> IronicDriver {
        IronicDriver::new(DriverConfig {
            ironic_url: self.conductor_url.clone(),
            placement_url: self.placement_url.clone(),
            placement_token: "admin".into(),
            host: "bench".into(),
            conductor_group: None,
            shard: None,
            peers: Vec::new(),
            poll_interval: Duration::from_millis(200),
            deploy_timeout: Duration::from_secs(600),
        })
    }

    /// Enrolls `count` nodes: `fleet-0` through the API like `ferrite up`,
    /// the rest as storage copies of it (see the module comment).
    async fn enroll(&self, count: usize) -> Result<(), String> {
        if count == 0 {
            return Ok(());
        }
        let api = BaremetalClient::new(self.conductor_url.clone(), "latest");
        ferrite::up::enroll_fleet(&api, 1).await?;
        let db = &self.conductor_db.db;
        let template = storage::get_node(db.conn(), "fleet-0")
            .await
            .map_err(|e| format!("reading fleet-0: {e}"))?
            .ok_or("fleet-0 vanished")?;
        for (field, wanted) in [
            ("provision_state", "available"),
            ("power_state", "power off"),
            ("resource_class", "baremetal"),
        ] {
            if template.str_field(field) != Some(wanted) {
                return Err(format!(
                    "fleet-0 has {field} {:?}, not {wanted:?}",
                    template.str_field(field)
                ));
            }
        }
        let port_template =
            storage::list_ports(db.conn(), Some(template.id), None, None, None, false)
                .await
                .map_err(|e| format!("reading fleet-0's port: {e}"))?
                .into_iter()
                .next()
                .ok_or("fleet-0 has no port")?;
        let mut node_doc = template.doc.clone();
        node_doc.remove("reservation");
        let node_doc = Arc::new(node_doc);
        let port_doc = Arc::new(port_template.doc.clone());
        let results: Vec<Result<(), String>> = futures::stream::iter(1..count)
            .map(|i| {
                let db = db.clone();
                let node_doc = node_doc.clone();
                let port_doc = port_doc.clone();
                async move {
                    let (_, now) = storage::iso_now();
                    let uuid = uuid::Uuid::new_v4().to_string();
                    let mut doc = (*node_doc).clone();
                    doc.insert("uuid".into(), json!(uuid));
                    doc.insert("name".into(), json!(format!("fleet-{i}")));
                    for stamp in ["created_at", "updated_at", "provision_updated_at"] {
                        if doc.get(stamp).is_some_and(|v| !v.is_null()) {
                            doc.insert(stamp.into(), json!(now));
                        }
                    }
                    let node = storage::insert_node(&db, &doc)
                        .await
                        .map_err(|e| format!("storing fleet-{i}: {e}"))?;
                    let mut port = (*port_doc).clone();
                    port.insert("uuid".into(), json!(uuid::Uuid::new_v4().to_string()));
                    port.insert(
                        "address".into(),
                        json!(format!(
                            "52:54:{:02x}:{:02x}:{:02x}:{:02x}",
                            (i >> 24) & 0xff,
                            (i >> 16) & 0xff,
                            (i >> 8) & 0xff,
                            i & 0xff
                        )),
                    );
                    if port.contains_key("node_uuid") {
                        port.insert("node_uuid".into(), json!(uuid));
                    }
                    for stamp in ["created_at", "updated_at"] {
                        if port.get(stamp).is_some_and(|v| !v.is_null()) {
                            port.insert(stamp.into(), json!(now));
                        }
                    }
                    storage::insert_port(&db, node.id, &port)
                        .await
                        .map_err(|e| format!("storing fleet-{i}'s port: {e}"))?
                        .ok_or_else(|| format!("fleet-{i} vanished"))?;
                    Ok(())
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<()>, String>>()?;
        // Spot check through the API: the last node looks like fleet-0.
        let last = api
            .get_node(&format!("fleet-{}", count - 1))
            .await
            .map_err(|e| format!("reading back the last node: {e}"))?;
        if last["provision_state"] != "available"
            || last["power_state"] != "power off"
            || last["resource_class"] != "baremetal"
        {
            return Err(format!("the last node is not like fleet-0: {last}"));
        }
        Ok(())
    }
}

/// `VmRSS` and `VmHWM` of this process.
fn memory() -> (String, String) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    (field("VmRSS:"), field("VmHWM:"))
}

struct SyncFigures {
    nodes: usize,
    initial: Duration,
    steady: Duration,
    steady_placement_calls: usize,
}

async fn sync_bench(args: &Args, nodes: usize) -> Result<SyncFigures, String> {
    println!("== sync, {nodes} nodes");
    let dir = DataDir::new(args.db_dir.as_deref(), &format!("sync-{nodes}"))?;
    let stack = Stack::start(dir, false, 0, false).await?;
    let started = Instant::now();
    stack.enroll(nodes).await?;
    figure(
        &format!(
            "sync {nodes}: enroll (1 via API, {} via storage)",
            nodes - 1
        ),
        secs(started.elapsed()),
    );
    let driver = stack.driver();
    let started = Instant::now();
    let first = driver
        .sync()
        .await
        .map_err(|e| format!("initial sync: {e}"))?;
    let initial = started.elapsed();
    figure(&format!("sync {nodes}: initial"), secs(initial));
    report_sync(nodes, "initial", &first);
    if first.providers_created != nodes || first.provider_errors != 0 {
        return Err(format!(
            "initial sync did not create every provider: {first:?}"
        ));
    }
    let mut times = Vec::new();
    let mut reports = Vec::new();
    for run in 1..=3 {
        let started = Instant::now();
        let report = driver
            .sync()
            .await
            .map_err(|e| format!("steady sync {run}: {e}"))?;
        let took = started.elapsed();
        figure(&format!("sync {nodes}: steady {run}"), secs(took));
        report_sync(nodes, &format!("steady {run}"), &report);
        times.push(took);
        reports.push(report);
    }
    times.sort();
    let steady = times[1];
    figure(&format!("sync {nodes}: steady median"), secs(steady));
    let steady_placement_calls = reports.iter().map(|r| r.placement_calls).max().unwrap_or(0);
    let (rss, hwm) = memory();
    figure(&format!("sync {nodes}: VmRSS"), rss);
    figure(&format!("sync {nodes}: VmHWM"), hwm);
    drop(driver);
    stack.stop().await;
    Ok(SyncFigures {
        nodes,
        initial,
        steady,
        steady_placement_calls,
    })
}

fn report_sync(nodes: usize, which: &str, r: &SyncReport) {
    figure(
        &format!("sync {nodes}: {which} placement_calls"),
        r.placement_calls,
    );
    figure(
        &format!("sync {nodes}: {which} ironic_calls"),
        r.ironic_calls,
    );
    figure(
        &format!("sync {nodes}: {which} providers created/updated/deleted/errors"),
        format!(
            "{}/{}/{}/{}",
            r.providers_created, r.providers_updated, r.providers_deleted, r.provider_errors
        ),
    );
}

/// Compute and Placement over HTTP.
struct Http {
    client: reqwest::Client,
}

impl Http {
    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let mut request = self.client.request(method, url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| format!("{url}: {e}"))?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }
}

const COMPUTE: &[(&str, &str)] = &[
    ("X-Auth-Token", "admin:bench"),
    ("OpenStack-API-Version", "compute 2.61"),
];
const PLACEMENT: &[(&str, &str)] = &[
    ("X-Auth-Token", "admin"),
    ("OpenStack-API-Version", "placement 1.39"),
];

struct StormFigures {
    servers: usize,
    active: usize,
    error: usize,
    time: Duration,
    double_bookings: usize,
}

/// Every server (detail), following `limit`/`marker` pages.
async fn all_servers(http: &Http, compute: &str) -> Result<Vec<Value>, String> {
    let mut out: Vec<Value> = Vec::new();
    loop {
        let mut url = format!("{compute}/v2.1/servers/detail?limit=1000");
        if let Some(last) = out.last().and_then(|s| s["id"].as_str()) {
            url.push_str(&format!("&marker={last}"));
        }
        let (status, body) = http.call(reqwest::Method::GET, &url, COMPUTE, None).await?;
        if status != 200 {
            return Err(format!("server list answered {status}: {body}"));
        }
        let page = body["servers"].as_array().cloned().unwrap_or_default();
        let done = page.len() < 1000;
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}

async fn storm_bench(args: &Args) -> Result<StormFigures, String> {
    let count = args.storm;
    println!("== boot storm, {count} servers");
    let dir = DataDir::new(args.db_dir.as_deref(), "storm")?;
    let stack = Stack::start(
        dir,
        true,
        args.max_concurrent_builds,
        args.randomize_candidates,
    )
    .await?;
    figure(
        "storm: placement randomize_allocation_candidates",
        args.randomize_candidates,
    );
    let compute = stack.compute_url.clone().ok_or("compute did not start")?;
    let started = Instant::now();
    stack.enroll(count).await?;
    figure(
        &format!(
            "storm: enroll {count} nodes (1 via API, {} via storage)",
            count - 1
        ),
        secs(started.elapsed()),
    );
    let started = Instant::now();
    let report = stack
        .compute_driver
        .as_ref()
        .ok_or("compute has no driver")?
        .sync()
        .await
        .map_err(|e| format!("reporting the fleet to placement: {e}"))?;
    figure(
        "storm: initial sync (compute's driver)",
        secs(started.elapsed()),
    );
    if report.providers_created != count {
        return Err(format!(
            "initial sync created too few providers: {report:?}"
        ));
    }

    let http = Http {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(args.concurrency)
            .build()
            .map_err(|e| e.to_string())?,
    };
    let (status, body) = http
        .call(
            reqwest::Method::POST,
            &format!("{compute}/v2.1/flavors"),
            COMPUTE,
            Some(json!({"flavor": {"name": "baremetal", "ram": 16384, "vcpus": 8, "disk": 100}})),
        )
        .await?;
    if status != 200 {
        return Err(format!("flavor create answered {status}: {body}"));
    }
    let flavor = body["flavor"]["id"].as_str().unwrap_or("").to_string();
    let (status, body) = http
        .call(
            reqwest::Method::POST,
            &format!("{compute}/v2.1/flavors/{flavor}/os-extra_specs"),
            COMPUTE,
            Some(json!({"extra_specs": {
                "resources:CUSTOM_BAREMETAL": "1",
                "resources:VCPU": "0",
                "resources:MEMORY_MB": "0",
                "resources:DISK_GB": "0",
            }})),
        )
        .await?;
    if status != 200 {
        return Err(format!("flavor extra specs answered {status}: {body}"));
    }
    let (status, body) = http
        .call(
            reqwest::Method::POST,
            &format!("{compute}/v2/images"),
            COMPUTE,
            Some(json!({
                "name": "bench",
                "url": "http://127.0.0.1:8080/bench.raw",
                "disk_format": "raw",
                "container_format": "bare",
            })),
        )
        .await?;
    if !(200..300).contains(&status) {
        return Err(format!("image create answered {status}: {body}"));
    }
    let image = body["id"].as_str().unwrap_or("").to_string();

    let conflicts_before = ferrite_compute::scheduler::CLAIM_CONFLICTS.load(Ordering::Relaxed);
    let reschedules_before = ferrite_compute::scheduler::RESCHEDULES.load(Ordering::Relaxed);
    let started = Instant::now();
    let created: Vec<Result<String, String>> = futures::stream::iter(0..count)
        .map(|i| {
            let http = &http;
            let compute = &compute;
            let flavor = &flavor;
            let image = &image;
            async move {
                let (status, body) = http
                    .call(
                        reqwest::Method::POST,
                        &format!("{compute}/v2.1/servers"),
                        COMPUTE,
                        Some(json!({"server": {
                            "name": format!("storm-{i}"),
                            "flavorRef": flavor,
                            "imageRef": image,
                            "networks": "none",
                        }})),
                    )
                    .await?;
                if status != 202 {
                    return Err(format!("server create answered {status}: {body}"));
                }
                Ok(body["server"]["id"].as_str().unwrap_or("").to_string())
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let mut create_errors = 0;
    for result in &created {
        if let Err(err) = result {
            create_errors += 1;
            if create_errors <= 3 {
                eprintln!("scale-bench: {err}");
            }
        }
    }
    figure("storm: creates accepted", secs(started.elapsed()));
    figure("storm: create errors", create_errors);

    let deadline = Duration::from_secs(args.storm_timeout);
    let mut last_line = String::new();
    let servers = loop {
        let servers = all_servers(&http, &compute).await?;
        let active = servers.iter().filter(|s| s["status"] == "ACTIVE").count();
        let error = servers.iter().filter(|s| s["status"] == "ERROR").count();
        let line = format!("{active} ACTIVE, {error} ERROR of {}", servers.len());
        if line != last_line {
            figure(
                &format!("storm: at {:.1} s", started.elapsed().as_secs_f64()),
                &line,
            );
            last_line = line;
        }
        if active + error >= servers.len() {
            break servers;
        }
        if started.elapsed() > deadline {
            return Err(format!(
                "storm not settled after {} s: {last_line}",
                args.storm_timeout
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let time = started.elapsed();
    let active: Vec<&Value> = servers.iter().filter(|s| s["status"] == "ACTIVE").collect();
    let error = servers.iter().filter(|s| s["status"] == "ERROR").count();
    figure("storm: time to settle", secs(time));
    figure("storm: ACTIVE", active.len());
    figure("storm: ERROR", error);
    if let Some(failed) = servers.iter().find(|s| s["status"] == "ERROR") {
        figure("storm: first fault", &failed["fault"]["message"]);
    }
    figure(
        "storm: claims lost to 409",
        ferrite_compute::scheduler::CLAIM_CONFLICTS.load(Ordering::Relaxed) - conflicts_before,
    );
    figure(
        "storm: reschedules",
        ferrite_compute::scheduler::RESCHEDULES.load(Ordering::Relaxed) - reschedules_before,
    );

    // Double bookings: two ACTIVE servers on one node, or a provider used
    // more than once.
    let mut nodes = std::collections::BTreeMap::<String, usize>::new();
    for server in &active {
        let node = server["OS-EXT-SRV-ATTR:hypervisor_hostname"]
            .as_str()
            .unwrap_or("")
            .to_string();
        *nodes.entry(node).or_default() += 1;
    }
    let shared_nodes =
        nodes.values().filter(|n| **n > 1).count() + nodes.get("").map(|_| 1).unwrap_or(0);
    figure(
        "storm: ACTIVE servers on shared or unknown nodes",
        shared_nodes,
    );
    let placement = &stack.placement_url;
    let (status, body) = http
        .call(
            reqwest::Method::GET,
            &format!("{placement}/resource_providers"),
            PLACEMENT,
            None,
        )
        .await?;
    if status != 200 {
        return Err(format!("provider list answered {status}: {body}"));
    }
    let providers: Vec<String> = body["resource_providers"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["uuid"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let usages: Vec<Result<i64, String>> = futures::stream::iter(providers.iter())
        .map(|uuid| {
            let http = &http;
            async move {
                let (status, body) = http
                    .call(
                        reqwest::Method::GET,
                        &format!("{placement}/resource_providers/{uuid}/usages"),
                        PLACEMENT,
                        None,
                    )
                    .await?;
                if status != 200 {
                    return Err(format!("usages of {uuid} answered {status}: {body}"));
                }
                Ok(body["usages"]
                    .as_object()
                    .map(|u| u.values().filter_map(Value::as_i64).sum())
                    .unwrap_or(0))
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let usages = usages.into_iter().collect::<Result<Vec<i64>, String>>()?;
    let overbooked = usages.iter().filter(|u| **u > 1).count();
    let used = usages.iter().filter(|u| **u >= 1).count();
    figure("storm: providers", providers.len());
    figure("storm: providers in use", used);
    figure("storm: providers with usage > 1", overbooked);
    let (rss, hwm) = memory();
    figure("storm: VmRSS", rss);
    figure("storm: VmHWM", hwm);
    stack.stop().await;
    Ok(StormFigures {
        servers: created.len(),
        active: active.len(),
        error,
        time,
        double_bookings: shared_nodes + overbooked,
    })
}

async fn run(args: Args) -> Result<(), String> {
    let mut syncs = Vec::new();
    for &nodes in &args.nodes {
        if nodes == 0 {
            continue;
        }
        syncs.push(sync_bench(&args, nodes).await?);
    }
    let storm = if args.storm > 0 {
        Some(storm_bench(&args).await?)
    } else {
        None
    };
    let mut parts = Vec::new();
    if let Some(sync) = syncs.last() {
        parts.push(format!(
            "sync {} nodes initial {:.1} s, steady {:.2} s ({} placement calls)",
            sync.nodes,
            sync.initial.as_secs_f64(),
            sync.steady.as_secs_f64(),
            sync.steady_placement_calls
        ));
    }
    if let Some(storm) = &storm {
        parts.push(format!(
            "storm {}/{} ACTIVE in {:.1} s ({} ERROR), {} double bookings",
            storm.active,
            storm.servers,
            storm.time.as_secs_f64(),
            storm.error,
            storm.double_bookings
        ));
    }
    println!("scale-bench: {}", parts.join("; "));
    Ok(())
}
