//! `staging secrets check`: every variable of an environment with its source, status and
//! fingerprint, and the rules it breaks.

use serde::Serialize;
use staging_core::spec::LoadedSpec;
use staging_core::{Result, SecretBackends};

use crate::fingerprint::Fingerprinter;
use crate::resolve::{ResolvedVars, resolve_vars};
use crate::rules::{self, Severity, Violation};

/// The state of one variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VarStatus {
    /// Has a value that satisfies every rule.
    Ok,
    /// Has a value; something is worth knowing (a comparison that could not be made).
    Warning,
    /// Has a value that breaks a rule.
    Invalid,
    /// Required, and has no value.
    Missing,
    /// Optional, and has no value.
    Unset,
    /// Its source could not be read.
    Error,
}

impl VarStatus {
    /// Whether this status fails the check.
    pub fn fails(self) -> bool {
        matches!(
            self,
            VarStatus::Invalid | VarStatus::Missing | VarStatus::Error
        )
    }
}

/// One row of the check table. Never holds a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VarCheck {
    /// The variable.
    pub name: String,
    /// Where its value comes from (`spec`, `env:X`, `dotenv:.env`, `command:op`).
    pub source: String,
    /// Whether it is a secret.
    pub secret: bool,
    /// Its state.
    pub status: VarStatus,
    /// A short keyed hash of the value (`fp:1a2b3c4d5e6f`), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The rules it breaks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Violation>,
}

/// The result of `staging secrets check --env ENV`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// The project.
    pub project: String,
    /// The environment checked.
    pub environment: String,
    /// Whether no variable failed.
    pub ok: bool,
    /// What keys the fingerprints: `team` (`STAGING_FINGERPRINT_KEY`) or `project`.
    pub fingerprint_key: &'static str,
    /// One row per declared variable, by name.
    pub vars: Vec<VarCheck>,
}

impl CheckReport {
    /// The rows that fail the check.
    pub fn failures(&self) -> impl Iterator<Item = &VarCheck> {
        self.vars.iter().filter(|v| v.status.fails())
    }

    /// The exit code of `secrets check`: 0 when ok, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        if self.ok { 0 } else { 1 }
    }
}

/// Check every declared variable of `environment`: resolve, apply the rules, fingerprint.
pub async fn check(
    backends: &SecretBackends,
    spec: &LoadedSpec,
    environment: &str,
    commit: Option<&str>,
) -> Result<CheckReport> {
    let fingerprints = Fingerprinter::for_project(&spec.spec.project.name);
    let resolved = resolve_vars(backends, spec, environment, commit).await?;
    check_resolved(backends, spec, &resolved, &fingerprints, commit).await
}

/// Check variables already resolved (the secrets step resolves once and checks that).
pub async fn check_resolved(
    backends: &SecretBackends,
    spec: &LoadedSpec,
    resolved: &ResolvedVars,
    fingerprints: &Fingerprinter,
    commit: Option<&str>,
) -> Result<CheckReport> {
    let environment = resolved.environment.as_str();
    let protected = spec.spec.environment(environment)?.protected;
    let mut rows = vec![];
    for (name, var) in &spec.spec.vars {
        let source = resolved
            .sources
            .get(name)
            .cloned()
            .unwrap_or_else(|| "none".to_owned());
        let secret = resolved.is_secret(name);
        let mut problems = vec![];
        let mut fingerprint = None;
        let status = if let Some(message) = resolved.errors.get(name) {
            problems.push(Violation {
                rule: "source",
                severity: Severity::Error,
                message: format!("`{name}`: {message}"),
            });
            VarStatus::Error
        } else if let Some(value) = resolved.values.get(name) {
            fingerprint = Some(fingerprints.display(value));
            let deferred = resolved.deferred.contains_key(name);
            problems.extend(rules::check_value(
                name,
                var,
                value,
                environment,
                protected,
                deferred,
                secret,
            ));
            problems.extend(
                rules::check_across_environments(
                    backends,
                    spec,
                    environment,
                    name,
                    var,
                    value,
                    fingerprints,
                    commit,
                )
                .await?,
            );
            match problems.iter().map(|p| p.severity).max() {
                None => VarStatus::Ok,
                Some(Severity::Warning) => VarStatus::Warning,
                Some(Severity::Error) => VarStatus::Invalid,
            }
        } else if var.required {
            problems.push(rules::missing(name, var, environment, &source));
            VarStatus::Missing
        } else {
            VarStatus::Unset
        };
        rows.push(VarCheck {
            name: name.clone(),
            source,
            secret,
            status,
            fingerprint,
            problems,
        });
    }
    Ok(CheckReport {
        project: spec.spec.project.name.clone(),
        environment: environment.to_owned(),
        ok: rows.iter().all(|r| !r.status.fails()),
        fingerprint_key: if fingerprints.has_team_key() {
            "team"
        } else {
            "project"
        },
        vars: rows,
    })
}
