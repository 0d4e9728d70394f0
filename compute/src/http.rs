//! The HTTP edge: request ids, noauth2 credentials, compute microversion
//! negotiation, routing (in [`crate::handlers`]) and rendering of replies and
//! errors in Nova's format.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// The microversions served: 2.1 up to 2.96 (Nova 2024.1/2024.2).
pub const MIN_VERSION: u16 = 1;
pub const MAX_VERSION: u16 = 96;

/// A negotiated compute microversion (`2.minor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u16);

impl Version {
    pub fn at_least(self, minor: u16) -> bool {
        self.0 >= minor
    }
    pub fn text(self) -> String {
        format!("2.{}", self.0)
    }
}

/// The caller, from noauth2's `X-Auth-Token: user[:project]`.
#[derive(Debug, Clone)]
pub struct Context {
    pub user_id: String,
    pub project_id: String,
    pub is_admin: bool,
}

impl Context {
    /// Nova's default "admin or owner" rule.
    pub fn can_access(&self, project_id: &str) -> bool {
        self.is_admin || self.project_id == project_id
    }
    /// Admin-only rules; `rule` names the policy in the 403.
    pub fn require_admin(&self, rule: &str) -> ApiResult<()> {
        if self.is_admin {
            Ok(())
        } else {
            Err(ApiError::policy(rule))
        }
    }
}

/// A request after authentication and negotiation.
pub struct Req {
    pub method: actix_web::http::Method,
    /// Percent-decoded path segments (the API prefix removed).
    pub segments: Vec<String>,
    pub query: Vec<(String, String)>,
    pub body: web::Bytes,
    pub version: Version,
    pub context: Context,
    /// Scheme and authority links are built on, without a trailing slash.
    pub base_url: String,
    /// Bounds of JSON bodies.
    pub json_limits: ferrite_service_kit::JsonLimits,
}

impl Req {
    pub fn at_least(&self, minor: u16) -> bool {
        self.version.at_least(minor)
    }

    /// The last value of a query parameter.
    pub fn query_one(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The JSON body: malformed JSON is a 400 as in Nova.
    pub fn json(&self) -> ApiResult<Value> {
        let value: Value = serde_json::from_slice(&self.body)
            .map_err(|_| ApiError::bad_request("Malformed request body"))?;
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

    /// `{"<root>": {...}}` bodies: the inner object, or Nova's schema error.
    pub fn json_root(&self, root: &str) -> ApiResult<serde_json::Map<String, Value>> {
        let body = self.json()?;
        match body.get(root) {
            Some(Value::Object(inner)) => Ok(inner.clone()),
            Some(other) => Err(ApiError::invalid_input(
                root,
                other,
                format!("{} is not of type 'object'", crate::error::python_repr(other)),
            )),
            None => Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute {root}. Value: {}. '{root}' is a required property",
                crate::error::python_repr(&body)
            ))),
        }
    }

    /// Links: `{base}/v2.1/{project}/{collection}/{id}` and the bookmark.
    pub fn links(&self, collection: &str, id: &str) -> Value {
        let project = &self.context.project_id;
        serde_json::json!([
            {"rel": "self", "href": format!("{}/v2.1/{project}/{collection}/{id}", self.base_url)},
            {"rel": "bookmark", "href": format!("{}/{project}/{collection}/{id}", self.base_url)},
        ])
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
}

impl Reply {
    pub fn json(body: Value) -> Reply {
        Reply {
            status: 200,
            body: Some(body),
        }
    }
    pub fn empty(status: u16) -> Reply {
        Reply { status, body: None }
    }
    pub fn status(mut self, status: u16) -> Reply {
        self.status = status;
        self
    }
}

/// How the version headers parsed.
#[derive(Debug, PartialEq, Eq)]
pub enum Negotiated {
    Version(Version),
    /// Not `MAJOR.MINOR`: 400.
    Invalid(String),
    /// Outside the supported range: 406.
    Unsupported(String),
}

/// Nova's negotiation: `OpenStack-API-Version: compute X` wins over the
/// legacy `X-OpenStack-Nova-API-Version: X`; none means 2.1, `latest` the
/// maximum.
pub fn negotiate(modern: Option<&str>, legacy: Option<&str>) -> Negotiated {
    let requested = modern
        .and_then(|header| {
            header.split(',').find_map(|item| {
                let mut words = item.split_whitespace();
                match (words.next(), words.next()) {
                    (Some(service), Some(version)) if service.eq_ignore_ascii_case("compute") => {
                        Some(version.to_string())
                    }
                    _ => None,
                }
            })
        })
        .or_else(|| legacy.map(|v| v.trim().to_string()));
    let Some(text) = requested else {
        return Negotiated::Version(Version(MIN_VERSION));
    };
    if text.eq_ignore_ascii_case("latest") {
        return Negotiated::Version(Version(MAX_VERSION));
    }
    let parsed = text.split_once('.').and_then(|(major, minor)| {
        let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
        if !digits(major) || !digits(minor) {
            return None;
        }
        Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?))
    });
    let Some((major, minor)) = parsed else {
        return Negotiated::Invalid(text);
    };
    if major == 2 && (u32::from(MIN_VERSION)..=u32::from(MAX_VERSION)).contains(&minor) {
        return Negotiated::Version(Version(minor as u16));
    }
    Negotiated::Unsupported(format!("{major}.{minor}"))
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// noauth2: `user[:project]`; `admin` (or the admin role) is admin.
fn authenticate(request: &HttpRequest) -> Option<Context> {
    let token = request.headers().get("x-auth-token")?.to_str().ok()?.trim();
    if token.is_empty() {
        return None;
    }
    let (user, project) = match token.split_once(':') {
        Some((user, project)) if !project.is_empty() => (user, project),
        Some((user, _)) => (user, user),
        None => (token, token),
    };
    let project = request
        .headers()
        .get("x-project-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .unwrap_or(project);
    let roles_admin = request
        .headers()
        .get("x-roles")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|roles| roles.split(',').any(|r| r.trim() == "admin"));
    Some(Context {
        user_id: user.to_string(),
        project_id: project.to_string(),
        is_admin: user == "admin" || roles_admin,
    })
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
    for name in ["x-openstack-request-id", "x-compute-request-id"] {
        if let Ok(value) = request_id.parse() {
            headers.insert(
                actix_web::http::header::HeaderName::from_static(name),
                value,
            );
        }
    }
    response
}

fn render(reply: ApiResult<Reply>, version: Option<Version>) -> HttpResponse {
    let (status, body) = match reply {
        Ok(reply) => (reply.status, reply.body),
        Err(err) => (err.status, Some(err.body())),
    };
    let mut builder = HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK));
    if let Some(version) = version {
        builder
            .insert_header((
                "OpenStack-API-Version",
                format!("compute {}", version.text()),
            ))
            .insert_header(("X-OpenStack-Nova-API-Version", version.text()))
            .insert_header((
                "Vary",
                "OpenStack-API-Version, X-OpenStack-Nova-API-Version",
            ));
    }
    match body {
        Some(body) => builder
            .content_type("application/json")
            .body(body.to_string()),
        None => builder.finish(),
    }
}

fn base_url(state: &AppState, request: &HttpRequest) -> String {
    ferrite_service_kit::LinkBase {
        public_endpoint: state.config.public_endpoint.clone(),
        trust_host_header: state.config.trust_host_header,
    }
    .for_request(request)
}

async fn serve(state: &AppState, request: &HttpRequest, payload: web::Payload) -> HttpResponse {
    if let Err(retry) = state.limiter.check(request.peer_addr().map(|a| a.ip())) {
        tracing::info!(
            peer = ?request.peer_addr(),
            path = %ferrite_service_kit::Escaped(request.path()),
            "client over its rate limit"
        );
        let (err, body) = ApiError::rate_limited(retry.0);
        let mut response = render(Ok(Reply::json(body).status(err.status)), None);
        if let Ok(value) = retry.0.to_string().parse() {
            response
                .headers_mut()
                .insert(actix_web::http::header::RETRY_AFTER, value);
        }
        return response;
    }
    if let Err(message) = state.config.query_limits.check(request.query_string()) {
        return render(Err(ApiError::bad_request(message)), None);
    }
    let body = match ferrite_service_kit::read_body(
        payload,
        ferrite_service_kit::body::content_length(request),
        state.config.max_request_body_bytes,
    )
    .await
    {
        Ok(body) => body,
        // Upstream's size limiter answers "Request is too large." as 413.
        Err(ferrite_service_kit::BodyError::TooLarge { .. }) => {
            return render(Err(ApiError::new(413, "Request is too large.")), None)
        }
        Err(err) => return render(Err(ApiError::bad_request(err.to_string())), None),
    };
    let base_url = base_url(state, request);
    let mut segments: Vec<String> = request
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    // Version discovery needs no credentials.
    if segments.is_empty() {
        return render(crate::handlers::versions::root(&base_url), None);
    }
    let is_image_api = segments[0] == "v2";
    if segments[0] != "v2.1" && !is_image_api {
        return render(
            Err(ApiError::not_found("The resource could not be found.")),
            None,
        );
    }
    if segments.len() == 1 && !is_image_api && request.method() == actix_web::http::Method::GET {
        return render(crate::handlers::versions::v21(&base_url), None);
    }
    let Some(context) = authenticate(request) else {
        return render(
            Err(ApiError::new(
                401,
                "The request you have made requires authentication.",
            )),
            None,
        );
    };
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or("\u{0}"))
    };
    let version = if is_image_api {
        Version(MAX_VERSION)
    } else {
        match negotiate(
            header("openstack-api-version"),
            header("x-openstack-nova-api-version"),
        ) {
            Negotiated::Version(version) => version,
            Negotiated::Invalid(text) => {
                return render(
                    Err(ApiError::bad_request(format!(
                        "API Version String {text} is of invalid format. Must be of format MajorNum.MinorNum."
                    ))),
                    None,
                )
            }
            Negotiated::Unsupported(text) => {
                return render(
                    Err(ApiError::new(
                        406,
                        format!(
                            "Version {text} is not supported by the API. Minimum is 2.{MIN_VERSION} and maximum is 2.{MAX_VERSION}."
                        ),
                    )),
                    None,
                )
            }
        }
    };
    let prefix = segments.remove(0);
    // Legacy URLs carry the project id: /v2.1/{project_id}/servers.
    if !is_image_api
        && segments.len() >= 2
        && !crate::handlers::is_collection(&segments[0])
        && crate::handlers::is_collection(&segments[1])
    {
        segments.remove(0);
    }
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(request.query_string().as_bytes())
            .into_owned()
            .collect();
    // No database stores NUL in text: refuse it at the edge.
    if segments.iter().any(|s| s.contains('\0'))
        || query
            .iter()
            .any(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return render(
            Err(ApiError::bad_request(
                "NUL characters are not allowed in the URL.",
            )),
            (!is_image_api).then_some(version),
        );
    }
    let req = Req {
        method: request.method().clone(),
        segments,
        query,
        body,
        version,
        context,
        base_url,
        json_limits: state.config.json_limits,
    };
    let reply = if prefix == "v2" {
        crate::handlers::images::glance(state, &req).await
    } else {
        crate::handlers::route(state, &req).await
    };
    render(reply, (!is_image_api).then_some(version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_table() {
        let table: &[(Option<&str>, Option<&str>, Negotiated)] = &[
            (None, None, Negotiated::Version(Version(1))),
            (Some("compute 2.61"), None, Negotiated::Version(Version(61))),
            (
                Some("compute latest"),
                None,
                Negotiated::Version(Version(MAX_VERSION)),
            ),
            (
                Some("placement 1.5, compute 2.37"),
                None,
                Negotiated::Version(Version(37)),
            ),
            (
                Some("compute 2.10"),
                Some("2.50"),
                Negotiated::Version(Version(10)),
            ),
            (None, Some("2.50"), Negotiated::Version(Version(50))),
            (Some("placement 1.5"), None, Negotiated::Version(Version(1))),
            (Some("compute 2.x"), None, Negotiated::Invalid("2.x".into())),
            (Some("compute 2"), None, Negotiated::Invalid("2".into())),
            (
                Some("compute 2.200"),
                None,
                Negotiated::Unsupported("2.200".into()),
            ),
            (
                Some("compute 3.1"),
                None,
                Negotiated::Unsupported("3.1".into()),
            ),
            (
                Some("compute 2.0"),
                None,
                Negotiated::Unsupported("2.0".into()),
            ),
        ];
        for (modern, legacy, expected) in table {
            assert_eq!(
                &negotiate(*modern, *legacy),
                expected,
                "{modern:?} {legacy:?}"
            );
        }
    }
}
