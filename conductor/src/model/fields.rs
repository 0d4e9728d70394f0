//! The fields of nodes and ports: when each appeared, how lists show it,
//! whether clients may set it, and its value on a new resource.
//!
//! Versions come from upstream's `VERSIONED_FIELDS` (nodes) and the port
//! controller's `hide_fields_in_newer_versions`; writability from the node
//! and port JSON schemas and `PATCH_ALLOWED_FIELDS`; defaults from what a
//! fresh `POST` answers (transcripts 06 and 09).

use serde_json::{json, Value};

/// How a field is filled on a resource that was just created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldDefault {
    /// JSON `null`.
    Null,
    /// `{}`.
    EmptyObject,
    /// `[]`.
    EmptyList,
    /// `""`.
    EmptyString,
    False,
    True,
    /// Must be in the request (`driver`, port `address`).
    Required,
    /// Generated when absent (`uuid`).
    GeneratedUuid,
    /// Filled by storage (`created_at`, `updated_at`).
    Timestamp,
    /// `enroll` from 1.11, `available` before.
    InitialProvisionState,
    /// The hardware type's default interface, chosen by the conductor.
    DriverDefault,
    /// Computed at read time by the service (`conductor`,
    /// `allocation_uuid`, port `node_uuid`/`portgroup_uuid` from ids).
    Computed,
}

impl FieldDefault {
    /// The JSON value for the simple defaults; `None` for the ones the
    /// caller computes.
    pub fn value(self) -> Option<Value> {
        match self {
            FieldDefault::Null => Some(Value::Null),
            FieldDefault::EmptyObject => Some(json!({})),
            FieldDefault::EmptyList => Some(json!([])),
            FieldDefault::EmptyString => Some(json!("")),
            FieldDefault::False => Some(json!(false)),
            FieldDefault::True => Some(json!(true)),
            _ => None,
        }
    }
}

/// One field of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    pub name: &'static str,
    /// The microversion `1.N` from which GET shows it (and create/patch
    /// accept it).
    pub since: u16,
    /// Shown by a list request without `detail` and `fields`.
    pub in_short_list: bool,
    /// Accepted in a create body (upstream's create schema).
    pub settable_at_create: bool,
    /// Changeable by PATCH (upstream's `PATCH_ALLOWED_FIELDS`).
    pub patchable: bool,
    pub default: FieldDefault,
}

const fn field(
    name: &'static str,
    since: u16,
    in_short_list: bool,
    settable_at_create: bool,
    patchable: bool,
    default: FieldDefault,
) -> FieldSpec {
    FieldSpec {
        name,
        since,
        in_short_list,
        settable_at_create,
        patchable,
        default,
    }
}

use FieldDefault as D;

/// Every node field of the 1.115 GET body, in upstream's order (links are
/// added by the view and are not fields).
pub const NODE_FIELDS: &[FieldSpec] = &[
    field("uuid", 1, true, true, false, D::GeneratedUuid),
    field("created_at", 1, false, false, false, D::Timestamp),
    field("updated_at", 1, false, false, false, D::Null),
    field("automated_clean", 47, false, true, true, D::Null),
    field("bios_interface", 40, false, true, true, D::DriverDefault),
    field("boot_interface", 31, false, true, true, D::DriverDefault),
    field("boot_mode", 75, false, true, false, D::Null),
    field("clean_step", 7, false, false, false, D::EmptyObject),
    field("conductor_group", 46, false, true, true, D::EmptyString),
    field("console_enabled", 1, false, true, false, D::False),
    field("console_interface", 31, false, true, true, D::DriverDefault),
    field("disable_power_off", 95, false, true, true, D::False),
    field("deploy_interface", 31, false, true, true, D::DriverDefault),
    field("deploy_step", 44, false, false, false, D::EmptyObject),
    field("description", 51, false, true, true, D::Null),
    field("driver", 1, false, true, true, D::Required),
    field("driver_info", 1, false, true, true, D::EmptyObject),
    field(
        "driver_internal_info",
        3,
        false,
        false,
        false,
        D::EmptyObject,
    ),
    field("extra", 1, false, true, true, D::EmptyObject),
    field("fault", 42, false, false, false, D::Null),
    field(
        "firmware_interface",
        86,
        false,
        true,
        true,
        D::DriverDefault,
    ),
    field("health", 109, false, false, false, D::Null),
    field("inspection_finished_at", 6, false, false, false, D::Null),
    field("inspection_started_at", 6, false, false, false, D::Null),
    field("inspect_interface", 31, false, true, true, D::DriverDefault),
    field("instance_info", 1, false, true, true, D::EmptyObject),
    field("instance_name", 104, false, true, true, D::Null),
    field("instance_uuid", 1, true, true, true, D::Null),
    field("last_error", 1, false, false, false, D::Null),
    field("lessee", 65, false, true, true, D::Null),
    field("maintenance", 1, true, true, true, D::False),
    field("maintenance_reason", 1, false, false, false, D::Null),
    field(
        "management_interface",
        31,
        false,
        true,
        true,
        D::DriverDefault,
    ),
    field("name", 5, true, true, true, D::Null),
    field("network_data", 66, false, true, true, D::EmptyObject),
    field("network_interface", 20, false, true, true, D::DriverDefault),
    field("owner", 50, false, true, true, D::Null),
    field("parent_node", 83, false, true, true, D::Null),
    field("power_interface", 31, false, true, true, D::DriverDefault),
    field("power_state", 1, true, false, false, D::Null),
    field("properties", 1, false, true, true, D::EmptyObject),
    field("protected", 48, false, false, true, D::False),
    field("protected_reason", 48, false, false, true, D::Null),
    field(
        "provision_state",
        1,
        true,
        false,
        false,
        D::InitialProvisionState,
    ),
    field("provision_updated_at", 1, false, false, false, D::Null),
    field("raid_config", 12, false, false, false, D::EmptyObject),
    field("raid_interface", 31, false, true, true, D::DriverDefault),
    field("rescue_interface", 38, false, true, true, D::DriverDefault),
    field("reservation", 1, false, false, false, D::Null),
    field("resource_class", 21, false, true, true, D::Null),
    field("retired", 61, false, true, true, D::False),
    field("retired_reason", 61, false, true, true, D::Null),
    field("secure_boot", 75, false, true, false, D::Null),
    field("service_step", 87, false, false, false, D::EmptyObject),
    field("shard", 82, false, true, true, D::Null),
    field("storage_interface", 33, false, true, true, D::DriverDefault),
    field("target_power_state", 1, false, false, false, D::Null),
    field("target_provision_state", 1, false, false, false, D::Null),
    field(
        "target_raid_config",
        12,
        false,
        false,
        false,
        D::EmptyObject,
    ),
    field("traits", 37, false, false, false, D::EmptyList),
    field("vendor_interface", 31, false, true, true, D::DriverDefault),
    field("conductor", 49, false, false, false, D::Computed),
    field("allocation_uuid", 52, false, false, false, D::Computed),
    field("chassis_uuid", 1, false, true, true, D::Null),
];

/// Upstream's `PATCH_ALLOWED_FIELDS` for nodes, in its order (the order of
/// the "Only the following can be updated" message).
pub const NODE_PATCH_ALLOWED: &[&str] = &[
    "automated_clean",
    "bios_interface",
    "boot_interface",
    "chassis_uuid",
    "conductor_group",
    "console_interface",
    "deploy_interface",
    "description",
    "disable_power_off",
    "driver",
    "driver_info",
    "extra",
    "inspect_interface",
    "instance_info",
    "instance_name",
    "instance_uuid",
    "lessee",
    "maintenance",
    "management_interface",
    "name",
    "network_data",
    "network_interface",
    "owner",
    "power_interface",
    "properties",
    "protected",
    "protected_reason",
    "raid_interface",
    "rescue_interface",
    "resource_class",
    "retired",
    "retired_reason",
    "shard",
    "storage_interface",
    "vendor_interface",
    "parent_node",
    "firmware_interface",
];

/// Upstream's `VERSIONED_FIELDS`, in its order: the fields hidden, refused
/// in `fields=`, create bodies and patches below their version. `events` is
/// listed there although no node has it.
pub const NODE_VERSIONED_FIELDS: &[(&str, u16)] = &[
    ("driver_internal_info", 3),
    ("name", 5),
    ("inspection_finished_at", 6),
    ("inspection_started_at", 6),
    ("clean_step", 7),
    ("raid_config", 12),
    ("target_raid_config", 12),
    ("network_interface", 20),
    ("resource_class", 21),
    ("storage_interface", 33),
    ("traits", 37),
    ("rescue_interface", 38),
    ("bios_interface", 40),
    ("fault", 42),
    ("deploy_step", 44),
    ("conductor_group", 46),
    ("automated_clean", 47),
    ("protected", 48),
    ("protected_reason", 48),
    ("conductor", 49),
    ("owner", 50),
    ("description", 51),
    ("allocation_uuid", 52),
    ("events", 54),
    ("retired", 61),
    ("retired_reason", 61),
    ("lessee", 65),
    ("network_data", 66),
    ("boot_mode", 75),
    ("secure_boot", 75),
    ("shard", 82),
    ("parent_node", 83),
    ("firmware_interface", 86),
    ("service_step", 87),
    ("disable_power_off", 95),
    ("instance_name", 104),
    ("health", 109),
    ("boot_interface", 31),
    ("console_interface", 31),
    ("deploy_interface", 31),
    ("inspect_interface", 31),
    ("management_interface", 31),
    ("power_interface", 31),
    ("raid_interface", 31),
    ("vendor_interface", 31),
];

/// The fields a node list shows without `detail` or `fields`, in upstream's
/// order (`_DEFAULT_RETURN_FIELDS`).
pub const NODE_SHORT_LIST: &[&str] = &[
    "instance_uuid",
    "maintenance",
    "power_state",
    "provision_state",
    "uuid",
    "name",
];

/// Every port field of the 1.115 GET body, in upstream's order.
pub const PORT_FIELDS: &[FieldSpec] = &[
    field("uuid", 1, true, true, false, D::GeneratedUuid),
    field("created_at", 1, false, false, false, D::Timestamp),
    field("updated_at", 1, false, false, false, D::Null),
    field("address", 1, true, true, true, D::Required),
    field("extra", 1, false, true, true, D::EmptyObject),
    field("internal_info", 18, false, false, false, D::EmptyObject),
    field("is_smartnic", 53, false, true, true, D::False),
    field(
        "local_link_connection",
        19,
        false,
        true,
        true,
        D::EmptyObject,
    ),
    field("physical_network", 34, false, true, true, D::Null),
    field("pxe_enabled", 19, false, true, true, D::True),
    field("node_uuid", 1, false, true, true, D::Required),
    field("name", 88, false, true, true, D::Null),
    field("description", 97, false, true, true, D::Null),
    field("vendor", 100, false, true, true, D::Null),
    field("category", 101, false, true, true, D::Null),
    field(
        "available_for_dynamic_portgroup",
        111,
        false,
        true,
        true,
        D::True,
    ),
    field("portgroup_uuid", 24, false, true, true, D::Null),
];

/// Upstream's port `PATCH_ALLOWED_FIELDS`, in its order.
pub const PORT_PATCH_ALLOWED: &[&str] = &[
    "address",
    "extra",
    "is_smartnic",
    "local_link_connection",
    "node_ident",
    "node_uuid",
    "physical_network",
    "portgroup_uuid",
    "pxe_enabled",
    "name",
    "description",
    "vendor",
    "category",
    "available_for_dynamic_portgroup",
];

/// The fields a port list shows without `detail` or `fields`.
pub const PORT_SHORT_LIST: &[&str] = &["uuid", "address"];

/// The microversion from which a node field exists; 1 for unversioned
/// fields, `None` for names upstream does not know.
pub fn node_field_since(name: &str) -> Option<u16> {
    NODE_FIELDS
        .iter()
        .find(|spec| spec.name == name)
        .map(|spec| spec.since)
}

/// The microversion from which a port field exists.
pub fn port_field_since(name: &str) -> Option<u16> {
    PORT_FIELDS
        .iter()
        .find(|spec| spec.name == name)
        .map(|spec| spec.since)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The key set of transcript 07 (GET at 1.115) minus the link lists.
    const NODE_KEYS_07: &str = "uuid created_at updated_at automated_clean bios_interface \
        boot_interface boot_mode clean_step conductor_group console_enabled console_interface \
        disable_power_off deploy_interface deploy_step description driver driver_info \
        driver_internal_info extra fault firmware_interface health inspection_finished_at \
        inspection_started_at inspect_interface instance_info instance_name instance_uuid \
        last_error lessee maintenance maintenance_reason management_interface name network_data \
        network_interface owner parent_node power_interface power_state properties protected \
        protected_reason provision_state provision_updated_at raid_config raid_interface \
        rescue_interface reservation resource_class retired retired_reason secure_boot \
        service_step shard storage_interface target_power_state target_provision_state \
        target_raid_config traits vendor_interface conductor allocation_uuid chassis_uuid";

    #[test]
    fn node_table_matches_the_latest_get_body_in_order() {
        let names: Vec<&str> = NODE_FIELDS.iter().map(|spec| spec.name).collect();
        let expected: Vec<&str> = NODE_KEYS_07.split_whitespace().collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn versions_agree_with_versioned_fields() {
        for (name, since) in NODE_VERSIONED_FIELDS {
            if *name == "events" {
                continue;
            }
            assert_eq!(node_field_since(name), Some(*since), "{name}");
        }
        let versioned: BTreeSet<&str> = NODE_VERSIONED_FIELDS
            .iter()
            .map(|(name, _)| *name)
            .collect();
        for spec in NODE_FIELDS {
            assert_eq!(
                spec.since > 1,
                versioned.contains(spec.name),
                "{}",
                spec.name
            );
        }
    }

    #[test]
    fn patchable_flags_agree_with_the_allowed_lists() {
        let node: BTreeSet<&str> = NODE_FIELDS
            .iter()
            .filter(|s| s.patchable)
            .map(|s| s.name)
            .collect();
        assert_eq!(node, NODE_PATCH_ALLOWED.iter().copied().collect());
        let port: BTreeSet<&str> = PORT_FIELDS
            .iter()
            .filter(|s| s.patchable)
            .map(|s| s.name)
            .collect();
        let allowed: BTreeSet<&str> = PORT_PATCH_ALLOWED
            .iter()
            .copied()
            .filter(|n| *n != "node_ident")
            .collect();
        assert_eq!(port, allowed);
        let short: BTreeSet<&str> = NODE_FIELDS
            .iter()
            .filter(|s| s.in_short_list)
            .map(|s| s.name)
            .collect();
        assert_eq!(short, NODE_SHORT_LIST.iter().copied().collect());
    }
}
