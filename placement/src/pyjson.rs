//! Where and why Python's `json` module rejects a text, in its own words.
//!
//! Upstream reports a body that is not JSON as "Malformed JSON: <reason>"
//! with the reason Python's decoder gives ("Expecting value: line 1 column
//! 10 (char 9)"). serde_json finds the same bodies malformed but explains it
//! differently, so this small scanner walks the text the way Python's decoder
//! does and names the first problem the same way. It only describes errors;
//! parsing stays serde_json's job.

/// Python's description of the first error in `text`, or `None` when this
/// scanner finds none (the caller then keeps serde_json's own message).
pub fn describe_error(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut scanner = Scanner {
        chars: &chars,
        depth: 0,
    };
    let start = scanner.skip_ws(0);
    let outcome = scanner.value(start).and_then(|end| {
        let end = scanner.skip_ws(end);
        if end == chars.len() {
            Ok(end)
        } else {
            Err(("Extra data", end))
        }
    });
    match outcome {
        Ok(_) => None,
        Err(("", _)) => None,
        Err((message, pos)) => Some(format_error(&chars, message, pos)),
    }
}

fn format_error(chars: &[char], message: &str, pos: usize) -> String {
    let before = &chars[..pos.min(chars.len())];
    let line = before.iter().filter(|c| **c == '\n').count() + 1;
    let column = match before.iter().rposition(|c| *c == '\n') {
        Some(newline) => pos - newline,
        None => pos + 1,
    };
    format!("{message}: line {line} column {column} (char {pos})")
}

/// Nesting deeper than this is left to serde_json's message.
const MAX_DEPTH: usize = 256;

struct Scanner<'a> {
    chars: &'a [char],
    depth: usize,
}

/// An error: Python's message and the character position it names. An
/// empty message means "give up, keep serde_json's explanation".
type Scan = Result<usize, (&'static str, usize)>;

impl Scanner<'_> {
    fn at(&self, pos: usize) -> Option<char> {
        self.chars.get(pos).copied()
    }

    fn skip_ws(&self, mut pos: usize) -> usize {
        while matches!(self.at(pos), Some(' ' | '\t' | '\n' | '\r')) {
            pos += 1;
        }
        pos
    }

    fn starts_with(&self, pos: usize, word: &str) -> bool {
        word.chars()
            .enumerate()
            .all(|(i, c)| self.at(pos + i) == Some(c))
    }

    /// One value starting exactly at `pos`; returns the position after it.
    fn value(&mut self, pos: usize) -> Scan {
        const EXPECTING_VALUE: &str = "Expecting value";
        match self.at(pos) {
            None => Err((EXPECTING_VALUE, pos)),
            Some('"') => self.string(pos),
            Some('{') => self.nested(pos, Self::object),
            Some('[') => self.nested(pos, Self::array),
            Some(_) => {
                for word in ["null", "true", "false", "NaN", "Infinity", "-Infinity"] {
                    if self.starts_with(pos, word) {
                        return Ok(pos + word.chars().count());
                    }
                }
                self.number(pos).ok_or((EXPECTING_VALUE, pos))
            }
        }
    }

    fn nested(&mut self, pos: usize, inner: fn(&mut Self, usize) -> Scan) -> Scan {
        if self.depth >= MAX_DEPTH {
            return Err(("", pos));
        }
        self.depth += 1;
        let result = inner(self, pos);
        self.depth -= 1;
        result
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?`, as Python matches it.
    fn number(&self, start: usize) -> Option<usize> {
        let digit = |p: usize| self.at(p).is_some_and(|c| c.is_ascii_digit());
        let mut pos = start;
        if self.at(pos) == Some('-') {
            pos += 1;
        }
        match self.at(pos) {
            Some('0') => pos += 1,
            Some('1'..='9') => {
                while digit(pos) {
                    pos += 1;
                }
            }
            _ => return None,
        }
        if self.at(pos) == Some('.') && digit(pos + 1) {
            pos += 1;
            while digit(pos) {
                pos += 1;
            }
        }
        if matches!(self.at(pos), Some('e' | 'E')) {
            let mut exp = pos + 1;
            if matches!(self.at(exp), Some('+' | '-')) {
                exp += 1;
            }
            if digit(exp) {
                pos = exp;
                while digit(pos) {
                    pos += 1;
                }
            }
        }
        Some(pos)
    }

    /// A string whose opening quote is at `start`.
    fn string(&self, start: usize) -> Scan {
        let mut pos = start + 1;
        loop {
            match self.at(pos) {
                None => return Err(("Unterminated string starting at", start)),
                Some('"') => return Ok(pos + 1),
                Some('\\') => match self.at(pos + 1) {
                    None => return Err(("Unterminated string starting at", start)),
                    Some('"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't') => pos += 2,
                    Some('u') => {
                        let hex = (pos + 2..pos + 6)
                            .all(|p| self.at(p).is_some_and(|c| c.is_ascii_hexdigit()));
                        if !hex {
                            return Err(("Invalid \\uXXXX escape", pos + 1));
                        }
                        pos += 6;
                    }
                    Some(_) => return Err(("Invalid \\escape", pos)),
                },
                Some(c) if (c as u32) < 0x20 => return Err(("Invalid control character at", pos)),
                Some(_) => pos += 1,
            }
        }
    }

    fn object(&mut self, start: usize) -> Scan {
        const PROPERTY_NAME: &str = "Expecting property name enclosed in double quotes";
        let mut pos = self.skip_ws(start + 1);
        if self.at(pos) == Some('}') {
            return Ok(pos + 1);
        }
        loop {
            if self.at(pos) != Some('"') {
                return Err((PROPERTY_NAME, pos));
            }
            pos = self.skip_ws(self.string(pos)?);
            if self.at(pos) != Some(':') {
                return Err(("Expecting ':' delimiter", pos));
            }
            pos = self.skip_ws(pos + 1);
            let end = self.value(pos)?;
            pos = self.skip_ws(end);
            match self.at(pos) {
                Some('}') => return Ok(pos + 1),
                Some(',') => pos = self.skip_ws(pos + 1),
                _ => return Err(("Expecting ',' delimiter", pos)),
            }
        }
    }

    fn array(&mut self, start: usize) -> Scan {
        let mut pos = self.skip_ws(start + 1);
        if self.at(pos) == Some(']') {
            return Ok(pos + 1);
        }
        loop {
            let end = self.value(pos)?;
            pos = self.skip_ws(end);
            match self.at(pos) {
                Some(']') => return Ok(pos + 1),
                Some(',') => pos = self.skip_ws(pos + 1),
                _ => return Err(("Expecting ',' delimiter", pos)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::describe_error;

    /// Each text with the message Python 3.11's `json.loads` gives for it.
    #[test]
    fn matches_pythons_messages() {
        let cases = [
            ("{\"name\": ", "Expecting value: line 1 column 10 (char 9)"),
            ("", "Expecting value: line 1 column 1 (char 0)"),
            ("   ", "Expecting value: line 1 column 4 (char 3)"),
            (
                "{",
                "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
            ),
            (
                "{\"a\"",
                "Expecting ':' delimiter: line 1 column 5 (char 4)",
            ),
            (
                "{\"a\" 1}",
                "Expecting ':' delimiter: line 1 column 6 (char 5)",
            ),
            (
                "{\"a\": 1",
                "Expecting ',' delimiter: line 1 column 8 (char 7)",
            ),
            (
                "{\"a\": 1 \"b\": 2}",
                "Expecting ',' delimiter: line 1 column 9 (char 8)",
            ),
            (
                "{\"a\": 1,}",
                "Expecting property name enclosed in double quotes: line 1 column 9 (char 8)",
            ),
            ("[1, 2", "Expecting ',' delimiter: line 1 column 6 (char 5)"),
            ("[1 2]", "Expecting ',' delimiter: line 1 column 4 (char 3)"),
            ("[1,]", "Expecting value: line 1 column 4 (char 3)"),
            (
                "{\"a\": \"x",
                "Unterminated string starting at: line 1 column 7 (char 6)",
            ),
            (
                "{\"a\": \"x\\q\"}",
                "Invalid \\escape: line 1 column 9 (char 8)",
            ),
            ("{\"a\": tru}", "Expecting value: line 1 column 7 (char 6)"),
            ("{\"a\": 1} x", "Extra data: line 1 column 10 (char 9)"),
            ("nul", "Expecting value: line 1 column 1 (char 0)"),
            ("{\"a\": -}", "Expecting value: line 1 column 7 (char 6)"),
            (
                "{\"a\":\n 1,\n \"b\" 2}",
                "Expecting ':' delimiter: line 3 column 6 (char 15)",
            ),
            (
                "{\"a\": \"\u{1}\"}",
                "Invalid control character at: line 1 column 8 (char 7)",
            ),
            (
                "{\"a\": \"\\u12\"}",
                "Invalid \\uXXXX escape: line 1 column 9 (char 8)",
            ),
            ("{\"é\": x}", "Expecting value: line 1 column 7 (char 6)"),
            (
                "{1: 2}",
                "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
            ),
            ("[", "Expecting value: line 1 column 2 (char 1)"),
            (
                "\"abc",
                "Unterminated string starting at: line 1 column 1 (char 0)",
            ),
            (
                "{\"a\": 01}",
                "Expecting ',' delimiter: line 1 column 8 (char 7)",
            ),
            (
                "{\"a\": 1.}",
                "Expecting ',' delimiter: line 1 column 8 (char 7)",
            ),
            (
                "{\"a\": [1, {\"b\": }]}",
                "Expecting value: line 1 column 17 (char 16)",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(describe_error(text).as_deref(), Some(expected), "{text:?}");
        }
        // Valid JSON (for Python) has no error to describe.
        for text in [
            "{}",
            "[1, 2.5e3, \"x\\u00e9\", null, true, NaN]",
            " {\"a\": {\"b\": []}} ",
        ] {
            assert_eq!(describe_error(text), None, "{text:?}");
        }
        // Absurd nesting is left to serde_json's message.
        assert_eq!(describe_error(&"[".repeat(10_000)), None);
    }
}
