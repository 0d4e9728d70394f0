//! Secret masking as upstream applies it to `driver_info`, `instance_info`
//! and `driver_internal_info` (oslo.utils' `mask_dict_password`).
//!
//! A key containing any of the sensitive words has its value replaced; a
//! string value is also scanned for `password=…`-like fragments; nested
//! objects and lists are masked recursively.

use std::sync::OnceLock;

use regex::Regex;
use serde_json::{Map, Value};

/// The replacement upstream's API uses.
pub const SECRET: &str = "******";

/// oslo.utils' list of sensitive key fragments (compared lower-cased).
const SENSITIVE_KEYS: &[&str] = &[
    "adminpass",
    "admin_pass",
    "password",
    "admin_password",
    "auth_token",
    "new_pass",
    "auth_password",
    "secret_uuid",
    "secret",
    "sys_pswd",
    "token",
    "configdrive",
    "chappassword",
    "encrypted_key",
    "private_key",
    "fernetkey",
    "sslkey",
    "passphrase",
    "cephclusterfsid",
    "octaviaheartbeatkey",
    "rabbitcookie",
    "cephmanilaclientkey",
    "pacemakerremoteauthkey",
    "designaterndckey",
    "cephadminkey",
    "heatauthencryptionkey",
    "cephclientkey",
    "keystonecredential",
    "barbicansimplecryptokek",
    "cephrgwkey",
    "swifthashsuffix",
    "migrationsshkey",
    "cephmdskey",
    "cephmonkey",
    "chapsecret",
];

/// Patterns whose match keeps groups 1 and 2 around the secret.
const TWO_GROUP_PATTERNS: &[&str] = &[
    r#"(KEY[0-9]*\s*[=]\s*["'])[^"']*(["'])"#,
    r#"(KEY[0-9]*\s*[=]\s*["])[^"]*(["])"#,
    r#"(KEY[0-9]*\s*[=]\s*['])[^']*(['])"#,
    r#"(KEY[0-9]*\s+["'])[^"']*(["'])"#,
    r#"([-]{2}KEY[0-9]*\s+)[^'^"^=^\s]+([\s]*)"#,
    r#"(<KEY[0-9]*>)[^<]*(</KEY[0-9]*>)"#,
    r#"(["']KEY[0-9]*["']\s*:\s*["'])[^"']*(["'])"#,
    r#"(['"][^"']*KEY[0-9]*['"]\s*:\s*u?['"])[^"']*(['"])"#,
    r#"(['"][^'"]*KEY[0-9]*['"]\s*,\s*'--?[A-z]+'\s*,\s*u?['"])[^"']*(['"])"#,
    r#"(KEY[0-9]*\s*--?[A-z]+\s*)\S+(\s*)"#,
];
/// Patterns whose match keeps group 1 before the secret.
const ONE_GROUP_PATTERNS: &[&str] = &[r#"(KEY[0-9]*\s*[=]\s*)[^\s^'^"]+"#];
/// Patterns whose match keeps only group 1 (quoted secrets with quotes).
const WILDCARD_PATTERNS: &[&str] = &[r#"(['"][^"']*KEY[0-9]*['"]\s*:\s*u?['"].*['"])[^"']*(['"])"#];

struct KeyPatterns {
    key: &'static str,
    two_groups: Vec<Regex>,
    one_group: Vec<Regex>,
    wildcard: Vec<Regex>,
}

fn compiled() -> &'static [KeyPatterns] {
    static PATTERNS: OnceLock<Vec<KeyPatterns>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        let build = |sources: &[&str], key: &str| -> Vec<Regex> {
            sources
                .iter()
                .filter_map(|source| {
                    Regex::new(&format!("(?is){}", source.replace("KEY", key))).ok()
                })
                .collect()
        };
        SENSITIVE_KEYS
            .iter()
            .map(|key| KeyPatterns {
                key,
                two_groups: build(TWO_GROUP_PATTERNS, key),
                one_group: build(ONE_GROUP_PATTERNS, key),
                wildcard: build(WILDCARD_PATTERNS, key),
            })
            .collect()
    })
}

/// oslo.utils' `mask_password` on one string.
pub fn mask_password(message: &str, secret: &str) -> String {
    let mut message = message.to_string();
    for patterns in compiled() {
        if !message.to_lowercase().contains(patterns.key) {
            continue;
        }
        for regex in &patterns.two_groups {
            message = regex
                .replace_all(&message, format!("${{1}}{secret}${{2}}"))
                .into_owned();
        }
        for regex in &patterns.one_group {
            message = regex
                .replace_all(&message, format!("${{1}}{secret}"))
                .into_owned();
        }
        for regex in &patterns.wildcard {
            message = regex.replace_all(&message, "${1}").into_owned();
        }
    }
    message
}

/// oslo.utils' `mask_dict_password`.
pub fn mask_dict_password(map: &Map<String, Value>, secret: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in map {
        let masked = match value {
            Value::Object(inner) => Value::Object(mask_dict_password(inner, secret)),
            _ if is_sensitive_key(key) => Value::String(secret.to_string()),
            Value::String(text) => Value::String(mask_password(text, secret)),
            Value::Array(items) => {
                Value::Array(items.iter().map(|item| deep_mask(item, secret)).collect())
            }
            other => other.clone(),
        };
        out.insert(key.clone(), masked);
    }
    out
}

fn deep_mask(value: &Value, secret: &str) -> Value {
    match value {
        Value::Object(inner) => Value::Object(mask_dict_password(inner, secret)),
        Value::String(text) => Value::String(mask_password(text, secret)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|item| deep_mask(item, secret)).collect())
        }
        other => other.clone(),
    }
}

fn is_sensitive_key(key: &str) -> bool {
    let lowered = key.to_lowercase();
    SENSITIVE_KEYS
        .iter()
        .any(|sensitive| lowered.contains(sensitive))
}

/// Python truthiness of a JSON value.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_some_and(|f| f != 0.0),
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_pattern_compiles() {
        for patterns in compiled() {
            assert_eq!(
                patterns.two_groups.len(),
                TWO_GROUP_PATTERNS.len(),
                "{}",
                patterns.key
            );
            assert_eq!(patterns.one_group.len(), 1);
            assert_eq!(patterns.wildcard.len(), 1);
        }
    }

    #[test]
    fn masks_like_oslo_utils() {
        let input = json!({
            "ipmi_password": "p4ss",
            "ipmi_username": "admin",
            "nested": {"Password": "x", "list": ["password=abc def", 3]},
            "cmd": "--password d81juxmEW_ ok",
            "token_expiry": 5,
            "plain": "nothing here",
        });
        let Value::Object(map) = input else {
            unreachable!()
        };
        let masked = mask_dict_password(&map, SECRET);
        assert_eq!(
            Value::Object(masked),
            json!({
                "ipmi_password": "******",
                "ipmi_username": "admin",
                "nested": {"Password": "******", "list": ["password=****** def", 3]},
                "cmd": "--password ****** ok",
                "token_expiry": "******",
                "plain": "nothing here",
            })
        );
    }
}
