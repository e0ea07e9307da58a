//! Putting a target's env records back exactly as they were after a failed promote.
//!
//! Setting a variable of one target may split a record shared with other targets (the
//! shared record loses this target, a new record is made for it), so setting the old value
//! back would leave two records where there was one. The snapshot keeps the records
//! themselves (id, targets, branch, custom environments, type and — when Vercel returns it —
//! the value); the restore deletes the records the run created and writes each original
//! record's fields back onto it, so the project's records are the ones that were there
//! before, with the same ids. A `sensitive` value is never returned, so one the run changed
//! cannot be set back: the restore says so.

use std::collections::{BTreeMap, BTreeSet};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use staging_core::{EnvRestore, EnvSnapshot, Result, ServiceHandle, VarBefore};

use crate::provider::{EnvRecord, VercelProvider, project_of};

/// One record as it was.
#[derive(Clone)]
struct RecordBefore {
    id: String,
    key: String,
    kind: String,
    value: Option<SecretString>,
    target: Vec<String>,
    git_branch: Option<String>,
    custom_environment_ids: Vec<String>,
}

/// The records of the keys a run changes that apply to the provider's target, as they were.
pub(crate) struct RecordsBefore {
    project: String,
    records: Vec<RecordBefore>,
}

impl std::fmt::Debug for RecordsBefore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecordsBefore({} records)", self.records.len())
    }
}

fn readable(r: &EnvRecord) -> Option<SecretString> {
    (r.kind != "sensitive")
        .then(|| r.value.clone().map(SecretString::from))
        .flatten()
}

pub(crate) async fn snapshot(
    p: &VercelProvider,
    service: &ServiceHandle,
    current: &BTreeMap<String, SecretString>,
    keys: &[String],
) -> Result<EnvSnapshot> {
    let project = project_of(service).to_owned();
    let scope = p.scope(&project).await?;
    let wanted: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
    let records: Vec<RecordBefore> = p
        .env_records(&project, true)
        .await?
        .into_iter()
        .filter(|r| wanted.contains(r.key.as_str()) && scope.covers(r))
        .filter_map(|r| {
            Some(RecordBefore {
                id: r.id.clone()?,
                value: readable(&r),
                key: r.key,
                kind: r.kind,
                target: r.target,
                git_branch: r.git_branch,
                custom_environment_ids: r.custom_environment_ids,
            })
        })
        .collect();
    let mut snap = EnvSnapshot::from_read(service, current, keys, true);
    for (key, before) in snap.vars.iter_mut() {
        if matches!(before, VarBefore::Absent) && records.iter().any(|r| &r.key == key) {
            // A record Vercel does not return the value of (`sensitive`).
            *before = VarBefore::Unreadable;
        }
    }
    snap.platform = Some(std::sync::Arc::new(RecordsBefore { project, records }));
    Ok(snap)
}

pub(crate) async fn restore(
    p: &VercelProvider,
    target: &staging_core::WriteTarget,
    snapshot: &EnvSnapshot,
) -> Result<EnvRestore> {
    staging_core::env_snapshot::check_target(target, snapshot)?;
    let Some(before) = snapshot.platform::<RecordsBefore>() else {
        return staging_core::env_snapshot::restore_by_values(p, target, snapshot).await;
    };
    let project = &before.project;
    let scope = p.scope(project).await?;
    let keys: BTreeSet<&str> = snapshot.vars.keys().map(String::as_str).collect();
    let now = p.env_records(project, true).await?;
    let mut out = EnvRestore::default();
    let mut touched: BTreeSet<String> = BTreeSet::new();
    // The records the run created go first, so an original can take its target back.
    for r in now.iter().filter(|r| {
        keys.contains(r.key.as_str())
            && scope.covers(r)
            && r.id
                .as_ref()
                .is_some_and(|id| !before.records.iter().any(|b| &b.id == id))
    }) {
        if let Some(id) = &r.id {
            p.remove_env(project, id).await?;
            touched.insert(r.key.clone());
            if !before.records.iter().any(|b| b.key == r.key) {
                out.deleted.push(r.key.clone());
            }
        }
    }
    for b in &before.records {
        let Some(n) = now.iter().find(|n| n.id.as_deref() == Some(b.id.as_str())) else {
            out.not_restored.push((
                b.key.clone(),
                format!("its record {} was removed during the run", b.id),
            ));
            continue;
        };
        let mut body = serde_json::Map::new();
        if n.target != b.target {
            body.insert("target".into(), json!(b.target));
        }
        if n.custom_environment_ids != b.custom_environment_ids {
            body.insert(
                "customEnvironmentIds".into(),
                json!(b.custom_environment_ids),
            );
        }
        if n.git_branch != b.git_branch {
            body.insert("gitBranch".into(), json!(b.git_branch));
        }
        let value_now = readable(n);
        let value_changed = match (&b.value, &value_now) {
            (Some(old), Some(new)) => old.expose_secret() != new.expose_secret(),
            (None, None) => n.kind == "sensitive" && keys.contains(b.key.as_str()),
            _ => true,
        };
        if value_changed || n.kind != b.kind {
            match &b.value {
                Some(old) => {
                    body.insert("value".into(), json!(old.expose_secret()));
                    body.insert("type".into(), json!(b.kind));
                }
                None if b.kind == "sensitive" && !body.is_empty() => {
                    // A shared sensitive record the run split: its value was never
                    // changed, only its targets, which go back below.
                }
                None => {
                    out.not_restored.push((
                        b.key.clone(),
                        "Vercel does not return a `sensitive` value, so it keeps the value this run set".to_owned(),
                    ));
                }
            }
        }
        if body.is_empty() {
            if !touched.contains(&b.key) && !out.not_restored.iter().any(|(k, _)| k == &b.key) {
                out.unchanged.push(b.key.clone());
            }
            continue;
        }
        p.edit_env(project, &b.id, &Value::Object(body)).await?;
        touched.insert(b.key.clone());
    }
    for key in touched {
        if !out.deleted.contains(&key) && !out.not_restored.iter().any(|(k, _)| *k == key) {
            out.restored.push(key);
        }
    }
    Ok(out)
}
