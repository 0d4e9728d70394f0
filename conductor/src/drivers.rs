//! What the interface implementations do, keyed by interface name.
//!
//! The registry ([`crate::hardware`]) decides which implementation a node
//! uses; this module is what those implementations do when the engine runs
//! them. The fake and no-op ones complete at once (after the configured
//! `[fake]` delays); real ones (`redfish`, `pxe`, `direct`, `flat`…) are added
//! here by the issues that bring real hardware.

use ferrite_db::Db;
use serde_json::{json, Value};

use crate::engine::{EngineError, EngineResult};
use crate::storage::{self, Doc, NodeRow};

/// Implementations that do their work instantly and always succeed.
pub fn is_fake_like(name: &str) -> bool {
    matches!(
        name,
        "fake"
            | "noop"
            | "no-console"
            | "no-inspect"
            | "no-raid"
            | "no-rescue"
            | "no-vendor"
            | "no-bios"
            | "no-firmware"
            | "no-management"
    )
}

/// Checks what an interface needs from the node before it can run.
pub fn validate(kind: &str, name: &str, doc: &Doc) -> Result<(), String> {
    if is_fake_like(name) {
        return Ok(());
    }
    let empty = serde_json::Map::new();
    let driver_info = match doc.get("driver_info") {
        Some(Value::Object(info)) => info,
        _ => &empty,
    };
    match (kind, name) {
        ("network", "flat") => Ok(()),
        ("power" | "management", "redfish") => crate::redfish::parse_driver_info(
            storage::doc_str(doc, "uuid").unwrap_or(""),
            driver_info,
        )
        .map(|_| ()),
        ("boot", "pxe" | "ipxe") => crate::boot::validate_driver_info(driver_info),
        ("deploy", "direct") => crate::deploy::validate(doc),
        _ => Err(format!(
            "the {kind} interface \"{name}\" is not implemented by this conductor yet"
        )),
    }
}

/// Boot devices a management interface can set.
pub fn supported_boot_devices(management: &str) -> Vec<&'static str> {
    match management {
        "fake" => vec!["pxe", "disk"],
        "redfish" => crate::redfish::BOOT_DEVICES.to_vec(),
        _ => Vec::new(),
    }
}

/// Whether a network interface keeps VIFs on the node's ports.
pub fn network_records_vifs(network: &str) -> bool {
    network == "flat"
}

const VIF_KEY: &str = "tenant_vif_port_id";

fn port_vif(doc: &Doc) -> Option<&str> {
    doc.get("internal_info")
        .and_then(|info| info.get(VIF_KEY))
        .and_then(Value::as_str)
}

/// The VIFs recorded on the node's ports.
pub async fn vif_list(db: &Db, node: &NodeRow) -> EngineResult<Vec<String>> {
    let ports = storage::list_ports(db.conn(), Some(node.id), None, None, None, false).await?;
    Ok(ports
        .iter()
        .filter_map(|p| port_vif(&p.doc).map(str::to_string))
        .collect())
}

/// Records `vif` on a free port of the node (PXE-enabled ports first), as
/// upstream's VIF bookkeeping does in the port's `internal_info`.
pub async fn vif_attach(db: &Db, node: &NodeRow, vif: &str) -> EngineResult<()> {
    let ports = storage::list_ports(db.conn(), Some(node.id), None, None, None, false).await?;
    if let Some(port) = ports.iter().find(|p| port_vif(&p.doc) == Some(vif)) {
        return Err(EngineError::Client {
            status: 409,
            message: format!(
                "Unable to attach VIF because VIF {vif} is already attached to Ironic Port {}",
                port.uuid()
            ),
        });
    }
    let mut free: Vec<_> = ports
        .iter()
        .filter(|p| port_vif(&p.doc).is_none())
        .collect();
    free.sort_by_key(|p| {
        !p.doc
            .get("pxe_enabled")
            .and_then(Value::as_bool)
            .unwrap_or(true)
    });
    let Some(port) = free.first() else {
        return Err(EngineError::Client {
            status: 400,
            message: format!("Unable to attach VIF {vif}, not enough free physical ports."),
        });
    };
    let mut doc = port.doc.clone();
    match doc.get_mut("internal_info") {
        Some(Value::Object(info)) => {
            info.insert(VIF_KEY.into(), json!(vif));
        }
        _ => {
            doc.insert("internal_info".into(), json!({ VIF_KEY: vif }));
        }
    }
    doc.insert("updated_at".into(), Value::String(storage::iso_now().1));
    match storage::update_port(db.conn(), port, port.node_id, &doc).await? {
        Some(_) => Ok(()),
        None => Err(EngineError::Client {
            status: 409,
            message: "The port was changed concurrently; please retry.".into(),
        }),
    }
}

pub async fn vif_detach(db: &Db, node: &NodeRow, vif: &str) -> EngineResult<()> {
    let ports = storage::list_ports(db.conn(), Some(node.id), None, None, None, false).await?;
    let Some(port) = ports.iter().find(|p| port_vif(&p.doc) == Some(vif)) else {
        return Err(EngineError::Client {
            status: 400,
            message: format!(
                "Unable to detach VIF {vif} from node {} because it is not attached to it.",
                node.uuid()
            ),
        });
    };
    let mut doc = port.doc.clone();
    if let Some(Value::Object(info)) = doc.get_mut("internal_info") {
        info.remove(VIF_KEY);
    }
    doc.insert("updated_at".into(), Value::String(storage::iso_now().1));
    match storage::update_port(db.conn(), port, port.node_id, &doc).await? {
        Some(_) => Ok(()),
        None => Err(EngineError::Client {
            status: 409,
            message: "The port was changed concurrently; please retry.".into(),
        }),
    }
}

/// The automated clean steps of the node's interfaces, as upstream lists
/// them (only those with a priority run). The fake vendor interface has one.
pub fn automated_clean_steps(doc: &Doc) -> Vec<Value> {
    if doc.get("automated_clean") == Some(&Value::Bool(false)) {
        return Vec::new();
    }
    let mut steps = Vec::new();
    if storage::doc_str(doc, "deploy_interface").is_some_and(crate::deploy::is_agent_deploy) {
        steps.push(crate::deploy::erase_devices_metadata_step(
            crate::deploy::ERASE_DEVICES_METADATA_PRIORITY,
        ));
    }
    if storage::doc_str(doc, "vendor_interface") == Some("fake") {
        steps.push(json!({
            "step": "log_passthrough",
            "priority": 1,
            "abortable": false,
            "argsinfo": null,
            "interface": "vendor",
            "requires_ramdisk": true,
        }));
    }
    steps
}

/// The deploy steps of the node's deploy interface.
pub fn deploy_steps(doc: &Doc) -> Vec<Value> {
    match storage::doc_str(doc, "deploy_interface") {
        Some("fake") => vec![json!({
            "step": "deploy",
            "priority": 100,
            "abortable": true,
            "argsinfo": null,
            "interface": "deploy",
        })],
        Some("direct") => crate::deploy::direct_deploy_steps(),
        _ => Vec::new(),
    }
}
