//! Nova's `ComputeCapabilitiesFilter` for bare-metal nodes, pure: the node's
//! `properties.capabilities` ("k1:v1,k2:v2") as the Ironic driver turns them
//! into host stats, and the flavor's `capabilities:*` extra specs matched
//! with the operators of `nova.scheduler.filters.extra_specs_ops`.

use std::collections::BTreeMap;

use serde_json::Value;

/// What the Ironic driver reports as a node's stats: `cpu_arch` from the
/// properties plus every well-formed `key:value` of `capabilities`.
/// Malformed entries are skipped, as upstream does (with a warning there).
pub fn node_stats(properties: &Value) -> BTreeMap<String, String> {
    let mut stats = BTreeMap::new();
    if let Some(arch) = properties.get("cpu_arch").and_then(Value::as_str) {
        stats.insert("cpu_arch".to_string(), arch.to_string());
    }
    let capabilities = match properties.get("capabilities") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        // Upstream stringifies whatever is there.
        Some(other) => other.to_string(),
    };
    if capabilities.is_empty() {
        return stats;
    }
    for capability in capabilities.split(',') {
        let parts: Vec<&str> = capability.split(':').collect();
        if parts.len() == 2 && !parts[0].is_empty() && !parts[1].is_empty() {
            // The key is stripped, the value is not (as upstream).
            stats.insert(parts[0].trim().to_string(), parts[1].to_string());
        } else {
            tracing::debug!(capability, "ignoring malformed capability");
        }
    }
    stats
}

/// Whether a node with `stats` passes the flavor's `extra_specs`.
///
/// Keys without a namespace are checked only when the node has such a stat;
/// keys in the `capabilities:` namespace must be satisfied (a missing stat
/// fails); keys of any other namespace are ignored.
pub fn host_passes(
    stats: &BTreeMap<String, String>,
    extra_specs: &BTreeMap<String, String>,
) -> bool {
    extra_specs.iter().all(|(key, requirement)| {
        let mut scope: Vec<&str> = key.split(':').collect();
        if scope.len() == 1 {
            if !stats.contains_key(key) {
                return true;
            }
        } else if scope[0] != "capabilities" {
            return true;
        } else {
            scope.remove(0);
        }
        match lookup(stats, &scope) {
            Some(value) => matches(&value, requirement),
            None => false,
        }
    })
}

/// Walks `scope` through the stats; nested levels are JSON documents.
fn lookup(stats: &BTreeMap<String, String>, scope: &[&str]) -> Option<String> {
    let (first, rest) = scope.split_first()?;
    let mut current = Value::String(stats.get(*first)?.clone());
    for key in rest {
        let object = match &current {
            Value::String(text) => serde_json::from_str::<Value>(text).ok()?,
            other => other.clone(),
        };
        current = object.as_object()?.get(*key)?.clone();
        if current.is_null() {
            return None;
        }
    }
    Some(python_str(&current))
}

/// Python's `str()` of a decoded JSON value, for the few shapes that matter.
fn python_str(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

fn float(text: &str) -> Option<f64> {
    let text = text.trim().replace('_', "");
    text.parse::<f64>().ok()
}

fn numeric(value: &str, wanted: &str, compare: fn(f64, f64) -> bool) -> bool {
    match (float(value), float(wanted)) {
        (Some(a), Some(b)) => compare(a, b),
        // Upstream raises ValueError; the host then does not pass.
        _ => false,
    }
}

/// `extra_specs_ops.match(value, req)`.
pub fn matches(value: &str, requirement: &str) -> bool {
    let mut words: Vec<&str> = requirement.split_whitespace().collect();
    if words.is_empty() {
        return value == requirement;
    }
    let op = words.remove(0);
    match op {
        "<or>" => {
            // "<or> v1 <or> v2 <or> v3": the values sit at every other word.
            let mut index = 0;
            while index < words.len() {
                if words[index] == value {
                    return true;
                }
                index += 2;
            }
            false
        }
        "=" | ">=" => words
            .first()
            .is_some_and(|w| numeric(value, w, |a, b| a >= b)),
        "==" => words
            .first()
            .is_some_and(|w| numeric(value, w, |a, b| a == b)),
        "!=" => words
            .first()
            .is_some_and(|w| numeric(value, w, |a, b| a != b)),
        "<=" => words
            .first()
            .is_some_and(|w| numeric(value, w, |a, b| a <= b)),
        "<in>" => words.first().is_some_and(|w| value.contains(w)),
        "<all-in>" => !words.is_empty() && words.iter().all(|w| value.contains(w)),
        "s==" => words.first().is_some_and(|w| value == *w),
        "s!=" => words.first().is_some_and(|w| value != *w),
        "s<" => words.first().is_some_and(|w| value < *w),
        "s<=" => words.first().is_some_and(|w| value <= *w),
        "s>" => words.first().is_some_and(|w| value > *w),
        "s>=" => words.first().is_some_and(|w| value >= *w),
        _ => value == requirement,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operators_as_upstream() {
        // (value, requirement, expected), cases from upstream's
        // test_extra_specs_ops.py.
        let table: &[(&str, &str, bool)] = &[
            ("123", "123", true),
            ("124", "123", false),
            ("uefi", "uefi", true),
            ("bios", "uefi", false),
            ("123", "= 123", true),
            ("124", "= 123", true),
            ("122", "= 123", false),
            ("1.5", "= 1", true),
            ("abc", "= 1", false),
            ("12311321", "<in> 11", true),
            ("12310321", "<in> 11", false),
            ("12311321", "<in> 12311321", true),
            ("12311321", "<in> 12311321 <in>", true),
            ("12311321", "<all-in> 11 32", true),
            ("12310321", "<all-in> 11 44", false),
            ("12", "<all-in>", false),
            ("12", "<or> 11 <or> 12", true),
            ("13", "<or> 11 <or> 12", false),
            ("12", "<or> 11 <or> 12 <or>", true),
            ("11", "<or> 11", true),
            ("12", "<or>", false),
            ("123", "== 123", true),
            ("124", "== 123", false),
            ("124", "!= 123", true),
            ("123", "!= 123", false),
            ("124", ">= 123", true),
            ("122", ">= 123", false),
            ("122", "<= 123", true),
            ("124", "<= 123", false),
            ("123", "s== 123", true),
            ("1230", "s== 123", false),
            ("1230", "s!= 123", true),
            ("123", "s!= 123", false),
            ("12", "s< 2", true),
            ("3", "s< 2", false),
            ("2", "s<= 2", true),
            ("3", "s> 22", true),
            ("2", "s>= 22", false),
            ("22", "s>= 22", true),
        ];
        for (value, requirement, expected) in table {
            assert_eq!(
                matches(value, requirement),
                *expected,
                "match({value:?}, {requirement:?})"
            );
        }
    }

    #[test]
    fn stats_from_properties() {
        let stats = node_stats(&json!({
            "cpu_arch": "x86_64",
            "capabilities": "boot_mode:uefi, profile:gold,broken,a:b:c,:x,cpus:8"
        }));
        let expected: BTreeMap<String, String> = [
            ("cpu_arch", "x86_64"),
            ("boot_mode", "uefi"),
            ("profile", "gold"),
            ("cpus", "8"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(stats, expected);
        assert!(node_stats(&json!({})).is_empty());
    }

    fn specs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn filter_scopes() {
        let stats = node_stats(&json!({
            "cpu_arch": "x86_64",
            "capabilities": "boot_mode:uefi,profile:gold,cpus:8"
        }));
        let table: &[(&[(&str, &str)], bool)] = &[
            (&[], true),
            (&[("capabilities:boot_mode", "uefi")], true),
            (&[("capabilities:boot_mode", "bios")], false),
            (&[("capabilities:profile", "<or> silver <or> gold")], true),
            (&[("capabilities:cpus", ">= 4")], true),
            (&[("capabilities:cpus", "= 16")], false),
            // Missing capability: fails.
            (&[("capabilities:raid", "true")], false),
            // Other namespaces are not this filter's business.
            (
                &[("resources:CUSTOM_GOLD", "1"), ("trait:FOO", "required")],
                true,
            ),
            // Unscoped keys count only when the node has the stat.
            (&[("cpu_arch", "x86_64")], true),
            (&[("cpu_arch", "aarch64")], false),
            (&[("hw_rng", "true")], true),
            (
                &[
                    ("capabilities:boot_mode", "s== uefi"),
                    ("capabilities:cpus", "<= 8"),
                ],
                true,
            ),
        ];
        for (extra_specs, expected) in table {
            assert_eq!(
                host_passes(&stats, &specs(extra_specs)),
                *expected,
                "{extra_specs:?}"
            );
        }
    }
}
