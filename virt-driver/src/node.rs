//! The driver's view of a Bare Metal node: the handful of fields Nova's
//! driver reads, parsed once from the API's JSON.

use serde_json::Value;

/// Fields the periodic asks for (`GET /v1/nodes?fields=`); everything else a
/// node carries is not needed to decide a provider's contents.
pub const SYNC_FIELDS: &[&str] = &[
    "uuid",
    "power_state",
    "provision_state",
    "maintenance",
    "instance_uuid",
    "resource_class",
    "traits",
];

/// Provision states from which Nova tears an instance down with `deleted`
/// (its `_UNPROVISION_STATES`). States not known to the driver count too.
pub const UNPROVISION_STATES: &[&str] = &[
    "active",
    "deploy failed",
    "error",
    "wait call-back",
    "deploying",
    "deploy hold",
    "rescue",
    "rescuing",
    "rescue wait",
    "rescue failed",
    "unrescuing",
    "unrescue failed",
    "servicing",
    "service wait",
    "service failed",
    "service hold",
];

/// Every provision state of Ironic's machine (and the legacy `null`).
pub const KNOWN_STATES: &[&str] = &[
    "enroll",
    "verifying",
    "manageable",
    "inspecting",
    "inspect wait",
    "inspect failed",
    "cleaning",
    "clean wait",
    "clean failed",
    "clean hold",
    "available",
    "deploying",
    "wait call-back",
    "deploy failed",
    "deploy hold",
    "active",
    "deleting",
    "error",
    "rescuing",
    "rescue wait",
    "rescue failed",
    "rescue",
    "unrescuing",
    "unrescue failed",
    "adopting",
    "adopt failed",
    "servicing",
    "service wait",
    "service failed",
    "service hold",
];

/// Transient states in which the conductor holds the node's lock and
/// refuses a teardown: wait for them to settle first.
pub const BUSY_STATES: &[&str] = &[
    "deploying",
    "deleting",
    "rescuing",
    "unrescuing",
    "servicing",
    "verifying",
    "inspecting",
    "adopting",
];

/// States in which an unprovisioned node counts as free from the
/// instance's point of view (Nova's `_unprovision` wait).
pub const UNPROVISIONED_STATES: &[&str] = &["available", "cleaning", "clean wait", "clean failed"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    pub uuid: String,
    pub power_state: Option<String>,
    pub target_power_state: Option<String>,
    pub provision_state: Option<String>,
    pub target_provision_state: Option<String>,
    pub maintenance: bool,
    pub instance_uuid: Option<String>,
    pub resource_class: Option<String>,
    pub traits: Vec<String>,
    pub last_error: Option<String>,
}

fn text(node: &Value, key: &str) -> Option<String> {
    node.get(key).and_then(Value::as_str).map(str::to_string)
}

impl NodeState {
    /// Parses a node body; `None` when it has no UUID.
    pub fn from_json(node: &Value) -> Option<NodeState> {
        Some(NodeState {
            uuid: text(node, "uuid")?,
            power_state: text(node, "power_state"),
            target_power_state: text(node, "target_power_state"),
            provision_state: text(node, "provision_state"),
            target_provision_state: text(node, "target_provision_state"),
            maintenance: node
                .get("maintenance")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            instance_uuid: text(node, "instance_uuid"),
            resource_class: text(node, "resource_class"),
            traits: node
                .get("traits")
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|t| t.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            last_error: text(node, "last_error"),
        })
    }

    pub fn provision_state(&self) -> &str {
        self.provision_state.as_deref().unwrap_or("")
    }

    /// Whether the node has settled: no provision target pending.
    /// No transition is running: no target, or a failure state (Ironic
    /// keeps the target of a failed deploy, e.g. `deploy failed` → `active`,
    /// while nothing runs).
    pub fn settled(&self) -> bool {
        let state = self.provision_state();
        self.target_provision_state.is_none() || state.ends_with("failed") || state == "error"
    }

    pub fn needs_unprovision(&self) -> bool {
        let state = self.provision_state();
        UNPROVISION_STATES.contains(&state) || !KNOWN_STATES.contains(&state)
    }
}
