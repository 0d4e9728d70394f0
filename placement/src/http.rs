//! The HTTP edge: one entry point that does what upstream's middleware stack
//! does (request ids, CORS, noauth2, microversions, routing with 404/405),
//! calls a handler, and renders its result or error.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::handlers;
use crate::microversion::{self, Version};
use crate::policy::{Credentials, Target};
use crate::AppState;

/// A request after the edge has authenticated and versioned it.
pub struct Req {
    pub method: Method,
    pub path: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    pub headers: actix_web::http::header::HeaderMap,
    pub body: web::Bytes,
    pub version: Version,
    pub creds: Credentials,
    /// Path parameters by name.
    pub params: HashMap<&'static str, String>,
    /// Scheme and authority `Location` headers are built on.
    pub link_base: String,
    /// Bounds of JSON bodies.
    pub json_limits: ferrite_service_kit::JsonLimits,
}

impl Req {
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name).map(String::as_str).unwrap_or("")
    }

    /// All values of a query parameter.
    pub fn query_all(&self, name: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The last value of a query parameter (webob's `GET[name]`).
    pub fn query_one(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// An absolute URL for `path` on this server (for `Location`).
    pub fn absolute(&self, path: &str) -> String {
        format!("{}{path}", self.link_base)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Checks a policy rule with the default target (the caller's project).
    pub fn authorize(&self, state: &AppState, action: &str) -> ApiResult<()> {
        let mut target = Target::new();
        if let Some(project) = &self.creds.project_id {
            target.insert("project_id", project.clone());
        }
        target.insert("user_id", self.creds.user_id.clone());
        state
            .policy
            .authorize(action, &self.creds, &target)
            .map_err(ApiError::outside_handler)
    }

    /// Upstream's `require_content('application/json')`.
    pub fn require_json(&self) -> ApiResult<()> {
        let content_type = self.header("content-type").unwrap_or("");
        let media = content_type.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/json") {
            return Ok(());
        }
        let shown = if media.is_empty() { "None" } else { media };
        let mut err = ApiError::new(
            415,
            format!("The media type {shown} is not supported, use application/json"),
        );
        err.content_type = Some(shown.to_string());
        Err(err)
    }

    /// Parses and validates the JSON body against `schema`.
    pub fn json_body(&self, schema: &Value) -> ApiResult<Value> {
        let text = std::str::from_utf8(&self.body)
            .map_err(|e| ApiError::bad_request(format!("Malformed JSON: {e}")))?;
        let value: Value = serde_json::from_str(text).map_err(|e| {
            // Python's explanation, as upstream gives it; serde_json's when
            // the Python-style scan finds nothing to say.
            let reason = crate::pyjson::describe_error(text).unwrap_or_else(|| e.to_string());
            ApiError::bad_request(format!("Malformed JSON: {reason}"))
        })?;
        self.json_limits
            .check(&value)
            .map_err(|v| ApiError::bad_request(format!("JSON does not validate: {v}")))?;
        crate::schema::validate(&value, schema)
            .map_err(|m| ApiError::bad_request(format!("JSON does not validate: {m}")))?;
        if contains_nul(&value) {
            // No database stores NUL in text; refuse it at the edge.
            return Err(ApiError::bad_request(
                "JSON does not validate: NUL characters are not allowed in strings",
            ));
        }
        Ok(value)
    }

    /// Validates the query string as upstream does: the parameters as a
    /// JSON object (the last value of a repeated key) against `schema`.
    pub fn validate_query(&self, schema: &Value) -> ApiResult<()> {
        let mut object = serde_json::Map::new();
        for (key, value) in &self.query {
            object.insert(key.clone(), Value::String(value.clone()));
        }
        crate::schema::validate(&Value::Object(object), schema)
            .map_err(|m| ApiError::bad_request(format!("Invalid query string parameters: {m}")))
    }
}

fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

/// What a handler returns.
pub struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
    /// Microseconds since the epoch; rendered as `last-modified` (with
    /// `cache-control: no-cache`) when the microversion is at least 1.15.
    pub last_modified: Option<i64>,
}

impl Reply {
    pub fn json(body: Value) -> Reply {
        Reply {
            status: 200,
            body: Some(body),
            headers: Vec::new(),
            last_modified: None,
        }
    }
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            body: None,
            headers: Vec::new(),
            last_modified: None,
        }
    }
    pub fn status(mut self, status: u16) -> Reply {
        self.status = status;
        self
    }
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
    pub fn modified(mut self, micros: i64) -> Reply {
        self.last_modified = Some(micros);
        self
    }
    pub fn modified_now(self) -> Reply {
        self.modified(crate::storage::now_micros())
    }
}

pub type HandlerFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = ApiResult<Reply>> + 'a>>;
pub type Handler = for<'a> fn(&'a AppState, &'a Req) -> HandlerFuture<'a>;

/// A matched route: the handler and the minimum microversion it needs.
pub struct Route {
    pub handler: Handler,
    pub min_version: u16,
    pub params: HashMap<&'static str, String>,
}

pub enum RouteMatch {
    Found(Route),
    NotFound,
    MethodNotAllowed(&'static str),
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

fn parse_query(raw: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn http_date(micros: i64) -> String {
    let secs = (micros / 1_000_000).max(0) as u64;
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// The single actix service.
pub async fn entry(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<Arc<AppState>>,
) -> HttpResponse {
    let request_id = format!("req-{}", uuid::Uuid::new_v4());
    let state: &AppState = &state;
    let cors = crate::cors::Cors::new(&state.config);
    if let Some(preflight) = cors.preflight(&request) {
        return preflight;
    }
    let mut response = serve(state, &request, payload, &request_id).await;
    let headers = response.headers_mut();
    if let Ok(value) = request_id.parse() {
        headers.insert(
            actix_web::http::header::HeaderName::from_static("x-openstack-request-id"),
            value,
        );
    }
    cors.decorate(&request, headers);
    response
}

/// The largest body a route takes: bulk allocations and reshapes may be
/// large; every other document is small.
pub fn body_limit(config: &crate::Config, method: &Method, path: &str) -> usize {
    let bulk = *method == Method::POST
        && matches!(path.trim_end_matches('/'), "/allocations" | "/reshaper");
    if bulk {
        config.max_bulk_body_bytes
    } else {
        config.max_request_body_bytes
    }
}

async fn serve(
    state: &AppState,
    request: &HttpRequest,
    payload: web::Payload,
    request_id: &str,
) -> HttpResponse {
    let method = request.method().clone();
    let raw_path = request.uri().path();
    let path = percent_decode(raw_path);
    let accept = request
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let error_response = |err: ApiError, version: Option<Version>| {
        render_error_for(&err, version, request_id, accept)
    };

    if let Err(retry) = state.limiter.check(request.peer_addr().map(|a| a.ip())) {
        tracing::info!(
            peer = ?request.peer_addr(),
            path = %ferrite_service_kit::Escaped(&path),
            "client over its rate limit"
        );
        let mut err = ApiError::new(
            429,
            format!(
                "Too many requests from this client; retry after {} seconds.",
                retry.0
            ),
        );
        err.headers.push(("retry-after", retry.0.to_string()));
        return error_response(err, None);
    }

    // Authentication (noauth2); the root document is public.
    let is_root = path == "/" || path.is_empty();
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    let creds = if is_root {
        Credentials::default()
    } else {
        match Credentials::from_headers(
            header("x-auth-token"),
            header("x-roles"),
            header("x-project-id").or_else(|| header("x-tenant-id")),
            header("openstack-system-scope"),
        ) {
            Some(creds) => creds,
            None => return unauthorized(),
        }
    };

    // Microversion negotiation.
    let requested = microversion::requested_version(
        request
            .headers()
            .get_all("openstack-api-version")
            .filter_map(|v| v.to_str().ok()),
    );
    let version = match microversion::negotiate(requested.as_deref()) {
        Ok(version) => version,
        Err(mut err) => {
            err.content_type = Some(header("accept").unwrap_or("*/*").to_string());
            let mut response = render_error_for(&err, None, request_id, accept);
            if err.status == 406 && error_flavour(accept) == ErrorFlavour::Json {
                let body = err.body(
                    false,
                    request_id,
                    Some((microversion::MIN_STR, microversion::MAX_STR)),
                );
                response = HttpResponse::build(StatusCode::NOT_ACCEPTABLE)
                    .content_type("application/json")
                    .body(body.to_string());
            }
            return response;
        }
    };

    if let Err(message) = state.config.query_limits.check(request.query_string()) {
        return error_response(ApiError::bad_request(message), Some(version));
    }
    let body = match ferrite_service_kit::read_body(
        payload,
        ferrite_service_kit::body::content_length(request),
        body_limit(&state.config, &method, &path),
    )
    .await
    {
        Ok(body) => body,
        Err(err @ ferrite_service_kit::BodyError::TooLarge { .. }) => {
            return error_response(ApiError::new(413, err.to_string()), Some(version))
        }
        Err(err) => return error_response(ApiError::bad_request(err.to_string()), Some(version)),
    };

    // Content-length without content-type is refused, as upstream does.
    if !body.is_empty() && header("content-type").is_none_or(|c| c.trim().is_empty()) {
        return error_response(
            ApiError::bad_request("content-type header required when content-length > 0")
                .outside_handler(),
            Some(version),
        );
    }

    let route = match handlers::route(&method, &path) {
        RouteMatch::Found(route) => route,
        RouteMatch::NotFound => {
            // Upstream's router raises a bare 404: no detail of its own.
            return error_response(ApiError::not_found("").outside_handler(), Some(version));
        }
        RouteMatch::MethodNotAllowed(allowed) => {
            let mut err = ApiError::new(
                405,
                "The method specified is not allowed for this resource.",
            );
            err.method = Some(method.to_string());
            err.headers.push(("allow", allowed.to_string()));
            return error_response(err, Some(version));
        }
    };
    if !version.at_least(route.min_version) {
        return error_response(
            ApiError::not_found("The resource could not be found."),
            Some(version),
        );
    }

    let query = parse_query(request.query_string());
    if path.contains('\0')
        || query
            .iter()
            .any(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return error_response(
            ApiError::bad_request("NUL characters are not allowed in the URL"),
            Some(version),
        );
    }
    let req = Req {
        method,
        path,
        query,
        headers: request.headers().clone(),
        body,
        version,
        creds,
        params: route.params,
        link_base: ferrite_service_kit::LinkBase {
            public_endpoint: None,
            trust_host_header: state.config.trust_host_header,
        }
        .for_request(request),
        json_limits: state.config.json_limits,
    };
    // Accept negotiation: JSON only.
    if let Some(accept) = req.header("accept") {
        if !accepts_json(accept) && req.method == Method::GET {
            let mut err = ApiError::new(406, "Only application/json is provided");
            err.content_type = Some(accept.to_string());
            return error_response(err, Some(version));
        }
    }
    match (route.handler)(state, &req).await {
        Ok(reply) => render_reply(reply, version),
        Err(err) => error_response(err, Some(version)),
    }
}

/// A request without a token. Upstream's auth middleware answers before
/// Placement's own error formatting (and microversion handling) is reached,
/// with the web framework's stock JSON error document; so do we.
fn unauthorized() -> HttpResponse {
    let body = serde_json::json!({
        "code": "401 Unauthorized",
        "title": "Unauthorized",
        "message": "This server could not verify that you are authorized to access the document you requested. Either you supplied the wrong credentials (e.g., bad password), or your browser does not understand how to supply the credentials required.<br /><br />\n\n\n",
    });
    HttpResponse::build(StatusCode::UNAUTHORIZED)
        .content_type("application/json")
        .body(body.to_string())
}

fn accepts_json(accept: &str) -> bool {
    accept.split(',').any(|item| {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let zero_q = parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=")
                .is_some_and(|q| q.trim().parse::<f64>().is_ok_and(|q| q == 0.0))
        });
        !zero_q
            && (media == "application/json"
                || media == "application/*"
                || media == "*/*"
                || media.is_empty())
    })
}

fn version_headers(builder: &mut HttpResponseBuilder, version: Version, vary: bool) {
    builder.insert_header(("openstack-api-version", format!("placement {version}")));
    if vary {
        builder.insert_header(("vary", "openstack-api-version"));
    }
}

fn render_reply(reply: Reply, version: Version) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let mut builder = HttpResponse::build(status);
    version_headers(&mut builder, version, true);
    for (name, value) in &reply.headers {
        builder.insert_header((*name, value.as_str()));
    }
    if let Some(micros) = reply.last_modified {
        if version.at_least(15) {
            builder.insert_header(("last-modified", http_date(micros)));
            builder.insert_header(("cache-control", "no-cache"));
        }
    }
    match reply.body {
        Some(body) => builder
            .content_type("application/json")
            .body(body.to_string()),
        None => builder.finish(),
    }
}

/// How an error is rendered, following the client's `accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFlavour {
    Json,
    Html,
    Plain,
}

/// Upstream's choice: no `accept` (or exactly `*/*`) means JSON; otherwise
/// the better of `text/html` and `application/json` by quality (HTML wins
/// a tie), and plain text when neither is acceptable.
pub fn error_flavour(accept: &str) -> ErrorFlavour {
    let accept = accept.trim();
    if accept.is_empty() || accept == "*/*" {
        return ErrorFlavour::Json;
    }
    // The quality the header gives `offer`: that of its most specific match.
    let quality = |offer: &str| -> f64 {
        let (kind, _) = offer.split_once('/').unwrap_or((offer, ""));
        let mut best: Option<(u8, f64)> = None;
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let range = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f64>().ok())
                .unwrap_or(1.0);
            let specificity = if range == offer {
                3
            } else if range == format!("{kind}/*") {
                2
            } else if range == "*/*" {
                1
            } else {
                continue;
            };
            if best.is_none_or(|(s, _)| specificity > s) {
                best = Some((specificity, q));
            }
        }
        best.map_or(0.0, |(_, q)| q)
    };
    let html = quality("text/html");
    let json = quality("application/json");
    if html <= 0.0 && json <= 0.0 {
        ErrorFlavour::Plain
    } else if html >= json {
        ErrorFlavour::Html
    } else {
        ErrorFlavour::Json
    }
}

pub fn render_error_for(
    err: &ApiError,
    version: Option<Version>,
    request_id: &str,
    accept: &str,
) -> HttpResponse {
    let flavour = error_flavour(accept);
    if flavour == ErrorFlavour::Json {
        return render_error(err, version, request_id);
    }
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    if let Some(version) = version {
        version_headers(&mut builder, version, !err.outside_handler);
    }
    for (name, value) in &err.headers {
        builder.insert_header((*name, value.as_str()));
    }
    let title = format!("{} {}", err.status, err.title());
    if flavour == ErrorFlavour::Plain {
        return builder
            .content_type("text/plain; charset=UTF-8")
            .body(format!("{title}\n\n{}", err.rendered_detail()));
    }
    let detail = err.html_detail();
    builder.content_type("text/html; charset=UTF-8").body(format!(
        "<html>\n <head>\n  <title>{title}</title>\n </head>\n <body>\n  <h1>{title}</h1>\n  {detail}\n </body>\n</html>"
    ))
}

pub fn render_error(err: &ApiError, version: Option<Version>, request_id: &str) -> HttpResponse {
    if err.status >= 500 {
        tracing::error!(request_id, detail = %ferrite_service_kit::Escaped(&err.detail), "internal error");
    }
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    let with_code = version.is_some_and(|v| v.at_least(23));
    if let Some(version) = version {
        version_headers(&mut builder, version, !err.outside_handler);
    }
    for (name, value) in &err.headers {
        builder.insert_header((*name, value.as_str()));
    }
    builder
        .content_type("application/json")
        .body(err.body(with_code, request_id, None).to_string())
}
