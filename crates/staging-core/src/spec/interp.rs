//! `${VAR}` interpolation.
//!
//! Two kinds of names: process environment variables, substituted when the spec is loaded
//! (`${HOME}`, `${REGION:-us-east-1}`), and pipeline variables, kept in the text and
//! substituted when a step runs: `${commit}`, `${env}`, `${project}`,
//! `${services.NAME.url}`, `${vars.NAME}` and `${capture.NAME}`. `$${` writes a literal `${`.

use std::borrow::Cow;

/// The names the pipeline fills in at run time.
pub const PIPELINE_NAMES: &[&str] = &["commit", "env", "project"];

/// Namespaces the pipeline fills in at run time (`services.web.url`, `vars.X`, `capture.X`).
pub const PIPELINE_NAMESPACES: &[&str] = &["services.", "vars.", "capture."];

/// Whether `name` is filled in by the pipeline rather than the process environment.
pub fn is_pipeline_name(name: &str) -> bool {
    PIPELINE_NAMES.contains(&name) || PIPELINE_NAMESPACES.iter().any(|ns| name.starts_with(ns))
}

/// One `${...}` reference found in a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Byte offset of the `$` within the string.
    pub offset: usize,
    /// The name (`commit`, `HOME`).
    pub name: String,
    /// The default after `:-`, if any.
    pub default: Option<String>,
}

/// A problem with a `${...}` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpError {
    /// Byte offset within the string.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

/// Every `${...}` reference in `s`, or the first malformed one.
pub fn references(s: &str) -> Result<Vec<Reference>, InterpError> {
    let mut out = vec![];
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'$') && bytes.get(i + 2) == Some(&b'{') {
            i += 3;
            continue;
        }
        if bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'{') {
            let Some(close) = s[i + 2..].find('}') else {
                return Err(InterpError {
                    offset: i,
                    message: "`${` is not closed by `}`".into(),
                });
            };
            let inner = &s[i + 2..i + 2 + close];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d.to_owned())),
                None => (inner, None),
            };
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
            if !valid {
                return Err(InterpError {
                    offset: i,
                    message: format!(
                        "`${{{inner}}}` is not a variable name (letters, digits, `_`, `.`)"
                    ),
                });
            }
            out.push(Reference {
                offset: i,
                name: name.to_owned(),
                default,
            });
            i += 2 + close + 1;
            continue;
        }
        i += 1;
    }
    Ok(out)
}

/// Substitute every reference that `lookup` knows; keep the others as written. Returns the
/// names that `lookup` did not know and that have no default.
pub fn substitute<'a>(
    s: &'a str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(Cow<'a, str>, Vec<Reference>), InterpError> {
    let refs = references(s)?;
    if refs.is_empty() && !s.contains("$${") {
        return Ok((Cow::Borrowed(s), vec![]));
    }
    let mut out = String::with_capacity(s.len());
    let mut unknown = vec![];
    let mut last = 0;
    for r in refs {
        out.push_str(&unescape(&s[last..r.offset]));
        let end = r.offset
            + s[r.offset..]
                .find('}')
                .map(|p| p + 1)
                .unwrap_or(s.len() - r.offset);
        match lookup(&r.name).or_else(|| r.default.clone()) {
            Some(v) => out.push_str(&v),
            None => {
                out.push_str(&s[r.offset..end]);
                unknown.push(r);
            }
        }
        last = end;
    }
    out.push_str(&unescape(&s[last..]));
    Ok((Cow::Owned(out), unknown))
}

fn unescape(s: &str) -> Cow<'_, str> {
    if s.contains("$${") {
        Cow::Owned(s.replace("$${", "${"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Substitute every reference; an unknown name without a default is an error naming it.
pub fn render(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> crate::Result<String> {
    let (out, unknown) = substitute(s, lookup).map_err(|e| crate::Error::config(e.message))?;
    if let Some(r) = unknown.first() {
        return Err(crate::Error::config(format!(
            "`${{{}}}` has no value here",
            r.name
        )));
    }
    Ok(out.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "REGION" => Some("eu-west-1".into()),
            "commit" => Some("abc123".into()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_known_names_and_defaults() {
        let (s, unknown) = substitute("r=${REGION} z=${ZONE:-a} c=${commit}", &env).unwrap();
        assert_eq!(s, "r=eu-west-1 z=a c=abc123");
        assert!(unknown.is_empty());
    }

    #[test]
    fn keeps_and_reports_unknown_names() {
        let (s, unknown) = substitute("x=${NOPE}/y", &env).unwrap();
        assert_eq!(s, "x=${NOPE}/y");
        assert_eq!(unknown[0].name, "NOPE");
        assert_eq!(unknown[0].offset, 2);
    }

    #[test]
    fn double_dollar_escapes() {
        let (s, unknown) = substitute("a $${REGION} ${REGION}", &env).unwrap();
        assert_eq!(s, "a ${REGION} eu-west-1");
        assert!(unknown.is_empty());
    }

    #[test]
    fn unclosed_reference_is_an_error_at_its_offset() {
        let e = references("ab ${OPEN").unwrap_err();
        assert_eq!(e.offset, 3);
    }

    #[test]
    fn render_fails_on_unknown_name() {
        assert!(render("${commit}", &env).is_ok());
        let e = render("${services.web.url}", &env).unwrap_err();
        assert!(e.to_string().contains("services.web.url"));
    }

    #[test]
    fn pipeline_names_are_recognised() {
        assert!(is_pipeline_name("commit"));
        assert!(is_pipeline_name("services.web.url"));
        assert!(!is_pipeline_name("HOME"));
    }
}
