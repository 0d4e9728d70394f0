//! Root device hints with upstream's operator grammar.
//!
//! A hint is `name: expression`. Expressions follow ironic's grammar: an
//! optional operator then the value(s). Integer hints (`size`, in GiB)
//! take `==` (the default), `!=`, `>=`, `>`, `<=`, `<`, `=` (at least),
//! `<in>` and `<or>`; string hints take `s==` (the default), `s!=`, `s>=`,
//! `s>`, `s<=`, `s<`, `<in>` (substring), `<all-in>` and `<or>`
//! (`<or> a <or> b`). Comparisons are case-insensitive: hints and device
//! values are trimmed, lower-cased and URL-quoted before comparing, as
//! upstream does. `rotational` is a Boolean (`true`/`false`/`yes`/`no`/
//! `1`/`0`/`on`/`off`/`t`/`f`/`y`/`n`). A `name` may omit `/dev/`.
use crate::hardware::Disk;
use crate::{ImagingError, Result};

/// Disks smaller than this are ignored when no hints are given.
pub const MIN_ROOT_DISK: u64 = 4 << 30;

const GIB: f64 = (1u64 << 30) as f64;

/// Every hint upstream accepts, with its type.
const VALID_HINTS: &[(&str, HintType)] = &[
    ("size", HintType::Int),
    ("model", HintType::Str),
    ("wwn", HintType::Str),
    ("serial", HintType::Str),
    ("vendor", HintType::Str),
    ("wwn_with_extension", HintType::Str),
    ("wwn_vendor_extension", HintType::Str),
    ("name", HintType::Str),
    ("rotational", HintType::Bool),
    ("hctl", HintType::Str),
    ("by_path", HintType::Str),
];

/// Operators in the order the grammar tries them (longer first where one
/// is a prefix of another).
const UNARY_OPS: &[&str] = &[
    "==", "=", "!=", "<in>", ">=", "<=", ">", "<", "s==", "s!=", "s<=", "s<", "s>=", "s>",
];
const OR: &str = "<or>";
const ALL_IN: &str = "<all-in>";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HintType {
    Int,
    Str,
    Bool,
}

/// One parsed hint: operator and (normalised) values.
#[derive(Debug, Clone, PartialEq)]
pub struct Hint {
    pub name: String,
    /// The operator (`s==`, `==`, `<or>`…); empty for Boolean hints.
    pub op: String,
    pub values: Vec<String>,
    /// For `rotational`.
    pub boolean: Option<bool>,
}

/// The operator an expression starts with, if any.
fn leading_op(expr: &str) -> Option<&'static str> {
    let starts_with_any = |s: &str| {
        s.starts_with(OR) || s.starts_with(ALL_IN) || UNARY_OPS.iter().any(|op| s.starts_with(op))
    };
    if let Some(rest) = expr.strip_prefix(OR) {
        let rest = rest.trim_start();
        if !rest.is_empty() && !starts_with_any(rest) {
            return Some(OR);
        }
    }
    if let Some(rest) = expr.strip_prefix(ALL_IN) {
        let rest = rest.trim_start();
        if !rest.is_empty() && !starts_with_any(rest) {
            return Some(ALL_IN);
        }
    }
    for op in UNARY_OPS {
        if let Some(rest) = expr.strip_prefix(op) {
            let rest = rest.trim_start();
            if !rest.is_empty() && !starts_with_any(rest) {
                return Some(op);
            }
            return None;
        }
    }
    None
}

/// Operator and values of `expression` (trimmed, lower case).
fn split_expression(expression: &str, name: &str) -> Result<(String, Vec<String>)> {
    let expr = expression.trim().to_lowercase();
    if expr.is_empty() {
        return Err(ImagingError::Invalid(format!(
            "Root device hint \"{name}\" expression is empty"
        )));
    }
    let starts_with_op = UNARY_OPS.iter().any(|op| expr.starts_with(op))
        || expr.starts_with(OR)
        || expr.starts_with(ALL_IN);
    match leading_op(&expr) {
        None if starts_with_op => Err(ImagingError::Invalid(format!(
            "Root device hint \"{name}\" has an operator without a value: {expression:?}"
        ))),
        None => Ok((String::new(), vec![expr])),
        Some(op) => {
            let values: Vec<String> = expr
                .split(op)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .collect();
            Ok((op.to_string(), values))
        }
    }
}

/// URL quoting as Python's `urllib.parse.quote` (safe: `/`).
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"_.-~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn python_str(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Bool(true) => "True".into(),
        serde_json::Value::Bool(false) => "False".into(),
        serde_json::Value::Null => "None".into(),
        other => other.to_string(),
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

/// Parses and validates `hints` (a node's `properties.root_device`).
/// `None` when there are no hints (null or an empty object).
pub fn parse_hints(hints: &serde_json::Value) -> Result<Option<Vec<Hint>>> {
    let map = match hints {
        serde_json::Value::Null => return Ok(None),
        serde_json::Value::Object(map) => map,
        other => {
            return Err(ImagingError::Invalid(format!(
                "Root device hints must be a JSON object, got {other}"
            )))
        }
    };
    if map.is_empty() {
        return Ok(None);
    }
    let invalid: Vec<&str> = map
        .keys()
        .filter(|k| !VALID_HINTS.iter().any(|(n, _)| n == k))
        .map(String::as_str)
        .collect();
    if !invalid.is_empty() {
        let valid: Vec<&str> = VALID_HINTS.iter().map(|(n, _)| *n).collect();
        return Err(ImagingError::Invalid(format!(
            "The hints \"{}\" are invalid. Valid hints are: \"{}\"",
            invalid.join(", "),
            valid.join(", ")
        )));
    }
    let mut parsed = Vec::new();
    for (name, value) in map {
        let ty = VALID_HINTS
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| *t)
            .unwrap_or(HintType::Str);
        let expression = python_str(value);
        match ty {
            HintType::Str => {
                if !value.is_string() {
                    return Err(ImagingError::Invalid(format!(
                        "Root device hint \"{name}\" is not a string value. Hint expression: {expression}"
                    )));
                }
                let (op, values) = split_expression(&expression, name)?;
                let op = if op.is_empty() { "s==".to_string() } else { op };
                if !op.starts_with('s') && ![OR, ALL_IN, "<in>"].contains(&op.as_str()) {
                    return Err(ImagingError::Invalid(format!(
                        "Root device hint \"{name}\" is a string: operator \"{op}\" compares numbers, use s==, s!=, s<, s<=, s>, s>=, <in> or <or>. Hint expression: {expression}"
                    )));
                }
                let values = values
                    .iter()
                    .map(|v| {
                        let v = quote(v);
                        if name == "name" && !v.starts_with("/dev/") {
                            format!("/dev/{v}")
                        } else {
                            v
                        }
                    })
                    .collect();
                parsed.push(Hint {
                    name: name.clone(),
                    op,
                    values,
                    boolean: None,
                });
            }
            HintType::Int => {
                let (op, values) = split_expression(&expression, name)?;
                for v in &values {
                    let integer: i64 = v.trim().parse().map_err(|_| {
                        ImagingError::Invalid(format!(
                            "Root device hint \"{name}\" is not an integer value. Current value: {expression}"
                        ))
                    })?;
                    if integer <= 0 {
                        return Err(ImagingError::Invalid(format!(
                            "Root device hint \"{name}\" should be a positive integer. Current value: {expression}"
                        )));
                    }
                }
                let op = if op.is_empty() { "==".to_string() } else { op };
                if op.starts_with('s') || op == ALL_IN {
                    return Err(ImagingError::Invalid(format!(
                        "Root device hint \"{name}\" is an integer: operator \"{op}\" compares strings, use ==, !=, <, <=, >, >=, <in> or <or>. Current value: {expression}"
                    )));
                }
                parsed.push(Hint {
                    name: name.clone(),
                    op,
                    values,
                    boolean: None,
                });
            }
            HintType::Bool => {
                let b = parse_bool(&expression).ok_or_else(|| {
                    ImagingError::Invalid(format!(
                        "Root device hint \"{name}\" is not a Boolean value. Current value: {expression}"
                    ))
                })?;
                parsed.push(Hint {
                    name: name.clone(),
                    op: String::new(),
                    values: Vec::new(),
                    boolean: Some(b),
                });
            }
        }
    }
    Ok(Some(parsed))
}

fn disk_string<'a>(disk: &'a Disk, name: &str) -> Option<&'a str> {
    let v = match name {
        "name" => Some(disk.name.as_str()),
        "model" => Some(disk.model.as_str()),
        "vendor" => Some(disk.vendor.as_str()),
        "serial" => disk.serial.as_deref(),
        "wwn" => disk.wwn.as_deref(),
        "wwn_with_extension" => disk.wwn_with_extension.as_deref(),
        "wwn_vendor_extension" => disk.wwn_vendor_extension.as_deref(),
        "hctl" => disk.hctl.as_deref(),
        "by_path" => disk.by_path.as_deref(),
        _ => None,
    };
    v.filter(|s| !s.trim().is_empty())
}

fn parse_f64(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok()
}

/// Whether `disk` satisfies `hint`.
pub fn matches(disk: &Disk, hint: &Hint) -> bool {
    if let Some(wanted) = hint.boolean {
        return disk.rotational == wanted;
    }
    let first = hint.values.first().map(String::as_str).unwrap_or("");
    if hint.name == "size" {
        let gib = disk.size as f64 / GIB;
        let num = |v: &str| parse_f64(v);
        return match hint.op.as_str() {
            "==" => num(first) == Some(gib),
            "=" | ">=" => num(first).is_some_and(|v| gib >= v),
            "!=" => num(first).is_some_and(|v| gib != v),
            ">" => num(first).is_some_and(|v| gib > v),
            "<=" => num(first).is_some_and(|v| gib <= v),
            "<" => num(first).is_some_and(|v| gib < v),
            "<in>" => {
                let shown = if gib.fract() == 0.0 {
                    format!("{}", gib as u64)
                } else {
                    format!("{gib}")
                };
                shown.contains(first)
            }
            "<or>" => hint.values.iter().any(|v| num(v) == Some(gib)),
            _ => false,
        };
    }
    let Some(raw) = disk_string(disk, &hint.name) else {
        return false;
    };
    let value = quote(raw.trim().to_lowercase().as_str());
    let v = first;
    match hint.op.as_str() {
        "s==" => value == v,
        "s!=" => value != v,
        "s<" => value.as_str() < v,
        "s<=" => value.as_str() <= v,
        "s>" => value.as_str() > v,
        "s>=" => value.as_str() >= v,
        "<in>" => value.contains(v),
        "<or>" => hint.values.contains(&value),
        "<all-in>" => hint.values.iter().all(|w| value.contains(w.as_str())),
        _ => false,
    }
}

/// The disk to deploy to. With `hints` (a JSON object as in a node's
/// `properties.root_device`): the first disk, in inventory order, that
/// satisfies every hint — what ironic-python-agent picks. Without hints:
/// the smallest disk of at least 4 GiB.
pub fn select_root_device<'a>(
    disks: &'a [Disk],
    hints: Option<&serde_json::Value>,
) -> Result<&'a Disk> {
    let parsed = match hints {
        Some(h) => parse_hints(h)?,
        None => None,
    };
    match parsed {
        None => {
            let mut candidates: Vec<&Disk> =
                disks.iter().filter(|d| d.size >= MIN_ROOT_DISK).collect();
            candidates.sort_by_key(|d| d.size);
            candidates.first().copied().ok_or_else(|| {
                ImagingError::NoDisk(format!(
                    "No suitable device was found for deployment - root device hints were not provided and all {} found block devices are smaller than {MIN_ROOT_DISK}B",
                    disks.len()
                ))
            })
        }
        Some(parsed) => disks
            .iter()
            .find(|d| parsed.iter().all(|h| matches(d, h)))
            .ok_or_else(|| {
                let shown = hints.map(|h| h.to_string()).unwrap_or_default();
                let names: Vec<String> = disks
                    .iter()
                    .map(|d| format!("{} ({} GiB)", d.name, d.size >> 30))
                    .collect();
                ImagingError::NoDisk(format!(
                    "No suitable device was found for deployment using these hints {shown}; disks: {}",
                    if names.is_empty() { "none".to_string() } else { names.join(", ") }
                ))
            }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::PathBuf;

    fn disk(name: &str, gib: u64) -> Disk {
        Disk {
            name: name.into(),
            path: PathBuf::from(format!("/tmp/{name}")),
            size: gib << 30,
            model: "Samsung SSD 860".into(),
            vendor: "ATA".into(),
            serial: Some(format!("SER-{name}")),
            wwn: Some("0x5000c500a1b2c3d4".into()),
            wwn_with_extension: None,
            wwn_vendor_extension: None,
            rotational: name.ends_with('a'),
            hctl: Some("1:0:0:0".into()),
            by_path: Some(format!("/dev/disk/by-path/pci-0000:00:1f.2-{name}")),
        }
    }

    fn disks() -> Vec<Disk> {
        vec![
            disk("/dev/sda", 100),
            disk("/dev/sdb", 20),
            disk("/dev/sdc", 2),
            disk("/dev/sdd", 50),
        ]
    }

    fn pick(h: serde_json::Value) -> Result<String> {
        let d = disks();
        select_root_device(&d, Some(&h)).map(|d| d.name.clone())
    }

    #[test]
    fn without_hints_smallest_of_at_least_4_gib() {
        let d = disks();
        assert_eq!(
            select_root_device(&d, None).map(|d| d.name.as_str()).ok(),
            Some("/dev/sdb")
        );
        assert_eq!(
            select_root_device(&d, Some(&json!({})))
                .map(|d| d.name.as_str())
                .ok(),
            Some("/dev/sdb")
        );
        let small = vec![disk("/dev/sdc", 2)];
        let err = select_root_device(&small, None).err();
        assert!(
            matches!(err, Some(ImagingError::NoDisk(ref m)) if m.contains("smaller than 4294967296")),
            "{err:?}"
        );
    }

    #[test]
    fn size_operators() {
        assert_eq!(pick(json!({"size": 50})).ok().as_deref(), Some("/dev/sdd"));
        assert_eq!(
            pick(json!({"size": "50"})).ok().as_deref(),
            Some("/dev/sdd")
        );
        assert_eq!(
            pick(json!({"size": "== 20"})).ok().as_deref(),
            Some("/dev/sdb")
        );
        assert_eq!(
            pick(json!({"size": "!= 100"})).ok().as_deref(),
            Some("/dev/sdb")
        );
        assert_eq!(
            pick(json!({"size": ">= 50"})).ok().as_deref(),
            Some("/dev/sda")
        );
        // `=` means "at least", as in oslo's specs matcher.
        assert_eq!(
            pick(json!({"size": "= 60"})).ok().as_deref(),
            Some("/dev/sda")
        );
        assert_eq!(
            pick(json!({"size": "= 21"})).ok().as_deref(),
            Some("/dev/sda")
        );
        assert_eq!(
            pick(json!({"size": "> 60"})).ok().as_deref(),
            Some("/dev/sda")
        );
        assert_eq!(
            pick(json!({"size": "<= 20"})).ok().as_deref(),
            Some("/dev/sdb")
        );
        assert_eq!(
            pick(json!({"size": "< 20"})).ok().as_deref(),
            Some("/dev/sdc")
        );
        assert_eq!(
            pick(json!({"size": "<in> 5"})).ok().as_deref(),
            Some("/dev/sdd")
        );
        assert_eq!(
            pick(json!({"size": "<or> 7 <or> 2"})).ok().as_deref(),
            Some("/dev/sdc")
        );
        assert!(matches!(
            pick(json!({"size": 42})),
            Err(ImagingError::NoDisk(_))
        ));
    }

    #[test]
    fn string_operators() {
        assert_eq!(
            pick(json!({"serial": "ser-/dev/sdd"})).ok().as_deref(),
            Some("/dev/sdd")
        );
        assert_eq!(
            pick(json!({"serial": "s== SER-/dev/sdb"})).ok().as_deref(),
            Some("/dev/sdb")
        );
        assert_eq!(
            pick(json!({"serial": "s!= ser-/dev/sda"})).ok().as_deref(),
            Some("/dev/sdb")
        );
        assert_eq!(
            pick(json!({"serial": "s> ser-/dev/sdc"})).ok().as_deref(),
            Some("/dev/sdd")
        );
        assert_eq!(
            pick(json!({"serial": "s>= ser-/dev/sdc"})).ok().as_deref(),
            Some("/dev/sdc")
        );
        assert_eq!(
            pick(json!({"serial": "s< ser-/dev/sdb"})).ok().as_deref(),
            Some("/dev/sda")
        );
        assert_eq!(
            pick(json!({"serial": "s<= ser-/dev/sdb", "size": "< 50"}))
                .ok()
                .as_deref(),
            Some("/dev/sdb")
        );
        assert_eq!(
            pick(json!({"by_path": "<in> 1f.2-/dev/sdc"}))
                .ok()
                .as_deref(),
            Some("/dev/sdc")
        );
        assert_eq!(
            pick(json!({"serial": "<or> nope <or> SER-/dev/sdd"}))
                .ok()
                .as_deref(),
            Some("/dev/sdd")
        );
        assert_eq!(
            pick(json!({"model": "samsung ssd 860", "size": 20}))
                .ok()
                .as_deref(),
            Some("/dev/sdb")
        );
        assert_eq!(
            pick(json!({"model": "<in> SSD 8"})).ok().as_deref(),
            Some("/dev/sda")
        );
        assert!(matches!(
            pick(json!({"model": "s== other"})),
            Err(ImagingError::NoDisk(_))
        ));
    }

    #[test]
    fn name_with_or_without_dev_and_bool() {
        assert_eq!(
            pick(json!({"name": "sdd"})).ok().as_deref(),
            Some("/dev/sdd")
        );
        assert_eq!(
            pick(json!({"name": "/dev/sdb"})).ok().as_deref(),
            Some("/dev/sdb")
        );
        assert_eq!(
            pick(json!({"name": "<or> sdx <or> sdc"})).ok().as_deref(),
            Some("/dev/sdc")
        );
        assert_eq!(
            pick(json!({"rotational": false})).ok().as_deref(),
            Some("/dev/sdb")
        );
        assert_eq!(
            pick(json!({"rotational": "yes"})).ok().as_deref(),
            Some("/dev/sda")
        );
        assert_eq!(
            pick(json!({"wwn": "0X5000C500A1B2C3D4", "hctl": "1:0:0:0"}))
                .ok()
                .as_deref(),
            Some("/dev/sda")
        );
    }

    #[test]
    fn empty_device_attribute_never_matches() {
        let mut d = disks();
        d[0].serial = None;
        d[1].serial = Some(String::new());
        let h = json!({"serial": "<in> ser"});
        assert_eq!(
            select_root_device(&d, Some(&h))
                .map(|d| d.name.as_str())
                .ok(),
            Some("/dev/sdc")
        );
    }

    #[test]
    fn validation_errors() {
        let invalid = |h: serde_json::Value| match pick(h) {
            Err(ImagingError::Invalid(m)) => m,
            other => panic!("expected Invalid, got {other:?}"),
        };
        assert!(invalid(json!({"colour": "red"})).contains("The hints \"colour\" are invalid"));
        assert!(invalid(json!({"size": "big"})).contains("is not an integer value"));
        assert!(invalid(json!({"size": 0})).contains("should be a positive integer"));
        assert!(invalid(json!({"size": "> -3"})).contains("should be a positive integer"));
        assert!(invalid(json!({"model": 5})).contains("is not a string value"));
        assert!(invalid(json!({"rotational": "maybe"})).contains("is not a Boolean value"));
        assert!(invalid(json!({"model": "  "})).contains("expression is empty"));
        assert!(invalid(json!({"model": "s=="})).contains("operator without a value"));
        assert!(invalid(json!({"model": "== x"})).contains("compares numbers"));
        assert!(invalid(json!({"size": "s== 3"})).contains("compares strings"));
        assert!(invalid(json!(["size"])).contains("JSON object"));
    }

    #[test]
    fn values_are_quoted_and_lowercased() {
        let parsed = parse_hints(&json!({"model": "<or> Foo Bar <or> baz"}))
            .ok()
            .flatten();
        let h = parsed.as_ref().and_then(|p| p.first());
        assert_eq!(
            h.map(|h| h.values.clone()),
            Some(vec!["foo%20bar".to_string(), "baz".to_string()])
        );
        let mut d = disk("/dev/sda", 10);
        d.model = "FOO BAR".into();
        assert!(h.is_some_and(|h| matches(&d, h)));
    }
}
