//! Placement's configuration: defaults < TOML file < environment < flags.

use std::path::PathBuf;

use ferrite_service_kit::{JsonLimits, QueryLimits, RateLimitConfig};
use serde::Deserialize;

/// The validated configuration the service runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: String,
    pub database_url: String,
    /// Connection pool size (bounded; each in-flight request holds at most one).
    pub max_connections: u32,
    pub enforce_new_defaults: bool,
    pub policy_file: Option<String>,
    pub cors: CorsConfig,
    /// Project/user recorded for allocations written before microversion 1.8.
    pub incomplete_consumer_project_id: String,
    pub incomplete_consumer_user_id: String,
    /// Return a random sample of candidates when `limit` cuts the list
    /// (upstream's `[placement] randomize_allocation_candidates`).
    pub randomize_allocation_candidates: bool,
    /// Build `Location` from the request's `Host` header (upstream's
    /// behaviour) instead of the address the request arrived on.
    pub trust_host_header: bool,
    /// Largest request body of every route but the bulk ones.
    pub max_request_body_bytes: usize,
    /// Largest body of `POST /allocations` and `POST /reshaper`.
    pub max_bulk_body_bytes: usize,
    /// Bounds of JSON bodies (`[json_limits]`).
    pub json_limits: JsonLimits,
    /// Bounds of query strings (`[query_limits]`).
    pub query_limits: QueryLimits,
    /// Per-client rate limit (`[rate_limit]`).
    pub rate_limit: RateLimitConfig,
}

#[derive(Debug, Clone, Default)]
pub struct CorsConfig {
    pub allowed_origins: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_credentials: bool,
    pub max_age: Option<u64>,
}

impl CorsConfig {
    pub fn enabled(&self) -> bool {
        !self.allowed_origins.is_empty()
    }
}

pub const DEFAULT_BIND: &str = "127.0.0.1:8778";
const INCOMPLETE_CONSUMER_ID: &str = "00000000-0000-0000-0000-000000000000";

impl Config {
    /// A configuration for tests and embedding: SQLite at `database_url`,
    /// everything else default.
    pub fn for_database(database_url: impl Into<String>) -> Config {
        Config {
            bind: DEFAULT_BIND.to_string(),
            database_url: database_url.into(),
            max_connections: 8,
            enforce_new_defaults: false,
            policy_file: None,
            cors: CorsConfig {
                allow_methods: default_cors_methods(),
                allow_credentials: true,
                expose_headers: default_cors_expose(),
                ..CorsConfig::default()
            },
            incomplete_consumer_project_id: INCOMPLETE_CONSUMER_ID.to_string(),
            incomplete_consumer_user_id: INCOMPLETE_CONSUMER_ID.to_string(),
            randomize_allocation_candidates: false,
            trust_host_header: false,
            max_request_body_bytes: 1024 * 1024,
            max_bulk_body_bytes: 16 * 1024 * 1024,
            json_limits: JsonLimits::default(),
            query_limits: QueryLimits::default(),
            rate_limit: RateLimitConfig::default(),
        }
    }
}

fn default_cors_methods() -> Vec<String> {
    ["GET", "PUT", "POST", "DELETE", "PATCH"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn default_cors_expose() -> Vec<String> {
    vec!["openstack-api-version".to_string()]
}

/// The `[placement]`-style TOML file; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub bind: Option<String>,
    pub database_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub max_connections: Option<u32>,
    pub enforce_new_defaults: Option<bool>,
    pub policy_file: Option<String>,
    pub cors_allowed_origin: Option<Vec<String>>,
    pub cors_allow_headers: Option<Vec<String>>,
    pub cors_expose_headers: Option<Vec<String>>,
    pub cors_allow_methods: Option<Vec<String>>,
    pub cors_allow_credentials: Option<bool>,
    pub cors_max_age: Option<u64>,
    pub incomplete_consumer_project_id: Option<String>,
    pub incomplete_consumer_user_id: Option<String>,
    pub randomize_allocation_candidates: Option<bool>,
    pub trust_host_header: Option<bool>,
    pub max_request_body_bytes: Option<usize>,
    pub max_bulk_body_bytes: Option<usize>,
    pub json_limits: Option<JsonLimits>,
    pub query_limits: Option<QueryLimits>,
    pub rate_limit: Option<RateLimitConfig>,
}

/// Values from flags or the environment (clap resolves both), highest layer.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub bind: Option<String>,
    pub database_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub max_connections: Option<u32>,
    pub enforce_new_defaults: Option<bool>,
    pub policy_file: Option<String>,
    pub cors_allowed_origin: Option<Vec<String>>,
    pub cors_allow_headers: Option<Vec<String>>,
    pub randomize_allocation_candidates: Option<bool>,
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
                    ConfigError::Invalid(format!(
                        "cannot create data dir {}: {e}",
                        data_dir.display()
                    ))
                })?;
                format!(
                    "sqlite://{}?mode=rwc",
                    data_dir.join("placement.db").display()
                )
            }
        };
        let mut config = Config::for_database(database_url);
        config.bind = overrides.bind.or(file_config.bind).unwrap_or(config.bind);
        config.max_connections = overrides
            .max_connections
            .or(file_config.max_connections)
            .unwrap_or(config.max_connections);
        config.enforce_new_defaults = overrides
            .enforce_new_defaults
            .or(file_config.enforce_new_defaults)
            .unwrap_or(false);
        config.policy_file = overrides.policy_file.or(file_config.policy_file);
        if let Some(origins) = overrides
            .cors_allowed_origin
            .or(file_config.cors_allowed_origin)
        {
            config.cors.allowed_origins = origins;
        }
        if let Some(headers) = overrides
            .cors_allow_headers
            .or(file_config.cors_allow_headers)
        {
            config.cors.allow_headers = headers;
        }
        if let Some(headers) = file_config.cors_expose_headers {
            config.cors.expose_headers = headers;
        }
        if let Some(methods) = file_config.cors_allow_methods {
            config.cors.allow_methods = methods;
        }
        if let Some(credentials) = file_config.cors_allow_credentials {
            config.cors.allow_credentials = credentials;
        }
        config.cors.max_age = file_config.cors_max_age;
        if let Some(project) = file_config.incomplete_consumer_project_id {
            config.incomplete_consumer_project_id = project;
        }
        if let Some(user) = file_config.incomplete_consumer_user_id {
            config.incomplete_consumer_user_id = user;
        }
        config.randomize_allocation_candidates = overrides
            .randomize_allocation_candidates
            .or(file_config.randomize_allocation_candidates)
            .unwrap_or(false);
        if let Some(trust) = file_config.trust_host_header {
            config.trust_host_header = trust;
        }
        if let Some(n) = file_config.max_request_body_bytes {
            config.max_request_body_bytes = n;
        }
        if let Some(n) = file_config.max_bulk_body_bytes {
            config.max_bulk_body_bytes = n;
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
        if self.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "max_connections must be at least 1".into(),
            ));
        }
        if self.max_request_body_bytes == 0 || self.max_bulk_body_bytes == 0 {
            return Err(ConfigError::Invalid(
                "max_request_body_bytes and max_bulk_body_bytes must be positive".into(),
            ));
        }
        self.json_limits.validate().map_err(ConfigError::Invalid)?;
        self.rate_limit
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("[rate_limit] {e}")))?;
        if self.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::Invalid(format!(
                "bind address {} is not host:port",
                self.bind
            )));
        }
        Ok(())
    }
}
