//! What a node's resource provider should hold, as Nova's Ironic driver and
//! resource tracker decide it. Pure: no I/O.
//!
//! - Inventory: one unit of `CUSTOM_<normalised resource_class>` with
//!   min/max/step 1 and allocation ratio 1 (`update_provider_tree`); a node
//!   without a resource class gets no inventory (upstream raises
//!   `NoResourceClass` after the provider was created, which has the same
//!   effect).
//! - Reserved: 1 when the node is unusable (`_node_resources_unavailable`:
//!   maintenance, power state `None`/`error`, provision state other than
//!   `available`) or in use (`_node_resources_used`: it has an
//!   `instance_uuid`) unless `[workarounds] skip_reserve_in_use_ironic_nodes`
//!   (default false, and ours too) says otherwise.
//! - Traits: the node's traits, the traits of the driver's capabilities
//!   (`capabilities_as_traits()` of the Ironic driver: attach interface and
//!   the AMI, QCOW2 and RAW image types), and `COMPUTE_NODE` plus
//!   `OWNER_NOVA`, which the resource tracker puts on every compute node.
//!   The provider's trait set is replaced as a whole, as upstream does.
//!   `COMPUTE_STATUS_DISABLED` belongs to the compute service and is not
//!   managed here.

use std::collections::{BTreeMap, BTreeSet};

use ferrite_placement_client::InventoryRecord;

use crate::node::NodeState;

/// The traits that mark a provider as a Nova compute node; together with
/// name = UUID they identify the providers this driver created.
pub const MARKER_TRAITS: &[&str] = &["COMPUTE_NODE", "OWNER_NOVA"];

/// Traits of the Ironic driver's `capabilities` that are true.
pub const CAPABILITY_TRAITS: &[&str] = &[
    "COMPUTE_NET_ATTACH_INTERFACE",
    "COMPUTE_IMAGE_TYPE_AMI",
    "COMPUTE_IMAGE_TYPE_QCOW2",
    "COMPUTE_IMAGE_TYPE_RAW",
];

/// Power states that make a node unusable (`None` is upstream's NOSTATE).
const BAD_POWER_STATES: &[&str] = &["error"];

/// A provider's contents as far as this driver manages them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProviderContents {
    pub inventories: BTreeMap<String, InventoryRecord>,
    pub traits: BTreeSet<String>,
}

/// Nova's `_node_resources_unavailable`.
pub fn unavailable(node: &NodeState) -> bool {
    let bad_power = match node.power_state.as_deref() {
        None => true,
        Some(state) => BAD_POWER_STATES.contains(&state),
    };
    // Upstream also accepts NOSTATE (`None`), a pre-Kilo leftover.
    let good_provision = matches!(node.provision_state.as_deref(), None | Some("available"));
    node.maintenance || bad_power || !good_provision
}

/// Nova's `_node_resources_used`.
pub fn used(node: &NodeState) -> bool {
    node.instance_uuid.is_some()
}

pub fn reserved(node: &NodeState, skip_reserve_in_use: bool) -> bool {
    unavailable(node) || (used(node) && !skip_reserve_in_use)
}

/// The resource class a node's inventory is reported in.
pub fn resource_class(node: &NodeState) -> Option<String> {
    node.resource_class
        .as_deref()
        .map(ferrite_resource_classes::normalize_name)
}

pub fn desired(node: &NodeState, skip_reserve_in_use: bool) -> ProviderContents {
    let mut inventories = BTreeMap::new();
    if let Some(class) = resource_class(node) {
        inventories.insert(
            class,
            InventoryRecord {
                total: 1,
                reserved: i64::from(reserved(node, skip_reserve_in_use)),
                min_unit: 1,
                max_unit: 1,
                step_size: 1,
                allocation_ratio: 1.0,
            },
        );
    }
    let traits = node
        .traits
        .iter()
        .cloned()
        .chain(CAPABILITY_TRAITS.iter().map(|t| t.to_string()))
        .chain(MARKER_TRAITS.iter().map(|t| t.to_string()))
        .collect();
    ProviderContents {
        inventories,
        traits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(power: Option<&str>, provision: &str, maintenance: bool, instance: bool) -> NodeState {
        NodeState {
            uuid: "n".into(),
            power_state: power.map(str::to_string),
            target_power_state: None,
            provision_state: Some(provision.into()),
            target_provision_state: None,
            maintenance,
            instance_uuid: instance.then(|| "i".to_string()),
            resource_class: Some("baremetal.gold-1".into()),
            traits: vec!["CUSTOM_RAID".into()],
            last_error: None,
        }
    }

    #[test]
    fn reserved_rule_as_a_table() {
        let rows = [
            (Some("power off"), "available", false, false, false, false),
            (Some("power on"), "available", false, false, false, false),
            (None, "available", false, false, false, true),
            (Some("error"), "available", false, false, false, true),
            (Some("power off"), "available", true, false, false, true),
            (Some("power off"), "manageable", false, false, false, true),
            (Some("power off"), "cleaning", false, false, false, true),
            (Some("power on"), "active", false, true, false, true),
            (Some("power on"), "active", false, true, true, true),
            // In use but otherwise fine (a spawn just claimed it).
            (Some("power off"), "available", false, true, false, true),
            (Some("power off"), "available", false, true, true, false),
        ];
        for (power, provision, maintenance, instance, skip, want) in rows {
            let n = node(power, provision, maintenance, instance);
            assert_eq!(
                reserved(&n, skip),
                want,
                "{power:?} {provision} {maintenance} {instance} {skip}"
            );
        }
    }

    #[test]
    fn contents() {
        let n = node(Some("power off"), "available", false, false);
        let c = desired(&n, false);
        let inv = &c.inventories["CUSTOM_BAREMETAL_GOLD_1"];
        assert_eq!((inv.total, inv.reserved, inv.max_unit), (1, 0, 1));
        assert!(c.traits.contains("CUSTOM_RAID"));
        assert!(c.traits.contains("COMPUTE_NODE"));
        assert!(c.traits.contains("OWNER_NOVA"));
        let mut bare = n.clone();
        bare.resource_class = None;
        assert!(desired(&bare, false).inventories.is_empty());
    }
}
