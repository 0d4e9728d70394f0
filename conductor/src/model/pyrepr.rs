//! Python's `repr()` of JSON values, because upstream's error texts embed it.
//!
//! Upstream builds messages such as `'x' is not of type 'object'` or
//! `Couldn't apply patch '{'op': 'remove', 'path': '/a'}'` by formatting the
//! decoded JSON with Python's `repr`/`str`. These helpers reproduce that
//! formatting for values decoded from JSON.

use serde_json::Value;

/// `repr(value)` of a JSON-decoded Python value (`True`, `None`, `'s'`, …).
pub fn repr(value: &Value) -> String {
    let mut out = String::new();
    write_repr(value, &mut out);
    out
}

/// `repr(text)` of a Python string.
pub fn repr_str(text: &str) -> String {
    let mut out = String::new();
    write_str(text, &mut out);
    out
}

/// `str(value)`: like `repr` except that a string is shown bare.
pub fn str_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => repr(other),
    }
}

fn write_repr(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(number) => {
            if let Some(float) = number.as_f64().filter(|_| number.is_f64()) {
                out.push_str(&repr_float(float));
            } else {
                out.push_str(&number.to_string());
            }
        }
        Value::String(text) => write_str(text, out),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                write_repr(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (index, (key, item)) in map.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                write_str(key, out);
                out.push_str(": ");
                write_repr(item, out);
            }
            out.push('}');
        }
    }
}

/// Python's shortest round-trip float repr (`1.0`, `1e+16`, `1.5e-05`).
pub fn repr_float(float: f64) -> String {
    if float.is_nan() {
        return "nan".to_string();
    }
    if float.is_infinite() {
        return if float > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. `1.5e-5`.
    let scientific = format!("{float:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exponent) {
        let point = exponent + 1;
        let text = if point <= 0 {
            format!("0.{}{}", "0".repeat(point.unsigned_abs() as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            let (whole, fraction) = digits.split_at(point as usize);
            format!("{whole}.{fraction}")
        };
        format!("{sign}{text}")
    } else {
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() {
            first.to_string()
        } else {
            format!("{first}.{rest}")
        };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{sign}{mantissa}e{exponent_sign}{:02}",
            exponent.unsigned_abs()
        )
    }
}

fn write_str(text: &str, out: &mut String) {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for character in text.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if is_printable(c) => out.push(c),
            c => {
                let code = c as u32;
                if code < 0x100 {
                    out.push_str(&format!("\\x{code:02x}"));
                } else if code < 0x10000 {
                    out.push_str(&format!("\\u{code:04x}"));
                } else {
                    out.push_str(&format!("\\U{code:08x}"));
                }
            }
        }
    }
    out.push(quote);
}

/// An approximation of Python's `str.isprintable` per character: control
/// characters, separators other than the space, and format characters are
/// escaped.
fn is_printable(character: char) -> bool {
    let code = character as u32;
    if character == ' ' {
        return true;
    }
    !(character.is_control()
        || character.is_whitespace()
        || matches!(code, 0xad | 0x200b..=0x200f | 0x2028..=0x202e | 0x2060..=0x2064 | 0xfeff)
        || (0xd800..=0xdfff).contains(&code)
        || (0xe000..=0xf8ff).contains(&code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reprs_like_python() {
        let cases = [
            (json!(null), "None"),
            (json!(true), "True"),
            (json!(12), "12"),
            (json!(1.0), "1.0"),
            (json!(1.5e-5), "1.5e-05"),
            (json!(1e16), "1e+16"),
            (json!(123456.75), "123456.75"),
            (json!(0.0001), "0.0001"),
            (json!("it's"), "\"it's\""),
            (json!("a'b\"c"), "'a\\'b\"c'"),
            (json!("tab\tnl\n\u{1}"), "'tab\\tnl\\n\\x01'"),
            (json!("é"), "'é'"),
            (json!([1, "x", {"a": null}]), "[1, 'x', {'a': None}]"),
            (json!({}), "{}"),
        ];
        for (value, expected) in cases {
            assert_eq!(repr(&value), expected, "{value}");
        }
        assert_eq!(str_of(&json!("bare")), "bare");
    }
}
