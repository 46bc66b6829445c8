//! TOML errors that name the line and column, never the content.
//!
//! toml's own `Display` prints the offending line with a caret under it, and serde's
//! messages quote values (`invalid type: string "...", expected u64`) and unknown keys.
//! A config file or init-data that is in fact a secret (a path mistyped, or chosen by
//! someone else) would then put its first bad line on the console. [`TomlError`] keeps
//! only the position (from the error's span) and the message with every quoted part
//! replaced by `…`.

use alloc::string::String;
use core::fmt;

/// Where a TOML document failed to parse, and why, without its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TomlError {
    /// 1-based line of the error (0: unknown).
    pub line: usize,
    /// 1-based column, in characters (0: unknown).
    pub column: usize,
    /// toml's message with every quoted part redacted.
    pub message: String,
}

impl TomlError {
    /// From a toml error and the text it was parsed from.
    pub fn new(e: &toml::de::Error, text: &str) -> Self {
        let (line, column) = match e.span() {
            Some(span) => position(text, span.start),
            None => (0, 0),
        };
        TomlError {
            line,
            column,
            message: redact(e.message()),
        }
    }
}

impl fmt::Display for TomlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}, column {}: ", self.line, self.column)?;
        }
        f.write_str(&self.message)
    }
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, text[start..offset].chars().count() + 1)
}

/// The message on one line, bounded, with the content of every `"…"`, `'…'` and the key
/// of `unknown field`/`duplicate key`/`unknown variant` replaced by `…`.
fn redact(message: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut backticks = 0usize;
    let redact_backtick = ["unknown field", "unknown variant", "duplicate key"]
        .iter()
        .any(|p| message.contains(p));
    for c in message.chars() {
        match quote {
            Some(q) if c == q => {
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None if c == '"' || c == '\'' || (c == '`' && redact_backtick && backticks == 0) => {
                if c == '`' {
                    backticks += 1;
                }
                out.push(c);
                out.push('…');
                quote = Some(c);
            }
            None if c.is_control() => out.push(' '),
            None => out.push(c),
        }
        if out.len() > 300 {
            out.push('…');
            break;
        }
    }
    String::from(out.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        deadline_secs: Option<u64>,
        name: Option<String>,
    }

    fn err(text: &str) -> String {
        let e = toml::from_str::<Doc>(text).unwrap_err();
        TomlError::new(&e, text).to_string()
    }

    #[test]
    fn secret_looking_lines_never_appear() {
        const SECRET: &str = "hunter2-Sup3rS3cret";
        for (text, line) in [
            (format!("{SECRET}\n"), 1),
            (format!("name = \"ok\"\n{SECRET} = 1\n"), 2),
            (format!("deadline_secs = \"{SECRET}\"\n"), 1),
            (format!("deadline_secs = 1\nname = {SECRET}\n"), 2),
            (format!("name = '{SECRET}\n"), 1),
            (format!("[{SECRET}]\n"), 1),
            (format!("name = \"a\"\nname = \"{SECRET}\"\n"), 2),
            (format!("-----BEGIN PRIVATE KEY-----\n{SECRET}\n"), 1),
        ] {
            let e = err(&text);
            assert!(!e.contains("hunter2"), "{text:?} -> {e}");
            assert!(!e.contains("BEGIN"), "{text:?} -> {e}");
            assert!(
                e.starts_with(&format!("line {line}, column ")),
                "{text:?} -> {e}"
            );
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn position_in_characters() {
        assert_eq!(position("ab\ncdé=x", 7), (2, 4));
        assert_eq!(position("", 10), (1, 1));
        let e = err("deadline_secs = 1\n  bogus = 2\n");
        assert!(e.starts_with("line 2, column 3: unknown field `…`"), "{e}");
    }
}
