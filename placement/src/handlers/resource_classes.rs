//! `/resource_classes`: standard classes are read-only, custom ones CRUD.

use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::http::{Reply, Req};
use crate::schema;
use crate::storage::resource_classes as store;
use crate::AppState;

fn render(name: &str) -> Value {
    json!({"name": name, "links": [{"rel": "self", "href": format!("/resource_classes/{name}")}]})
}

async fn existing(state: &AppState, name: &str) -> ApiResult<store::ResourceClass> {
    store::get_by_name(state.db.conn(), name)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("No such resource class {name}.")).outside_handler()
        })
}

pub async fn list(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.authorize(state, "placement:resource_classes:list")?;
    let classes = store::list(state.db.conn()).await?;
    let modified = classes
        .iter()
        .map(|c| c.updated_at.unwrap_or(c.created_at))
        .max();
    let body: Vec<Value> = classes.iter().map(|c| render(&c.name)).collect();
    let reply = Reply::json(json!({ "resource_classes": body }));
    Ok(match modified {
        Some(m) => reply.modified(m),
        None => reply.modified_now(),
    })
}

pub async fn show(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.authorize(state, "placement:resource_classes:show")?;
    let class = existing(state, req.param("name")).await?;
    Ok(Reply::json(render(&class.name)).modified(class.updated_at.unwrap_or(class.created_at)))
}

/// Creates a class in a write transaction, whose commit bumps the write
/// epoch: cached candidate snapshots then learn the new name at once.
async fn create_class(
    state: &AppState,
    name: &str,
) -> Result<Option<store::ResourceClass>, crate::storage::StorageError> {
    let tx = state.db.begin_write().await?;
    let created = store::create(&*tx, name).await?;
    tx.commit().await?;
    Ok(created)
}

pub async fn create(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.require_json()?;
    req.authorize(state, "placement:resource_classes:create")?;
    let body = req.json_body(&schema::resource_class_name())?;
    let name = body["name"].as_str().unwrap_or_default();
    let created = create_class(state, name).await;
    match created {
        Ok(Some(_)) => Ok(Reply::empty(201).header(
            "location",
            req.absolute(&format!("/resource_classes/{name}")),
        )),
        Ok(None) => Err(ApiError::conflict(format!(
            "Conflicting resource class already exists: {name}"
        ))),
        Err(err) if crate::storage::is_conflict(&err) => Err(ApiError::conflict(format!(
            "Conflicting resource class already exists: {name}"
        ))),
        Err(err) => Err(err.into()),
    }
}

pub async fn update(state: &AppState, req: &Req) -> ApiResult<Reply> {
    let name = req.param("name");
    if req.version.at_least(7) {
        req.authorize(state, "placement:resource_classes:update")?;
        let implied = json!({ "name": name });
        crate::schema::validate(&implied, &schema::resource_class_name())
            .map_err(|m| ApiError::bad_request(format!("JSON does not validate: {m}")))?;
        let location = req.absolute(&format!("/resource_classes/{name}"));
        if store::get_by_name(state.db.conn(), name).await?.is_some() {
            return Ok(Reply::empty(204).header("location", location));
        }
        let status = match create_class(state, name).await {
            Ok(Some(_)) => 201,
            Ok(None) => 204,
            Err(err) if crate::storage::is_conflict(&err) => 204,
            Err(err) => return Err(err.into()),
        };
        return Ok(Reply::empty(status).header("location", location));
    }
    req.require_json()?;
    req.authorize(state, "placement:resource_classes:update")?;
    let body = req.json_body(&schema::resource_class_name())?;
    let new_name = body["name"].as_str().unwrap_or_default();
    let class = existing(state, name).await?;
    if class.is_standard() {
        return Err(ApiError::bad_request(format!(
            "Cannot update standard resource class {name}"
        )));
    }
    if store::get_by_name(state.db.conn(), new_name)
        .await?
        .is_some()
    {
        return Err(ApiError::conflict(format!(
            "Resource class already exists: {new_name}"
        )));
    }
    let tx = state.db.begin_write().await?;
    store::rename(&*tx, class.id, new_name).await?;
    tx.commit().await?;
    Ok(Reply::json(render(new_name)))
}

pub async fn delete(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.authorize(state, "placement:resource_classes:delete")?;
    let name = req.param("name");
    let class = existing(state, name).await?;
    if class.is_standard() {
        return Err(ApiError::bad_request(format!(
            "Error in delete resource class: Cannot delete standard resource class {name}."
        )));
    }
    let tx = state.db.begin_write().await?;
    if store::in_use_by_inventory(&*tx, class.id).await? {
        return Err(ApiError::conflict(format!(
            "Error in delete resource class: Cannot delete resource class {name}. Class is in use in inventory."
        )));
    }
    store::delete(&*tx, class.id).await?;
    tx.commit().await?;
    Ok(Reply::empty(204))
}
