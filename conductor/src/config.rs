//! The conductor's configuration: defaults < TOML file < environment < flags.

use std::path::PathBuf;

use ferrite_service_kit::{JsonLimits, QueryLimits, RateLimitConfig};
use serde::Deserialize;

use crate::hardware::InterfaceConfig;

pub const DEFAULT_BIND: &str = "127.0.0.1:6385";

/// The validated configuration the service runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: String,
    pub database_url: String,
    /// Connection pool size.
    pub max_connections: u32,
    /// This conductor's name in `conductor`, `reservation` and the
    /// conductors list (upstream's `[DEFAULT] host`).
    pub host: String,
    /// The conductor group this conductor serves (`[conductor] conductor_group`).
    pub conductor_group: String,
    /// Enabled hardware types and interfaces, defaults per interface kind.
    pub hardware: InterfaceConfig,
    /// Delays of the fake interfaces, in seconds (upstream's `[fake]` group);
    /// lets tests and demos keep a node busy for a while.
    pub fake: FakeDelays,
    /// Largest accepted config drive, in bytes (after base64, as sent).
    pub max_configdrive_bytes: usize,
    /// Seconds between conductor heartbeats (the `conductors` table).
    pub heartbeat_interval_secs: u64,
    /// A conductor whose heartbeat is older than this is offline.
    pub heartbeat_timeout_secs: u64,
    /// How many times a task retries to reserve a busy node before 409.
    pub node_locked_retry_attempts: u32,
    /// Pause between those retries, milliseconds.
    pub node_locked_retry_interval_ms: u64,
    /// Base URL used in links when set.
    pub public_endpoint: Option<String>,
    /// Without `public_endpoint`, build links from the request's `Host`
    /// header (upstream's behaviour) instead of the address the request
    /// arrived on. Only for deployments behind a proxy that sets `Host`.
    pub trust_host_header: bool,
    /// Largest request body of every route but the provision-state one
    /// (which takes a config drive: `max_configdrive_bytes` plus 1 MiB).
    pub max_request_body_bytes: usize,
    /// Bounds of JSON bodies and of every JSON field stored in a node or
    /// port (`[json_limits]`).
    pub json_limits: JsonLimits,
    /// Bounds of query strings (`[query_limits]`).
    pub query_limits: QueryLimits,
    /// Per-client rate limit of the API (`[rate_limit]`).
    pub rate_limit: RateLimitConfig,
    /// Per-client rate limit of the agent endpoints, lookup and heartbeat
    /// (`[agent_rate_limit]`).
    pub agent_rate_limit: RateLimitConfig,
    /// Real deploys: netboot, agent and image settings (`[deploy]`).
    pub deploy: DeployConfig,
    /// Seconds between power-state sync rounds (upstream's `[conductor]
    /// sync_power_state_interval`); 0 turns the sync off.
    pub sync_power_state_interval_secs: f64,
    /// Whether the sync puts a machine back into its recorded power state
    /// (true, upstream's default) or records the machine's state (false).
    pub force_power_state_during_sync: bool,
    /// Rounds in disagreement before the node goes into maintenance.
    pub power_state_sync_max_retries: u32,
    /// Seconds between checks of nodes in maintenance for a power failure
    /// (upstream's `power_failure_recovery_interval`); 0 turns it off.
    pub power_failure_recovery_interval_secs: f64,
}

/// Settings of real deploys (pxe/ipxe boot, the direct deploy, the agent).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeployConfig {
    /// Root of the built-in TFTP server (per-node PXE configs, kernels).
    pub tftp_root: PathBuf,
    /// Root of the built-in HTTP boot server (iPXE scripts, kernels, and
    /// the instance images agents download).
    pub http_root: PathBuf,
    /// Per-MAC DHCP option files (`<mac>.json`) for a DHCP server to consume.
    pub dhcp_dir: PathBuf,
    /// Cache of downloaded/converted images.
    pub image_cache_dir: PathBuf,
    /// Where the TFTP server listens (UDP); `None`: no TFTP server.
    pub tftp_bind: Option<String>,
    /// Where the HTTP boot server listens; `None`: no HTTP boot server.
    pub http_bind: Option<String>,
    /// The HTTP boot server's URL as machines reach it (default: from
    /// `http_bind`).
    pub http_url: Option<String>,
    /// The Bare Metal API URL agents call (`ipa-api-url`; default: from
    /// `public_endpoint` or `bind`).
    pub api_url: Option<String>,
    /// Upstream's `[conductor] deploy_callback_timeout`, seconds.
    pub callback_timeout_secs: u64,
    /// Accept md5 image checksums.
    pub allow_md5: bool,
    /// Extra kernel parameters of the deploy ramdisk
    /// (`[pxe] kernel_append_params`).
    pub kernel_append_params: String,
    /// Where real bootloaders (`pxelinux.0`, `bootx64.efi`,
    /// `undionly.kpxe`, `snponly.efi`) are copied from into `tftp_root`;
    /// missing ones are written as placeholders.
    pub bootloader_dir: Option<PathBuf>,
    /// Directories `file://` image, kernel and ramdisk URLs may name
    /// (upstream's `[conductor] file_url_allowed_paths`). The file must stay
    /// inside one of them once symlinks are resolved; [`SYSTEM_DIRS`] are
    /// refused whatever this list says.
    pub file_url_allowed_paths: Vec<PathBuf>,
    /// Image formats, as the inspector detects them, the conductor accepts
    /// (upstream's `[conductor] permitted_image_formats`).
    pub permitted_image_formats: Vec<String>,
    /// Seconds a download may wait to connect or for its next bytes.
    pub image_download_read_timeout_secs: u64,
    /// Seconds a whole download (image, kernel or ramdisk) may take.
    pub image_download_timeout_secs: u64,
    /// Largest image, kernel or ramdisk fetched, in bytes, and largest
    /// virtual size an image is converted to raw at.
    pub image_max_bytes: u64,
    /// Disk space each cache (instance images; kernels and ramdisks of each
    /// boot root) may keep, in bytes; least recently used entries not in
    /// use go first (upstream's `[pxe] image_cache_size`).
    pub image_cache_max_bytes: u64,
    /// Seconds each deploy step the conductor runs may take, waiting for
    /// the agent included.
    pub deploy_step_timeout_secs: u64,
    /// TFTP transfers running at once; requests beyond are dropped.
    pub tftp_max_transfers: usize,
    /// TFTP transfers running at once for one client address.
    pub tftp_max_transfers_per_client: usize,
    /// The largest TFTP block size granted to a client (`blksize`).
    pub tftp_max_blksize: usize,
    /// Seconds before an unacknowledged TFTP packet is sent again.
    pub tftp_timeout_secs: u64,
    /// The longest retransmission timeout a TFTP client may ask for.
    pub tftp_max_timeout_secs: u64,
    /// How many times a TFTP packet is sent again before the transfer is
    /// abandoned.
    pub tftp_retries: u32,
}

/// Directories no `file://` URL may name, whatever
/// `file_url_allowed_paths` says: devices, kernel interfaces, the boot
/// partition, runtime state and the host's configuration.
pub const SYSTEM_DIRS: &[&str] = &["/dev", "/proc", "/sys", "/boot", "/run", "/etc"];

/// Upstream's default `file_url_allowed_paths`.
pub const DEFAULT_FILE_URL_ALLOWED_PATHS: &[&str] = &[
    "/var/lib/ironic",
    "/shared/html",
    "/opt/cache/files",
    "/vagrant",
    "/templates",
];

/// Upstream's default `permitted_image_formats`.
pub const DEFAULT_PERMITTED_IMAGE_FORMATS: &[&str] = &["raw", "gpt", "qcow2", "iso"];

/// The image formats the inspector knows ([`crate::image_format`]).
pub const KNOWN_IMAGE_FORMATS: &[&str] = &[
    "raw", "gpt", "iso", "qcow2", "qed", "vmdk", "vpc", "vhdx", "vdi", "luks",
];

impl Default for DeployConfig {
    fn default() -> DeployConfig {
        DeployConfig::under(&default_data_dir())
    }
}

impl DeployConfig {
    /// The defaults with the boot roots, DHCP files and image cache under
    /// `data_dir` (never a shared, world-writable directory such as /tmp).
    pub fn under(data_dir: &std::path::Path) -> DeployConfig {
        let base = if data_dir.is_absolute() {
            data_dir.to_path_buf()
        } else {
            std::env::current_dir()
                .unwrap_or_else(|_| PathBuf::from("/"))
                .join(data_dir)
        };
        let tftp = crate::tftp::TftpOptions::default();
        DeployConfig {
            tftp_root: base.join("tftpboot"),
            http_root: base.join("httpboot"),
            dhcp_dir: base.join("dhcp"),
            image_cache_dir: base.join("image-cache"),
            tftp_bind: None,
            http_bind: None,
            http_url: None,
            api_url: None,
            callback_timeout_secs: 1800,
            allow_md5: false,
            kernel_append_params: "nofb vga=normal".into(),
            bootloader_dir: None,
            file_url_allowed_paths: DEFAULT_FILE_URL_ALLOWED_PATHS
                .iter()
                .map(PathBuf::from)
                .collect(),
            permitted_image_formats: DEFAULT_PERMITTED_IMAGE_FORMATS
                .iter()
                .map(|f| f.to_string())
                .collect(),
            image_download_read_timeout_secs: 60,
            image_download_timeout_secs: 3600,
            // Large whole-disk images are tens of GiB; beyond this an image
            // is more likely a mistake or an attack than an OS.
            image_max_bytes: 64 << 30,
            // Upstream's 20480 MiB.
            image_cache_max_bytes: 20 << 30,
            // Above the download deadline plus a conversion, and the
            // agent's own command timeout (an hour).
            deploy_step_timeout_secs: 7200,
            tftp_max_transfers: tftp.max_transfers,
            tftp_max_transfers_per_client: tftp.max_transfers_per_client,
            tftp_max_blksize: tftp.max_blksize,
            tftp_timeout_secs: tftp.timeout.as_secs(),
            tftp_max_timeout_secs: tftp.max_timeout.as_secs(),
            tftp_retries: tftp.retries,
        }
    }

    /// The TFTP server's settings.
    pub fn tftp_options(&self) -> crate::tftp::TftpOptions {
        crate::tftp::TftpOptions {
            timeout: std::time::Duration::from_secs(self.tftp_timeout_secs),
            retries: self.tftp_retries,
            max_transfers: self.tftp_max_transfers,
            max_transfers_per_client: self.tftp_max_transfers_per_client,
            max_blksize: self.tftp_max_blksize,
            max_timeout: std::time::Duration::from_secs(self.tftp_max_timeout_secs),
        }
    }
}

/// Upstream's `[fake]` delays: each operation of a fake interface sleeps
/// this many seconds before it completes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FakeDelays {
    #[serde(default)]
    pub power_delay: f64,
    #[serde(default)]
    pub deploy_delay: f64,
    #[serde(default)]
    pub boot_delay: f64,
    #[serde(default)]
    pub management_delay: f64,
    #[serde(default)]
    pub inspect_delay: f64,
    #[serde(default)]
    pub clean_delay: f64,
    #[serde(default)]
    pub rescue_delay: f64,
}

impl Config {
    /// Defaults over `database_url`: for tests and embedding.
    pub fn for_database(database_url: impl Into<String>) -> Config {
        Config {
            bind: DEFAULT_BIND.to_string(),
            database_url: database_url.into(),
            max_connections: 8,
            host: default_host(),
            conductor_group: String::new(),
            hardware: InterfaceConfig::default(),
            fake: FakeDelays::default(),
            // Well under MySQL's default 16 MiB max_allowed_packet, with the
            // rest of the node document on top.
            max_configdrive_bytes: 8 * 1024 * 1024,
            heartbeat_interval_secs: 10,
            heartbeat_timeout_secs: 60,
            node_locked_retry_attempts: 3,
            node_locked_retry_interval_ms: 1000,
            public_endpoint: None,
            trust_host_header: false,
            max_request_body_bytes: 1024 * 1024,
            json_limits: JsonLimits::default(),
            query_limits: QueryLimits::default(),
            rate_limit: RateLimitConfig::default(),
            agent_rate_limit: default_agent_rate_limit(),
            deploy: DeployConfig::default(),
            sync_power_state_interval_secs: 60.0,
            force_power_state_during_sync: true,
            power_state_sync_max_retries: 3,
            power_failure_recovery_interval_secs: 300.0,
        }
    }
}

/// Agents look up once and heartbeat every few tens of seconds; a burst
/// covers a restarting agent's retries.
pub fn default_agent_rate_limit() -> RateLimitConfig {
    RateLimitConfig::per_client(1.0, 20)
}

pub use ferrite_service_kit::defaults::default_host;

/// The TOML file; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub bind: Option<String>,
    pub database_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub max_connections: Option<u32>,
    pub host: Option<String>,
    pub conductor_group: Option<String>,
    pub max_configdrive_bytes: Option<usize>,
    pub heartbeat_interval_secs: Option<u64>,
    pub heartbeat_timeout_secs: Option<u64>,
    pub node_locked_retry_attempts: Option<u32>,
    pub node_locked_retry_interval_ms: Option<u64>,
    pub public_endpoint: Option<String>,
    pub trust_host_header: Option<bool>,
    pub max_request_body_bytes: Option<usize>,
    pub json_limits: Option<JsonLimits>,
    pub query_limits: Option<QueryLimits>,
    pub rate_limit: Option<RateLimitConfig>,
    pub agent_rate_limit: Option<RateLimitConfig>,
    pub hardware: Option<InterfaceConfig>,
    pub fake: Option<FakeDelays>,
    pub deploy: Option<DeployConfig>,
    pub sync_power_state_interval_secs: Option<f64>,
    pub force_power_state_during_sync: Option<bool>,
    pub power_state_sync_max_retries: Option<u32>,
    pub power_failure_recovery_interval_secs: Option<f64>,
}

/// Flags and environment (clap resolves both), the highest layer.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub bind: Option<String>,
    pub database_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub max_connections: Option<u32>,
    pub host: Option<String>,
    pub conductor_group: Option<String>,
    pub public_endpoint: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {0}: {1}")]
    Read(String, std::io::Error),
    #[error("invalid config file {0}: {1}")]
    Parse(String, toml::de::Error),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

pub use ferrite_service_kit::defaults::default_data_dir;

impl Config {
    pub fn load(file: Option<&str>, overrides: Overrides) -> Result<Config, ConfigError> {
        let file_config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::Read(path.to_string(), e))?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| ConfigError::Parse(path.to_string(), e))?
            }
            None => FileConfig::default(),
        };
        let data_dir = overrides
            .data_dir
            .or(file_config.data_dir)
            .unwrap_or_else(default_data_dir);
        let database_url = match overrides.database_url.or(file_config.database_url) {
            Some(url) => url,
            None => {
                std::fs::create_dir_all(&data_dir).map_err(|e| {
                    ConfigError::Invalid(format!("cannot create {}: {e}", data_dir.display()))
                })?;
                format!(
                    "sqlite://{}?mode=rwc",
                    data_dir.join("conductor.db").display()
                )
            }
        };
        let mut config = Config::for_database(database_url);
        if let Some(bind) = overrides.bind.or(file_config.bind) {
            config.bind = bind;
        }
        if let Some(n) = overrides.max_connections.or(file_config.max_connections) {
            config.max_connections = n;
        }
        if let Some(host) = overrides.host.or(file_config.host) {
            config.host = host;
        }
        if let Some(group) = overrides.conductor_group.or(file_config.conductor_group) {
            config.conductor_group = group;
        }
        config.public_endpoint = overrides.public_endpoint.or(file_config.public_endpoint);
        if let Some(n) = file_config.max_configdrive_bytes {
            config.max_configdrive_bytes = n;
        }
        if let Some(trust) = file_config.trust_host_header {
            config.trust_host_header = trust;
        }
        if let Some(n) = file_config.max_request_body_bytes {
            config.max_request_body_bytes = n;
        }
        if let Some(limits) = file_config.json_limits {
            config.json_limits = limits;
        }
        if let Some(limits) = file_config.query_limits {
            config.query_limits = limits;
        }
        if let Some(limit) = file_config.rate_limit {
            config.rate_limit = limit;
        }
        if let Some(limit) = file_config.agent_rate_limit {
            config.agent_rate_limit = limit;
        }
        if let Some(n) = file_config.heartbeat_interval_secs {
            config.heartbeat_interval_secs = n;
        }
        if let Some(n) = file_config.heartbeat_timeout_secs {
            config.heartbeat_timeout_secs = n;
        }
        if let Some(n) = file_config.node_locked_retry_attempts {
            config.node_locked_retry_attempts = n;
        }
        if let Some(n) = file_config.node_locked_retry_interval_ms {
            config.node_locked_retry_interval_ms = n;
        }
        if let Some(hardware) = file_config.hardware {
            config.hardware = hardware;
        }
        if let Some(fake) = file_config.fake {
            config.fake = fake;
        }
        if let Some(deploy) = file_config.deploy {
            config.deploy = deploy;
        }
        // Roots the file left at their defaults live under the data dir.
        let defaults = DeployConfig::default();
        let ours = DeployConfig::under(&data_dir);
        let deploy = &mut config.deploy;
        if deploy.tftp_root == defaults.tftp_root {
            deploy.tftp_root = ours.tftp_root;
        }
        if deploy.http_root == defaults.http_root {
            deploy.http_root = ours.http_root;
        }
        if deploy.dhcp_dir == defaults.dhcp_dir {
            deploy.dhcp_dir = ours.dhcp_dir;
        }
        if deploy.image_cache_dir == defaults.image_cache_dir {
            deploy.image_cache_dir = ours.image_cache_dir;
        }
        if let Some(secs) = file_config.sync_power_state_interval_secs {
            config.sync_power_state_interval_secs = secs;
        }
        if let Some(force) = file_config.force_power_state_during_sync {
            config.force_power_state_during_sync = force;
        }
        if let Some(n) = file_config.power_state_sync_max_retries {
            config.power_state_sync_max_retries = n;
        }
        if let Some(secs) = file_config.power_failure_recovery_interval_secs {
            config.power_failure_recovery_interval_secs = secs;
        }
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.host.trim().is_empty() || self.host.len() > 255 {
            return Err(ConfigError::Invalid(
                "host must be 1 to 255 characters".into(),
            ));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "max_connections must be positive".into(),
            ));
        }
        if self.max_request_body_bytes == 0 {
            return Err(ConfigError::Invalid(
                "max_request_body_bytes must be positive".into(),
            ));
        }
        self.json_limits.validate().map_err(ConfigError::Invalid)?;
        for (key, limit) in [
            ("rate_limit", &self.rate_limit),
            ("agent_rate_limit", &self.agent_rate_limit),
        ] {
            limit
                .validate()
                .map_err(|e| ConfigError::Invalid(format!("[{key}] {e}")))?;
        }
        for (name, secs) in [
            (
                "sync_power_state_interval_secs",
                self.sync_power_state_interval_secs,
            ),
            (
                "power_failure_recovery_interval_secs",
                self.power_failure_recovery_interval_secs,
            ),
        ] {
            if !secs.is_finite() || secs < 0.0 {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be a number of seconds >= 0"
                )));
            }
        }
        if self.heartbeat_interval_secs == 0
            || self.heartbeat_timeout_secs <= self.heartbeat_interval_secs
        {
            return Err(ConfigError::Invalid(
                "heartbeat_timeout_secs must exceed heartbeat_interval_secs > 0".into(),
            ));
        }
        let delays = &self.fake;
        for delay in [
            delays.power_delay,
            delays.deploy_delay,
            delays.boot_delay,
            delays.management_delay,
            delays.inspect_delay,
            delays.clean_delay,
            delays.rescue_delay,
        ] {
            if !(0.0..=3600.0).contains(&delay) {
                return Err(ConfigError::Invalid(
                    "fake delays must be between 0 and 3600 seconds".into(),
                ));
            }
        }
        crate::hardware::Registry::new(self.hardware.clone())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        self.deploy.validate()?;
        Ok(())
    }
}

impl DeployConfig {
    /// Checks addresses and URLs so a typo fails at start, not at the
    /// first deploy.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, bind) in [
            ("tftp_bind", &self.tftp_bind),
            ("http_bind", &self.http_bind),
        ] {
            if let Some(bind) = bind {
                if bind.parse::<std::net::SocketAddr>().is_err() {
                    return Err(ConfigError::Invalid(format!(
                        "[deploy] {key} must be an IP address and port such as \"0.0.0.0:69\", not {bind:?}"
                    )));
                }
            }
        }
        for (key, value) in [("http_url", &self.http_url), ("api_url", &self.api_url)] {
            if let Some(value) = value {
                let ok = url::Url::parse(value)
                    .map(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                    .unwrap_or(false);
                if !ok {
                    return Err(ConfigError::Invalid(format!(
                        "[deploy] {key} must be an http(s) URL, not {value:?}"
                    )));
                }
            }
        }
        for (key, path) in [
            ("tftp_root", &self.tftp_root),
            ("http_root", &self.http_root),
            ("dhcp_dir", &self.dhcp_dir),
            ("image_cache_dir", &self.image_cache_dir),
        ] {
            if !path.is_absolute() {
                return Err(ConfigError::Invalid(format!(
                    "[deploy] {key} must be an absolute path, not {:?}",
                    path.display().to_string()
                )));
            }
        }
        if self.callback_timeout_secs == 0 {
            return Err(ConfigError::Invalid(
                "[deploy] callback_timeout_secs must be positive".into(),
            ));
        }
        for (key, secs) in [
            (
                "image_download_read_timeout_secs",
                self.image_download_read_timeout_secs,
            ),
            (
                "image_download_timeout_secs",
                self.image_download_timeout_secs,
            ),
            ("deploy_step_timeout_secs", self.deploy_step_timeout_secs),
        ] {
            if secs == 0 || secs > 7 * 86_400 {
                return Err(ConfigError::Invalid(format!(
                    "[deploy] {key} must be between 1 second and one week"
                )));
            }
        }
        if self.image_max_bytes == 0 || self.image_cache_max_bytes == 0 {
            return Err(ConfigError::Invalid(
                "[deploy] image_max_bytes and image_cache_max_bytes must be positive".into(),
            ));
        }
        for path in &self.file_url_allowed_paths {
            if !path.is_absolute() {
                return Err(ConfigError::Invalid(format!(
                    "[deploy] file_url_allowed_paths must hold absolute paths, not {:?}",
                    path.display().to_string()
                )));
            }
        }
        for format in &self.permitted_image_formats {
            if !KNOWN_IMAGE_FORMATS.contains(&format.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "[deploy] permitted_image_formats: unknown format {format:?} (known: {})",
                    KNOWN_IMAGE_FORMATS.join(", ")
                )));
            }
        }
        crate::boot::check_kernel_params(&self.kernel_append_params)
            .map_err(|e| ConfigError::Invalid(format!("[deploy] kernel_append_params: {e}")))?;
        for (key, value, range) in [
            ("tftp_max_transfers", self.tftp_max_transfers, 1..=4096),
            (
                "tftp_max_transfers_per_client",
                self.tftp_max_transfers_per_client,
                1..=4096,
            ),
            (
                "tftp_max_blksize",
                self.tftp_max_blksize,
                512..=crate::tftp::MAX_BLKSIZE,
            ),
            (
                "tftp_timeout_secs",
                self.tftp_timeout_secs as usize,
                1..=255,
            ),
            (
                "tftp_max_timeout_secs",
                self.tftp_max_timeout_secs as usize,
                1..=255,
            ),
            ("tftp_retries", self.tftp_retries as usize, 0..=20),
        ] {
            if !range.contains(&value) {
                return Err(ConfigError::Invalid(format!(
                    "[deploy] {key} must be between {} and {}, not {value}",
                    range.start(),
                    range.end()
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(toml_text: &str) -> Result<DeployConfig, String> {
        let file: FileConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        let deploy = file.deploy.unwrap_or_default();
        deploy.validate().map_err(|e| e.to_string())?;
        Ok(deploy)
    }

    #[test]
    fn image_fetching_options() {
        let defaults = DeployConfig::default();
        assert!(defaults
            .file_url_allowed_paths
            .contains(&PathBuf::from("/var/lib/ironic")));
        assert_eq!(
            defaults.permitted_image_formats,
            ["raw", "gpt", "qcow2", "iso"]
        );
        let set = deploy(
            "[deploy]\nfile_url_allowed_paths = [\"/srv/images\"]\n\
             permitted_image_formats = [\"raw\", \"vmdk\"]\n\
             image_download_read_timeout_secs = 5\nimage_download_timeout_secs = 60\n\
             image_max_bytes = 1000\nimage_cache_max_bytes = 2000\ndeploy_step_timeout_secs = 90\n",
        )
        .expect("valid");
        assert_eq!(set.file_url_allowed_paths, [PathBuf::from("/srv/images")]);
        assert_eq!(set.image_max_bytes, 1000);
        assert_eq!(set.deploy_step_timeout_secs, 90);
        for (bad, says) in [
            ("file_url_allowed_paths = [\"images\"]", "absolute"),
            ("permitted_image_formats = [\"exe\"]", "unknown format"),
            (
                "image_download_timeout_secs = 0",
                "image_download_timeout_secs",
            ),
            ("image_max_bytes = 0", "image_max_bytes"),
        ] {
            let err = deploy(&format!("[deploy]\n{bad}\n")).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn boot_roots_live_under_the_data_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let overrides = Overrides {
            data_dir: Some(data.clone()),
            database_url: Some("sqlite::memory:".into()),
            ..Overrides::default()
        };
        let config = Config::load(None, overrides).expect("config");
        let deploy = &config.deploy;
        for path in [
            &deploy.tftp_root,
            &deploy.http_root,
            &deploy.dhcp_dir,
            &deploy.image_cache_dir,
        ] {
            assert!(path.starts_with(&data), "{}", path.display());
        }
        // The defaults without a data dir are never in the shared temp dir.
        let defaults = DeployConfig::default();
        for path in [
            &defaults.tftp_root,
            &defaults.http_root,
            &defaults.dhcp_dir,
            &defaults.image_cache_dir,
        ] {
            assert!(
                !path.starts_with(std::env::temp_dir()),
                "{}",
                path.display()
            );
        }
    }

    #[test]
    fn tftp_limits_are_validated() {
        let mut config = Config::for_database("sqlite::memory:");
        assert!(config.validate().is_ok());
        config.deploy.tftp_max_transfers = 0;
        assert!(config.validate().is_err());
        config.deploy.tftp_max_transfers = 64;
        config.deploy.tftp_max_timeout_secs = 1000;
        assert!(config.validate().is_err());
        config.deploy.tftp_max_timeout_secs = 10;
        config.deploy.kernel_append_params = "a\nb".into();
        assert!(config.validate().is_err());
    }
}
