//! Templates filled in when a request is sent, so that secret values stay in `SecretString`
//! until then. The templates were parsed once when the spec was loaded
//! ([`staging_core::spec::Template`]); here they are only filled in, each value appended as
//! it is and never read again.

use std::collections::{BTreeMap, BTreeSet};

use secrecy::{ExposeSecret, SecretString};
use staging_core::pipeline::RunContext;
use staging_core::spec::Template;
use staging_core::{Error, Result, secretness};

/// The values one probe's templates name, copied out of the run context when the probe is
/// built (every value kept as a secret: a `${vars.X}` may be one).
#[derive(Clone, Default)]
pub(crate) struct Values {
    map: BTreeMap<String, SecretString>,
    /// The names whose values are secrets ([`staging_core::secretness`]): percent-encoded
    /// when put into a URL ([`Values::render_url`]).
    secret: BTreeSet<String>,
}

impl std::fmt::Debug for Values {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Values")
            .field("names", &self.map.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Values {
    /// Collect the values `templates` name from `ctx`. A name the context does not know is a
    /// config error, except `capture.X` where `X` is in `captures` (made by an earlier step).
    pub(crate) fn collect<'a>(
        ctx: &RunContext,
        probe: &str,
        templates: impl IntoIterator<Item = &'a Template>,
        captures: &BTreeSet<String>,
    ) -> Result<Values> {
        let mut map = BTreeMap::new();
        let mut secret = BTreeSet::new();
        for template in templates {
            for (r, has_default) in template.references() {
                if map.contains_key(&r.name) {
                    continue;
                }
                if let Some(c) = r.name.strip_prefix("capture.")
                    && captures.contains(c)
                {
                    continue;
                }
                match ctx.lookup(&r.name) {
                    Some(v) => {
                        let origin = match r.name.strip_prefix("vars.") {
                            Some(name) => Some(secretness::Origin::Var {
                                spec: &ctx.spec.spec,
                                environment: &ctx.environment,
                                name,
                            }),
                            None if r.name.starts_with("capture.") => {
                                Some(secretness::Origin::Captured)
                            }
                            None => None,
                        };
                        if origin.is_some_and(secretness::is_secret) {
                            secret.insert(r.name.clone());
                        }
                        map.insert(r.name.clone(), SecretString::from(v));
                    }
                    None if has_default => {}
                    None => {
                        return Err(Error::config(format!(
                            "probe `{probe}`: `${{{}}}` has no value in environment {}{}",
                            r.name,
                            ctx.environment,
                            hint(&r.name)
                        )));
                    }
                }
            }
        }
        Ok(Values { map, secret })
    }

    /// Add every value of `other`.
    pub(crate) fn extend(&mut self, other: Values) {
        self.map.extend(other.map);
        self.secret.extend(other.secret);
    }

    /// These values plus `name = value`, a value a probe captured (a secret).
    pub(crate) fn with(&self, name: String, value: SecretString) -> Values {
        let mut out = self.clone();
        if secretness::is_secret(secretness::Origin::Captured) {
            out.secret.insert(name.clone());
        }
        out.map.insert(name, value);
        out
    }

    /// `template`, a URL, filled in: a secret value is percent-encoded (every byte but
    /// `A-Z a-z 0-9 - . _ ~`), so that a `#`, `&`, `%` or `/` in it cannot end the query or
    /// the path early and the service receives the value exactly; other values (a service
    /// URL, the commit) are inserted as they are.
    pub(crate) fn render_url(&self, template: &Template) -> Result<String> {
        template
            .render(&|name| {
                let v = self.map.get(name)?.expose_secret();
                Some(if self.secret.contains(name) {
                    percent_encode(v)
                } else {
                    v.to_owned()
                })
            })
            .map_err(|e| Error::config(e.to_string()))
    }

    /// `template` filled in. The result is sent, compared, or shown redacted; never logged.
    pub(crate) fn render(&self, template: &Template) -> Result<String> {
        template
            .render(&|name| self.map.get(name).map(|v| v.expose_secret().to_owned()))
            .map_err(|e| Error::config(e.to_string()))
    }
}

/// `v` percent-encoded as a URI component: every byte but the RFC 3986 unreserved ones.
fn percent_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len() * 3);
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hint(name: &str) -> &'static str {
    if name.starts_with("services.") {
        " (is the service deployed or located before the smoke step?)"
    } else if name.starts_with("vars.") {
        " (is the secrets step run before the smoke step?)"
    } else if name.starts_with("capture.") {
        " (captures are made by an earlier step of the same probe)"
    } else {
        ""
    }
}

/// A JSON value (a request body, an expected value) whose strings are templates.
#[derive(Debug, Clone)]
pub(crate) enum JsonTemplate {
    /// A string, filled in when sent.
    String(Template),
    /// An array.
    Array(Vec<JsonTemplate>),
    /// An object.
    Object(Vec<(String, JsonTemplate)>),
    /// A number, a boolean (or a date, as its text).
    Other(serde_json::Value),
}

impl JsonTemplate {
    /// From the spec's TOML value, whose template strings the loader parsed.
    pub(crate) fn from_toml(v: &toml::Value) -> Result<JsonTemplate> {
        if let Some(t) = Template::from_toml(v) {
            return Ok(JsonTemplate::String(t));
        }
        Ok(match v {
            toml::Value::Array(a) => JsonTemplate::Array(
                a.iter()
                    .map(JsonTemplate::from_toml)
                    .collect::<Result<_>>()?,
            ),
            toml::Value::Table(t) => JsonTemplate::Object(
                t.iter()
                    .map(|(k, x)| Ok((k.clone(), JsonTemplate::from_toml(x)?)))
                    .collect::<Result<_>>()?,
            ),
            other => JsonTemplate::Other(
                serde_json::to_value(other).map_err(|e| Error::config(e.to_string()))?,
            ),
        })
    }

    /// Every template inside.
    pub(crate) fn templates<'a>(&'a self, out: &mut Vec<&'a Template>) {
        match self {
            JsonTemplate::String(t) => out.push(t),
            JsonTemplate::Array(a) => a.iter().for_each(|x| x.templates(out)),
            JsonTemplate::Object(o) => o.iter().for_each(|(_, x)| x.templates(out)),
            JsonTemplate::Other(_) => {}
        }
    }

    /// The JSON value with every template filled in.
    pub(crate) fn render(&self, values: &Values) -> Result<serde_json::Value> {
        Ok(match self {
            JsonTemplate::String(t) => serde_json::Value::String(values.render(t)?),
            JsonTemplate::Array(a) => {
                serde_json::Value::Array(a.iter().map(|x| x.render(values)).collect::<Result<_>>()?)
            }
            JsonTemplate::Object(o) => serde_json::Value::Object(
                o.iter()
                    .map(|(k, x)| Ok((k.clone(), x.render(values)?)))
                    .collect::<Result<_>>()?,
            ),
            JsonTemplate::Other(v) => v.clone(),
        })
    }
}
