//! Whether a value is a secret: decided here, once, for every caller.
//!
//! Redaction is only as good as the decision of what to redact. When two places decided it
//! (the spec over every environment, the resolver per environment), they disagreed, and a
//! third (the drift step) treated every value read from a platform as a secret, so that
//! `true` and `production` were masked everywhere and evidence stopped being written. Every
//! caller now asks [`is_secret`] with the [`Origin`] of the value; [`secret_vars`] is the
//! same answer for every declared variable of one environment (what a provider stores
//! where the platform hides values: Netlify `is_secret`, AWS Secrets Manager).
//!
//! A value is a secret when
//! - the spec declares it (`secret = true`), or it is a plain template that embeds a
//!   secret through `${vars.NAME}`;
//! - it comes from a secret source: a store (`source`, `sources.ENV`, the environment's
//!   default `secrets` store), a provider's secret store (`service:Postgres`, connection
//!   info), a database branch's credentials, a provider token ([`Origin::Credential`]), or
//!   a value a probe captured ([`Origin::Captured`]);
//! - a provider marks it secret on the platform (Netlify `is_secret`, Vercel `sensitive`,
//!   Render secret files) and the spec does not declare it.
//!
//! A value read back from a platform for a variable the spec declares plain is plain, and so
//! are the platform's own plain settings.
//!
//! Nothing else decides: `crates/staging-core/tests/secretness.rs` fails when another
//! file reads a variable's `secret` flag or registers a value with a redactor without
//! asking here.

use std::collections::BTreeSet;

use crate::spec::{Spec, Template};

/// Where a value comes from: what decides whether it is a secret.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Origin<'a> {
    /// The value of the declared variable `name` in `environment`, as the spec gives it
    /// there (a plain template, a store, a database branch's URL).
    Var {
        /// The spec.
        spec: &'a Spec,
        /// The environment.
        environment: &'a str,
        /// The variable.
        name: &'a str,
    },
    /// What a platform holds for the variable `name` in `environment`.
    Platform {
        /// The spec.
        spec: &'a Spec,
        /// The environment whose platform was read.
        environment: &'a str,
        /// The variable's name on the platform (declared in the spec or not).
        name: &'a str,
        /// Whether the platform marks the value secret.
        marked_secret: bool,
    },
    /// A credential the tool reads to do its work or hands on: a provider token, a
    /// datastore's connection info, a database branch's credentials, the password of a
    /// database URL.
    Credential,
    /// A value a probe captured from a response (a session, a token).
    Captured,
}

/// Whether a value of `origin` is a secret. The one place that decides.
pub fn is_secret(origin: Origin<'_>) -> bool {
    match origin {
        Origin::Var {
            spec,
            environment,
            name,
        } => secret_vars(spec, environment).contains(name),
        Origin::Platform {
            spec,
            environment,
            name,
            marked_secret,
        } => {
            if spec.vars.contains_key(name) {
                secret_vars(spec, environment).contains(name)
            } else {
                marked_secret
            }
        }
        Origin::Credential | Origin::Captured => true,
    }
}

/// The declared variables whose values are secrets in `environment` (see the module
/// documentation). An environment the spec does not declare has the declared secrets only.
pub fn secret_vars(spec: &Spec, environment: &str) -> BTreeSet<String> {
    let env = spec.environments.get(environment);
    let mut out = BTreeSet::new();
    for (name, var) in &spec.vars {
        let plain = plain_template(spec, environment, name);
        let from_store = plain.is_none()
            && (var.sources.contains_key(environment)
                || var.source.is_some()
                || env.is_some_and(|e| e.secrets.is_some()));
        if var.secret || from_store {
            out.insert(name.clone());
        }
    }
    if let Some(env) = env {
        for db in spec.databases.values() {
            if db
                .branch
                .as_ref()
                .is_some_and(|b| b.applies_to(environment, env.protected))
            {
                out.insert(db.url_var.clone());
            }
        }
    }
    // A plain value that embeds a secret through `${vars.NAME}` is as secret.
    loop {
        let before = out.len();
        for name in spec.vars.keys() {
            if out.contains(name) {
                continue;
            }
            let embeds = plain_template(spec, environment, name).is_some_and(|t| {
                t.names()
                    .iter()
                    .any(|n| n.strip_prefix("vars.").is_some_and(|v| out.contains(v)))
            });
            if embeds {
                out.insert(name.clone());
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

/// The plain template `name` has in `environment`, if it has one there.
fn plain_template<'a>(spec: &'a Spec, environment: &str, name: &str) -> Option<&'a Template> {
    let var = spec.vars.get(name)?;
    var.values.get(environment).or(var.value.as_ref())
}
