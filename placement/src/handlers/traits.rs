//! `/traits` and `/resource_providers/{uuid}/traits`.

use std::collections::BTreeSet;

use ferrite_resource_classes::names::INVALID_TRAIT_MESSAGE;
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::handlers::provider_or_404;
use crate::http::{Reply, Req};
use crate::schema;
use crate::storage::{providers, traits as store};
use crate::AppState;

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("No such trait(s): {name}."))
}

pub async fn list(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.authorize(state, "placement:traits:list")?;
    req.validate_query(&schema::query(
        &[
            ("name", schema::query_string()),
            ("associated", schema::query_string()),
        ],
        &[],
    ))?;
    let mut filter = store::TraitFilter::default();
    if let Some(name) = req.query_one("name") {
        let Some((op, value)) = name.split_once(':') else {
            return Err(ApiError::bad_request(format!(
                "Badly formatted name parameter. Expected name query string parameter in form: ?name=[in|startswith]:[name1,name2|prefix]. Got: \"{name}\""
            )));
        };
        match op {
            "in" => filter.name_in = Some(value.split(',').map(str::to_string).collect()),
            "startswith" => filter.name_prefix = Some(value.to_string()),
            _ => {}
        }
    }
    if let Some(associated) = req.query_one("associated") {
        filter.associated = match associated.to_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                return Err(ApiError::bad_request(
                    "The query parameter \"associated\" only accepts \"true\" or \"false\"",
                ))
            }
        };
    }
    let traits = store::list(state.db.conn(), &filter).await?;
    let modified = traits
        .iter()
        .map(|t| t.updated_at.unwrap_or(t.created_at))
        .max();
    let names: Vec<&str> = traits.iter().map(|t| t.name.as_str()).collect();
    let reply = Reply::json(json!({ "traits": names }));
    Ok(match modified {
        Some(m) => reply.modified(m),
        None => reply.modified_now(),
    })
}

pub async fn show(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.authorize(state, "placement:traits:show")?;
    let name = req.param("name");
    let found = store::get_by_name(state.db.conn(), name)
        .await?
        .ok_or_else(|| not_found(name))?;
    Ok(Reply::empty(204).modified(found.created_at))
}

pub async fn create(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.authorize(state, "placement:traits:update")?;
    let name = req.param("name");
    if ferrite_resource_classes::validate_custom_trait(name).is_err() {
        return Err(ApiError::bad_request(INVALID_TRAIT_MESSAGE));
    }
    let location = req.absolute(&format!("/traits/{name}"));
    if let Some(found) = store::get_by_name(state.db.conn(), name).await? {
        return Ok(Reply::empty(204)
            .header("location", location)
            .modified(found.created_at));
    }
    // In a write transaction: its commit bumps the write epoch, so cached
    // candidate snapshots know the new trait at once.
    let created = async {
        let tx = state.db.begin_write().await?;
        let created = store::create(&*tx, name).await?;
        tx.commit().await?;
        Ok::<_, crate::storage::StorageError>(created)
    };
    match created.await {
        Ok(created) => Ok(Reply::empty(201)
            .header("location", location)
            .modified(created.created_at)),
        Err(err) if crate::storage::is_conflict(&err) => Ok(Reply::empty(204)
            .header("location", location)
            .modified_now()),
        Err(err) => Err(err.into()),
    }
}

pub async fn delete(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.authorize(state, "placement:traits:delete")?;
    let name = req.param("name");
    let found = store::get_by_name(state.db.conn(), name)
        .await?
        .ok_or_else(|| not_found(name))?;
    if !name.starts_with("CUSTOM_") {
        return Err(ApiError::bad_request(format!(
            "Cannot delete standard trait {name}."
        )));
    }
    let tx = state.db.begin_write().await?;
    if store::in_use(&*tx, found.id).await? {
        return Err(ApiError::conflict(format!(
            "The trait {name} is in use by a resource provider."
        )));
    }
    if store::delete(&*tx, found.id).await? == 0 {
        return Err(not_found(name));
    }
    tx.commit().await?;
    Ok(Reply::empty(204))
}

fn traits_reply(names: Vec<String>, generation: i64, modified: Option<i64>) -> Reply {
    let reply = Reply::json(json!({
        "traits": names,
        "resource_provider_generation": generation,
    }));
    match modified {
        Some(m) => reply.modified(m),
        None => reply.modified_now(),
    }
}

pub async fn list_for_provider(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.authorize(state, "placement:resource_providers:traits:list")?;
    let provider = provider_or_404(state, req)
        .await
        .map_err(|e| ApiError::not_found(format!("{}: {}", e.detail, e.detail)))?;
    let traits = store::of_provider(state.db.conn(), provider.id).await?;
    let modified = traits
        .iter()
        .map(|t| t.updated_at.unwrap_or(t.created_at))
        .max();
    Ok(traits_reply(
        traits.into_iter().map(|t| t.name).collect(),
        provider.generation,
        modified,
    ))
}

pub async fn replace_for_provider(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.authorize(state, "placement:resource_providers:traits:update")?;
    let body = req.json_body(&schema::provider_traits())?;
    let generation = body["resource_provider_generation"].as_i64().unwrap_or(-1);
    let wanted: BTreeSet<String> = body["traits"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let provider = provider_or_404(state, req).await?;
    if provider.generation != generation {
        return Err(generation_changed());
    }
    let tx = state.db.begin_write().await?;
    let ids = store::ids_by_name(&*tx, &wanted).await?;
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|n| !ids.contains_key(*n))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::bad_request(format!(
            "No such trait {}",
            missing.join(", ")
        )));
    }
    let id_list: Vec<i64> = wanted.iter().filter_map(|n| ids.get(n).copied()).collect();
    // Setting the traits a provider already has changes nothing: upstream
    // then leaves the generation alone, and so do we.
    let existing: BTreeSet<i64> = store::of_provider(&*tx, provider.id)
        .await?
        .into_iter()
        .map(|t| t.id)
        .collect();
    if existing == id_list.iter().copied().collect::<BTreeSet<i64>>() {
        return Ok(traits_reply(wanted.into_iter().collect(), generation, None));
    }
    store::replace_for_provider(&*tx, provider.id, &id_list).await?;
    if !providers::bump_generation(&*tx, provider.id, generation).await? {
        return Err(generation_changed());
    }
    tx.commit().await?;
    Ok(traits_reply(
        wanted.into_iter().collect(),
        generation + 1,
        None,
    ))
}

pub async fn delete_for_provider(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.authorize(state, "placement:resource_providers:traits:delete")?;
    let provider = provider_or_404(state, req).await?;
    let tx = state.db.begin_write().await?;
    // No traits to remove: nothing changes, not even the generation.
    if store::of_provider(&*tx, provider.id).await?.is_empty() {
        return Ok(Reply::empty(204));
    }
    store::replace_for_provider(&*tx, provider.id, &[]).await?;
    if !providers::bump_generation(&*tx, provider.id, provider.generation).await? {
        return Err(ApiError::concurrent_update(
            "Another thread concurrently updated the data. Please retry your update",
        ));
    }
    tx.commit().await?;
    Ok(Reply::empty(204))
}

pub fn generation_changed() -> ApiError {
    ApiError::concurrent_update(
        "Resource provider's generation already changed. Please update the generation and try again.",
    )
}
