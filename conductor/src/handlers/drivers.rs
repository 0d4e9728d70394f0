//! `/v1/drivers`: the enabled hardware types.

use crate::error::{ApiError, ApiResult};
use crate::http::{Reply, Req};
use crate::storage;
use crate::AppState;

/// Conductors that are alive and have `driver` enabled.
async fn hosts_for(state: &AppState, driver: Option<&str>) -> ApiResult<Vec<String>> {
    let now = storage::now_micros();
    let timeout = state.config.heartbeat_timeout_secs as i64 * 1_000_000;
    Ok(storage::list_conductors(state.db.conn())
        .await?
        .into_iter()
        .filter(|c| c.online && now - c.updated_at < timeout)
        .filter(|c| driver.is_none_or(|d| c.drivers.iter().any(|x| x == d)))
        .map(|c| c.hostname)
        .collect())
}

pub async fn list(state: &AppState, req: &Req) -> ApiResult<Reply> {
    let detail = super::query_bool(req, "detail")?;
    let type_filter = req.query_one("type");
    crate::hardware::check_drivers_list_query(req.version, detail, type_filter)
        .map_err(|e| ApiError::new(e.status(), e.to_string()))?;
    let detail = detail.unwrap_or(false);
    let hosts = hosts_for(state, None).await?;
    Ok(Reply::json(state.registry.drivers_list(
        req.version,
        detail,
        type_filter,
        &hosts,
        &req.base_url,
    )))
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!(
        "Could not find the following driver(s) or hardware type(s): {name}."
    ))
}

pub async fn show(state: &AppState, req: &Req, name: &str) -> ApiResult<Reply> {
    let hosts = hosts_for(state, Some(name)).await?;
    state
        .registry
        .driver_show(name, req.version, &hosts, &req.base_url)
        .map(Reply::json)
        .ok_or_else(|| not_found(name))
}

pub async fn properties(state: &AppState, req: &Req, name: &str) -> ApiResult<Reply> {
    let _ = req;
    state
        .registry
        .driver_properties(name)
        .map(|props| Reply::json(serde_json::to_value(props).unwrap_or_default()))
        .ok_or_else(|| not_found(name))
}
