//! Microversion negotiation: the `OpenStack-API-Version: placement X.Y` header.

use crate::error::ApiError;

/// A negotiated Placement microversion (major is always 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u16,
    pub minor: u16,
}

pub const MIN: Version = Version { major: 1, minor: 0 };
pub const MAX: Version = Version {
    major: 1,
    minor: 39,
};
pub const MIN_STR: &str = "1.0";
pub const MAX_STR: &str = "1.39";

impl Version {
    pub const fn new(major: u16, minor: u16) -> Self {
        Version { major, minor }
    }
    /// True when this version is at least `1.minor`.
    pub fn at_least(self, minor: u16) -> bool {
        self >= Version::new(1, minor)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Finds the placement version among the (possibly comma-joined) values of the
/// `openstack-api-version` header; the last mention of `placement` wins.
pub fn requested_version<'a>(header_values: impl Iterator<Item = &'a str>) -> Option<String> {
    let joined: Vec<&str> = header_values.collect();
    if joined.is_empty() {
        return None;
    }
    let joined = joined.join(",");
    for item in joined.split(',').rev() {
        let mut parts = item.trim().splitn(2, char::is_whitespace);
        let service = parts.next().unwrap_or("");
        if let Some(version) = parts.next() {
            if service.eq_ignore_ascii_case("placement") {
                return Some(version.trim().to_string());
            }
        }
    }
    None
}

/// A string as Python's `repr()` shows it (quotes chosen the same way).
fn python_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::new();
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Negotiates the version the request asked for. Malformed strings give 400,
/// well-formed versions we do not serve give 406.
pub fn negotiate(requested: Option<&str>) -> Result<Version, ApiError> {
    let text = match requested {
        None => return Ok(MIN),
        Some("latest") => return Ok(MAX),
        Some(text) => text,
    };
    let mut parts = text.splitn(2, '.');
    let major = parts.next().unwrap_or("");
    let minor = parts.next();
    // Upstream's message ends with the reason Python's int() (or the
    // version tuple's constructor) gave.
    let invalid = |reason: String| {
        ApiError::bad_request(format!(
            "Invalid microversion: invalid version string: {text}; {reason}"
        ))
    };
    let not_int = |part: &str| {
        invalid(format!(
            "invalid literal for int() with base 10: {}",
            python_repr(part)
        ))
    };
    let Some(major_value) = parse_python_int(major) else {
        return Err(not_int(major));
    };
    let Some(minor) = minor else {
        return Err(invalid(
            "Version.__new__() missing 1 required positional argument: 'minor'".to_string(),
        ));
    };
    let Some(minor_value) = parse_python_int(minor) else {
        return Err(not_int(minor));
    };
    let (major, minor) = (major_value, minor_value);
    let version = (major, minor);
    if version.0 == 1 && (0..=i64::from(MAX.minor)).contains(&version.1) {
        // Both fit in u16 because of the range check above.
        return Ok(Version::new(1, version.1 as u16));
    }
    Err(ApiError::new(
        406,
        format!("Invalid microversion: Unacceptable version header: {text}"),
    ))
}

/// Python's `int()` on a string: surrounding whitespace, an optional sign,
/// digits (underscores between digits allowed).
fn parse_python_int(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') {
        return None;
    }
    if !digits.chars().all(|c| c.is_ascii_digit() || c == '_') || digits.contains("__") {
        return None;
    }
    let value: i64 = digits.replace('_', "").parse().ok()?;
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_table() {
        let cases: &[(Option<&str>, Result<&str, u16>)] = &[
            (None, Ok("1.0")),
            (Some("latest"), Ok("1.39")),
            (Some("1.5"), Ok("1.5")),
            (Some("1.05"), Ok("1.5")),
            (Some("1.39"), Ok("1.39")),
            (Some("1.40"), Err(406)),
            (Some("2.0"), Err(406)),
            (Some("0.9"), Err(406)),
            (Some("1"), Err(400)),
            (Some("1.a"), Err(400)),
            (Some("1.2.3"), Err(400)),
            (Some("cow"), Err(400)),
        ];
        for (input, expected) in cases {
            let got = negotiate(*input)
                .map(|v| v.to_string())
                .map_err(|e| e.status);
            assert_eq!(got, expected.map(str::to_string), "negotiate({input:?})");
        }
    }

    #[test]
    fn header_parsing_picks_placement_entry() {
        let values = ["compute 2.1, placement 1.10"];
        assert_eq!(
            requested_version(values.iter().copied()).as_deref(),
            Some("1.10")
        );
        let values = ["compute 2.1"];
        assert_eq!(requested_version(values.iter().copied()), None);
        let values = ["placement 1.2", "placement 1.3"];
        assert_eq!(
            requested_version(values.iter().copied()).as_deref(),
            Some("1.3")
        );
    }
}
