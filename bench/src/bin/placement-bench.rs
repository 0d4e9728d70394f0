//! `placement-bench`: Ferrite's Placement against upstream OpenStack Placement
//! (`openstack-placement==16.0.0` under gunicorn), on the same database kind,
//! with the same fleet loaded through the HTTP API.
//!
//! One run starts both servers, loads the fleet into each, compares their
//! allocation candidates, measures `GET /allocation_candidates` latency at
//! concurrency 1 and 8, runs a boot storm (16 concurrent schedulers claiming
//! until nothing is left), scans every provider for over-allocation, samples
//! the servers' peak RSS and prints one table. See `scripts/BENCH.md`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use ferrite_placement_client::PlacementClient;
use futures::stream::{self, StreamExt};
use reqwest::Method;
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

const UPSTREAM_REQS: &[&str] = &[
    "openstack-placement==16.0.0",
    "gunicorn==23.0.0",
    "psycopg2-binary==2.9.10",
    "PyMySQL==1.1.1",
];
const VENV_STAMP: &str = "bench-v1";
const PROJECT_ID: &str = "bench-project";
const USER_ID: &str = "bench-user";
const BAREMETAL_CLASSES: [&str; 4] = [
    "CUSTOM_BAREMETAL_GOLD",
    "CUSTOM_BAREMETAL_SILVER",
    "CUSTOM_BAREMETAL_BRONZE",
    "CUSTOM_BAREMETAL_IRON",
];
const CUSTOM_TRAITS: [&str; 2] = ["CUSTOM_RAID", "CUSTOM_NIC_25G"];
const BAREMETAL_AGGREGATES: usize = 10;
/// Re-queries a scheduler makes for one boot before it gives up on it.
const MAX_REQUERIES: u32 = 5;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Shape {
    /// N root providers, one unit of one of four custom bare-metal classes each.
    Baremetal,
    /// N compute hosts with two NUMA children each, plus one shared disk pool.
    Nested,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum DbKind {
    Sqlite,
    Postgres,
    Mysql,
}

#[derive(Parser, Debug)]
#[command(
    name = "placement-bench",
    about = "Benchmark Ferrite's Placement against upstream OpenStack Placement"
)]
struct Args {
    /// Fleet size: bare-metal nodes, or compute hosts for --shape nested.
    #[arg(long, default_value_t = 1000)]
    providers: usize,
    #[arg(long, value_enum, default_value_t = Shape::Baremetal)]
    shape: Shape,
    #[arg(long, value_enum, default_value_t = DbKind::Sqlite)]
    db: DbKind,
    /// Candidate requests measured at concurrency 1 (twice as many at the high concurrency).
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// The high concurrency of the latency measurement.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Requests in flight while loading the fleet and scanning usages.
    #[arg(long, default_value_t = 8)]
    load_concurrency: usize,
    /// Skip upstream (for very large fleets).
    #[arg(long)]
    ours_only: bool,
    /// Skip the boot storm.
    #[arg(long)]
    skip_storm: bool,
    /// `randomize_allocation_candidates` on both servers (what Ironic
    /// deployments configure so that schedulers do not all pick the same
    /// nodes); `--randomize false` measures the default.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    randomize: bool,
    /// Run the boot storm for --shape nested too (it runs for baremetal by default).
    #[arg(long)]
    storm: bool,
    /// Concurrent schedulers in the boot storm.
    #[arg(long, default_value_t = 16)]
    schedulers: usize,
    /// Stop the storm after this many successful claims (0: until nothing is left).
    #[arg(long, default_value_t = 0)]
    storm_max_boots: u64,
    /// Wall-clock bound of one storm, in seconds.
    #[arg(long, default_value_t = 900)]
    storm_timeout: u64,
    /// Skip the full (unlimited) candidate comparison between the servers.
    #[arg(long)]
    no_compare: bool,
    /// Our placement binary (default: `placement` next to this executable).
    #[arg(long)]
    ours_bin: Option<PathBuf>,
    /// gunicorn worker processes for upstream.
    #[arg(long, default_value_t = 4)]
    upstream_workers: usize,
    /// gunicorn threads per worker for upstream (1: sync workers).
    #[arg(long, default_value_t = 1)]
    upstream_threads: usize,
    /// Virtualenv for upstream (built on first use).
    #[arg(long, env = "FERRITE_BENCH_VENV")]
    venv: Option<PathBuf>,
    /// Python used to create the virtualenv.
    #[arg(long, default_value = "python3")]
    python: String,
    /// The repository's scripts/ directory (holds conformance/upstream_server.py).
    #[arg(long)]
    scripts_dir: Option<PathBuf>,
    /// PostgreSQL server URL (databases are created and dropped on it).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/")]
    postgres_url: String,
    /// MySQL/MariaDB server URL (databases are created and dropped on it).
    #[arg(long, default_value = "mysql://root@127.0.0.1:3306/")]
    mysql_url: String,
    /// Seconds a server gets to answer `GET /`.
    #[arg(long, default_value_t = 120)]
    startup_timeout: u64,
    /// Keep the temp dir (databases, server logs).
    #[arg(long)]
    keep: bool,
}

// ---------------------------------------------------------------- small utils

/// xorshift64*: good enough to pick candidates.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = uuid::Uuid::new_v4().as_u128() as u64;
        Rng(seed | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn free_port() -> Res<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn log(msg: impl AsRef<str>) {
    eprintln!("bench: {}", msg.as_ref());
}

// ------------------------------------------------------------ processes, RSS

/// A server process (and, for upstream, its gunicorn workers).
struct Proc {
    label: &'static str,
    child: Child,
    log_path: PathBuf,
    /// Peak of the sum of VmHWM over the process tree, in kB.
    peak_kb: Arc<AtomicU64>,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Lines of the log that look like server-side errors.
    fn log_errors(&self) -> (usize, Vec<String>) {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let hits: Vec<String> = text
            .lines()
            .map(strip_ansi)
            .filter(|l| {
                l.contains("ERROR")
                    || l.contains("Traceback")
                    || l.contains("panicked")
                    || l.contains(" WARN ")
            })
            .map(|l| l.chars().take(300).collect())
            .collect();
        let n = hits.len();
        (n, hits.into_iter().take(4).collect())
    }

    /// SIGTERM to the process group, SIGKILL after 5 s.
    fn stop(&mut self) {
        if !self.alive() {
            return;
        }
        let group = format!("-{}", self.pid());
        let _ = Command::new("kill")
            .args(["-TERM", "--", &group])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !self.alive() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The line without terminal colour sequences (`ESC [ ... letter`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn vm_hwm_kb(pid: u32) -> u64 {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `root` and all its descendants.
fn process_tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(kids) = children.get(&out[i]) {
            out.extend(kids.iter().copied());
        }
        i += 1;
    }
    out
}

/// Samples the tree's summed VmHWM every 200 ms until `stop`.
fn spawn_rss_sampler(root: u32, peak: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let sum: u64 = process_tree(root).into_iter().map(vm_hwm_kb).sum();
            peak.fetch_max(sum, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(200));
        }
    });
}

// ------------------------------------------------------------------ HTTP side

#[derive(Default)]
struct HttpStats {
    requests: AtomicU64,
    status_5xx: AtomicU64,
    transport_errors: AtomicU64,
    /// Loading steps repeated after a 5xx.
    retries: AtomicU64,
    samples: Mutex<Vec<String>>,
}

impl HttpStats {
    fn sample(&self, what: String) {
        if let Ok(mut samples) = self.samples.lock() {
            if samples.len() < 4 {
                samples.push(what);
            }
        }
    }
}

struct Server {
    label: &'static str,
    client: PlacementClient,
    stats: HttpStats,
}

struct Reply {
    status: u16,
    body: Value,
}

impl Server {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        self.call_timeout(method, path, body, Duration::from_secs(120))
            .await
    }

    async fn call_timeout(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Reply, String> {
        let mut builder = self.client.request(method.clone(), path).timeout(timeout);
        if let Some(body) = body {
            builder = builder.json(body);
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let outcome = async {
            let response = builder.send().await?;
            let status = response.status().as_u16();
            let text = response.text().await?;
            Ok::<_, reqwest::Error>((status, text))
        }
        .await;
        match outcome {
            Ok((status, text)) => {
                if status >= 500 {
                    self.stats.status_5xx.fetch_add(1, Ordering::Relaxed);
                    let short: String = text.chars().take(300).collect();
                    self.stats
                        .sample(format!("{method} {path} -> {status}: {short}"));
                }
                let body = serde_json::from_str(&text).unwrap_or(Value::Null);
                Ok(Reply { status, body })
            }
            Err(err) => {
                self.stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                let msg = format!("{method} {path} -> transport error: {err}");
                self.stats.sample(msg.clone());
                Err(msg)
            }
        }
    }

    /// A call that must answer with one of `ok`.
    async fn must(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        ok: &[u16],
    ) -> Result<Value, String> {
        let reply = self.call(method.clone(), path, body).await?;
        if ok.contains(&reply.status) {
            Ok(reply.body)
        } else {
            let detail = reply.body["errors"][0]["detail"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| reply.body.to_string());
            Err(format!("{method} {path} -> {}: {detail}", reply.status))
        }
    }

    /// `must`, repeated (up to 8 times, with a short back-off) while the
    /// server answers 5xx: SQLite behind several upstream processes answers
    /// "database is locked" under concurrent writes. Used for loading only;
    /// every retry is counted and reported.
    async fn must_retry(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        ok: &[u16],
    ) -> Result<Value, String> {
        let mut attempt = 0;
        loop {
            let reply = self.call(method.clone(), path, body).await?;
            if ok.contains(&reply.status) {
                return Ok(reply.body);
            }
            attempt += 1;
            if reply.status < 500 || attempt >= 8 {
                let detail = reply.body["errors"][0]["detail"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| reply.body.to_string());
                return Err(format!("{method} {path} -> {}: {detail}", reply.status));
            }
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
        }
    }

    async fn wait_ready(&self, proc: &mut Proc, timeout: Duration) -> Res<Duration> {
        let start = Instant::now();
        loop {
            let ready = self
                .client
                .request(Method::GET, "/")
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok();
            if ready {
                return Ok(start.elapsed());
            }
            if !proc.alive() {
                return Err(format!(
                    "{} server exited during startup; log tail:\n{}",
                    proc.label,
                    proc.log_tail(30)
                )
                .into());
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "{} server did not answer GET / within {timeout:?}; log tail:\n{}",
                    proc.label,
                    proc.log_tail(30)
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

// ---------------------------------------------------------------------- fleet

#[derive(Clone, Debug)]
struct ProviderSpec {
    uuid: String,
    name: String,
    parent: Option<String>,
    /// (class, total, max_unit)
    inventories: Vec<(String, i64, i64)>,
    traits: Vec<String>,
    aggregates: Vec<String>,
}

struct Fleet {
    /// Units of work; the providers of one unit are created in order (parents first).
    units: Vec<Vec<ProviderSpec>>,
    /// The measured candidate query (without `limit`).
    query: String,
    /// Providers whose capacity the storm's query can claim: (uuid, class).
    storm_targets: Vec<(String, String)>,
}

impl Fleet {
    fn providers(&self) -> usize {
        self.units.iter().map(Vec::len).sum()
    }

    fn all(&self) -> impl Iterator<Item = &ProviderSpec> {
        self.units.iter().flatten()
    }
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn baremetal_fleet(n: usize) -> Fleet {
    let aggregates: Vec<String> = (0..BAREMETAL_AGGREGATES).map(|_| new_uuid()).collect();
    let mut units = Vec::with_capacity(n);
    let mut storm_targets = Vec::new();
    for i in 0..n {
        let class = BAREMETAL_CLASSES[i % BAREMETAL_CLASSES.len()].to_string();
        let mut traits = Vec::new();
        if i % 3 != 0 {
            traits.push("CUSTOM_RAID".to_string());
        }
        traits.push(if i % 2 == 0 {
            "HW_CPU_X86_AVX2".to_string()
        } else {
            "HW_CPU_X86_SSE42".to_string()
        });
        if i % 5 == 0 {
            traits.push("CUSTOM_NIC_25G".to_string());
        }
        let uuid = new_uuid();
        if class == BAREMETAL_CLASSES[0] && traits.iter().any(|t| t == "CUSTOM_RAID") {
            storm_targets.push((uuid.clone(), class.clone()));
        }
        units.push(vec![ProviderSpec {
            uuid,
            name: format!("bench-node-{i:06}"),
            parent: None,
            inventories: vec![(class, 1, 1)],
            traits,
            aggregates: vec![aggregates[i % aggregates.len()].clone()],
        }]);
    }
    Fleet {
        units,
        query: "resources=CUSTOM_BAREMETAL_GOLD:1&required=CUSTOM_RAID".into(),
        storm_targets,
    }
}

fn nested_fleet(n: usize) -> Fleet {
    let aggregate = new_uuid();
    let mut units = Vec::with_capacity(n + 1);
    units.push(vec![ProviderSpec {
        uuid: new_uuid(),
        name: "bench-shared-disk".into(),
        parent: None,
        inventories: vec![("DISK_GB".into(), 100_000, 100_000)],
        traits: vec!["MISC_SHARES_VIA_AGGREGATE".into()],
        aggregates: vec![aggregate.clone()],
    }]);
    for i in 0..n {
        let root = new_uuid();
        let mut unit = vec![ProviderSpec {
            uuid: root.clone(),
            name: format!("bench-host-{i:06}"),
            parent: None,
            inventories: Vec::new(),
            traits: vec!["HW_CPU_X86_AVX2".into()],
            aggregates: vec![aggregate.clone()],
        }];
        for numa in 0..2 {
            unit.push(ProviderSpec {
                uuid: new_uuid(),
                name: format!("bench-host-{i:06}-numa{numa}"),
                parent: Some(root.clone()),
                inventories: vec![
                    ("VCPU".into(), 16, 16),
                    ("MEMORY_MB".into(), 65_536, 65_536),
                ],
                traits: vec!["HW_NUMA_ROOT".into()],
                aggregates: Vec::new(),
            });
        }
        units.push(unit);
    }
    Fleet {
        units,
        query: "resources=VCPU:2,MEMORY_MB:4096,DISK_GB:10".into(),
        storm_targets: Vec::new(),
    }
}

async fn load_provider(server: &Server, p: &ProviderSpec) -> Result<(), String> {
    let mut body = json!({"name": p.name, "uuid": p.uuid});
    if let Some(parent) = &p.parent {
        body["parent_provider_uuid"] = json!(parent);
    }
    let created = server
        .must_retry(Method::POST, "/resource_providers", Some(&body), &[200])
        .await?;
    let mut generation = created["generation"]
        .as_i64()
        .ok_or_else(|| format!("POST /resource_providers: no generation in {created}"))?;
    let base = format!("/resource_providers/{}", p.uuid);
    if !p.inventories.is_empty() {
        let inventories: serde_json::Map<String, Value> = p
            .inventories
            .iter()
            .map(|(class, total, max_unit)| {
                (class.clone(), json!({"total": total, "max_unit": max_unit}))
            })
            .collect();
        let body = json!({"resource_provider_generation": generation, "inventories": inventories});
        let v = server
            .must_retry(
                Method::PUT,
                &format!("{base}/inventories"),
                Some(&body),
                &[200],
            )
            .await?;
        generation = v["resource_provider_generation"]
            .as_i64()
            .unwrap_or(generation + 1);
    }
    if !p.traits.is_empty() {
        let body = json!({"resource_provider_generation": generation, "traits": p.traits});
        let v = server
            .must_retry(Method::PUT, &format!("{base}/traits"), Some(&body), &[200])
            .await?;
        generation = v["resource_provider_generation"]
            .as_i64()
            .unwrap_or(generation + 1);
    }
    if !p.aggregates.is_empty() {
        let body = json!({"resource_provider_generation": generation, "aggregates": p.aggregates});
        server
            .must_retry(
                Method::PUT,
                &format!("{base}/aggregates"),
                Some(&body),
                &[200],
            )
            .await?;
    }
    Ok(())
}

struct LoadResult {
    seconds: f64,
    providers: usize,
    errors: usize,
}

async fn load_fleet(server: &Server, fleet: &Fleet, concurrency: usize) -> Res<LoadResult> {
    for class in BAREMETAL_CLASSES {
        server
            .must_retry(
                Method::PUT,
                &format!("/resource_classes/{class}"),
                None,
                &[201, 204],
            )
            .await?;
    }
    for t in CUSTOM_TRAITS {
        server
            .must_retry(Method::PUT, &format!("/traits/{t}"), None, &[201, 204])
            .await?;
    }
    let start = Instant::now();
    // The first unit (the shared pool for nested) goes alone, before the rest.
    let mut errors = Vec::new();
    let (first, rest) = fleet.units.split_first().ok_or("empty fleet")?;
    for p in first {
        if let Err(e) = load_provider(server, p).await {
            errors.push(e);
        }
    }
    let total = rest.len();
    let done = AtomicU64::new(0);
    let results: Vec<Result<(), String>> = stream::iter(rest.iter())
        .map(|unit| {
            let done = &done;
            async move {
                let mut out = Ok(());
                for p in unit {
                    if let Err(e) = load_provider(server, p).await {
                        out = Err(e);
                        break;
                    }
                }
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                if total >= 5000 && d.is_multiple_of((total as u64 / 10).max(1)) {
                    log(format!(
                        "  {}: {d}/{total} units loaded ({:.0} s)",
                        server.label,
                        start.elapsed().as_secs_f64()
                    ));
                }
                out
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    errors.extend(results.into_iter().filter_map(Result::err));
    let seconds = start.elapsed().as_secs_f64();
    for e in errors.iter().take(5) {
        log(format!("  {} load error: {e}", server.label));
    }
    Ok(LoadResult {
        seconds,
        providers: fleet.providers(),
        errors: errors.len(),
    })
}

// ----------------------------------------------------------------- candidates

/// Allocation requests as canonical strings, sorted: comparable across servers.
fn canonical_requests(body: &Value) -> Vec<String> {
    let mut out: Vec<String> = body["allocation_requests"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|ar| {
                    let mut parts = Vec::new();
                    if let Some(allocs) = ar["allocations"].as_object() {
                        for (rp, a) in allocs {
                            if let Some(res) = a["resources"].as_object() {
                                for (class, amount) in res {
                                    parts.push(format!("{rp}/{class}={amount}"));
                                }
                            }
                        }
                    }
                    parts.sort();
                    parts.join(",")
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

struct Latency {
    cold_ms: f64,
    c1: Stats,
    cn: Stats,
    page_len: usize,
}

struct Stats {
    p50: f64,
    p95: f64,
    p99: f64,
    rps: f64,
    errors: usize,
}

async fn timed_get(server: &Server, path: &str) -> Result<(f64, usize), String> {
    let start = Instant::now();
    let reply = server.call(Method::GET, path, None).await?;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    if reply.status != 200 {
        return Err(format!("GET {path} -> {}", reply.status));
    }
    let n = reply.body["allocation_requests"]
        .as_array()
        .map_or(0, Vec::len);
    Ok((ms, n))
}

async fn run_batch(server: &Server, path: &str, count: usize, concurrency: usize) -> Stats {
    let start = Instant::now();
    let results: Vec<Result<(f64, usize), String>> = stream::iter(0..count)
        .map(|_| timed_get(server, path))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let wall = start.elapsed().as_secs_f64();
    let mut ms: Vec<f64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|(ms, _)| *ms))
        .collect();
    let errors = results.iter().filter(|r| r.is_err()).count();
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        log(format!("  {}: {e}", server.label));
    }
    ms.sort_by(f64::total_cmp);
    Stats {
        p50: percentile(&ms, 0.50),
        p95: percentile(&ms, 0.95),
        p99: percentile(&ms, 0.99),
        rps: ms.len() as f64 / wall,
        errors,
    }
}

async fn measure_latency(server: &Server, query: &str, args: &Args) -> Res<Latency> {
    let path = format!("/allocation_candidates?{query}&limit=50");
    let (cold_ms, page_len) = timed_get(server, &path).await?;
    // Warm-up, not recorded.
    for _ in 0..5 {
        let _ = timed_get(server, &path).await;
    }
    let c1 = run_batch(server, &path, args.requests, 1).await;
    let cn = run_batch(server, &path, args.requests * 2, args.concurrency).await;
    Ok(Latency {
        cold_ms,
        c1,
        cn,
        page_len,
    })
}

// ---------------------------------------------------------------------- storm

#[derive(Default)]
struct StormCounters {
    claims: AtomicU64,
    conflicts: AtomicU64,
    other_errors: AtomicU64,
    failed_boots: AtomicU64,
    gets: AtomicU64,
    get_errors: AtomicU64,
}

struct StormResult {
    seconds: f64,
    claims: u64,
    conflicts: u64,
    other_errors: u64,
    failed_boots: u64,
    gets: u64,
    get_errors: u64,
    timed_out: bool,
    left_after: Option<usize>,
}

async fn scheduler(
    server: &Server,
    path: &str,
    counters: &StormCounters,
    max_boots: u64,
    deadline: Instant,
    timed_out: &AtomicBool,
) {
    let mut rng = Rng::new();
    'boots: loop {
        if max_boots > 0 && counters.claims.load(Ordering::Relaxed) >= max_boots {
            return;
        }
        let mut requeries = 0;
        loop {
            if Instant::now() > deadline {
                timed_out.store(true, Ordering::Relaxed);
                return;
            }
            counters.gets.fetch_add(1, Ordering::Relaxed);
            let reply = match server.call(Method::GET, path, None).await {
                Ok(r) if r.status == 200 => r,
                _ => {
                    counters.get_errors.fetch_add(1, Ordering::Relaxed);
                    requeries += 1;
                    if requeries > MAX_REQUERIES {
                        counters.failed_boots.fetch_add(1, Ordering::Relaxed);
                        continue 'boots;
                    }
                    continue;
                }
            };
            let mut candidates: Vec<Value> = reply.body["allocation_requests"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if candidates.is_empty() {
                return;
            }
            rng.shuffle(&mut candidates);
            for candidate in candidates {
                let consumer = new_uuid();
                let body = json!({
                    "allocations": candidate["allocations"],
                    "project_id": PROJECT_ID,
                    "user_id": USER_ID,
                    "consumer_generation": null,
                    "consumer_type": "INSTANCE",
                });
                match server
                    .call(
                        Method::PUT,
                        &format!("/allocations/{consumer}"),
                        Some(&body),
                    )
                    .await
                {
                    Ok(r) if r.status == 204 => {
                        counters.claims.fetch_add(1, Ordering::Relaxed);
                        continue 'boots;
                    }
                    Ok(r) if r.status == 409 => {
                        counters.conflicts.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        counters.other_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            requeries += 1;
            if requeries > MAX_REQUERIES {
                counters.failed_boots.fetch_add(1, Ordering::Relaxed);
                continue 'boots;
            }
        }
    }
}

async fn boot_storm(server: &Server, query: &str, args: &Args) -> StormResult {
    let path = format!("/allocation_candidates?{query}&limit=10");
    let counters = StormCounters::default();
    let timed_out = AtomicBool::new(false);
    let deadline = Instant::now() + Duration::from_secs(args.storm_timeout);
    let start = Instant::now();
    let schedulers = (0..args.schedulers.max(1)).map(|_| {
        scheduler(
            server,
            &path,
            &counters,
            args.storm_max_boots,
            deadline,
            &timed_out,
        )
    });
    futures::future::join_all(schedulers).await;
    let seconds = start.elapsed().as_secs_f64();
    // Does the server itself still offer anything?
    let left_after = match server.call(Method::GET, &path, None).await {
        Ok(r) if r.status == 200 => r.body["allocation_requests"].as_array().map(Vec::len),
        _ => None,
    };
    StormResult {
        seconds,
        claims: counters.claims.load(Ordering::Relaxed),
        conflicts: counters.conflicts.load(Ordering::Relaxed),
        other_errors: counters.other_errors.load(Ordering::Relaxed),
        failed_boots: counters.failed_boots.load(Ordering::Relaxed),
        gets: counters.gets.load(Ordering::Relaxed),
        get_errors: counters.get_errors.load(Ordering::Relaxed),
        timed_out: timed_out.load(Ordering::Relaxed),
        left_after,
    }
}

struct ScanResult {
    seconds: f64,
    over_allocated: usize,
    /// Free units left on the storm's target providers (usage vs capacity).
    unclaimed: i64,
    /// Units used on the storm's target providers.
    target_used: i64,
    errors: usize,
}

/// Every provider's inventories and usages: over-allocations and leftovers.
async fn scan_usages(server: &Server, fleet: &Fleet, concurrency: usize) -> ScanResult {
    let start = Instant::now();
    let targets: HashMap<&str, &str> = fleet
        .storm_targets
        .iter()
        .map(|(u, c)| (u.as_str(), c.as_str()))
        .collect();
    let results: Vec<Result<(bool, i64, i64), String>> = stream::iter(fleet.all())
        .map(|p| {
            let targets = &targets;
            async move {
                let base = format!("/resource_providers/{}", p.uuid);
                let inv = server
                    .must(Method::GET, &format!("{base}/inventories"), None, &[200])
                    .await?;
                let usages = server
                    .must(Method::GET, &format!("{base}/usages"), None, &[200])
                    .await?;
                let mut over = false;
                let mut free = 0;
                let mut used_target = 0;
                let empty = serde_json::Map::new();
                for (class, record) in inv["inventories"].as_object().unwrap_or(&empty) {
                    let total = record["total"].as_i64().unwrap_or(0);
                    let reserved = record["reserved"].as_i64().unwrap_or(0);
                    let ratio = record["allocation_ratio"].as_f64().unwrap_or(1.0);
                    let capacity = ((total - reserved) as f64 * ratio).floor() as i64;
                    let used = usages["usages"][class].as_i64().unwrap_or(0);
                    if used > capacity {
                        over = true;
                        log(format!(
                            "  {}: OVER-ALLOCATION on {} {class}: used {used} > capacity {capacity}",
                            server.label, p.uuid
                        ));
                    }
                    if targets.get(p.uuid.as_str()) == Some(&class.as_str()) {
                        free += (capacity - used).max(0);
                        used_target += used;
                    }
                }
                Ok((over, free, used_target))
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut scan = ScanResult {
        seconds: start.elapsed().as_secs_f64(),
        over_allocated: 0,
        unclaimed: 0,
        target_used: 0,
        errors: 0,
    };
    for r in results {
        match r {
            Ok((over, free, used)) => {
                scan.over_allocated += usize::from(over);
                scan.unclaimed += free;
                scan.target_used += used;
            }
            Err(e) => {
                if scan.errors == 0 {
                    log(format!("  {} scan error: {e}", server.label));
                }
                scan.errors += 1;
            }
        }
    }
    scan
}

// ------------------------------------------------------------------ databases

struct Databases {
    /// (admin URL, database name) to drop at the end.
    created: Vec<(String, String)>,
}

fn with_database(server_url: &str, db: &str) -> String {
    format!("{}/{db}", server_url.trim_end_matches('/'))
}

async fn create_database(kind: DbKind, server_url: &str, name: &str) -> Res<()> {
    let admin = match kind {
        DbKind::Postgres => with_database(server_url, "postgres"),
        _ => with_database(server_url, "mysql"),
    };
    let conn = sea_orm::Database::connect(&admin).await?;
    conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
        .await?;
    conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    conn.close().await?;
    Ok(())
}

async fn drop_databases(kind: DbKind, dbs: &Databases) {
    for (server_url, name) in &dbs.created {
        let admin = match kind {
            DbKind::Postgres => with_database(server_url, "postgres"),
            _ => with_database(server_url, "mysql"),
        };
        let sql = match kind {
            DbKind::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            _ => format!("DROP DATABASE IF EXISTS {name}"),
        };
        let outcome = async {
            let conn = sea_orm::Database::connect(&admin).await?;
            conn.execute_unprepared(&sql).await?;
            conn.close().await?;
            Ok::<_, sea_orm::DbErr>(())
        }
        .await;
        if let Err(e) = outcome {
            log(format!("could not drop database {name}: {e}"));
        }
    }
}

// ----------------------------------------------------------------- upstream venv

fn default_venv() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache/ferrite/placement-bench-venv")
}

fn venv_ok(venv: &Path, stamp: &str) -> bool {
    let py = venv.join("bin/python");
    if !py.exists() {
        return false;
    }
    if std::fs::read_to_string(venv.join(".ferrite-stamp"))
        .ok()
        .as_deref()
        != Some(stamp)
    {
        return false;
    }
    Command::new(&py)
        .args([
            "-c",
            "import placement, gunicorn, psycopg2, pymysql, os_traits, os_resource_classes",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ensure_venv(venv: &Path, python: &str) -> Res<PathBuf> {
    let stamp = format!("{VENV_STAMP} {}\n", UPSTREAM_REQS.join(" "));
    if venv_ok(venv, &stamp) {
        return Ok(venv.join("bin/python"));
    }
    log(format!(
        "preparing upstream venv in {} (one-off, from PyPI)",
        venv.display()
    ));
    let _ = std::fs::remove_dir_all(venv);
    if let Some(parent) = venv.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let status = Command::new(python)
        .arg("-m")
        .arg("venv")
        .arg(venv)
        .status()?;
    if !status.success() {
        return Err(
            format!("'{python} -m venv' failed (on Debian: apt-get install python3-venv)").into(),
        );
    }
    let py = venv.join("bin/python");
    let pip = |args: &[&str]| {
        Command::new(&py)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(args)
            .stdout(Stdio::null())
            .status()
    };
    let _ = pip(&["--upgrade", "pip"]);
    if !pip(UPSTREAM_REQS)?.success() {
        return Err("pip install of the upstream packages failed".into());
    }
    std::fs::write(venv.join(".ferrite-stamp"), &stamp)?;
    if !venv_ok(venv, &stamp) {
        return Err(format!("venv {} is unusable after install", venv.display()).into());
    }
    Ok(py)
}

fn scripts_dir(args: &Args) -> Res<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(dir) = &args.scripts_dir {
        candidates.push(dir.clone());
    }
    if let Some(root) = std::env::var_os("FERRITE_REPO_ROOT") {
        candidates.push(PathBuf::from(root).join("scripts"));
    }
    if let Ok(exe) = std::env::current_exe() {
        // target/release/placement-bench -> repo/scripts
        if let Some(root) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
            candidates.push(root.join("scripts"));
        }
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts"));
    candidates
        .into_iter()
        .find(|d| d.join("conformance/upstream_server.py").is_file())
        .ok_or_else(|| {
            "cannot find scripts/conformance/upstream_server.py (use --scripts-dir)".into()
        })
}

// ---------------------------------------------------------------------- report

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Lower is better; show the upstream/ours speedup too.
    Millis,
    /// Higher is better.
    Rate,
    Count,
    Mib,
    Seconds,
}

struct Row {
    name: String,
    kind: Kind,
    ours: Option<f64>,
    upstream: Option<f64>,
}

fn fmt_value(kind: Kind, v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v.is_nan() => "-".into(),
        Some(v) => match kind {
            Kind::Millis => format!("{v:.2}"),
            Kind::Rate | Kind::Mib => format!("{v:.1}"),
            Kind::Seconds => format!("{v:.2}"),
            Kind::Count => format!("{v:.0}"),
        },
    }
}

fn render_table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<40} {:>12} {:>12} {:>14} {:>14}",
        "figure", "ours", "upstream", "ours/upstream", "upstream/ours"
    );
    let _ = writeln!(out, "{}", "-".repeat(96));
    for row in rows {
        let ratio = match (row.ours, row.upstream) {
            (Some(o), Some(u)) if u != 0.0 && !o.is_nan() && !u.is_nan() => {
                format!("{:.2}", o / u)
            }
            _ => "-".into(),
        };
        let speedup = match (row.kind, row.ours, row.upstream) {
            (Kind::Millis | Kind::Seconds, Some(o), Some(u))
                if o != 0.0 && !o.is_nan() && !u.is_nan() =>
            {
                format!("{:.1}x", u / o)
            }
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<40} {:>12} {:>12} {:>14} {:>14}",
            row.name,
            fmt_value(row.kind, row.ours),
            fmt_value(row.kind, row.upstream),
            ratio,
            speedup
        );
    }
    out
}

/// Everything measured for one server.
#[derive(Default)]
struct Figures {
    startup_s: Option<f64>,
    load: Option<LoadResult>,
    latency: Option<Latency>,
    storm: Option<StormResult>,
    scan: Option<ScanResult>,
    peak_rss_mib: Option<f64>,
    http_5xx: u64,
    load_retries: u64,
    transport_errors: u64,
    requests: u64,
    log_errors: usize,
}

fn rows(ours: &Figures, up: &Figures, args: &Args) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut add = |name: String, kind: Kind, f: &dyn Fn(&Figures) -> Option<f64>| {
        rows.push(Row {
            name,
            kind,
            ours: f(ours),
            upstream: if args.ours_only { None } else { f(up) },
        });
    };
    add("startup to first answer (s)".into(), Kind::Seconds, &|f| {
        f.startup_s
    });
    add("load: providers/s".into(), Kind::Rate, &|f| {
        f.load
            .as_ref()
            .map(|l| l.providers as f64 / l.seconds.max(1e-9))
    });
    add("load: total time (s)".into(), Kind::Seconds, &|f| {
        f.load.as_ref().map(|l| l.seconds)
    });
    add("load: failed providers".into(), Kind::Count, &|f| {
        f.load.as_ref().map(|l| l.errors as f64)
    });
    add("load: steps retried after 5xx".into(), Kind::Count, &|f| {
        f.load.as_ref().map(|_| f.load_retries as f64)
    });
    add(
        "candidates: first request (ms)".into(),
        Kind::Millis,
        &|f| f.latency.as_ref().map(|l| l.cold_ms),
    );
    add("candidates: page length".into(), Kind::Count, &|f| {
        f.latency.as_ref().map(|l| l.page_len as f64)
    });
    let c = args.concurrency;
    type Pick = fn(&Stats) -> f64;
    let picks: [(&str, Pick, Kind); 4] = [
        ("p50 (ms)", |s| s.p50, Kind::Millis),
        ("p95 (ms)", |s| s.p95, Kind::Millis),
        ("p99 (ms)", |s| s.p99, Kind::Millis),
        ("req/s", |s| s.rps, Kind::Rate),
    ];
    for (conc, high) in [(1, false), (c, true)] {
        for (label, pick, kind) in picks {
            add(format!("candidates c={conc} {label}"), kind, &|f| {
                f.latency
                    .as_ref()
                    .map(|l| pick(if high { &l.cn } else { &l.c1 }))
            });
        }
        add(format!("candidates c={conc} errors"), Kind::Count, &|f| {
            f.latency
                .as_ref()
                .map(|l| (if high { &l.cn } else { &l.c1 }).errors as f64)
        });
    }
    if ours.storm.is_some() || up.storm.is_some() {
        add("storm: claims".into(), Kind::Count, &|f| {
            f.storm.as_ref().map(|s| s.claims as f64)
        });
        add("storm: claims/s".into(), Kind::Rate, &|f| {
            f.storm
                .as_ref()
                .map(|s| s.claims as f64 / s.seconds.max(1e-9))
        });
        add("storm: wall time (s)".into(), Kind::Seconds, &|f| {
            f.storm.as_ref().map(|s| s.seconds)
        });
        add("storm: candidate GETs".into(), Kind::Count, &|f| {
            f.storm.as_ref().map(|s| s.gets as f64)
        });
        add("storm: 409 conflicts".into(), Kind::Count, &|f| {
            f.storm.as_ref().map(|s| s.conflicts as f64)
        });
        add("storm: other PUT/GET errors".into(), Kind::Count, &|f| {
            f.storm
                .as_ref()
                .map(|s| (s.other_errors + s.get_errors) as f64)
        });
        add("storm: failed boots (gave up)".into(), Kind::Count, &|f| {
            f.storm.as_ref().map(|s| s.failed_boots as f64)
        });
        add("storm: candidates left after".into(), Kind::Count, &|f| {
            f.storm
                .as_ref()
                .and_then(|s| s.left_after.map(|n| n as f64))
        });
        add("storm: timed out (1=yes)".into(), Kind::Count, &|f| {
            f.storm.as_ref().map(|s| f64::from(u8::from(s.timed_out)))
        });
    }
    if ours.scan.is_some() || up.scan.is_some() {
        add("scan: over-allocated providers".into(), Kind::Count, &|f| {
            f.scan.as_ref().map(|s| s.over_allocated as f64)
        });
        if args.shape == Shape::Baremetal {
            add("scan: unclaimed target units".into(), Kind::Count, &|f| {
                f.scan.as_ref().map(|s| s.unclaimed as f64)
            });
            add("scan: used target units".into(), Kind::Count, &|f| {
                f.scan.as_ref().map(|s| s.target_used as f64)
            });
        }
        add("scan: errors".into(), Kind::Count, &|f| {
            f.scan.as_ref().map(|s| s.errors as f64)
        });
        add("scan: time (s)".into(), Kind::Seconds, &|f| {
            f.scan.as_ref().map(|s| s.seconds)
        });
    }
    add("peak RSS (MiB, all processes)".into(), Kind::Mib, &|f| {
        f.peak_rss_mib
    });
    add("HTTP requests sent".into(), Kind::Count, &|f| {
        Some(f.requests as f64)
    });
    add("HTTP 5xx answers".into(), Kind::Count, &|f| {
        Some(f.http_5xx as f64)
    });
    add("transport errors".into(), Kind::Count, &|f| {
        Some(f.transport_errors as f64)
    });
    add("error lines in server log".into(), Kind::Count, &|f| {
        Some(f.log_errors as f64)
    });
    rows
}

// ------------------------------------------------------------------------ main

struct Env {
    tmp: PathBuf,
    procs: Vec<Proc>,
    dbs: Databases,
    rss_stop: Arc<AtomicBool>,
}

fn spawn_server(
    label: &'static str,
    mut command: Command,
    tmp: &Path,
    rss_stop: &Arc<AtomicBool>,
) -> Res<Proc> {
    use std::os::unix::process::CommandExt;
    let log_path = tmp.join(format!("{label}.log"));
    let log_file = std::fs::File::create(&log_path)?;
    command
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .process_group(0);
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start {label} server {command:?}: {e}"))?;
    let peak_kb = Arc::new(AtomicU64::new(0));
    spawn_rss_sampler(child.id(), peak_kb.clone(), rss_stop.clone());
    Ok(Proc {
        label,
        child,
        log_path,
        peak_kb,
    })
}

/// The SQLAlchemy URL upstream gets, with an explicit driver (SQLAlchemy 2.1
/// would pick psycopg 3 for a bare `postgresql://`; the venv has psycopg2).
fn upstream_url(url: &str) -> String {
    for prefix in ["postgres://", "postgresql://"] {
        if let Some(rest) = url.strip_prefix(prefix) {
            return format!("postgresql+psycopg2://{rest}");
        }
    }
    if let Some(rest) = url.strip_prefix("mysql://") {
        return format!("mysql+pymysql://{rest}");
    }
    url.to_string()
}

fn database_url(
    kind: DbKind,
    args: &Args,
    tmp: &Path,
    label: &str,
    tag: &str,
) -> (String, Option<String>) {
    match kind {
        DbKind::Sqlite => (
            format!("sqlite://{}/{label}.db?mode=rwc", tmp.display()),
            None,
        ),
        DbKind::Postgres => {
            let name = format!("ferrite_bench_{label}_{tag}");
            (with_database(&args.postgres_url, &name), Some(name))
        }
        DbKind::Mysql => {
            let name = format!("ferrite_bench_{label}_{tag}");
            (with_database(&args.mysql_url, &name), Some(name))
        }
    }
}

async fn bench(args: &Args, env: &mut Env) -> Res<()> {
    let load_start = loadavg();
    let want_storm = !args.skip_storm && (args.shape == Shape::Baremetal || args.storm);
    let upstream_on = !args.ours_only;
    let fleet = match args.shape {
        Shape::Baremetal => baremetal_fleet(args.providers),
        Shape::Nested => nested_fleet(args.providers),
    };

    // Binaries and venv first: fail before anything is started.
    let ours_bin = match &args.ours_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("placement"),
    };
    if !ours_bin.is_file() {
        return Err(format!(
            "our placement binary {} does not exist (build it or pass --ours-bin)",
            ours_bin.display()
        )
        .into());
    }
    let upstream_py = if upstream_on {
        let venv = args.venv.clone().unwrap_or_else(default_venv);
        Some((ensure_venv(&venv, &args.python)?, scripts_dir(args)?))
    } else {
        None
    };

    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let server_url = match args.db {
        DbKind::Postgres => args.postgres_url.clone(),
        DbKind::Mysql => args.mysql_url.clone(),
        DbKind::Sqlite => String::new(),
    };

    // ---- start the servers
    let mut ours_figs = Figures::default();
    let mut up_figs = Figures::default();
    let (ours_db, ours_db_name) = database_url(args.db, args, &env.tmp, "ours", &tag);
    if let Some(name) = ours_db_name {
        create_database(args.db, &server_url, &name).await?;
        env.dbs.created.push((server_url.clone(), name));
    }
    let ours_port = free_port()?;
    let mut cmd = Command::new(&ours_bin);
    cmd.args(["--bind", &format!("127.0.0.1:{ours_port}")])
        .args(["--database-url", &ours_db])
        .args(["--enforce-new-defaults", "false"])
        .args([
            "--randomize-allocation-candidates",
            &args.randomize.to_string(),
        ]);
    env.procs
        .push(spawn_server("ours", cmd, &env.tmp, &env.rss_stop)?);
    let ours = Server {
        label: "ours",
        client: PlacementClient::new(format!("http://127.0.0.1:{ours_port}"), "admin"),
        stats: HttpStats::default(),
    };

    let mut upstream = None;
    if let Some((py, scripts)) = &upstream_py {
        let (up_db, up_db_name) = database_url(args.db, args, &env.tmp, "upstream", &tag);
        if let Some(name) = up_db_name {
            create_database(args.db, &server_url, &name).await?;
            env.dbs.created.push((server_url.clone(), name));
        }
        let port = free_port()?;
        let mut cmd = Command::new(py);
        cmd.env("PYTHONPATH", scripts)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .args(["-m", "conformance.upstream_server"])
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .args(["--database-url", &upstream_url(&up_db)])
            .args(["--server", "gunicorn"])
            .args(["--workers", &args.upstream_workers.to_string()])
            .args(["--threads", &args.upstream_threads.to_string()])
            .args([
                "--randomize-allocation-candidates",
                &args.randomize.to_string(),
            ]);
        env.procs
            .push(spawn_server("upstream", cmd, &env.tmp, &env.rss_stop)?);
        upstream = Some(Server {
            label: "upstream",
            client: PlacementClient::new(format!("http://127.0.0.1:{port}"), "admin"),
            stats: HttpStats::default(),
        });
    }

    let timeout = Duration::from_secs(args.startup_timeout);
    if let Some(p) = env.procs.get_mut(0) {
        ours_figs.startup_s = Some(ours.wait_ready(p, timeout).await?.as_secs_f64());
    }
    if let (Some(up), Some(p)) = (&upstream, env.procs.get_mut(1)) {
        up_figs.startup_s = Some(up.wait_ready(p, timeout).await?.as_secs_f64());
    }
    log(format!(
        "servers up (ours {}{})",
        ours.client.base(),
        upstream
            .as_ref()
            .map(|u| format!(", upstream {}", u.client.base()))
            .unwrap_or_default()
    ));

    // ---- load
    for (server, figs) in [
        (Some(&ours), &mut ours_figs),
        (upstream.as_ref(), &mut up_figs),
    ] {
        let Some(server) = server else { continue };
        log(format!(
            "loading {} providers into {} ({} in flight)",
            fleet.providers(),
            server.label,
            args.load_concurrency
        ));
        let l = load_fleet(server, &fleet, args.load_concurrency).await?;
        log(format!(
            "  {}: {:.2} s, {:.1} providers/s, {} failed",
            server.label,
            l.seconds,
            l.providers as f64 / l.seconds.max(1e-9),
            l.errors
        ));
        figs.load = Some(l);
    }

    // ---- latency
    for (server, figs) in [
        (Some(&ours), &mut ours_figs),
        (upstream.as_ref(), &mut up_figs),
    ] {
        let Some(server) = server else { continue };
        log(format!(
            "measuring GET /allocation_candidates on {} ({} at c=1, {} at c={})",
            server.label,
            args.requests,
            args.requests * 2,
            args.concurrency
        ));
        let l = measure_latency(server, &fleet.query, args).await?;
        log(format!(
            "  {}: cold {:.1} ms, c=1 p50 {:.2} ms, c={} p50 {:.2} ms",
            server.label, l.cold_ms, l.c1.p50, args.concurrency, l.cn.p50
        ));
        figs.latency = Some(l);
    }

    // ---- correctness: same candidates from both (unlimited query); after
    // the latency run so that its first request is the first after loading
    let mut compare_note = String::from("skipped");
    if let (Some(up), false) = (&upstream, args.no_compare) {
        let path = format!("/allocation_candidates?{}", fleet.query);
        let t = Duration::from_secs(300);
        let a = ours.call_timeout(Method::GET, &path, None, t).await;
        let b = up.call_timeout(Method::GET, &path, None, t).await;
        compare_note = match (a, b) {
            (Ok(a), Ok(b)) if a.status == 200 && b.status == 200 => {
                let (ca, cb) = (canonical_requests(&a.body), canonical_requests(&b.body));
                let sa = a.body["provider_summaries"]
                    .as_object()
                    .map_or(0, |m| m.len());
                let sb = b.body["provider_summaries"]
                    .as_object()
                    .map_or(0, |m| m.len());
                if ca == cb && sa == sb {
                    format!(
                        "identical ({} allocation requests, {sa} provider summaries)",
                        ca.len()
                    )
                } else {
                    format!(
                        "DIFFERENT: ours {} requests / {sa} summaries, upstream {} / {sb}",
                        ca.len(),
                        cb.len()
                    )
                }
            }
            (a, b) => format!(
                "not compared (ours: {}, upstream: {})",
                a.map_or_else(|e| e, |r| r.status.to_string()),
                b.map_or_else(|e| e, |r| r.status.to_string())
            ),
        };
        log(format!("full candidate sets: {compare_note}"));
    }

    // ---- storm and scan
    if want_storm {
        for (server, figs) in [
            (Some(&ours), &mut ours_figs),
            (upstream.as_ref(), &mut up_figs),
        ] {
            let Some(server) = server else { continue };
            log(format!(
                "boot storm on {} ({} schedulers)",
                server.label, args.schedulers
            ));
            let s = boot_storm(server, &fleet.query, args).await;
            log(format!(
                "  {}: {} claims in {:.2} s, {} conflicts, {} failed boots",
                server.label, s.claims, s.seconds, s.conflicts, s.failed_boots
            ));
            figs.storm = Some(s);
            log(format!(
                "scanning usages of every provider on {}",
                server.label
            ));
            let scan = scan_usages(server, &fleet, args.load_concurrency).await;
            log(format!(
                "  {}: {} over-allocated, {} target units unclaimed, {:.1} s",
                server.label, scan.over_allocated, scan.unclaimed, scan.seconds
            ));
            figs.scan = Some(scan);
        }
    }

    // ---- wrap up
    for (server, figs, index) in [
        (Some(&ours), &mut ours_figs, 0usize),
        (upstream.as_ref(), &mut up_figs, 1),
    ] {
        let Some(server) = server else { continue };
        figs.http_5xx = server.stats.status_5xx.load(Ordering::Relaxed);
        figs.transport_errors = server.stats.transport_errors.load(Ordering::Relaxed);
        figs.load_retries = server.stats.retries.load(Ordering::Relaxed);
        figs.requests = server.stats.requests.load(Ordering::Relaxed);
        if let Some(p) = env.procs.get(index) {
            // One last sample, so short runs are covered too.
            let sum: u64 = process_tree(p.pid()).into_iter().map(vm_hwm_kb).sum();
            p.peak_kb.fetch_max(sum, Ordering::Relaxed);
            figs.peak_rss_mib = Some(p.peak_kb.load(Ordering::Relaxed) as f64 / 1024.0);
            let (n, samples) = p.log_errors();
            figs.log_errors = n;
            for s in samples {
                log(format!("  {} log: {s}", server.label));
            }
        }
        if let Ok(samples) = server.stats.samples.lock() {
            for s in samples.iter() {
                log(format!("  {} error: {s}", server.label));
            }
        }
    }

    // ---- report
    let db_note = match args.db {
        DbKind::Sqlite => "sqlite (fresh file each)".to_string(),
        DbKind::Postgres => format!("postgres ({})", args.postgres_url),
        DbKind::Mysql => format!("mysql ({})", args.mysql_url),
    };
    let shape_note = match args.shape {
        Shape::Baremetal => format!("baremetal, {} nodes", args.providers),
        Shape::Nested => format!(
            "nested, {} hosts ({} providers)",
            args.providers,
            fleet.providers()
        ),
    };
    println!();
    println!("placement-bench: {shape_note}, db {db_note}");
    println!(
        "  ours: {}{}",
        ours_bin.display(),
        if upstream_on {
            format!(
                "; upstream: openstack-placement 16.0.0 under gunicorn, {} worker(s) x {} thread(s)",
                args.upstream_workers, args.upstream_threads
            )
        } else {
            "; upstream skipped (--ours-only)".into()
        }
    );
    println!(
        "  query: GET /allocation_candidates?{}&limit=50 (storm: limit=10, {} schedulers{})",
        fleet.query,
        args.schedulers,
        if want_storm { "" } else { ", skipped" }
    );
    if upstream_on {
        println!("  full candidate sets (no limit): {compare_note}");
    }
    println!(
        "  randomize_allocation_candidates: {} (both servers)",
        args.randomize
    );
    println!(
        "  machine: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("  load average at start: {load_start}");
    println!();
    print!("{}", render_table(&rows(&ours_figs, &up_figs, args)));
    println!();
    println!("  load average at end: {}", loadavg());
    Ok(())
}

async fn cleanup(args: &Args, env: &mut Env) {
    env.rss_stop.store(true, Ordering::Relaxed);
    for p in env.procs.iter_mut() {
        p.stop();
    }
    drop_databases(args.db, &env.dbs).await;
    if args.keep {
        log(format!("kept {}", env.tmp.display()));
    } else {
        let _ = std::fs::remove_dir_all(&env.tmp);
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("placement-bench: cannot start runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let tmp =
        std::env::temp_dir().join(format!("placement-bench-{}", uuid::Uuid::new_v4().simple()));
    if let Err(err) = std::fs::create_dir_all(&tmp) {
        eprintln!("placement-bench: cannot create {}: {err}", tmp.display());
        return std::process::ExitCode::FAILURE;
    }
    let mut env = Env {
        tmp,
        procs: Vec::new(),
        dbs: Databases {
            created: Vec::new(),
        },
        rss_stop: Arc::new(AtomicBool::new(false)),
    };
    let outcome = runtime.block_on(async {
        let result = tokio::select! {
            r = bench(&args, &mut env) => r,
            _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
        };
        cleanup(&args, &mut env).await;
        result
    });
    match outcome {
        Ok(()) => {
            println!("bench: done");
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("placement-bench: {err}");
            println!("bench: failed");
            std::process::ExitCode::FAILURE
        }
    }
}
