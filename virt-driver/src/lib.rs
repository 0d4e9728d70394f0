//! Nova's Ironic virt driver, in Rust: keeps one Placement resource provider
//! per bare-metal node and deploys instances through the Bare Metal API.
//!
//! CONTRACT (the compute service codes against these types; the bodies are
//! being written):
//! - [`IronicDriver::sync`] is the periodic `update_available_resource`;
//! - [`IronicDriver::spawn`] deploys an instance on a node that the
//!   scheduler has already claimed in Placement;
//! - [`IronicDriver::destroy`], [`IronicDriver::reboot`],
//!   [`IronicDriver::power_on`], [`IronicDriver::power_off`],
//!   [`IronicDriver::rebuild`], [`IronicDriver::get_info`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

/// How the driver reaches its peers and which nodes it owns.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Bare Metal API base URL, e.g. `http://127.0.0.1:6385`.
    pub ironic_url: String,
    /// Placement base URL, e.g. `http://127.0.0.1:8778`.
    pub placement_url: String,
    /// noauth2 token for Placement (`admin`).
    pub placement_token: String,
    /// This compute service's host name.
    pub host: String,
    /// Only nodes of this conductor group (Nova's `[ironic] conductor_group`).
    pub conductor_group: Option<String>,
    /// Only nodes of this shard (Nova's `[ironic] shard`).
    pub shard: Option<String>,
    /// Compute hosts sharing the nodes through a hash ring (includes `host`);
    /// empty means this host owns every node.
    pub peers: Vec<String>,
    /// Interval between node polls while deploying/undeploying.
    pub poll_interval: Duration,
    /// Give up on a deploy after this long.
    pub deploy_timeout: Duration,
}

/// The image to deploy, as the compute service's image registry knows it.
#[derive(Debug, Clone, Default)]
pub struct ImageSpec {
    pub id: String,
    /// Where the conductor (agent) downloads it from.
    pub url: String,
    pub disk_format: String,
    pub os_hash_algo: Option<String>,
    pub os_hash_value: Option<String>,
    /// Legacy md5 checksum.
    pub checksum: Option<String>,
    /// Image properties (e.g. `kernel_id`, `ramdisk_id` for partition images).
    pub properties: BTreeMap<String, String>,
}

/// The flavor the instance was booted with.
#[derive(Debug, Clone, Default)]
pub struct FlavorSpec {
    pub id: String,
    pub name: String,
    pub vcpus: u32,
    pub ram_mb: u64,
    pub root_gb: u64,
    pub ephemeral_gb: u64,
    pub swap_mb: u64,
    pub extra_specs: BTreeMap<String, String>,
}

/// Everything `spawn` needs to deploy one instance on one node.
#[derive(Debug, Clone, Default)]
pub struct SpawnRequest {
    /// The node (= resource provider) the scheduler claimed.
    pub node_uuid: String,
    pub instance_uuid: String,
    pub instance_name: String,
    pub hostname: String,
    pub project_id: String,
    pub user_id: String,
    pub image: ImageSpec,
    pub flavor: FlavorSpec,
    /// Base64 user data as the tenant sent it.
    pub user_data: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// Key name → public key.
    pub public_keys: BTreeMap<String, String>,
    /// Neutron-style port ids to attach as VIFs.
    pub vifs: Vec<String>,
    /// `network_data.json` for the config drive.
    pub network_data: Value,
}

/// Nova's power states as the driver reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerState {
    NoState,
    Running,
    Shutdown,
    Crashed,
}

#[derive(Debug, Clone)]
pub struct InstanceInfo {
    pub power_state: PowerState,
    pub node_uuid: String,
    pub provision_state: String,
}

/// Why a spawn failed, and what the compute service should do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SpawnError {
    /// Someone else set the node's instance_uuid first, or the node left
    /// `available`: free the claim and try another host.
    #[error("node {0} is not free: {1}")]
    Reschedule(String, String),
    /// The deploy ran and failed (or timed out); the node was cleaned up.
    #[error("deploy failed: {0}")]
    DeployFailed(String),
    /// The Bare Metal API or Placement could not be reached or refused.
    #[error("{0}")]
    Api(String),
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct DriverError(pub String);

/// What one periodic sync did.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    pub nodes_seen: usize,
    pub nodes_owned: usize,
    pub providers_created: usize,
    pub providers_updated: usize,
    pub providers_deleted: usize,
    /// HTTP calls made to Placement during this sync.
    pub placement_calls: usize,
    /// HTTP calls made to the Bare Metal API during this sync.
    pub ironic_calls: usize,
}

pub struct IronicDriver {
    config: DriverConfig,
}

impl IronicDriver {
    pub fn new(config: DriverConfig) -> IronicDriver {
        IronicDriver { config }
    }

    pub fn config(&self) -> &DriverConfig {
        &self.config
    }

    /// One run of the resource periodic: lists the owned nodes and makes
    /// Placement match them, writing only what changed.
    pub async fn sync(&self) -> Result<SyncReport, DriverError> {
        Err(DriverError("not written yet".into()))
    }

    /// Deploys `request.instance_uuid` on `request.node_uuid` and waits
    /// until it is `active` (or fails and cleans up).
    pub async fn spawn(&self, request: &SpawnRequest) -> Result<(), SpawnError> {
        Err(SpawnError::Api(format!("not written yet: {}", request.node_uuid)))
    }

    /// Tears the instance down and waits until the node is free again.
    pub async fn destroy(&self, node_uuid: &str, instance_uuid: &str) -> Result<(), DriverError> {
        Err(DriverError(format!("not written yet: {node_uuid} {instance_uuid}")))
    }

    /// Soft reboot falling back to hard when `soft`, else hard.
    pub async fn reboot(&self, node_uuid: &str, soft: bool) -> Result<(), DriverError> {
        Err(DriverError(format!("not written yet: {node_uuid} {soft}")))
    }

    pub async fn power_on(&self, node_uuid: &str) -> Result<(), DriverError> {
        Err(DriverError(format!("not written yet: {node_uuid}")))
    }

    pub async fn power_off(&self, node_uuid: &str) -> Result<(), DriverError> {
        Err(DriverError(format!("not written yet: {node_uuid}")))
    }

    /// Redeploys the instance's image (and config drive) on its node.
    pub async fn rebuild(&self, request: &SpawnRequest) -> Result<(), SpawnError> {
        Err(SpawnError::Api(format!("not written yet: {}", request.node_uuid)))
    }

    pub async fn get_info(&self, node_uuid: &str) -> Result<InstanceInfo, DriverError> {
        Err(DriverError(format!("not written yet: {node_uuid}")))
    }
}
