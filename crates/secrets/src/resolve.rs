//! Resolving the declared variables of one environment to values.

use std::collections::{BTreeMap, BTreeSet};

use secrecy::{ExposeSecret, SecretString};
use staging_core::redact::Redactor;
use staging_core::secretness;
use staging_core::spec::{LoadedSpec, Template, Var};
use staging_core::{Error, Result, SecretBackends};

use crate::store::{Location, locate, redact_error};

/// The variables of one environment, resolved.
///
/// Holds values, so it has no derived `Debug`: its `Debug` lists names only.
pub struct ResolvedVars {
    /// The environment.
    pub environment: String,
    /// Every declared variable that has a value in this environment.
    pub values: BTreeMap<String, SecretString>,
    /// The variables whose values are secrets here, as
    /// [`staging_core::secretness::secret_vars`] decides (declared `secret = true`, read
    /// from a store or a database branch, or a plain value that embeds a secret).
    pub secret_names: BTreeSet<String>,
    /// Where each variable's value comes from (`spec`, `env:STRIPE_KEY`,
    /// `dotenv:.env.staging`, `command:op`); never a value.
    pub sources: BTreeMap<String, String>,
    /// Required variables that have no value in this environment. Not an error by itself:
    /// the secrets check reports them.
    pub missing: Vec<String>,
    /// Variables whose source could not be read, with the (redacted) reason.
    pub errors: BTreeMap<String, String>,
    /// Those of [`ResolvedVars::errors`] whose source could not be reached or did not
    /// answer (a database branch's API): the class of failure that exits 3, not a spec
    /// error.
    pub unreachable: BTreeSet<String>,
    /// Pipeline references left in a value for a later step to fill in
    /// (`${services.web.url}`, or `${commit}` when no commit was given), by variable.
    pub deferred: BTreeMap<String, Vec<String>>,
}

impl std::fmt::Debug for ResolvedVars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedVars")
            .field("environment", &self.environment)
            .field("values", &self.values.keys().collect::<Vec<_>>())
            .field("secret_names", &self.secret_names)
            .field("sources", &self.sources)
            .field("missing", &self.missing)
            .field("errors", &self.errors)
            .field("unreachable", &self.unreachable)
            .field("deferred", &self.deferred)
            .finish()
    }
}

impl ResolvedVars {
    /// Whether `name` is a secret.
    pub fn is_secret(&self, name: &str) -> bool {
        self.secret_names.contains(name)
    }
}

/// What one variable resolved to in one environment.
pub(crate) enum Resolution {
    /// A value; `plain` when it came from the spec rather than a store.
    Value { value: SecretString, source: String },
    /// No value; `source` says where it was looked for.
    Absent { source: String },
    /// The source failed.
    Failed { source: String, message: String },
}

/// Where `var` is read in `environment`: a plain template from the spec, or a store.
pub(crate) enum Origin<'a> {
    /// `value` / `values.ENV`.
    Plain(&'a Template),
    /// A store.
    Store(Location),
    /// Nothing declared, and no default store.
    Nowhere,
}

pub(crate) fn origin<'a>(
    backends: &SecretBackends,
    spec: &LoadedSpec,
    environment: &str,
    name: &str,
    var: &'a Var,
) -> Result<Origin<'a>> {
    if let Some(t) = var.values.get(environment).or(var.value.as_ref()) {
        return Ok(Origin::Plain(t));
    }
    if let Some(src) = var.sources.get(environment).or(var.source.as_ref()) {
        return Ok(Origin::Store(locate(
            backends,
            spec,
            environment,
            src,
            name,
            false,
        )?));
    }
    let env = spec.spec.environment(environment)?;
    match &env.secrets {
        Some(src) => Ok(Origin::Store(locate(
            backends,
            spec,
            environment,
            src,
            name,
            true,
        )?)),
        None => Ok(Origin::Nowhere),
    }
}

/// The built-in pipeline names a value may use at this point: `${env}`, `${project}`,
/// `${commit}` (when known).
fn builtin(
    spec: &LoadedSpec,
    environment: &str,
    commit: Option<&str>,
    name: &str,
) -> Option<String> {
    match name {
        "env" => Some(environment.to_owned()),
        "project" => Some(spec.spec.project.name.clone()),
        "commit" => commit.map(str::to_owned),
        _ => None,
    }
}

/// Read one variable in one environment. Plain values get only the built-in names (the
/// comparison rules use this; `${vars.NAME}` is left as written).
pub(crate) async fn resolve_one(
    backends: &SecretBackends,
    spec: &LoadedSpec,
    environment: &str,
    name: &str,
    var: &Var,
    commit: Option<&str>,
) -> Result<Resolution> {
    Ok(match origin(backends, spec, environment, name, var)? {
        Origin::Plain(t) => {
            let (out, _) = t.render_known(&|n| builtin(spec, environment, commit, n));
            Resolution::Value {
                value: SecretString::from(text_of(&out)),
                source: "spec".to_owned(),
            }
        }
        Origin::Store(loc) => read(&loc, spec, environment, name).await,
        Origin::Nowhere => Resolution::Absent {
            source: "none".to_owned(),
        },
    })
}

async fn read(loc: &Location, spec: &LoadedSpec, environment: &str, name: &str) -> Resolution {
    match loc.store.get(&loc.key).await {
        Ok(Some(value)) => {
            Redactor::global().register_if_secret(
                secretness::Origin::Var {
                    spec: &spec.spec,
                    environment,
                    name,
                },
                &value,
            );
            Resolution::Value {
                value,
                source: loc.description.clone(),
            }
        }
        Ok(None) => Resolution::Absent {
            source: loc.description.clone(),
        },
        Err(e) => Resolution::Failed {
            source: loc.description.clone(),
            message: redact_error(&e),
        },
    }
}

/// Resolve every declared variable of `environment`.
///
/// Plain values (`value`, `values.ENV`) are rendered for `${env}`, `${project}`,
/// `${commit}` (when `commit` is given) and `${vars.NAME}`; other pipeline references
/// (`${services.web.url}`) are left as written and listed in
/// [`ResolvedVars::deferred`]. Secrets are read from their own source or the environment's
/// default store and registered with the global [`Redactor`] as they are read; a
/// provider's store and database branches are reached through `backends` (see
/// [`SecretBackends`]).
///
/// Returns `Err` only when the environment or a source is wrongly declared; a source that
/// fails to read is recorded in [`ResolvedVars::errors`], a required variable without a
/// value in [`ResolvedVars::missing`].
pub async fn resolve_vars(
    backends: &SecretBackends,
    spec: &LoadedSpec,
    environment: &str,
    commit: Option<&str>,
) -> Result<ResolvedVars> {
    spec.spec.environment(environment)?;
    let mut out = ResolvedVars {
        environment: environment.to_owned(),
        values: BTreeMap::new(),
        secret_names: secretness::secret_vars(&spec.spec, environment),
        sources: BTreeMap::new(),
        missing: vec![],
        errors: BTreeMap::new(),
        unreachable: BTreeSet::new(),
        deferred: BTreeMap::new(),
    };
    let mut plain: BTreeMap<&str, &Template> = BTreeMap::new();
    for (name, var) in &spec.spec.vars {
        let origin = origin(backends, spec, environment, name, var)?;
        let resolution = match origin {
            Origin::Plain(t) => {
                plain.insert(name, t);
                out.sources.insert(name.clone(), "spec".to_owned());
                continue;
            }
            Origin::Store(loc) => read(&loc, spec, environment, name).await,
            Origin::Nowhere => Resolution::Absent {
                source: "none".to_owned(),
            },
        };
        match resolution {
            Resolution::Value { value, source } => {
                out.sources.insert(name.clone(), source);
                out.values.insert(name.clone(), value);
            }
            Resolution::Absent { source } => {
                out.sources.insert(name.clone(), source);
                if var.required {
                    out.missing.push(name.clone());
                }
            }
            Resolution::Failed { source, message } => {
                out.sources.insert(name.clone(), source);
                out.errors.insert(name.clone(), message);
            }
        }
    }
    render_plain(spec, environment, commit, plain, &mut out)?;
    crate::branches::apply(backends, spec, environment, &mut out).await;
    Ok(out)
}

/// The value of a plain template after what is known was filled in: its text, or, while it
/// still waits for a pipeline reference, the template in spec syntax.
fn text_of(t: &Template) -> String {
    match t.as_literal() {
        Some(text) => text.into_owned(),
        None => t.to_source(),
    }
}

/// Render plain values, in as many passes as `${vars.NAME}` chains need.
fn render_plain(
    spec: &LoadedSpec,
    environment: &str,
    commit: Option<&str>,
    mut pending: BTreeMap<&str, &Template>,
    out: &mut ResolvedVars,
) -> Result<()> {
    while !pending.is_empty() {
        let mut progressed = false;
        let names: Vec<&str> = pending.keys().copied().collect();
        for name in names {
            let template = pending[name];
            let lookup = |n: &str| {
                builtin(spec, environment, commit, n).or_else(|| {
                    n.strip_prefix("vars.")
                        .and_then(|v| out.values.get(v))
                        .map(|v| v.expose_secret().to_owned())
                })
            };
            let (rendered, unknown) = template.render_known(&lookup);
            let waits = unknown.iter().any(|n| {
                n.strip_prefix("vars.")
                    .is_some_and(|v| pending.contains_key(v) && v != name)
            });
            if waits {
                continue;
            }
            let value = SecretString::from(text_of(&rendered));
            Redactor::global().register_if_secret(
                secretness::Origin::Var {
                    spec: &spec.spec,
                    environment,
                    name,
                },
                &value,
            );
            if !unknown.is_empty() {
                out.deferred.insert(name.to_owned(), unknown);
            }
            out.values.insert(name.to_owned(), value);
            pending.remove(name);
            progressed = true;
        }
        if !progressed {
            let names: Vec<&str> = pending.keys().copied().collect();
            return Err(spec.error_at(
                &format!("vars.{}", names[0]),
                format!(
                    "`${{vars.NAME}}` references form a cycle among {}",
                    names.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// An error for a variable name the spec does not declare.
pub(crate) fn undeclared(spec: &LoadedSpec, name: &str) -> Error {
    Error::config(format!(
        "`{name}` is not declared in [vars] of {} (declared: {})",
        spec.path.display(),
        spec.spec
            .vars
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    ))
}
