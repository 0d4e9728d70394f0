//! Small emulations of the Python string behaviour upstream Placement's
//! parsing relies on (`str.strip`, `int()`, `repr()`), so that accepted
//! inputs and error texts line up.

/// Python's `str.isspace`, close enough: Unicode `White_Space` plus the
/// ASCII information separators (U+001C..U+001F) that Python also counts.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's argument-less `str.strip()`.
pub(crate) fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// Drop one trailing `\n`, as Python's `$` anchor tolerates it.
pub(crate) fn chomp_newline(s: &str) -> &str {
    s.strip_suffix('\n').unwrap_or(s)
}

/// A base-10 integer as Python's `int(str)` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PyInt {
    /// True for a negative non-zero value.
    pub(crate) negative: bool,
    /// Magnitude digits, without leading zeros ("0" for zero).
    pub(crate) digits: String,
}

impl PyInt {
    /// Whether the value is at least 1.
    pub(crate) fn is_positive(&self) -> bool {
        !self.negative && self.digits != "0"
    }

    /// The value as `u64`, saturating; meaningful when positive.
    pub(crate) fn saturating_u64(&self) -> u64 {
        self.digits.parse().unwrap_or(u64::MAX)
    }

    /// Python's `%d` rendering.
    pub(crate) fn render(&self) -> String {
        if self.negative {
            format!("-{}", self.digits)
        } else {
            self.digits.clone()
        }
    }
}

/// Parse like Python's `int(s)`: surrounding whitespace, an optional sign,
/// ASCII digits with single underscores allowed between digits. (Python
/// also accepts non-ASCII decimal digits; those are rejected here.) Unlike
/// `str.strip`, `int()` does not treat U+001C..U+001F as whitespace.
pub(crate) fn parse_int(s: &str) -> Option<PyInt> {
    let t = s.trim_matches(char::is_whitespace);
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut digits = String::with_capacity(body.len());
    let mut prev_digit = false;
    for c in body.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            prev_digit = true;
        } else if c == '_' && prev_digit {
            prev_digit = false;
        } else {
            return None;
        }
    }
    if !prev_digit {
        // Empty, or ends with an underscore.
        return None;
    }
    let trimmed = digits.trim_start_matches('0');
    let digits = if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    };
    let negative = negative && digits != "0";
    Some(PyInt { negative, digits })
}

fn is_printable(c: char) -> bool {
    if c.is_control() {
        return false;
    }
    if c != ' ' && c.is_whitespace() {
        return false;
    }
    // A few common format characters Python treats as unprintable.
    !matches!(
        c,
        '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
            | '\u{feff}'
    )
}

/// Python's `repr()` of a `str`.
pub fn repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if is_printable(c) => out.push(c),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr()` of a list of `str`.
pub(crate) fn repr_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let parts: Vec<String> = items.into_iter().map(repr).collect();
    format!("[{}]", parts.join(", "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ints() {
        let ok = |s: &str| parse_int(s).map(|i| i.render());
        assert_eq!(ok("2"), Some("2".into()));
        assert_eq!(ok(" +007 "), Some("7".into()));
        assert_eq!(ok("-0"), Some("0".into()));
        assert_eq!(ok("-12"), Some("-12".into()));
        assert_eq!(ok("1_000"), Some("1000".into()));
        assert_eq!(ok("\t5\n"), Some("5".into()));
        for bad in [
            "\u{1c}5", "", " ", "+", "1__0", "_1", "1_", "1.0", "0x10", "1 2", "--1", "٣",
        ] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
        assert!(!parse_int("0").is_some_and(|i| i.is_positive()));
        assert_eq!(
            parse_int("99999999999999999999999").map(|i| i.saturating_u64()),
            Some(u64::MAX)
        );
    }

    #[test]
    fn reprs() {
        assert_eq!(repr("abc"), "'abc'");
        assert_eq!(repr("it's"), "\"it's\"");
        assert_eq!(repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(repr("x\ny\\"), "'x\\ny\\\\'");
        assert_eq!(repr("\u{1}é"), "'\\x01é'");
        assert_eq!(repr_list(["", "_A"]), "['', '_A']");
        assert_eq!(repr_list(Vec::<&str>::new()), "[]");
    }

    #[test]
    fn stripping() {
        assert_eq!(strip("\u{1f} a b\u{3000}"), "a b");
        assert_eq!(chomp_newline("x\n"), "x");
        assert_eq!(chomp_newline("x\n\n"), "x\n");
    }
}
