//! The base URL a service builds links (`self`/`bookmark` links, `next`,
//! `Location`) on.
//!
//! A `Host` header is whatever the client wrote, so links built from it let
//! anyone who can reach the API hand other clients links to a host of their
//! choosing (through caches, logs or stored documents). The order is:
//! the configured public endpoint; the request's `Host` only when the
//! operator trusts it (`trust_host_header`, upstream's behaviour behind a
//! proxy that sets it) and it is a well-formed authority; otherwise the
//! address the connection actually arrived on, which the client cannot
//! choose.

use std::net::SocketAddr;

/// How a service picks its link base.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkBase {
    /// `public_endpoint`: used as is (without a trailing slash) when set.
    pub public_endpoint: Option<String>,
    /// Use the request's `Host` header when `public_endpoint` is unset.
    pub trust_host_header: bool,
}

/// True for `host`, `host:port`, `1.2.3.4:port` and `[v6]:port`.
pub fn is_authority(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 255
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'))
}

impl LinkBase {
    /// The base for a request whose `Host` header is `host` and whose
    /// connection arrived on `local`.
    pub fn base_url(&self, host: Option<&str>, local: Option<SocketAddr>) -> String {
        if let Some(endpoint) = &self.public_endpoint {
            return endpoint.trim_end_matches('/').to_string();
        }
        if self.trust_host_header {
            if let Some(host) = host.map(str::trim).filter(|h| is_authority(h)) {
                return format!("http://{host}");
            }
        }
        match local {
            Some(addr) => format!("http://{addr}"),
            None => "http://localhost".to_string(),
        }
    }

    /// [`LinkBase::base_url`] for an actix request.
    pub fn for_request(&self, request: &actix_web::HttpRequest) -> String {
        let host = request
            .headers()
            .get(actix_web::http::header::HOST)
            .and_then(|v| v.to_str().ok());
        self.base_url(host, Some(request.app_config().local_addr()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_header_is_used_only_when_trusted_and_well_formed() {
        let local: Option<SocketAddr> = "10.0.0.5:6385".parse().ok();
        let untrusted = LinkBase::default();
        let trusted = LinkBase {
            public_endpoint: None,
            trust_host_header: true,
        };
        let public = LinkBase {
            public_endpoint: Some("https://bm.example.org/".into()),
            trust_host_header: true,
        };
        let table: &[(&LinkBase, Option<&str>, &str)] = &[
            (&untrusted, Some("evil.example"), "http://10.0.0.5:6385"),
            (
                &trusted,
                Some("api.example:6385"),
                "http://api.example:6385",
            ),
            (&trusted, Some("[::1]:6385"), "http://[::1]:6385"),
            (&trusted, Some("evil/x?y"), "http://10.0.0.5:6385"),
            (&trusted, Some("a@b"), "http://10.0.0.5:6385"),
            (&trusted, None, "http://10.0.0.5:6385"),
            (&public, Some("evil.example"), "https://bm.example.org"),
        ];
        for (base, host, expected) in table {
            assert_eq!(base.base_url(*host, local), *expected, "{base:?} {host:?}");
        }
    }
}
