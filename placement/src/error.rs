//! API errors and their rendering in Placement's JSON error format.
//!
//! Every failure a handler can produce is an [`ApiError`]: an HTTP status, the
//! human-readable detail and the stable `code` string that Placement exposes from
//! microversion 1.23. The rendering mimics upstream byte for byte where clients
//! look at it: the `detail` text is the status' standard explanation, a blank
//! line, then the specific message.

use serde_json::json;

/// Stable error codes, as upstream names them. Never rename one.
pub mod codes {
    pub const DEFAULT: &str = "placement.undefined_code";
    pub const INVENTORY_INUSE: &str = "placement.inventory.inuse";
    pub const CONCURRENT_UPDATE: &str = "placement.concurrent_update";
    pub const DUPLICATE_NAME: &str = "placement.duplicate_name";
    pub const PROVIDER_IN_USE: &str = "placement.resource_provider.inuse";
    pub const PROVIDER_CANNOT_DELETE_PARENT: &str =
        "placement.resource_provider.cannot_delete_parent";
    pub const RESOURCE_PROVIDER_NOT_FOUND: &str = "placement.resource_provider.not_found";
    pub const ILLEGAL_DUPLICATE_QUERYPARAM: &str = "placement.query.duplicate_key";
    pub const QUERYPARAM_BAD_VALUE: &str = "placement.query.bad_value";
    pub const QUERYPARAM_MISSING_VALUE: &str = "placement.query.missing_value";
}

/// An error that becomes an HTTP response.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub detail: String,
    pub code: &'static str,
    /// Extra response headers (e.g. `Allow` on a 405).
    pub headers: Vec<(&'static str, String)>,
    /// Method and content type, which some standard explanations mention.
    pub method: Option<String>,
    pub content_type: Option<String>,
    /// Upstream raises this error outside its handler functions (routing,
    /// policy, a provider or resource class lookup the handler leaves
    /// uncaught): its microversion middleware then adds the
    /// `openstack-api-version` header but not `vary`. Errors a handler
    /// returns itself carry both headers.
    pub outside_handler: bool,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
            code: codes::DEFAULT,
            headers: Vec::new(),
            method: None,
            content_type: None,
            outside_handler: false,
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(409, detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, detail)
    }
    pub fn internal() -> Self {
        Self::new(500, "")
    }
    /// Marks the error as one upstream raises outside its handlers (no
    /// `vary` header on the response).
    pub fn outside_handler(mut self) -> Self {
        self.outside_handler = true;
        self
    }
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }
    pub fn concurrent_update(detail: impl Into<String>) -> Self {
        Self::conflict(detail).with_code(codes::CONCURRENT_UPDATE)
    }

    pub fn title(&self) -> &'static str {
        match self.status {
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            406 => "Not Acceptable",
            409 => "Conflict",
            413 => "Request Entity Too Large",
            415 => "Unsupported Media Type",
            429 => "Too Many Requests",
            _ => "Internal Server Error",
        }
    }

    /// The `detail` field as upstream (webob) renders it.
    pub fn rendered_detail(&self) -> String {
        let detail = &self.detail;
        match self.status {
            405 => format!(
                "The method {} is not allowed for this resource. \n\n {detail}",
                self.method.as_deref().unwrap_or("GET")
            ),
            406 => format!(
                "The resource could not be generated that was acceptable to your browser (content of type {}. \n\n {detail}",
                self.content_type.as_deref().unwrap_or("")
            ),
            415 => format!(
                "The request media type {} is not supported by this server. \n\n {detail}",
                self.content_type.as_deref().unwrap_or("None")
            ),
            status => {
                let explanation = match status {
                    400 => "The server could not comply with the request since it is either malformed or otherwise incorrect.",
                    401 => "This server could not verify that you are authorized to access the document you requested. Either you supplied the wrong credentials (e.g., bad password), or your browser does not understand how to supply the credentials required.",
                    403 => "Access was denied to this resource.",
                    404 => "The resource could not be found.",
                    409 => "There was a conflict when trying to complete your request.",
                    413 => "The body of your request was too large for this server.",
                    429 => "Too many requests.",
                    _ => "The server has either erred or is incapable of performing the requested operation.",
                };
                // Upstream's error formatter strips HTML from the text,
                // which turns the message's own line breaks into spaces.
                let detail = detail.replace('\n', " ").replace('\r', "");
                format!("{explanation}\n\n {detail}  ")
            }
        }
    }

    /// The inside of the HTML error page's body, as webob lays it out for
    /// clients that prefer HTML: the explanation, two line breaks, then the
    /// message (escaped), each status with its own template.
    pub fn html_detail(&self) -> String {
        let detail = html_escape(&self.detail);
        let media =
            |m: &Option<String>, default: &str| html_escape(m.as_deref().unwrap_or(default));
        match self.status {
            405 => format!(
                "The method {} is not allowed for this resource. <br /><br />\n{detail}",
                media(&self.method, "GET")
            ),
            406 => format!(
                "The resource could not be generated that was acceptable to your browser\n(content of type {}. <br /><br />\n{detail}",
                media(&self.content_type, "")
            ),
            415 => format!(
                "The request media type {} is not supported by this server.\n<br /><br />\n{detail}",
                media(&self.content_type, "None")
            ),
            _ => {
                let explanation = self
                    .rendered_detail()
                    .split("\n\n")
                    .next()
                    .unwrap_or_default()
                    .to_string();
                format!("{}<br /><br />\n{detail}\n\n", html_escape(&explanation))
            }
        }
    }

    /// The JSON body. `with_code` is true from microversion 1.23.
    pub fn body(
        &self,
        with_code: bool,
        request_id: &str,
        version_range: Option<(&str, &str)>,
    ) -> serde_json::Value {
        let mut error = json!({
            "status": self.status,
            "title": self.title(),
            "detail": self.rendered_detail(),
            "request_id": request_id,
        });
        if with_code {
            error["code"] = json!(self.code);
        }
        if let Some((min, max)) = version_range {
            error["min_version"] = json!(min);
            error["max_version"] = json!(max);
        }
        json!({ "errors": [error] })
    }
}

/// Escapes text for HTML as Python's `html.escape` does (quotes included).
pub fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

impl From<crate::storage::StorageError> for ApiError {
    /// A lost race inside the database (deadlock, serialisation failure,
    /// unique violation, busy) is a 409 the client may retry; anything else
    /// is a 500 whose details go to the log only.
    fn from(err: crate::storage::StorageError) -> Self {
        if crate::storage::is_conflict(&err) {
            tracing::info!(error = %err, "concurrent update");
            return ApiError::concurrent_update(
                "Another thread concurrently updated the data. Please retry your update",
            );
        }
        tracing::error!(error = %err, "storage failure");
        ApiError::internal()
    }
}
