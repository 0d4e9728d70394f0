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
//!
//! Layout: [`resources`] (pure: what a node's provider holds — inventory,
//! reserved rule, traits), [`ring`] (pure: which host owns which node),
//! `node` (the fields of a node the driver reads), `sync` (the periodic
//! against Placement with a local view), `deploy` (spawn, teardown,
//! rebuild, power), [`metadata`] (config drive contents and the
//! instance_info patch). Knobs that are not part of the contract live in
//! [`DriverOptions`].

use std::collections::BTreeMap;
use std::time::Duration;

use ferrite_baremetal_client::BaremetalClient;
use ferrite_placement_client::PlacementClient;
use serde_json::Value;

mod deploy;
pub mod metadata;
mod node;
pub mod resources;
pub mod ring;
mod sync;

pub use deploy::map_power_state;
pub use node::NodeState;

/// How the driver reaches its peers and which nodes it owns.
#[derive(Debug, Clone, Default)]
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
    /// Size in bytes, when the registry knows it: the conductor refuses a
    /// download that turns out larger.
    pub size: Option<u64>,
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
    /// The caller cancelled the spawn (the instance is being deleted); it
    /// stopped between two API calls and left the cleanup to the caller.
    #[error("the build was cancelled")]
    Cancelled,
}

/// Asks a running spawn to stop at its next safe point (between two API
/// calls, never in the middle of one): send `true`.
pub type CancelSignal = tokio::sync::watch::Receiver<bool>;

/// A signal that never fires.
pub fn never_cancelled() -> CancelSignal {
    tokio::sync::watch::channel(false).1
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct DriverError(pub String);

/// What one periodic sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    /// Providers that could not be created, updated or deleted this time
    /// (logged; retried on the next sync).
    pub provider_errors: usize,
}

/// Driver knobs beyond [`DriverConfig`], with Nova's defaults where Nova
/// has the option.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    /// Parallel Placement requests while creating or updating providers.
    /// 16 keeps a 10,000-node first sync well under a minute without
    /// monopolising Placement's connection pool.
    pub placement_concurrency: usize,
    /// Nodes per page of the node list (the API caps pages at 1,000).
    pub node_page_size: u32,
    /// The microversion asked of the Bare Metal API; lowered to what the
    /// server supports (at least 1.46, Nova's floor; 1.82 for `shard`).
    pub ironic_microversion: String,
    /// `[workarounds] skip_reserve_in_use_ironic_nodes`.
    pub skip_reserve_in_use_nodes: bool,
    /// `[DEFAULT] force_config_drive`: every instance gets a config drive.
    pub force_config_drive: bool,
    /// The instance's availability zone in the config drive.
    pub availability_zone: String,
    /// Give up waiting for a power change after this long.
    pub power_timeout: Duration,
    /// Longest wait for a teardown (at least `deploy_timeout` is used).
    pub teardown_timeout: Duration,
    /// Re-read Placement this often (Nova's
    /// `resource_provider_association_refresh`); `None`: only at start, then
    /// rely on our own writes and 409s.
    pub placement_refresh: Option<Duration>,
    /// URL schemes an image may be deployed from (lower case); the
    /// conductor fetches what it is told, so tenants' images stay on
    /// http(s) unless the operator allows more.
    pub image_url_schemes: Vec<String>,
}

impl Default for DriverOptions {
    fn default() -> Self {
        DriverOptions {
            placement_concurrency: 16,
            node_page_size: 1000,
            ironic_microversion: "1.82".into(),
            skip_reserve_in_use_nodes: false,
            force_config_drive: true,
            availability_zone: "nova".into(),
            power_timeout: Duration::from_secs(300),
            teardown_timeout: Duration::from_secs(1800),
            placement_refresh: None,
            image_url_schemes: vec!["http".into(), "https".into()],
        }
    }
}

/// The lowest Bare Metal microversion the driver works with (conductor
/// groups, traits, VIFs, soft power, rebuild with a config drive).
const MIN_IRONIC_VERSION: (u32, u32) = (1, 46);
/// The microversion that introduced node shards.
const SHARD_VERSION: (u32, u32) = (1, 82);

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

pub struct IronicDriver {
    config: DriverConfig,
    options: DriverOptions,
    placement: PlacementClient,
    /// The Bare Metal client at the negotiated microversion, made on first use.
    ironic: tokio::sync::OnceCell<BaremetalClient>,
    ring: ring::HashRing,
    sync_state: tokio::sync::Mutex<sync::SyncState>,
}

impl IronicDriver {
    pub fn new(config: DriverConfig) -> IronicDriver {
        IronicDriver::with_options(config, DriverOptions::default())
    }

    pub fn with_options(config: DriverConfig, options: DriverOptions) -> IronicDriver {
        let placement =
            PlacementClient::new(config.placement_url.clone(), config.placement_token.clone());
        let ring = ring::HashRing::new(&config.peers);
        IronicDriver {
            config,
            options,
            placement,
            ironic: tokio::sync::OnceCell::new(),
            ring,
            sync_state: tokio::sync::Mutex::new(sync::SyncState::default()),
        }
    }

    pub fn config(&self) -> &DriverConfig {
        &self.config
    }

    pub fn options(&self) -> &DriverOptions {
        &self.options
    }

    /// Whether this host manages `node_uuid` (the hash ring over `peers`;
    /// with no peers, every node).
    pub fn owns_node(&self, node_uuid: &str) -> bool {
        self.ring.owned_by(node_uuid, &self.config.host)
    }

    /// The nodes this host owned at the last sync (Nova's node cache).
    pub async fn owned_nodes(&self) -> Vec<NodeState> {
        let state = self.sync_state.lock().await;
        let mut nodes: Vec<NodeState> = state.owned_nodes.values().cloned().collect();
        nodes.sort_by(|a, b| a.uuid.cmp(&b.uuid));
        nodes
    }

    /// The negotiated Bare Metal client: the configured microversion, or the
    /// server's newest if lower (never below 1.46; 1.82 when sharding).
    async fn ironic_client(&self, calls: &sync::Calls) -> Result<BaremetalClient, DriverError> {
        self.ironic
            .get_or_try_init(|| async {
                let probe = BaremetalClient::new(self.config.ironic_url.clone(), "1.1");
                calls.ironic();
                let (_, max) = probe
                    .version_range()
                    .await
                    .map_err(|e| DriverError(format!("reaching the Bare Metal API: {e}")))?;
                let server = parse_version(&max)
                    .ok_or_else(|| DriverError(format!("the Bare Metal API reports version {max:?}")))?;
                let wanted = parse_version(&self.options.ironic_microversion).unwrap_or(SHARD_VERSION);
                let chosen = wanted.min(server);
                if chosen < MIN_IRONIC_VERSION {
                    return Err(DriverError(format!(
                        "the Bare Metal API supports up to {max}; the driver needs 1.46"
                    )));
                }
                if self.config.shard.is_some() && chosen < SHARD_VERSION {
                    // Listing unfiltered would manage other shards' nodes.
                    return Err(DriverError(format!(
                        "a shard is configured but the Bare Metal API supports only up to {max} (shards need 1.82)"
                    )));
                }
                let version = format!("{}.{}", chosen.0, chosen.1);
                tracing::info!(version, "negotiated the Bare Metal API microversion");
                Ok(BaremetalClient::new(self.config.ironic_url.clone(), version))
            })
            .await
            .cloned()
    }

    /// One run of the resource periodic: lists the owned nodes and makes
    /// Placement match them, writing only what changed.
    pub async fn sync(&self) -> Result<SyncReport, DriverError> {
        sync::run(self).await
    }

    /// Deploys `request.instance_uuid` on `request.node_uuid` and waits
    /// until it is `active` (or fails and cleans up).
    pub async fn spawn(&self, request: &SpawnRequest) -> Result<(), SpawnError> {
        self.do_spawn(request, &never_cancelled()).await
    }

    /// [`spawn`](Self::spawn) that stops with [`SpawnError::Cancelled`] once
    /// `cancel` reads `true`. It stops only between API calls, so when it
    /// returns no request of it is still in flight, and the caller's
    /// teardown sees the node as the spawn left it.
    pub async fn spawn_cancellable(
        &self,
        request: &SpawnRequest,
        cancel: &CancelSignal,
    ) -> Result<(), SpawnError> {
        self.do_spawn(request, cancel).await
    }

    /// Tears the instance down and waits until the node is free again.
    pub async fn destroy(&self, node_uuid: &str, instance_uuid: &str) -> Result<(), DriverError> {
        self.do_destroy(node_uuid, instance_uuid).await
    }

    /// Soft reboot falling back to hard when `soft`, else hard.
    pub async fn reboot(&self, node_uuid: &str, soft: bool) -> Result<(), DriverError> {
        self.do_reboot(node_uuid, soft).await
    }

    pub async fn power_on(&self, node_uuid: &str) -> Result<(), DriverError> {
        self.do_power(node_uuid, "power on").await
    }

    pub async fn power_off(&self, node_uuid: &str) -> Result<(), DriverError> {
        self.do_power(node_uuid, "power off").await
    }

    /// Redeploys the instance's image (and config drive) on its node.
    pub async fn rebuild(&self, request: &SpawnRequest) -> Result<(), SpawnError> {
        self.do_rebuild(request).await
    }

    pub async fn get_info(&self, node_uuid: &str) -> Result<InstanceInfo, DriverError> {
        self.do_get_info(node_uuid).await
    }
}
