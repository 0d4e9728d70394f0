//! Upstream's request schemas for nodes, ports and JSON patches, written
//! with [`super::schema`] in upstream's keyword order.

use std::sync::OnceLock;

use super::schema::build::{pattern, ty, typed, typed_one, types};
use super::schema::{Keyword, Schema};

const STRING_OR_NULL: &[&str] = &["string", "null"];
const BOOLEAN_LIKE: &[&str] = &["string", "boolean", "null"];
const OBJECT_OR_NULL: &[&str] = &["object", "null"];

fn string_or_null() -> Schema {
    typed(STRING_OR_NULL)
}

fn limited(max: usize) -> Schema {
    Schema::new(vec![types(STRING_OR_NULL), Keyword::MaxLength(max)])
}

/// A reduced form of upstream's `network_data` schema (Nova's network
/// metadata): the top-level shape only. Upstream also checks every link,
/// network and service entry; those deeper errors are not reproduced.
pub fn network_data() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(network_data_schema)
}

fn network_data_schema() -> Schema {
    Schema::new(vec![
        ty("object"),
        Keyword::Required(vec!["links", "networks", "services"]),
        Keyword::Properties(vec![
            ("links", typed_one("array")),
            ("networks", typed_one("array")),
            ("services", typed_one("array")),
        ]),
    ])
}

fn node_properties(for_patch: bool) -> Vec<(&'static str, Schema)> {
    let mut properties = vec![
        ("automated_clean", typed(BOOLEAN_LIKE)),
        ("bios_interface", string_or_null()),
        ("boot_interface", string_or_null()),
        ("boot_mode", string_or_null()),
        ("chassis_uuid", string_or_null()),
        ("conductor_group", string_or_null()),
        ("console_enabled", typed(BOOLEAN_LIKE)),
        ("console_interface", string_or_null()),
        ("deploy_interface", string_or_null()),
        ("description", limited(4096)),
        ("disable_power_off", typed(BOOLEAN_LIKE)),
        ("driver", typed_one("string")),
        ("driver_info", typed(OBJECT_OR_NULL)),
        ("extra", typed(OBJECT_OR_NULL)),
        ("firmware_interface", string_or_null()),
        ("inspect_interface", string_or_null()),
        ("instance_info", typed(OBJECT_OR_NULL)),
        (
            "instance_name",
            Schema::new(vec![
                types(STRING_OR_NULL),
                Keyword::MinLength(1),
                Keyword::MaxLength(255),
            ]),
        ),
        ("instance_uuid", string_or_null()),
        ("lessee", string_or_null()),
        ("management_interface", string_or_null()),
        ("maintenance", typed(BOOLEAN_LIKE)),
        ("name", string_or_null()),
        (
            "network_data",
            Schema::new(vec![Keyword::AnyOf(vec![
                typed_one("null"),
                Schema::new(vec![ty("object"), Keyword::NoAdditionalProperties]),
                network_data_schema(),
            ])]),
        ),
        ("network_interface", string_or_null()),
        ("owner", string_or_null()),
        ("parent_node", limited(36)),
        ("power_interface", string_or_null()),
        ("properties", typed(OBJECT_OR_NULL)),
        ("raid_interface", string_or_null()),
        ("rescue_interface", string_or_null()),
        ("resource_class", limited(80)),
        ("retired", typed(BOOLEAN_LIKE)),
        ("retired_reason", string_or_null()),
        ("secure_boot", typed(BOOLEAN_LIKE)),
        ("shard", string_or_null()),
        ("storage_interface", string_or_null()),
        ("uuid", string_or_null()),
        ("vendor_interface", string_or_null()),
    ];
    if for_patch {
        properties.push(("protected", typed(BOOLEAN_LIKE)));
        properties.push(("protected_reason", string_or_null()));
    }
    properties
}

fn node_schema(for_patch: bool) -> Schema {
    Schema::new(vec![
        ty("object"),
        Keyword::Properties(node_properties(for_patch)),
        Keyword::Required(vec!["driver"]),
        Keyword::NoAdditionalProperties,
    ])
}

/// The node create schema (draft 7).
pub fn node_create() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| node_schema(false))
}

/// The schema a patched node must satisfy.
pub fn node_patch() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| node_schema(true))
}

/// Property names of a schema (what `patched_validate_with_schema` keeps).
pub fn property_names(schema: &Schema) -> Vec<&'static str> {
    schema
        .keywords
        .iter()
        .filter_map(|keyword| match keyword {
            Keyword::Properties(properties) => {
                Some(properties.iter().map(|(name, _)| *name).collect())
            }
            _ => None,
        })
        .next()
        .unwrap_or_default()
}

/// The port create and patch schema (latest draft).
pub fn port() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut schema = Schema::new(vec![
            ty("object"),
            Keyword::Properties(vec![
                ("address", typed_one("string")),
                ("extra", typed(OBJECT_OR_NULL)),
                ("is_smartnic", typed(BOOLEAN_LIKE)),
                ("local_link_connection", typed(&["null", "object"])),
                ("node_ident", typed_one("string")),
                ("node_uuid", typed_one("string")),
                ("physical_network", limited(64)),
                ("portgroup_uuid", string_or_null()),
                ("pxe_enabled", typed(BOOLEAN_LIKE)),
                ("uuid", string_or_null()),
                ("name", string_or_null()),
                ("description", limited(255)),
                ("vendor", limited(32)),
                ("category", limited(80)),
                ("available_for_dynamic_portgroup", typed_one("boolean")),
            ]),
            Keyword::Required(vec!["address"]),
            Keyword::OneOf(vec![
                Schema::new(vec![Keyword::Required(vec!["node_ident"])]),
                Schema::new(vec![Keyword::Required(vec!["node_uuid"])]),
            ]),
            Keyword::NoAdditionalProperties,
        ]);
        schema.modern = true;
        schema
    })
}

fn local_link_base(required: Vec<&'static str>, unmanaged_only: bool) -> Schema {
    let network_types = if unmanaged_only {
        vec![serde_json::json!("unmanaged")]
    } else {
        vec![serde_json::json!("managed"), serde_json::json!("unmanaged")]
    };
    let mut keywords = vec![
        ty("object"),
        Keyword::Properties(vec![
            ("port_id", typed_one("string")),
            ("switch_id", typed_one("string")),
            ("hostname", typed_one("string")),
            ("switch_info", typed_one("string")),
            (
                "network_type",
                Schema::new(vec![ty("string"), Keyword::Enum(network_types)]),
            ),
            ("vtep-logical-switch", typed_one("string")),
            ("vtep-physical-switch", typed_one("string")),
        ]),
        Keyword::NoAdditionalProperties,
        Keyword::DependentRequired(vec![
            ("vtep-logical-switch", vec!["vtep-physical-switch"]),
            ("vtep-physical-switch", vec!["vtep-logical-switch"]),
        ]),
    ];
    if !required.is_empty() {
        keywords.push(Keyword::Required(required));
    }
    let mut schema = Schema::new(keywords);
    schema.modern = true;
    schema
}

/// `local_link_connection` of a port (any of upstream's accepted shapes).
pub fn local_link_connection() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut schema = Schema::new(vec![Keyword::AnyOf(vec![
            local_link_base(vec!["port_id", "switch_id"], false),
            local_link_base(vec!["port_id", "hostname"], false),
            local_link_base(vec!["network_type"], true),
            local_link_base(
                vec!["port_id", "vtep-logical-switch", "vtep-physical-switch"],
                false,
            ),
            Schema::new(vec![ty("object"), Keyword::NoAdditionalProperties]),
        ])]);
        schema.modern = true;
        schema
    })
}

/// `local_link_connection` of a Smart NIC port.
pub fn local_link_smart_nic() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| local_link_base(vec!["port_id", "hostname"], false))
}

/// Upstream's `args.patch`: a list of add/replace/remove operations.
pub fn patch_document() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut schema = Schema::new(vec![
            ty("array"),
            Keyword::Items(Box::new(Schema::new(vec![
                ty("object"),
                Keyword::Properties(vec![
                    (
                        "path",
                        Schema::new(vec![
                            ty("string"),
                            // Python's `$` also matches before a final newline.
                            pattern(r"^(/[\w-]+)+$", r"^(/[\w-]+)+\n?\z"),
                        ]),
                    ),
                    (
                        "op",
                        Schema::new(vec![
                            ty("string"),
                            Keyword::Enum(vec![
                                serde_json::json!("add"),
                                serde_json::json!("replace"),
                                serde_json::json!("remove"),
                            ]),
                        ]),
                    ),
                    ("value", Schema::default()),
                ]),
                Keyword::NoAdditionalProperties,
                Keyword::Required(vec!["op", "path"]),
            ]))),
        ]);
        schema.modern = true;
        schema
    })
}
