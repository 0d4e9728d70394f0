//! The ramdisk endpoints agents call: `GET /v1/lookup` and
//! `POST /v1/heartbeat/{node_ident}` (from microversion 1.22).

use serde_json::{json, Value};

use super::{find_node, require_endpoint};
use crate::engine::AgentHeartbeat;
use crate::error::{ApiError, ApiResult};
use crate::http::{Reply, Req};
use crate::model;
use crate::storage::{self, NodeRow};
use crate::AppState;

/// States in which a node may be looked up (an agent is expected).
const LOOKUP_ALLOWED_STATES: &[&str] = &[
    "deploying",
    "wait call-back",
    "cleaning",
    "clean wait",
    "inspecting",
    "inspect wait",
    "rescuing",
    "rescue wait",
    "servicing",
    "service wait",
];

/// The node fields a lookup returns.
const LOOKUP_FIELDS: &[&str] = &[
    "uuid",
    "properties",
    "instance_info",
    "driver_internal_info",
];

fn is_mac(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn not_found() -> ApiError {
    ApiError::not_found("Resource could not be found.")
}

/// The node owning ports with these MAC addresses (exactly one node).
async fn node_by_addresses(state: &AppState, addresses: &[String]) -> ApiResult<NodeRow> {
    let mut node_ids = Vec::new();
    for address in addresses {
        if let Some(port) = storage::get_port_by_address(state.db.conn(), address).await? {
            if !node_ids.contains(&port.node_id) {
                node_ids.push(port.node_id);
            }
        }
    }
    match node_ids.as_slice() {
        [id] => storage::get_node_by_id(state.db.conn(), *id)
            .await?
            .ok_or_else(not_found),
        _ => Err(not_found()),
    }
}

/// `GET /v1/lookup?addresses=…&node_uuid=…`.
pub async fn lookup(state: &AppState, req: &Req) -> ApiResult<Reply> {
    require_endpoint(req, 22)?;
    let addresses: Vec<String> = req
        .query_one("addresses")
        .unwrap_or("")
        .split(',')
        .map(|a| a.trim().to_ascii_lowercase())
        .filter(|a| !a.is_empty())
        .collect();
    let node_uuid = req.query_one("node_uuid").filter(|u| !u.is_empty());
    if addresses.is_empty() && node_uuid.is_none() {
        return Err(ApiError::bad_request(
            "Incomplete lookup request: at least one of 'addresses' and 'node_uuid' parameters is required",
        ));
    }
    if let Some(bad) = addresses.iter().find(|a| !is_mac(a)) {
        return Err(ApiError::bad_request(format!(
            "Expected a MAC address but received {bad}."
        )));
    }
    let row = match node_uuid {
        Some(uuid) => {
            if !storage::looks_like_uuid(uuid) {
                return Err(ApiError::bad_request(format!(
                    "Expected a UUID but received {uuid}."
                )));
            }
            storage::get_node(state.db.conn(), uuid)
                .await?
                .ok_or_else(not_found)?
        }
        None => node_by_addresses(state, &addresses).await?,
    };
    let provision_state = storage::doc_str(&row.doc, "provision_state").unwrap_or("");
    if !LOOKUP_ALLOWED_STATES.contains(&provision_state) {
        return Err(not_found());
    }
    let doc = state.conductor.agent_lookup(row.uuid()).await?;
    let token = doc
        .get("driver_internal_info")
        .and_then(|i| i.get("agent_secret_token"))
        .cloned()
        .unwrap_or(Value::Null);
    let fields: Vec<String> = LOOKUP_FIELDS.iter().map(|f| f.to_string()).collect();
    let node = model::node_view(&doc, req.version, Some(&fields), &req.base_url);
    Ok(Reply::json(json!({
        "node": node,
        "config": {
            "metrics": {
                "backend": "noop",
                "prepend_host": false,
                "prepend_uuid": false,
                "prepend_host_reverse": true,
                "global_prefix": null,
            },
            "metrics_statsd": {"statsd_host": "localhost", "statsd_port": 8125},
            "heartbeat_timeout": crate::deploy::RAMDISK_HEARTBEAT_TIMEOUT,
            "agent_token": token,
            "agent_token_required": true,
            "disable_deep_image_inspection": false,
            "permitted_image_formats": ["raw", "gpt", "qcow2", "iso"],
            "agent_md5_checksum_enable": state.config.deploy.allow_md5,
        },
    })))
}

fn optional_string(body: &Value, key: &str) -> ApiResult<Option<String>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute {key}. Value: {other}. Wrong type. Expected 'str', got '{}'",
            match other {
                Value::Bool(_) => "bool",
                Value::Number(_) => "int",
                Value::Array(_) => "list",
                Value::Object(_) => "dict",
                _ => "NoneType",
            }
        ))),
    }
}

/// `POST /v1/heartbeat/{node_ident}`.
pub async fn heartbeat(state: &AppState, req: &Req, ident: &str) -> ApiResult<Reply> {
    require_endpoint(req, 22)?;
    let body = req.json()?;
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "The heartbeat body must be a JSON object.",
        ));
    }
    let Some(callback_url) = optional_string(&body, "callback_url")? else {
        return Err(ApiError::bad_request("Missing argument: \"callback_url\""));
    };
    let agent_token = optional_string(&body, "agent_token")?;
    let heartbeat = AgentHeartbeat {
        callback_url,
        agent_version: optional_string(&body, "agent_version")?,
        agent_verify_ca: optional_string(&body, "agent_verify_ca")?,
        agent_status: optional_string(&body, "agent_status")?,
        agent_status_message: optional_string(&body, "agent_status_message")?,
        agent_token: agent_token.clone(),
    };
    let row = find_node(state, req, ident).await?;
    if agent_token.is_none() {
        tracing::error!(node = row.uuid(), "agent heartbeat without an agent token");
        return Err(ApiError::bad_request(
            "Agent token is required for heartbeat processing.",
        ));
    }
    state
        .conductor
        .agent_heartbeat(row.uuid(), heartbeat)
        .await?;
    Ok(Reply::empty(202))
}
