//! Every form a secret value takes on its way out of the process.
//!
//! A value is echoed back by services and platforms in many spellings: escaped inside a
//! JSON string, percent-encoded in a query or a form body, base64-encoded inside a token or
//! a basic-auth header, XML-escaped in a JUnit file, or one line at a time when a multi-line value goes through a
//! line-oriented log. `forms_of` lists them all, so that one multi-pattern matcher finds
//! each spelling.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// A line of a multi-line value is registered on its own when it has at least this many
/// characters: shorter lines (`-----`, `}`) are too common to mask everywhere.
pub const MIN_LINE_LEN: usize = 8;

/// The forms of `value` to mask, including `value` itself; may hold duplicates and forms
/// shorter than the redactor's minimum (the caller filters both).
pub(crate) fn forms_of(value: &str) -> Vec<String> {
    let mut bases = vec![value.to_owned()];
    let trimmed = value.trim();
    if trimmed != value {
        bases.push(trimmed.to_owned());
    }
    // A value pasted with its quotes (`'"ptk_…"'`) reaches services with and without them.
    let mut inside = trimmed;
    while let Some(inner) = unquoted(inside) {
        bases.push(inner.to_owned());
        inside = inner.trim();
    }
    let mut out = vec![];
    for base in &bases {
        encodings_of(base, &mut out);
        if base.contains('\n') || base.contains('\r') {
            for line in base.lines() {
                let line = line.trim_end_matches('\r');
                for part in [line, line.trim()] {
                    if part.chars().count() >= MIN_LINE_LEN {
                        encodings_of(part, &mut out);
                    }
                }
            }
        }
    }
    out
}

/// The inside of a value wrapped in one pair of matching quotes (`"…"`, `'…'`).
pub fn unquoted(value: &str) -> Option<&str> {
    for q in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(q) && value.ends_with(q) {
            return Some(&value[1..value.len() - 1]);
        }
    }
    None
}

fn encodings_of(v: &str, out: &mut Vec<String>) {
    let start = out.len();
    out.push(v.to_owned());
    json_forms(v, out);
    // A JSON body echoed inside a JSON string (httpbin's `data`, a log shipper's `message`)
    // is escaped twice: each escaped form escaped again.
    let escaped = out.len();
    for i in start + 1..escaped {
        if out[i].contains('\\') {
            let twice = json_escaped_minimal(&out[i]);
            out.push(twice);
        }
    }
    url_forms(v, out);
    // Each of those inside XML or HTML (a JUnit file, a report page).
    let textual = out.len();
    for i in start..textual {
        if out[i].contains(['&', '<', '>', '"', '\'']) {
            let form = out[i].clone();
            xml_forms(&form, out);
        }
    }
    base64_forms(v.as_bytes(), out);
}

/// `v` escaped for XML/HTML text or attributes: `&`, `<`, `>` always; `"` and `'` as writers
/// differ (`&quot;`, `&#34;`, `&apos;`, `&#39;`, `&#x27;`, or left alone in text).
fn xml_forms(v: &str, out: &mut Vec<String>) {
    for (quot, apos) in [
        (None, None),
        (Some("&quot;"), None),
        (Some("&quot;"), Some("&apos;")),
        (Some("&quot;"), Some("&#39;")),
        (Some("&#34;"), Some("&#39;")),
        (Some("&quot;"), Some("&#x27;")),
    ] {
        let mut s = String::with_capacity(v.len() + 16);
        for c in v.chars() {
            match c {
                '&' => s.push_str("&amp;"),
                '<' => s.push_str("&lt;"),
                '>' => s.push_str("&gt;"),
                '"' => s.push_str(quot.unwrap_or("\"")),
                '\'' => s.push_str(apos.unwrap_or("'")),
                c => s.push(c),
            }
        }
        out.push(s);
    }
}

/// The inside of a JSON string holding `v`, as serializers in common use write it: minimal
/// escaping (serde_json, JavaScript), ASCII-only with `\uXXXX` (Python's default), HTML-safe
/// `<`, `>`, `&` (Go's encoding/json), `\/` (PHP), and both combined.
fn json_forms(v: &str, out: &mut Vec<String>) {
    for ascii_only in [false, true] {
        for html_safe in [false, true] {
            for slash in [false, true] {
                let mut s = String::with_capacity(v.len() + 8);
                for c in v.chars() {
                    match c {
                        '"' => s.push_str("\\\""),
                        '\\' => s.push_str("\\\\"),
                        '\n' => s.push_str("\\n"),
                        '\r' => s.push_str("\\r"),
                        '\t' => s.push_str("\\t"),
                        '\u{8}' => s.push_str("\\b"),
                        '\u{c}' => s.push_str("\\f"),
                        '/' if slash => s.push_str("\\/"),
                        '<' | '>' | '&' if html_safe => push_u_escape(&mut s, c),
                        '\u{2028}' | '\u{2029}' if html_safe => push_u_escape(&mut s, c),
                        c if (c as u32) < 0x20 => push_u_escape(&mut s, c),
                        c if ascii_only && !c.is_ascii() => push_u_escape(&mut s, c),
                        c => s.push(c),
                    }
                }
                // Hex digits of `\u` escapes in either case.
                if s.contains("\\u") {
                    out.push(upper_u_escapes(&s));
                }
                out.push(s);
            }
        }
    }
}

/// `v` escaped as serde_json and JavaScript write a string: `"`, `\\` and control
/// characters only.
fn json_escaped_minimal(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 8);
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 => push_u_escape(&mut s, c),
            c => s.push(c),
        }
    }
    s
}

fn push_u_escape(s: &mut String, c: char) {
    let mut units = [0u16; 2];
    for unit in c.encode_utf16(&mut units) {
        s.push_str(&format!("\\u{unit:04x}"));
    }
}

fn upper_u_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("\\u") {
        out.push_str(&rest[..at + 2]);
        let hex_end = (at + 6).min(rest.len());
        out.push_str(&rest[at + 2..hex_end].to_ascii_uppercase());
        rest = &rest[hex_end..];
    }
    out.push_str(rest);
    out
}

/// Which bytes a percent-encoder leaves as they are.
#[derive(Clone, Copy)]
enum Kept {
    /// RFC 3986 unreserved: `A-Z a-z 0-9 - . _ ~`.
    Unreserved,
    /// application/x-www-form-urlencoded (WHATWG): `A-Z a-z 0-9 * - . _`.
    Form,
    /// JavaScript `encodeURIComponent`: unreserved and `! ' ( ) *`.
    UriComponent,
    /// The WHATWG query set (what a URL parser leaves in a query): all printable ASCII but
    /// space, `"`, `#`, `<`, `>` and `'`.
    Query,
    /// The WHATWG path set: the query set but `?`, `` ` ``, `{`, `}` are encoded too.
    Path,
}

impl Kept {
    fn keeps(self, b: u8) -> bool {
        if b.is_ascii_alphanumeric() {
            return true;
        }
        match self {
            Kept::Unreserved => matches!(b, b'-' | b'.' | b'_' | b'~'),
            Kept::Form => matches!(b, b'*' | b'-' | b'.' | b'_'),
            Kept::UriComponent => {
                matches!(
                    b,
                    b'-' | b'.' | b'_' | b'~' | b'!' | b'\'' | b'(' | b')' | b'*'
                )
            }
            Kept::Query => b.is_ascii_graphic() && !matches!(b, b'"' | b'#' | b'<' | b'>' | b'\''),
            Kept::Path => {
                b.is_ascii_graphic()
                    && !matches!(b, b'"' | b'#' | b'<' | b'>' | b'?' | b'`' | b'{' | b'}')
            }
        }
    }
}

/// Percent-encodings of `v`: each encode set, with `%20` and `+` for a space, upper- and
/// lower-case hex.
fn url_forms(v: &str, out: &mut Vec<String>) {
    if v.bytes().all(|b| Kept::Unreserved.keeps(b)) {
        return; // every encoder leaves it as it is: the raw form covers it
    }
    for kept in [
        Kept::Unreserved,
        Kept::Form,
        Kept::UriComponent,
        Kept::Query,
        Kept::Path,
    ] {
        for plus_for_space in [false, true] {
            for upper in [true, false] {
                let mut s = String::with_capacity(v.len() * 3);
                for b in v.bytes() {
                    if b == b' ' && plus_for_space {
                        s.push('+');
                    } else if kept.keeps(b) && !(plus_for_space && b == b'+') {
                        s.push(b as char);
                    } else if upper {
                        s.push_str(&format!("%{b:02X}"));
                    } else {
                        s.push_str(&format!("%{b:02x}"));
                    }
                }
                out.push(s);
            }
        }
    }
}

/// Base64 of `v` in the standard and URL-safe alphabets, padded and not; and, for a value
/// embedded in a larger encoded blob, the part of the encoding that depends on `v` alone at
/// each of the three byte alignments it can sit at.
fn base64_forms(v: &[u8], out: &mut Vec<String>) {
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        out.push(engine.encode(v));
    }
    for offset in 0..3usize {
        // Encode `offset` filler bytes, the value, and filler to the end of a group; keep
        // only the characters whose 6 bits all come from the value.
        let mut bytes = vec![0u8; offset];
        bytes.extend_from_slice(v);
        bytes.extend_from_slice(&[0, 0]);
        let first_bit = offset * 8;
        let end_bit = first_bit + v.len() * 8;
        let first_char = first_bit.div_ceil(6);
        let end_char = end_bit / 6;
        if end_char <= first_char {
            continue;
        }
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let encoded = engine.encode(&bytes);
            out.push(encoded[first_char..end_char].to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(forms: &[String], f: &str) -> bool {
        forms.iter().any(|x| x == f)
    }

    #[test]
    fn json_forms_cover_minimal_ascii_only_and_html_safe_escaping() {
        let forms = forms_of("a\"b\\c<d>é/");
        assert!(has(&forms, r#"a\"b\\c<d>é/"#));
        assert!(has(&forms, r#"a\"b\\c<d>\u00e9/"#));
        assert!(has(&forms, r#"a\"b\\c\u003cd\u003eé/"#));
        assert!(has(&forms, r#"a\"b\\c<d>\u00E9\/"#));
    }

    #[test]
    fn json_forms_cover_a_value_escaped_twice() {
        let forms = forms_of("a\"b\\c");
        // `a"b\c` in a JSON string inside a JSON string.
        assert!(has(&forms, r#"a\\\"b\\\\c"#));
    }

    #[test]
    fn percent_forms_cover_space_as_plus_and_pct20_in_both_hex_cases() {
        let forms = forms_of("a b&c+é");
        assert!(has(&forms, "a%20b%26c%2B%C3%A9"));
        assert!(has(&forms, "a+b%26c%2B%C3%A9"));
        assert!(has(&forms, "a%20b%26c%2b%c3%a9"));
        // What a URL parser leaves in a query string.
        assert!(has(&forms, "a%20b&c+%C3%A9"));
    }

    #[test]
    fn base64_cores_are_found_inside_a_larger_blob_at_every_alignment() {
        let secret = b"s3cr3t-value!";
        let forms = forms_of(std::str::from_utf8(secret).unwrap());
        for prefix in ["", "x", "xy", "xyz", "wxyz"] {
            let mut blob = prefix.as_bytes().to_vec();
            blob.extend_from_slice(secret);
            blob.extend_from_slice(b"-tail");
            for engine in [&STANDARD, &URL_SAFE_NO_PAD] {
                let encoded = engine.encode(&blob);
                assert!(
                    forms
                        .iter()
                        .any(|f| f.len() >= 12 && encoded.contains(f.as_str())),
                    "no form inside {encoded} (prefix {prefix:?})"
                );
            }
        }
    }

    #[test]
    fn xml_escaped_forms_cover_junit_and_html_writers() {
        let forms = forms_of("a<b>&\"c'");
        assert!(has(&forms, "a&lt;b&gt;&amp;\"c'"));
        assert!(has(&forms, "a&lt;b&gt;&amp;&quot;c&apos;"));
        assert!(has(&forms, "a&lt;b&gt;&amp;&#34;c&#39;"));
        // A URL-encoded form with a raw `&`, inside XML.
        let forms = forms_of("x y&z");
        assert!(has(&forms, "x%20y&amp;z"));
    }

    #[test]
    fn each_long_line_of_a_multi_line_value_is_a_form() {
        let forms = forms_of("-----BEGIN KEY-----\r\nMIIEvQIBADANBg\nab\n-----END KEY-----\n");
        assert!(has(&forms, "MIIEvQIBADANBg"));
        assert!(has(&forms, "-----END KEY-----"));
        assert!(!has(&forms, "ab"));
    }

    #[test]
    fn a_quoted_value_registers_its_inside_too() {
        let forms = forms_of("'\"ptk_1234\"'");
        assert!(has(&forms, "\"ptk_1234\""));
        assert!(has(&forms, "ptk_1234"));
        assert_eq!(unquoted("\"ptk_1234\""), Some("ptk_1234"));
        assert_eq!(unquoted("\"abc'"), None);
    }
}
