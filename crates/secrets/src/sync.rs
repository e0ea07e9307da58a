//! `staging secrets sync --env ENV [--apply]`: push the declared values to the provider's
//! env vars, one key at a time, never replacing the provider's whole set.

use serde::Serialize;
use staging_core::spec::LoadedSpec;
use staging_core::{
    Capability, DynProvider, Error, ProviderExt, Result, SecretBackends, WriteBoundary,
};

use crate::check::check_resolved;
use crate::fingerprint::Fingerprinter;
use crate::resolve::resolve_vars;

/// What sync does (or would do) with one key of one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncAction {
    /// The provider lacks the key: it is added.
    Add,
    /// The provider has another value: it is replaced.
    Change,
    /// The provider has the same value: nothing to do.
    Unchanged,
    /// The provider's values cannot be read: the key is set regardless.
    Set,
    /// Declared, but there is nothing to push (no value here, or a reference only a later
    /// step can fill in).
    Skip,
}

/// What happened when the plan was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result", content = "message")]
pub enum SyncOutcome {
    /// The key was set.
    Applied,
    /// Setting the key failed (the message is redacted).
    Failed(String),
}

/// One key of one service in the plan. Never holds a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncItem {
    /// The variable.
    pub key: String,
    /// What sync does with it.
    pub action: SyncAction,
    /// Fingerprint of the declared value, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Fingerprint of the provider's current value, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_fingerprint: Option<String>,
    /// Why the key is skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What happened when applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<SyncOutcome>,
}

/// The plan for one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceSync {
    /// The service in the spec.
    pub service: String,
    /// The provider's id for it.
    pub id: String,
    /// The declared keys this service receives.
    pub items: Vec<SyncItem>,
    /// Keys the provider has that the spec does not declare: left alone, listed so that
    /// someone can decide about them.
    pub unmanaged: Vec<String>,
}

/// How to sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncOptions {
    /// Set the keys (without it, only the plan is made).
    pub apply: bool,
    /// Apply even when some values break the rules (they are pushed as they are).
    pub allow_violations: bool,
}

/// The result of `staging secrets sync`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// The project.
    pub project: String,
    /// The environment.
    pub environment: String,
    /// The provider.
    pub provider: String,
    /// Whether the plan was applied.
    pub applied: bool,
    /// Why applying was refused, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// Whether everything asked for was done (a plan alone is ok).
    pub ok: bool,
    /// The plan, per service.
    pub services: Vec<ServiceSync>,
}

impl SyncReport {
    /// How many keys would change (add, change, set).
    pub fn pending_changes(&self) -> usize {
        self.services
            .iter()
            .flat_map(|s| &s.items)
            .filter(|i| {
                matches!(
                    i.action,
                    SyncAction::Add | SyncAction::Change | SyncAction::Set
                ) && i.outcome.is_none()
            })
            .count()
    }

    /// 0 when ok, 1 when refused or a key failed.
    pub fn exit_code(&self) -> u8 {
        if self.ok { 0 } else { 1 }
    }
}

/// Plan, and with [`SyncOptions::apply`] carry out, pushing the declared values of
/// `environment` to `provider`'s env vars, service by service, one key at a time. Keys the
/// spec does not declare are never touched. Applying writes through targets of `boundary`
/// (the run's isolation check), all issued before the first write; without one, applying
/// is refused.
pub async fn sync(
    backends: &SecretBackends,
    spec: &LoadedSpec,
    environment: &str,
    provider: &DynProvider,
    options: SyncOptions,
    commit: Option<&str>,
    boundary: Option<&WriteBoundary>,
) -> Result<SyncReport> {
    let fingerprints = Fingerprinter::for_project(&spec.spec.project.name);
    let resolved = resolve_vars(backends, spec, environment, commit).await?;
    let caps = provider.capabilities();
    if options.apply && !caps.has(Capability::WriteEnv) {
        return Err(Error::not_supported(
            provider.name(),
            "setting environment variables",
        ));
    }
    let mut services = vec![];
    for service in spec.spec.services.keys() {
        let handle = provider.locate(environment, service).await?;
        let current = if caps.has(Capability::ReadEnv) {
            Some(provider.env_vars(&handle).await?)
        } else {
            None
        };
        let mut items = vec![];
        for (name, var) in &spec.spec.vars {
            if var
                .services
                .as_ref()
                .is_some_and(|s| !s.iter().any(|s| s == service))
            {
                continue;
            }
            let theirs = current.as_ref().and_then(|c| c.get(name));
            let current_fingerprint = theirs.map(|v| fingerprints.display(v));
            let (action, fingerprint, note) = match resolved.values.get(name) {
                None => (
                    SyncAction::Skip,
                    None,
                    Some("no value in this environment".to_owned()),
                ),
                Some(_) if resolved.deferred.contains_key(name) => (
                    SyncAction::Skip,
                    None,
                    Some(format!(
                        "refers to {} which only the pipeline knows",
                        resolved.deferred[name].join(", ")
                    )),
                ),
                Some(ours) => {
                    let action = match (&current, theirs) {
                        (None, _) => SyncAction::Set,
                        (Some(_), None) => SyncAction::Add,
                        (Some(_), Some(t)) if fingerprints.same(ours, t) => SyncAction::Unchanged,
                        (Some(_), Some(_)) => SyncAction::Change,
                    };
                    (action, Some(fingerprints.display(ours)), None)
                }
            };
            items.push(SyncItem {
                key: name.clone(),
                action,
                fingerprint,
                current_fingerprint,
                note,
                outcome: None,
            });
        }
        let unmanaged = current
            .as_ref()
            .map(|c| {
                c.keys()
                    .filter(|k| !spec.spec.vars.contains_key(*k))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        services.push((
            handle,
            ServiceSync {
                service: service.clone(),
                id: String::new(),
                items,
                unmanaged,
            },
        ));
    }

    let mut refused = None;
    if options.apply && !options.allow_violations {
        let report = check_resolved(backends, spec, &resolved, &fingerprints, commit).await?;
        let bad: Vec<&str> = report.failures().map(|r| r.name.as_str()).collect();
        if !bad.is_empty() {
            refused = Some(format!(
                "{} break the rules (run `staging secrets check --env {environment}`); nothing was pushed",
                bad.join(", ")
            ));
        }
    }
    let apply = options.apply && refused.is_none();
    let mut ok = refused.is_none();
    let mut out = vec![];
    let mut targets = vec![];
    for (handle, _) in &services {
        targets.push(if apply {
            let boundary = boundary.ok_or_else(|| {
                Error::config(format!(
                    "no isolation check ran for `{environment}`: nothing is pushed"
                ))
            })?;
            Some(boundary.target(handle.clone())?)
        } else {
            None
        });
    }
    for ((handle, mut plan), target) in services.into_iter().zip(targets) {
        plan.id = handle.id.clone();
        if let Some(target) = target {
            for item in &mut plan.items {
                if !matches!(
                    item.action,
                    SyncAction::Add | SyncAction::Change | SyncAction::Set
                ) {
                    continue;
                }
                let value = &resolved.values[&item.key];
                item.outcome = Some(
                    match provider.set_env_var(&target, &item.key, value).await {
                        Ok(()) => SyncOutcome::Applied,
                        Err(e) => {
                            ok = false;
                            SyncOutcome::Failed(crate::store::redact_error(&e))
                        }
                    },
                );
            }
        }
        out.push(plan);
    }
    Ok(SyncReport {
        project: spec.spec.project.name.clone(),
        environment: environment.to_owned(),
        provider: provider.name().to_owned(),
        applied: apply,
        refused,
        ok,
        services: out,
    })
}
