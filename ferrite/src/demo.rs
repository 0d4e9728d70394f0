//! `ferrite demo`: boot one server on a running stack.

use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{json, Value};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The compute API.
    #[arg(long, default_value = "http://127.0.0.1:8774")]
    compute_url: String,
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
    let flavor = ensure_flavor(&compute).await?;
    let image = ensure_image(&compute).await?;
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
    let start = Instant::now();
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
                return Ok(());
            }
            "ERROR" => {
                return Err(format!(
                    "server {id} failed: {}",
                    server["fault"]["message"]
                        .as_str()
                        .unwrap_or("no fault recorded")
                ))
            }
            _ => {}
        }
        if start.elapsed() > Duration::from_secs(args.timeout) {
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
