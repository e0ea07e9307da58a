//! The loader's pass over the parsed TOML tree: spans by key path, templates parsed once
//! (process variables filled in as literal text), and the canonical form of the result that
//! the effective-spec hash is taken over.
//!
//! Locations: TOML spans are byte offsets into the file, but a `${` error is found at a byte
//! offset of the *decoded* string, which differs from the file after an escape (`\"`,
//! `\u00e9`), a line-ending backslash or the newline trimmed after `"""`/`'''`.
//! [`string_offset`] walks the raw string and the decoded one side by side to map one to
//! the other; [`line_col`] never slices inside a character.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;

use sha2::{Digest, Sha256};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::template::{
    self, Part, Reference, SourcePart, TRANSPORT_KEY, Template, is_pipeline_name,
};

/// `line:col` (both from 1; col in characters) of a byte offset. An offset inside a
/// character or past the end is moved back to the character's start or the end.
pub fn line_col(source: &str, offset: usize) -> String {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    format!("{line}:{col}")
}

/// `line:col` of the first byte that is not UTF-8, for a file that is not text.
pub(crate) fn invalid_utf8_at(bytes: &[u8], valid_up_to: usize) -> String {
    let valid = String::from_utf8_lossy(&bytes[..valid_up_to.min(bytes.len())]);
    line_col(&valid, valid.len())
}

/// The start of the line with the most nesting characters (`.`, `[`, `{`): where a parse
/// that hit its recursion limit most likely stopped.
pub(crate) fn deepest_line(source: &str) -> usize {
    let mut best = (0, 0);
    let mut start = 0;
    for line in source.split_inclusive('\n') {
        let depth = line
            .bytes()
            .filter(|b| matches!(b, b'.' | b'[' | b'{'))
            .count();
        if depth > best.0 {
            best = (depth, start);
        }
        start += line.len();
    }
    best.1
}

/// The byte offset in `source` of byte `offset` of `decoded`, the value of the TOML string
/// whose span (quotes included) is `span`.
pub(crate) fn string_offset(
    source: &str,
    span: &Range<usize>,
    decoded: &str,
    offset: usize,
) -> usize {
    StringOffsets::new(source, span, decoded).at(offset)
}

/// [`string_offset`] for many offsets of one string: it walks the raw string and the
/// decoded one side by side once, going on from where the last (smaller) offset left it,
/// so mapping every reference of a long string is linear, not quadratic. A smaller offset
/// than the last starts again from the beginning.
pub(crate) struct StringOffsets<'a> {
    span_start: usize,
    /// The raw text of the string, delimiters included; `None` when it is not a string.
    raw: Option<&'a str>,
    decoded: &'a str,
    basic: bool,
    /// Where the value starts in `raw` (after the delimiter and a first newline).
    first: usize,
    /// The walk so far: byte `d` of `decoded` is byte `r` of `raw`.
    r: usize,
    d: usize,
}

impl<'a> StringOffsets<'a> {
    pub(crate) fn new(source: &'a str, span: &Range<usize>, decoded: &'a str) -> Self {
        let raw = source.get(span.clone());
        let (delim, basic) = match raw {
            Some(raw) if raw.starts_with("\"\"\"") => (3, true),
            Some(raw) if raw.starts_with("'''") => (3, false),
            Some(raw) if raw.starts_with('"') => (1, true),
            Some(raw) if raw.starts_with('\'') => (1, false),
            _ => (0, false),
        };
        let raw = raw.filter(|_| delim > 0);
        let mut first = delim;
        if let Some(raw) = raw
            && delim == 3
        {
            // The newline right after the opening delimiter is not part of the value.
            if raw[first..].starts_with("\r\n") {
                first += 2;
            } else if raw[first..].starts_with('\n') {
                first += 1;
            }
        }
        StringOffsets {
            span_start: span.start,
            raw,
            decoded,
            basic,
            first,
            r: first,
            d: 0,
        }
    }

    /// The byte offset in the source of byte `offset` of the decoded string.
    pub(crate) fn at(&mut self, offset: usize) -> usize {
        let Some(raw) = self.raw else {
            return self.span_start;
        };
        if offset < self.d {
            (self.r, self.d) = (self.first, 0);
        }
        let (mut r, mut d) = (self.r, self.d);
        let decoded = self.decoded;
        while d < offset {
            let Some(rest) = raw.get(r..) else { break };
            let Some(c) = rest.chars().next() else { break };
            let here = decoded.get(d..).unwrap_or("");
            if self.basic && c == '\\' {
                let Some(e) = rest[1..].chars().next() else {
                    break;
                };
                let out_len = here.chars().next().map_or(1, char::len_utf8);
                match e {
                    'u' => (r, d) = (r + 6, d + out_len),
                    'U' => (r, d) = (r + 10, d + out_len),
                    'x' => (r, d) = (r + 4, d + out_len),
                    e if e.is_whitespace() => {
                        // A line-ending backslash: it and the whitespace after it vanish.
                        r += 1;
                        while let Some(w) = raw.get(r..).and_then(|x| x.chars().next()) {
                            if !w.is_whitespace() {
                                break;
                            }
                            r += w.len_utf8();
                        }
                    }
                    _ => (r, d) = (r + 1 + e.len_utf8(), d + out_len),
                }
            } else if rest.starts_with("\r\n") && here.starts_with('\n') {
                (r, d) = (r + 2, d + 1);
            } else {
                (r, d) = (r + c.len_utf8(), d + c.len_utf8());
            }
        }
        (self.r, self.d) = (r, d);
        self.span_start + r.min(raw.len())
    }
}

/// A pipeline reference found by the loader.
#[derive(Debug, Clone)]
pub(crate) struct FoundRef {
    /// Its name.
    pub(crate) name: String,
    /// Its byte offset in the file.
    pub(crate) at: usize,
}

/// Walks the parsed tree: records spans by key path, parses every string once into a
/// template with process variables filled in, and collects problems at their offsets.
pub(crate) struct Walker<'w> {
    pub(crate) source: &'w str,
    pub(crate) env: &'w dyn Fn(&str) -> Option<String>,
    pub(crate) spans: BTreeMap<String, Range<usize>>,
    pub(crate) refs: Vec<FoundRef>,
    /// Spans of string values that hold pipeline references, with the names, so that a
    /// field which takes no template can say so.
    pub(crate) templated: BTreeMap<usize, Vec<String>>,
    pub(crate) problems: Vec<(usize, String)>,
    /// What `${instance}` is filled in with (literal text), when loading for an instance.
    pub(crate) instance: Option<&'w str>,
    /// The offsets of every `${instance}`, checked against the places it may be used
    /// ([`super::LoadedSpec::check_instance_places`]).
    pub(crate) instance_at: Vec<usize>,
}

impl<'w> Walker<'w> {
    pub(crate) fn new(source: &'w str, env: &'w dyn Fn(&str) -> Option<String>) -> Self {
        Walker {
            source,
            env,
            spans: BTreeMap::new(),
            refs: vec![],
            templated: BTreeMap::new(),
            problems: vec![],
            instance: None,
            instance_at: vec![],
        }
    }

    pub(crate) fn table(&mut self, path: String, table: &mut DeTable<'_>) {
        for (key, value) in table.iter_mut() {
            if &**key.get_ref() == TRANSPORT_KEY {
                self.problems
                    .push((key.span().start, "this key is reserved".to_owned()));
                continue;
            }
            let child = if path.is_empty() {
                key.get_ref().to_string()
            } else {
                format!("{path}.{}", key.get_ref())
            };
            self.spans.insert(child.clone(), key.span());
            self.value(child, value);
        }
    }

    fn value(&mut self, path: String, value: &mut Spanned<DeValue<'_>>) {
        let span = value.span();
        // Leaves point at their value, tables at their key.
        if !matches!(value.get_ref(), DeValue::Table(_)) {
            self.spans.insert(path.clone(), span.clone());
        }
        match value.get_mut() {
            DeValue::String(s) => {
                if let Some(new) = self.string(&span, s) {
                    *value.get_mut() = new;
                }
            }
            DeValue::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let child = format!("{path}[{i}]");
                    self.spans.insert(child.clone(), item.span());
                    self.value(child, item);
                }
            }
            DeValue::Table(t) => self.table(path, t),
            _ => {}
        }
    }

    /// The value that replaces the string: its literal text when it holds no pipeline
    /// reference, else the template's transport table. `None`: keep it as it is.
    fn string<'i>(&mut self, span: &Range<usize>, s: &str) -> Option<DeValue<'i>> {
        if !s.contains('$') {
            return None;
        }
        let parts = match template::parse_source(s) {
            Ok(p) => p,
            Err(e) => {
                let at = string_offset(self.source, span, s, e.offset);
                self.problems.push((at, e.message));
                return None;
            }
        };
        let mut offsets = StringOffsets::new(self.source, span, s);
        let t = self.resolve(&mut offsets, parts);
        if let Some(text) = t.as_literal() {
            return (text != s).then(|| DeValue::String(Cow::Owned(text.into_owned())));
        }
        self.templated.insert(
            span.start,
            t.names().into_iter().map(str::to_owned).collect(),
        );
        let mut table = DeTable::new();
        table.insert(
            Spanned::new(span.clone(), Cow::Borrowed(TRANSPORT_KEY)),
            Spanned::new(span.clone(), DeValue::String(Cow::Owned(t.encode()))),
        );
        Some(DeValue::Table(table))
    }

    /// Process variables filled in (their values as literal text), pipeline references
    /// kept. An undefined process variable without a default is a problem at its offset.
    fn resolve(&mut self, offsets: &mut StringOffsets<'_>, parts: Vec<SourcePart>) -> Template {
        let mut out = vec![];
        for p in parts {
            match p {
                SourcePart::Literal(text) => out.push(Part::Literal(text)),
                // The instance is known when the file is loaded: filled in as literal text
                // like a process variable, and left as those characters without one.
                SourcePart::Ref { offset, name, .. } if name == super::INSTANCE => {
                    self.instance_at.push(offsets.at(offset));
                    out.push(Part::Literal(match self.instance {
                        Some(i) => i.to_owned(),
                        None => format!("${{{}}}", super::INSTANCE),
                    }));
                }
                SourcePart::Ref {
                    offset,
                    name,
                    default,
                } if is_pipeline_name(&name) => {
                    self.refs.push(FoundRef {
                        name: name.clone(),
                        at: offsets.at(offset),
                    });
                    let default = default.map(|d| self.resolve(offsets, d));
                    out.push(Part::Ref(Reference { name, default }));
                }
                SourcePart::Ref {
                    offset,
                    name,
                    default,
                } => match ((self.env)(&name), default) {
                    (Some(value), _) => out.push(Part::Literal(value)),
                    (None, Some(d)) => {
                        out.extend(self.resolve(offsets, d).parts().iter().cloned())
                    }
                    (None, None) => self.problems.push((
                        offsets.at(offset),
                        format!(
                            "undefined variable `${{{name}}}`: it is not set in the environment, has no default (`${{{name}:-default}}`), and is not one of the pipeline's (commit, env, project, services.NAME.url, vars.NAME, capture.NAME)"
                        ),
                    )),
                },
            }
        }
        Template::from_parts(out)
    }
}

/// SHA-256 (hex) of the canonical form of the loaded tree: every table's keys sorted, every
/// string after process variables were filled in, templates in their transport form. Two
/// files that differ only in comments, layout, key order or quoting hash the same; a value
/// changed through an environment variable does not.
pub(crate) fn effective_hash(tree: &DeTable<'_>) -> String {
    let mut out = String::new();
    canonical_table(tree, &mut out);
    hex::encode(Sha256::digest(out.as_bytes()))
}

fn canonical_table(t: &DeTable<'_>, out: &mut String) {
    let sorted: BTreeMap<&str, &DeValue<'_>> = t
        .iter()
        .map(|(k, v)| (&**k.get_ref(), v.get_ref()))
        .collect();
    out.push('{');
    for (i, (k, v)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::Value::from(k).to_string());
        out.push(':');
        canonical_value(v, out);
    }
    out.push('}');
}

fn canonical_value(v: &DeValue<'_>, out: &mut String) {
    match v {
        DeValue::String(s) => out.push_str(&serde_json::Value::from(&**s).to_string()),
        DeValue::Integer(i) => {
            let n = i64::from_str_radix(&i.as_str().replace('_', ""), i.radix());
            match n {
                Ok(n) => out.push_str(&n.to_string()),
                Err(_) => out.push_str(&format!("\"int:{}\"", i.as_str())),
            }
        }
        DeValue::Float(f) => {
            let text = f.as_str().replace('_', "");
            match text.parse::<f64>() {
                Ok(x) if x.is_finite() => out.push_str(&format!("{x:?}")),
                _ => out.push_str(&format!("\"float:{text}\"")),
            }
        }
        DeValue::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        DeValue::Datetime(d) => out.push_str(&format!("\"datetime:{d}\"")),
        DeValue::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_value(item.get_ref(), out);
            }
            out.push(']');
        }
        DeValue::Table(t) => canonical_table(t, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_and_never_splits_one() {
        let s = "a = \"é${\"\nb";
        assert_eq!(line_col(s, 6), "1:6");
        assert_eq!(line_col(s, 5), "1:6"); // inside `é`: its start
        assert_eq!(line_col(s, 999), "2:2");
    }

    #[test]
    fn offsets_map_through_escapes_and_multi_line_strings() {
        let src = r#"x = "\"é\u00e9${""#;
        let span = 4..src.len();
        let decoded = "\"éé${";
        let at = string_offset(src, &span, decoded, decoded.find("${").unwrap());
        assert_eq!(&src[at..at + 2], "${");

        let src = "x = '''\né${'''";
        let span = 4..src.len();
        let at = string_offset(src, &span, "é${", 2);
        assert_eq!(&src[at..at + 2], "${");

        let src = "x = \"\"\"\nab \\\n   c${\"\"\"";
        let span = 4..src.len();
        let at = string_offset(src, &span, "ab c${", 4);
        assert_eq!(&src[at..at + 2], "${");
    }
}
