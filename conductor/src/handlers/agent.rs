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

/// Whether one of `addresses` is a port of `row`.
async fn has_address(state: &AppState, row: &NodeRow, addresses: &[String]) -> ApiResult<bool> {
    for address in addresses {
        if let Some(port) = storage::get_port_by_address(state.db.conn(), address).await? {
            if port.node_id == row.id {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// `GET /v1/lookup?addresses=…&node_uuid=…`: only for a node in a state
/// that expects an agent, and only from one of its registered MACs.
pub async fn lookup(state: &AppState, req: &Req) -> ApiResult<Reply> {
    require_endpoint(req, 22)?;
    // Malformed MAC addresses are ignored, as upstream does.
    let addresses: Vec<String> = req
        .query_one("addresses")
        .unwrap_or("")
        .split(',')
        .map(|a| a.trim().to_ascii_lowercase())
        .filter(|a| is_mac(a))
        .collect();
    let node_uuid = req.query_one("node_uuid").filter(|u| !u.is_empty());
    if addresses.is_empty() && node_uuid.is_none() {
        return Err(ApiError::bad_request(
            "At least one of 'addresses' and 'node_uuid' parameters is required",
        ));
    }
    let row = match node_uuid {
        Some(uuid) => {
            if !storage::looks_like_uuid(uuid) {
                return Err(ApiError::bad_request(format!(
                    "Invalid input for field/attribute node_uuid. Value: '{uuid}'. Expected a UUID for node_uuid: {uuid}"
                )));
            }
            let row = storage::get_node(state.db.conn(), uuid)
                .await?
                .ok_or_else(not_found)?;
            // The UUID alone is not enough: the agent must also present one
            // of the node's registered MAC addresses.
            if !has_address(state, &row, &addresses).await? {
                return Err(not_found());
            }
            row
        }
        None => node_by_addresses(state, &addresses).await?,
    };
    let provision_state = storage::doc_str(&row.doc, "provision_state").unwrap_or("");
    if !LOOKUP_ALLOWED_STATES.contains(&provision_state) {
        return Err(not_found());
    }
    // Agent tokens exist from 1.62; older agents get none.
    let (doc, token) = if req.at_least(62) {
        let doc = state.conductor.agent_lookup(row.uuid()).await?;
        let token = doc
            .get("driver_internal_info")
            .and_then(|i| i.get("agent_secret_token"))
            .cloned()
            .unwrap_or(Value::Null);
        (doc, token)
    } else {
        (row.doc.clone(), Value::Null)
    };
    let skip_bmc_detect = matches!(
        storage::doc_str(&doc, "management_interface"),
        Some("redfish" | "idrac-redfish")
    );
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
            "agent_containers": {
                "allow_arbitrary_containers": false,
                "allowed_containers": [],
                "container_steps_file": "/etc/ironic-python-agent.d/mysteps.yaml",
                "runner": "podman",
                "pull_options": "--tls-verify=false",
                "run_options": "--rm --network=host --tls-verify=false",
                "container_conf_file": "/etc/containers/containers.conf",
            },
            "agent_token": token,
            "agent_token_required": true,
            "agent_md5_checksum_enable": state.config.deploy.allow_md5,
            "disable_deep_image_inspection": false,
            "permitted_image_formats": ["raw", "gpt", "qcow2", "iso"],
            "agent_skip_bmc_detect": skip_bmc_detect,
            "enable_bios_bootloader_install": false,
            "tls_min_version": "1.3",
            "tls_cipher_suites": null,
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

/// Agent statuses a heartbeat may carry (the anaconda ramdisk's).
const AGENT_STATUSES: &[&str] = &["start", "end", "error"];

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
    let agent_version = optional_string(&body, "agent_version")?;
    let agent_verify_ca = optional_string(&body, "agent_verify_ca")?;
    let agent_status = optional_string(&body, "agent_status")?;
    let agent_status_message = optional_string(&body, "agent_status_message")?;
    if agent_version.as_deref().is_some_and(|v| !v.is_empty()) && !req.at_least(36) {
        return Err(ApiError::bad_request(
            "Field \"agent_version\" not recognised",
        ));
    }
    if (agent_status.as_deref().is_some_and(|v| !v.is_empty())
        || agent_status_message
            .as_deref()
            .is_some_and(|v| !v.is_empty()))
        && !req.at_least(72)
    {
        return Err(ApiError::bad_request(
            "Fields \"agent_status\" and \"agent_status_message\" not recognised.",
        ));
    }
    if agent_verify_ca.is_some() && !req.at_least(68) {
        return Err(ApiError::bad_request(
            "Field \"agent_verify_ca\" not recognised in this version",
        ));
    }
    let row = find_node(state, req, ident).await?;
    // The token is verified before anything else about the node is told
    // or done (and before the engine reserves it).
    if agent_token.is_none() {
        tracing::error!(node = row.uuid(), "agent heartbeat without an agent token");
        return Err(ApiError::bad_request(
            "Agent token is required for heartbeat processing.",
        ));
    }
    let known = row
        .doc
        .get("driver_internal_info")
        .and_then(|i| i.get("agent_secret_token"))
        .and_then(Value::as_str);
    if !crate::deploy::token_matches(known, agent_token.as_deref()) {
        tracing::warn!(
            node = row.uuid(),
            "invalid or missing agent token in a heartbeat"
        );
        return Err(ApiError::bad_request(
            "Invalid or missing agent token received.",
        ));
    }
    let scheme_ok = url::Url::parse(&callback_url)
        .map(|u| u.scheme().contains("http"))
        .unwrap_or(false);
    if !scheme_ok && !callback_url.is_empty() {
        return Err(ApiError::bad_request(
            "An issue with the supplied \"callback_url\" has been detected.",
        ));
    }
    let recorded_url = row
        .doc
        .get("driver_internal_info")
        .and_then(|i| i.get("agent_url"))
        .and_then(Value::as_str);
    if recorded_url.is_some_and(|url| url != callback_url) {
        tracing::error!(node = row.uuid(), url = %callback_url, "heartbeat with a changed callback URL");
        return Err(ApiError::bad_request(
            "Detected change in ramdisk provided \"callback_url\"",
        ));
    }
    if let Some(status) = &agent_status {
        if !AGENT_STATUSES.contains(&status.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Agent status is invalid. Valid states are {}.",
                AGENT_STATUSES.join(",")
            )));
        }
    }
    if agent_version.is_none() && agent_status.is_none() {
        return Err(ApiError::bad_request(
            "Agent did not transmit a version, and a version is required. Please update the agent being used.",
        ));
    }
    let heartbeat = AgentHeartbeat {
        callback_url,
        agent_token,
        agent_version,
        agent_verify_ca,
        agent_status,
        agent_status_message,
    };
    state
        .conductor
        .agent_heartbeat(row.uuid(), heartbeat)
        .await?;
    Ok(Reply::empty(202))
}
