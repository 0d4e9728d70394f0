//! The `direct` deploy interface's pieces that do not need the engine: the
//! agent token, the deploy steps, the kernel parameters of the deploy
//! ramdisk, the `image_info` the agent's `write_image` takes, the config
//! drive as the agent wants it, and the conductor-side image cache.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use rand::RngCore;
use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::storage::{self, Doc};

/// Keys of `driver_internal_info` that describe the agent of the current
/// ramdisk boot; forgotten whenever the ramdisk goes away.
pub const AGENT_KEYS: &[&str] = &[
    "agent_secret_token",
    "agent_secret_token_pregenerated",
    "agent_url",
    "agent_verify_ca",
    "agent_last_heartbeat",
    "agent_version",
];

/// The priority upstream's agent gives `erase_devices_metadata` (used when
/// `[deploy] erase_devices_metadata_priority` is unset, its default).
pub const ERASE_DEVICES_METADATA_PRIORITY: i64 = 99;

/// Seconds the agent waits between heartbeats at most
/// (`[api] ramdisk_heartbeat_timeout`).
pub const RAMDISK_HEARTBEAT_TIMEOUT: u64 = 300;

/// Deploy and clean interfaces that run through the agent.
pub fn is_agent_deploy(name: &str) -> bool {
    name == "direct"
}

/// A fresh one-time agent token (URL-safe, as upstream's 128 random bytes).
pub fn generate_token() -> String {
    let mut bytes = [0u8; 128];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether an agent presented the node's token: both present, non-empty
/// and equal, compared in constant time.
pub fn token_matches(known: Option<&str>, given: Option<&str>) -> bool {
    use subtle::ConstantTimeEq;
    match (known, given) {
        (Some(known), Some(given)) if !known.is_empty() && !given.is_empty() => {
            known.as_bytes().ct_eq(given.as_bytes()).into()
        }
        _ => false,
    }
}

/// The HTTP header carrying the agent token from the conductor to the
/// agent's command API (never the query string, which ends up in URLs,
/// errors and logs).
pub const AGENT_TOKEN_HEADER: &str = "X-Agent-Token";

/// Removes the agent's token and URL (the ramdisk is gone or replaced).
pub fn wipe_agent(internal: &mut Map<String, Value>) {
    for key in AGENT_KEYS {
        internal.shift_remove(*key);
    }
}

fn step(name: &str, priority: i64, argsinfo: Value) -> Value {
    json!({
        "step": name,
        "priority": priority,
        "argsinfo": argsinfo,
        "interface": "deploy",
    })
}

/// The `direct` deploy interface's deploy steps, in the order they run.
pub fn direct_deploy_steps() -> Vec<Value> {
    vec![
        step("deploy", 100, Value::Null),
        step("write_image", 80, Value::Null),
        step("prepare_instance_boot", 60, Value::Null),
        step("tear_down_agent", 40, Value::Null),
        step("switch_to_tenant_network", 30, Value::Null),
        step("boot_instance", 20, Value::Null),
    ]
}

/// The automated clean step the `direct` deploy interface runs through
/// the agent.
pub fn erase_devices_metadata_step(priority: i64) -> Value {
    json!({
        "step": "erase_devices_metadata",
        "priority": priority,
        "interface": "deploy",
        "reboot_requested": false,
        "abortable": true,
        "argsinfo": null,
        "requires_ramdisk": true,
    })
}

/// The URL agents call: `[deploy] api_url`, else the public endpoint, else
/// the bind address.
pub fn api_url(config: &Config) -> String {
    if let Some(url) = &config.deploy.api_url {
        return url.trim_end_matches('/').to_string();
    }
    if let Some(url) = &config.public_endpoint {
        return url.trim_end_matches('/').to_string();
    }
    format!("http://{}", config.bind)
}

/// The HTTP boot server's URL as machines reach it.
pub fn http_url(config: &Config) -> Option<String> {
    if let Some(url) = &config.deploy.http_url {
        return Some(url.trim_end_matches('/').to_string());
    }
    config
        .deploy
        .http_bind
        .as_ref()
        .map(|bind| format!("http://{bind}"))
}

/// The agent's own kernel parameters of the deploy ramdisk
/// (`ipa-api-url=…`); the boot interface puts the node's or the configured
/// `kernel_append_params` in front of them, once.
pub fn kernel_params(config: &Config, _doc: &Doc) -> String {
    format!("ipa-api-url={}", api_url(config))
}

fn info_str<'a>(info: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    info.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// An integer field that may arrive as a number or a numeric string.
fn info_int(info: &Map<String, Value>, key: &str) -> Result<i64, String> {
    match info.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(|| format!("instance_info.{key} must be an integer, not {n}")),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(0),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| format!("instance_info.{key} must be an integer, not \"{s}\"")),
        Some(other) => Err(format!(
            "instance_info.{key} must be an integer, not {other}"
        )),
    }
}

/// The node's boot mode: `boot_mode`, else the `boot_mode` capability,
/// else UEFI (upstream's default).
pub fn boot_mode(doc: &Doc) -> String {
    if let Some(mode) = storage::doc_str(doc, "boot_mode").filter(|m| !m.is_empty()) {
        return mode.to_string();
    }
    let capabilities = doc
        .get("properties")
        .and_then(|p| p.get("capabilities"))
        .and_then(Value::as_str)
        .unwrap_or("");
    for pair in capabilities.split(',') {
        if let Some(("boot_mode", mode)) = pair.split_once(':') {
            return mode.trim().to_string();
        }
    }
    "uefi".into()
}

fn instance_info(doc: &Doc) -> Map<String, Value> {
    doc.get("instance_info")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Whether the node deploys a whole-disk image.
pub fn is_whole_disk(doc: &Doc) -> bool {
    let info = instance_info(doc);
    match info_str(&info, "image_type") {
        Some(kind) => kind != "partition",
        None => doc
            .get("driver_internal_info")
            .and_then(|i| i.get("is_whole_disk_image"))
            .and_then(Value::as_bool)
            .unwrap_or(true),
    }
}

/// What the `direct` deploy interface checks before a deploy.
pub fn validate(doc: &Doc) -> Result<(), String> {
    let info = instance_info(doc);
    if info_str(&info, "image_source").is_none() {
        return Err(format!(
            "Cannot validate image information for node {} because one or more parameters are missing from its instance_info. Missing are: ['image_source']",
            storage::doc_str(doc, "uuid").unwrap_or("")
        ));
    }
    if !is_whole_disk(doc) && info_int(&info, "root_gb")? <= 0 {
        return Err(
            "Cannot deploy a partition image without a positive instance_info.root_gb".into(),
        );
    }
    Ok(())
}

/// The image as the agent downloads it: its URL and, when the conductor
/// converted it, the format and checksum of what it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedImage {
    pub url: String,
    pub disk_format: Option<String>,
    /// `(algorithm, hex digest)` of the served file.
    pub hash: Option<(String, String)>,
}

/// The node's `disk_label` capability, if any.
fn disk_label(doc: &Doc) -> Option<String> {
    let capabilities = doc
        .get("properties")
        .and_then(|p| p.get("capabilities"))
        .and_then(Value::as_str)
        .unwrap_or("");
    capabilities
        .split(',')
        .find_map(|pair| match pair.split_once(':') {
            Some(("disk_label", label)) => Some(label.trim().to_string()),
            _ => None,
        })
}

/// Builds `image_info` for the agent's `write_image` step, with the keys
/// upstream's direct deploy sends (partition images add their layout).
pub fn image_info(
    doc: &Doc,
    image: &ServedImage,
    configdrive: Option<&Value>,
) -> Result<Value, String> {
    let info = instance_info(doc);
    let source = info_str(&info, "image_source").unwrap_or(&image.url);
    let id = source.rsplit('/').next().unwrap_or(source).to_string();
    let whole_disk = is_whole_disk(doc);
    let mut out = Map::new();
    out.insert("id".into(), json!(id));
    out.insert("urls".into(), json!([image.url]));
    let disk_format = image
        .disk_format
        .clone()
        .or_else(|| info_str(&info, "image_disk_format").map(str::to_string));
    out.insert("disk_format".into(), json!(disk_format));
    out.insert(
        "container_format".into(),
        json!(info_str(&info, "image_container_format")),
    );
    out.insert("stream_raw_images".into(), json!(true));
    match &image.hash {
        Some((algo, value)) => {
            out.insert("os_hash_algo".into(), json!(algo));
            out.insert("os_hash_value".into(), json!(value));
        }
        None => {
            if let Some(checksum) = info_str(&info, "image_checksum") {
                out.insert("checksum".into(), json!(checksum));
            }
            if let (Some(algo), Some(value)) = (
                info_str(&info, "image_os_hash_algo"),
                info_str(&info, "image_os_hash_value"),
            ) {
                out.insert("os_hash_algo".into(), json!(algo));
                out.insert("os_hash_value".into(), json!(value));
            }
        }
    }
    let mut proxies = Map::new();
    for scheme in ["http", "https"] {
        if let Some(proxy) = doc
            .get("driver_info")
            .and_then(|d| d.get(format!("image_{scheme}_proxy").as_str()))
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
        {
            proxies.insert(scheme.into(), json!(proxy));
        }
    }
    if !proxies.is_empty() {
        out.insert("proxies".into(), Value::Object(proxies));
        if let Some(no_proxy) = doc.get("driver_info").and_then(|d| d.get("image_no_proxy")) {
            out.insert("no_proxy".into(), no_proxy.clone());
        }
    }
    out.insert(
        "node_uuid".into(),
        json!(storage::doc_str(doc, "uuid").unwrap_or("")),
    );
    let mode = boot_mode(doc);
    out.insert(
        "image_type".into(),
        json!(if whole_disk {
            "whole-disk"
        } else {
            "partition"
        }),
    );
    out.insert("boot_mode".into(), json!(mode));
    if !whole_disk {
        let root_gb = info_int(&info, "root_gb")?;
        out.insert(
            "kernel".into(),
            info.get("kernel").cloned().unwrap_or(Value::Null),
        );
        out.insert(
            "ramdisk".into(),
            info.get("ramdisk").cloned().unwrap_or(Value::Null),
        );
        out.insert("root_gb".into(), json!(root_gb));
        out.insert("root_mb".into(), json!(1024 * root_gb));
        out.insert("swap_mb".into(), json!(info_int(&info, "swap_mb")?));
        out.insert(
            "ephemeral_mb".into(),
            json!(1024 * info_int(&info, "ephemeral_gb")?),
        );
        out.insert(
            "ephemeral_format".into(),
            info.get("ephemeral_format").cloned().unwrap_or(Value::Null),
        );
        out.insert(
            "configdrive".into(),
            configdrive.cloned().unwrap_or(Value::Null),
        );
        out.insert(
            "preserve_ephemeral".into(),
            json!(info.get("preserve_ephemeral").is_some_and(|v| match v {
                Value::Bool(b) => *b,
                Value::String(s) => {
                    matches!(s.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on")
                }
                _ => false,
            })),
        );
        out.insert("deploy_boot_mode".into(), json!(mode));
        out.insert("boot_option".into(), json!("local"));
        if let Some(label) = disk_label(doc) {
            out.insert("disk_label".into(), json!(label));
        }
    }
    if let Some(configdrive) = configdrive {
        out.insert("configdrive".into(), configdrive.clone());
    }
    Ok(Value::Object(out))
}

/// The config drive as the agent takes it: a URL or gzip+base64 string is
/// passed as is; a JSON description (`meta_data`, `user_data`,
/// `network_data`, `vendor_data`) is built into an ISO and packed.
pub fn configdrive_for_agent(doc: &Doc) -> Result<Option<Value>, String> {
    let info = instance_info(doc);
    match info.get("configdrive") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(Value::String(s.clone()))),
        Some(Value::Object(parts)) => {
            let user_data = match parts.get("user_data") {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) => Some(text.clone().into_bytes()),
                Some(other) => Some(other.to_string().into_bytes()),
            };
            let drive = ferrite_configdrive::ConfigDrive {
                meta_data: parts.get("meta_data").cloned().unwrap_or_else(|| json!({})),
                user_data,
                network_data: parts.get("network_data").cloned(),
                vendor_data: parts.get("vendor_data").cloned(),
            };
            let iso = drive
                .to_iso()
                .map_err(|e| format!("Failed to build the config drive: {e}"))?;
            Ok(Some(Value::String(ferrite_configdrive::pack(&iso))))
        }
        Some(other) => Err(format!(
            "instance_info.configdrive must be a string or an object, not {other}"
        )),
    }
}

/// Formats the agent writes without help (anything else is converted to
/// raw by the conductor first).
const AGENT_FORMATS: &[&str] = &["raw", "qcow2"];

/// Whether the conductor must fetch the image and serve it itself: a
/// `file://` image (the agent cannot reach the conductor's files),
/// `image_download_source` (instance_info over driver_info) `http` or
/// `local`, or an image format the agent does not write.
pub fn needs_cache(doc: &Doc) -> bool {
    let info = instance_info(doc);
    if info_str(&info, "image_source").is_some_and(|s| s.starts_with("file://")) {
        return true;
    }
    let source = info_str(&info, "image_download_source").or_else(|| {
        doc.get("driver_info")
            .and_then(|d| d.get("image_download_source"))
            .and_then(Value::as_str)
    });
    if matches!(source, Some("http" | "local")) {
        return true;
    }
    match info_str(&info, "image_disk_format") {
        Some(format) => !AGENT_FORMATS.contains(&format),
        None => false,
    }
}

/// A stable key for an image (its URL and checksum), FNV-1a 64 in hex.
pub fn cache_key(url: &str, checksum: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in url.bytes().chain([0u8]).chain(checksum.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The image's URL as the agent gets it; downloads, inspects, converts to
/// raw and serves the image from the HTTP root when [`needs_cache`] says
/// so. The node's copy is served as `images/<key>-<node>.img` until
/// [`release_served_image`]; while it is, the cache keeps the image.
pub async fn serve_image(config: &Config, doc: &Doc) -> Result<ServedImage, String> {
    let info = instance_info(doc);
    let Some(source) = info_str(&info, "image_source").map(str::to_string) else {
        return Err("instance_info.image_source is missing".into());
    };
    if !needs_cache(doc) {
        return Ok(ServedImage {
            url: source,
            disk_format: None,
            hash: None,
        });
    }
    let resolved = crate::images::resolve(&source, &config.deploy)?;
    let Some(base) = http_url(config) else {
        return Err(
            "Serving images from the conductor needs [deploy] http_url or http_bind".into(),
        );
    };
    let node = storage::doc_str(doc, "uuid").unwrap_or("");
    if node.is_empty() || node.contains('/') || node.starts_with('.') {
        return Err(format!("Invalid node UUID {node:?}"));
    }
    let declared_bytes = match info_int(&info, "image_size")? {
        n if n > 0 => Some(n as u64),
        _ => None,
    };
    let checksum = info_str(&info, "image_os_hash_value")
        .or_else(|| info_str(&info, "image_checksum"))
        .unwrap_or("");
    let key = cache_key(&source, checksum);
    let cache_dir = config.deploy.image_cache_dir.clone();
    let raw = cache_dir.join(format!("{key}.raw"));
    let sidecar = digest_path(&raw);
    // One fill per image at a time; other images go on meanwhile.
    let _entry = crate::images::lock_entry(&raw).await;
    let digest = match tokio::fs::read_to_string(&sidecar).await {
        Ok(digest) if raw.is_file() && !digest.trim().is_empty() => {
            crate::images::touch(&raw);
            digest.trim().to_string()
        }
        _ => {
            let limits = crate::images::Limits::from_config(&config.deploy, declared_bytes);
            fill_cache(config, &info, &source, &resolved, &raw, &limits).await?;
            let digest = sha256_file(&raw).await?;
            tokio::fs::write(&sidecar, &digest)
                .await
                .map_err(|e| format!("Cannot write {}: {e}", sidecar.display()))?;
            crate::images::touch(&raw);
            evict_images(config, &raw);
            digest
        }
    };
    let served_dir = config.deploy.http_root.join("images");
    tokio::fs::create_dir_all(&served_dir)
        .await
        .map_err(|e| format!("Cannot create {}: {e}", served_dir.display()))?;
    let name = format!("{key}-{node}.img");
    let served = served_dir.join(&name);
    let _ = tokio::fs::remove_file(&served).await;
    if tokio::fs::hard_link(&raw, &served).await.is_err() {
        tokio::fs::copy(&raw, &served)
            .await
            .map_err(|e| format!("Cannot copy the image to {}: {e}", served.display()))?;
    }
    Ok(ServedImage {
        url: format!("{base}/images/{name}"),
        disk_format: Some("raw".into()),
        hash: Some(("sha256".into(), digest)),
    })
}

/// Stops serving the node's copy of its image (the agent has written it,
/// or the step failed); the cached image may then be evicted.
pub async fn release_served_image(config: &Config, doc: &Doc) {
    let Some(node) = storage::doc_str(doc, "uuid").filter(|n| !n.is_empty()) else {
        return;
    };
    let suffix = format!("-{node}.img");
    let served_dir = config.deploy.http_root.join("images");
    for file in crate::images::files_in(&served_dir, |name| name.ends_with(&suffix)) {
        if let Err(e) = tokio::fs::remove_file(&file).await {
            tracing::warn!(node, file = %file.display(), error = %e, "cannot remove a served image");
        }
    }
}

/// Whether `name` is a node's served copy: `<16 hex>-<node UUID>.img`.
fn is_served_copy(name: &str) -> bool {
    let Some((key, rest)) = name.split_once('-') else {
        return false;
    };
    let Some(node) = rest.strip_suffix(".img") else {
        return false;
    };
    key.len() == 16
        && key.chars().all(|c| c.is_ascii_hexdigit())
        && uuid::Uuid::parse_str(node).is_ok()
}

/// Removes what a previous run left behind: the nodes' served copies
/// (recovery failed their deploys) and partial downloads and conversions
/// of the image cache and of the kernel and ramdisk caches.
pub fn clean_up_after_restart(config: &Config) {
    let deploy = &config.deploy;
    let partial = |name: &str| name.contains(".part-") || name.contains(".converting-");
    let mut leftovers = crate::images::files_in(&deploy.http_root.join("images"), is_served_copy);
    leftovers.extend(crate::images::files_in(&deploy.image_cache_dir, partial));
    for root in [&deploy.tftp_root, &deploy.http_root] {
        leftovers.extend(crate::images::files_in(
            &root.join(crate::boot::MASTER_IMAGES_DIR),
            partial,
        ));
    }
    for file in leftovers {
        if let Err(e) = std::fs::remove_file(&file) {
            tracing::warn!(file = %file.display(), error = %e, "cannot remove a leftover image file");
        }
    }
}

/// Where the sha256 of a cached image is kept.
fn digest_path(raw: &Path) -> PathBuf {
    let mut name = raw.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

/// Keeps the image cache within `[deploy] image_cache_max_bytes`: images
/// served to a node (hard-linked) or being filled stay, `keep` too.
fn evict_images(config: &Config, keep: &Path) {
    let raws = crate::images::files_in(&config.deploy.image_cache_dir, |name| {
        name.ends_with(".raw")
    });
    let entries = raws
        .into_iter()
        .filter_map(|raw| {
            let mut entry = crate::images::CacheEntry::single(raw.clone())?;
            entry.files.push(digest_path(&raw));
            Some(entry)
        })
        .collect();
    crate::images::evict(entries, config.deploy.image_cache_max_bytes, keep);
}

/// Fetches an image into the cache as raw: downloaded (or copied) within
/// the limits, checksum verified, format inspected (only permitted formats,
/// matching the declared one, referring to no other file), converted with
/// qemu-img told the format. Partial files never survive a failure.
async fn fill_cache(
    config: &Config,
    info: &Map<String, Value>,
    source: &str,
    resolved: &crate::images::Source,
    raw: &Path,
    limits: &crate::images::Limits,
) -> Result<(), String> {
    let cache_dir = &config.deploy.image_cache_dir;
    tokio::fs::create_dir_all(cache_dir)
        .await
        .map_err(|e| format!("Cannot create {}: {e}", cache_dir.display()))?;
    let stem = raw
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let download = crate::images::TempFile::new(cache_dir.join(format!("{stem}.part-{unique}")));
    crate::images::fetch(source, resolved, download.path(), limits).await?;
    verify_checksum(config, info, source, download.path()).await?;
    let refused = |why: String| format!("Image {source} was refused: {why}");
    let path = download.path().to_path_buf();
    let format = blocking(move || crate::image_format::detect_file(&path))
        .await?
        .map_err(refused)?;
    crate::image_format::check_permitted(format, &config.deploy.permitted_image_formats)
        .map_err(refused)?;
    crate::image_format::check_declared(info_str(info, "image_disk_format"), format)
        .map_err(refused)?;
    let path = download.path().to_path_buf();
    let inspection = blocking(move || crate::image_format::inspect(&path))
        .await?
        .map_err(refused)?;
    if inspection.is_raw() {
        return download.persist(raw).await;
    }
    let reported = qemu_img_info(inspection.format, download.path())
        .await
        .map_err(refused)?;
    let virtual_size = inspection.virtual_size.or(reported).unwrap_or(u64::MAX);
    if virtual_size > config.deploy.image_max_bytes {
        return Err(refused(format!(
            "its virtual size is larger than {} bytes ([deploy] image_max_bytes)",
            config.deploy.image_max_bytes
        )));
    }
    let converting =
        crate::images::TempFile::new(cache_dir.join(format!("{stem}.converting-{unique}")));
    convert_to_raw(inspection.format, download.path(), converting.path()).await?;
    converting.persist(raw).await
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| format!("Image inspection failed: {e}"))
}

/// How long qemu-img may look at an image's header.
const QEMU_IMG_INFO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// `qemu-img info` on an image whose format is known, as a second opinion
/// on its references to other files; returns its virtual size.
async fn qemu_img_info(format: &str, path: &Path) -> Result<Option<u64>, String> {
    let run = tokio::process::Command::new("qemu-img")
        .arg("info")
        .arg("--output=json")
        .arg("-f")
        .arg(format)
        .arg(path)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(QEMU_IMG_INFO_TIMEOUT, run)
        .await
        .map_err(|_| "qemu-img info took too long".to_string())?
        .map_err(|e| format!("Cannot run qemu-img: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "qemu-img cannot read it as {format}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let info: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("qemu-img info printed no JSON: {e}"))?;
    crate::image_format::check_qemu_info(&info, path)
}

/// Converts an inspected image to raw, qemu-img told its format (never
/// guessing it from the content).
async fn convert_to_raw(format: &str, from: &Path, to: &Path) -> Result<(), String> {
    let output = tokio::process::Command::new("qemu-img")
        .arg("convert")
        .arg("-f")
        .arg(format)
        .arg("-O")
        .arg("raw")
        .arg(from)
        .arg(to)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("Cannot run qemu-img: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "qemu-img failed to convert the image to raw: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(())
}

async fn sha256_file(path: &Path) -> Result<String, String> {
    digest_file("sha256sum", path).await
}

/// The hex digest of a file by one of coreutils' `*sum` tools.
async fn digest_file(tool: &str, path: &Path) -> Result<String, String> {
    let output = tokio::process::Command::new(tool)
        .arg(path)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("Cannot run {tool}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{tool} failed on {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .map(str::to_string)
        .ok_or_else(|| format!("{tool} printed nothing for {}", path.display()))
}

/// The checksum tool for an algorithm name (`image_os_hash_algo`), or for
/// a bare `image_checksum` by its length.
fn checksum_tool(algo: &str) -> Option<&'static str> {
    Some(match algo.to_ascii_lowercase().as_str() {
        "md5" => "md5sum",
        "sha1" => "sha1sum",
        "sha224" => "sha224sum",
        "sha256" => "sha256sum",
        "sha384" => "sha384sum",
        "sha512" => "sha512sum",
        _ => return None,
    })
}

/// Checks a downloaded image against `image_os_hash_algo`/`_value`, else
/// `image_checksum` (an md5 only when `[deploy] allow_md5`).
async fn verify_checksum(
    config: &Config,
    info: &Map<String, Value>,
    source: &str,
    file: &Path,
) -> Result<(), String> {
    let (algo, expected) = match (
        info_str(info, "image_os_hash_algo"),
        info_str(info, "image_os_hash_value"),
        info_str(info, "image_checksum"),
    ) {
        (Some(algo), Some(value), _) => (algo.to_string(), value.to_string()),
        (_, _, Some(checksum)) => {
            let algo = match checksum.len() {
                32 => "md5",
                64 => "sha256",
                128 => "sha512",
                _ => {
                    return Err(format!(
                        "Cannot tell the algorithm of image checksum {checksum} for {source}"
                    ))
                }
            };
            (algo.to_string(), checksum.to_string())
        }
        _ => return Ok(()),
    };
    if algo.eq_ignore_ascii_case("md5") && !config.deploy.allow_md5 {
        return Err(format!(
            "The image {source} only has an md5 checksum, which is not allowed ([deploy] allow_md5)"
        ));
    }
    let Some(tool) = checksum_tool(&algo) else {
        return Err(format!(
            "Unsupported checksum algorithm {algo} for image {source}"
        ));
    };
    let actual = digest_file(tool, file).await?;
    if !actual.eq_ignore_ascii_case(&expected) {
        return Err(format!(
            "The checksum of image {source} does not match: expected {algo} {expected}, got {actual}"
        ));
    }
    Ok(())
}

/// The node as sent to the agent with a command (secrets masked, as
/// upstream's `as_dict(secure=True)`; the config drive kept when
/// `with_configdrive`, as upstream does for deploy steps).
pub fn node_for_agent(doc: &Doc, with_configdrive: bool) -> Value {
    let mut node = Map::new();
    for key in [
        "uuid",
        "name",
        "driver",
        "properties",
        "instance_info",
        "driver_info",
        "driver_internal_info",
        "instance_uuid",
        "boot_mode",
        "provision_state",
    ] {
        let value = doc.get(key).cloned().unwrap_or(Value::Null);
        let value = match value {
            Value::Object(map)
                if matches!(
                    key,
                    "instance_info" | "driver_info" | "driver_internal_info"
                ) =>
            {
                let mut masked = mask_secrets(&map);
                if with_configdrive && key == "instance_info" {
                    if let Some(drive) = map.get("configdrive") {
                        masked.insert("configdrive".into(), drive.clone());
                    }
                }
                Value::Object(masked)
            }
            other => other,
        };
        node.insert(key.into(), value);
    }
    Value::Object(node)
}

/// Hides values under secret-looking keys (tokens, passwords, config
/// drives) from what is sent to the agent.
fn mask_secrets(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .map(|(key, value)| {
            let lower = key.to_ascii_lowercase();
            let secret = ["password", "secret", "token", "configdrive", "private_key"]
                .iter()
                .any(|word| lower.contains(word));
            let value = match value {
                _ if secret => json!("******"),
                Value::Object(inner) => Value::Object(mask_secrets(inner)),
                other => other.clone(),
            };
            (key.clone(), value)
        })
        .collect()
}

/// Ports as sent to the agent with a command.
pub fn ports_for_agent(ports: &[Doc]) -> Value {
    Value::Array(
        ports
            .iter()
            .map(|p| {
                json!({
                    "uuid": p.get("uuid").cloned().unwrap_or(Value::Null),
                    "address": p.get("address").cloned().unwrap_or(Value::Null),
                    "pxe_enabled": p.get("pxe_enabled").cloned().unwrap_or(json!(true)),
                    "local_link_connection": p.get("local_link_connection").cloned().unwrap_or(json!({})),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(value: Value) -> Doc {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn image_info_for_a_partition_image() {
        let node = doc(json!({
            "uuid": "1be26c0b-03f2-4d2e-ae87-c02d7f33c123",
            "boot_mode": "bios",
            "instance_info": {
                "image_source": "http://images/os.qcow2",
                "image_os_hash_algo": "sha256", "image_os_hash_value": "abc",
                "image_disk_format": "qcow2", "image_type": "partition",
                "root_gb": "10", "swap_mb": 512, "ephemeral_gb": 1,
            }
        }));
        let served = ServedImage {
            url: "http://images/os.qcow2".into(),
            disk_format: None,
            hash: None,
        };
        let info = image_info(&node, &served, None).expect("image_info");
        assert_eq!(info["urls"], json!(["http://images/os.qcow2"]));
        assert_eq!(info["node_uuid"], "1be26c0b-03f2-4d2e-ae87-c02d7f33c123");
        assert_eq!(info["root_gb"], 10);
        assert_eq!(info["id"], "os.qcow2");
        assert_eq!(info["root_mb"], 10240);
        assert_eq!(info["swap_mb"], 512);
        assert_eq!(info["ephemeral_mb"], 1024);
        assert_eq!(info["os_hash_value"], "abc");
        assert_eq!(info["image_type"], "partition");
        assert_eq!(info["deploy_boot_mode"], "bios");
        assert_eq!(info["disk_format"], "qcow2");
    }

    #[test]
    fn whole_disk_image_info_has_no_partition_layout() {
        let node = doc(json!({"instance_info": {
            "image_source": "http://x/disk.raw", "image_checksum": "md5sum"}}));
        let served = ServedImage {
            url: "http://x/disk.raw".into(),
            disk_format: None,
            hash: None,
        };
        let drive = json!("H4sIpacked");
        let info = image_info(&node, &served, Some(&drive)).expect("image_info");
        assert_eq!(info["configdrive"], "H4sIpacked");
        assert!(info.get("deploy_boot_mode").is_none());
        assert_eq!(info["image_type"], "whole-disk");
        assert_eq!(info["checksum"], "md5sum");
        assert!(info.get("root_mb").is_none());
        assert_eq!(info["boot_mode"], "uefi");
    }

    #[test]
    fn bad_root_gb_is_an_error() {
        let node = doc(json!({"instance_info": {
            "image_source": "http://x/p.img", "image_type": "partition", "root_gb": "ten"}}));
        let served = ServedImage {
            url: "u".into(),
            disk_format: None,
            hash: None,
        };
        let err = image_info(&node, &served, None).expect_err("bad root_gb");
        assert!(err.contains("root_gb"), "{err}");
    }

    #[test]
    fn configdrive_json_becomes_a_packed_iso() {
        let node = doc(json!({"instance_info": {"configdrive": {
            "meta_data": {"uuid": "x"}, "user_data": "#!/bin/sh\n"}}}));
        let packed = configdrive_for_agent(&node)
            .expect("configdrive")
            .expect("some");
        let iso = ferrite_configdrive::unpack(packed.as_str().unwrap_or("")).expect("unpack");
        let files = ferrite_configdrive::read_iso_files(&iso).expect("read");
        assert!(files.contains_key("openstack/latest/user_data"));
        let plain = doc(json!({"instance_info": {"configdrive": "H4sI"}}));
        assert_eq!(
            configdrive_for_agent(&plain).expect("string"),
            Some(json!("H4sI"))
        );
        let none = doc(json!({"instance_info": {}}));
        assert_eq!(configdrive_for_agent(&none).expect("none"), None);
    }

    #[test]
    fn cache_needed_for_http_download_or_conversion() {
        let pass = doc(
            json!({"instance_info": {"image_source": "http://x", "image_disk_format": "qcow2"}}),
        );
        assert!(!needs_cache(&pass));
        let http = doc(
            json!({"instance_info": {"image_source": "http://x", "image_download_source": "http"}}),
        );
        assert!(needs_cache(&http));
        let vmdk = doc(
            json!({"instance_info": {"image_source": "http://x", "image_disk_format": "vmdk"}}),
        );
        assert!(needs_cache(&vmdk));
        let file = doc(json!({"instance_info": {"image_source": "file:///srv/disk.raw"}}));
        assert!(needs_cache(&file));
        assert_eq!(cache_key("a", "b"), cache_key("a", "b"));
        assert_ne!(cache_key("a", "b"), cache_key("a", "c"));
    }

    #[test]
    fn served_copies_are_recognised_by_name() {
        assert!(is_served_copy(
            "0123456789abcdef-1be26c0b-03f2-4d2e-ae87-c02d7f33c123.img"
        ));
        assert!(!is_served_copy("ferrite-demo.img"));
        assert!(!is_served_copy("0123456789abcdef-not-a-uuid.img"));
        assert!(!is_served_copy(
            "0123456789abcdef-1be26c0b-03f2-4d2e-ae87-c02d7f33c123.raw"
        ));
    }

    #[test]
    fn kernel_params_carry_the_api_url() {
        let mut config = Config::for_database("sqlite::memory:");
        config.deploy.api_url = Some("http://10.0.0.1:6385/".into());
        let node = doc(json!({}));
        assert_eq!(
            kernel_params(&config, &node),
            "ipa-api-url=http://10.0.0.1:6385"
        );
        // The node's own parameters are the boot interface's to add (once).
        let own = doc(json!({"driver_info": {"kernel_append_params": "%default% console=ttyS0"}}));
        assert_eq!(
            kernel_params(&config, &own),
            "ipa-api-url=http://10.0.0.1:6385"
        );
        assert_eq!(
            crate::boot::append_params(&config, &own, &kernel_params(&config, &own)).as_deref(),
            Ok("nofb vga=normal console=ttyS0 ipa-api-url=http://10.0.0.1:6385")
        );
        assert_eq!(generate_token().len(), 171);
    }
}
