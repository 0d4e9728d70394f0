//! `ferrite demo`: boot one server on a running stack.

use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{json, Value};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The compute API.
    #[arg(long, default_value = "http://127.0.0.1:8774")]
    compute_url: String,
    /// The Bare Metal API, asked how many machines are ready (the demo
    /// waits while the fleet is still being enrolled and cleaned).
    #[arg(long, default_value = "http://127.0.0.1:6385")]
    baremetal_url: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// The server's name.
    #[arg(long, default_value = "demo")]
    name: String,
}

struct Compute {
    http: reqwest::Client,
    base: String,
}

impl Compute {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("X-Auth-Token", "admin:demo")
            .header("OpenStack-API-Version", "compute 2.61");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("cannot reach compute at {}: {e}", self.base))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| e.to_string())?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, body))
    }
}

const FLAVOR: &str = "baremetal";

pub async fn run(args: DemoArgs) -> Result<(), String> {
    let compute = Compute {
        http: reqwest::Client::new(),
        base: args.compute_url.trim_end_matches('/').to_string(),
    };
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.timeout);
    wait_for_compute(&compute, deadline).await?;
    wait_for_capacity(&compute.http, &args.baremetal_url, deadline).await?;
    let flavor = ensure_flavor(&compute).await?;
    let image = ensure_image(&compute).await?;
    loop {
        match boot(&compute, &args, &flavor, &image, start, deadline).await? {
            Booted::Active => return Ok(()),
            Booted::NoHostYet(id) => {
                // The machines are available in the Bare Metal API but not
                // yet reported to Placement (`ferrite up` reports them right
                // after cleaning): try again shortly.
                println!("no host for {id} yet (the fleet is still being reported); retrying");
                let _ = compute
                    .call(
                        reqwest::Method::DELETE,
                        &format!("/v2.1/servers/{id}"),
                        None,
                    )
                    .await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

enum Booted {
    Active,
    /// The build failed for want of a host; the server's id.
    NoHostYet(String),
}

/// Waits until the compute API answers (it may still be starting).
async fn wait_for_compute(compute: &Compute, deadline: Instant) -> Result<(), String> {
    let mut said = false;
    loop {
        match compute.call(reqwest::Method::GET, "/v2.1/", None).await {
            Ok(_) => return Ok(()),
            Err(err) if Instant::now() >= deadline => return Err(err),
            Err(_) => {
                if !said {
                    println!("waiting for compute at {} to start", compute.base);
                    said = true;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// What the Bare Metal API says about the fleet.
#[derive(Debug, PartialEq)]
enum Capacity {
    /// At least one machine can take a server.
    Ready,
    /// No machine is free yet; `preparing` are on their way (enrolling,
    /// cleaning), so it is worth waiting.
    Preparing { preparing: usize },
    /// No machine is free and none is on its way.
    Full { nodes: usize },
}

/// States a machine passes through on its way to `available`.
const PREPARING: &[&str] = &[
    "enroll",
    "verifying",
    "manageable",
    "cleaning",
    "clean wait",
    "inspecting",
    "inspect wait",
];

fn capacity(nodes: &[Value]) -> Capacity {
    let free = nodes.iter().any(|node| {
        node["provision_state"] == "available"
            && node["instance_uuid"].is_null()
            && node["maintenance"] != true
    });
    if free {
        return Capacity::Ready;
    }
    let preparing = nodes
        .iter()
        .filter(|node| {
            node["provision_state"]
                .as_str()
                .is_some_and(|state| PREPARING.contains(&state))
        })
        .count();
    if preparing > 0 || nodes.is_empty() {
        Capacity::Preparing { preparing }
    } else {
        Capacity::Full { nodes: nodes.len() }
    }
}

/// Waits while the fleet is still being enrolled or cleaned. A Bare Metal
/// API that cannot be asked is not waited for.
async fn wait_for_capacity(
    http: &reqwest::Client,
    baremetal_url: &str,
    deadline: Instant,
) -> Result<(), String> {
    let url = format!(
        "{}/v1/nodes?fields=uuid,provision_state,instance_uuid,maintenance",
        baremetal_url.trim_end_matches('/')
    );
    let mut last = None;
    loop {
        let nodes = match list_nodes(http, &url).await {
            Ok(nodes) => nodes,
            Err(err) => {
                // Compute answers, and `ferrite up` starts the conductor
                // before compute: a conductor that cannot be asked is
                // elsewhere. Boot anyway; the build says whether there is room.
                println!("cannot ask the Bare Metal API at {baremetal_url} ({err}); not waiting for machines");
                return Ok(());
            }
        };
        let now = capacity(&nodes);
        match &now {
            Capacity::Ready => return Ok(()),
            Capacity::Full { nodes } => {
                return Err(format!(
                    "no machine is free: all {nodes} are in use or out of service"
                ))
            }
            Capacity::Preparing { preparing } if last.as_ref() != Some(&now) => {
                if *preparing == 0 {
                    println!("waiting for machines to be enrolled");
                } else {
                    let machines = if *preparing == 1 {
                        "machine"
                    } else {
                        "machines"
                    };
                    println!("waiting for {preparing} {machines} to finish cleaning");
                }
            }
            Capacity::Preparing { .. } => {}
        }
        if Instant::now() >= deadline {
            return Err("no machine became available in time".into());
        }
        last = Some(now);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn list_nodes(http: &reqwest::Client, url: &str) -> Result<Vec<Value>, String> {
    let response = http
        .get(url)
        .header("X-OpenStack-Ironic-API-Version", "1.46")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("node list answered {}", response.status()));
    }
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    Ok(body["nodes"].as_array().cloned().unwrap_or_default())
}

async fn boot(
    compute: &Compute,
    args: &DemoArgs,
    flavor: &str,
    image: &str,
    start: Instant,
    deadline: Instant,
) -> Result<Booted, String> {
    let (status, body) = compute
        .call(
            reqwest::Method::POST,
            "/v2.1/servers",
            Some(json!({"server": {
                "name": args.name,
                "flavorRef": flavor,
                "imageRef": image,
                "networks": "none",
            }})),
        )
        .await?;
    if status != 202 {
        return Err(format!("server create answered {status}: {body}"));
    }
    let id = body["server"]["id"].as_str().unwrap_or("").to_string();
    println!("server {id} requested on flavor {FLAVOR}");
    let mut last = String::new();
    loop {
        let (status, body) = compute
            .call(reqwest::Method::GET, &format!("/v2.1/servers/{id}"), None)
            .await?;
        if status != 200 {
            return Err(format!("server show answered {status}: {body}"));
        }
        let server = &body["server"];
        let state = server["status"].as_str().unwrap_or("?").to_string();
        let task = server["OS-EXT-STS:task_state"]
            .as_str()
            .unwrap_or("-")
            .to_string();
        let line = format!("{state} ({task})");
        if line != last {
            println!("{:>6.1}s  {line}", start.elapsed().as_secs_f64());
            last = line.clone();
        }
        match state.as_str() {
            "ACTIVE" => {
                println!(
                    "server {id} is ACTIVE on node {}",
                    server["OS-EXT-SRV-ATTR:hypervisor_hostname"]
                        .as_str()
                        .unwrap_or("?")
                );
                return Ok(Booted::Active);
            }
            "ERROR" => {
                let fault = server["fault"]["message"]
                    .as_str()
                    .unwrap_or("no fault recorded");
                if fault.contains("No valid host") && Instant::now() < deadline {
                    return Ok(Booted::NoHostYet(id));
                }
                return Err(format!("server {id} failed: {fault}"));
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "server {id} not ACTIVE after {} s (last: {line})",
                args.timeout
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The demo flavor: one `baremetal` node, no virtual resources (Nova's
/// bare-metal flavor shape).
async fn ensure_flavor(compute: &Compute) -> Result<String, String> {
    let (_, body) = compute
        .call(reqwest::Method::GET, "/v2.1/flavors", None)
        .await?;
    if let Some(found) = body["flavors"]
        .as_array()
        .and_then(|flavors| flavors.iter().find(|f| f["name"] == FLAVOR))
    {
        return Ok(found["id"].as_str().unwrap_or("").to_string());
    }
    let (status, body) = compute
        .call(
            reqwest::Method::POST,
            "/v2.1/flavors",
            Some(json!({"flavor": {"name": FLAVOR, "ram": 16384, "vcpus": 8, "disk": 100}})),
        )
        .await?;
    if status != 200 {
        return Err(format!("flavor create answered {status}: {body}"));
    }
    let id = body["flavor"]["id"].as_str().unwrap_or("").to_string();
    let (status, body) = compute
        .call(
            reqwest::Method::POST,
            &format!("/v2.1/flavors/{id}/os-extra_specs"),
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
    Ok(id)
}

/// The demo image record: the one `ferrite up` registered for its fleet,
/// else a placeholder (fake-hardware nodes do not download it).
async fn ensure_image(compute: &Compute) -> Result<String, String> {
    crate::demo_image::ensure(compute_base(compute), &compute.http).await
}

fn compute_base(compute: &Compute) -> &str {
    &compute.base
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(state: &str, instance: Option<&str>, maintenance: bool) -> Value {
        json!({"provision_state": state, "instance_uuid": instance, "maintenance": maintenance})
    }

    #[test]
    fn capacity_follows_the_fleet() {
        assert_eq!(capacity(&[]), Capacity::Preparing { preparing: 0 });
        assert_eq!(
            capacity(&[node("clean wait", None, false), node("enroll", None, false)]),
            Capacity::Preparing { preparing: 2 }
        );
        assert_eq!(
            capacity(&[
                node("cleaning", None, false),
                node("available", None, false)
            ]),
            Capacity::Ready
        );
        // Taken, or in maintenance, is not room; nothing on its way is full.
        assert_eq!(
            capacity(&[
                node("available", Some("x"), false),
                node("available", None, true),
                node("active", Some("y"), false),
            ]),
            Capacity::Full { nodes: 3 }
        );
        assert_eq!(
            capacity(&[
                node("active", Some("y"), false),
                node("clean wait", None, false)
            ]),
            Capacity::Preparing { preparing: 1 }
        );
    }
}
