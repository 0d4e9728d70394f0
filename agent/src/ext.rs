//! The agent's extensions and commands (`deploy.*`, `clean.*`,
//! `standby.*`, `image.*`, `log.*`) over `ferrite-imaging`, with upstream's
//! reply shapes.

use std::path::Path;
use std::sync::Arc;

use ferrite_imaging::hardware::Disk;
use ferrite_imaging::image::{ImageInfo, WriteOptions, WriteOutcome};
use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{json, Map, Value};

use crate::errors::{from_imaging, CommandError};
use crate::{AgentEvent, Shared};

/// Name and version of our (single) hardware manager, as reported in
/// `hardware_manager_version` and checked against `deploy_version` /
/// `clean_version`. The name is upstream's generic manager's, whose steps
/// this agent implements.
pub const HARDWARE_MANAGER_NAME: &str = "generic_hardware_manager";
pub const HARDWARE_MANAGER_VERSION: &str = "1.2";
/// The manager's class name, the key of the step lists.
const HARDWARE_MANAGER_CLASS: &str = "GenericHardwareManager";

/// Extensions upstream has: an unknown command of one of them is a 400
/// ("Invalid command"), an unknown extension a 404.
const KNOWN_EXTENSIONS: &[&str] = &[
    "clean", "deploy", "flow", "image", "log", "poll", "rescue", "service", "standby", "system",
];

pub enum Mode {
    Sync,
    Async,
}

pub type Runner = Arc<
    dyn Fn(Arc<Shared>, Map<String, Value>) -> BoxFuture<'static, Result<Value, CommandError>>
        + Send
        + Sync,
>;
pub type Validator = fn(&Shared, &Map<String, Value>) -> Result<(), CommandError>;

pub struct Spec {
    pub mode: Mode,
    pub validate: Option<Validator>,
    pub run: Runner,
}

fn spec<F>(mode: Mode, validate: Option<Validator>, f: F) -> Spec
where
    F: Fn(Arc<Shared>, Map<String, Value>) -> BoxFuture<'static, Result<Value, CommandError>>
        + Send
        + Sync
        + 'static,
{
    Spec {
        mode,
        validate,
        run: Arc::new(f),
    }
}

/// The command `extension.command`, or the error upstream answers with.
pub fn resolve(shared: &Shared, extension: &str, command: &str) -> Result<Spec, CommandError> {
    let full = format!("{extension}.{command}");
    if let Some(custom) = shared.custom.get(&full) {
        let custom = custom.clone();
        return Ok(spec(Mode::Async, None, move |_, params| custom(params)));
    }
    let found = match (extension, command) {
        ("deploy", "get_deploy_steps") => {
            spec(Mode::Sync, None, |s, p| get_deploy_steps(s, p).boxed())
        }
        ("deploy", "execute_deploy_step") => {
            spec(Mode::Async, None, |s, p| execute_deploy_step(s, p).boxed())
        }
        ("clean", "get_clean_steps") => {
            spec(Mode::Sync, None, |s, p| get_clean_steps(s, p).boxed())
        }
        ("clean", "execute_clean_step") => {
            spec(Mode::Async, None, |s, p| execute_clean_step(s, p).boxed())
        }
        ("standby", "prepare_image") => spec(Mode::Async, Some(validate_prepare_image), |s, p| {
            async move { prepare_image(&s, &p).await.map(Value::String) }.boxed()
        }),
        ("standby", "get_partition_uuids") => spec(Mode::Sync, None, |s, _| {
            async move { Ok(s.partition_uuids()) }.boxed()
        }),
        ("standby", "sync") => spec(Mode::Sync, None, |s, _| {
            async move {
                full_sync(&s).await;
                Ok(Value::Null)
            }
            .boxed()
        }),
        ("standby", "power_off") => spec(Mode::Async, None, |s, _| {
            shutdown(s, AgentEvent::PowerOff).boxed()
        }),
        ("standby", "run_image") => spec(Mode::Async, None, |s, _| {
            shutdown(s, AgentEvent::Reboot).boxed()
        }),
        ("image", "install_bootloader") => {
            spec(Mode::Async, None, |s, p| install_bootloader(s, p).boxed())
        }
        ("log", "collect_system_logs") => spec(Mode::Sync, None, |s, _| {
            async move {
                let logs = crate::logs::archive(&s).map_err(CommandError::execution)?;
                Ok(json!({ "system_logs": logs }))
            }
            .boxed()
        }),
        _ => {
            let known = KNOWN_EXTENSIONS.contains(&extension)
                || shared
                    .custom
                    .keys()
                    .any(|k| k.split_once('.').is_some_and(|(e, _)| e == extension));
            return Err(if known {
                CommandError::invalid_command(format!("Unknown command: {command}"))
            } else {
                CommandError::not_found("Extension", extension)
            });
        }
    };
    Ok(found)
}

fn versions() -> Value {
    json!({ HARDWARE_MANAGER_NAME: HARDWARE_MANAGER_VERSION })
}

fn step(name: &str, priority: u32, abortable: Option<bool>) -> Value {
    let mut step = json!({
        "step": name,
        "priority": priority,
        "interface": "deploy",
        "reboot_requested": false,
    });
    if let (Some(abortable), Some(map)) = (abortable, step.as_object_mut()) {
        map.insert("abortable".into(), Value::Bool(abortable));
    }
    step
}

/// Deploy steps the agent runs. As upstream, `write_image` has priority 0:
/// the conductor's own `write_image` step (priority 80) calls it.
pub fn deploy_steps() -> Value {
    json!([
        step("erase_devices_metadata", 0, None),
        step("write_image", 0, None),
    ])
}

/// Clean steps the agent runs: metadata erasure in automated cleaning
/// (priority 99 as upstream), the express erase on request.
pub fn clean_steps() -> Value {
    json!([
        step("erase_devices_metadata", 99, Some(true)),
        step("erase_devices_express", 0, Some(true)),
    ])
}

async fn get_deploy_steps(
    shared: Arc<Shared>,
    params: Map<String, Value>,
) -> Result<Value, CommandError> {
    cache_params_node(&shared, &params).await;
    Ok(json!({
        "deploy_steps": { HARDWARE_MANAGER_CLASS: deploy_steps() },
        "hardware_manager_version": versions(),
    }))
}

async fn get_clean_steps(
    shared: Arc<Shared>,
    params: Map<String, Value>,
) -> Result<Value, CommandError> {
    cache_params_node(&shared, &params).await;
    Ok(json!({
        "clean_steps": { HARDWARE_MANAGER_CLASS: clean_steps() },
        "hardware_manager_version": versions(),
    }))
}

async fn cache_params_node(shared: &Shared, params: &Map<String, Value>) {
    if let Some(node) = params.get("node").filter(|n| n.get("uuid").is_some()) {
        shared.cache_node(node.clone()).await;
    }
}

fn check_versions(provided: Option<&Value>) -> Result<(), CommandError> {
    match provided {
        None | Some(Value::Null) => Ok(()),
        Some(version) if *version == versions() => Ok(()),
        Some(version) => Err(CommandError::version_mismatch(&versions(), version)),
    }
}

/// The step's arguments: the command's parameters other than the step
/// machinery, overridden by the step's `args`.
fn step_kwargs(params: &Map<String, Value>, step: &Value, version_key: &str) -> Map<String, Value> {
    let mut kwargs: Map<String, Value> = params
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "step" | "node" | "ports") && *k != version_key)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(args) = step.get("args").and_then(Value::as_object) {
        for (k, v) in args {
            kwargs.insert(k.clone(), v.clone());
        }
    }
    kwargs
}

fn step_name<'a>(step: &'a Value, kind: &str) -> Result<&'a str, CommandError> {
    step.get("step").and_then(Value::as_str).ok_or_else(|| {
        CommandError::execution(format!("Malformed {kind}_step, no \"step\" key: {step}"))
    })
}

async fn execute_deploy_step(
    shared: Arc<Shared>,
    params: Map<String, Value>,
) -> Result<Value, CommandError> {
    let step = params.get("step").cloned().unwrap_or(Value::Null);
    cache_params_node(&shared, &params).await;
    check_versions(params.get("deploy_version"))?;
    let name = step_name(&step, "deploy")?;
    let kwargs = step_kwargs(&params, &step, "deploy_version");
    let result = match name {
        "write_image" => write_image(&shared, &kwargs).await?,
        "erase_devices_metadata" => {
            erase_all(&shared).await?;
            Value::Null
        }
        other => return Err(CommandError::method_not_found(other)),
    };
    Ok(json!({ "deploy_result": result, "deploy_step": step }))
}

async fn execute_clean_step(
    shared: Arc<Shared>,
    params: Map<String, Value>,
) -> Result<Value, CommandError> {
    let step = params.get("step").cloned().unwrap_or(Value::Null);
    cache_params_node(&shared, &params).await;
    check_versions(params.get("clean_version"))?;
    let name = step_name(&step, "clean")?;
    match name {
        "erase_devices_metadata" | "erase_devices_express" => erase_all(&shared).await?,
        other => return Err(CommandError::method_not_found(other)),
    }
    Ok(json!({ "clean_result": Value::Null, "clean_step": step }))
}

/// The `write_image` deploy step: `prepare_image` run to completion, its
/// result as upstream's asynchronous command would report it.
async fn write_image(shared: &Shared, kwargs: &Map<String, Value>) -> Result<Value, CommandError> {
    validate_prepare_image(shared, kwargs)?;
    let message = prepare_image(shared, kwargs).await?;
    Ok(json!({ "result": format!("prepare_image: {message}") }))
}

fn validate_prepare_image(_: &Shared, params: &Map<String, Value>) -> Result<(), CommandError> {
    let info = params.get("image_info").and_then(Value::as_object);
    let empty = Map::new();
    let info = info.unwrap_or(&empty);
    for field in ["id", "urls"] {
        if !info.contains_key(field) {
            return Err(CommandError::invalid_params(format!(
                "Image is missing '{field}' field."
            )));
        }
    }
    if info
        .get("urls")
        .and_then(Value::as_array)
        .is_none_or(|urls| urls.is_empty())
    {
        return Err(CommandError::invalid_params(
            "Image 'urls' must be a list with at least one element.",
        ));
    }
    if let Some(checksum) = info.get("checksum").filter(|c| !c.is_null()) {
        if checksum.as_str().is_none_or(str::is_empty) {
            return Err(CommandError::invalid_params(
                "Image 'checksum' must be a non-empty string.",
            ));
        }
    }
    Ok(())
}

/// Writes the image (and config drive) to the root device; returns
/// upstream's message.
async fn prepare_image(
    shared: &Shared,
    params: &Map<String, Value>,
) -> Result<String, CommandError> {
    let mut raw = params
        .get("image_info")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    // The conductor may send the config drive in image_info too (older
    // protocol); the argument wins.
    let embedded = raw.remove("configdrive");
    let configdrive = match params.get("configdrive") {
        Some(Value::String(s)) => Some(s.clone()),
        _ => embedded.and_then(|v| v.as_str().map(str::to_string)),
    };
    let deploy_boot_mode = raw
        .get("deploy_boot_mode")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut info: ImageInfo = serde_json::from_value(Value::Object(raw))
        .map_err(|err| CommandError::invalid_params(format!("Invalid image_info: {err}")))?;
    if info.boot_mode.is_none() {
        info.boot_mode =
            Some(deploy_boot_mode.unwrap_or_else(|| shared.hardware().boot_mode.clone()));
    }
    let node = shared.node();
    if info.node_uuid.is_none() {
        info.node_uuid = node
            .as_ref()
            .and_then(|n| n.get("uuid"))
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    let disk = root_disk(shared)?;
    shared.log.info(format!(
        "writing image {} to {} ({})",
        info.id,
        disk.name,
        disk.path.display()
    ));
    let options = WriteOptions {
        allow_md5: shared.md5_allowed(),
        work_dir: shared.work_dir().to_path_buf(),
    };
    let outcome =
        ferrite_imaging::image::write_image(&disk, &info, configdrive.as_deref(), &options)
            .await
            .map_err(|err| from_imaging(&err))?;
    let uuids = partition_uuids(&disk, &outcome);
    let root = uuids
        .get("root uuid")
        .and_then(Value::as_str)
        .unwrap_or("None")
        .to_string();
    let efi = uuids
        .get("efi system partition uuid")
        .and_then(Value::as_str)
        .map(str::to_string);
    shared.remember_write(outcome, uuids);
    let mut message = format!(
        "image ({}) written to device {} root_uuid={root}",
        info.id, disk.name
    );
    if let (Some(efi), Some("uefi")) = (efi, info.boot_mode.as_deref()) {
        message.push_str(&format!(" efi_system_partition_uuid={efi}"));
    }
    shared.log.info(message.clone());
    Ok(message)
}

/// `standby.get_partition_uuids`'s reply for a write: for a partition
/// image the root and ESP UUIDs and every partition's device; for a whole
/// disk image the disk identifier as `root uuid`.
pub fn partition_uuids(disk: &Disk, outcome: &WriteOutcome) -> Value {
    let mut out = Map::new();
    if outcome.partitions.contains_key("root") {
        out.insert("root uuid".into(), json!(outcome.root_uuid));
        out.insert(
            "efi system partition uuid".into(),
            json!(outcome.efi_system_partition_uuid),
        );
        let table = ferrite_imaging::table::read(&disk.path).ok().flatten();
        let mut partitions = Map::new();
        for (role, uuid) in &outcome.partitions {
            let name = match role.as_str() {
                "efi" => "efi system partition",
                other => other,
            };
            let device = table
                .as_ref()
                .and_then(|t| {
                    t.partitions
                        .iter()
                        .find(|p| p.uuid.eq_ignore_ascii_case(uuid))
                })
                .map_or_else(|| uuid.clone(), |p| partition_device(&disk.name, p.number));
            partitions.insert(name.to_string(), Value::String(device));
        }
        out.insert("partitions".into(), Value::Object(partitions));
    } else if let Some(root) = &outcome.root_uuid {
        out.insert("root uuid".into(), json!(root));
    }
    Value::Object(out)
}

/// `/dev/sda` + 2 → `/dev/sda2`; `/dev/nvme0n1` + 2 → `/dev/nvme0n1p2`.
pub fn partition_device(disk: &str, number: u32) -> String {
    if disk.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{disk}p{number}")
    } else {
        format!("{disk}{number}")
    }
}

/// The disk to deploy to, by the cached node's root device hints.
fn root_disk(shared: &Shared) -> Result<Disk, CommandError> {
    let node = shared.node();
    let hints = node
        .as_ref()
        .and_then(|n| n.pointer("/properties/root_device"))
        .filter(|h| !h.is_null());
    let hardware = shared.hardware();
    ferrite_imaging::hints::select_root_device(&hardware.disks, hints)
        .cloned()
        .map_err(|err| from_imaging(&err))
}

async fn install_bootloader(
    shared: Arc<Shared>,
    params: Map<String, Value>,
) -> Result<Value, CommandError> {
    let text = |key: &str| params.get(key).and_then(Value::as_str).map(str::to_string);
    let root_uuid = text("root_uuid");
    let efi = text("efi_system_part_uuid");
    let boot_mode = text("target_boot_mode").unwrap_or_else(|| "bios".to_string());
    let ignore_failure = params
        .get("ignore_bootloader_failure")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let whole_disk_bios = matches!(root_uuid.as_deref(), None | Some("0x00000000"))
        && efi.is_none()
        && boot_mode != "uefi";
    if whole_disk_bios {
        shared.log.info(
            "not installing a bootloader: no root UUID given, assuming a whole disk image"
                .to_string(),
        );
        return Ok(Value::Null);
    }
    let outcome = match root_disk(&shared) {
        Ok(disk) => {
            let root = root_uuid.unwrap_or_default();
            tokio::task::spawn_blocking(move || {
                ferrite_imaging::boot::install_bootloader(&disk, &root, efi.as_deref(), &boot_mode)
                    .map_err(|err| CommandError::execution(err.to_string()))
            })
            .await
            .unwrap_or_else(|err| {
                Err(CommandError::execution(format!(
                    "bootloader installation crashed: {err}"
                )))
            })
        }
        Err(err) => Err(err),
    };
    match outcome {
        Ok(()) => Ok(Value::Null),
        Err(err) if ignore_failure => {
            shared.log.warn(format!(
                "ignoring the bootloader installation failure: {err}"
            ));
            Ok(Value::Null)
        }
        Err(err) => Err(err),
    }
}

/// Erases partition tables and signatures of every disk
/// (`erase_devices_metadata`); failures are collected per disk.
async fn erase_all(shared: &Shared) -> Result<(), CommandError> {
    let disks = shared.hardware().disks.clone();
    let failures = tokio::task::spawn_blocking(move || {
        disks
            .iter()
            .filter_map(|disk| {
                ferrite_imaging::erase::erase_metadata(disk)
                    .err()
                    .map(|err| format!("\"{}\": {err}", disk.name))
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|err| CommandError::erase(format!("metadata erasure crashed: {err}")))?;
    if failures.is_empty() {
        shared
            .log
            .info("erased the metadata of every disk".to_string());
        Ok(())
    } else {
        Err(CommandError::erase(format!(
            "Failed to erase the metadata on the device(s): {}",
            failures.join("; ")
        )))
    }
}

/// Flushes every disk's backing file (upstream runs `sync`).
async fn full_sync(shared: &Shared) {
    let paths: Vec<_> = shared
        .hardware()
        .disks
        .iter()
        .map(|d| d.path.clone())
        .collect();
    let _ = tokio::task::spawn_blocking(move || {
        for path in paths {
            sync_file(&path);
        }
    })
    .await;
}

fn sync_file(path: &Path) {
    if let Ok(file) = std::fs::OpenOptions::new().write(true).open(path) {
        let _ = file.sync_all();
    }
}

async fn shutdown(shared: Arc<Shared>, event: AgentEvent) -> Result<Value, CommandError> {
    full_sync(&shared).await;
    shared
        .log
        .info(format!("requesting {event:?} from the machine"));
    shared.send_event(event);
    Ok(Value::Null)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn partition_devices() {
        assert_eq!(partition_device("/dev/sda", 2), "/dev/sda2");
        assert_eq!(partition_device("/dev/nvme0n1", 1), "/dev/nvme0n1p1");
    }

    #[test]
    fn versions_are_checked() {
        assert!(check_versions(None).is_ok());
        assert!(check_versions(Some(&versions())).is_ok());
        let err = check_versions(Some(&json!({"generic_hardware_manager": "1.1"}))).unwrap_err();
        assert!(err.is_version_mismatch());
    }

    #[test]
    fn step_args_override_params() {
        let params: Map<String, Value> = serde_json::from_value(json!({
            "step": {}, "node": {}, "ports": [], "deploy_version": {}, "extra": 1, "configdrive": "a"
        }))
        .unwrap();
        let kwargs = step_kwargs(
            &params,
            &json!({"args": {"configdrive": "b"}}),
            "deploy_version",
        );
        assert_eq!(
            kwargs,
            serde_json::from_value::<Map<String, Value>>(json!({"extra": 1, "configdrive": "b"}))
                .unwrap()
        );
    }

    #[test]
    fn whole_disk_outcome_reports_the_disk_identifier() {
        let disk = Disk {
            name: "/dev/sda".into(),
            path: "/nonexistent".into(),
            size: 1,
            model: String::new(),
            vendor: String::new(),
            serial: None,
            wwn: None,
            wwn_with_extension: None,
            wwn_vendor_extension: None,
            rotational: false,
            hctl: None,
            by_path: None,
        };
        let outcome = WriteOutcome {
            root_uuid: Some("0x1234abcd".into()),
            ..WriteOutcome::default()
        };
        assert_eq!(
            partition_uuids(&disk, &outcome),
            json!({"root uuid": "0x1234abcd"})
        );
        let mut partitioned = WriteOutcome {
            root_uuid: Some("R".into()),
            efi_system_partition_uuid: Some("E".into()),
            ..WriteOutcome::default()
        };
        partitioned.partitions.insert("root".into(), "R".into());
        partitioned.partitions.insert("efi".into(), "E".into());
        let uuids = partition_uuids(&disk, &partitioned);
        assert_eq!(uuids["root uuid"], "R");
        assert_eq!(uuids["efi system partition uuid"], "E");
        // Without a readable table the partition is named by its UUID.
        assert_eq!(uuids["partitions"]["efi system partition"], "E");
    }
}
