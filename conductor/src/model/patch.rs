//! Changing nodes and ports: JSON patches applied as upstream applies them,
//! validation of the result, and validation of create bodies, all with
//! upstream's error texts.
//!
//! A node (or port) travels as its full JSON object at the latest
//! microversion. Checks that need storage or the conductor (chassis,
//! portgroup and parent-node lookups, ownership policies, state and
//! instance checks, driver interfaces) are the caller's; the functions here
//! say which values to look up ([`patch_values`], [`changed_fields`]).
//!
//! Order of a node PATCH as upstream runs it:
//! 1. [`check_node_patch`] (before the node is fetched),
//! 2. the caller's state checks (409s),
//! 3. [`apply_node_patch`] (names, the patch itself, schema and types),
//! 4. the caller's lookups and conductor-side checks on [`changed_fields`].

use std::sync::OnceLock;

use ferrite_conductor_states::ApiVersion;
use regex::Regex;
use serde_json::{json, Map, Value};

use super::error::ModelError;
use super::fields::{
    NODE_FIELDS, NODE_PATCH_ALLOWED, NODE_VERSIONED_FIELDS, PORT_FIELDS, PORT_PATCH_ALLOWED,
};
use super::pyrepr::{repr, str_of};
use super::schema::{plain_message, validation_message, Schema};
use super::schemas;

type Object = Map<String, Value>;

/// Words that cannot name a node because they are routes under `/nodes`.
pub const RESERVED_NODE_NAMES: &[&str] = &[
    "maintenance",
    "management",
    "states",
    "vendor_passthru",
    "detail",
    "validate",
];

const NODE_DESCRIPTION_MAX_LENGTH: usize = 4096;

// ---------------------------------------------------------------------------
// Small validators shared with the views.

/// Upstream's `args.boolean` on a present value: Python booleans pass,
/// anything else is read as a string (`"yes"`, `"0"`, …).
pub fn parse_bool_strict(name: &str, value: &Value) -> Result<bool, ModelError> {
    if let Value::Bool(flag) = value {
        return Ok(*flag);
    }
    let text = str_of(value);
    match text.trim().to_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Ok(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Ok(false),
        _ => Err(ModelError::bad_request(format!(
            "Invalid {name}: Unrecognized value '{text}', acceptable values are: '0', '1', 'f', 'false', \
             'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"
        ))),
    }
}

/// oslo.utils' `is_uuid_like`: 32 hex digits once `urn:`, `uuid:`, braces
/// and dashes are removed.
pub fn is_uuid_like(text: &str) -> bool {
    let normalized = text.replace("urn:", "").replace("uuid:", "");
    let normalized = normalized
        .trim_matches(|c| c == '{' || c == '}')
        .replace('-', "");
    normalized.len() == 32 && normalized.chars().all(|c| c.is_ascii_hexdigit())
}

fn regex(cell: &'static OnceLock<Regex>, source: &str) -> &'static Regex {
    // The sources are constants of this module, covered by the tests.
    #[allow(clippy::expect_used)]
    cell.get_or_init(|| Regex::new(source).expect("constant regex compiles"))
}

/// Upstream's logical-name rule: RFC 3986 unreserved characters from 1.10,
/// the old hostname rule before; at most 255 characters.
pub fn is_valid_logical_name(name: &str, version: ApiVersion) -> bool {
    static LOGICAL: OnceLock<Regex> = OnceLock::new();
    static HOSTNAME: OnceLock<Regex> = OnceLock::new();
    if name.chars().count() > 255 {
        return false;
    }
    if version.at_least(10) {
        regex(&LOGICAL, r"(?i)^[A-Z0-9._~-]+\n?\z").is_match(name)
    } else {
        regex(
            &HOSTNAME,
            r"^[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?(\.[a-z0-9\-_]{0,62}[a-z0-9])*\.?\n?\z",
        )
        .is_match(name)
    }
}

/// A valid node name: a logical name that is not a UUID.
pub fn is_valid_node_name(name: &Value, version: ApiVersion) -> bool {
    match name {
        Value::String(text) => is_valid_logical_name(text, version) && !is_uuid_like(text),
        _ => false,
    }
}

/// oslo.utils' `is_valid_mac` (colon-separated, six octets).
pub fn is_valid_mac(address: &str) -> bool {
    static MAC: OnceLock<Regex> = OnceLock::new();
    regex(&MAC, r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}\n?\z").is_match(&address.to_lowercase())
}

fn is_valid_datapath_id(text: &str) -> bool {
    static DATAPATH: OnceLock<Regex> = OnceLock::new();
    regex(&DATAPATH, r"^[0-9a-f]{16}\n?\z").is_match(&text.to_lowercase())
}

fn is_valid_conductor_group(group: &str) -> bool {
    static GROUP: OnceLock<Regex> = OnceLock::new();
    regex(&GROUP, r"^[a-zA-Z0-9_\-.]*\n?\z").is_match(group)
}

fn uuid_field(name: &str, value: &Value) -> Result<(), ModelError> {
    match value {
        Value::Null => Ok(()),
        Value::String(text) if is_uuid_like(text) => Ok(()),
        other => Err(ModelError::bad_request(format!(
            "Expected UUID for {name}: {}",
            str_of(other)
        ))),
    }
}

/// Python's `len()` of a value, or the `TypeError` text for values without
/// a length.
fn python_len(value: &Value) -> Result<usize, ModelError> {
    let type_name = match value {
        Value::String(text) => return Ok(text.chars().count()),
        Value::Array(items) => return Ok(items.len()),
        Value::Object(map) => return Ok(map.len()),
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(number) if number.is_f64() => "float",
        Value::Number(_) => "int",
    };
    Err(ModelError::Internal(format!(
        "object of type '{type_name}' has no len()"
    )))
}

// ---------------------------------------------------------------------------
// Patch documents.

/// One operation of a checked patch document.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOp {
    /// `add`, `replace` or `remove`.
    pub op: String,
    pub path: String,
    pub value: Option<Value>,
    /// The operation as sent, for error messages.
    pub raw: Object,
}

/// Checks a patch document against upstream's `args.patch` schema.
pub fn parse_patch(patch: &Value) -> Result<Vec<PatchOp>, ModelError> {
    if let Some(message) = validation_message("patch", patch, schemas::patch_document()) {
        return Err(ModelError::bad_request(message));
    }
    let mut ops = Vec::new();
    for item in patch.as_array().map(Vec::as_slice).unwrap_or_default() {
        if let Value::Object(raw) = item {
            ops.push(PatchOp {
                op: raw
                    .get("op")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                path: raw
                    .get("path")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                value: raw.get("value").cloned(),
                raw: raw.clone(),
            });
        }
    }
    Ok(ops)
}

/// Upstream's `get_patch_values`: the values of non-remove operations on
/// exactly `path`. An add or replace without a value fails there with a
/// `KeyError` (a 500).
pub fn patch_values(ops: &[PatchOp], path: &str) -> Result<Vec<Value>, ModelError> {
    ops.iter()
        .filter(|op| op.path == path && op.op != "remove")
        .map(|op| {
            op.value
                .clone()
                .ok_or_else(|| ModelError::Internal("'value'".to_string()))
        })
        .collect()
}

/// Upstream's `is_path_removed`: a remove of `path` or below it.
pub fn is_path_removed(ops: &[PatchOp], path: &str) -> bool {
    let path = path.trim_end_matches('/');
    ops.iter().any(|op| {
        op.op == "remove" && (op.path == path || op.path.starts_with(&format!("{path}/")))
    })
}

/// Upstream's `is_path_updated`, which (by an upstream bug) only looks at
/// the first operation.
pub fn is_path_updated(ops: &[PatchOp], path: &str) -> bool {
    let path = path.trim_end_matches('/');
    ops.first()
        .is_some_and(|op| op.path == path || op.path.starts_with(&format!("{path}/")))
}

/// The first path segment of each operation must be patchable.
fn check_allowed_fields(ops: &[PatchOp], allowed: &[&str]) -> Result<(), ModelError> {
    for op in ops {
        let first = op.path.split('/').nth(1).unwrap_or_default();
        let first = first.replace("~1", "/").replace("~0", "~");
        if !allowed.contains(&first.as_str()) {
            return Err(ModelError::bad_request(format!(
                "Cannot patch {}. Only the following can be updated: {}",
                op.path,
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

fn python_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(number) if number.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Where a pointer step lands, as python-jsonpointer resolves it.
enum Part {
    Key(String),
    Index(usize),
    /// An index too large for `usize`: always out of range.
    HugeIndex(String),
    Dash,
}

impl Part {
    fn shown(&self) -> String {
        match self {
            Part::Key(key) => key.clone(),
            Part::Index(index) => index.to_string(),
            Part::HugeIndex(text) => text.clone(),
            Part::Dash => "-".to_string(),
        }
    }
}

/// A walk target: a real value, or the end-of-list marker `-` yields.
enum Target<'a> {
    Value(&'a mut Value),
    EndOfList,
}

fn get_part(doc: &Target<'_>, part: &str) -> Result<Part, String> {
    let value =
        match doc {
            Target::EndOfList => return Err(
                "Document '<class 'jsonpointer.EndOfList'>' does not support indexing, must be \
                        mapping/sequence or support __getitem__"
                    .to_string(),
            ),
            Target::Value(value) => &**value,
        };
    match value {
        Value::Object(_) => Ok(Part::Key(part.to_string())),
        Value::String(_) => Err(format!("Cannot apply token '{part}' to non-container type <class 'str'>")),
        Value::Array(_) => {
            if part == "-" {
                return Ok(Part::Dash);
            }
            let canonical = part == "0" || (part.starts_with(|c: char| ('1'..='9').contains(&c)) && part.chars().all(|c| c.is_ascii_digit()));
            if !canonical {
                return Err(format!("'{part}' is not a valid sequence index"));
            }
            Ok(part.parse::<usize>().map(Part::Index).unwrap_or_else(|_| Part::HugeIndex(part.to_string())))
        }
        other => Err(format!(
            "Document '<class '{}'>' does not support indexing, must be mapping/sequence or support __getitem__",
            python_type_name(other)
        )),
    }
}

fn walk<'a>(doc: Target<'a>, raw_part: &str) -> Result<Target<'a>, String> {
    let part = get_part(&doc, raw_part)?;
    let Target::Value(value) = doc else {
        return Err("unreachable end of list".to_string());
    };
    match value {
        Value::Array(items) => match part {
            Part::Dash => Ok(Target::EndOfList),
            Part::Index(index) if index < items.len() => Ok(Target::Value(&mut items[index])),
            other => Err(format!("index '{}' is out of bounds", other.shown())),
        },
        Value::Object(map) => {
            if map.contains_key(raw_part) {
                match map.get_mut(raw_part) {
                    Some(child) => Ok(Target::Value(child)),
                    None => Err(format!("member '{raw_part}' not found")),
                }
            } else {
                let shown = repr(&Value::Object(map.clone()));
                Err(format!("member '{raw_part}' not found in {shown}"))
            }
        }
        _ => Err(format!("member '{raw_part}' not found")),
    }
}

fn pointer_parts(path: &str) -> Vec<String> {
    path.split('/')
        .skip(1)
        .map(|part| part.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// Applies one operation the way python-jsonpatch 1.48 does; the error is
/// the exception text upstream puts after "Reason:".
fn apply_operation(doc: &mut Value, op: &PatchOp) -> Result<(), String> {
    let parts = pointer_parts(&op.path);
    let Some((last, parents)) = parts.split_last() else {
        return Err("can't remove the whole document".to_string());
    };
    let value = match op.op.as_str() {
        "add" | "replace" => Some(
            op.value
                .clone()
                .ok_or_else(|| "The operation does not contain a 'value' member".to_string())?,
        ),
        _ => None,
    };
    let mut target = Target::Value(doc);
    for part in parents {
        target = walk(target, part)?;
    }
    let part = get_part(&target, last)?;
    let Target::Value(container) = target else {
        return Err("unreachable end of list".to_string());
    };
    match (op.op.as_str(), container, value) {
        ("remove", Value::Array(items), _) => match part {
            Part::Index(index) if index < items.len() => {
                items.remove(index);
                Ok(())
            }
            Part::Dash => Err("invalid array index '-'".to_string()),
            other => Err(format!(
                "can't remove a non-existent object '{}'",
                other.shown()
            )),
        },
        ("remove", Value::Object(map), _) => match map.remove(last.as_str()) {
            Some(_) => Ok(()),
            None => Err(format!("can't remove a non-existent object '{last}'")),
        },
        ("add", Value::Array(items), Some(value)) => match part {
            Part::Dash => {
                items.push(value);
                Ok(())
            }
            Part::Index(index) if index <= items.len() => {
                items.insert(index, value);
                Ok(())
            }
            _ => Err("can't insert outside of list".to_string()),
        },
        ("add", Value::Object(map), Some(value)) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        ("replace", Value::Array(items), Some(value)) => match part {
            Part::Dash => {
                Err("'path' with '-' can't be applied to 'replace' operation".to_string())
            }
            Part::Index(index) if index < items.len() => {
                items[index] = value;
                Ok(())
            }
            _ => Err("can't replace outside of list".to_string()),
        },
        ("replace", Value::Object(map), Some(value)) => {
            if !map.contains_key(last.as_str()) {
                return Err(format!("can't replace a non-existent object '{last}'"));
            }
            map.insert(last.clone(), value);
            Ok(())
        }
        _ => Err(format!(
            "unable to fully resolve json pointer {}, part {}",
            op.path,
            part.shown()
        )),
    }
}

/// Upstream's `apply_jsonpatch`: no new root attributes, then one operation
/// at a time, each failure reported with the failing operation.
pub fn apply_json_patch(doc: &Object, ops: &[PatchOp]) -> Result<Object, ModelError> {
    for op in ops {
        if op.op == "add" && op.path.matches('/').count() == 1 {
            let name = op.path.trim_start_matches('/');
            if !doc.contains_key(name) {
                return Err(ModelError::bad_request(format!(
                    "Adding a new attribute ({}) to the root of the resource is not allowed",
                    op.path
                )));
            }
        }
    }
    let mut value = Value::Object(doc.clone());
    for op in ops {
        if let Err(reason) = apply_operation(&mut value, op) {
            return Err(ModelError::bad_request(format!(
                "Couldn't apply patch '{}'. Reason: {reason}",
                repr(&Value::Object(op.raw.clone()))
            )));
        }
    }
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ModelError::Internal(
            "patched document is not an object".to_string(),
        )),
    }
}

/// The top-level fields whose values differ, in `after`'s order (then
/// fields only `before` has).
pub fn changed_fields(before: &Object, after: &Object) -> Vec<String> {
    let mut changed: Vec<String> = after
        .iter()
        .filter(|(key, value)| before.get(*key) != Some(*value))
        .map(|(key, _)| key.clone())
        .collect();
    changed.extend(
        before
            .keys()
            .filter(|key| !after.contains_key(*key))
            .cloned(),
    );
    changed
}

// ---------------------------------------------------------------------------
// Type coercion as the object layer does it.

/// Which object-layer coercion a field gets when it is stored.
#[derive(Clone, Copy, PartialEq)]
enum Stored {
    /// `FlexibleDictField`: `None` becomes `{}`.
    Dict,
    /// Non-nullable `BooleanField`: `None` is a `ValueError` (500).
    RequiredBool,
    /// Anything else: stored as validated.
    Plain,
}

fn node_stored(name: &str) -> Stored {
    match name {
        "driver_info" | "extra" | "instance_info" | "properties" | "network_data" => Stored::Dict,
        "maintenance" | "console_enabled" | "protected" => Stored::RequiredBool,
        _ => Stored::Plain,
    }
}

fn port_stored(name: &str) -> Stored {
    match name {
        "extra" | "local_link_connection" => Stored::Dict,
        "pxe_enabled" | "available_for_dynamic_portgroup" => Stored::RequiredBool,
        _ => Stored::Plain,
    }
}

fn coerce(name: &str, value: Value, stored: Stored) -> Result<Value, ModelError> {
    match (stored, value) {
        (Stored::Dict, Value::Null) => Ok(json!({})),
        (Stored::RequiredBool, Value::Null) => Err(ModelError::Internal(format!(
            "Field `{name}' cannot be None"
        ))),
        (_, value) => Ok(value),
    }
}

// ---------------------------------------------------------------------------
// Nodes.

const NODE_BOOLEANS: &[&str] = &[
    "automated_clean",
    "console_enabled",
    "disable_power_off",
    "protected",
    "maintenance",
    "retired",
];

/// Upstream's `NODE_VALIDATE_EXTRA`, in its order: booleans parsed, UUIDs
/// checked.
fn node_extra_validation(node: &mut Object) -> Result<(), ModelError> {
    for name in [
        "automated_clean",
        "chassis_uuid",
        "console_enabled",
        "disable_power_off",
        "instance_uuid",
        "protected",
        "maintenance",
        "retired",
        "uuid",
    ] {
        let Some(value) = node.get(name).cloned() else {
            continue;
        };
        if value.is_null() {
            continue;
        }
        if NODE_BOOLEANS.contains(&name) {
            let flag = parse_bool_strict(name, &value)?;
            node.insert(name.to_string(), Value::Bool(flag));
        } else {
            uuid_field(name, &value)?;
        }
    }
    Ok(())
}

fn check_node_names(
    names: &[Value],
    version: ApiVersion,
    message: impl Fn(&str) -> String,
) -> Result<(), ModelError> {
    if !version.at_least(5) {
        return Err(ModelError::not_acceptable());
    }
    for name in names {
        if !is_valid_node_name(name, version) {
            return Err(ModelError::bad_request(message(&str_of(name))));
        }
        if let Some(word) = name
            .as_str()
            .filter(|word| RESERVED_NODE_NAMES.contains(word))
        {
            return Err(ModelError::bad_request(format!(
                "The word \"{word}\" is reserved and can not be used as a node name. Reserved words are: {}.",
                RESERVED_NODE_NAMES.join(", ")
            )));
        }
    }
    Ok(())
}

/// The checks upstream makes on a node patch before fetching the node:
/// document shape, patchable fields, fields too new for the request (406),
/// `reset_interfaces`, description length and `network_data`.
pub fn check_node_patch(
    patch: &Value,
    version: ApiVersion,
    reset_interfaces: Option<bool>,
) -> Result<Vec<PatchOp>, ModelError> {
    let ops = parse_patch(patch)?;
    if reset_interfaces.is_some() && !version.at_least(45) {
        return Err(ModelError::not_acceptable());
    }
    check_allowed_fields(&ops, NODE_PATCH_ALLOWED)?;
    for (field, since) in NODE_VERSIONED_FIELDS {
        if !version.at_least(*since) && !patch_values(&ops, &format!("/{field}"))?.is_empty() {
            return Err(ModelError::not_acceptable());
        }
    }
    if !patch_values(&ops, "/traits")?.is_empty() {
        return Err(ModelError::bad_request(
            "Cannot update node traits via node patch. Node traits should be updated via the node traits API.",
        ));
    }
    if reset_interfaces == Some(true) && patch_values(&ops, "/driver")?.is_empty() {
        return Err(ModelError::bad_request(
            "The reset_interfaces parameter can only be used when changing the node's driver.",
        ));
    }
    if let Some(description) = patch_values(&ops, "/description")?.first() {
        if python_len(description)? > NODE_DESCRIPTION_MAX_LENGTH {
            return Err(ModelError::bad_request(format!(
                "Cannot update node with description exceeding {NODE_DESCRIPTION_MAX_LENGTH} characters"
            )));
        }
    }
    for network_data in patch_values(&ops, "/network_data")? {
        if let Some(message) = plain_message(&network_data, schemas::network_data()) {
            return Err(ModelError::bad_request(format!(
                "Invalid network_data: {message} "
            )));
        }
    }
    Ok(ops)
}

/// Applies a node patch to the full node and validates the result as
/// upstream does. `node_ident` is the identifier from the URL (upstream
/// quotes it in name errors). Returns the new full node; compare with
/// [`changed_fields`] for the caller's checks (instance_uuid conflicts,
/// driver change with console enabled, chassis and parent-node lookups,
/// owner/lessee policies, conductor-group routing).
pub fn apply_node_patch(
    full: &Object,
    patch: &Value,
    version: ApiVersion,
    node_ident: &str,
) -> Result<Object, ModelError> {
    let ops = check_node_patch(patch, version, None)?;
    let names = patch_values(&ops, "/name")?;
    if !names.is_empty() {
        check_node_names(&names, version, |name| {
            format!("Node {node_ident}: Cannot change name to invalid name '{name}'")
        })?;
    }
    let patched = apply_json_patch(full, &ops)?;

    let schema = schemas::node_patch();
    let kept = schemas::property_names(schema);
    let mut candidate: Object = patched
        .into_iter()
        .filter(|(key, _)| kept.contains(&key.as_str()))
        .collect();
    if let Some(message) = validation_message("patch", &Value::Object(candidate.clone()), schema) {
        return Err(ModelError::bad_request(message));
    }
    node_extra_validation(&mut candidate)?;

    // What upstream's `_update_changed_fields` does before saving.
    match candidate.get("conductor_group") {
        Some(Value::String(group)) => {
            let lowered = group.to_lowercase();
            candidate.insert("conductor_group".into(), Value::String(lowered));
        }
        _ => {
            return Err(ModelError::Internal(
                "'NoneType' object has no attribute 'lower'".to_string(),
            ));
        }
    }
    if candidate.get("protected").is_none_or_null() {
        candidate.insert("protected".into(), Value::Bool(false));
    }

    let mut result = full.clone();
    for name in &kept {
        if !NODE_FIELDS.iter().any(|spec| spec.name == *name) {
            continue;
        }
        let value = candidate.get(*name).cloned().unwrap_or(Value::Null);
        if full.get(*name) == Some(&value) {
            continue;
        }
        result.insert(name.to_string(), coerce(name, value, node_stored(name))?);
    }
    let had_chassis = full
        .get("chassis_uuid")
        .is_some_and(|value| !value.is_null());
    let has_chassis = result
        .get("chassis_uuid")
        .is_some_and(|value| !value.is_null());
    if had_chassis && !has_chassis && !version.at_least(25) {
        return Err(ModelError::not_acceptable());
    }

    // Older clients set the instance's name in instance_info only.
    let instance_info_changed = full.get("instance_info") != result.get("instance_info");
    let has_instance_name = result.get("instance_name").is_some_and(super::mask::truthy);
    if instance_info_changed && !has_instance_name {
        let display_name = result
            .get("instance_info")
            .and_then(|info| info.get("display_name"))
            .cloned();
        if let Some(display_name) = display_name.filter(super::mask::truthy) {
            result.insert("instance_name".into(), display_name);
        }
    }

    if full.get("conductor_group") != result.get("conductor_group") {
        check_conductor_group(&result)?;
    }
    Ok(result)
}

fn check_conductor_group(node: &Object) -> Result<(), ModelError> {
    let group = node.get("conductor_group").cloned().unwrap_or(Value::Null);
    match &group {
        Value::String(text) if is_valid_conductor_group(text) => Ok(()),
        other => Err(ModelError::bad_request(format!(
            "Expected a conductor group but received {}.",
            str_of(other)
        ))),
    }
}

/// Validates a node create body and returns the new node with every field
/// at its upstream default. Left for the caller: `uuid` uniqueness and name
/// conflicts (409), `chassis_uuid` and `parent_node` lookups, the owner of
/// project-scoped creators, the driver (400 when no conductor has it) and
/// its default interfaces (fields still `null` here), `conductor`,
/// `created_at`.
pub fn validate_node_create(body: &Value, version: ApiVersion) -> Result<Object, ModelError> {
    if let Some(message) = validation_message("node", body, schemas::node_create()) {
        return Err(ModelError::bad_request(message));
    }
    let mut node = body.as_object().cloned().unwrap_or_default();
    node_extra_validation(&mut node)?;

    for (field, since) in NODE_VERSIONED_FIELDS {
        if version.at_least(*since) {
            continue;
        }
        let empty = if *field == "conductor_group" {
            json!("")
        } else {
            Value::Null
        };
        if *field == "name" && node.get("name").is_none_or_null() {
            continue;
        }
        if node.get(*field).unwrap_or(&empty) != &empty {
            return Err(ModelError::not_acceptable());
        }
    }
    if !node.get("uuid").is_some_and(super::mask::truthy) {
        node.insert("uuid".into(), json!(uuid::Uuid::new_v4().to_string()));
    }
    if !node.get("conductor_group").is_some_and(super::mask::truthy) {
        node.insert("conductor_group".into(), json!(""));
    }
    if let Some(name) = node.get("name").filter(|name| !name.is_null()).cloned() {
        check_node_names(&[name], version, |name| {
            format!("Cannot create node with invalid name '{name}'")
        })?;
    }
    let initial = if version.at_least(11) {
        "enroll"
    } else {
        "available"
    };
    node.insert("provision_state".into(), json!(initial));
    if !node.get("resource_class").is_some_and(super::mask::truthy) {
        node.insert("resource_class".into(), Value::Null);
    }

    let mut result = Object::new();
    for spec in NODE_FIELDS {
        let value = match node.remove(spec.name) {
            Some(value) => coerce(spec.name, value, node_stored(spec.name))?,
            None => spec.default.value().unwrap_or(Value::Null),
        };
        result.insert(spec.name.to_string(), value);
    }
    if let Some(Value::String(group)) = result.get("conductor_group") {
        let lowered = group.to_lowercase();
        result.insert("conductor_group".into(), Value::String(lowered));
    }
    check_conductor_group(&result)?;
    Ok(result)
}

// ---------------------------------------------------------------------------
// Ports.

/// Upstream's `_check_allowed_port_fields` on a set of names, or on the
/// keys (and `local_link_connection` contents) of a create body.
fn check_port_fields_version(
    names: &[&str],
    local_link: Option<&Value>,
    version: ApiVersion,
) -> Result<(), ModelError> {
    let too_new = |name: &str, since: u16| names.contains(&name) && !version.at_least(since);
    let gates: &[(&str, u16)] = &[
        ("pxe_enabled", 19),
        ("local_link_connection", 19),
        ("portgroup_uuid", 24),
        ("physical_network", 34),
        ("is_smartnic", 53),
        ("local_link_connection/network_type", 64),
    ];
    if gates.iter().any(|(name, since)| too_new(name, *since)) {
        return Err(ModelError::not_acceptable());
    }
    if let Some(Value::Object(link)) = local_link {
        if !version.at_least(64) && link.contains_key("network_type") {
            return Err(ModelError::not_acceptable());
        }
        let vtep_allowed = version.at_least(90) && !version.at_least(105);
        if !vtep_allowed && link.contains_key("vtep-logical-switch") {
            return Err(ModelError::not_acceptable());
        }
    }
    let later: &[(&str, u16)] = &[
        ("name", 88),
        ("description", 97),
        ("vendor", 100),
        ("category", 101),
        ("available_for_dynamic_portgroup", 111),
    ];
    if later.iter().any(|(name, since)| too_new(name, *since)) {
        return Err(ModelError::not_acceptable());
    }
    Ok(())
}

/// Upstream's `local_link_connection` validator: the schema, then
/// `switch_id` normalised as a MAC address or OpenFlow datapath id.
fn validate_local_link(value: &Value) -> Result<Value, ModelError> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    if let Some(message) = validation_message(
        "local_link_connection",
        value,
        schemas::local_link_connection(),
    ) {
        return Err(ModelError::bad_request(message));
    }
    let mut link = value.as_object().cloned().unwrap_or_default();
    if let Some(Value::String(switch_id)) = link.get("switch_id").cloned() {
        if is_valid_mac(&switch_id) || is_valid_datapath_id(&switch_id) {
            link.insert("switch_id".into(), json!(switch_id.to_lowercase()));
        } else {
            return Err(ModelError::bad_request(format!(
                "Expected a MAC address or OpenFlow datapath ID but received {switch_id}."
            )));
        }
    }
    Ok(Value::Object(link))
}

/// Upstream's `PORT_VALIDATOR_EXTRA`, in its order.
fn port_extra_validation(port: &mut Object) -> Result<(), ModelError> {
    for name in [
        "address",
        "node_uuid",
        "is_smartnic",
        "local_link_connection",
        "portgroup_uuid",
        "pxe_enabled",
        "uuid",
        "available_for_dynamic_portgroup",
    ] {
        let Some(value) = port.get(name).cloned() else {
            continue;
        };
        if value.is_null() {
            continue;
        }
        let checked = match name {
            "address" => match value.as_str().filter(|address| is_valid_mac(address)) {
                Some(address) => json!(address.to_lowercase()),
                None => {
                    return Err(ModelError::bad_request(format!(
                        "Expected valid MAC address for address: {}",
                        str_of(&value)
                    )))
                }
            },
            "is_smartnic" | "pxe_enabled" | "available_for_dynamic_portgroup" => {
                Value::Bool(parse_bool_strict(name, &value)?)
            }
            "local_link_connection" => validate_local_link(&value)?,
            _ => {
                uuid_field(name, &value)?;
                value
            }
        };
        port.insert(name.to_string(), checked);
    }
    Ok(())
}

const PHYSICAL_NETWORK_EMPTY: &str = "A non-empty value is required when setting physical_network";

/// Validates a port create body and returns the new port with every field
/// at its default. `node_uuid` is what the body said (`null` when it named
/// the node with `node_ident`); the caller resolves the node (400 when
/// missing) and the portgroup (400; 409 for standalone-port rules) and
/// checks MAC and name uniqueness (409).
pub fn validate_port_create(body: &Value, version: ApiVersion) -> Result<Object, ModelError> {
    if let Some(message) = validation_message("port", body, schemas::port()) {
        return Err(ModelError::bad_request(message));
    }
    let mut port = body.as_object().cloned().unwrap_or_default();
    port_extra_validation(&mut port)?;
    if port.get("node_ident").is_some_and(super::mask::truthy) && !version.at_least(94) {
        return Err(ModelError::not_acceptable());
    }
    let names: Vec<&str> = port.keys().map(String::as_str).collect();
    check_port_fields_version(&names, port.get("local_link_connection"), version)?;
    if port.get("is_smartnic").is_some_and(super::mask::truthy) {
        let link = port
            .get("local_link_connection")
            .cloned()
            .unwrap_or(Value::Null);
        if !link.is_null() && !super::schema::is_valid(&link, schemas::local_link_smart_nic()) {
            return Err(ModelError::bad_request(
                "Smart NIC port must have port_id and hostname in local_link_connection",
            ));
        }
    }
    if port.get("physical_network") == Some(&json!("")) {
        return Err(ModelError::bad_request(PHYSICAL_NETWORK_EMPTY));
    }
    if !port.get("uuid").is_some_and(super::mask::truthy) {
        port.insert("uuid".into(), json!(uuid::Uuid::new_v4().to_string()));
    }
    port.remove("node_ident");
    let mut result = Object::new();
    for spec in PORT_FIELDS {
        let value = match port.remove(spec.name) {
            Some(value) => coerce(spec.name, value, port_stored(spec.name))?,
            None => spec.default.value().unwrap_or(Value::Null),
        };
        result.insert(spec.name.to_string(), value);
    }
    Ok(result)
}

/// The checks upstream makes on a port patch before fetching the port.
pub fn check_port_patch(patch: &Value, version: ApiVersion) -> Result<Vec<PatchOp>, ModelError> {
    let ops = parse_patch(patch)?;
    check_allowed_fields(&ops, PORT_PATCH_ALLOWED)?;
    let mut touched = Vec::new();
    for field in [
        "pxe_enabled",
        "local_link_connection",
        "portgroup_uuid",
        "physical_network",
        "is_smartnic",
        "local_link_connection/network_type",
    ] {
        let path = format!("/{field}");
        if !patch_values(&ops, &path)?.is_empty() || is_path_removed(&ops, &path) {
            touched.push(field);
        }
    }
    check_port_fields_version(&touched, None, version)?;
    Ok(ops)
}

/// The node a port patch moves the port to, if any: the first value given
/// for `/node_uuid` (a UUID or a node name). The caller resolves it (400
/// "Unable to apply the requested node_uuid '…'. Requested value was
/// invalid." when it cannot) and passes the node's UUID to
/// [`apply_port_patch`].
pub fn port_patch_node_ident(patch: &Value) -> Result<Option<Value>, ModelError> {
    let ops = parse_patch(patch)?;
    Ok(patch_values(&ops, "/node_uuid")?.into_iter().next())
}

/// Applies a port patch to the full port and validates the result.
/// `node_uuid` is the UUID of the node the port belongs to afterwards
/// (its current node, or the one [`port_patch_node_ident`] named). The
/// caller then resolves a changed `portgroup_uuid` (400 when missing) and
/// checks the node's state and portgroup rules.
pub fn apply_port_patch(
    full: &Object,
    patch: &Value,
    version: ApiVersion,
    node_uuid: &str,
) -> Result<Object, ModelError> {
    let ops = check_port_patch(patch, version)?;
    let mut patched = apply_json_patch(full, &ops)?;
    patched.insert("node_uuid".into(), json!(node_uuid));

    let schema: &Schema = schemas::port();
    let kept = schemas::property_names(schema);
    let mut candidate: Object = patched
        .into_iter()
        .filter(|(key, _)| kept.contains(&key.as_str()))
        .collect();
    if let Some(message) = validation_message("patch", &Value::Object(candidate.clone()), schema) {
        return Err(ModelError::bad_request(message));
    }
    port_extra_validation(&mut candidate)?;

    let mut result = full.clone();
    for name in &kept {
        if !PORT_FIELDS.iter().any(|spec| spec.name == *name) {
            continue;
        }
        let value = candidate.get(*name).cloned().unwrap_or(Value::Null);
        if full.get(*name) == Some(&value) {
            continue;
        }
        result.insert(name.to_string(), coerce(name, value, port_stored(name))?);
    }
    let physical_network = result.get("physical_network");
    if is_path_updated(&ops, "/physical_network") && physical_network == Some(&json!("")) {
        return Err(ModelError::bad_request(PHYSICAL_NETWORK_EMPTY));
    }
    Ok(result)
}

trait OptionValueExt {
    fn is_none_or_null(&self) -> bool;
}

impl OptionValueExt for Option<&Value> {
    fn is_none_or_null(&self) -> bool {
        self.is_none_or(Value::is_null)
    }
}
