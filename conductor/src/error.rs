//! API errors in Ironic's wire format.
//!
//! Ironic wraps every error in `{"error_message": "<json>"}` where the inner
//! JSON string holds `faultcode` ("Client" for 4xx, "Server" for 5xx),
//! `faultstring` (the message clients print) and `debuginfo` (null). The
//! microversion negotiation errors use a different inner object
//! (`code`/`title`/`description`), see [`ApiError::negotiation`].

use ferrite_db::StorageError;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    /// Set for the 406 answers of version negotiation.
    negotiation: bool,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            negotiation: false,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, message)
    }
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(409, message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, message)
    }
    /// A 406 from microversion negotiation.
    pub fn negotiation(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 406,
            message: message.into(),
            negotiation: true,
        }
    }
    /// The 406 upstream returns when a field, parameter or endpoint needs a
    /// newer microversion than the request's.
    pub fn not_acceptable() -> ApiError {
        ApiError::new(406, "Request not acceptable.")
    }
    pub fn node_not_found(ident: &str) -> ApiError {
        ApiError::not_found(format!("Node {ident} could not be found."))
    }
    pub fn node_locked(node: &str, host: &str) -> ApiError {
        ApiError::conflict(format!(
            "Node {node} is locked by host {host}, please retry after the current operation is completed."
        ))
    }

    pub fn is_negotiation(&self) -> bool {
        self.negotiation
    }

    /// The response body.
    pub fn body(&self) -> Value {
        // Built by hand: the inner key order is part of the wire format
        // and serde_json maps are sorted.
        let inner = if self.negotiation {
            format!(
                "{{\"code\": {}, \"title\": {}, \"description\": {}}}",
                self.status,
                python_dumps(&Value::from(title(self.status))),
                python_dumps(&Value::from(self.message.as_str())),
            )
        } else {
            format!(
                "{{\"faultcode\": {}, \"faultstring\": {}, \"debuginfo\": null}}",
                if self.status >= 500 {
                    "\"Server\""
                } else {
                    "\"Client\""
                },
                python_dumps(&Value::from(self.message.as_str())),
            )
        };
        json!({ "error_message": inner })
    }
}

fn title(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        _ => "Error",
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> ApiError {
        if let StorageError::Unreadable { what, .. } = &err {
            tracing::error!(error = %err, "unreadable stored record");
            return ApiError::internal(format!(
                "The stored record of {what} cannot be read; see the conductor's log."
            ));
        }
        if ferrite_db::is_conflict(&err) {
            // A concurrent writer won; clients retry 409s.
            return ApiError::conflict(
                "The resource was changed concurrently by another request; please retry.",
            );
        }
        tracing::error!(error = %err, "storage error");
        ApiError::internal("An internal database error occurred.")
    }
}

impl From<ferrite_conductor_states::ProvisionRequestError> for ApiError {
    fn from(err: ferrite_conductor_states::ProvisionRequestError) -> ApiError {
        ApiError::new(err.upstream_status(), err.to_string())
    }
}

/// `json.dumps` as Python writes it by default: `", "` and `": "`
/// separators and non-ASCII escaped, so the nested error string reads
/// exactly like upstream's.
pub fn python_dumps(value: &Value) -> String {
    let mut out = String::new();
    write_python(value, &mut out);
    out
}

fn write_python(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_python_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_str(key, out);
                out.push_str(": ");
                write_python(item, out);
            }
            out.push('}');
        }
    }
}

fn write_python_str(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_nest_a_python_style_json_string() {
        let err = ApiError::node_not_found("00000000-0000-4000-8000-000000000000");
        assert_eq!(
            err.body().to_string(),
            r#"{"error_message":"{\"faultcode\": \"Client\", \"faultstring\": \"Node 00000000-0000-4000-8000-000000000000 could not be found.\", \"debuginfo\": null}"}"#
        );
    }

    #[test]
    fn negotiation_errors_use_code_title_description() {
        let err = ApiError::negotiation("Invalid value for X-OpenStack-Ironic-API-Version header");
        assert_eq!(
            err.body()["error_message"],
            "{\"code\": 406, \"title\": \"Not Acceptable\", \"description\": \"Invalid value for X-OpenStack-Ironic-API-Version header\"}"
        );
    }

    #[test]
    fn server_errors_say_server_and_escape_like_python() {
        let err = ApiError::internal("caf\u{e9} \"x\"");
        let inner = err.body()["error_message"].as_str().map(str::to_owned);
        assert_eq!(
            inner.as_deref(),
            Some("{\"faultcode\": \"Server\", \"faultstring\": \"caf\\u00e9 \\\"x\\\"\", \"debuginfo\": null}")
        );
    }
}
