//! The one error type of the model, carrying upstream's status and fault text.

use thiserror::Error;

/// A request the model refused, as upstream Ironic would answer it.
///
/// `Display` is exactly upstream's `faultstring`; [`ModelError::status`] and
/// [`ModelError::faultcode`] give the rest of the error body.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelError {
    /// 400: upstream's `Invalid`, `InvalidParameterValue`, `PatchError` and
    /// 400 `ClientSideError`s.
    #[error("{0}")]
    BadRequest(String),
    /// 406: upstream's `NotAcceptable`, almost always without details.
    #[error("{0}")]
    NotAcceptable(String),
    /// 500: what upstream answers when Python itself fails on the input
    /// (a `ValueError` from the object layer, a `TypeError`, …). Kept so that
    /// clients see the same answer; the text is `str()` of the exception.
    #[error("{0}")]
    Internal(String),
}

/// Errors of `fields=` handling; the same type, named as the brief asks.
pub type ApiFieldError = ModelError;

/// Upstream's text for a bare `NotAcceptable`.
pub const NOT_ACCEPTABLE: &str = "Request not acceptable.";

impl ModelError {
    /// The HTTP status upstream answers with.
    pub fn status(&self) -> u16 {
        match self {
            ModelError::BadRequest(_) => 400,
            ModelError::NotAcceptable(_) => 406,
            ModelError::Internal(_) => 500,
        }
    }

    /// Upstream's `faultcode`: `Client` for 4xx, `Server` for 5xx.
    pub fn faultcode(&self) -> &'static str {
        match self {
            ModelError::Internal(_) => "Server",
            _ => "Client",
        }
    }

    /// A 400 with the given text.
    pub fn bad_request(message: impl Into<String>) -> ModelError {
        ModelError::BadRequest(message.into())
    }

    /// A bare 406, as upstream raises it for fields newer than the request.
    pub fn not_acceptable() -> ModelError {
        ModelError::NotAcceptable(NOT_ACCEPTABLE.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_fault_codes() {
        let cases = [
            (ModelError::bad_request("x"), 400, "Client"),
            (ModelError::not_acceptable(), 406, "Client"),
            (ModelError::Internal("boom".into()), 500, "Server"),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status(), status);
            assert_eq!(error.faultcode(), code);
        }
        assert_eq!(
            ModelError::not_acceptable().to_string(),
            "Request not acceptable."
        );
    }
}
