//! Hardware operations, dispatched on the node's power and management
//! interfaces. The engine records states in the node document; this module
//! is what talks to the machine (nothing, for the fake interfaces).

use std::time::Duration;

use crate::config::Config;
use crate::storage::{self, Doc};

fn interface<'d>(doc: &'d Doc, kind: &str) -> &'d str {
    storage::doc_str(doc, &format!("{kind}_interface")).unwrap_or("")
}

/// The machine's power state as the API names it (`power on`,
/// `power off`), `None` when the interface cannot tell.
pub async fn get_power_state(config: &Config, doc: &Doc) -> Result<Option<String>, String> {
    let _ = config;
    match interface(doc, "power") {
        "redfish" => Err("the redfish power interface is not implemented yet".into()),
        _ => Ok(storage::doc_str(doc, "power_state").map(str::to_string)),
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
    let _ = (config, target, timeout);
    match interface(doc, "power") {
        "redfish" => Err("the redfish power interface is not implemented yet".into()),
        _ => Ok(()),
    }
}

/// Sets the next boot device (`pxe`, `disk`, `cdrom`, `bios`, …).
pub async fn set_boot_device(
    config: &Config,
    doc: &Doc,
    device: &str,
    persistent: bool,
) -> Result<(), String> {
    let _ = (config, device, persistent);
    match interface(doc, "management") {
        "redfish" => Err("the redfish management interface is not implemented yet".into()),
        _ => Ok(()),
    }
}
