//! Text from clients on its way to a log: control characters (newlines
//! included) are escaped so one request cannot forge log lines or
//! terminal escapes.

use std::fmt;

/// Displays the text with control characters escaped as `\n`, `\r`,
/// `\t` or `\u{..}`.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                '\\' => f.write_str("\\\\")?,
                c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
                c => fmt::Write::write_char(f, c)?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// The escaped text as a `String`.
pub fn escape(text: &str) -> String {
    Escaped(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        for (raw, shown) in [
            ("plain", "plain"),
            ("two\nlines", "two\\nlines"),
            ("cr\rlf", "cr\\rlf"),
            ("esc\u{1b}[31m", "esc\\u{1b}[31m"),
            ("nul\0", "nul\\u{0}"),
            ("back\\slash", "back\\\\slash"),
            ("caf\u{e9}", "caf\u{e9}"),
            ("del\u{7f}", "del\\u{7f}"),
        ] {
            assert_eq!(escape(raw), shown);
        }
    }
}
