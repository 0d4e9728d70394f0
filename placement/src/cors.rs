//! CORS as oslo.middleware does it for upstream's `[cors]` options: answers
//! preflight `OPTIONS` requests itself and decorates responses to allowed
//! origins.

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse};

use crate::config::{Config, CorsConfig};

pub struct Cors<'a> {
    config: &'a CorsConfig,
}

fn header<'r>(request: &'r HttpRequest, name: &str) -> Option<&'r str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

impl<'a> Cors<'a> {
    pub fn new(config: &'a Config) -> Cors<'a> {
        Cors {
            config: &config.cors,
        }
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        self.config
            .allowed_origins
            .iter()
            .any(|o| o == "*" || o == origin)
    }

    /// A preflight answer, when CORS is on and this is one.
    pub fn preflight(&self, request: &HttpRequest) -> Option<HttpResponse> {
        if !self.config.enabled() || request.method() != Method::OPTIONS {
            return None;
        }
        let origin = header(request, "origin")?;
        let mut response = HttpResponse::Ok().finish();
        let Some(wanted_method) = header(request, "access-control-request-method") else {
            return Some(response);
        };
        if !self.origin_allowed(origin)
            || !self
                .config
                .allow_methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(wanted_method))
        {
            return Some(response);
        }
        let wanted_headers: Vec<String> = header(request, "access-control-request-headers")
            .unwrap_or("")
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        let permitted: Vec<String> = self
            .config
            .allow_headers
            .iter()
            .chain(simple_headers().iter())
            .map(|h| h.to_ascii_lowercase())
            .collect();
        if wanted_headers.iter().any(|h| !permitted.contains(h)) {
            return Some(response);
        }
        let headers = response.headers_mut();
        insert(headers, "access-control-allow-origin", origin);
        insert(headers, "vary", "Origin");
        insert(headers, "access-control-allow-methods", wanted_method);
        if !wanted_headers.is_empty() {
            insert(
                headers,
                "access-control-allow-headers",
                &wanted_headers.join(","),
            );
        }
        if self.config.allow_credentials {
            insert(headers, "access-control-allow-credentials", "true");
        }
        if let Some(age) = self.config.max_age {
            insert(headers, "access-control-max-age", &age.to_string());
        }
        Some(response)
    }

    /// Adds CORS headers to an ordinary response for an allowed origin.
    pub fn decorate(&self, request: &HttpRequest, headers: &mut HeaderMap) {
        if !self.config.enabled() {
            return;
        }
        let Some(origin) = header(request, "origin") else {
            return;
        };
        if !self.origin_allowed(origin) {
            return;
        }
        insert(headers, "access-control-allow-origin", origin);
        insert(headers, "vary", "Origin");
        if self.config.allow_credentials {
            insert(headers, "access-control-allow-credentials", "true");
        }
        if !self.config.expose_headers.is_empty() {
            insert(
                headers,
                "access-control-expose-headers",
                &self.config.expose_headers.join(","),
            );
        }
    }
}

fn simple_headers() -> &'static [String] {
    static SIMPLE: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    SIMPLE.get_or_init(|| {
        [
            "cache-control",
            "content-language",
            "content-type",
            "expires",
            "last-modified",
            "pragma",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    })
}
