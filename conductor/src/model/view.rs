//! What GET answers: a stored node or port (the full 1.115 object) rendered
//! for a request's microversion and `fields=`, as upstream renders it.
//!
//! Rendering hides fields newer than the request, masks secrets the way
//! upstream does for callers without the `show_password` and
//! `show_instance_secrets` rights (the noauth/default-policy view the
//! transcripts show), renames provision states for old versions, and adds
//! the link lists. `fields=` handling (parsing, 406 for fields too new, 400
//! for unknown ones) and collections with their `next` link live here too.

use ferrite_conductor_states::ApiVersion;
use serde_json::{json, Map, Value};

use super::error::{ApiFieldError, ModelError};
use super::fields::{
    NODE_FIELDS, NODE_SHORT_LIST, NODE_VERSIONED_FIELDS, PORT_FIELDS, PORT_SHORT_LIST,
};
use super::mask::{mask_dict_password, truthy, SECRET};
use super::patch::parse_bool_strict;

/// Which resource a `fields=` list is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Node,
    Port,
}

impl From<&str> for Resource {
    /// `"port"`/`"ports"` name ports; anything else nodes.
    fn from(name: &str) -> Resource {
        match name {
            "port" | "ports" => Resource::Port,
            _ => Resource::Node,
        }
    }
}

/// Fields computed by the API rather than read from the node row; upstream
/// accepts them in `fields=` although they are not object fields.
const NODE_API_FIELDS: &[&str] = &["allocation_uuid", "chassis_uuid", "conductor"];

/// The `self` and `bookmark` links of `{resource}/{args}`.
pub fn links(base_url: &str, resource: &str, args: &str) -> Value {
    json!([
        {"href": format!("{base_url}/v1/{resource}/{args}"), "rel": "self"},
        {"href": format!("{base_url}/{resource}/{args}"), "rel": "bookmark"},
    ])
}

fn node_field_hidden(name: &str, version: ApiVersion) -> bool {
    NODE_VERSIONED_FIELDS
        .iter()
        .any(|(field, since)| *field == name && !version.at_least(*since))
}

/// Upstream's `update_state_in_older_versions`.
fn rename_old_provision_states(object: &mut Map<String, Value>, version: ApiVersion) {
    let state = object
        .get("provision_state")
        .and_then(Value::as_str)
        .map(str::to_owned);
    match state.as_deref() {
        Some("available") if !version.at_least(2) => {
            object.insert("provision_state".into(), Value::Null);
        }
        Some("inspect wait") if !version.at_least(39) => {
            object.insert("provision_state".into(), json!("inspecting"));
        }
        _ => {}
    }
}

/// The node as GET answers it (`GET /v1/nodes/{id}` and each item of
/// `/v1/nodes/detail`). `fields` is the already checked `fields=` list.
pub fn node_view(
    full: &Map<String, Value>,
    version: ApiVersion,
    fields: Option<&[String]>,
    base_url: &str,
) -> Map<String, Value> {
    let wanted = |name: &str| fields.is_none_or_contains(name);
    let get = |name: &str| full.get(name).cloned().unwrap_or(Value::Null);
    let mut node = Map::new();
    for spec in NODE_FIELDS {
        if NODE_API_FIELDS.contains(&spec.name) {
            continue;
        }
        // Upstream always reads uuid and the timestamps, plus owner and
        // lessee for its policy checks; the sanitising below drops what
        // was not asked for.
        let always = matches!(
            spec.name,
            "uuid" | "created_at" | "updated_at" | "owner" | "lessee"
        );
        if always || wanted(spec.name) {
            node.insert(spec.name.to_string(), get(spec.name));
        }
    }
    // Upstream's order: the object fields, links, then the API's own
    // fields and the sub-resource links.
    let uuid = full
        .get("uuid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    node.insert("links".into(), links(base_url, "nodes", &uuid));
    if version.at_least(49) && wanted("conductor") {
        node.insert("conductor".into(), get("conductor"));
    }
    if version.at_least(52) && wanted("allocation_uuid") {
        node.insert("allocation_uuid".into(), get("allocation_uuid"));
    }
    if wanted("chassis_uuid") {
        node.insert("chassis_uuid".into(), get("chassis_uuid"));
    }
    if fields.is_none() {
        node.insert(
            "ports".into(),
            links(base_url, "nodes", &format!("{uuid}/ports")),
        );
        if version.at_least(14) {
            node.insert(
                "states".into(),
                links(base_url, "nodes", &format!("{uuid}/states")),
            );
        }
        if version.at_least(24) {
            node.insert(
                "portgroups".into(),
                links(base_url, "nodes", &format!("{uuid}/portgroups")),
            );
        }
        if version.at_least(32) {
            node.insert(
                "volume".into(),
                links(base_url, "nodes", &format!("{uuid}/volume")),
            );
        }
    }
    if let Some(fields) = fields {
        // A field subset comes back as upstream builds it: uuid first,
        // then the fields in the order they were asked for, then links.
        let mut ordered = Map::new();
        let uuid_first = fields.iter().filter(|f| f.as_str() == "uuid");
        let rest = fields.iter().filter(|f| f.as_str() != "uuid");
        for field in uuid_first.chain(rest) {
            if let Some(value) = node.get(field.as_str()) {
                ordered.insert(field.clone(), value.clone());
            }
        }
        if let Some(links) = node.get("links") {
            ordered.insert("links".into(), links.clone());
        }
        node = ordered;
    }
    mask_node_secrets(&mut node);
    if node.contains_key("provision_state") {
        rename_old_provision_states(&mut node, version);
    }
    node.retain(|key, _| !node_field_hidden(key, version));
    node
}

/// Masks `driver_info`, `instance_info` and `driver_internal_info` as
/// upstream does for callers without the secret-showing policies.
fn mask_node_secrets(node: &mut Map<String, Value>) {
    if let Some(Value::Object(driver_info)) = node.get("driver_info") {
        let mut masked = mask_dict_password(driver_info, SECRET);
        for key in ["snmp_auth_key", "snmp_priv_key"] {
            if masked.get(key).is_some_and(truthy) {
                masked.insert(key.into(), json!(SECRET));
            }
        }
        node.insert("driver_info".into(), Value::Object(masked));
    }
    if let Some(Value::Object(instance_info)) = node.get("instance_info") {
        let mut masked = mask_dict_password(instance_info, SECRET);
        for key in ["configdrive", "image_url"] {
            if masked.get(key).is_some_and(truthy) {
                masked.insert(key.into(), json!(SECRET));
            }
        }
        node.insert("instance_info".into(), Value::Object(masked));
    }
    if let Some(Value::Object(internal)) = node.get("driver_internal_info") {
        let masked = mask_dict_password(internal, SECRET);
        node.insert("driver_internal_info".into(), Value::Object(masked));
    }
}

/// One item of `GET /v1/nodes` without `detail` or `fields`.
pub fn node_list_item(
    full: &Map<String, Value>,
    version: ApiVersion,
    base_url: &str,
) -> Map<String, Value> {
    let short: Vec<String> = NODE_SHORT_LIST
        .iter()
        .map(|name| name.to_string())
        .collect();
    node_view(full, version, Some(&short), base_url)
}

/// `GET /v1/nodes/{id}/states`.
pub fn node_states_view(full: &Map<String, Value>, version: ApiVersion) -> Map<String, Value> {
    let mut names = vec![
        "console_enabled",
        "last_error",
        "power_state",
        "provision_state",
        "target_power_state",
        "target_provision_state",
        "provision_updated_at",
    ];
    if version.at_least(12) {
        names.extend(["raid_config", "target_raid_config"]);
    }
    if version.at_least(75) {
        names.extend(["boot_mode", "secure_boot"]);
    }
    let mut states: Map<String, Value> = names
        .iter()
        .map(|name| {
            (
                name.to_string(),
                full.get(*name).cloned().unwrap_or(Value::Null),
            )
        })
        .collect();
    rename_old_provision_states(&mut states, version);
    states
}

/// The port as GET answers it. `fields` is the already checked list.
pub fn port_view(
    full: &Map<String, Value>,
    version: ApiVersion,
    fields: Option<&[String]>,
    base_url: &str,
) -> Map<String, Value> {
    let mut port = Map::new();
    for spec in PORT_FIELDS {
        port.insert(
            spec.name.to_string(),
            full.get(spec.name).cloned().unwrap_or(Value::Null),
        );
    }
    let uuid = full
        .get("uuid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    port.insert("links".into(), links(base_url, "ports", &uuid));
    for spec in PORT_FIELDS {
        if !version.at_least(spec.since) {
            port.remove(spec.name);
        }
    }
    // Upstream blanks links to OVN VTEP switches outside 1.90–1.104.
    let vtep_allowed = version.at_least(90) && !version.at_least(105);
    if !vtep_allowed {
        let has_vtep = port
            .get("local_link_connection")
            .and_then(Value::as_object)
            .is_some_and(|link| {
                link.keys()
                    .any(|key| key == "vtep-logical-switch" || key == "vtep-physical-switch")
            });
        if has_vtep {
            port.insert("local_link_connection".into(), json!({}));
        }
    }
    if let Some(fields) = fields {
        port.retain(|key, _| key == "links" || fields.iter().any(|field| field == key));
    }
    port
}

/// One item of `GET /v1/ports` without `detail` or `fields`.
pub fn port_list_item(
    full: &Map<String, Value>,
    version: ApiVersion,
    base_url: &str,
) -> Map<String, Value> {
    let short: Vec<String> = PORT_SHORT_LIST
        .iter()
        .map(|name| name.to_string())
        .collect();
    port_view(full, version, Some(&short), base_url)
}

/// Upstream's `string_list`: split on commas, trim, lower-case, drop empty
/// items and duplicates (keeping the first).
pub fn parse_fields(fields: &str) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    for item in fields.split(',') {
        let item = item.trim().to_lowercase();
        if !item.is_empty() && !items.contains(&item) {
            items.push(item);
        }
    }
    items
}

/// The 406 checks on a `fields=` list: `fields` needs 1.8, and no field may
/// be newer than the request.
pub fn check_fields_version(
    fields: &[String],
    version: ApiVersion,
    resource: Resource,
) -> Result<(), ApiFieldError> {
    if !version.at_least(8) {
        return Err(ModelError::not_acceptable());
    }
    let too_new = |name: &str| match resource {
        Resource::Node => node_field_hidden(name, version),
        Resource::Port => port_field_too_new_for_fields(name, version),
    };
    if fields.iter().any(|field| too_new(field)) {
        return Err(ModelError::not_acceptable());
    }
    Ok(())
}

/// Upstream's `_check_allowed_port_fields` for a list of names. Note that
/// `internal_info` (1.18) is not checked there; older requests just do not
/// see it.
fn port_field_too_new_for_fields(name: &str, version: ApiVersion) -> bool {
    let since = match name {
        "pxe_enabled" | "local_link_connection" => 19,
        "portgroup_uuid" => 24,
        "physical_network" => 34,
        "is_smartnic" => 53,
        "local_link_connection/network_type" => 64,
        "name" => 88,
        "description" => 97,
        "vendor" => 100,
        "category" => 101,
        "available_for_dynamic_portgroup" => 111,
        _ => return false,
    };
    !version.at_least(since)
}

/// The 400 check on a `fields=` list: every name must be a known field.
/// Upstream runs it while rendering each item, so a list request with no
/// items never fails it.
pub fn check_fields_known(fields: &[String], resource: Resource) -> Result<(), ApiFieldError> {
    match resource {
        Resource::Node => {
            let known = |name: &str| {
                name == "uuid"
                    || NODE_FIELDS.iter().any(|spec| {
                        spec.name == name && !matches!(spec.name, "created_at" | "updated_at")
                    })
            };
            if let Some(bad) = fields.iter().find(|field| !known(field)) {
                return Err(ModelError::bad_request(format!(
                    "Field {bad} is not a valid field."
                )));
            }
        }
        Resource::Port => {
            let known =
                |name: &str| name == "links" || PORT_FIELDS.iter().any(|spec| spec.name == name);
            let bad: Vec<&str> = fields
                .iter()
                .map(String::as_str)
                .filter(|field| !known(field))
                .collect();
            if !bad.is_empty() {
                return Err(ModelError::bad_request(format!(
                    "Field(s) \"{}\" are not valid",
                    bad.join(", ")
                )));
            }
        }
    }
    Ok(())
}

/// `?fields=` of a single-resource GET: parsed and checked in upstream's
/// order (406 before 400).
pub fn check_fields_param(
    fields: &str,
    version: ApiVersion,
    resource: impl Into<Resource>,
) -> Result<Vec<String>, ApiFieldError> {
    let resource = resource.into();
    let fields = parse_fields(fields);
    check_fields_version(&fields, version, resource)?;
    check_fields_known(&fields, resource)?;
    Ok(fields)
}

/// The fields a list request renders (`None`: every field, as `detail`),
/// from its raw `fields` and `detail` query values, with upstream's checks.
/// The unknown-field check is left to [`check_fields_known`], which the
/// caller runs only when the list is not empty.
pub fn list_fields(
    fields: Option<&str>,
    detail: Option<&str>,
    version: ApiVersion,
    resource: Resource,
) -> Result<Option<Vec<String>>, ApiFieldError> {
    let detail = match detail {
        Some(raw) => Some(parse_bool_strict(
            "detail",
            &Value::String(raw.to_string()),
        )?),
        None => None,
    };
    let fields = fields.map(parse_fields);
    if let Some(fields) = &fields {
        check_fields_version(fields, version, resource)?;
    }
    if let Some(detail) = detail {
        if !version.at_least(43) {
            let shown = if detail { "True" } else { "False" };
            return Err(ModelError::bad_request(format!(
                "Invalid query parameter ?detail={shown} received."
            )));
        }
    }
    if fields.is_some() && detail == Some(true) {
        return Err(ModelError::bad_request(
            "Can not specify ?detail=True and fields in the same request.",
        ));
    }
    match fields {
        Some(fields) => Ok(Some(fields)),
        None if detail == Some(true) => Ok(None),
        None => {
            let short = match resource {
                Resource::Node => NODE_SHORT_LIST,
                Resource::Port => PORT_SHORT_LIST,
            };
            Ok(Some(short.iter().map(|name| name.to_string()).collect()))
        }
    }
}

/// Python's `str()` of a boolean, as upstream writes flags into `next`.
pub fn python_bool(flag: bool) -> &'static str {
    if flag {
        "True"
    } else {
        "False"
    }
}

/// The query pairs of a `next` link, in upstream's order: the given pairs
/// (nodes: `sort_key`, `sort_dir`, then `associated`, `maintenance`,
/// `retired` when true and `detail` when given; ports: `sort_key`,
/// `sort_dir`, `detail`), then `fields` joined by commas when rendering a
/// field subset (which includes the default short list).
pub fn next_query(
    mut pairs: Vec<(String, String)>,
    fields: Option<&[String]>,
) -> Vec<(String, String)> {
    if let Some(fields) = fields.filter(|fields| !fields.is_empty()) {
        pairs.push(("fields".into(), fields.join(",")));
    }
    pairs
}

/// A collection body `{key: items}` plus upstream's `next` link, which is
/// present when the page is full (`items.len() == limit`, limit > 0).
/// `next_marker` is the uuid of the last item (upstream takes it before
/// applying `fields`); `query` comes from [`next_query`]. Values are not
/// URL-encoded, as upstream.
pub fn collection(
    items: Vec<Value>,
    key: &str,
    limit: usize,
    next_marker: Option<&str>,
    base_url: &str,
    resource_path: &str,
    query: &[(String, String)],
) -> Map<String, Value> {
    let full_page = !items.is_empty() && items.len() == limit;
    let mut body = Map::new();
    body.insert(key.to_string(), Value::Array(items));
    if let (true, Some(marker)) = (full_page, next_marker) {
        let args: String = query
            .iter()
            .map(|(name, value)| format!("{name}={value}&"))
            .collect();
        body.insert(
            "next".into(),
            json!(format!(
                "{base_url}/v1/{resource_path}?{args}limit={limit}&marker={marker}"
            )),
        );
    }
    body
}

trait FieldsExt {
    fn is_none_or_contains(&self, name: &str) -> bool;
}

impl FieldsExt for Option<&[String]> {
    fn is_none_or_contains(&self, name: &str) -> bool {
        match self {
            None => true,
            Some(fields) => fields.iter().any(|field| field == name),
        }
    }
}
