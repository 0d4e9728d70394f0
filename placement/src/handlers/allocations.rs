//! `/allocations/{consumer_uuid}`, `POST /allocations` and
//! `/resource_providers/{uuid}/allocations`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::http::{Reply, Req};
use crate::schema::{self, AllocationShape};
use crate::storage::allocations::{self as store, ConsumerWrite, WriteError};
use crate::storage::providers;
use crate::AppState;

fn modified(rows: &[store::AllocationRow]) -> Option<i64> {
    rows.iter().map(|r| r.modified).max()
}

pub async fn for_consumer(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.authorize(state, "placement:allocations:list")?;
    let consumer_uuid = req.param("consumer_uuid");
    let rows = store::for_consumer(state.db.conn(), consumer_uuid).await?;
    let mut by_provider: BTreeMap<String, (i64, Map<String, Value>)> = BTreeMap::new();
    for row in &rows {
        let entry = by_provider
            .entry(row.provider_uuid.clone())
            .or_insert_with(|| (row.provider_generation, Map::new()));
        entry.1.insert(row.resource_class.clone(), json!(row.used));
    }
    let allocations: Map<String, Value> = by_provider
        .into_iter()
        .map(|(uuid, (generation, resources))| {
            (
                uuid,
                json!({"resources": resources, "generation": generation}),
            )
        })
        .collect();
    let mut body = json!({ "allocations": allocations });
    if !rows.is_empty() && req.version.at_least(12) {
        if let Some(consumer) = store::consumer(state.db.conn(), consumer_uuid).await? {
            body["project_id"] = json!(consumer.project_id);
            body["user_id"] = json!(consumer.user_id);
            if req.version.at_least(28) {
                body["consumer_generation"] = json!(consumer.generation);
            }
            if req.version.at_least(38) {
                body["consumer_type"] =
                    json!(consumer.consumer_type.unwrap_or_else(|| "unknown".into()));
            }
        }
    }
    let reply = Reply::json(body);
    Ok(match modified(&rows) {
        Some(m) => reply.modified(m),
        None => reply.modified_now(),
    })
}

pub async fn for_provider(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.authorize(state, "placement:resource_providers:allocations:list")?;
    let uuid = req.param("uuid");
    let provider = providers::get_by_uuid(state.db.conn(), uuid)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Resource provider '{uuid}' not found: No resource provider with uuid {uuid} found"
            ))
        })?;
    let rows = store::for_provider(state.db.conn(), provider.id).await?;
    let mut by_consumer: BTreeMap<String, (Option<i64>, Map<String, Value>)> = BTreeMap::new();
    for row in &rows {
        let entry = by_consumer
            .entry(row.consumer_uuid.clone())
            .or_insert_with(|| (row.consumer_generation, Map::new()));
        entry.1.insert(row.resource_class.clone(), json!(row.used));
    }
    let with_generation = req.version.at_least(28);
    let allocations: Map<String, Value> = by_consumer
        .into_iter()
        .map(|(uuid, (generation, resources))| {
            let mut item = json!({ "resources": resources });
            if with_generation {
                item["consumer_generation"] = json!(generation);
            }
            (uuid, item)
        })
        .collect();
    let reply = Reply::json(json!({
        "allocations": allocations,
        "resource_provider_generation": provider.generation,
    }));
    Ok(match modified(&rows) {
        Some(m) => reply.modified(m),
        None => reply.modified_now(),
    })
}

pub fn shape(req: &Req, always_allow_empty: bool) -> AllocationShape {
    let v = req.version;
    AllocationShape {
        allow_empty: always_allow_empty || v.at_least(28),
        consumer_generation: v.at_least(28),
        mappings: v.at_least(34),
        consumer_type: v.at_least(38),
    }
}

/// Reads one consumer's dict-form body into a write.
pub fn consumer_write(state: &AppState, req: &Req, consumer: &str, body: &Value) -> ConsumerWrite {
    let mut allocations = Vec::new();
    if let Some(map) = body["allocations"].as_object() {
        for (provider, item) in map {
            if let Some(resources) = item["resources"].as_object() {
                for (class, amount) in resources {
                    allocations.push((
                        provider.to_lowercase(),
                        class.clone(),
                        amount.as_i64().unwrap_or(0),
                    ));
                }
            }
        }
    }
    write_from(state, req, consumer, body, allocations)
}

fn write_from(
    state: &AppState,
    req: &Req,
    consumer: &str,
    body: &Value,
    allocations: Vec<(String, String, i64)>,
) -> ConsumerWrite {
    let (project_id, user_id) = match (body["project_id"].as_str(), body["user_id"].as_str()) {
        (Some(p), Some(u)) => (p.to_string(), u.to_string()),
        _ => (
            state.config.incomplete_consumer_project_id.clone(),
            state.config.incomplete_consumer_user_id.clone(),
        ),
    };
    ConsumerWrite {
        consumer: consumer.to_string(),
        project_id,
        user_id,
        expected_generation: req
            .version
            .at_least(28)
            .then(|| body["consumer_generation"].as_i64()),
        consumer_type: body["consumer_type"].as_str().map(str::to_string),
        allocations,
    }
}

pub fn write_error(err: WriteError, class_missing_prefix: String) -> ApiError {
    match err {
        WriteError::ConsumerGeneration { .. } => ApiError::concurrent_update(err.to_string()),
        WriteError::ProviderMissing(_) => ApiError::bad_request(err.to_string()),
        WriteError::ClassMissing(_) => {
            ApiError::bad_request(format!("{class_missing_prefix}{err}"))
        }
        WriteError::Claim(claim) => {
            ApiError::conflict(format!("Unable to allocate inventory: {claim}"))
        }
        WriteError::Concurrent => ApiError::concurrent_update(format!(
            "Inventory and/or allocations changed while attempting to allocate: {err}"
        )),
        WriteError::Storage(storage) => storage.into(),
    }
}

pub async fn put_for_consumer(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.require_json()?;
    req.authorize(state, "placement:allocations:update")?;
    let raw = req.param("consumer_uuid");
    let Ok(parsed) = uuid::Uuid::parse_str(raw) else {
        return Err(ApiError::bad_request(format!(
            "Malformed consumer_uuid: {raw}"
        )));
    };
    let consumer = parsed.to_string();
    let v = req.version;
    let write = if v.at_least(12) {
        let body = req.json_body(&schema::consumer_allocations(shape(req, false)))?;
        consumer_write(state, req, &consumer, &body)
    } else {
        let body = req.json_body(&schema::allocations_list_form(v.at_least(8)))?;
        let mut allocations = Vec::new();
        for item in body["allocations"].as_array().into_iter().flatten() {
            let provider = item["resource_provider"]["uuid"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase();
            for (class, amount) in item["resources"].as_object().into_iter().flatten() {
                allocations.push((
                    provider.clone(),
                    class.clone(),
                    amount.as_i64().unwrap_or(0),
                ));
            }
        }
        write_from(state, req, &consumer, &body, allocations)
    };
    store::replace(&state.db, &[write]).await.map_err(|e| {
        write_error(
            e,
            format!("Unable to allocate inventory for consumer {consumer}: "),
        )
    })?;
    Ok(Reply::empty(204))
}

pub async fn post_many(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.require_json()?;
    req.authorize(state, "placement:allocations:manage")?;
    let body = req.json_body(&schema::allocations_by_consumer(shape(req, true), 1))?;
    let mut writes = Vec::new();
    if let Some(map) = body.as_object() {
        for (consumer, item) in map {
            let consumer = uuid::Uuid::parse_str(consumer)
                .map_or_else(|_| consumer.clone(), |u| u.to_string());
            writes.push(consumer_write(state, req, &consumer, item));
        }
    }
    store::replace(&state.db, &writes)
        .await
        .map_err(|e| write_error(e, "Unable to allocate inventory ".to_string()))?;
    Ok(Reply::empty(204))
}

pub async fn delete_for_consumer(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.authorize(state, "placement:allocations:delete")?;
    let consumer = req.param("consumer_uuid");
    let removed = store::delete_consumer(&state.db, consumer)
        .await
        .map_err(|e| write_error(e, String::new()))?;
    if !removed {
        return Err(ApiError::not_found(format!(
            "No allocations for consumer '{consumer}'"
        )));
    }
    Ok(Reply::empty(204))
}
