//! Strings from the network or the host, made safe for a log line or the console.
//!
//! A KBS answer, an error body, a DNS name, a file name from an input directory or a
//! value from the kernel command line can hold newlines (a forged log line), ANSI escape
//! sequences (a terminal rewritten) or megabytes. [`Escaped`] shows such a string with
//! every control character escaped (`\n`, `\r`, `\t`, `\\`, `\u{1b}`; the C1 controls and
//! U+2028/U+2029 too) and at most a given number of characters, followed by `…` when
//! something was cut. Use it at every log site and in every error message that shows such
//! a string; [`escape`] is the same as an owned `String`.

use alloc::string::String;
use core::fmt::{self, Write};

/// The default bound: enough for a URL, a path or a KBS error detail.
pub const DEFAULT_MAX_CHARS: usize = 256;

/// Displays `text` escaped and bounded to `max` characters (each escape counts as one).
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a> {
    text: &'a str,
    max: usize,
}

impl<'a> Escaped<'a> {
    /// `text`, bounded to `max` characters.
    pub fn new(text: &'a str, max: usize) -> Self {
        Escaped { text, max }
    }
}

/// `text` escaped and bounded to [`DEFAULT_MAX_CHARS`], for `{}` in a log line.
pub fn shown(text: &str) -> Escaped<'_> {
    Escaped::new(text, DEFAULT_MAX_CHARS)
}

/// Bytes that may not be UTF-8 (a file name), escaped as text with invalid bytes as
/// `\xNN`, bounded to `max` characters.
pub fn escape_bytes(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if count == max {
                out.push('…');
                return out;
            }
            let _ = push_char(&mut out, c);
            count += 1;
        }
        for b in chunk.invalid() {
            if count == max {
                out.push('…');
                return out;
            }
            let _ = write!(out, "\\x{b:02x}");
            count += 1;
        }
    }
    out
}

/// `text` escaped and bounded to `max` characters, as an owned string.
pub fn escape(text: &str, max: usize) -> String {
    let mut out = String::new();
    let _ = write!(out, "{}", Escaped::new(text, max));
    out
}

/// Whether `c` must not reach a terminal or a log line as itself.
fn must_escape(c: char) -> bool {
    c.is_control() || c == '\\' || c == '\u{2028}' || c == '\u{2029}'
}

fn push_char(out: &mut impl Write, c: char) -> fmt::Result {
    if !must_escape(c) {
        return out.write_char(c);
    }
    match c {
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        '\\' => out.write_str("\\\\"),
        c => write!(out, "\\u{{{:x}}}", c as u32),
    }
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, c) in self.text.chars().enumerate() {
            if n == self.max {
                return f.write_char('…');
            }
            push_char(f, c)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn newlines_and_ansi_escapes_cannot_forge_a_line() {
        let hostile =
            "sha384\n[INFO] sealgate: unsealed 1 secret\r\x1b[2K\x1b]0;pwned\x07\u{85}\u{2028}";
        let e = escape(hostile, 256);
        assert!(!e.chars().any(|c| c.is_control()), "{e:?}");
        assert!(!e.contains('\u{2028}'), "{e:?}");
        assert_eq!(
            e,
            "sha384\\n[INFO] sealgate: unsealed 1 secret\\r\\u{1b}[2K\\u{1b}]0;pwned\\u{7}\\u{85}\\u{2028}"
        );
        // A backslash is escaped too, so an escaped string is never ambiguous.
        assert_eq!(escape("a\\nb", 10), "a\\\\nb");
        assert_eq!(format!("{}", shown("tab\there")), "tab\\there");
    }

    #[test]
    fn bounded_in_characters_with_a_mark() {
        let long = "x".repeat(10_000);
        let e = escape(&long, 100);
        assert_eq!(e.chars().count(), 101);
        assert!(e.ends_with('…'));
        assert_eq!(escape("short", 5), "short");
        assert_eq!(escape("ünïcödé", 3), "ünï…");
        assert_eq!(
            format!("{}", shown(&long)).chars().count(),
            DEFAULT_MAX_CHARS + 1
        );
    }

    #[test]
    fn bytes_that_are_not_utf8() {
        assert_eq!(escape_bytes(b"ok\xff\n", 10), "ok\\xff\\n");
        assert_eq!(escape_bytes(b"\x1b[31mred", 3), "\\u{1b}[3…");
    }
}
