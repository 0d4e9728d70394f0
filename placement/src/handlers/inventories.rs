//! `/resource_providers/{uuid}/inventories[/{resource_class}]`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::error::{codes, ApiError, ApiResult};
use crate::handlers::provider_or_404;
use crate::http::{Reply, Req};
use crate::schema;
use crate::storage::providers::{self, Inventory, Provider};
use crate::storage::{resource_classes, WriteTx};
use crate::AppState;

const MAX_INT: i64 = 2_147_483_647;

fn render(inv: &Inventory) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("total".into(), json!(inv.total));
    body.insert("reserved".into(), json!(inv.reserved));
    body.insert("min_unit".into(), json!(inv.min_unit));
    body.insert("max_unit".into(), json!(inv.max_unit));
    body.insert("step_size".into(), json!(inv.step_size));
    body.insert("allocation_ratio".into(), json!(inv.allocation_ratio));
    body
}

fn render_one(inv: &Inventory, generation: i64) -> Reply {
    let mut body = render(inv);
    // Upstream omits a generation of 0 (it tests the value for truth).
    if generation != 0 {
        body.insert("resource_provider_generation".into(), json!(generation));
    }
    Reply::json(Value::Object(body)).modified(inv.updated_at.unwrap_or(inv.created_at))
}

fn render_all(req: &Req, inventories: &[Inventory], generation: i64) -> Reply {
    let by_class: Map<String, Value> = inventories
        .iter()
        .map(|i| (i.resource_class.clone(), Value::Object(render(i))))
        .collect();
    let modified = inventories
        .iter()
        .map(|i| i.updated_at.unwrap_or(i.created_at))
        .max();
    let reply = Reply::json(json!({
        "resource_provider_generation": generation,
        "inventories": by_class,
    }));
    match modified {
        Some(m) => reply.modified(m),
        // No inventory, no time to show: upstream then sends no
        // last-modified header at all (but still cache-control).
        None if req.version.at_least(15) => reply.header("cache-control", "no-cache"),
        None => reply,
    }
}

/// Builds an inventory from a validated body, with upstream's defaults.
pub fn from_body(class: &str, body: &Value) -> Inventory {
    let int = |key: &str, default: i64| body.get(key).and_then(Value::as_i64).unwrap_or(default);
    let now = crate::storage::now_micros();
    Inventory {
        resource_class: class.to_string(),
        total: int("total", 0),
        reserved: int("reserved", 0),
        min_unit: int("min_unit", 1),
        max_unit: int("max_unit", MAX_INT),
        step_size: int("step_size", 1),
        allocation_ratio: body
            .get("allocation_ratio")
            .and_then(Value::as_f64)
            .unwrap_or(1.0),
        created_at: now,
        updated_at: Some(now),
    }
}

/// The capacity (see [`Inventory::capacity`]) must be positive before 1.26
/// and may be zero from 1.26 (reserved equal to total). Every inventory
/// write that upstream validates goes through here: `POST .../inventories`,
/// `PUT .../inventories` and `PUT .../inventories/{class}` (upstream's
/// reshaper does not check it, nor do we).
fn check_capacity(req: &Req, provider: &Provider, inv: &Inventory) -> Result<(), String> {
    let capacity = inv.capacity();
    let (bad, tail) = if req.version.at_least(26) {
        (capacity < 0, "The reserved value is greater than total.")
    } else {
        (
            capacity <= 0,
            "The reserved value is greater than or equal to total.",
        )
    };
    if bad {
        return Err(format!(
            "Invalid inventory for '{}' on resource provider '{}'. {tail}",
            inv.resource_class, provider.uuid
        ));
    }
    Ok(())
}

fn provider_404_verbose(err: ApiError) -> ApiError {
    if err.status == 404 {
        ApiError::not_found(format!("{} : {}", err.detail, err.detail))
    } else {
        err
    }
}

pub async fn list(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.authorize(state, "placement:resource_providers:inventories:list")?;
    let provider = provider_or_404(state, req)
        .await
        .map_err(provider_404_verbose)?;
    let inventories = providers::inventories(state.db.conn(), provider.id).await?;
    Ok(render_all(req, &inventories, provider.generation))
}

pub async fn show(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.authorize(state, "placement:resource_providers:inventories:show")?;
    let provider = provider_or_404(state, req)
        .await
        .map_err(provider_404_verbose)?;
    let class = req.param("resource_class");
    let inventories = providers::inventories(state.db.conn(), provider.id).await?;
    let inv = inventories
        .iter()
        .find(|i| i.resource_class == class)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "No inventory of class {class} for {}",
                provider.uuid
            ))
        })?;
    Ok(render_one(inv, provider.generation))
}

async fn bump(tx: &WriteTx, provider: &Provider) -> ApiResult<()> {
    if providers::bump_generation(&**tx, provider.id, provider.generation).await? {
        Ok(())
    } else {
        Err(ApiError::concurrent_update(
            "update conflict: Another thread concurrently updated the resource provider data. Please retry your update",
        ))
    }
}

pub async fn create(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.require_json()?;
    req.authorize(state, "placement:resource_providers:inventories:create")?;
    let provider = provider_or_404(state, req).await?;
    let body = req.json_body(&schema::inventory_create())?;
    let class = body["resource_class"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let inv = from_body(&class, &body);
    let bad = |msg: String| {
        ApiError::bad_request(format!(
            "Unable to create inventory for resource provider {}: {msg}",
            provider.uuid
        ))
    };
    check_capacity(req, &provider, &inv).map_err(bad)?;
    let tx = state.db.begin_write().await?;
    let Some(class_row) = resource_classes::get_by_name(&*tx, &class).await? else {
        return Err(bad(format!("No such resource class {class}.")));
    };
    let existing = providers::inventories(&*tx, provider.id).await?;
    if existing.iter().any(|i| i.resource_class == class) {
        return Err(ApiError::concurrent_update(format!(
            "Update conflict: Inventory for '{class}' on resource provider '{}' already exists.",
            provider.uuid
        )));
    }
    providers::upsert_inventory(&*tx, provider.id, class_row.id, &inv).await?;
    bump(&tx, &provider).await?;
    tx.commit().await?;
    let location = req.absolute(&format!(
        "/resource_providers/{}/inventories/{class}",
        provider.uuid
    ));
    Ok(render_one(&inv, provider.generation + 1)
        .status(201)
        .header("location", location))
}

pub async fn update(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.require_json()?;
    req.authorize(state, "placement:resource_providers:inventories:update")?;
    let provider = provider_or_404(state, req).await?;
    let class = req.param("resource_class").to_string();
    let mut record_schema = schema::inventory_record();
    record_schema["required"] = json!(["total", "resource_provider_generation"]);
    let body = req.json_body(&record_schema)?;
    if body["resource_provider_generation"].as_i64() != Some(provider.generation) {
        return Err(ApiError::concurrent_update(
            "resource provider generation conflict",
        ));
    }
    let inv = from_body(&class, &body);
    check_capacity(req, &provider, &inv).map_err(|msg| {
        ApiError::bad_request(format!(
            "Unable to update inventory for resource provider {}: {msg}",
            provider.uuid
        ))
    })?;
    let tx = state.db.begin_write().await?;
    let Some(class_row) = resource_classes::get_by_name(&*tx, &class).await? else {
        return Err(ApiError::not_found(format!(
            "No such resource class {class}."
        )));
    };
    let existing = providers::inventories(&*tx, provider.id).await?;
    if !existing.iter().any(|i| i.resource_class == class) {
        return Err(ApiError::bad_request(format!(
            "No inventory record with resource class for resource provider {}: No inventory of class {class} found.",
            provider.uuid
        )));
    }
    providers::upsert_inventory(&*tx, provider.id, class_row.id, &inv).await?;
    bump(&tx, &provider).await?;
    tx.commit().await?;
    Ok(render_one(&inv, provider.generation + 1))
}

/// Replaces the whole inventory set inside `tx`: deletes (refusing classes in
/// use), adds and updates. Shared by `PUT .../inventories` and the reshaper.
pub async fn replace_in_tx(
    tx: &WriteTx,
    provider: &Provider,
    wanted: &BTreeMap<String, Inventory>,
) -> ApiResult<()> {
    let existing = providers::inventories(&**tx, provider.id).await?;
    let usages = providers::usages(&**tx, provider.id).await?;
    let removed: Vec<&str> = existing
        .iter()
        .filter(|i| !wanted.contains_key(&i.resource_class))
        .map(|i| i.resource_class.as_str())
        .collect();
    let names: Vec<String> = wanted
        .keys()
        .cloned()
        .chain(removed.iter().map(|s| s.to_string()))
        .collect();
    let ids = resource_classes::ids_by_name(&**tx, &names).await?;
    // An unknown class is refused before a class in use, as upstream looks
    // the names up before it compares the inventories.
    for class in wanted.keys() {
        if !ids.contains_key(class) {
            return Err(ApiError::bad_request(format!(
                "Unknown resource class in inventory for resource provider {}: No such resource class {class}.",
                provider.uuid
            )));
        }
    }
    // Named in class-id order, as upstream's grouped query lists them.
    let mut in_use: Vec<&str> = removed
        .iter()
        .copied()
        .filter(|c| usages.get(*c).copied().unwrap_or(0) > 0)
        .collect();
    in_use.sort_by_key(|c| ids.get(*c).copied().unwrap_or(i64::MAX));
    if !in_use.is_empty() {
        return Err(ApiError::conflict(format!(
            "Inventory for '{}' on resource provider '{}' in use.",
            in_use.join(", "),
            provider.uuid
        ))
        .with_code(codes::INVENTORY_INUSE));
    }
    for class in removed {
        if let Some(id) = ids.get(class) {
            providers::delete_inventory(&**tx, provider.id, *id).await?;
        }
    }
    for (class, inv) in wanted {
        if let Some(id) = ids.get(class) {
            providers::upsert_inventory(&**tx, provider.id, *id, inv).await?;
        }
    }
    Ok(())
}

pub async fn replace_all(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.require_json()?;
    req.authorize(state, "placement:resource_providers:inventories:update")?;
    let provider = provider_or_404(state, req).await?;
    let body = req.json_body(&schema::inventories_replace())?;
    if body["resource_provider_generation"].as_i64() != Some(provider.generation) {
        return Err(ApiError::concurrent_update(
            "resource provider generation conflict",
        ));
    }
    let mut wanted = BTreeMap::new();
    if let Some(map) = body["inventories"].as_object() {
        for (class, record) in map {
            let inv = from_body(class, record);
            check_capacity(req, &provider, &inv).map_err(|msg| {
                ApiError::bad_request(format!(
                    "Unable to update inventory for resource provider {}: {msg}",
                    provider.uuid
                ))
            })?;
            wanted.insert(class.clone(), inv);
        }
    }
    let tx = state.db.begin_write().await?;
    replace_in_tx(&tx, &provider, &wanted).await.map_err(|e| {
        if e.code == codes::INVENTORY_INUSE {
            ApiError::conflict(format!("update conflict: {}", e.detail))
                .with_code(codes::INVENTORY_INUSE)
        } else {
            e
        }
    })?;
    bump(&tx, &provider).await?;
    tx.commit().await?;
    let inventories: Vec<Inventory> = wanted.into_values().collect();
    Ok(render_all(req, &inventories, provider.generation + 1))
}

pub async fn delete(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.authorize(state, "placement:resource_providers:inventories:delete")?;
    let provider = provider_or_404(state, req).await?;
    let class = req.param("resource_class").to_string();
    let tx = state.db.begin_write().await?;
    let not_found = |why: String| {
        ApiError::not_found(format!(
            "No inventory of class {class} found for delete: {why}"
        ))
    };
    let Some(class_row) = resource_classes::get_by_name(&*tx, &class).await? else {
        return Err(not_found(format!("No such resource class {class}.")));
    };
    let usages = providers::usages(&*tx, provider.id).await?;
    if usages.get(&class).copied().unwrap_or(0) > 0 {
        return Err(ApiError::concurrent_update(format!(
            "Unable to delete inventory of class {class}: Inventory for '{class}' on resource provider '{}' in use.",
            provider.uuid
        )));
    }
    if providers::delete_inventory(&*tx, provider.id, class_row.id).await? == 0 {
        return Err(not_found(format!(
            "No inventory of class {class} found for delete"
        )));
    }
    bump(&tx, &provider).await?;
    tx.commit().await?;
    Ok(Reply::empty(204))
}

pub async fn delete_all(state: &AppState, req: &Req) -> ApiResult<Reply> {
    if !req.version.at_least(5) {
        let mut err = ApiError::new(405, "");
        err.method = Some("DELETE".into());
        return Err(err);
    }
    req.authorize(state, "placement:resource_providers:inventories:delete")?;
    let provider = provider_or_404(state, req).await?;
    let tx = state.db.begin_write().await?;
    replace_in_tx(&tx, &provider, &BTreeMap::new()).await?;
    if !providers::bump_generation(&*tx, provider.id, provider.generation).await? {
        return Err(ApiError::concurrent_update(format!(
            "Unable to delete inventory for resource provider {} because the inventory was updated by another process. Please retry your request.",
            provider.uuid
        )));
    }
    tx.commit().await?;
    Ok(Reply::empty(204))
}
