//! JSON text exactly as Python's `json.dumps(value)` writes it with its defaults, which is what Nova
//! puts on a config drive: `", "` and `": "` separators, non-ASCII escaped as `\uXXXX`, floats as
//! Python's `repr`.

use serde_json::Value;
use std::fmt::Write as _;

/// `json.dumps(value)` with Python's default arguments.
pub fn dumps(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => {
            if let Some(float) = number.as_f64().filter(|_| number.is_f64()) {
                write_float(out, float);
            } else {
                out.push_str(&number.to_string());
            }
        }
        Value::String(text) => write_string(out, text),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (index, (key, item)) in map.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                write_string(out, key);
                out.push_str(": ");
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

/// Python's `ensure_ascii` escaping: only printable ASCII is written as itself.
fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(character),
            other => {
                let mut units = [0u16; 2];
                for unit in other.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Python's `float.__repr__`: the shortest digits that round-trip (Rust finds the same digits),
/// positional notation for decimal exponents -4..16, scientific with a signed two-digit exponent
/// otherwise. JSON has no NaN or infinity, so `serde_json` never hands us one.
fn write_float(out: &mut String, float: f64) {
    // `{:e}` gives the shortest round-trip digits as `d.ddde[-]x`.
    let scientific = format!("{float:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if negative {
        out.push('-');
    }
    if (-4..16).contains(&exponent) {
        let point = exponent + 1; // digits before the decimal point
        if point <= 0 {
            out.push_str("0.");
            out.push_str(&"0".repeat(point.unsigned_abs() as usize));
            out.push_str(&digits);
        } else {
            let point = point as usize;
            if digits.len() <= point {
                out.push_str(&digits);
                out.push_str(&"0".repeat(point - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..point]);
                out.push('.');
                out.push_str(&digits[point..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exponent.unsigned_abs());
    }
}

#[cfg(test)]
mod tests {
    use super::dumps;
    use serde_json::json;

    fn check(value: serde_json::Value, expect: &str) {
        assert_eq!(dumps(&value), expect);
    }

    #[test]
    fn matches_python_json_dumps() {
        check(json!({}), "{}");
        check(json!([]), "[]");
        check(
            json!({"uuid": "u", "keys": [1, 2], "nested": {"a": null, "b": true}}),
            r#"{"uuid": "u", "keys": [1, 2], "nested": {"a": null, "b": true}}"#,
        );
        check(
            json!("é\u{1F600}\"\\\n\t\u{1}\u{7f}/"),
            r#""\u00e9\ud83d\ude00\"\\\n\t\u0001\u007f/""#,
        );
        check(json!(-17), "-17");
        check(json!(18446744073709551615u64), "18446744073709551615");
    }

    #[test]
    fn floats_as_python_repr() {
        for (float, expect) in [
            (0.0, "0.0"),
            (1.0, "1.0"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (123456789.125, "123456789.125"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e20, "1.2345e+20"),
            (1e300, "1e+300"),
        ] {
            check(json!(float), expect);
        }
    }
}
