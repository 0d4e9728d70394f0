//! Route table and the thin handlers, one module per API resource.

pub mod aggregates;
pub mod allocation_candidates;
pub mod allocations;
pub mod inventories;
pub mod reshaper;
pub mod resource_classes;
pub mod resource_providers;
pub mod root;
pub mod traits;
pub mod usages;

use std::collections::HashMap;

use actix_web::http::Method;

use crate::error::ApiError;
use crate::http::{Handler, HandlerFuture, Req, Route, RouteMatch};
use crate::AppState;

macro_rules! handler {
    ($f:path) => {{
        fn wrapper<'a>(state: &'a AppState, req: &'a Req) -> HandlerFuture<'a> {
            Box::pin($f(state, req))
        }
        wrapper as Handler
    }};
}

/// (method, handler, minimum microversion minor)
type Methods = &'static [(&'static str, fn() -> Handler, u16)];

fn pick(
    method: &Method,
    methods: Methods,
    allowed: &'static str,
    params: HashMap<&'static str, String>,
) -> RouteMatch {
    for (name, make, min_version) in methods {
        if method.as_str() == *name {
            return RouteMatch::Found(Route {
                handler: make(),
                min_version: *min_version,
                params,
            });
        }
    }
    RouteMatch::MethodNotAllowed(allowed)
}

/// Matches a decoded path against Placement's routes.
pub fn route(method: &Method, path: &str) -> RouteMatch {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let segments: Vec<&str> = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    };
    if segments.iter().any(|s| s.is_empty()) {
        return RouteMatch::NotFound;
    }
    let mut params = HashMap::new();
    match segments.as_slice() {
        [] => pick(
            method,
            &[("GET", || handler!(root::home), 0)],
            "GET",
            params,
        ),
        ["resource_classes"] => pick(
            method,
            &[
                ("GET", || handler!(resource_classes::list), 2),
                ("POST", || handler!(resource_classes::create), 2),
            ],
            "GET, POST",
            params,
        ),
        ["resource_classes", name] => {
            params.insert("name", (*name).to_string());
            pick(
                method,
                &[
                    ("GET", || handler!(resource_classes::show), 2),
                    ("PUT", || handler!(resource_classes::update), 2),
                    ("DELETE", || handler!(resource_classes::delete), 2),
                ],
                "GET, PUT, DELETE",
                params,
            )
        }
        ["resource_providers"] => pick(
            method,
            &[
                ("GET", || handler!(resource_providers::list), 0),
                ("POST", || handler!(resource_providers::create), 0),
            ],
            "GET, POST",
            params,
        ),
        ["resource_providers", uuid, rest @ ..] => {
            params.insert("uuid", (*uuid).to_string());
            match rest {
                [] => pick(
                    method,
                    &[
                        ("GET", || handler!(resource_providers::show), 0),
                        ("DELETE", || handler!(resource_providers::delete), 0),
                        ("PUT", || handler!(resource_providers::update), 0),
                    ],
                    "GET, DELETE, PUT",
                    params,
                ),
                ["inventories"] => pick(
                    method,
                    &[
                        ("GET", || handler!(inventories::list), 0),
                        ("POST", || handler!(inventories::create), 0),
                        ("PUT", || handler!(inventories::replace_all), 0),
                        ("DELETE", || handler!(inventories::delete_all), 0),
                    ],
                    "GET, POST, PUT, DELETE",
                    params,
                ),
                ["inventories", class] => {
                    params.insert("resource_class", (*class).to_string());
                    pick(
                        method,
                        &[
                            ("GET", || handler!(inventories::show), 0),
                            ("PUT", || handler!(inventories::update), 0),
                            ("DELETE", || handler!(inventories::delete), 0),
                        ],
                        "GET, PUT, DELETE",
                        params,
                    )
                }
                ["usages"] => pick(
                    method,
                    &[("GET", || handler!(usages::for_provider), 0)],
                    "GET",
                    params,
                ),
                ["aggregates"] => pick(
                    method,
                    &[
                        ("GET", || handler!(aggregates::list), 1),
                        ("PUT", || handler!(aggregates::replace), 1),
                    ],
                    "GET, PUT",
                    params,
                ),
                ["allocations"] => pick(
                    method,
                    &[("GET", || handler!(allocations::for_provider), 0)],
                    "GET",
                    params,
                ),
                ["traits"] => pick(
                    method,
                    &[
                        ("GET", || handler!(traits::list_for_provider), 6),
                        ("PUT", || handler!(traits::replace_for_provider), 6),
                        ("DELETE", || handler!(traits::delete_for_provider), 6),
                    ],
                    "GET, PUT, DELETE",
                    params,
                ),
                _ => RouteMatch::NotFound,
            }
        }
        ["allocations"] => pick(
            method,
            &[("POST", || handler!(allocations::post_many), 13)],
            "POST",
            params,
        ),
        ["allocations", consumer] => {
            params.insert("consumer_uuid", (*consumer).to_string());
            pick(
                method,
                &[
                    ("GET", || handler!(allocations::for_consumer), 0),
                    ("PUT", || handler!(allocations::put_for_consumer), 0),
                    ("DELETE", || handler!(allocations::delete_for_consumer), 0),
                ],
                "GET, PUT, DELETE",
                params,
            )
        }
        ["traits"] => pick(
            method,
            &[("GET", || handler!(traits::list), 6)],
            "GET",
            params,
        ),
        ["traits", name] => {
            params.insert("name", (*name).to_string());
            pick(
                method,
                &[
                    ("GET", || handler!(traits::show), 6),
                    ("PUT", || handler!(traits::create), 6),
                    ("DELETE", || handler!(traits::delete), 6),
                ],
                "GET, PUT, DELETE",
                params,
            )
        }
        ["allocation_candidates"] => pick(
            method,
            &[("GET", || handler!(allocation_candidates::list), 10)],
            "GET",
            params,
        ),
        ["reshaper"] => pick(
            method,
            &[("POST", || handler!(reshaper::reshape), 30)],
            "POST",
            params,
        ),
        ["usages"] => pick(
            method,
            &[("GET", || handler!(usages::totals), 9)],
            "GET",
            params,
        ),
        _ => RouteMatch::NotFound,
    }
}

/// Looks a provider up by the `{uuid}` path parameter; upstream's 404 text.
pub async fn provider_or_404(
    state: &AppState,
    req: &Req,
) -> Result<crate::storage::providers::Provider, ApiError> {
    let uuid = req.param("uuid");
    crate::storage::providers::get_by_uuid(state.db.conn(), uuid)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("No resource provider with uuid {uuid} found"))
                .outside_handler()
        })
}
