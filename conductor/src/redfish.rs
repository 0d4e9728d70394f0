//! A small Redfish client for the `redfish` power and management
//! interfaces: `driver_info` parsing and validation as upstream's redfish
//! utilities do it, the ComputerSystem lookup, power state and reset, and
//! the boot source override.
//!
//! Errors are operator-readable strings; they end in a node's `last_error`.

use std::time::Duration;

use serde_json::{json, Map, Value};

/// The `driver_info` keys the redfish interfaces read, with their
/// descriptions, in upstream's order (required first).
pub const PROPERTIES: &[(&str, &str)] = &[
    ("redfish_address", "The URL address to the Redfish controller. It must include the authority portion of the URL. If the scheme is missing, https is assumed. For example: https://mgmt.vendor.com. If a path is added, it will be used as the API endpoint root_prefix. Required"),
    ("redfish_system_id", "The canonical path to the ComputerSystem resource that the driver will interact with. It should include the root service, version and the unique resource path to a ComputerSystem within the same authority as the redfish_address property. For example: /redfish/v1/Systems/1. This property is only required if target BMC manages more than one ComputerSystem. Otherwise ironic will pick the only available ComputerSystem automatically."),
    ("redfish_username", "User account with admin/server-profile access privilege. Although this property is not mandatory it's highly recommended to set a username. Optional"),
    ("redfish_password", "User account password. Although this property is not mandatory, it's highly recommended to set a password. Optional"),
    ("redfish_verify_ca", "Either a Boolean value, a path to a CA_BUNDLE file or directory with certificates of trusted CAs. If set to True the driver will verify the host certificates; if False the driver will ignore verifying the SSL certificate. If it's a path the driver will use the specified certificate or one of the certificates in the directory. Defaults to True. Optional"),
    ("redfish_auth_type", "Redfish HTTP client authentication method. Can be \"basic\", \"session\" or \"auto\". If not set, the default value is taken from Ironic configuration as ``[redfish]auth_type`` option."),
];

/// Boot devices the redfish management interface can set, API names.
pub const BOOT_DEVICES: &[&str] = &["pxe", "disk", "cdrom", "bios"];

/// How certificates of an https BMC are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyCa {
    Yes,
    No,
    /// A CA bundle file (absolute path, at most [`MAX_CA_FILE_BYTES`]).
    Bundle(String),
}

/// The connection settings parsed from a node's `driver_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedfishInfo {
    pub node_uuid: String,
    /// `scheme://authority`, no path.
    pub address: String,
    /// The service root path, `/redfish/v1/` unless the address had a path.
    pub root_prefix: String,
    pub system_id: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub verify_ca: VerifyCa,
    pub auth_type: String,
}

fn python_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Parses and checks the redfish `driver_info` of a node, with upstream's
/// messages.
pub fn parse_driver_info(
    node_uuid: &str,
    info: &Map<String, Value>,
) -> Result<RedfishInfo, String> {
    let address = match info.get("redfish_address") {
        Some(Value::String(text)) if !text.is_empty() => text.clone(),
        Some(Value::Null) | None => {
            return Err(format!(
                "Missing the following Redfish properties in node {node_uuid} driver_info: ['redfish_address']"
            ))
        }
        Some(Value::String(_)) => {
            return Err(format!(
                "Missing the following Redfish properties in node {node_uuid} driver_info: ['redfish_address']"
            ))
        }
        Some(other) => {
            return Err(format!(
                "Invalid Redfish address {} set in driver_info/redfish_address on node {node_uuid}",
                value_text(other)
            ))
        }
    };
    let invalid_address = |address: &str| {
        format!(
            "Invalid Redfish address {address} set in driver_info/redfish_address on node {node_uuid}"
        )
    };
    let with_scheme = if address.contains("://") {
        address.clone()
    } else {
        format!("https://{address}")
    };
    let parsed = url::Url::parse(&with_scheme).map_err(|_| invalid_address(&with_scheme))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid_address(&with_scheme));
    }
    let mut base = format!(
        "{}://{}",
        parsed.scheme(),
        parsed.host_str().unwrap_or_default()
    );
    if let Some(port) = parsed.port() {
        base.push_str(&format!(":{port}"));
    }
    let root_prefix = match parsed.path() {
        "" | "/" => "/redfish/v1/".to_string(),
        path if path.ends_with('/') => path.to_string(),
        path => format!("{path}/"),
    };
    let system_id = match info.get("redfish_system_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(other) => {
            return Err(format!(
                "Invalid value \"{}\" set in driver_info/redfish_system_id on node {node_uuid}. The value should be a path (string) to the resource that the driver will interact with. For example: /redfish/v1/Systems/1",
                value_text(other)
            ))
        }
    };
    let verify_ca = match info.get("redfish_verify_ca") {
        None | Some(Value::Null) => VerifyCa::Yes,
        Some(Value::Bool(true)) => VerifyCa::Yes,
        Some(Value::Bool(false)) => VerifyCa::No,
        Some(Value::String(text)) => match python_bool(text) {
            Some(true) => VerifyCa::Yes,
            Some(false) => VerifyCa::No,
            // Only an absolute path to a regular file of bounded size: a
            // node's driver_info must not probe or read the conductor's
            // host (directories, devices, huge files).
            None if text.starts_with('/') => {
                check_ca_file(text).map_err(|e| {
                    format!("Invalid value set in driver_info/redfish_verify_ca on node {node_uuid}: {e}")
                })?;
                VerifyCa::Bundle(text.clone())
            }
            None => {
                return Err(format!(
                    "Invalid value type set in driver_info/redfish_verify_ca on node {node_uuid}. The value should be a Boolean or the absolute path to a CA file, not \"{text}\""
                ))
            }
        },
        Some(other) => {
            return Err(format!(
                "Invalid value type set in driver_info/redfish_verify_ca on node {node_uuid}. The value should be a Boolean or the absolute path to a CA file, not \"{}\"",
                value_text(other)
            ))
        }
    };
    let auth_type = match info.get("redfish_auth_type") {
        None | Some(Value::Null) => "auto".to_string(),
        Some(value) => value_text(value),
    };
    if !matches!(auth_type.as_str(), "basic" | "session" | "auto") {
        return Err(format!(
            "Invalid value \"{auth_type}\" set in driver_info/redfish_auth_type on node {node_uuid}. The value should be one of \"basic\", \"session\" or \"auto\"."
        ));
    }
    let text = |key: &str| match info.get(key) {
        None | Some(Value::Null) => None,
        Some(value) => Some(value_text(value)),
    };
    Ok(RedfishInfo {
        node_uuid: node_uuid.to_string(),
        address: base,
        root_prefix,
        system_id,
        username: text("redfish_username"),
        password: text("redfish_password"),
        verify_ca,
        auth_type,
    })
}

/// A failed Redfish request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedfishError {
    /// The BMC could not be reached at all.
    #[error(
        "Redfish connection failed for node {node}: Unable to connect to {url}. Error: {error}"
    )]
    Connection {
        node: String,
        url: String,
        error: String,
    },
    /// The BMC answered with an error status.
    #[error("HTTP {method} {url} returned code {status}. {message}")]
    Http {
        method: String,
        url: String,
        status: u16,
        message: String,
    },
    /// Anything else (unusable replies, ambiguous systems, timeouts).
    #[error("{0}")]
    Other(String),
}

impl RedfishError {
    /// The HTTP status of an error reply, if that is what it was.
    pub fn status(&self) -> Option<u16> {
        match self {
            RedfishError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The API's power state for a Redfish `PowerState`.
pub fn api_power_state(redfish: &str) -> Option<&'static str> {
    match redfish {
        "On" | "PoweringOn" => Some("power on"),
        "Off" | "PoweringOff" => Some("power off"),
        _ => None,
    }
}

/// The Redfish `BootSourceOverrideTarget` of an API boot device.
pub fn boot_target(device: &str) -> Option<&'static str> {
    match device {
        "pxe" => Some("Pxe"),
        "disk" => Some("Hdd"),
        "cdrom" => Some("Cd"),
        "bios" => Some("BiosSetup"),
        "uefihttp" => Some("UefiHttp"),
        _ => None,
    }
}

/// The API boot device of a Redfish `BootSourceOverrideTarget`.
pub fn api_boot_device(target: &str) -> Option<&'static str> {
    match target {
        "Pxe" => Some("pxe"),
        "Hdd" => Some("disk"),
        "Cd" => Some("cdrom"),
        "BiosSetup" => Some("bios"),
        "UefiHttp" => Some("uefihttp"),
        _ => None,
    }
}

/// The boot source override a system reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootOverride {
    pub device: Option<String>,
    pub persistent: Option<bool>,
    pub mode: Option<String>,
}

/// A client for one node's BMC.
pub struct RedfishClient {
    info: RedfishInfo,
    http: reqwest::Client,
}

/// Timeouts of BMC requests.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

impl RedfishClient {
    pub fn new(info: RedfishInfo) -> Result<RedfishClient, RedfishError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT);
        match &info.verify_ca {
            VerifyCa::Yes => {}
            VerifyCa::No => builder = builder.danger_accept_invalid_certs(true),
            VerifyCa::Bundle(path) => {
                let pem = read_ca_bundle(path).map_err(RedfishError::Other)?;
                for cert in reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| RedfishError::Other(format!("Invalid CA bundle {path}: {e}")))?
                {
                    builder = builder.add_root_certificate(cert);
                }
            }
        }
        let http = builder
            .build()
            .map_err(|e| RedfishError::Other(format!("Cannot build an HTTP client: {e}")))?;
        Ok(RedfishClient { info, http })
    }

    pub fn info(&self) -> &RedfishInfo {
        &self.info
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else if path.starts_with('/') {
            format!("{}{path}", self.info.address)
        } else {
            format!("{}{}{path}", self.info.address, self.info.root_prefix)
        }
    }

    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, RedfishError> {
        let url = self.url(path);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .header("Accept", "application/json")
            .header("OData-Version", "4.0");
        if let Some(user) = &self.info.username {
            request = request.basic_auth(user, self.info.password.as_deref());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            if e.is_connect() || e.is_timeout() || e.is_request() {
                RedfishError::Connection {
                    node: self.info.node_uuid.clone(),
                    url: url.clone(),
                    error: error_chain(&e),
                }
            } else {
                RedfishError::Other(format!("HTTP {method} {url} failed: {}", error_chain(&e)))
            }
        })?;
        let status = response.status();
        let text = match read_body(response).await {
            Ok(text) => text,
            Err(problem) => {
                return Err(RedfishError::Other(format!(
                    "The reply to HTTP {method} {url} {problem}"
                )))
            }
        };
        if !status.is_success() {
            return Err(RedfishError::Http {
                method: method.to_string(),
                url,
                status: status.as_u16(),
                message: extended_message(&text),
            });
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| {
            RedfishError::Other(format!(
                "HTTP {method} {url} returned a body that is not JSON: {e}"
            ))
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value, RedfishError> {
        self.request(reqwest::Method::GET, path, None).await
    }

    /// The path of the node's ComputerSystem: `redfish_system_id`, else the
    /// only member of the Systems collection.
    pub async fn system_path(&self) -> Result<String, RedfishError> {
        if let Some(id) = &self.info.system_id {
            if id.starts_with('/') {
                return Ok(id.clone());
            }
            return Ok(format!("{}Systems/{id}", self.info.root_prefix));
        }
        let root = self.get(&self.info.root_prefix.clone()).await?;
        let systems = root
            .pointer("/Systems/@odata.id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if systems.is_empty() {
            return Err(RedfishError::Other(format!(
                "The Redfish service at {} lists no Systems collection",
                self.info.address
            )));
        }
        let collection = self.get(&systems).await?;
        let members: Vec<String> = collection
            .get("Members")
            .and_then(Value::as_array)
            .map(|members| {
                members
                    .iter()
                    .filter_map(|m| m.get("@odata.id").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        match members.as_slice() {
            [only] => Ok(only.clone()),
            _ => Err(RedfishError::Other(format!(
                "Failed to determine the default ComputerSystem of node {}: the BMC manages {} systems, set driver_info/redfish_system_id",
                self.info.node_uuid,
                members.len()
            ))),
        }
    }

    /// The system resource.
    pub async fn system(&self) -> Result<(String, Value), RedfishError> {
        let path = self.system_path().await?;
        let system = self.get(&path).await?;
        Ok((path, system))
    }

    /// The system's Redfish `PowerState` (`On`, `Off`, …), if reported.
    pub async fn power_state(&self) -> Result<Option<String>, RedfishError> {
        let (_, system) = self.system().await?;
        Ok(system
            .get("PowerState")
            .and_then(Value::as_str)
            .map(str::to_string))
    }

    /// Posts `ComputerSystem.Reset` with `reset_type` (`On`, `ForceOff`, …).
    pub async fn reset(&self, reset_type: &str) -> Result<(), RedfishError> {
        let (path, system) = self.system().await?;
        let target = system
            .pointer("/Actions/#ComputerSystem.Reset/target")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| {
                format!(
                    "{}/Actions/ComputerSystem.Reset",
                    path.trim_end_matches('/')
                )
            });
        self.request(
            reqwest::Method::POST,
            &target,
            Some(&json!({ "ResetType": reset_type })),
        )
        .await?;
        Ok(())
    }

    /// Sets the boot source override (`target` is a Redfish name: `Pxe`,
    /// `Hdd`…); `mode` is `UEFI` or `Legacy` when known.
    pub async fn set_boot_override(
        &self,
        target: &str,
        persistent: bool,
        mode: Option<&str>,
    ) -> Result<(), RedfishError> {
        let path = self.system_path().await?;
        let mut boot = Map::new();
        boot.insert("BootSourceOverrideTarget".into(), json!(target));
        boot.insert(
            "BootSourceOverrideEnabled".into(),
            json!(if persistent { "Continuous" } else { "Once" }),
        );
        if let Some(mode) = mode {
            boot.insert("BootSourceOverrideMode".into(), json!(mode));
        }
        self.request(
            reqwest::Method::PATCH,
            &path,
            Some(&json!({ "Boot": Value::Object(boot) })),
        )
        .await?;
        Ok(())
    }

    /// The boot source override the system reports.
    pub async fn boot_override(&self) -> Result<BootOverride, RedfishError> {
        let (_, system) = self.system().await?;
        let boot = system.get("Boot").cloned().unwrap_or(Value::Null);
        let text = |key: &str| boot.get(key).and_then(Value::as_str).map(str::to_string);
        Ok(BootOverride {
            device: text("BootSourceOverrideTarget")
                .and_then(|t| api_boot_device(&t).map(str::to_string)),
            persistent: text("BootSourceOverrideEnabled").and_then(|e| match e.as_str() {
                "Continuous" => Some(true),
                "Once" | "Disabled" => Some(false),
                _ => None,
            }),
            mode: text("BootSourceOverrideMode"),
        })
    }
}

/// Largest CA file read for `redfish_verify_ca`.
pub const MAX_CA_FILE_BYTES: u64 = 1024 * 1024;
/// Largest BMC response body read; Redfish documents are a few KiB.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// `path` is a regular file of at most [`MAX_CA_FILE_BYTES`].
fn check_ca_file(path: &str) -> Result<std::fs::Metadata, String> {
    let meta = std::fs::metadata(path).map_err(|_| format!("no CA file at {path}"))?;
    if !meta.is_file() {
        return Err(format!("{path} is not a regular file"));
    }
    if meta.len() > MAX_CA_FILE_BYTES {
        return Err(format!(
            "the CA file {path} is larger than {MAX_CA_FILE_BYTES} bytes"
        ));
    }
    Ok(meta)
}

fn read_ca_bundle(path: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    check_ca_file(path)?;
    let file = std::fs::File::open(path).map_err(|e| format!("Cannot read CA file {path}: {e}"))?;
    let mut pem = Vec::new();
    // The file may have grown since it was checked.
    file.take(MAX_CA_FILE_BYTES + 1)
        .read_to_end(&mut pem)
        .map_err(|e| format!("Cannot read CA file {path}: {e}"))?;
    if pem.len() as u64 > MAX_CA_FILE_BYTES {
        return Err(format!(
            "the CA file {path} is larger than {MAX_CA_FILE_BYTES} bytes"
        ));
    }
    Ok(pem)
}

/// A response body, read up to [`MAX_RESPONSE_BYTES`].
async fn read_body(mut response: reqwest::Response) -> Result<String, String> {
    if response
        .content_length()
        .is_some_and(|len| len > MAX_RESPONSE_BYTES as u64)
    {
        return Err(format!("is larger than {MAX_RESPONSE_BYTES} bytes"));
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(format!("is larger than {MAX_RESPONSE_BYTES} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(format!("could not be read: {}", error_chain(&e))),
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The message of a Redfish error body (`error.@Message.ExtendedInfo`),
/// as sushy reports it.
fn extended_message(body: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return "unknown error".into();
    };
    let Some(error) = value.get("error") else {
        return "unknown error".into();
    };
    let code = error.get("code").and_then(Value::as_str).unwrap_or("");
    let message = error.get("message").and_then(Value::as_str).unwrap_or("");
    let extended: Vec<&str> = error
        .get("@Message.ExtendedInfo")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.get("Message").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let mut text = match (code.is_empty(), message.is_empty()) {
        (false, false) => format!("{code}: {message}"),
        (true, false) => message.to_string(),
        (false, true) => code.to_string(),
        (true, true) => "unknown error".to_string(),
    };
    if !extended.is_empty() {
        text.push_str(&format!(" Extended information: {}", extended.join("; ")));
    }
    text
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Upstream's wrapper text of driver failures.
pub fn wrap(error: impl std::fmt::Display) -> String {
    format!("Redfish exception occurred. Error: {error}")
}

/// Polls the power state until it is `target` (API name) or `timeout`
/// passed; the last state seen in the error.
pub async fn wait_for_power_state(
    client: &RedfishClient,
    target: &str,
    timeout: Duration,
    interval: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let state = client.power_state().await.map_err(|e| e.to_string())?;
        let api = state.as_deref().and_then(api_power_state);
        if api == Some(target) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "Timed out after {} seconds waiting for node {} to reach power state {target}; the BMC reports {}.",
                timeout.as_secs(),
                client.info().node_uuid,
                state.as_deref().unwrap_or("no power state")
            ));
        }
        tokio::time::sleep(interval).await;
    }
}
