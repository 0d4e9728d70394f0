//! Routing and the small helpers handlers share.

pub mod agent;
pub mod drivers;
pub mod nodes;
pub mod ports;
pub mod root;

use actix_web::http::Method;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::http::{Reply, Req};
use crate::storage::{self, NodeRow};
use crate::AppState;

/// Routes a request. Unknown paths are 404; known paths with another
/// method are 405, as upstream's router answers.
pub async fn dispatch(state: &AppState, req: &Req) -> ApiResult<Reply> {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let m = &req.method;
    let get = *m == Method::GET;
    let post = *m == Method::POST;
    let put = *m == Method::PUT;
    let patch = *m == Method::PATCH;
    let delete = *m == Method::DELETE;
    match segs.as_slice() {
        [] if get => root::root(req),
        ["v1"] if get => root::v1(req),
        ["v1", "nodes"] if get => nodes::list(state, req, false).await,
        ["v1", "nodes"] if post => nodes::create(state, req).await,
        ["v1", "nodes", "detail"] if get => nodes::list(state, req, true).await,
        ["v1", "nodes", id] if get => nodes::show(state, req, id).await,
        ["v1", "nodes", id] if patch => nodes::update(state, req, id).await,
        ["v1", "nodes", id] if delete => nodes::delete(state, req, id).await,
        ["v1", "nodes", id, "states"] if get => nodes::states(state, req, id).await,
        ["v1", "nodes", id, "states", "provision"] if put => {
            nodes::set_provision(state, req, id).await
        }
        ["v1", "nodes", id, "states", "power"] if put => nodes::set_power(state, req, id).await,
        ["v1", "nodes", id, "maintenance"] if put => {
            nodes::set_maintenance(state, req, id, true).await
        }
        ["v1", "nodes", id, "maintenance"] if delete => {
            nodes::set_maintenance(state, req, id, false).await
        }
        ["v1", "nodes", id, "management", "boot_device"] if get => {
            nodes::get_boot_device(state, req, id).await
        }
        ["v1", "nodes", id, "management", "boot_device"] if put => {
            nodes::set_boot_device(state, req, id).await
        }
        ["v1", "nodes", id, "management", "boot_device", "supported"] if get => {
            nodes::supported_boot_devices(state, req, id).await
        }
        ["v1", "nodes", id, "validate"] if get => nodes::validate(state, req, id).await,
        ["v1", "nodes", id, "traits"] if get => nodes::traits_get(state, req, id).await,
        ["v1", "nodes", id, "traits"] if put => nodes::traits_set(state, req, id, None).await,
        ["v1", "nodes", id, "traits"] if delete => nodes::traits_delete(state, req, id, None).await,
        ["v1", "nodes", id, "traits", name] if put => {
            nodes::traits_set(state, req, id, Some(name)).await
        }
        ["v1", "nodes", id, "traits", name] if delete => {
            nodes::traits_delete(state, req, id, Some(name)).await
        }
        ["v1", "nodes", id, "vifs"] if get => nodes::vifs_list(state, req, id).await,
        ["v1", "nodes", id, "vifs"] if post => nodes::vif_attach(state, req, id).await,
        ["v1", "nodes", id, "vifs", vif] if delete => nodes::vif_detach(state, req, id, vif).await,
        ["v1", "nodes", id, "ports"] if get => ports::list_for_node(state, req, id, false).await,
        ["v1", "nodes", id, "ports", "detail"] if get => {
            ports::list_for_node(state, req, id, true).await
        }
        ["v1", "nodes", id, "history"] if get => nodes::history(state, req, id, None).await,
        ["v1", "nodes", id, "history", event] if get => {
            nodes::history(state, req, id, Some(event)).await
        }
        ["v1", "ports"] if get => ports::list(state, req, false).await,
        ["v1", "ports"] if post => ports::create(state, req).await,
        ["v1", "ports", "detail"] if get => ports::list(state, req, true).await,
        ["v1", "ports", id] if get => ports::show(state, req, id).await,
        ["v1", "ports", id] if patch => ports::update(state, req, id).await,
        ["v1", "ports", id] if delete => ports::delete(state, req, id).await,
        ["v1", "drivers"] if get => drivers::list(state, req).await,
        ["v1", "drivers", name] if get => drivers::show(state, req, name).await,
        ["v1", "drivers", name, "properties"] if get => drivers::properties(state, req, name).await,
        ["v1", "conductors"] if get => root::conductors(state, req, None).await,
        ["v1", "conductors", host] if get => root::conductors(state, req, Some(host)).await,
        ["v1", "shards"] if get => root::shards(state, req).await,
        ["v1", "lookup"] if get => agent::lookup(state, req).await,
        ["v1", "heartbeat", id] if post => agent::heartbeat(state, req, id).await,
        _ => Err(route_miss(&segs, m)),
    }
}

/// 405 for a known resource with a method it lacks, else 404.
fn route_miss(segs: &[&str], method: &Method) -> ApiError {
    // The heartbeat endpoint only takes POST.
    if matches!(segs, ["v1", "heartbeat", _]) {
        return ApiError::new(
            405,
            "The method specified is not allowed for this resource.",
        );
    }
    let known = matches!(
        segs,
        [] | ["v1"]
            | ["v1", "nodes", ..]
            | ["v1", "ports", ..]
            | ["v1", "drivers", ..]
            | ["v1", "conductors", ..]
            | ["v1", "shards"]
            | ["v1", "lookup"]
            | ["v1", "heartbeat", _]
    );
    if known && segs.len() <= 3 && *method != Method::GET {
        return ApiError::new(
            405,
            "The method specified is not allowed for this resource.",
        );
    }
    ApiError::not_found("The resource could not be found.")
}

/// The link pair upstream puts on resources.
pub fn links(base: &str, path: &str) -> Value {
    json!([
        {"href": format!("{base}/v1/{path}"), "rel": "self"},
        {"href": format!("{base}/{path}"), "rel": "bookmark"},
    ])
}

/// Requires microversion `1.minor` for an endpoint (404 below it, as
/// upstream hides endpoints that do not exist yet).
pub fn require_endpoint(req: &Req, minor: u16) -> ApiResult<()> {
    if req.at_least(minor) {
        Ok(())
    } else {
        Err(ApiError::not_found("The resource could not be found."))
    }
}

/// Looks a node up by UUID, or by name from 1.5, as upstream does.
pub async fn find_node(state: &AppState, req: &Req, ident: &str) -> ApiResult<NodeRow> {
    if !storage::looks_like_uuid(ident) {
        if !req.at_least(5) {
            return Err(ApiError::bad_request(format!(
                "Expected a UUID but received {ident}."
            )));
        }
        if !valid_logical_name(ident) {
            return Err(ApiError::bad_request(format!(
                "Expected a logical name or UUID but received {ident}."
            )));
        }
    }
    storage::get_node(state.db.conn(), ident)
        .await?
        .ok_or_else(|| ApiError::node_not_found(ident))
}

/// Bounds every field of a node or port document that a request set or
/// changed (all of them when `before` is `None`): depth, member counts and
/// size, so that whatever is stored can always be read back and listed.
/// A JSON Patch can deepen a field one path at a time, so this runs on the
/// patched document, not on the request body. A config drive inside
/// `instance_info` is bounded by `max_configdrive_bytes` instead.
pub fn check_stored_fields(
    config: &crate::Config,
    before: Option<&storage::Doc>,
    after: &storage::Doc,
) -> ApiResult<()> {
    let limits = &config.json_limits;
    let refuse = |name: &str, violation: ferrite_service_kit::JsonViolation| {
        ApiError::bad_request(format!("Invalid value for field {name}: {violation}."))
    };
    for (name, value) in after {
        if before.and_then(|b| b.get(name)) == Some(value) {
            continue;
        }
        match value {
            Value::Object(info) if name == "instance_info" && info.contains_key("configdrive") => {
                let mut rest = info.clone();
                if let Some(drive) = rest.remove("configdrive") {
                    limits
                        .check(&drive)
                        .map_err(|v| refuse("instance_info/configdrive", v))?;
                    let bytes = ferrite_service_kit::json::serialized_len(&drive);
                    if bytes > config.max_configdrive_bytes {
                        return Err(refuse(
                            "instance_info/configdrive",
                            ferrite_service_kit::JsonViolation::TooLarge {
                                bytes,
                                max: config.max_configdrive_bytes,
                            },
                        ));
                    }
                }
                limits
                    .check_field(&Value::Object(rest))
                    .map_err(|v| refuse(name, v))?;
            }
            value => limits.check_field(value).map_err(|v| refuse(name, v))?,
        }
    }
    Ok(())
}

/// Upstream's logical names: RFC 3986 unreserved characters.
pub fn valid_logical_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
}

/// `limit`, `marker`, `sort_key`, `sort_dir` of a list request.
pub struct Paging {
    pub limit: Option<u64>,
    pub marker: Option<String>,
    pub sort_key: String,
    pub descending: bool,
}

pub const MAX_LIMIT: u64 = 1000;

pub fn paging(req: &Req, allowed_sort: &[&str], default_sort: &str) -> ApiResult<Paging> {
    let limit = match req.query_one("limit") {
        None => None,
        Some(text) => {
            let n: i64 = text.trim().parse().map_err(|_| {
                ApiError::bad_request(format!("Invalid input for field/attribute limit. Value: '{text}'. unable to convert to Integer"))
            })?;
            if n <= 0 {
                return Err(ApiError::bad_request(format!(
                    "Limit must be positive: {n}"
                )));
            }
            Some((n as u64).min(MAX_LIMIT))
        }
    };
    let sort_key = req
        .query_one("sort_key")
        .unwrap_or(default_sort)
        .to_string();
    if !allowed_sort.contains(&sort_key.as_str()) {
        return Err(ApiError::bad_request(format!(
            "The sort_key value \"{sort_key}\" is an invalid field for sorting"
        )));
    }
    let descending = match req.query_one("sort_dir").unwrap_or("asc") {
        "asc" => false,
        "desc" => true,
        other => {
            return Err(ApiError::bad_request(format!(
                "Invalid sort direction: {other}. Acceptable values are 'asc' or 'desc'"
            )))
        }
    };
    Ok(Paging {
        limit: Some(limit.unwrap_or(MAX_LIMIT)),
        marker: req.query_one("marker").map(str::to_string),
        sort_key,
        descending,
    })
}

/// Upstream's `next` link: the request's own parameters with the new marker.
pub fn next_link(req: &Req, resource: &str, limit: u64, marker: &str) -> String {
    let mut params: Vec<(String, String)> = req
        .query
        .iter()
        .filter(|(k, _)| k != "marker" && k != "limit")
        .cloned()
        .collect();
    params.push(("limit".into(), limit.to_string()));
    params.push(("marker".into(), marker.to_string()));
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("{}/v1/{resource}?{query}", req.base_url)
}

/// Parses a boolean query parameter as upstream (strict-ish) does.
pub fn query_bool(req: &Req, name: &str) -> ApiResult<Option<bool>> {
    match req.query_one(name) {
        None => Ok(None),
        Some(text) => match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" | "y" | "t" => Ok(Some(true)),
            "false" | "0" | "no" | "off" | "n" | "f" => Ok(Some(false)),
            _ => Err(ApiError::bad_request(format!(
                "Invalid value for {name}: '{text}'. Must be a boolean."
            ))),
        },
    }
}
