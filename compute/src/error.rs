//! API errors in Nova's wire format: `{"<faultName>": {"code": N, "message": "…"}}`
//! with the fault names of `nova.api.openstack.wsgi.Fault`.

use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Nova's `Fault._fault_names`; anything else is a `computeFault`.
pub fn fault_name(status: u16) -> &'static str {
    match status {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        405 => "badMethod",
        409 => "conflictingRequest",
        413 | 429 => "overLimit",
        415 => "badMediaType",
        501 => "notImplemented",
        503 => "serviceUnavailable",
        _ => "computeFault",
    }
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, message)
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(403, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, message)
    }
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(409, message)
    }
    /// Nova's policy failure text.
    pub fn policy(rule: &str) -> ApiError {
        ApiError::forbidden(format!("Policy doesn't allow {rule} to be performed."))
    }
    /// A 500 whose details go to the log only.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "internal error");
        ApiError::new(
            500,
            "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ and attach the Nova API log if possible.",
        )
    }
    /// Invalid input as Nova's JSON-schema validation reports it.
    pub fn invalid_input(field: &str, value: &Value, detail: impl std::fmt::Display) -> ApiError {
        ApiError::bad_request(format!(
            "Invalid input for field/attribute {field}. Value: {}. {detail}",
            python_repr(value)
        ))
    }
    pub fn server_not_found(id: &str) -> ApiError {
        ApiError::not_found(format!("Instance {id} could not be found."))
    }
    pub fn flavor_not_found(id: &str) -> ApiError {
        ApiError::not_found(format!("Flavor {id} could not be found."))
    }
    pub fn image_not_found(id: &str) -> ApiError {
        ApiError::not_found(format!("Image {id} could not be found."))
    }
    /// `common.raise_http_conflict_for_instance_invalid_state`.
    pub fn invalid_state(action: &str, id: &str, attr: &str, state: &str) -> ApiError {
        ApiError::conflict(format!(
            "Cannot '{action}' instance {id} while it is in {attr} {state}"
        ))
    }

    pub fn body(&self) -> Value {
        json!({ fault_name(self.status): { "code": self.status, "message": self.message } })
    }

    /// Nova's rate-limit fault: `overLimit` with `retryAfter` (seconds, as
    /// a string), sent with a `Retry-After` header.
    pub fn rate_limited(retry_after: u64) -> (ApiError, Value) {
        let err = ApiError::new(429, "This request was rate-limited.");
        let body = json!({"overLimit": {
            "code": 429,
            "message": err.message,
            "retryAfter": retry_after.to_string(),
        }});
        (err, body)
    }
}

impl From<ferrite_db::StorageError> for ApiError {
    fn from(err: ferrite_db::StorageError) -> ApiError {
        if let ferrite_db::StorageError::Unreadable { what, .. } = &err {
            tracing::error!(error = %err, "unreadable stored record");
            return ApiError::new(
                500,
                format!(
                    "The stored record of {what} cannot be read; see the compute service's log."
                ),
            );
        }
        if ferrite_db::is_conflict(&err) {
            return ApiError::conflict("Concurrent update, please retry.");
        }
        ApiError::internal(err)
    }
}

/// Roughly Python's `repr()` of a decoded JSON value, for error texts.
pub fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(text) => ferrite_resource_classes::python_repr(text),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(python_repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!(
                    "{}: {}",
                    ferrite_resource_classes::python_repr(k),
                    python_repr(v)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Number(n) => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_bodies() {
        assert_eq!(
            ApiError::server_not_found("abc").body(),
            json!({"itemNotFound": {"code": 404, "message": "Instance abc could not be found."}})
        );
        assert_eq!(fault_name(409), "conflictingRequest");
        assert_eq!(fault_name(406), "computeFault");
        assert_eq!(
            python_repr(&json!({"a": [1, null, "x"]})),
            "{'a': [1, None, 'x']}"
        );
    }
}
