//! Test harness: Placement, the conductor and compute in-process on
//! ephemeral ports, each over a fresh database of the same kind — SQLite
//! always, PostgreSQL and MariaDB when their URLs are in the environment
//! (`FERRITE_TEST_POSTGRES_URL`, `FERRITE_TEST_MYSQL_URL`).
#![allow(dead_code)]

use std::net::TcpListener;
use std::time::{Duration, Instant};

use ferrite_baremetal_client::BaremetalClient;
use ferrite_placement_client::PlacementClient;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{json, Value};
use tokio::sync::oneshot;

pub fn backends() -> Vec<&'static str> {
    let mut kinds = vec!["sqlite"];
    // Missing URLs skip those databases locally and fail under CI=true.
    let how = "scripts/ci-databases starts PostgreSQL and MariaDB; .ci/run sets the URLs";
    if ferrite_test_support::env_var("FERRITE_TEST_POSTGRES_URL", how).is_some() {
        kinds.push("postgres");
    }
    if ferrite_test_support::env_var("FERRITE_TEST_MYSQL_URL", how).is_some() {
        kinds.push("mysql");
    }
    kinds
}

pub struct TestDb {
    pub url: String,
    admin_url: Option<String>,
    name: Option<String>,
    _dir: tempfile::TempDir,
}

impl TestDb {
    pub async fn create(kind: &str, label: &str) -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        if kind == "sqlite" {
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join(format!("{label}.db")).display()
            );
            return TestDb {
                url,
                admin_url: None,
                name: None,
                _dir: dir,
            };
        }
        let var = if kind == "postgres" {
            "FERRITE_TEST_POSTGRES_URL"
        } else {
            "FERRITE_TEST_MYSQL_URL"
        };
        let admin_url = std::env::var(var).expect("database url");
        let name = format!("ferrite_{label}_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url).await.expect("connect admin");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        drop(admin);
        let mut url = url::Url::parse(&admin_url).expect("url");
        url.set_path(&format!("/{name}"));
        TestDb {
            url: url.to_string(),
            admin_url: Some(admin_url),
            name: Some(name),
            _dir: dir,
        }
    }

    pub async fn drop_database(&self) {
        if let (Some(admin_url), Some(name)) = (&self.admin_url, &self.name) {
            if let Ok(admin) = Database::connect(admin_url).await {
                let _ = admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
                    .await;
            }
        }
    }
}

/// One in-process service: its stop signal and task.
struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

fn listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    (listener, base)
}

/// Placement + conductor + compute.
pub struct Stack {
    pub kind: &'static str,
    pub placement_url: String,
    pub ironic_url: String,
    pub compute_url: String,
    pub http: reqwest::Client,
    pub compute_db: TestDb,
    placement_db: TestDb,
    pub conductor_db: TestDb,
    placement: Option<Running>,
    conductor: Option<Running>,
    compute: Option<Running>,
}

pub fn compute_config(
    stack_placement: &str,
    stack_ironic: &str,
    url: &str,
) -> ferrite_compute::Config {
    let mut config = ferrite_compute::Config::for_database(url);
    config.placement_url = stack_placement.to_string();
    config.ironic_url = stack_ironic.to_string();
    config.host = "test-compute".into();
    config.poll_interval = Duration::from_millis(50);
    config.deploy_timeout = Duration::from_secs(30);
    // Tests run the sync themselves; the periodic one stays out of the way.
    config.sync_interval = Duration::from_secs(3600);
    config
}

impl Stack {
    pub async fn start(kind: &'static str) -> Stack {
        Self::start_with(kind, |_| {}).await
    }

    pub async fn start_with(
        kind: &'static str,
        adjust: impl FnOnce(&mut ferrite_compute::Config),
    ) -> Stack {
        Self::start_custom(kind, |_| {}, adjust).await
    }

    pub async fn start_custom(
        kind: &'static str,
        adjust_conductor: impl FnOnce(&mut ferrite_conductor::Config),
        adjust: impl FnOnce(&mut ferrite_compute::Config),
    ) -> Stack {
        let placement_db = TestDb::create(kind, "p").await;
        let conductor_db = TestDb::create(kind, "c").await;
        let compute_db = TestDb::create(kind, "n").await;

        let (placement_listener, placement_url) = listener();
        let state = ferrite_placement::prepare(ferrite_placement::Config::for_database(
            placement_db.url.clone(),
        ))
        .await
        .expect("placement");
        let placement = spawn(|stopped| async move {
            let _ = ferrite_placement::serve(placement_listener, state, stopped).await;
        });

        let (conductor_listener, ironic_url) = listener();
        let mut conductor_config =
            ferrite_conductor::Config::for_database(conductor_db.url.clone());
        conductor_config.host = "test-conductor".into();
        adjust_conductor(&mut conductor_config);
        let state = ferrite_conductor::prepare(conductor_config)
            .await
            .expect("conductor");
        let conductor = spawn(|stopped| async move {
            let _ = ferrite_conductor::serve(conductor_listener, state, stopped).await;
        });

        let mut stack = Stack {
            kind,
            placement_url,
            ironic_url,
            compute_url: String::new(),
            http: reqwest::Client::new(),
            compute_db,
            placement_db,
            conductor_db,
            placement: Some(placement),
            conductor: Some(conductor),
            compute: None,
        };
        stack.start_compute(adjust).await;
        stack
    }

    /// (Re)starts compute over its database.
    pub async fn start_compute(&mut self, adjust: impl FnOnce(&mut ferrite_compute::Config)) {
        let (compute_listener, compute_url) = listener();
        let mut config =
            compute_config(&self.placement_url, &self.ironic_url, &self.compute_db.url);
        adjust(&mut config);
        let state = ferrite_compute::prepare(config).await.expect("compute");
        self.compute = Some(spawn(|stopped| async move {
            let _ = ferrite_compute::serve(compute_listener, state, stopped).await;
        }));
        self.compute_url = compute_url;
    }

    pub async fn stop_compute(&mut self) {
        if let Some(compute) = self.compute.take() {
            compute.stop().await;
        }
    }

    pub async fn stop(mut self) {
        self.stop_compute().await;
        for running in [self.conductor.take(), self.placement.take()]
            .into_iter()
            .flatten()
        {
            running.stop().await;
        }
        for db in [&self.compute_db, &self.conductor_db, &self.placement_db] {
            db.drop_database().await;
        }
    }

    pub fn placement(&self) -> PlacementClient {
        PlacementClient::new(self.placement_url.clone(), "admin")
    }

    pub fn baremetal(&self) -> BaremetalClient {
        BaremetalClient::new(self.ironic_url.clone(), "latest")
    }

    pub fn driver(&self) -> ferrite_virt_driver::IronicDriver {
        let config = compute_config(&self.placement_url, &self.ironic_url, &self.compute_db.url);
        ferrite_virt_driver::IronicDriver::new(config.driver_config())
    }

    /// A compute API request with `token` ("admin", "user:project") at `version`.
    pub fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        version: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.compute_url))
            .header("x-auth-token", token)
            .header("openstack-api-version", format!("compute {version}"))
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        version: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut builder = self.req(method, path, token, version);
        if let Some(body) = body {
            builder = builder.json(&body);
        }
        json_of(builder.send().await.expect("send")).await
    }

    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.call(method, path, "admin", "latest", body).await
    }

    /// Enrolls a fake-hardware node and makes it available.
    pub async fn enroll_node(
        &self,
        name: &str,
        resource_class: &str,
        capabilities: &str,
    ) -> String {
        let client = self.baremetal();
        let node = client
            .create_node(&json!({
                "name": name,
                "driver": "fake-hardware",
                "resource_class": resource_class,
                "properties": {"capabilities": capabilities, "cpu_arch": "x86_64"},
            }))
            .await
            .expect("create node");
        let uuid = node["uuid"].as_str().expect("uuid").to_string();
        client
            .set_provision_state(&uuid, "manage", None)
            .await
            .expect("manage");
        client
            .wait_for_provision_state(&uuid, "manageable", Duration::from_secs(30))
            .await
            .expect("manageable");
        client
            .set_provision_state(&uuid, "provide", None)
            .await
            .expect("provide");
        client
            .wait_for_provision_state(&uuid, "available", Duration::from_secs(30))
            .await
            .expect("available");
        // A node with an unknown power state is unusable to the driver.
        client
            .set_power_state(&uuid, "power off")
            .await
            .expect("power off");
        client
            .wait_for_power_state(&uuid, "power off", Duration::from_secs(30))
            .await
            .expect("powered off");
        uuid
    }

    /// Creates a node's resource provider directly in Placement, as the
    /// driver's sync would (for tests that must not depend on the driver).
    pub async fn provider_for(&self, node: &str, resource_class: &str) {
        let placement = self.placement();
        let class = ferrite_resource_classes::normalize_name(resource_class);
        placement
            .ensure_resource_class(&class)
            .await
            .expect("class");
        let provider = placement
            .create_provider(node, node, None)
            .await
            .expect("provider");
        let inventories = [(class, ferrite_placement_client::InventoryRecord::total(1))]
            .into_iter()
            .collect();
        placement
            .set_inventories(node, provider.generation, &inventories)
            .await
            .expect("inventories");
    }

    pub async fn create_flavor(
        &self,
        name: &str,
        resource_class: &str,
        extra: &[(&str, &str)],
    ) -> String {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/v2.1/flavors",
                "admin",
                "2.61",
                Some(json!({
                    "flavor": {"name": name, "ram": 1024, "vcpus": 2, "disk": 10}
                })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let id = body["flavor"]["id"].as_str().expect("id").to_string();
        let mut specs = serde_json::Map::new();
        specs.insert(format!("resources:{resource_class}"), json!("1"));
        for class in ["VCPU", "MEMORY_MB", "DISK_GB"] {
            specs.insert(format!("resources:{class}"), json!("0"));
        }
        for (k, v) in extra {
            specs.insert(k.to_string(), json!(v));
        }
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                &format!("/v2.1/flavors/{id}/os-extra_specs"),
                "admin",
                "2.61",
                Some(json!({"extra_specs": specs})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        id
    }

    pub async fn create_image(&self, name: &str) -> String {
        let response = self
            .http
            .post(format!("{}/v2/images", self.compute_url))
            .header("x-auth-token", "admin")
            .json(&json!({
                "name": name,
                "url": "http://images.example.com/ubuntu.raw",
                "disk_format": "raw",
                "container_format": "bare",
                "os_hash_algo": "sha256",
                "os_hash_value": "0".repeat(64),
                "visibility": "public",
            }))
            .send()
            .await
            .expect("send");
        let (status, body) = json_of(response).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().expect("id").to_string()
    }

    /// Boots a server as `token` and returns its id.
    pub async fn boot(&self, token: &str, name: &str, flavor: &str, image: &str) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            "/v2.1/servers",
            token,
            "latest",
            Some(json!({"server": {"name": name, "flavorRef": flavor, "imageRef": image, "networks": "none"}})),
        )
        .await
    }

    pub async fn server(&self, id: &str) -> (u16, Value) {
        self.call(
            reqwest::Method::GET,
            &format!("/v2.1/servers/{id}"),
            "admin",
            "latest",
            None,
        )
        .await
    }

    /// Polls until the server's status is one of `wanted`.
    pub async fn wait_status(&self, id: &str, wanted: &[&str], timeout: Duration) -> Value {
        let start = Instant::now();
        loop {
            let (status, body) = self.server(id).await;
            let current = if status == 404 {
                "DELETED".to_string()
            } else {
                body["server"]["status"].as_str().unwrap_or("").to_string()
            };
            if wanted.contains(&current.as_str()) {
                return body;
            }
            assert!(
                start.elapsed() < timeout,
                "server {id} stuck in {current}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn spawn<F, Fut>(body: F) -> Running
where
    F: FnOnce(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (stop, stopped) = oneshot::channel::<()>();
    let signal: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> =
        Box::pin(async move {
            let _ = stopped.await;
        });
    let task = tokio::spawn(body(signal));
    Running {
        stop: Some(stop),
        task: Some(task),
    }
}

pub async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
