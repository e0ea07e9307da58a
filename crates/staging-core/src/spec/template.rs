//! Templates: a spec string parsed once, at load, into literal text and pipeline references.
//!
//! A string in the spec may name two kinds of variables:
//!
//! - **process environment variables** (`${HOME}`, `${REGION:-us-east-1}`), filled in when
//!   the spec is loaded. Their values are inserted as *literal text*: a value that itself
//!   contains `${vars.API_TOKEN}` arrives as those characters, never as the secret;
//! - **pipeline variables**, kept as references and filled in when a step runs:
//!   `${commit}`, `${env}`, `${project}`, `${services.NAME.url}`, `${vars.NAME}` and
//!   `${capture.NAME}`.
//!
//! `$${` always writes a literal `${`. A default (`${NAME:-text}`) is itself a template: it
//! may hold references (`${A:-${B}}`, `${vars.X:-${commit}}`), `$${`, and balanced braces
//! (`${RX:-^a{2}$}`); the first `}` that closes no `{` ends it.
//!
//! The result is a [`Template`]: a list of [`Part`]s. Rendering one looks each reference up
//! once and appends the value; nothing it appends is read again (the way `std::fmt` never
//! re-reads an argument). This is the only place of the toolkit that reads `${`.

use std::borrow::Cow;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The names the pipeline fills in at run time.
pub const PIPELINE_NAMES: &[&str] = &["commit", "env", "project"];

/// Namespaces the pipeline fills in at run time (`services.web.url`, `vars.X`, `capture.X`).
pub const PIPELINE_NAMESPACES: &[&str] = &["services.", "vars.", "capture."];

/// How deep defaults may nest (`${A:-${B:-${C}}}` is 3).
pub const MAX_NESTING: usize = 8;

/// The key of the one-entry table by which the loader hands a parsed template to serde (see
/// [`Template`]'s `Deserialize`). Not a key anyone can write: the loader refuses it.
pub(crate) const TRANSPORT_KEY: &str = "\u{0}staging-template";

/// Whether `name` is filled in by the pipeline rather than the process environment.
pub fn is_pipeline_name(name: &str) -> bool {
    PIPELINE_NAMES.contains(&name) || PIPELINE_NAMESPACES.iter().any(|ns| name.starts_with(ns))
}

/// A string of the spec, parsed: literal text and pipeline references.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Template {
    parts: Vec<Part>,
}

/// One piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text taken as it is (process environment values end up here too).
    Literal(String),
    /// A pipeline reference, filled in when a step runs.
    Ref(Reference),
}

/// A pipeline reference (`${services.web.url}`, `${vars.X:-fallback}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The name (`commit`, `vars.API_TOKEN`).
    pub name: String,
    /// What to use when the pipeline has no value for it.
    pub default: Option<Template>,
}

/// A reference the pipeline had no value for (and that had no default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// Its name.
    pub name: String,
}

impl fmt::Display for Unresolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`${{{}}}` has no value here", self.name)
    }
}

impl Template {
    /// A template that is only this text.
    pub fn literal(text: impl Into<String>) -> Self {
        let text = text.into();
        Template {
            parts: if text.is_empty() {
                vec![]
            } else {
                vec![Part::Literal(text)]
            },
        }
    }

    /// Parse `text` as spec syntax, every `${...}` taken as a pipeline reference (nothing is
    /// read from the process environment): for templates built in code and tests. The
    /// loader parses spec strings itself, filling in process variables.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        fn to_template(parts: Vec<SourcePart>) -> Template {
            Template::from_parts(parts.into_iter().map(|p| match p {
                SourcePart::Literal(s) => Part::Literal(s),
                SourcePart::Ref { name, default, .. } => Part::Ref(Reference {
                    name,
                    default: default.map(to_template),
                }),
            }))
        }
        parse_source(text).map(to_template)
    }

    /// A template from parts (adjacent literals are joined).
    pub fn from_parts(parts: impl IntoIterator<Item = Part>) -> Self {
        let mut t = Template::default();
        for p in parts {
            t.push(p);
        }
        t
    }

    fn push(&mut self, part: Part) {
        match (self.parts.last_mut(), part) {
            (_, Part::Literal(s)) if s.is_empty() => {}
            (Some(Part::Literal(last)), Part::Literal(s)) => last.push_str(&s),
            (_, p) => self.parts.push(p),
        }
    }

    /// Its parts.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The text, when the template holds no reference.
    pub fn as_literal(&self) -> Option<Cow<'_, str>> {
        match self.parts.as_slice() {
            [] => Some(Cow::Borrowed("")),
            [Part::Literal(s)] => Some(Cow::Borrowed(s)),
            _ => None,
        }
    }

    /// Every reference, those inside defaults included, with whether it (or an enclosing
    /// reference) has a default to fall back on.
    pub fn references(&self) -> Vec<(&Reference, bool)> {
        fn walk<'a>(t: &'a Template, fallback: bool, out: &mut Vec<(&'a Reference, bool)>) {
            for p in &t.parts {
                if let Part::Ref(r) = p {
                    out.push((r, fallback || r.default.is_some()));
                    if let Some(d) = &r.default {
                        walk(d, fallback, out);
                    }
                }
            }
        }
        let mut out = vec![];
        walk(self, false, &mut out);
        out
    }

    /// The names of every reference (defaults included), in order, each once.
    pub fn names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = vec![];
        for (r, _) in self.references() {
            if !out.contains(&r.name.as_str()) {
                out.push(&r.name);
            }
        }
        out
    }

    /// Fill in every reference through `lookup` (or its default). The values are appended as
    /// they are, never read again.
    pub fn render(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, Unresolved> {
        let mut out = String::new();
        self.render_into(&mut out, lookup)?;
        Ok(out)
    }

    fn render_into(
        &self,
        out: &mut String,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), Unresolved> {
        for p in &self.parts {
            match p {
                Part::Literal(s) => out.push_str(s),
                Part::Ref(r) => match (lookup(&r.name), &r.default) {
                    (Some(v), _) => out.push_str(&v),
                    (None, Some(d)) => d.render_into(out, lookup)?,
                    (None, None) => {
                        return Err(Unresolved {
                            name: r.name.clone(),
                        });
                    }
                },
            }
        }
        Ok(())
    }

    /// Fill in what `lookup` knows and keep the rest as references: the template left for a
    /// later step, and the names it still waits for.
    pub fn render_known(&self, lookup: &dyn Fn(&str) -> Option<String>) -> (Template, Vec<String>) {
        fn walk(
            t: &Template,
            lookup: &dyn Fn(&str) -> Option<String>,
            out: &mut Template,
            missing: &mut Vec<String>,
        ) {
            for p in &t.parts {
                match p {
                    Part::Literal(s) => out.push(Part::Literal(s.clone())),
                    Part::Ref(r) => match lookup(&r.name) {
                        Some(v) => out.push(Part::Literal(v)),
                        None => {
                            // Kept whole: a later step may know it, else its default applies.
                            missing.push(r.name.clone());
                            out.push(Part::Ref(r.clone()));
                        }
                    },
                }
            }
        }
        let mut out = Template::default();
        let mut missing = vec![];
        walk(self, lookup, &mut out, &mut missing);
        (out, missing)
    }

    /// The template written back in spec syntax (`$${` for a literal `${`): what a user would
    /// write to get it, for messages and for settings handed on as text.
    pub fn to_source(&self) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Literal(s) => out.push_str(&s.replace("${", "$${")),
                Part::Ref(r) => {
                    out.push_str("${");
                    out.push_str(&r.name);
                    if let Some(d) = &r.default {
                        out.push_str(":-");
                        out.push_str(&d.to_source());
                    }
                    out.push('}');
                }
            }
        }
        out
    }

    /// The template of a TOML value the loader produced: a string is literal text, a
    /// template with references is the loader's one-entry transport table. `None` for other
    /// values. For template strings inside free-form values (a probe's `json` body).
    pub fn from_toml(value: &toml::Value) -> Option<Template> {
        match value {
            toml::Value::String(s) => Some(Template::literal(s.clone())),
            toml::Value::Table(t) if t.len() == 1 => match t.get(TRANSPORT_KEY) {
                Some(toml::Value::String(json)) => Template::decode(json),
                _ => None,
            },
            _ => None,
        }
    }

    /// The transport form (see [`TRANSPORT_KEY`]).
    pub(crate) fn encode(&self) -> String {
        serde_json::to_string(&Repr::from_template(self)).unwrap_or_default()
    }

    pub(crate) fn decode(json: &str) -> Option<Template> {
        serde_json::from_str::<Vec<Repr>>(json)
            .ok()
            .map(|r| Repr::to_template(&r))
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Template({:?})", self.to_source())
    }
}

impl fmt::Display for Template {
    /// Spec syntax, as [`Template::to_source`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_source())
    }
}

impl std::str::FromStr for Template {
    type Err = TemplateError;

    /// As [`Template::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Template::parse(s)
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.message, self.offset)
    }
}

impl std::error::Error for TemplateError {}

impl From<&str> for Template {
    /// Literal text, taken as it is: `"${commit}".into()` is those characters. To read spec
    /// syntax, use [`Template::parse`] (or `str::parse`).
    fn from(s: &str) -> Self {
        Template::literal(s)
    }
}

/// The compact transport form of parts (JSON): `"text"` or `["name", default?]`.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Repr {
    Literal(String),
    Ref(String, Option<Vec<Repr>>),
}

impl Repr {
    fn from_template(t: &Template) -> Vec<Repr> {
        t.parts
            .iter()
            .map(|p| match p {
                Part::Literal(s) => Repr::Literal(s.clone()),
                Part::Ref(r) => {
                    Repr::Ref(r.name.clone(), r.default.as_ref().map(Repr::from_template))
                }
            })
            .collect()
    }

    fn to_template(reprs: &[Repr]) -> Template {
        Template::from_parts(reprs.iter().map(|r| match r {
            Repr::Literal(s) => Part::Literal(s.clone()),
            Repr::Ref(name, default) => Part::Ref(Reference {
                name: name.clone(),
                default: default.as_deref().map(Repr::to_template),
            }),
        }))
    }
}

impl Serialize for Template {
    /// As spec text ([`Template::to_source`]).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_source())
    }
}

impl<'de> Deserialize<'de> for Template {
    /// A plain string is literal text (the loader has already applied `$${` and process
    /// variables); a template with references arrives as the loader's transport table.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Template;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Template, E> {
                Ok(Template::literal(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Template, A::Error> {
                let key: Option<String> = map.next_key()?;
                match key.as_deref() {
                    Some(TRANSPORT_KEY) => {
                        let json: String = map.next_value()?;
                        Template::decode(&json)
                            .ok_or_else(|| serde::de::Error::custom("malformed template"))
                    }
                    _ => Err(serde::de::Error::invalid_type(
                        serde::de::Unexpected::Map,
                        &self,
                    )),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Template {
    fn schema_name() -> Cow<'static, str> {
        "String".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(generator)
    }
}

/// A problem in a `${...}` of a spec string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// Byte offset within the string.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

/// A string as written, before process variables are filled in: what [`parse_source`]
/// returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourcePart {
    /// Literal text (`$${` already turned into `${`).
    Literal(String),
    /// A `${NAME}` or `${NAME:-default}`.
    Ref {
        /// Byte offset of its `$` within the string.
        offset: usize,
        /// The name.
        name: String,
        /// The default, parsed.
        default: Option<Vec<SourcePart>>,
    },
}

/// Parse a spec string as written. Errors (an unclosed `${`, a bad name, defaults nested too
/// deep) carry the byte offset of the `${` they are about.
pub fn parse_source(s: &str) -> Result<Vec<SourcePart>, TemplateError> {
    let mut p = SourceParser { s, i: 0 };
    p.parts(0, None)
}

struct SourceParser<'s> {
    s: &'s str,
    i: usize,
}

impl SourceParser<'_> {
    /// Parts until the end (`open` is None) or until the `}` closing the reference at
    /// `open`.
    fn parts(
        &mut self,
        depth: usize,
        open: Option<usize>,
    ) -> Result<Vec<SourcePart>, TemplateError> {
        let mut out = vec![];
        let mut text = String::new();
        let mut braces = 0usize;
        let s = self.s;
        let bytes = s.as_bytes();
        loop {
            let rest = &s[self.i..];
            if rest.is_empty() {
                if let Some(at) = open {
                    return Err(TemplateError {
                        offset: at,
                        message: "`${` is not closed by `}`".into(),
                    });
                }
                break;
            }
            if rest.starts_with("$${") {
                text.push_str("${");
                self.i += 3;
                continue;
            }
            if rest.starts_with("${") {
                if !text.is_empty() {
                    out.push(SourcePart::Literal(std::mem::take(&mut text)));
                }
                out.push(self.reference(depth)?);
                continue;
            }
            if open.is_some() {
                match bytes[self.i] {
                    b'{' => braces += 1,
                    b'}' if braces == 0 => {
                        self.i += 1;
                        break;
                    }
                    b'}' => braces -= 1,
                    _ => {}
                }
            }
            let c = rest.chars().next().unwrap_or_default();
            text.push(c);
            self.i += c.len_utf8();
        }
        if !text.is_empty() {
            out.push(SourcePart::Literal(text));
        }
        Ok(out)
    }

    /// A reference; `self.i` is at its `${`.
    fn reference(&mut self, depth: usize) -> Result<SourcePart, TemplateError> {
        let offset = self.i;
        if depth >= MAX_NESTING {
            return Err(TemplateError {
                offset,
                message: format!("defaults nest more than {MAX_NESTING} deep"),
            });
        }
        let start = self.i + 2;
        let name_len = self.s[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-'))
            .unwrap_or(self.s.len() - start);
        let name = &self.s[start..start + name_len];
        let after = &self.s[start + name_len..];
        let bad_name = |what: &str| TemplateError {
            offset,
            message: format!(
                "`${{` must be followed by a variable name (letters, digits, `_`, `.`, `-`) and `}}` or `:-default}}`{what}; write `$${{` for a literal `${{`"
            ),
        };
        if after.is_empty() {
            return Err(TemplateError {
                offset,
                message: "`${` is not closed by `}`".into(),
            });
        }
        if name.is_empty() {
            return Err(bad_name(""));
        }
        if after.starts_with('}') {
            self.i = start + name_len + 1;
            return Ok(SourcePart::Ref {
                offset,
                name: name.to_owned(),
                default: None,
            });
        }
        if after.starts_with(":-") {
            self.i = start + name_len + 2;
            let default = self.parts(depth + 1, Some(offset))?;
            return Ok(SourcePart::Ref {
                offset,
                name: name.to_owned(),
                default: Some(default),
            });
        }
        let found = after.chars().next().unwrap_or_default();
        Err(bad_name(&format!(" (found `{found}` after `{name}`)")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "commit" => Some("abc123".into()),
            "vars.TOKEN" => Some("s3cr3t".into()),
            "capture.x" => Some("${vars.TOKEN}".into()),
            _ => None,
        }
    }

    fn t(s: &str) -> Template {
        Template::parse(s).unwrap()
    }

    #[test]
    fn double_dollar_is_a_literal_dollar_brace_after_rendering() {
        assert_eq!(
            t("a $${commit} ${commit}").render(&lookup).unwrap(),
            "a ${commit} abc123"
        );
    }

    #[test]
    fn a_rendered_value_is_never_read_again() {
        assert_eq!(
            t("<${capture.x}>").render(&lookup).unwrap(),
            "<${vars.TOKEN}>"
        );
    }

    #[test]
    fn nested_defaults_render_and_braces_in_defaults_balance() {
        assert_eq!(t("${nope:-${commit}}!").render(&lookup).unwrap(), "abc123!");
        assert_eq!(t("${nope:-${nada:-x}}").render(&lookup).unwrap(), "x");
        assert_eq!(t("${RX:-^a{2}$}").render(&lookup).unwrap(), "^a{2}$");
        assert_eq!(t("${RX:-^ok$}").render(&lookup).unwrap(), "^ok$");
        assert_eq!(t("${RX:-}").render(&lookup).unwrap(), "");
    }

    #[test]
    fn malformed_references_are_errors_at_their_offset() {
        for (s, at) in [
            ("ab ${OPEN", 3),
            ("ab ${", 3),
            ("${}", 0),
            ("x${a b}", 1),
            ("${A:-${B}", 0),
            ("${A:-x", 0),
        ] {
            assert_eq!(parse_source(s).unwrap_err().offset, at, "{s}");
        }
        let deep = "${A:-".repeat(50) + &"}".repeat(50);
        assert!(parse_source(&deep).unwrap_err().message.contains("nest"));
    }

    #[test]
    fn unknown_reference_without_default_is_unresolved() {
        let e = t("${services.web.url}/up").render(&lookup).unwrap_err();
        assert_eq!(e.name, "services.web.url");
    }

    #[test]
    fn to_source_round_trips() {
        for s in ["a $${x} ${commit:-${env}} b", "${RX:-^a{2}$}", "plain", ""] {
            assert_eq!(t(&t(s).to_source()), t(s), "{s}");
        }
    }

    #[test]
    fn transport_round_trips() {
        let x = t("a ${commit:-${env}} $${b}");
        assert_eq!(Template::decode(&x.encode()), Some(x));
    }

    #[test]
    fn pipeline_names_are_recognised() {
        assert!(is_pipeline_name("commit"));
        assert!(is_pipeline_name("services.web.url"));
        assert!(!is_pipeline_name("HOME"));
    }
}
