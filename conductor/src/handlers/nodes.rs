//! `/v1/nodes` and its sub-resources.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use ferrite_conductor_states::{
    check_node_update, check_provision_request, finish_provision_checks, ApiVerb, NodeUpdate,
    ProvisionRequest, ProvisionState,
};
use serde_json::{json, Map, Value};

use super::{find_node, next_link, paging, query_bool, require_endpoint};
use crate::engine::{EngineError, PowerTarget, ProvisionArgs};
use crate::error::{ApiError, ApiResult};
use crate::hardware::InterfaceKind;
use crate::http::{Reply, Req};
use crate::model;
use crate::storage::{self, Doc, Guard, NodeFilter, NodeRow};
use crate::AppState;

/// Keys of the stored document that are ours, never shown or patched.
const PRIVATE_PREFIX: &str = "ferrite:";

impl From<EngineError> for ApiError {
    fn from(err: EngineError) -> ApiError {
        ApiError::new(err.status(), err.to_string())
    }
}

impl From<model::ModelError> for ApiError {
    fn from(err: model::ModelError) -> ApiError {
        // Upstream answers a few malformed inputs with a 500 from Python
        // itself; they are client errors, so we keep the text and say 400.
        let status = if err.status() >= 500 {
            400
        } else {
            err.status()
        };
        ApiError::new(status, err.to_string())
    }
}

fn public(doc: &Doc) -> Doc {
    doc.iter()
        .filter(|(k, _)| !k.starts_with(PRIVATE_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn private(doc: &Doc) -> Doc {
    doc.iter()
        .filter(|(k, _)| k.starts_with(PRIVATE_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Which live conductor serves each conductor group.
async fn conductor_map(state: &AppState) -> ApiResult<HashMap<String, String>> {
    let now = storage::now_micros();
    let timeout = state.config.heartbeat_timeout_secs as i64 * 1_000_000;
    let mut map = HashMap::new();
    for row in storage::list_conductors(state.db.conn()).await? {
        if row.online && now - row.updated_at < timeout {
            map.entry(row.conductor_group).or_insert(row.hostname);
        }
    }
    Ok(map)
}

fn with_conductor(doc: &Doc, conductors: &HashMap<String, String>) -> Doc {
    let mut doc = public(doc);
    let group = storage::doc_str(&doc, "conductor_group").unwrap_or("");
    let host = conductors.get(group).cloned();
    doc.insert(
        "conductor".into(),
        host.map(Value::String).unwrap_or(Value::Null),
    );
    doc
}

async fn render(state: &AppState, req: &Req, row: &NodeRow) -> ApiResult<Value> {
    let conductors = conductor_map(state).await?;
    let doc = with_conductor(&row.doc, &conductors);
    Ok(Value::Object(model::node_view(
        &doc,
        req.version,
        None,
        &req.base_url,
    )))
}

fn fields_param(req: &Req, resource: model::Resource) -> ApiResult<Option<Vec<String>>> {
    match req.query_one("fields") {
        None => Ok(None),
        Some(fields) => {
            if !req.at_least(8) {
                return Err(ApiError::not_acceptable());
            }
            Ok(Some(model::check_fields_param(
                fields,
                req.version,
                resource,
            )?))
        }
    }
}

// ------------------------------------------------------------------ list

/// Query parameters of the node list and the microversion each needs.
const LIST_PARAMS: &[(&str, u16)] = &[
    ("instance_uuid", 1),
    ("associated", 1),
    ("maintenance", 1),
    ("marker", 1),
    ("limit", 1),
    ("sort_key", 1),
    ("sort_dir", 1),
    ("fields", 8),
    ("provision_state", 9),
    ("driver", 16),
    ("resource_class", 21),
    ("fault", 42),
    ("detail", 43),
    ("conductor_group", 46),
    ("conductor", 49),
    ("owner", 50),
    ("description_contains", 51),
    ("retired", 61),
    ("lessee", 65),
    ("project", 65),
    ("shard", 82),
    ("sharded", 82),
    ("parent_node", 83),
    ("include_children", 83),
    ("chassis_uuid", 1),
];

pub async fn list(state: &AppState, req: &Req, detail_path: bool) -> ApiResult<Reply> {
    for (name, _) in &req.query {
        if let Some((_, minor)) = LIST_PARAMS.iter().find(|(p, _)| p == name) {
            if !req.at_least(*minor) {
                return Err(ApiError::not_acceptable());
            }
        }
    }
    let fields = fields_param(req, model::Resource::Node)?;
    let detail_param = query_bool(req, "detail")?;
    if detail_path && detail_param.is_some() {
        return Err(ApiError::bad_request(
            "Cannot specify detail=True when requesting /detail.",
        ));
    }
    let detail = detail_path || detail_param.unwrap_or(false);
    if detail && fields.is_some() {
        return Err(ApiError::bad_request(
            "Can not specify ?detail=True and fields in the same request.",
        ));
    }
    let mut sortable: Vec<&str> = storage::NODE_SORT_COLUMNS.to_vec();
    sortable.retain(|k| *k != "id");
    let page = paging(req, &sortable, "id").or_else(|err| {
        // "id" is the implicit default and not a public sort key.
        if req.query_one("sort_key").is_none() {
            paging(req, &["id"], "id")
        } else {
            Err(err)
        }
    })?;
    let mut filter = NodeFilter::default();
    for (param, column) in [
        ("instance_uuid", "instance_uuid"),
        ("driver", "driver"),
        ("resource_class", "resource_class"),
        ("conductor_group", "conductor_group"),
        ("owner", "owner"),
        ("lessee", "lessee"),
    ] {
        if let Some(value) = req.query_one(param) {
            let value = if column == "conductor_group" {
                value.to_lowercase()
            } else {
                value.to_string()
            };
            filter.equals.push((column, Some(value)));
        }
    }
    filter.maintenance = query_bool(req, "maintenance")?;
    filter.associated = query_bool(req, "associated")?;
    filter.sharded = query_bool(req, "sharded")?;
    if let Some(project) = req.query_one("project") {
        filter.project = Some(project.to_string());
    }
    if let Some(states) = req.query_one("provision_state") {
        let states: Vec<String> = states.split(',').map(|s| s.trim().to_string()).collect();
        for s in &states {
            if s.parse::<ProvisionState>().is_err() {
                return Err(ApiError::bad_request(format!(
                    "Invalid provision state: {s}"
                )));
            }
        }
        filter.provision_states = Some(states);
    }
    if let Some(shards) = req.query_one("shard") {
        filter.shards = Some(shards.split(',').map(|s| s.trim().to_string()).collect());
    }
    let marker = match &page.marker {
        Some(marker) => Some(
            storage::get_node(state.db.conn(), marker)
                .await?
                .ok_or_else(|| ApiError::node_not_found(marker))?,
        ),
        None => None,
    };
    let limit = page.limit.unwrap_or(super::MAX_LIMIT);
    let rows = storage::list_nodes(
        state.db.conn(),
        &filter,
        &page.sort_key,
        page.descending,
        marker.as_ref(),
        Some(limit),
    )
    .await?;
    // Filters upstream applies outside SQL.
    let conductor_filter = req.query_one("conductor");
    let description = req.query_one("description_contains");
    let fault = req.query_one("fault");
    let retired = query_bool(req, "retired")?;
    let conductors = conductor_map(state).await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        let doc = with_conductor(&row.doc, &conductors);
        if let Some(want) = conductor_filter {
            if storage::doc_str(&doc, "conductor") != Some(want) {
                continue;
            }
        }
        if let Some(text) = description {
            if !storage::doc_str(&doc, "description").is_some_and(|d| d.contains(text)) {
                continue;
            }
        }
        if let Some(want) = fault {
            if storage::doc_str(&doc, "fault") != Some(want) {
                continue;
            }
        }
        if let Some(want) = retired {
            if doc.get("retired").and_then(Value::as_bool).unwrap_or(false) != want {
                continue;
            }
        }
        let view = if detail {
            model::node_view(&doc, req.version, None, &req.base_url)
        } else if let Some(fields) = &fields {
            model::node_view(&doc, req.version, Some(fields), &req.base_url)
        } else {
            model::node_list_item(&doc, req.version, &req.base_url)
        };
        items.push(Value::Object(view));
    }
    let mut body = Map::new();
    body.insert("nodes".into(), Value::Array(items));
    if rows.len() as u64 == limit {
        if let Some(last) = rows.last() {
            let resource = if detail_path { "nodes/detail" } else { "nodes" };
            body.insert(
                "next".into(),
                Value::String(next_link(req, resource, limit, last.uuid())),
            );
        }
    }
    Ok(Reply::json(Value::Object(body)))
}

pub async fn show(state: &AppState, req: &Req, ident: &str) -> ApiResult<Reply> {
    let fields = fields_param(req, model::Resource::Node)?;
    let row = find_node(state, req, ident).await?;
    let conductors = conductor_map(state).await?;
    let doc = with_conductor(&row.doc, &conductors);
    Ok(Reply::json(Value::Object(model::node_view(
        &doc,
        req.version,
        fields.as_deref(),
        &req.base_url,
    ))))
}

// ---------------------------------------------------------------- create

fn requested_interfaces(doc: &Doc) -> BTreeMap<InterfaceKind, Option<String>> {
    InterfaceKind::ALL
        .iter()
        .map(|kind| {
            (
                *kind,
                storage::doc_str(doc, &kind.node_field()).map(str::to_string),
            )
        })
        .collect()
}

fn driver_unavailable(driver: &str, group: &str) -> ApiError {
    ApiError::bad_request(format!(
        "No valid host was found. Reason: No conductor service registered which supports driver {driver} for conductor group \"{group}\". Ensure the driver is valid and enabled."
    ))
}

/// Resolves the node's interfaces, or upstream's 400.
fn resolve_interfaces(state: &AppState, doc: &mut Doc) -> ApiResult<()> {
    let driver = storage::doc_str(doc, "driver").unwrap_or("").to_string();
    let group = storage::doc_str(doc, "conductor_group")
        .unwrap_or("")
        .to_string();
    if !state.registry.enabled_hardware_types().contains(&driver)
        || group != state.config.conductor_group
    {
        return Err(driver_unavailable(&driver, &group));
    }
    let resolved = state
        .registry
        .resolve(&driver, &requested_interfaces(doc))
        .map_err(|e| ApiError::new(e.status(), e.to_string()))?;
    for (kind, name) in resolved {
        doc.insert(kind.node_field(), Value::String(name));
    }
    Ok(())
}

pub async fn create(state: &AppState, req: &Req) -> ApiResult<Reply> {
    let body = req.json()?;
    let mut doc = model::validate_node_create(&body, req.version)?;
    super::check_stored_fields(&state.config, None, &doc)?;
    if storage::doc_str(&doc, "uuid").is_none() {
        doc.insert("uuid".into(), json!(uuid::Uuid::new_v4().to_string()));
    }
    resolve_interfaces(state, &mut doc)?;
    let (_, now) = storage::iso_now();
    doc.insert("created_at".into(), json!(now));
    doc.insert("updated_at".into(), Value::Null);
    doc.insert(
        "provision_state".into(),
        json!(ProvisionState::initial(req.version).as_str()),
    );
    if let Some(name) = storage::doc_str(&doc, "name") {
        if storage::get_node(state.db.conn(), name).await?.is_some() {
            return Err(ApiError::conflict(format!(
                "A node with name {name} already exists."
            )));
        }
    }
    if let Some(instance) = storage::doc_str(&doc, "instance_uuid") {
        let taken = storage::list_nodes(
            state.db.conn(),
            &NodeFilter {
                equals: vec![("instance_uuid", Some(instance.to_string()))],
                ..NodeFilter::default()
            },
            "id",
            false,
            None,
            Some(1),
        )
        .await?;
        if let Some(other) = taken.first() {
            return Err(ApiError::conflict(format!(
                "Instance {instance} is already associated with a node, it cannot be associated with this other node {}",
                other.uuid()
            )));
        }
    }
    let uuid = storage::doc_str(&doc, "uuid").unwrap_or("").to_string();
    if storage::get_node(state.db.conn(), &uuid).await?.is_some() {
        return Err(ApiError::conflict(format!(
            "A node with UUID {uuid} already exists."
        )));
    }
    let row = storage::insert_node(&state.db, &doc).await?;
    let body = render(state, req, &row).await?;
    Ok(Reply::json(body)
        .status(201)
        .header("Location", format!("{}/v1/nodes/{uuid}", req.base_url)))
}

// ---------------------------------------------------------------- update

/// Applies `change` to the node with compare-and-swap, retrying when a
/// concurrent writer got there first, and answering 409 NodeLocked while a
/// conductor task holds the node (after the configured retries).
async fn update_with<F>(
    state: &AppState,
    req: &Req,
    ident: &str,
    mut change: F,
) -> ApiResult<NodeRow>
where
    F: FnMut(&NodeRow) -> ApiResult<Option<Doc>>,
{
    let mut locked_attempts = 0;
    for _ in 0..50 {
        let row = find_node(state, req, ident).await?;
        if let Some(host) = &row.reservation {
            if locked_attempts >= state.config.node_locked_retry_attempts {
                return Err(ApiError::node_locked(row.uuid(), host));
            }
            locked_attempts += 1;
            tokio::time::sleep(Duration::from_millis(
                state.config.node_locked_retry_interval_ms,
            ))
            .await;
            continue;
        }
        let Some(mut doc) = change(&row)? else {
            return Ok(row);
        };
        super::check_stored_fields(&state.config, Some(&row.doc), &doc)?;
        doc.insert("updated_at".into(), json!(storage::iso_now().1));
        let tx = state.db.begin_write().await?;
        match storage::update_node(&*tx, &row, &doc, Guard::Unreserved).await {
            Ok(Some(updated)) => {
                tx.commit().await?;
                return Ok(updated);
            }
            Ok(None) => {
                drop(tx);
                continue;
            }
            Err(err) if storage::is_conflict(&err) => {
                drop(tx);
                return Err(unique_conflict(state, &doc, row.id).await);
            }
            Err(err) => return Err(err.into()),
        }
    }
    Err(ApiError::conflict(
        "The node is being changed by many requests at once; please retry.",
    ))
}

/// Explains a unique-constraint failure of an update.
async fn unique_conflict(state: &AppState, doc: &Doc, id: i64) -> ApiError {
    if let Some(name) = storage::doc_str(doc, "name") {
        if let Ok(Some(other)) = storage::get_node(state.db.conn(), name).await {
            if other.id != id {
                return ApiError::conflict(format!("A node with name {name} already exists."));
            }
        }
    }
    if let Some(instance) = storage::doc_str(doc, "instance_uuid") {
        return ApiError::conflict(format!(
            "Instance {instance} is already associated with a node, it cannot be associated with this other node {}",
            storage::doc_str(doc, "uuid").unwrap_or("")
        ));
    }
    ApiError::conflict("The node was changed concurrently; please retry.")
}

/// Upstream's checks of a patched node against the stored one.
fn check_patched(
    state: &AppState,
    ident: &str,
    version: ferrite_conductor_states::ApiVersion,
    reset_interfaces: bool,
    before: &Doc,
    after: &mut Doc,
) -> ApiResult<()> {
    let uuid = storage::doc_str(before, "uuid").unwrap_or("");
    let changed = model::changed_fields(before, after);
    if changed.is_empty() {
        return Ok(());
    }
    // instance_uuid: set when empty, clear, never replace.
    if changed.iter().any(|f| f == "instance_uuid") {
        if let (Some(old), Some(_new)) = (
            storage::doc_str(before, "instance_uuid"),
            storage::doc_str(after, "instance_uuid"),
        ) {
            return Err(ApiError::conflict(format!(
                "Node {uuid} is associated with instance {old}."
            )));
        }
    }
    let state_name = storage::doc_str(before, "provision_state").unwrap_or("enroll");
    let provision_state: ProvisionState = state_name.parse().unwrap_or(ProvisionState::Enroll);
    let target_provision_state = storage::doc_str(before, "target_provision_state")
        .and_then(|s| s.parse::<ProvisionState>().ok());
    // Upstream lets one update through whatever the state: clearing the
    // instance of a node in maintenance.
    let clearing_instance_in_maintenance = changed.iter().all(|f| f == "instance_uuid")
        && after.get("instance_uuid").is_some_and(Value::is_null)
        && before
            .get("maintenance")
            .and_then(Value::as_bool)
            .unwrap_or(false);
    if !clearing_instance_in_maintenance {
        check_node_update(&NodeUpdate {
            node_ident: ident,
            node_uuid: uuid,
            provision_state,
            target_provision_state,
            version,
        })
        .map_err(|e| ApiError::new(e.upstream_status(), e.to_string()))?;
    }
    // Driver or interface changes go through the registry again, with
    // upstream's update rules (stored interfaces are kept unless
    // `reset_interfaces` asks for the new driver's defaults).
    let driver_changed = changed.iter().any(|f| f == "driver");
    let interface_changed = changed.iter().any(|f| f.ends_with("_interface"));
    if driver_changed || interface_changed || reset_interfaces {
        let driver = storage::doc_str(after, "driver").unwrap_or("").to_string();
        let group = storage::doc_str(after, "conductor_group")
            .unwrap_or("")
            .to_string();
        if !state.registry.is_enabled(&driver) || group != state.config.conductor_group {
            return Err(driver_unavailable(&driver, &group));
        }
        let current: BTreeMap<InterfaceKind, String> = InterfaceKind::ALL
            .iter()
            .filter_map(|k| storage::doc_str(before, &k.node_field()).map(|v| (*k, v.to_string())))
            .collect();
        let patched: BTreeMap<InterfaceKind, Option<String>> = InterfaceKind::ALL
            .iter()
            .filter(|k| changed.contains(&k.node_field()))
            .map(|k| {
                (
                    *k,
                    storage::doc_str(after, &k.node_field()).map(str::to_string),
                )
            })
            .collect();
        let resolved = state
            .registry
            .resolve_update(&crate::hardware::InterfaceUpdate {
                driver: &driver,
                driver_patched: driver_changed,
                reset_interfaces,
                current: &current,
                patched: &patched,
            })
            .map_err(|e| ApiError::new(e.status(), e.to_string()))?;
        for (kind, name) in resolved {
            after.insert(kind.node_field(), Value::String(name));
        }
    }
    if changed.iter().any(|f| f == "maintenance")
        && !after
            .get("maintenance")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    {
        after.insert("maintenance_reason".into(), Value::Null);
        after.insert("fault".into(), Value::Null);
    }
    if changed.iter().any(|f| f == "protected")
        && !after
            .get("protected")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    {
        after.insert("protected_reason".into(), Value::Null);
    }
    Ok(())
}

pub async fn update(state: &AppState, req: &Req, ident: &str) -> ApiResult<Reply> {
    let reset_interfaces = match query_bool(req, "reset_interfaces")? {
        Some(_) if !req.at_least(45) => return Err(ApiError::not_acceptable()),
        Some(flag) => flag,
        None => false,
    };
    let patch = req.json()?;
    let row = update_with(state, req, ident, |row| {
        let before = public(&row.doc);
        let mut after = model::apply_node_patch(&before, &patch, req.version, ident)?;
        check_patched(
            state,
            ident,
            req.version,
            reset_interfaces,
            &before,
            &mut after,
        )?;
        if model::changed_fields(&before, &after).is_empty() {
            return Ok(None);
        }
        after.extend(private(&row.doc));
        Ok(Some(after))
    })
    .await?;
    // Upstream writes the update while its conductor holds the node and
    // answers with the node as written, reservation included; our
    // compare-and-swap is that same exclusive write, so we answer alike.
    let mut row = row;
    row.doc
        .insert("reservation".into(), json!(state.config.host));
    Ok(Reply::json(render(state, req, &row).await?))
}

pub async fn delete(state: &AppState, req: &Req, ident: &str) -> ApiResult<Reply> {
    let row = find_node(state, req, ident).await?;
    if let Some(instance) = row.str_field("instance_uuid") {
        return Err(ApiError::conflict(format!(
            "Node {} is associated with instance {instance}.",
            row.uuid()
        )));
    }
    if row
        .doc
        .get("protected")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        return Err(ApiError::new(
            403,
            format!(
                "Node {} is protected and cannot be undeployed, rebuilt or deleted",
                row.uuid()
            ),
        ));
    }
    state.conductor.destroy_node(row.uuid()).await?;
    Ok(Reply::empty(204))
}

// ---------------------------------------------------------------- states

pub async fn states(state: &AppState, req: &Req, ident: &str) -> ApiResult<Reply> {
    let row = find_node(state, req, ident).await?;
    let doc = &row.doc;
    let get = |k: &str| doc.get(k).cloned().unwrap_or(Value::Null);
    let mut body = Map::new();
    body.insert("console_enabled".into(), get("console_enabled"));
    body.insert("last_error".into(), get("last_error"));
    body.insert("power_state".into(), get("power_state"));
    let provision_state = storage::doc_str(doc, "provision_state")
        .and_then(|s| s.parse::<ProvisionState>().ok())
        .and_then(|s| s.api_name(req.version))
        .map(Value::from)
        .unwrap_or_else(|| get("provision_state"));
    body.insert("provision_state".into(), provision_state);
    body.insert("target_power_state".into(), get("target_power_state"));
    body.insert(
        "target_provision_state".into(),
        get("target_provision_state"),
    );
    body.insert("provision_updated_at".into(), get("provision_updated_at"));
    if req.at_least(12) {
        body.insert("raid_config".into(), get("raid_config"));
        body.insert("target_raid_config".into(), get("target_raid_config"));
    }
    if req.at_least(75) {
        body.insert("boot_mode".into(), get("boot_mode"));
        body.insert("secure_boot".into(), get("secure_boot"));
    }
    Ok(Reply::json(Value::Object(body)))
}

fn states_location(req: &Req, row: &NodeRow) -> String {
    format!("{}/v1/nodes/{}/states", req.base_url, row.uuid())
}

/// Upstream's config drive checks: a string (gzip+base64 ISO) or, from
/// 1.56, an object of meta_data/user_data/network_data/vendor_data.
fn check_configdrive(state: &AppState, req: &Req, value: &Value) -> ApiResult<()> {
    match value {
        Value::Null => Ok(()),
        Value::String(text) => {
            if text.len() > state.config.max_configdrive_bytes {
                return Err(ApiError::bad_request(format!(
                    "The config drive is {} bytes, more than the allowed {} bytes.",
                    text.len(),
                    state.config.max_configdrive_bytes
                )));
            }
            Ok(())
        }
        Value::Object(map) => {
            if !req.at_least(56) {
                return Err(ApiError::bad_request(
                    "Invalid configdrive format: a string is required before API version 1.56",
                ));
            }
            for (key, item) in map {
                match key.as_str() {
                    "meta_data" | "network_data" | "vendor_data" => {
                        if !item.is_object() && !item.is_null() {
                            return Err(ApiError::bad_request(format!(
                                "Invalid configdrive format: {key} must be an object"
                            )));
                        }
                    }
                    "user_data" => {
                        if !(item.is_string()
                            || item.is_object()
                            || item.is_array()
                            || item.is_null())
                        {
                            return Err(ApiError::bad_request(
                                "Invalid configdrive format: user_data must be a string, an object or a list",
                            ));
                        }
                    }
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "Invalid configdrive format: unexpected key {other}"
                        )))
                    }
                }
            }
            if value.to_string().len() > state.config.max_configdrive_bytes {
                return Err(ApiError::bad_request(
                    "The config drive is larger than allowed.",
                ));
            }
            Ok(())
        }
        _ => Err(ApiError::bad_request(
            "Invalid configdrive format: a string or an object is required",
        )),
    }
}

pub async fn set_provision(state: &AppState, req: &Req, ident: &str) -> ApiResult<Reply> {
    let body = req.json()?;
    let Some(body) = body.as_object() else {
        return Err(ApiError::bad_request(
            "Invalid request body: an object is required",
        ));
    };
    let Some(target) = body.get("target") else {
        return Err(ApiError::bad_request("Missing argument: \"target\""));
    };
    let Some(target) = target.as_str() else {
        return Err(ApiError::bad_request(
            "Invalid target: a string is required",
        ));
    };
    let row = find_node(state, req, ident).await?;
    let provision_state: ProvisionState = row
        .str_field("provision_state")
        .and_then(|s| s.parse().ok())
        .unwrap_or(ProvisionState::Enroll);
    let request = ProvisionRequest {
        node_uuid: row.uuid(),
        target,
        provision_state,
        version: req.version,
        maintenance: row
            .doc
            .get("maintenance")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        reservation: row.reservation.as_deref(),
    };
    let checked = check_provision_request(&request)?;
    let verb_name = target;
    let is_deploy = matches!(verb_name, "active" | "rebuild" | "deploy");
    let field = |k: &str| body.get(k).filter(|v| !v.is_null()).cloned();
    let configdrive = field("configdrive");
    if let Some(drive) = &configdrive {
        if !is_deploy {
            return Err(ApiError::bad_request(
                "Adding a config drive is only supported when setting provision state to active or rebuild",
            ));
        }
        check_configdrive(state, req, drive)?;
    }
    let clean_steps = field("clean_steps");
    if clean_steps.is_some() && verb_name != "clean" {
        return Err(ApiError::bad_request(
            "\"clean_steps\" is only valid when setting target provision state to clean",
        ));
    }
    let deploy_steps = field("deploy_steps");
    if deploy_steps.is_some() {
        if !req.at_least(69) {
            return Err(ApiError::not_acceptable());
        }
        if !is_deploy {
            return Err(ApiError::bad_request(
                "\"deploy_steps\" is only valid when setting target provision state to active or rebuild",
            ));
        }
    }
    let service_steps = field("service_steps");
    if service_steps.is_some() && verb_name != "service" {
        return Err(ApiError::bad_request(
            "\"service_steps\" is only valid when setting target provision state to service",
        ));
    }
    let rescue_password = field("rescue_password");
    if rescue_password.is_some() && verb_name != "rescue" {
        return Err(ApiError::bad_request(
            "\"rescue_password\" is only valid when setting target provision state to rescue",
        ));
    }
    let disable_ramdisk = match field("disable_ramdisk") {
        None => None,
        Some(Value::Bool(b)) => {
            if !req.at_least(70) {
                return Err(ApiError::not_acceptable());
            }
            if !matches!(verb_name, "clean" | "service") {
                return Err(ApiError::bad_request(
                    "\"disable_ramdisk\" can be passed only with \"clean\" and \"service\"",
                ));
            }
            Some(b)
        }
        Some(_) => return Err(ApiError::bad_request("disable_ramdisk must be a boolean")),
    };
    let verb = finish_provision_checks(&request, checked)?;
    match verb {
        ApiVerb::Clean if clean_steps.is_none() => {
            return Err(ApiError::bad_request(
                "\"clean_steps\" is required when setting target provision state to clean",
            ))
        }
        ApiVerb::Service if service_steps.is_none() => {
            return Err(ApiError::bad_request(
                "\"service_steps\" is required when setting target provision state to service",
            ))
        }
        ApiVerb::Rescue => match rescue_password.as_ref().and_then(Value::as_str) {
            Some(p) if !p.trim().is_empty() => {}
            _ => {
                return Err(ApiError::bad_request(
                    "A non-empty \"rescue_password\" is required when setting target provision state to rescue",
                ))
            }
        },
        _ => {}
    }
    for steps in [&clean_steps, &service_steps, &deploy_steps]
        .into_iter()
        .flatten()
    {
        if !steps.is_array() {
            return Err(ApiError::bad_request("Steps must be a list of objects"));
        }
    }
    if matches!(
        verb,
        ApiVerb::Rebuild | ApiVerb::Deleted | ApiVerb::Undeploy
    ) && row
        .doc
        .get("protected")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        return Err(ApiError::new(
            403,
            format!(
                "Node {} is protected and cannot be undeployed, rebuilt or deleted",
                row.uuid()
            ),
        ));
    }
    let args = ProvisionArgs {
        configdrive,
        clean_steps,
        deploy_steps,
        service_steps,
        rescue_password: rescue_password.and_then(|v| v.as_str().map(str::to_string)),
        disable_ramdisk,
    };
    state.conductor.provision(row.uuid(), verb, args).await?;
    Ok(Reply::empty(202).header("Location", states_location(req, &row)))
}

pub async fn set_power(state: &AppState, req: &Req, ident: &str) -> ApiResult<Reply> {
    let body = req.json()?;
    let row = find_node(state, req, ident).await?;
    let target_text = body.get("target").and_then(Value::as_str).unwrap_or("");
    let current = row.str_field("power_state").unwrap_or("None").to_string();
    let invalid = || {
        ApiError::bad_request(format!(
            "The requested action \"{target_text}\" can not be performed on node \"{}\" while it is in state \"{current}\".",
            row.uuid()
        ))
    };
    let target = PowerTarget::parse(target_text).ok_or_else(invalid)?;
    if matches!(target, PowerTarget::SoftOff | PowerTarget::SoftReboot) && !req.at_least(27) {
        return Err(invalid());
    }
    if let Some(timeout) = body.get("timeout").filter(|v| !v.is_null()) {
        if !req.at_least(27) {
            return Err(ApiError::not_acceptable());
        }
        if timeout.as_i64().is_none_or(|t| t < 1) {
            return Err(ApiError::bad_request(format!(
                "Invalid timeout value {timeout}. The timeout must be a positive integer."
            )));
        }
    }
    state.conductor.change_power(row.uuid(), target).await?;
    Ok(Reply::empty(202).header("Location", states_location(req, &row)))
}

pub async fn set_maintenance(
    state: &AppState,
    req: &Req,
    ident: &str,
    on: bool,
) -> ApiResult<Reply> {
    let reason = if on && !req.body.is_empty() {
        let body = req.json()?;
        match body.get("reason") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(ApiError::bad_request("reason must be a string")),
        }
    } else {
        None
    };
    update_with(state, req, ident, |row| {
        let mut doc = row.doc.clone();
        doc.remove("reservation");
        doc.insert("maintenance".into(), json!(on));
        doc.insert(
            "maintenance_reason".into(),
            reason.clone().map(Value::String).unwrap_or(Value::Null),
        );
        if !on {
            doc.insert("fault".into(), Value::Null);
        }
        Ok(Some(doc))
    })
    .await?;
    Ok(Reply::empty(202))
}

// ------------------------------------------------------------ management

pub async fn get_boot_device(state: &AppState, req: &Req, ident: &str) -> ApiResult<Reply> {
    let row = find_node(state, req, ident).await?;
    if row.str_field("management_interface") == Some("redfish") {
        // Read from the BMC, as upstream: what the machine will boot next,
        // whoever set it.
        let (device, persistent) = crate::ops::get_boot_device(&state.config, &row.doc)
            .await
            .map_err(|message| ApiError::new(500, message))?;
        return Ok(Reply::json(
            json!({"boot_device": device, "persistent": persistent}),
        ));
    }
    // Until a device is set, answer as upstream's fake management does.
    let device = row
        .doc
        .get("ferrite:boot_device")
        .cloned()
        .unwrap_or_else(|| json!("pxe"));
    let persistent = row
        .doc
        .get("ferrite:boot_device_persistent")
        .cloned()
        .unwrap_or(Value::Bool(false));
    Ok(Reply::json(
        json!({"boot_device": device, "persistent": persistent}),
    ))
}

pub async fn set_boot_device(state: &AppState, req: &Req, ident: &str) -> ApiResult<Reply> {
    let body = req.json()?;
    let row = find_node(state, req, ident).await?;
    let Some(device) = body.get("boot_device").and_then(Value::as_str) else {
        return Err(ApiError::bad_request("Missing argument: \"boot_device\""));
    };
    let persistent = match body.get("persistent") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::bad_request("persistent must be a boolean")),
    };
    state
        .conductor
        .set_boot_device(row.uuid(), device, persistent)
        .await?;
    Ok(Reply::empty(204))
}

pub async fn supported_boot_devices(state: &AppState, req: &Req, ident: &str) -> ApiResult<Reply> {
    let row = find_node(state, req, ident).await?;
    let management = row.str_field("management_interface").unwrap_or("");
    Ok(Reply::json(json!({
        "supported_boot_devices": crate::drivers::supported_boot_devices(management)
    })))
}

pub async fn validate(state: &AppState, req: &Req, ident: &str) -> ApiResult<Reply> {
    let row = find_node(state, req, ident).await?;
    let requested: BTreeMap<InterfaceKind, Option<String>> = InterfaceKind::ALL
        .iter()
        .map(|k| (*k, row.str_field(&k.node_field()).map(str::to_string)))
        .collect();
    let driver = row.str_field("driver").unwrap_or("");
    let resolved = state
        .registry
        .resolve(driver, &requested)
        .map_err(|e| ApiError::new(e.status(), e.to_string()))?;
    let empty = Map::new();
    let object = |k: &str| row.doc.get(k).and_then(Value::as_object).unwrap_or(&empty);
    let traits = node_traits(&row);
    Ok(Reply::json(crate::hardware::validate(
        &crate::hardware::NodeValidationInput {
            node_uuid: row.uuid(),
            driver,
            interfaces: &resolved,
            driver_info: object("driver_info"),
            instance_info: object("instance_info"),
            traits: &traits,
        },
    )))
}

// ---------------------------------------------------------------- traits

fn node_traits(row: &NodeRow) -> Vec<String> {
    row.doc
        .get("traits")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

const MAX_TRAITS: usize = 50;

fn check_trait(name: &str) -> ApiResult<()> {
    let valid = name.len() <= 255
        && (ferrite_resource_classes::standard_traits::is_standard_trait(name)
            || (name.starts_with("CUSTOM_")
                && name.len() > 7
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')));
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Invalid trait {name}. A valid trait must be no longer than 255 characters. Standard traits are defined in the os_traits library. A custom trait must start with the prefix CUSTOM_ and use the following characters: A-Z, 0-9 and _"
        )))
    }
}

pub async fn traits_get(state: &AppState, req: &Req, ident: &str) -> ApiResult<Reply> {
    require_endpoint(req, 37)?;
    let row = find_node(state, req, ident).await?;
    Ok(Reply::json(json!({ "traits": node_traits(&row) })))
}

pub async fn traits_set(
    state: &AppState,
    req: &Req,
    ident: &str,
    one: Option<&str>,
) -> ApiResult<Reply> {
    require_endpoint(req, 37)?;
    let replace: Option<Vec<String>> = match one {
        Some(name) => {
            check_trait(name)?;
            None
        }
        None => {
            let body = req.json()?;
            let Some(items) = body.get("traits").and_then(Value::as_array) else {
                return Err(ApiError::bad_request("Missing argument: \"traits\""));
            };
            let mut names = Vec::new();
            for item in items {
                let Some(name) = item.as_str() else {
                    return Err(ApiError::bad_request("Traits must be strings"));
                };
                check_trait(name)?;
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_string());
                }
            }
            Some(names)
        }
    };
    update_with(state, req, ident, |row| {
        let mut traits = node_traits(row);
        match (&replace, one) {
            (Some(names), _) => traits = names.clone(),
            (None, Some(name)) => {
                if !traits.iter().any(|t| t == name) {
                    traits.push(name.to_string());
                }
            }
            (None, None) => {}
        }
        if traits.len() > MAX_TRAITS {
            return Err(ApiError::bad_request(format!(
                "Could not modify traits for node {}: would exceed the maximum of {MAX_TRAITS}",
                row.uuid()
            )));
        }
        let mut doc = row.doc.clone();
        doc.remove("reservation");
        doc.insert("traits".into(), json!(traits));
        Ok(Some(doc))
    })
    .await?;
    Ok(Reply::empty(204))
}

pub async fn traits_delete(
    state: &AppState,
    req: &Req,
    ident: &str,
    one: Option<&str>,
) -> ApiResult<Reply> {
    require_endpoint(req, 37)?;
    update_with(state, req, ident, |row| {
        let mut traits = node_traits(row);
        if let Some(name) = one {
            if !traits.iter().any(|t| t == name) {
                return Err(ApiError::not_found(format!(
                    "Node {} doesn't have a trait {name}",
                    row.uuid()
                )));
            }
            traits.retain(|t| t != name);
        } else {
            traits.clear();
        }
        let mut doc = row.doc.clone();
        doc.remove("reservation");
        doc.insert("traits".into(), json!(traits));
        Ok(Some(doc))
    })
    .await?;
    Ok(Reply::empty(204))
}

// ------------------------------------------------------------------ vifs

pub async fn vifs_list(state: &AppState, req: &Req, ident: &str) -> ApiResult<Reply> {
    require_endpoint(req, 28)?;
    let row = find_node(state, req, ident).await?;
    let network = row.str_field("network_interface").unwrap_or("");
    let vifs = if crate::drivers::network_records_vifs(network) {
        crate::drivers::vif_list(&state.db, &row).await?
    } else {
        Vec::new()
    };
    let items: Vec<Value> = vifs.into_iter().map(|id| json!({"id": id})).collect();
    Ok(Reply::json(json!({ "vifs": items })))
}

pub async fn vif_attach(state: &AppState, req: &Req, ident: &str) -> ApiResult<Reply> {
    require_endpoint(req, 28)?;
    let body = req.json()?;
    let Some(vif) = body.get("id").and_then(Value::as_str) else {
        return Err(ApiError::bad_request("Missing argument: \"id\""));
    };
    let vif = vif.to_string();
    let row = find_node(state, req, ident).await?;
    state.conductor.vif_attach(row.uuid(), &vif).await?;
    Ok(Reply::empty(204))
}

pub async fn vif_detach(state: &AppState, req: &Req, ident: &str, vif: &str) -> ApiResult<Reply> {
    require_endpoint(req, 28)?;
    let row = find_node(state, req, ident).await?;
    state.conductor.vif_detach(row.uuid(), vif).await?;
    Ok(Reply::empty(204))
}

// --------------------------------------------------------------- history

pub async fn history(
    state: &AppState,
    req: &Req,
    ident: &str,
    event: Option<&str>,
) -> ApiResult<Reply> {
    require_endpoint(req, 78)?;
    let row = find_node(state, req, ident).await?;
    let rows = storage::list_history(state.db.conn(), row.id).await?;
    let detail = event.is_some() || query_bool(req, "detail")?.unwrap_or(false);
    let render = |h: &storage::HistoryRow| {
        let created = chrono::DateTime::from_timestamp_micros(h.created_at)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string());
        let mut item = json!({
            "uuid": h.uuid,
            "created_at": created,
            "severity": h.severity,
            "event": h.event,
            "links": super::links(&req.base_url, &format!("nodes/{}/history/{}", row.uuid(), h.uuid)),
        });
        if detail {
            if let Some(map) = item.as_object_mut() {
                map.insert("conductor".into(), json!(h.conductor));
                map.insert("event_type".into(), json!(h.event_type));
                map.insert("user".into(), json!(h.user));
            }
        }
        item
    };
    match event {
        Some(id) => rows
            .iter()
            .find(|h| h.uuid == id)
            .map(|h| Reply::json(render(h)))
            .ok_or_else(|| {
                ApiError::not_found(format!("Node history record {id} could not be found."))
            }),
        None => Ok(Reply::json(json!({
            "history": rows.iter().map(render).collect::<Vec<_>>()
        }))),
    }
}
