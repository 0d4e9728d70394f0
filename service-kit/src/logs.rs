//! Text from clients on its way to a log: control characters (newlines
//! included) are escaped so one request cannot forge log lines or
//! terminal escapes.
//!
//! Two layers: [`init`] installs the services' subscriber with a writer
//! that escapes every control character of a log line but its final
//! newline (so no field, whoever filled it, can break a line), and
//! [`Escaped`] renders one value escaped where it is logged.

use std::fmt;
use std::io::Write;

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

/// Writes log lines with their control characters escaped (all but a
/// line's final newline).
pub struct EscapingWriter<W: Write>(pub W);

fn escape_line(buf: &[u8]) -> Vec<u8> {
    let (body, newline) = match buf.split_last() {
        Some((b'\n', body)) => (body, true),
        _ => (buf, false),
    };
    let text = String::from_utf8_lossy(body);
    let mut out = Escaped(&text).to_string().into_bytes();
    if newline {
        out.push(b'\n');
    }
    out
}

impl<W: Write> Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(&escape_line(buf))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Installs the process's log subscriber: `FERRITE_LOG` (env-filter
/// syntax) or `default_filter`, no colours, every line escaped.
pub fn init(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRITE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(|| EscapingWriter(std::io::stdout()))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_keep_only_their_final_newline() {
        for (raw, shown) in [
            ("plain line\n", "plain line\n"),
            ("forged\nINFO fake line\n", "forged\\nINFO fake line\n"),
            ("esc \u{1b}[2J\n", "esc \\u{1b}[2J\n"),
            ("no newline", "no newline"),
        ] {
            let mut out = Vec::new();
            EscapingWriter(&mut out)
                .write_all(raw.as_bytes())
                .expect("write");
            assert_eq!(String::from_utf8_lossy(&out), shown);
        }
    }

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
