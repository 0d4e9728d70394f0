//! Node validation (`GET /v1/nodes/{id}/validate`): each interface implementation's check, looked
//! up in the catalog, and the reply upstream builds from them.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::catalog;
use super::kind::InterfaceKind;

/// The parts of a node that interface checks read.
#[derive(Debug, Clone, Copy)]
pub struct NodeValidationInput<'a> {
    pub node_uuid: &'a str,
    pub driver: &'a str,
    /// The node's effective interfaces, as `Registry::resolve` returns them.
    pub interfaces: &'a BTreeMap<InterfaceKind, String>,
    pub driver_info: &'a Map<String, Value>,
    pub instance_info: &'a Map<String, Value>,
    /// The node's trait names.
    pub traits: &'a [String],
}

/// What one implementation's check is given.
#[derive(Debug, Clone, Copy)]
pub struct InterfaceCheck<'a> {
    pub kind: InterfaceKind,
    pub name: &'a str,
    pub node: &'a NodeValidationInput<'a>,
}

/// The body of `GET /v1/nodes/{id}/validate`: every interface kind but vendor (whatever the
/// microversion), each `{"result": bool}` plus `"reason"` when it failed.
///
/// Call `Registry::resolve` first: upstream refuses the whole request (400) when a stored
/// interface is no longer enabled or supported, before anything is validated.
pub fn validate(node: &NodeValidationInput<'_>) -> Value {
    let mut body = Map::new();
    for kind in InterfaceKind::VALIDATED {
        let outcome = check_one(node, kind);
        let entry = match outcome {
            Ok(()) => json!({"result": true}),
            Err(reason) => json!({"result": false, "reason": reason}),
        };
        body.insert(kind.as_str().to_owned(), entry);
    }
    Value::Object(body)
}

/// Runs the check of the node's implementation of `kind`, plus the extra checks upstream makes
/// for the deploy interface.
fn check_one(node: &NodeValidationInput<'_>, kind: InterfaceKind) -> Result<(), String> {
    let name = node.interfaces.get(&kind).map(String::as_str).unwrap_or("");
    let Some(spec) = catalog::interface(kind, name) else {
        return Err(format!(
            "The node has no usable {kind} interface ('{name}')."
        ));
    };
    (spec.validate)(&InterfaceCheck { kind, name, node })?;
    if kind == InterfaceKind::Deploy {
        check_instance_traits(node)?;
    }
    Ok(())
}

/// The check of implementations that accept any node.
pub fn accept(_check: &InterfaceCheck<'_>) -> Result<(), String> {
    Ok(())
}

/// The check of the `no-*` placeholder implementations, which refuse everything.
pub fn unsupported_extension(check: &InterfaceCheck<'_>) -> Result<(), String> {
    Err(format!(
        "Driver {} does not support {} (disabled or not implemented).",
        check.node.driver, check.kind
    ))
}

/// The check of implementations Ferrite lists but does not carry out yet.
pub fn has_no_implementation_here(check: &InterfaceCheck<'_>) -> Result<(), String> {
    Err(format!(
        "The {} interface '{}' is not implemented by this conductor.",
        check.kind, check.name
    ))
}

/// The check of the `redfish` power and management interfaces: the BMC's `driver_info`.
pub fn redfish(check: &InterfaceCheck<'_>) -> Result<(), String> {
    crate::redfish::parse_driver_info(check.node.node_uuid, check.node.driver_info).map(|_| ())
}

/// The check of the `pxe` and `ipxe` boot interfaces: the deploy kernel and ramdisk.
pub fn pxe_boot(check: &InterfaceCheck<'_>) -> Result<(), String> {
    crate::boot::validate_driver_info(check.node.driver_info)
}

/// Traits requested in `instance_info` must be a list of strings, all set on the node.
fn check_instance_traits(node: &NodeValidationInput<'_>) -> Result<(), String> {
    let Some(requested) = node.instance_info.get("traits") else {
        return Ok(());
    };
    if is_python_falsy(requested) {
        return Ok(());
    }
    let malformed = || {
        format!(
            "Error parsing traits from Node {} instance_info field. A list of strings is expected.",
            node.node_uuid
        )
    };
    let Value::Array(items) = requested else {
        return Err(malformed());
    };
    let mut missing: Vec<&str> = Vec::new();
    for item in items {
        let Value::String(name) = item else {
            return Err(malformed());
        };
        if !node.traits.contains(name) && !missing.contains(&name.as_str()) {
            missing.push(name);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "Cannot specify instance traits that are not also set on the node. Node {} is missing \
         traits {}",
        node.node_uuid,
        missing.join(", ")
    ))
}

/// Whether Python would treat the JSON value as false (`null`, `false`, zero, empty).
fn is_python_falsy(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(flag) => !flag,
        Value::Number(number) => number.as_f64() == Some(0.0),
        Value::String(text) => text.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => fields.is_empty(),
    }
}
