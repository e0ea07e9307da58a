//! Templates filled in when a request is sent, so that secret values stay in `SecretString`
//! until then.

use std::collections::{BTreeMap, BTreeSet};

use secrecy::{ExposeSecret, SecretString};
use staging_core::pipeline::RunContext;
use staging_core::spec::interp;
use staging_core::{Error, Result};

/// The values one probe's templates name, copied out of the run context when the probe is
/// built (every value kept as a secret: a `${vars.X}` may be one).
#[derive(Clone, Default)]
pub(crate) struct Values {
    map: BTreeMap<String, SecretString>,
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
        templates: impl IntoIterator<Item = &'a str>,
        captures: &BTreeSet<String>,
    ) -> Result<Values> {
        let mut map = BTreeMap::new();
        for template in templates {
            let refs = interp::references(template)
                .map_err(|e| Error::config(format!("probe `{probe}`: {}", e.message)))?;
            for r in refs {
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
                        map.insert(r.name.clone(), SecretString::from(v));
                    }
                    None if r.default.is_some() => {}
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
        Ok(Values { map })
    }

    /// Add every value of `other`.
    pub(crate) fn extend(&mut self, other: Values) {
        self.map.extend(other.map);
    }

    /// These values plus `name = value`.
    pub(crate) fn with(&self, name: String, value: SecretString) -> Values {
        let mut map = self.map.clone();
        map.insert(name, value);
        Values { map }
    }

    /// `template` filled in. The result is sent, compared, or shown redacted; never logged.
    pub(crate) fn render(&self, template: &str) -> Result<String> {
        interp::render(template, &|name| {
            self.map.get(name).map(|v| v.expose_secret().to_owned())
        })
    }
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

/// Render every string inside a JSON value.
pub(crate) fn render_json(values: &Values, v: &serde_json::Value) -> Result<serde_json::Value> {
    Ok(match v {
        serde_json::Value::String(s) => serde_json::Value::String(values.render(s)?),
        serde_json::Value::Array(a) => serde_json::Value::Array(
            a.iter()
                .map(|x| render_json(values, x))
                .collect::<Result<_>>()?,
        ),
        serde_json::Value::Object(o) => serde_json::Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), render_json(values, x)?)))
                .collect::<Result<_>>()?,
        ),
        other => other.clone(),
    })
}

/// Every string inside a JSON value (to check the templates it holds).
pub(crate) fn json_strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| json_strings(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| json_strings(x, out)),
        _ => {}
    }
}
