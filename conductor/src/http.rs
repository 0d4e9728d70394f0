//! The HTTP edge: request ids, microversion negotiation, routing, and
//! rendering of replies and errors in Ironic's format.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use ferrite_conductor_states::ApiVersion;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub const VERSION_HEADER: &str = "X-OpenStack-Ironic-API-Version";
pub const MIN_HEADER: &str = "X-OpenStack-Ironic-API-Minimum-Version";
pub const MAX_HEADER: &str = "X-OpenStack-Ironic-API-Maximum-Version";

/// A request after negotiation.
pub struct Req {
    pub method: actix_web::http::Method,
    /// Percent-decoded path segments after the leading slash.
    pub segments: Vec<String>,
    pub query: Vec<(String, String)>,
    pub headers: actix_web::http::header::HeaderMap,
    pub body: web::Bytes,
    pub version: ApiVersion,
    /// Scheme and authority links are built on, without a trailing slash.
    pub base_url: String,
    /// Bounds of JSON bodies.
    pub json_limits: ferrite_service_kit::JsonLimits,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The last value of a query parameter.
    pub fn query_one(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn at_least(&self, minor: u16) -> bool {
        self.version.at_least(minor)
    }

    /// The JSON body; malformed JSON is a 400 (upstream answers 500 with
    /// the parser's message; we keep the message and fix the status).
    pub fn json(&self) -> ApiResult<Value> {
        let text = std::str::from_utf8(&self.body)
            .map_err(|e| ApiError::bad_request(format!("Invalid UTF-8 in request body: {e}")))?;
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ApiError::bad_request(python_json_error(text, &e)))?;
        if contains_nul(&value) {
            return Err(ApiError::bad_request(
                "NUL characters are not allowed in request bodies.",
            ));
        }
        self.json_limits
            .check(&value)
            .map_err(|v| ApiError::bad_request(format!("Invalid request body: {v}.")))?;
        Ok(value)
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

/// Python's `json` error text ("Expecting value: line 1 column 12 (char 11)").
fn python_json_error(text: &str, err: &serde_json::Error) -> String {
    if err.classify() == serde_json::error::Category::Eof {
        // Python points just past the end of the document.
        let offset = text.chars().count();
        let line = text.matches('\n').count() + 1;
        let column = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        return format!("Expecting value: line {line} column {column} (char {offset})");
    }
    format!("Invalid JSON: {err}")
}

/// What a handler returns.
pub struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json(body: Value) -> Reply {
        Reply {
            status: 200,
            body: Some(body),
            headers: Vec::new(),
        }
    }
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            body: None,
            headers: Vec::new(),
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
}

/// How the version header parsed.
#[derive(Debug, PartialEq, Eq)]
pub enum Negotiated {
    Version(ApiVersion),
    /// Unparseable header: 406 without version headers.
    Invalid,
    /// Parsed but outside the supported range.
    Unsupported {
        requested: String,
        major: bool,
    },
}

/// Upstream's negotiation: no header means the minimum, `latest` the
/// maximum, otherwise `MAJOR.MINOR` within range.
pub fn negotiate(header: Option<&str>) -> Negotiated {
    let Some(raw) = header else {
        return Negotiated::Version(ApiVersion::MIN);
    };
    let text = raw.trim();
    if text.eq_ignore_ascii_case("latest") {
        return Negotiated::Version(ApiVersion::MAX);
    }
    let Some((major, minor)) = text.split_once('.') else {
        return Negotiated::Invalid;
    };
    let (Ok(major), Ok(minor)) = (major.parse::<u32>(), minor.parse::<u32>()) else {
        return Negotiated::Invalid;
    };
    if !text.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Negotiated::Invalid;
    }
    if major != 1 {
        return Negotiated::Unsupported {
            requested: format!("{major}.{minor}"),
            major: true,
        };
    }
    let in_range = u16::try_from(minor)
        .ok()
        .map(ApiVersion::v1)
        .filter(|v| *v >= ApiVersion::MIN && *v <= ApiVersion::MAX);
    match in_range {
        Some(version) => Negotiated::Version(version),
        None => Negotiated::Unsupported {
            requested: format!("{major}.{minor}"),
            major: false,
        },
    }
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// The single actix service.
pub async fn entry(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<Arc<AppState>>,
) -> HttpResponse {
    let request_id = format!("req-{}", uuid::Uuid::new_v4());
    let mut response = serve(&state, &request, payload).await;
    let headers = response.headers_mut();
    for name in ["x-openstack-request-id", "openstack-request-id"] {
        if let Ok(value) = request_id.parse() {
            headers.insert(
                actix_web::http::header::HeaderName::from_static(name),
                value,
            );
        }
    }
    response
}

/// True for the agent endpoints (`/v1/lookup`, `/v1/heartbeat/{node}`),
/// which have their own rate limit.
fn is_agent_path(path: &str) -> bool {
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    segments.next() == Some("v1") && matches!(segments.next(), Some("lookup" | "heartbeat"))
}

/// The largest body a route takes: the provision-state verb carries a
/// config drive; everything else is a small document.
pub fn body_limit(config: &crate::Config, method: &actix_web::http::Method, path: &str) -> usize {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["v1", "nodes", _, "states", "provision"] if method == actix_web::http::Method::PUT => {
            config.max_configdrive_bytes.saturating_add(1024 * 1024)
        }
        _ => config.max_request_body_bytes,
    }
}

async fn serve(state: &AppState, request: &HttpRequest, payload: web::Payload) -> HttpResponse {
    let limiter = if is_agent_path(request.path()) {
        &state.agent_limiter
    } else {
        &state.api_limiter
    };
    if let Err(retry) = limiter.check(request.peer_addr().map(|a| a.ip())) {
        tracing::info!(
            peer = ?request.peer_addr(),
            path = %ferrite_service_kit::Escaped(request.path()),
            "client over its rate limit"
        );
        let mut response = render_error(
            &ApiError::new(
                429,
                format!(
                    "Too many requests from this client; retry after {} seconds.",
                    retry.0
                ),
            ),
            None,
            false,
        );
        if let Ok(value) = retry.0.to_string().parse() {
            response
                .headers_mut()
                .insert(actix_web::http::header::RETRY_AFTER, value);
        }
        return response;
    }
    let header = request
        .headers()
        .get(VERSION_HEADER)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let version = match negotiate(header) {
        Negotiated::Version(version) => version,
        Negotiated::Invalid => {
            return render_error(
                &ApiError::negotiation(format!("Invalid value for {VERSION_HEADER} header")),
                None,
                false,
            )
        }
        Negotiated::Unsupported { requested, major } => {
            let which = if major { "major" } else { "minor" };
            return render_error(
                &ApiError::negotiation(format!(
                    "Version {requested} was requested but the {which} version is not supported by this service. The supported version range is: [{}, {}].",
                    ApiVersion::MIN,
                    ApiVersion::MAX
                )),
                None,
                true,
            );
        }
    };
    let raw_path = request.uri().path();
    let segments: Vec<String> = raw_path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    if segments.iter().any(|s| s.contains('\0')) {
        return render_error(
            &ApiError::bad_request("NUL characters are not allowed in the URL."),
            Some(version),
            true,
        );
    }
    if let Err(message) = state.config.query_limits.check(request.query_string()) {
        return render_error(&ApiError::bad_request(message), Some(version), true);
    }
    let limit = body_limit(&state.config, request.method(), raw_path);
    let body = match ferrite_service_kit::read_body(
        payload,
        ferrite_service_kit::body::content_length(request),
        limit,
    )
    .await
    {
        Ok(body) => body,
        Err(err @ ferrite_service_kit::BodyError::TooLarge { .. }) => {
            return render_error(&ApiError::new(413, err.to_string()), Some(version), true)
        }
        Err(err) => {
            return render_error(&ApiError::bad_request(err.to_string()), Some(version), true)
        }
    };
    let query = url::form_urlencoded::parse(request.query_string().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let base_url = ferrite_service_kit::LinkBase {
        public_endpoint: state.config.public_endpoint.clone(),
        trust_host_header: state.config.trust_host_header,
    }
    .for_request(request);
    let req = Req {
        method: request.method().clone(),
        segments,
        query,
        headers: request.headers().clone(),
        body,
        version,
        base_url,
        json_limits: state.config.json_limits,
    };
    match crate::handlers::dispatch(state, &req).await {
        Ok(reply) => render_reply(reply, version),
        Err(err) => render_error(&err, Some(version), true),
    }
}

fn version_headers(builder: &mut HttpResponseBuilder, version: Option<ApiVersion>, range: bool) {
    if range {
        builder.insert_header((MIN_HEADER, ApiVersion::MIN.to_string()));
        builder.insert_header((MAX_HEADER, ApiVersion::MAX.to_string()));
    }
    if let Some(version) = version {
        builder.insert_header((VERSION_HEADER, version.to_string()));
    }
}

fn render_reply(reply: Reply, version: ApiVersion) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let mut builder = HttpResponse::build(status);
    version_headers(&mut builder, Some(version), true);
    for (name, value) in &reply.headers {
        builder.insert_header((*name, value.as_str()));
    }
    // Python's json.dumps spacing, as upstream's bodies read.
    match reply.body {
        Some(body) => builder
            .content_type("application/json")
            .body(crate::error::python_dumps(&body)),
        None => builder.finish(),
    }
}

pub fn render_error(err: &ApiError, version: Option<ApiVersion>, range: bool) -> HttpResponse {
    if err.status >= 500 {
        tracing::error!(message = %ferrite_service_kit::Escaped(&err.message), "internal error");
    }
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    version_headers(&mut builder, version, range);
    builder
        .content_type("application/json")
        .body(crate::error::python_dumps(&err.body()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_upstream() {
        assert_eq!(negotiate(None), Negotiated::Version(ApiVersion::MIN));
        assert_eq!(
            negotiate(Some("latest")),
            Negotiated::Version(ApiVersion::MAX)
        );
        assert_eq!(
            negotiate(Some("1.82")),
            Negotiated::Version(ApiVersion::v1(82))
        );
        assert_eq!(negotiate(Some("1.x")), Negotiated::Invalid);
        assert_eq!(negotiate(Some("banana")), Negotiated::Invalid);
        assert_eq!(
            negotiate(Some("1.999")),
            Negotiated::Unsupported {
                requested: "1.999".into(),
                major: false
            }
        );
        assert_eq!(
            negotiate(Some("1.0")),
            Negotiated::Unsupported {
                requested: "1.0".into(),
                major: false
            }
        );
        assert_eq!(
            negotiate(Some("2.1")),
            Negotiated::Unsupported {
                requested: "2.1".into(),
                major: true
            }
        );
    }

    #[test]
    fn python_style_json_errors() {
        let text = "{\"driver\": ";
        let err = serde_json::from_str::<Value>(text).expect_err("malformed");
        assert_eq!(
            python_json_error(text, &err),
            "Expecting value: line 1 column 12 (char 11)"
        );
    }
}
