//! Bounds of JSON documents taken from clients.
//!
//! A document nested deeper than what storage re-reads (serde_json stops at
//! 128 levels) would be written once and then make every read of its row
//! fail; a huge array or object costs memory at every read. The edge checks
//! request bodies with [`JsonLimits::check`], and services check the fields
//! they store with [`JsonLimits::check_field`] after applying a change
//! (a JSON Patch can deepen a field one path at a time).

use serde::Deserialize;
use serde_json::Value;

/// Bounds of one JSON document (a request body or a stored field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JsonLimits {
    /// Most nested arrays/objects (`{}` is 1, `{"a": []}` is 2). Stored
    /// documents wrap a field in two more levels, well under serde_json's
    /// 128, so a field that passes is always readable again.
    pub max_depth: usize,
    /// Most members of one array or object.
    pub max_items: usize,
    /// Most bytes of one stored field, serialized.
    pub max_field_bytes: usize,
}

impl Default for JsonLimits {
    fn default() -> JsonLimits {
        JsonLimits {
            max_depth: 32,
            max_items: 10_000,
            max_field_bytes: 256 * 1024,
        }
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonViolation {
    TooDeep { depth: usize, max: usize },
    TooManyItems { items: usize, max: usize },
    TooLarge { bytes: usize, max: usize },
}

impl std::fmt::Display for JsonViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JsonViolation::TooDeep { depth, max } => write!(
                f,
                "JSON is nested {depth} levels deep; at most {max} levels are allowed"
            ),
            JsonViolation::TooManyItems { items, max } => write!(
                f,
                "a JSON array or object has {items} members; at most {max} are allowed"
            ),
            JsonViolation::TooLarge { bytes, max } => {
                write!(f, "JSON is {bytes} bytes; at most {max} bytes are allowed")
            }
        }
    }
}

/// Nesting depth of arrays and objects: 0 for a scalar.
pub fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Length of `value` serialized compactly, without building the text.
pub fn serialized_len(value: &Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a Value to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

fn widest(value: &Value) -> usize {
    match value {
        Value::Array(items) => items.iter().map(widest).max().unwrap_or(0).max(items.len()),
        Value::Object(map) => map.values().map(widest).max().unwrap_or(0).max(map.len()),
        _ => 0,
    }
}

impl JsonLimits {
    /// Checks a whole document (a request body): depth and member counts.
    /// Its size is the body limit's business.
    pub fn check(&self, value: &Value) -> Result<(), JsonViolation> {
        let depth = depth(value);
        if depth > self.max_depth {
            return Err(JsonViolation::TooDeep {
                depth,
                max: self.max_depth,
            });
        }
        let items = widest(value);
        if items > self.max_items {
            return Err(JsonViolation::TooManyItems {
                items,
                max: self.max_items,
            });
        }
        Ok(())
    }

    /// Checks one stored field: depth, member counts and serialized size.
    pub fn check_field(&self, value: &Value) -> Result<(), JsonViolation> {
        self.check(value)?;
        let bytes = serialized_len(value);
        if bytes > self.max_field_bytes {
            return Err(JsonViolation::TooLarge {
                bytes,
                max: self.max_field_bytes,
            });
        }
        Ok(())
    }

    /// Start-up validation of configured values.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_depth == 0 || self.max_depth > 100 {
            return Err("max_json_depth must be between 1 and 100".into());
        }
        if self.max_items == 0 || self.max_field_bytes == 0 {
            return Err("max_json_items and max_json_field_bytes must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(levels: usize) -> Value {
        let mut value = json!("leaf");
        for _ in 0..levels {
            value = json!({ "k": value });
        }
        value
    }

    #[test]
    fn depth_counts_containers() {
        for (value, expected) in [
            (json!(1), 0),
            (json!({}), 1),
            (json!([]), 1),
            (json!({"a": [1, {"b": null}]}), 3),
            (nested(40), 40),
        ] {
            assert_eq!(depth(&value), expected, "{value}");
        }
    }

    #[test]
    fn bounds_refuse_what_exceeds_them() {
        let limits = JsonLimits {
            max_depth: 4,
            max_items: 3,
            max_field_bytes: 20,
        };
        assert_eq!(limits.check(&nested(4)), Ok(()));
        assert_eq!(
            limits.check(&nested(5)),
            Err(JsonViolation::TooDeep { depth: 5, max: 4 })
        );
        assert_eq!(
            limits.check(&json!({"a": [1, 2, 3, 4]})),
            Err(JsonViolation::TooManyItems { items: 4, max: 3 })
        );
        assert_eq!(limits.check_field(&json!("012345678901234567")), Ok(()));
        assert_eq!(
            limits.check_field(&json!("0123456789012345678")),
            Err(JsonViolation::TooLarge { bytes: 21, max: 20 })
        );
    }

    #[test]
    fn serialized_len_matches_to_string() {
        let value = json!({"a": [1, "caf\u{e9}", null, {"b": 2.5}]});
        assert_eq!(serialized_len(&value), value.to_string().len());
    }
}
