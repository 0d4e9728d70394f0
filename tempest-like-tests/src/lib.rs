//! Harness of the black-box scenarios: a running `ferrite up` process on
//! ephemeral ports with its own data directory, and thin HTTP helpers.
//! Nothing here links to the services: everything goes over HTTP.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A `ferrite up` process and its endpoints.
pub struct Stack {
    child: Child,
    pub placement: String,
    pub baremetal: String,
    pub compute: String,
    pub data_dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

impl Stack {
    /// Starts `binary up --fleet N --fleet-hardware fake` on ephemeral
    /// ports and waits until it says it is ready.
    pub fn start(binary: &str, fleet: usize, extra: &[&str]) -> Stack {
        let data_dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(binary, fleet, extra, data_dir)
    }

    /// Starts the stack with N simulated machines (`--fleet-hardware
    /// simulated`, `up`'s default): real deploys through the agent.
    pub fn start_simulated(binary: &str, fleet: usize, extra: &[&str]) -> Stack {
        let data_dir = tempfile::tempdir().expect("tempdir");
        Self::launch(binary, fleet, "simulated", extra, data_dir, true)
    }

    /// Starts the stack with N simulated machines and returns as soon as
    /// its endpoints are printed, while the fleet is still being enrolled
    /// and cleaned (what `ferrite up & ferrite demo` sees).
    pub fn start_simulated_early(binary: &str, fleet: usize) -> Stack {
        let data_dir = tempfile::tempdir().expect("tempdir");
        Self::launch(binary, fleet, "simulated", &[], data_dir, false)
    }

    /// Starts the stack (fake hardware) on an existing data directory
    /// (restart scenarios).
    pub fn start_in(
        binary: &str,
        fleet: usize,
        extra: &[&str],
        data_dir: tempfile::TempDir,
    ) -> Stack {
        Self::launch(binary, fleet, "fake", extra, data_dir, true)
    }

    fn launch(
        binary: &str,
        fleet: usize,
        hardware: &str,
        extra: &[&str],
        data_dir: tempfile::TempDir,
        wait_ready: bool,
    ) -> Stack {
        let mut command = Command::new(binary);
        command
            .arg("up")
            .arg("--data-dir")
            .arg(data_dir.path())
            .arg("--fleet")
            .arg(fleet.to_string())
            .arg("--fleet-hardware")
            .arg(hardware)
            .args([
                "--placement-port",
                "0",
                "--conductor-port",
                "0",
                "--compute-port",
                "0",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("spawn ferrite up");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let (mut placement, mut baremetal, mut compute) =
            (String::new(), String::new(), String::new());
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            assert!(Instant::now() < deadline, "ferrite up did not get ready");
            let Some(Ok(line)) = lines.next() else {
                panic!("ferrite up exited before it was ready");
            };
            eprintln!("[ferrite] {line}");
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("placement"), Some(url)) => placement = url.to_string(),
                (Some("baremetal"), Some(url)) => baremetal = url.to_string(),
                (Some("compute"), Some(url)) => {
                    compute = url.to_string();
                    if !wait_ready {
                        break;
                    }
                }
                (Some("ready:"), _) => break,
                _ => {}
            }
        }
        // Keep draining stdout (where the stack also logs) so the child
        // never blocks on a full pipe; pass it on for failing tests.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("[ferrite] {line}");
            }
        });
        Stack {
            child,
            placement,
            baremetal,
            compute,
            data_dir,
            http: reqwest::Client::new(),
        }
    }

    /// Stops the process (SIGKILL: a crash, as far as the stack knows) and
    /// hands back the data directory.
    pub fn kill(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.data_dir, dir)
    }

    /// A compute API call as tenant `project` (admin role for "admin").
    pub async fn compute(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.call(
            &self.compute,
            method,
            path,
            body,
            &[
                ("X-Auth-Token", "admin:demo"),
                ("OpenStack-API-Version", "compute 2.61"),
            ],
        )
        .await
    }

    pub async fn placement(&self, method: reqwest::Method, path: &str) -> (u16, Value) {
        self.call(
            &self.placement,
            method,
            path,
            None,
            &[
                ("X-Auth-Token", "admin"),
                ("OpenStack-API-Version", "placement latest"),
            ],
        )
        .await
    }

    pub async fn baremetal(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.call(
            &self.baremetal,
            method,
            path,
            body,
            &[("X-OpenStack-Ironic-API-Version", "latest")],
        )
        .await
    }

    async fn call(
        &self,
        base: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{base}{path}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Compute API conveniences for the scenarios.
impl Stack {
    /// Creates a bare-metal flavor asking for one `resource_class` node and
    /// no virtual resources, plus `extra` extra specs; returns its id.
    pub async fn flavor(&self, name: &str, resource_class: &str, extra: &[(&str, &str)]) -> String {
        let (status, body) = self
            .compute(
                reqwest::Method::POST,
                "/v2.1/flavors",
                Some(serde_json::json!({"flavor": {"name": name, "ram": 1024, "vcpus": 1, "disk": 10}})),
            )
            .await;
        assert_eq!(status, 200, "flavor create: {body}");
        let id = body["flavor"]["id"]
            .as_str()
            .expect("flavor id")
            .to_string();
        let class = format!(
            "resources:CUSTOM_{}",
            resource_class.to_uppercase().replace('-', "_")
        );
        let mut specs = serde_json::Map::new();
        specs.insert(class, "1".into());
        for standard in ["VCPU", "MEMORY_MB", "DISK_GB"] {
            specs.insert(format!("resources:{standard}"), "0".into());
        }
        for (key, value) in extra {
            specs.insert((*key).to_string(), (*value).into());
        }
        let (status, body) = self
            .compute(
                reqwest::Method::POST,
                &format!("/v2.1/flavors/{id}/os-extra_specs"),
                Some(serde_json::json!({"extra_specs": specs})),
            )
            .await;
        assert_eq!(status, 200, "extra specs: {body}");
        id
    }

    /// Registers an image record; returns its id.
    pub async fn image(&self, name: &str) -> String {
        let response = self
            .http
            .post(format!("{}/v2/images", self.compute))
            .header("X-Auth-Token", "admin:demo")
            .json(&serde_json::json!({
                "name": name,
                "url": "http://127.0.0.1:9/image.raw",
                "disk_format": "raw",
                "container_format": "bare",
            }))
            .send()
            .await
            .expect("image create");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("image body");
        assert!(
            (200..300).contains(&status),
            "image create: {status} {body}"
        );
        body["id"].as_str().expect("image id").to_string()
    }

    /// Boots a server; returns its id.
    pub async fn boot(&self, name: &str, flavor: &str, image: &str) -> String {
        let (status, body) = self
            .compute(
                reqwest::Method::POST,
                "/v2.1/servers",
                Some(serde_json::json!({"server": {
                    "name": name, "flavorRef": flavor, "imageRef": image, "networks": "none",
                }})),
            )
            .await;
        assert_eq!(status, 202, "server create: {body}");
        body["server"]["id"]
            .as_str()
            .expect("server id")
            .to_string()
    }

    pub async fn server(&self, id: &str) -> (u16, Value) {
        let (status, body) = self
            .compute(reqwest::Method::GET, &format!("/v2.1/servers/{id}"), None)
            .await;
        (status, body["server"].clone())
    }

    /// Waits until the server leaves BUILD (or the deadline passes) and
    /// returns it.
    pub async fn settle(&self, id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, server) = self.server(id).await;
            assert_eq!(status, 200, "server {id}");
            let state = server["status"].as_str().unwrap_or("");
            let task = &server["OS-EXT-STS:task_state"];
            if state != "BUILD" && task.is_null() {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "server {id} still {state} / {task}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Deletes a server and waits until it is gone.
    pub async fn delete_server(&self, id: &str, timeout: Duration) {
        let (status, body) = self
            .compute(
                reqwest::Method::DELETE,
                &format!("/v2.1/servers/{id}"),
                None,
            )
            .await;
        assert_eq!(status, 204, "delete: {body}");
        let deadline = Instant::now() + timeout;
        loop {
            let (status, _) = self.server(id).await;
            if status == 404 {
                return;
            }
            assert!(Instant::now() < deadline, "server {id} not gone");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Placement's allocations of a consumer (empty object when none).
    pub async fn allocations(&self, consumer: &str) -> Value {
        let (status, body) = self
            .placement(reqwest::Method::GET, &format!("/allocations/{consumer}"))
            .await;
        assert_eq!(status, 200, "allocations: {body}");
        body["allocations"].clone()
    }

    /// The sum of all usages in Placement.
    pub async fn total_usage(&self) -> i64 {
        let (_, providers) = self
            .placement(reqwest::Method::GET, "/resource_providers")
            .await;
        let mut total = 0;
        for provider in providers["resource_providers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let uuid = provider["uuid"].as_str().unwrap_or("");
            let (_, usages) = self
                .placement(
                    reqwest::Method::GET,
                    &format!("/resource_providers/{uuid}/usages"),
                )
                .await;
            if let Some(map) = usages["usages"].as_object() {
                total += map.values().filter_map(Value::as_i64).sum::<i64>();
            }
        }
        total
    }
}
