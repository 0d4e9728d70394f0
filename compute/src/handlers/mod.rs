//! Routing: one thin function per route, grouped by resource.

pub mod flavors;
pub mod images;
pub mod keypairs;
pub mod servers;
pub mod versions;

use actix_web::http::Method;
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::http::{Reply, Req};
use crate::AppState;

/// The collections under `/v2.1` (to recognise legacy project-id URLs).
pub fn is_collection(segment: &str) -> bool {
    matches!(
        segment,
        "servers" | "flavors" | "os-keypairs" | "images" | "os-availability-zone"
    )
}

fn not_found() -> ApiError {
    ApiError::not_found("The resource could not be found.")
}

fn method_not_allowed() -> ApiError {
    ApiError::new(405, "The method is not allowed for this resource.")
}

/// Dispatches a `/v2.1` request (segments after `v2.1`).
pub async fn route(state: &AppState, req: &Req) -> ApiResult<Reply> {
    let segments: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let m = &req.method;
    match segments.as_slice() {
        [] => crate::handlers::versions::v21(&req.base_url),
        ["flavors"] if m == Method::GET => flavors::list(state, req, false).await,
        ["flavors"] if m == Method::POST => flavors::create(state, req).await,
        ["flavors", "detail"] if m == Method::GET => flavors::list(state, req, true).await,
        ["flavors", id] if m == Method::GET => flavors::show(state, req, id).await,
        ["flavors", id] if m == Method::PUT => flavors::update(state, req, id).await,
        ["flavors", id] if m == Method::DELETE => flavors::delete(state, req, id).await,
        ["flavors", id, "os-extra_specs"] if m == Method::GET => {
            flavors::list_specs(state, req, id).await
        }
        ["flavors", id, "os-extra_specs"] if m == Method::POST => {
            flavors::create_specs(state, req, id).await
        }
        ["flavors", id, "os-extra_specs", key] if m == Method::GET => {
            flavors::show_spec(state, req, id, key).await
        }
        ["flavors", id, "os-extra_specs", key] if m == Method::PUT => {
            flavors::update_spec(state, req, id, key).await
        }
        ["flavors", id, "os-extra_specs", key] if m == Method::DELETE => {
            flavors::delete_spec(state, req, id, key).await
        }
        ["servers"] if m == Method::GET => servers::list(state, req, false).await,
        ["servers"] if m == Method::POST => servers::create(state, req).await,
        ["servers", "detail"] if m == Method::GET => servers::list(state, req, true).await,
        ["servers", id] if m == Method::GET => servers::show(state, req, id).await,
        ["servers", id] if m == Method::PUT => servers::update(state, req, id).await,
        ["servers", id] if m == Method::DELETE => servers::delete(state, req, id).await,
        ["servers", id, "action"] if m == Method::POST => servers::action(state, req, id).await,
        ["os-keypairs"] if m == Method::GET => keypairs::list(state, req).await,
        ["os-keypairs"] if m == Method::POST => keypairs::create(state, req).await,
        ["os-keypairs", name] if m == Method::GET => keypairs::show(state, req, name).await,
        ["os-keypairs", name] if m == Method::DELETE => keypairs::delete(state, req, name).await,
        ["images"] if m == Method::GET => images::nova_list(state, req, false).await,
        ["images", "detail"] if m == Method::GET => images::nova_list(state, req, true).await,
        ["images", id] if m == Method::GET => images::nova_show(state, req, id).await,
        ["os-availability-zone"] if m == Method::GET => Ok(Reply::json(json!({
            "availabilityZoneInfo": [{
                "zoneName": state.config.default_availability_zone,
                "zoneState": {"available": true},
                "hosts": null,
            }]
        }))),
        ["flavors"]
        | ["flavors", ..]
        | ["servers"]
        | ["servers", ..]
        | ["os-keypairs"]
        | ["os-keypairs", _]
        | ["images"]
        | ["images", _]
        | ["os-availability-zone"] => Err(method_not_allowed()),
        _ => Err(not_found()),
    }
}

/// `limit`/`marker` paging over an ordered list of ids: the page and
/// whether a `next` link is due. Unknown markers are Nova's 400.
pub fn page<T>(
    req: &Req,
    items: Vec<T>,
    id_of: impl Fn(&T) -> &str,
    not_found_marker: impl Fn(&str) -> ApiError,
) -> ApiResult<(Vec<T>, bool)> {
    let limit = match req.query_one("limit") {
        Some(text) => {
            let n: i64 = text.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "Invalid input for query parameters limit. Value: {text}. '{text}' does not match '^[0-9]*$'"
                ))
            })?;
            if n < 0 {
                return Err(ApiError::bad_request("limit param must be positive"));
            }
            Some(usize::try_from(n).unwrap_or(usize::MAX))
        }
        None => None,
    };
    // Nova's osapi_max_limit.
    let max = 1000usize;
    let limit = limit.unwrap_or(max).min(max);
    let mut items = items;
    if let Some(marker) = req.query_one("marker") {
        let Some(position) = items.iter().position(|item| id_of(item) == marker) else {
            return Err(not_found_marker(marker));
        };
        items.drain(..=position);
    }
    let more = items.len() > limit;
    items.truncate(limit);
    Ok((items, more && limit > 0))
}

/// `{collection}_links` with the `next` href, or nothing.
pub fn next_link(req: &Req, path: &str, last_id: Option<&str>) -> serde_json::Value {
    let Some(last) = last_id else {
        return json!([]);
    };
    let mut query: Vec<(String, String)> = req
        .query
        .iter()
        .filter(|(k, _)| k != "marker")
        .cloned()
        .collect();
    query.push(("marker".into(), last.to_string()));
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish();
    json!([{
        "rel": "next",
        "href": format!("{}/v2.1/{}/{path}?{encoded}", req.base_url, req.context.project_id),
    }])
}
