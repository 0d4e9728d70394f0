//! Bounds of the query string: its length and how many parameters it has.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryLimits {
    /// Most bytes of the raw (still encoded) query string.
    pub max_bytes: usize,
    /// Most `key=value` parameters.
    pub max_params: usize,
}

impl Default for QueryLimits {
    fn default() -> QueryLimits {
        // Web servers in front of upstream's services cap a request line
        // near 8 KiB; a long allocation-candidates query stays far below.
        QueryLimits {
            max_bytes: 8192,
            max_params: 256,
        }
    }
}

impl QueryLimits {
    /// `Err` carries the message for the service's 400.
    pub fn check(&self, raw: &str) -> Result<(), String> {
        if raw.len() > self.max_bytes {
            return Err(format!(
                "The query string is {} bytes long; at most {} bytes are allowed.",
                raw.len(),
                self.max_bytes
            ));
        }
        let params = raw.split('&').filter(|p| !p.is_empty()).count();
        if params > self.max_params {
            return Err(format!(
                "The query string has {params} parameters; at most {} are allowed.",
                self.max_params
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_or_crowded_query_strings_are_refused() {
        let limits = QueryLimits {
            max_bytes: 16,
            max_params: 2,
        };
        assert!(limits.check("").is_ok());
        assert!(limits.check("a=1&b=2").is_ok());
        assert!(limits.check("a=1&b=2&c=3").is_err());
        assert!(limits.check(&"x".repeat(17)).is_err());
    }
}
