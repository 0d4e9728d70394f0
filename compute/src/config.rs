//! The compute service's configuration: defaults < TOML file < environment < flags.

use std::path::PathBuf;
use std::time::Duration;

use ferrite_service_kit::{JsonLimits, QueryLimits, RateLimitConfig};
use serde::Deserialize;

pub const DEFAULT_BIND: &str = "127.0.0.1:8774";

/// The validated configuration the service runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: String,
    pub database_url: String,
    /// Connection pool size.
    pub max_connections: u32,
    /// Placement base URL (no version suffix).
    pub placement_url: String,
    /// noauth2 token used towards Placement.
    pub placement_token: String,
    /// Bare Metal API base URL.
    pub ironic_url: String,
    /// This compute service's host name (`OS-EXT-SRV-ATTR:host`).
    pub host: String,
    /// Builds running at once (Nova's `max_concurrent_builds`); further
    /// builds wait for a slot, durable in `build_requests` meanwhile.
    pub max_concurrent_builds: usize,
    /// Node polling interval of the virt driver while (un)deploying.
    pub poll_interval: Duration,
    /// A deploy that takes longer fails.
    pub deploy_timeout: Duration,
    /// Interval of the driver's resource sync (`update_available_resource`).
    pub sync_interval: Duration,
    /// Scheduling attempts per build, reschedules included
    /// (Nova's `[scheduler] max_attempts`).
    pub max_attempts: u32,
    /// `limit` of allocation candidate queries (Nova's
    /// `[scheduler] max_placement_results`).
    pub max_placement_results: u32,
    /// 0 (default): claims are tried in a uniform shuffle of all candidates,
    /// which spreads concurrent builds over the fleet. n > 0: Nova's
    /// `[filter_scheduler] host_subset_size`, random among the first n that
    /// pass the filters, the rest in Placement's order.
    pub host_subset_size: usize,
    /// Only nodes of this conductor group.
    pub conductor_group: Option<String>,
    /// Only nodes of this shard.
    pub shard: Option<String>,
    /// Compute hosts sharing the nodes (hash ring); empty: all nodes are ours.
    pub peers: Vec<String>,
    /// Availability zone reported for servers.
    pub default_availability_zone: String,
    /// Base URL used in links when set.
    pub public_endpoint: Option<String>,
    /// URL schemes images may be registered and deployed with; http(s) by
    /// default, since the conductor fetches whatever an image names.
    pub image_url_schemes: Vec<String>,
    /// Without `public_endpoint`, build links from the request's `Host`
    /// header instead of the address the request arrived on.
    pub trust_host_header: bool,
    /// Largest request body (upstream's `[oslo_middleware]
    /// max_request_body_size`, 112 KiB); larger ones are 413 `overLimit`.
    pub max_request_body_bytes: usize,
    /// Bounds of JSON bodies (`[json_limits]`).
    pub json_limits: JsonLimits,
    /// Bounds of query strings (`[query_limits]`).
    pub query_limits: QueryLimits,
    /// Per-client rate limit of the API (`[rate_limit]`).
    pub rate_limit: RateLimitConfig,
}

impl Config {
    /// Defaults over `database_url`: for tests and embedding.
    pub fn for_database(database_url: impl Into<String>) -> Config {
        Config {
            bind: DEFAULT_BIND.to_string(),
            database_url: database_url.into(),
            max_connections: 8,
            placement_url: "http://127.0.0.1:8778".to_string(),
            placement_token: "admin".to_string(),
            ironic_url: "http://127.0.0.1:6385".to_string(),
            host: ferrite_service_kit::defaults::default_host(),
            max_concurrent_builds: 10,
            poll_interval: Duration::from_secs(2),
            deploy_timeout: Duration::from_secs(3600),
            sync_interval: Duration::from_secs(60),
            max_attempts: 3,
            max_placement_results: 1000,
            host_subset_size: 0,
            conductor_group: None,
            shard: None,
            peers: Vec::new(),
            default_availability_zone: "nova".to_string(),
            public_endpoint: None,
            image_url_schemes: vec!["http".to_string(), "https".to_string()],
            trust_host_header: false,
            max_request_body_bytes: 114_688,
            json_limits: JsonLimits::default(),
            query_limits: QueryLimits::default(),
            rate_limit: RateLimitConfig::default(),
        }
    }

    /// The virt driver's knobs this configuration sets.
    pub fn driver_options(&self) -> ferrite_virt_driver::DriverOptions {
        ferrite_virt_driver::DriverOptions {
            image_url_schemes: self.image_url_schemes.clone(),
            ..ferrite_virt_driver::DriverOptions::default()
        }
    }

    /// The virt driver's view of this configuration.
    pub fn driver_config(&self) -> ferrite_virt_driver::DriverConfig {
        ferrite_virt_driver::DriverConfig {
            ironic_url: self.ironic_url.clone(),
            placement_url: self.placement_url.clone(),
            placement_token: self.placement_token.clone(),
            host: self.host.clone(),
            conductor_group: self.conductor_group.clone(),
            shard: self.shard.clone(),
            peers: self.peers.clone(),
            poll_interval: self.poll_interval,
            deploy_timeout: self.deploy_timeout,
        }
    }
}

/// The TOML file; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub bind: Option<String>,
    pub database_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub max_connections: Option<u32>,
    pub placement_url: Option<String>,
    pub placement_token: Option<String>,
    pub ironic_url: Option<String>,
    pub host: Option<String>,
    pub max_concurrent_builds: Option<usize>,
    pub poll_interval_secs: Option<f64>,
    pub deploy_timeout_secs: Option<f64>,
    pub sync_interval_secs: Option<f64>,
    pub max_attempts: Option<u32>,
    pub max_placement_results: Option<u32>,
    pub host_subset_size: Option<usize>,
    pub conductor_group: Option<String>,
    pub shard: Option<String>,
    pub peers: Option<Vec<String>>,
    pub default_availability_zone: Option<String>,
    pub public_endpoint: Option<String>,
    pub image_url_schemes: Option<Vec<String>>,
    pub trust_host_header: Option<bool>,
    pub max_request_body_bytes: Option<usize>,
    pub json_limits: Option<JsonLimits>,
    pub query_limits: Option<QueryLimits>,
    pub rate_limit: Option<RateLimitConfig>,
}

/// Flags and environment (clap resolves both), the highest layer.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub bind: Option<String>,
    pub database_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub max_connections: Option<u32>,
    pub placement_url: Option<String>,
    pub ironic_url: Option<String>,
    pub host: Option<String>,
    pub max_concurrent_builds: Option<usize>,
    pub poll_interval_secs: Option<f64>,
    pub deploy_timeout_secs: Option<f64>,
    pub sync_interval_secs: Option<f64>,
    pub max_attempts: Option<u32>,
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

fn seconds(name: &str, value: f64) -> Result<Duration, ConfigError> {
    if !(value > 0.0 && value <= 86_400.0 * 7.0) {
        return Err(ConfigError::Invalid(format!(
            "{name} must be between 0 (exclusive) and one week"
        )));
    }
    Ok(Duration::from_secs_f64(value))
}

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
            .unwrap_or_else(ferrite_service_kit::defaults::default_data_dir);
        let database_url = match overrides.database_url.or(file_config.database_url) {
            Some(url) => url,
            None => {
                std::fs::create_dir_all(&data_dir).map_err(|e| {
                    ConfigError::Invalid(format!("cannot create {}: {e}", data_dir.display()))
                })?;
                format!(
                    "sqlite://{}?mode=rwc",
                    data_dir.join("compute.db").display()
                )
            }
        };
        let mut config = Config::for_database(database_url);
        macro_rules! layer {
            ($field:ident) => {
                if let Some(value) = overrides.$field.or(file_config.$field) {
                    config.$field = value;
                }
            };
        }
        layer!(bind);
        layer!(max_connections);
        layer!(placement_url);
        layer!(ironic_url);
        layer!(host);
        layer!(max_concurrent_builds);
        layer!(max_attempts);
        if let Some(token) = file_config.placement_token {
            config.placement_token = token;
        }
        if let Some(value) = overrides
            .poll_interval_secs
            .or(file_config.poll_interval_secs)
        {
            config.poll_interval = seconds("poll_interval_secs", value)?;
        }
        if let Some(value) = overrides
            .deploy_timeout_secs
            .or(file_config.deploy_timeout_secs)
        {
            config.deploy_timeout = seconds("deploy_timeout_secs", value)?;
        }
        if let Some(value) = overrides
            .sync_interval_secs
            .or(file_config.sync_interval_secs)
        {
            config.sync_interval = seconds("sync_interval_secs", value)?;
        }
        if let Some(n) = file_config.max_placement_results {
            config.max_placement_results = n;
        }
        if let Some(n) = file_config.host_subset_size {
            config.host_subset_size = n;
        }
        config.conductor_group = file_config.conductor_group.filter(|g| !g.is_empty());
        config.shard = file_config.shard.filter(|s| !s.is_empty());
        if let Some(peers) = file_config.peers {
            config.peers = peers;
        }
        if let Some(zone) = file_config.default_availability_zone {
            config.default_availability_zone = zone;
        }
        config.public_endpoint = overrides.public_endpoint.or(file_config.public_endpoint);
        if let Some(schemes) = file_config.image_url_schemes {
            config.image_url_schemes = schemes.iter().map(|s| s.to_ascii_lowercase()).collect();
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
        for scheme in &self.image_url_schemes {
            let valid = scheme.starts_with(|c: char| c.is_ascii_lowercase())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
            if !valid {
                return Err(ConfigError::Invalid(format!(
                    "image_url_schemes: {scheme:?} is not a lower-case URL scheme"
                )));
            }
        }
        if !(1..=1000).contains(&self.max_concurrent_builds) {
            return Err(ConfigError::Invalid(
                "max_concurrent_builds must be between 1 and 1000".into(),
            ));
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Err(ConfigError::Invalid(
                "max_attempts must be between 1 and 100".into(),
            ));
        }
        if self.max_request_body_bytes == 0 {
            return Err(ConfigError::Invalid(
                "max_request_body_bytes must be positive".into(),
            ));
        }
        self.json_limits.validate().map_err(ConfigError::Invalid)?;
        self.rate_limit
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("[rate_limit] {e}")))?;
        if self.max_placement_results == 0 {
            return Err(ConfigError::Invalid(
                "max_placement_results must be positive".into(),
            ));
        }
        for (name, url) in [
            ("placement_url", &self.placement_url),
            ("ironic_url", &self.ironic_url),
        ] {
            if url::Url::parse(url).is_err() {
                return Err(ConfigError::Invalid(format!("{name} is not a URL: {url}")));
            }
        }
        Ok(())
    }
}
