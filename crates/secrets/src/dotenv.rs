//! A dotenv parser that keeps values exactly as written and knows where each entry is, so
//! that a key can be rewritten in place without touching the rest of the file.
//!
//! Hand-written rather than taken from `dotenvy` because `dotenvy` expands `$VAR` inside
//! unquoted and double-quoted values, which silently corrupts random keys and bcrypt hashes
//! that contain `$`, and because writing a key back needs the byte span of its entry.
//!
//! The accepted syntax is the common one (Docker Compose, dotenvy, python-dotenv):
//! - blank lines and lines starting with `#` are ignored; `export KEY=value` is accepted;
//! - `KEY=value` unquoted: surrounding whitespace is trimmed and ` #` starts a comment;
//! - `KEY='value'`: literal, may span lines;
//! - `KEY="value"`: `\n`, `\r`, `\t`, `\"`, `\\`, `\$` and `\'` are escapes, may span lines;
//! - no `$VAR` expansion anywhere; when a key repeats, the last entry wins.

use std::ops::Range;

use secrecy::{ExposeSecret, SecretString};

/// One `KEY=value` entry of a dotenv file.
pub(crate) struct Entry {
    /// The key.
    pub(crate) key: String,
    /// The value, unquoted and unescaped.
    pub(crate) value: SecretString,
    /// The bytes of the entry in the file, from the start of its line to the end of its last
    /// line (newline excluded).
    pub(crate) span: Range<usize>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("key", &self.key)
            .field("span", &self.span)
            .finish_non_exhaustive()
    }
}

/// A syntax error: the line and what is wrong, never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    /// The line, from 1.
    pub(crate) line: usize,
    /// What is wrong.
    pub(crate) message: String,
}

fn is_key_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Parse a whole dotenv file.
pub(crate) fn parse(text: &str) -> Result<Vec<Entry>, ParseError> {
    let mut entries = vec![];
    let mut pos = 0;
    let line_at = |offset: usize| text[..offset].matches('\n').count() + 1;
    while pos < text.len() {
        let line_start = pos;
        let line_end = text[pos..]
            .find('\n')
            .map(|i| pos + i)
            .unwrap_or(text.len());
        let line = text[pos..line_end].trim_end_matches('\r');
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            pos = line_end + 1;
            continue;
        }
        let mut rest = trimmed;
        if let Some(after) = rest.strip_prefix("export")
            && after.starts_with([' ', '\t'])
        {
            rest = after.trim_start();
        }
        let key_len = rest.char_indices().find(|&(i, c)| {
            if i == 0 {
                !is_key_start(c)
            } else {
                !is_key_char(c)
            }
        });
        let key_len = key_len.map(|(i, _)| i).unwrap_or(rest.len());
        if key_len == 0 {
            return Err(ParseError {
                line: line_at(line_start),
                message: "expected `KEY=value` (a key starts with a letter or `_`)".into(),
            });
        }
        let key = &rest[..key_len];
        let after_key = rest[key_len..].trim_start_matches([' ', '\t']);
        let Some(value_part) = after_key.strip_prefix('=') else {
            return Err(ParseError {
                line: line_at(line_start),
                message: format!("expected `=` after `{key}`"),
            });
        };
        let value_part = value_part.trim_start_matches([' ', '\t']);
        // `value_part` is a slice of `text`; its offset is where the value starts.
        let value_start = value_part.as_ptr() as usize - text.as_ptr() as usize;
        let (value, end) = match value_part.chars().next() {
            Some(q @ ('\'' | '"')) => {
                let (value, close) = quoted(text, value_start, q).ok_or_else(|| ParseError {
                    line: line_at(line_start),
                    message: format!(
                        "the {} quote that opens the value of `{key}` is never closed",
                        if q == '"' { "double" } else { "single" }
                    ),
                })?;
                let after_close = close + 1;
                let tail_end = text[after_close..]
                    .find('\n')
                    .map(|i| after_close + i)
                    .unwrap_or(text.len());
                let tail = text[after_close..tail_end]
                    .trim_end_matches('\r')
                    .trim_start_matches([' ', '\t']);
                if !tail.is_empty() && !tail.starts_with('#') {
                    return Err(ParseError {
                        line: line_at(after_close),
                        message: format!("unexpected text after the closing quote of `{key}`"),
                    });
                }
                (value, tail_end)
            }
            _ => {
                let mut value = value_part;
                if let Some(i) = comment_start(value) {
                    value = &value[..i];
                }
                (value.trim_end_matches([' ', '\t']).to_owned(), line_end)
            }
        };
        entries.push(Entry {
            key: key.to_owned(),
            value: SecretString::from(value),
            span: line_start..end,
        });
        pos = end + 1;
    }
    Ok(entries)
}

/// The byte offset where an inline comment starts in an unquoted value: a `#` preceded by
/// whitespace.
fn comment_start(value: &str) -> Option<usize> {
    let b = value.as_bytes();
    (0..b.len()).find(|&i| b[i] == b'#' && i > 0 && (b[i - 1] == b' ' || b[i - 1] == b'\t'))
}

/// The value of a quoted string whose opening quote is at `open`, and the offset of its
/// closing quote.
fn quoted(text: &str, open: usize, quote: char) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = text[open + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        let at = open + 1 + i;
        if c == quote {
            return Some((out, at));
        }
        if c == '\\' && quote == '"' {
            match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, 't')) => out.push('\t'),
                Some((_, e @ ('"' | '\\' | '$' | '\''))) => out.push(e),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => return None,
            }
            continue;
        }
        if c == '\r' && text[at + 1..].starts_with('\n') {
            continue;
        }
        out.push(c);
    }
    None
}

/// The value of `key` in `text` (the last entry wins).
pub(crate) fn lookup(text: &str, key: &str) -> Result<Option<SecretString>, ParseError> {
    Ok(parse(text)?
        .into_iter()
        .rev()
        .find(|e| e.key == key)
        .map(|e| e.value))
}

/// How `value` is written to a dotenv file so that [`parse`] reads it back unchanged.
pub(crate) fn quote(value: &str) -> String {
    let bare = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./+=:@,%^~".contains(c));
    if bare {
        return value.to_owned();
    }
    if !value.contains('\'') {
        return format!("'{value}'");
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '$' => out.push_str("\\$"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `text` with `key` set to `value`: the last entry of `key` is replaced in place (keeping
/// an `export ` prefix), or a new line is appended. Every other byte is kept.
pub(crate) fn set(text: &str, key: &str, value: &SecretString) -> Result<String, ParseError> {
    let entries = parse(text)?;
    let quoted = quote(value.expose_secret());
    match entries.iter().rev().find(|e| e.key == key) {
        Some(e) => {
            let old = &text[e.span.clone()];
            let export = if old.trim_start().starts_with("export") {
                "export "
            } else {
                ""
            };
            let indent = &old[..old.len() - old.trim_start().len()];
            Ok(format!(
                "{}{indent}{export}{key}={quoted}{}",
                &text[..e.span.start],
                &text[e.span.end..]
            ))
        }
        None => {
            let sep = if text.is_empty() || text.ends_with('\n') {
                ""
            } else {
                "\n"
            };
            Ok(format!("{text}{sep}{key}={quoted}\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, key: &str) -> Option<String> {
        lookup(text, key)
            .unwrap()
            .map(|v| v.expose_secret().to_owned())
    }

    #[test]
    fn reads_the_common_forms() {
        let text = "# comment\n\nA=plain\nexport B=exported\nC = spaced  # trailing comment\nD='single $HOME # kept'\nE=\"dq \\\"x\\\" \\n \\$y\"\nF=a#b\nG=\n";
        assert_eq!(value(text, "A").as_deref(), Some("plain"));
        assert_eq!(value(text, "B").as_deref(), Some("exported"));
        assert_eq!(value(text, "C").as_deref(), Some("spaced"));
        assert_eq!(value(text, "D").as_deref(), Some("single $HOME # kept"));
        assert_eq!(value(text, "E").as_deref(), Some("dq \"x\" \n $y"));
        assert_eq!(value(text, "F").as_deref(), Some("a#b"));
        assert_eq!(value(text, "G").as_deref(), Some(""));
        assert_eq!(value(text, "H"), None);
    }

    #[test]
    fn quoted_values_may_span_lines() {
        let text = "PEM=\"-----BEGIN X-----\nabc\n-----END X-----\"\nNEXT=1\n";
        assert_eq!(
            value(text, "PEM").as_deref(),
            Some("-----BEGIN X-----\nabc\n-----END X-----")
        );
        assert_eq!(value(text, "NEXT").as_deref(), Some("1"));
    }

    #[test]
    fn a_quoted_trailing_newline_is_kept() {
        assert_eq!(value("K=\"abc\\n\"\n", "K").as_deref(), Some("abc\n"));
        assert_eq!(value("K='abc\n'\n", "K").as_deref(), Some("abc\n"));
    }

    #[test]
    fn crlf_line_endings_are_not_part_of_values() {
        assert_eq!(value("A=x\r\nB=y\r\n", "A").as_deref(), Some("x"));
    }

    #[test]
    fn last_entry_wins() {
        assert_eq!(value("A=1\nA=2\n", "A").as_deref(), Some("2"));
    }

    #[test]
    fn errors_name_the_line_and_never_the_value() {
        let e = parse("A=1\nB=\"secret-canary\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(!e.message.contains("secret-canary"));
        assert_eq!(parse("A=1\nnot a line\n").unwrap_err().line, 2);
    }

    #[test]
    fn set_replaces_in_place_and_round_trips() {
        let text = "# top\nexport A=old # note\nB=keep\n";
        for v in ["simple", "with space", "it's \"quoted\" $x\n", ""] {
            let out = set(text, "A", &SecretString::from(v.to_owned())).unwrap();
            assert!(out.starts_with("# top\nexport A="), "{out}");
            assert!(out.ends_with("\nB=keep\n"));
            assert_eq!(value(&out, "A").as_deref(), Some(v));
        }
        let out = set("B=keep", "NEW", &SecretString::from("v".to_owned())).unwrap();
        assert_eq!(out, "B=keep\nNEW=v\n");
    }
}
