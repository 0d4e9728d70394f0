//! `/resource_providers/{uuid}/aggregates`.

use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::handlers::provider_or_404;
use crate::handlers::traits::generation_changed;
use crate::http::{Reply, Req};
use crate::schema;
use crate::storage::providers;
use crate::AppState;

fn reply(req: &Req, aggregates: &[String], generation: i64) -> Reply {
    let mut body = json!({ "aggregates": aggregates });
    if req.version.at_least(19) {
        body["resource_provider_generation"] = json!(generation);
    }
    Reply::json(body).modified_now()
}

pub async fn list(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.authorize(state, "placement:resource_providers:aggregates:list")?;
    let provider = provider_or_404(state, req).await?;
    let aggregates = providers::aggregates(state.db.conn(), provider.id).await?;
    Ok(reply(req, &aggregates, provider.generation))
}

pub async fn replace(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.require_json()?;
    req.authorize(state, "placement:resource_providers:aggregates:update")?;
    let with_generation = req.version.at_least(19);
    let provider = provider_or_404(state, req).await?;
    let body = req.json_body(&schema::aggregates(with_generation))?;
    let list = if with_generation {
        if body["resource_provider_generation"].as_i64() != Some(provider.generation) {
            return Err(generation_changed());
        }
        &body["aggregates"]
    } else {
        &body
    };
    let uuids: Vec<String> = list
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let tx = state.db.begin_write().await?;
    providers::replace_aggregates(&*tx, provider.id, &uuids).await?;
    let mut generation = provider.generation;
    if with_generation {
        if !providers::bump_generation(&*tx, provider.id, provider.generation).await? {
            return Err(ApiError::concurrent_update(
                "Update conflict: Another thread concurrently updated the data. Please retry your update",
            ));
        }
        generation += 1;
    } else {
        providers::touch(&*tx, &[provider.id]).await?;
    }
    tx.commit().await?;
    Ok(reply(req, &uuids, generation))
}
