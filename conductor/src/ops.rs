//! Hardware operations, dispatched on the node's power and management
//! interfaces. The engine records states in the node document; this module
//! is what talks to the machine (nothing, for the fake interfaces; the BMC,
//! for `redfish`).

use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::Config;
use crate::redfish::{self, RedfishClient, RedfishError};
use crate::storage::{self, Doc};

fn interface<'d>(doc: &'d Doc, kind: &str) -> &'d str {
    storage::doc_str(doc, &format!("{kind}_interface")).unwrap_or("")
}

fn node_uuid(doc: &Doc) -> &str {
    storage::doc_str(doc, "uuid").unwrap_or("")
}

/// The redfish client of a node, from its `driver_info`.
pub fn redfish_client(doc: &Doc) -> Result<RedfishClient, String> {
    let empty = Map::new();
    let info = match doc.get("driver_info") {
        Some(Value::Object(info)) => info,
        _ => &empty,
    };
    let parsed = redfish::parse_driver_info(node_uuid(doc), info)?;
    RedfishClient::new(parsed).map_err(|e| e.to_string())
}

/// Connection failures keep their own text; the rest get upstream's
/// "Redfish exception occurred" wrapper around `what`.
fn redfish_failure(err: RedfishError, what: impl FnOnce(&RedfishError) -> String) -> String {
    match err {
        RedfishError::Connection { .. } => err.to_string(),
        other => redfish::wrap(what(&other)),
    }
}

/// How often a power change is polled while waiting for it.
const POWER_POLL: Duration = Duration::from_millis(500);

/// The machine's power state as the API names it (`power on`,
/// `power off`), `None` when the interface cannot tell.
pub async fn get_power_state(config: &Config, doc: &Doc) -> Result<Option<String>, String> {
    let _ = config;
    match interface(doc, "power") {
        "redfish" => {
            let client = redfish_client(doc)?;
            let state = client.power_state().await.map_err(|e| {
                redfish_failure(e, |e| {
                    format!(
                        "Failed to get the power state of node {}. Error: {e}",
                        node_uuid(doc)
                    )
                })
            })?;
            Ok(state
                .as_deref()
                .and_then(redfish::api_power_state)
                .map(str::to_string))
        }
        _ => Ok(storage::doc_str(doc, "power_state").map(str::to_string)),
    }
}

/// The final power state of a power target.
fn final_state(target: &str) -> Option<&'static str> {
    match target {
        "power on" | "rebooting" | "soft rebooting" => Some("power on"),
        "power off" | "soft power off" => Some("power off"),
        _ => None,
    }
}

async fn redfish_set_power(
    client: &RedfishClient,
    target: &str,
    timeout: Duration,
) -> Result<(), RedfishError> {
    let current = client.power_state().await?;
    let current = current.as_deref().and_then(redfish::api_power_state);
    let wait = |state: &'static str| async move {
        redfish::wait_for_power_state(client, state, timeout, POWER_POLL)
            .await
            .map_err(RedfishError::Other)
    };
    match target {
        "power on" => {
            if current != Some("power on") {
                client.reset("On").await?;
            }
            wait("power on").await
        }
        "power off" => {
            if current != Some("power off") {
                client.reset("ForceOff").await?;
            }
            wait("power off").await
        }
        "soft power off" => {
            if current != Some("power off") {
                client.reset("GracefulShutdown").await?;
            }
            wait("power off").await
        }
        "rebooting" => {
            // As upstream: a machine that is on is switched off first, then
            // on; one that is off is just switched on.
            if current == Some("power on") {
                client.reset("ForceOff").await?;
                wait("power off").await?;
            }
            client.reset("On").await?;
            wait("power on").await
        }
        "soft rebooting" => {
            if current == Some("power on") {
                client.reset("GracefulRestart").await?;
            } else {
                client.reset("On").await?;
            }
            wait("power on").await
        }
        other => Err(RedfishError::Other(format!(
            "The requested power state {other} is not supported by the redfish power interface."
        ))),
    }
}

/// Drives the machine to `target` (`power on`, `power off`, `rebooting`,
/// `soft power off`, `soft rebooting`) and waits until it got there or
/// `timeout` passed.
pub async fn set_power_state(
    config: &Config,
    doc: &Doc,
    target: &str,
    timeout: Duration,
) -> Result<(), String> {
    let _ = config;
    if final_state(target).is_none() {
        return Err(format!("Invalid power state {target} requested."));
    }
    match interface(doc, "power") {
        "redfish" => {
            let client = redfish_client(doc)?;
            redfish_set_power(&client, target, timeout)
                .await
                .map_err(|e| {
                    redfish_failure(e, |e| {
                        format!(
                            "Setting power state to {target} failed for node {}. Error: {e}",
                            node_uuid(doc)
                        )
                    })
                })
        }
        _ => Ok(()),
    }
}

/// The node's boot mode for the BMC (`UEFI`, `Legacy`), when known.
fn redfish_boot_mode(doc: &Doc) -> Option<&'static str> {
    match crate::boot::known_boot_mode(doc)?.as_str() {
        "uefi" => Some("UEFI"),
        "bios" => Some("Legacy"),
        _ => None,
    }
}

/// Sets the next boot device (`pxe`, `disk`, `cdrom`, `bios`, …).
pub async fn set_boot_device(
    config: &Config,
    doc: &Doc,
    device: &str,
    persistent: bool,
) -> Result<(), String> {
    let _ = config;
    match interface(doc, "management") {
        "redfish" => {
            let Some(target) =
                redfish::boot_target(device).filter(|_| redfish::BOOT_DEVICES.contains(&device))
            else {
                return Err(format!("Invalid boot device {device} specified."));
            };
            let client = redfish_client(doc)?;
            client
                .set_boot_override(target, persistent, redfish_boot_mode(doc))
                .await
                .map_err(|e| {
                    redfish_failure(e, |e| {
                        format!(
                            "Redfish set boot device failed for node {}. Error: {e}",
                            node_uuid(doc)
                        )
                    })
                })
        }
        _ => Ok(()),
    }
}

/// The boot device the machine will use next and whether it is persistent,
/// as `GET …/management/boot_device` reports it (`None` when unknown).
pub async fn get_boot_device(
    config: &Config,
    doc: &Doc,
) -> Result<(Option<String>, Option<bool>), String> {
    let _ = config;
    match interface(doc, "management") {
        "redfish" => {
            let client = redfish_client(doc)?;
            let boot = client.boot_override().await.map_err(|e| {
                redfish_failure(e, |e| {
                    format!(
                        "Redfish get boot device failed for node {}. Error: {e}",
                        node_uuid(doc)
                    )
                })
            })?;
            Ok((boot.device, boot.persistent))
        }
        _ => Ok((
            storage::doc_str(doc, "ferrite:boot_device").map(str::to_string),
            doc.get("ferrite:boot_device_persistent")
                .and_then(Value::as_bool),
        )),
    }
}
