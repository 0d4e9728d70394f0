//! Test harness: Placement and the Bare Metal API (with its conductor)
//! in-process on ephemeral ports, each over SQLite in its own temp dir, and
//! helpers to enroll fake-hardware nodes.
#![allow(dead_code)]

use std::net::TcpListener;
use std::time::Duration;

use ferrite_baremetal_client::BaremetalClient;
use ferrite_placement_client::PlacementClient;
use ferrite_virt_driver::{DriverConfig, DriverOptions, IronicDriver};
use serde_json::{json, Value};
use tokio::sync::oneshot;

pub const WAIT: Duration = Duration::from_secs(60);

/// A running service; stops when dropped.
pub struct Service {
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn sqlite_url(dir: &tempfile::TempDir, name: &str) -> String {
    format!("sqlite://{}?mode=rwc", dir.path().join(name).display())
}

pub async fn start_placement() -> Service {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = ferrite_placement::Config::for_database(sqlite_url(&dir, "placement.db"));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let state = ferrite_placement::prepare(config)
        .await
        .expect("prepare placement");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = ferrite_placement::serve(listener, state, async {
            let _ = stopped.await;
        })
        .await;
    });
    Service {
        base,
        stop: Some(stop),
        _dir: dir,
    }
}

pub async fn start_conductor(adjust: impl FnOnce(&mut ferrite_conductor::Config)) -> Service {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ferrite_conductor::Config::for_database(sqlite_url(&dir, "conductor.db"));
    config.host = "test-conductor".into();
    config.max_connections = 16;
    // The flat network interface records VIFs on the node's ports.
    config.hardware.enabled_network_interfaces = vec!["flat".into(), "noop".into()];
    adjust(&mut config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let state = ferrite_conductor::prepare(config)
        .await
        .expect("prepare conductor");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = ferrite_conductor::serve(listener, state, async {
            let _ = stopped.await;
        })
        .await;
    });
    Service {
        base,
        stop: Some(stop),
        _dir: dir,
    }
}

/// Both services plus clients.
pub struct Cloud {
    pub placement: Service,
    pub conductor: Service,
}

impl Cloud {
    pub async fn start() -> Cloud {
        Cloud::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut ferrite_conductor::Config)) -> Cloud {
        Cloud {
            placement: start_placement().await,
            conductor: start_conductor(adjust).await,
        }
    }

    pub fn ironic(&self) -> BaremetalClient {
        BaremetalClient::new(self.conductor.base.clone(), "latest")
    }

    pub fn placement(&self) -> PlacementClient {
        PlacementClient::new(self.placement.base.clone(), "admin")
    }

    pub fn config(&self, host: &str) -> DriverConfig {
        DriverConfig {
            ironic_url: self.conductor.base.clone(),
            placement_url: self.placement.base.clone(),
            placement_token: "admin".into(),
            host: host.into(),
            conductor_group: None,
            shard: None,
            peers: Vec::new(),
            poll_interval: Duration::from_millis(50),
            deploy_timeout: Duration::from_secs(30),
        }
    }

    /// A driver owning every node; config drives off unless a test wants one.
    pub fn driver(&self) -> IronicDriver {
        IronicDriver::with_options(self.config("compute-1"), test_options())
    }

    /// Enrolls a fake-hardware node with a port (flat network, so VIFs are
    /// recorded) and moves it to `available`, powered off.
    pub async fn available_node(
        &self,
        name: &str,
        resource_class: Option<&str>,
        traits: &[&str],
    ) -> String {
        let uuid = self.enrolled_node(name, resource_class, traits).await;
        let api = self.ironic();
        api.set_provision_state(&uuid, "manage", None)
            .await
            .expect("manage");
        api.wait_for_provision_state(&uuid, "manageable", WAIT)
            .await
            .expect("manageable");
        api.set_provision_state(&uuid, "provide", None)
            .await
            .expect("provide");
        api.wait_for_provision_state(&uuid, "available", WAIT)
            .await
            .expect("available");
        // The fake power interface leaves the power state unknown (upstream
        // learns it from its power-sync periodic), and Nova does not offer
        // a node of unknown power: set it.
        api.set_power_state(&uuid, "power off")
            .await
            .expect("power off");
        api.wait_for_power_state(&uuid, "power off", WAIT)
            .await
            .expect("powered off");
        uuid
    }

    /// Enrolls a node (left in `enroll`).
    pub async fn enrolled_node(
        &self,
        name: &str,
        resource_class: Option<&str>,
        traits: &[&str],
    ) -> String {
        let api = self.ironic();
        let mut body = json!({
            "driver": "fake-hardware",
            "name": name,
            "network_interface": "flat",
            "properties": {"cpus": 8, "memory_mb": 16384, "local_gb": 100, "cpu_arch": "x86_64"},
        });
        if let Some(class) = resource_class {
            body["resource_class"] = json!(class);
        }
        let node = api.create_node(&body).await.expect("create node");
        let uuid = node["uuid"].as_str().expect("uuid").to_string();
        for t in traits {
            api.raw(
                reqwest::Method::PUT,
                &format!("/v1/nodes/{uuid}/traits/{t}"),
                None,
            )
            .await
            .expect("add trait");
        }
        let mac = format!(
            "52:54:00:{:02x}:{:02x}:{:02x}",
            uuid.as_bytes()[0],
            uuid.as_bytes()[1],
            uuid.as_bytes()[2]
        );
        let _ = api
            .create_port(&json!({"address": mac, "node_uuid": uuid}))
            .await;
        uuid
    }

    pub async fn node(&self, uuid: &str) -> Value {
        self.ironic().get_node(uuid).await.expect("get node")
    }
}

pub fn test_options() -> DriverOptions {
    DriverOptions {
        force_config_drive: false,
        ..DriverOptions::default()
    }
}

/// Claims the node's single unit for `instance`, as the scheduler would.
pub async fn claim(placement: &PlacementClient, node: &str, class: &str, instance: &str) {
    let mut resources = std::collections::BTreeMap::new();
    resources.insert(class.to_string(), 1i64);
    let mut allocations = std::collections::BTreeMap::new();
    allocations.insert(node.to_string(), resources);
    placement
        .put_allocations(instance, &allocations, "project-1", "user-1", None)
        .await
        .expect("claim");
}

pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Logs to the test output (`FERRITE_LOG=debug` for more).
pub fn init_logs() {
    let filter = std::env::var("FERRITE_LOG").unwrap_or_else(|_| "ferrite_virt_driver=info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_test_writer()
        .try_init();
}
