//! `/v1/ports` and `/v1/nodes/{node}/ports`.

use serde_json::{json, Map, Value};

use super::{find_node, next_link, paging, query_bool};
use crate::error::{ApiError, ApiResult};
use crate::http::{Reply, Req};
use crate::model;
use crate::storage::{self, Doc, PortRow};
use crate::AppState;

/// Normalises a MAC address as upstream does (lower case, colons).
pub fn normalize_mac(text: &str) -> Option<String> {
    let lower = text.trim().to_ascii_lowercase();
    let hex: String = lower.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    let separators_ok = lower
        .chars()
        .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '-');
    if hex.len() != 12 || !separators_ok {
        return None;
    }
    let parts: Vec<String> = (0..6).map(|i| hex[i * 2..i * 2 + 2].to_string()).collect();
    Some(parts.join(":"))
}

fn invalid_mac(text: &str) -> ApiError {
    ApiError::bad_request(format!("Expected a MAC address but received {text}."))
}

async fn node_uuid_of(state: &AppState, port: &PortRow) -> ApiResult<String> {
    Ok(storage::get_node_by_id(state.db.conn(), port.node_id)
        .await?
        .map(|n| n.uuid().to_string())
        .unwrap_or_default())
}

async fn full_doc(state: &AppState, port: &PortRow) -> ApiResult<Doc> {
    let mut doc = port.doc.clone();
    doc.insert("node_uuid".into(), json!(node_uuid_of(state, port).await?));
    Ok(doc)
}

fn fields_param(req: &Req) -> ApiResult<Option<Vec<String>>> {
    match req.query_one("fields") {
        None => Ok(None),
        Some(fields) => {
            if !req.at_least(8) {
                return Err(ApiError::not_acceptable());
            }
            Ok(Some(model::check_fields_param(
                fields,
                req.version,
                model::Resource::Port,
            )?))
        }
    }
}

async fn find_port(state: &AppState, req: &Req, ident: &str) -> ApiResult<PortRow> {
    let _ = req;
    storage::get_port(state.db.conn(), ident)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Port {ident} could not be found.")))
}

async fn list_inner(
    state: &AppState,
    req: &Req,
    node_id: Option<i64>,
    detail_path: bool,
    resource: &str,
) -> ApiResult<Reply> {
    let fields = fields_param(req)?;
    let detail_param = query_bool(req, "detail")?;
    if detail_param.is_some() && !req.at_least(43) {
        return Err(ApiError::not_acceptable());
    }
    let detail = detail_path || detail_param.unwrap_or(false);
    if detail && fields.is_some() {
        return Err(ApiError::bad_request(
            "Can not specify ?detail=True and fields in the same request.",
        ));
    }
    let page = paging(req, &["id"], "id").or_else(|err| {
        if matches!(
            req.query_one("sort_key"),
            Some("uuid" | "address" | "created_at" | "updated_at")
        ) {
            paging(req, &["uuid", "address", "created_at", "updated_at"], "id")
        } else {
            Err(err)
        }
    })?;
    let mut node_id = node_id;
    if let Some(node) = req.query_one("node").or_else(|| req.query_one("node_uuid")) {
        let row = find_node(state, req, node).await?;
        node_id = Some(row.id);
    }
    let address = match req.query_one("address") {
        Some(a) => Some(normalize_mac(a).ok_or_else(|| invalid_mac(a))?),
        None => None,
    };
    let marker = match &page.marker {
        Some(m) => Some(
            storage::get_port(state.db.conn(), m)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("Port {m} could not be found.")))?
                .id,
        ),
        None => None,
    };
    let limit = page.limit.unwrap_or(super::MAX_LIMIT);
    let rows = storage::list_ports(
        state.db.conn(),
        node_id,
        address.as_deref(),
        marker,
        Some(limit),
        page.descending,
    )
    .await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        let doc = full_doc(state, row).await?;
        let view = if detail {
            model::port_view(&doc, req.version, None, &req.base_url)
        } else if let Some(fields) = &fields {
            model::port_view(&doc, req.version, Some(fields), &req.base_url)
        } else {
            model::port_list_item(&doc, req.version, &req.base_url)
        };
        items.push(Value::Object(view));
    }
    let mut body = Map::new();
    body.insert("ports".into(), Value::Array(items));
    if rows.len() as u64 == limit {
        if let Some(last) = rows.last() {
            body.insert(
                "next".into(),
                Value::String(next_link(req, resource, limit, last.uuid())),
            );
        }
    }
    Ok(Reply::json(Value::Object(body)))
}

pub async fn list(state: &AppState, req: &Req, detail: bool) -> ApiResult<Reply> {
    let resource = if detail { "ports/detail" } else { "ports" };
    list_inner(state, req, None, detail, resource).await
}

pub async fn list_for_node(
    state: &AppState,
    req: &Req,
    ident: &str,
    detail: bool,
) -> ApiResult<Reply> {
    let node = find_node(state, req, ident).await?;
    let resource = format!(
        "nodes/{}/ports{}",
        node.uuid(),
        if detail { "/detail" } else { "" }
    );
    list_inner(state, req, Some(node.id), detail, &resource).await
}

pub async fn show(state: &AppState, req: &Req, ident: &str) -> ApiResult<Reply> {
    let fields = fields_param(req)?;
    let port = find_port(state, req, ident).await?;
    let doc = full_doc(state, &port).await?;
    Ok(Reply::json(Value::Object(model::port_view(
        &doc,
        req.version,
        fields.as_deref(),
        &req.base_url,
    ))))
}

fn duplicate_mac(address: &str) -> ApiError {
    ApiError::conflict(format!("A port with MAC address {address} already exists."))
}

pub async fn create(state: &AppState, req: &Req) -> ApiResult<Reply> {
    let body = req.json()?;
    let mut doc = model::validate_port_create(&body, req.version)?;
    let address_raw = storage::doc_str(&doc, "address").unwrap_or("").to_string();
    let address = normalize_mac(&address_raw).ok_or_else(|| invalid_mac(&address_raw))?;
    doc.insert("address".into(), json!(address));
    let node_ident = storage::doc_str(&doc, "node_uuid")
        .unwrap_or("")
        .to_string();
    let node = storage::get_node(state.db.conn(), &node_ident)
        .await?
        .ok_or_else(|| ApiError::bad_request(format!("Node {node_ident} could not be found.")))?;
    if storage::doc_str(&doc, "uuid").is_none() {
        doc.insert("uuid".into(), json!(uuid::Uuid::new_v4().to_string()));
    }
    doc.insert("created_at".into(), json!(storage::iso_now().1));
    doc.insert("updated_at".into(), Value::Null);
    doc.remove("node_uuid");
    super::check_stored_fields(&state.config, None, &doc)?;
    if storage::get_port_by_address(state.db.conn(), &address)
        .await?
        .is_some()
    {
        return Err(duplicate_mac(&address));
    }
    let port = match storage::insert_port(&state.db, node.id, &doc).await {
        Ok(Some(port)) => port,
        Ok(None) => {
            return Err(ApiError::bad_request(format!(
                "Node {node_ident} could not be found."
            )))
        }
        Err(err) if storage::is_conflict(&err) => return Err(duplicate_mac(&address)),
        Err(err) => return Err(err.into()),
    };
    let full = full_doc(state, &port).await?;
    Ok(Reply::json(Value::Object(model::port_view(
        &full,
        req.version,
        None,
        &req.base_url,
    )))
    .status(201)
    .header(
        "Location",
        format!("{}/v1/ports/{}", req.base_url, port.uuid()),
    ))
}

pub async fn update(state: &AppState, req: &Req, ident: &str) -> ApiResult<Reply> {
    let patch = req.json()?;
    for _ in 0..20 {
        let port = find_port(state, req, ident).await?;
        let before = full_doc(state, &port).await?;
        let node_uuid = match model::port_patch_node_ident(&patch)? {
            None => storage::doc_str(&before, "node_uuid")
                .unwrap_or("")
                .to_string(),
            Some(value) => {
                let ident = value.as_str().unwrap_or("");
                let found = if ident.is_empty() {
                    None
                } else {
                    storage::get_node(state.db.conn(), ident).await?
                };
                match found {
                    Some(node) => node.uuid().to_string(),
                    None => {
                        return Err(ApiError::bad_request(format!(
                            "Unable to apply the requested node_uuid '{}'. Requested value was invalid.",
                            value.as_str().map_or_else(|| value.to_string(), str::to_string)
                        )))
                    }
                }
            }
        };
        let mut after = model::apply_port_patch(&before, &patch, req.version, &node_uuid)?;
        if model::changed_fields(&before, &after).is_empty() {
            return Ok(Reply::json(Value::Object(model::port_view(
                &before,
                req.version,
                None,
                &req.base_url,
            ))));
        }
        let address_raw = storage::doc_str(&after, "address")
            .unwrap_or("")
            .to_string();
        let address = normalize_mac(&address_raw).ok_or_else(|| invalid_mac(&address_raw))?;
        after.insert("address".into(), json!(address));
        let node_ident = storage::doc_str(&after, "node_uuid")
            .unwrap_or("")
            .to_string();
        let node = storage::get_node(state.db.conn(), &node_ident)
            .await?
            .ok_or_else(|| {
                ApiError::bad_request(format!("Node {node_ident} could not be found."))
            })?;
        if let Some(other) = storage::get_port_by_address(state.db.conn(), &address).await? {
            if other.id != port.id {
                return Err(duplicate_mac(&address));
            }
        }
        after.insert("updated_at".into(), json!(storage::iso_now().1));
        let mut stored = after.clone();
        stored.remove("node_uuid");
        super::check_stored_fields(&state.config, Some(&port.doc), &stored)?;
        let tx = state.db.begin_write().await?;
        match storage::update_port(&*tx, &port, node.id, &stored).await {
            Ok(Some(_)) => {
                tx.commit().await?;
                return Ok(Reply::json(Value::Object(model::port_view(
                    &after,
                    req.version,
                    None,
                    &req.base_url,
                ))));
            }
            Ok(None) => continue,
            Err(err) if storage::is_conflict(&err) => return Err(duplicate_mac(&address)),
            Err(err) => return Err(err.into()),
        }
    }
    Err(ApiError::conflict(
        "The port is being changed concurrently; please retry.",
    ))
}

pub async fn delete(state: &AppState, req: &Req, ident: &str) -> ApiResult<Reply> {
    let port = find_port(state, req, ident).await?;
    let tx = state.db.begin_write().await?;
    storage::delete_port(&*tx, port.id).await?;
    tx.commit().await?;
    Ok(Reply::empty(204))
}
