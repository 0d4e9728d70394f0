//! The command API (ironic-python-agent's, port 9999 upstream): routing,
//! agent token checks and IPA's error bodies.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use crate::commands;
use crate::errors::{fault, CommandError};
use crate::Shared;

const CUSTOM_MEDIA_TYPE: &str = "application/vnd.openstack.ironic-python-agent.v1+json";
const DOCS_URL: &str = "https://docs.openstack.org/ironic-python-agent";
/// The header carrying the agent token on command requests.
pub const AGENT_TOKEN_HEADER: &str = "X-Agent-Token";

fn reply(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(body.to_string())
}

fn ok(body: &Value) -> HttpResponse {
    reply(StatusCode::OK, body)
}

/// An HTTP-level error as the WSGI framework upstream renders it:
/// "<code> <reason>: <description>".
fn http_error(status: StatusCode, description: &str) -> HttpResponse {
    let text = format!(
        "{} {}: {description}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    reply(status, &fault(status.as_u16(), &text))
}

fn rest_error(err: &CommandError) -> HttpResponse {
    let status = StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    reply(status, &err.fault())
}

fn query_param(req: &HttpRequest, key: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn wants_wait(req: &HttpRequest) -> bool {
    query_param(req, "wait").is_some_and(|w| w.eq_ignore_ascii_case("true"))
}

fn url_root(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

fn link(href: String, rel: &str) -> Value {
    json!({ "href": href, "rel": rel })
}

fn version(url: &str) -> Value {
    json!({
        "id": "v1",
        "links": [
            link(format!("{url}/v1"), "self"),
            json!({ "href": format!("{DOCS_URL}/"), "rel": "describedby", "type": "text/html" }),
        ],
    })
}

fn root(req: &HttpRequest) -> HttpResponse {
    let url = url_root(req);
    ok(&json!({
        "name": "OpenStack Ironic Python Agent API",
        "description": "Ironic Python Agent is a provisioning agent for OpenStack Ironic",
        "versions": [version(&url)],
        "default_version": version(&url),
    }))
}

fn v1(req: &HttpRequest) -> HttpResponse {
    let url = url_root(req);
    let mut body = json!({
        "commands": [link(format!("{url}/v1/commands"), "self"), link(format!("{url}/commands"), "bookmark")],
        "status": [link(format!("{url}/v1/status"), "self"), link(format!("{url}/status"), "bookmark")],
        "media_types": [{ "base": "application/json", "type": CUSTOM_MEDIA_TYPE }],
    });
    if let (Some(map), Value::Object(v)) = (body.as_object_mut(), version(&url)) {
        map.extend(v);
    }
    ok(&body)
}

enum Route {
    Root,
    V1,
    Status,
    Commands,
    Command(String),
}

fn route(path: &str) -> Option<Route> {
    let path = path.strip_prefix("/v1").map_or(path, |rest| {
        if rest.is_empty() || rest.starts_with('/') {
            rest
        } else {
            path
        }
    });
    match path {
        "" => Some(Route::V1),
        "/" => None,
        "/status" | "/status/" => Some(Route::Status),
        "/commands" | "/commands/" => Some(Route::Commands),
        other => other
            .strip_prefix("/commands/")
            .map(|id| id.trim_end_matches('/'))
            .filter(|id| !id.is_empty() && !id.contains('/'))
            .map(|id| Route::Command(id.to_string())),
    }
}

/// The single entry point: every request of the command API.
pub async fn entry(req: HttpRequest, body: Bytes, shared: Data<Arc<Shared>>) -> HttpResponse {
    let shared: &Arc<Shared> = &shared;
    let method = req.method().as_str().to_string();
    let path = req.path().to_string();
    let found = match path.as_str() {
        "/" => Some(Route::Root),
        "/v1/" | "/v1" => Some(Route::V1),
        other => route(other),
    };
    let Some(found) = found else {
        return http_error(
            StatusCode::NOT_FOUND,
            "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.",
        );
    };
    let allowed: &[&str] = match found {
        Route::Commands => &["GET", "HEAD", "POST"],
        _ => &["GET", "HEAD"],
    };
    if !allowed.contains(&method.as_str()) {
        let mut response = http_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "The method is not allowed for the requested URL.",
        );
        if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allowed.join(", ")) {
            response
                .headers_mut()
                .insert(actix_web::http::header::ALLOW, value);
        }
        return response;
    }
    match found {
        Route::Root => root(&req),
        Route::V1 => v1(&req),
        Route::Status => {
            ok(&json!({ "started_at": shared.started_at, "version": crate::AGENT_VERSION }))
        }
        Route::Commands | Route::Command(_) => {
            // Our conductor sends the token in a header; upstream's
            // conductor in the query string, which is still accepted.
            let token = req
                .headers()
                .get(AGENT_TOKEN_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .or_else(|| query_param(&req, "agent_token"));
            if !shared.validate_token(token.as_deref()) {
                shared.log.warn(format!(
                    "refused {method} {path}: missing or invalid agent token"
                ));
                return http_error(StatusCode::UNAUTHORIZED, "Token invalid.");
            }
            match found {
                Route::Command(id) => get_command(shared, &req, &id).await,
                _ if method == "POST" => run_command(shared, &req, &body).await,
                _ => {
                    let list: Vec<Value> =
                        shared.commands.all().iter().map(|c| c.to_json()).collect();
                    ok(&json!({ "commands": list }))
                }
            }
        }
    }
}

async fn get_command(shared: &Arc<Shared>, req: &HttpRequest, id: &str) -> HttpResponse {
    let Some(command) = shared.commands.get(id) else {
        return rest_error(&CommandError::not_found("Command Result", id));
    };
    if wants_wait(req) {
        command.join().await;
    }
    ok(&command.to_json())
}

async fn run_command(shared: &Arc<Shared>, req: &HttpRequest, body: &Bytes) -> HttpResponse {
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(err) => {
            return http_error(
                StatusCode::BAD_REQUEST,
                &format!("Failed to decode JSON object: {err}"),
            )
        }
    };
    let name = parsed.get("name").and_then(Value::as_str);
    let params = parsed.get("params").and_then(Value::as_object);
    let (Some(name), Some(params)) = (name, params) else {
        return http_error(StatusCode::BAD_REQUEST, "Missing or invalid name or params");
    };
    let params: Map<String, Value> = params.clone();
    match commands::execute(shared, name, params).await {
        Ok(command) => {
            if wants_wait(req) {
                command.join().await;
            }
            ok(&command.to_json())
        }
        Err(err) => rest_error(&err),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(route("/v1/status"), Some(Route::Status)));
        assert!(matches!(route("/status"), Some(Route::Status)));
        assert!(matches!(route("/v1/commands/"), Some(Route::Commands)));
        assert!(matches!(route("/commands"), Some(Route::Commands)));
        assert!(matches!(route("/v1/commands/abc"), Some(Route::Command(id)) if id == "abc"));
        assert!(route("/v1/nope").is_none());
        assert!(route("/v1x/status").is_none());
        assert!(route("/v1/commands/a/b").is_none());
    }
}
