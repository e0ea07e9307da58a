//! What a service's variables were before a run changed them, and putting them back.
//!
//! A failed promote must leave production's variables as they were. The deploy step takes
//! an [`EnvSnapshot`] of every variable it is about to change ([`crate::EnvVars::snapshot_env`])
//! before it writes anything; after a failure the automatic rollback hands it back to the
//! provider ([`crate::EnvVars::restore_env`]), which sets the old values again and deletes
//! the variables the run added. What "as they were" means depends on what the platform
//! returns: a value it never shows (a Netlify secret, a Vercel `sensitive` value) cannot be
//! set back, and the restore says so rather than guess; a variable that the platform cannot
//! tell apart from such a secret is never deleted.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use crate::boundary::WriteTarget;
use crate::error::{Error, Result};
use crate::provider::{EnvVars, ServiceHandle};

/// One variable before the run.
#[derive(Clone)]
pub enum VarBefore {
    /// It had this value.
    Value(SecretString),
    /// It did not exist (the platform lists every variable, so its absence is known).
    Absent,
    /// Its value cannot be read (a secret the platform never returns), or the platform cannot
    /// say whether it existed.
    Unreadable,
}

impl fmt::Debug for VarBefore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VarBefore::Value(_) => "Value(**redacted**)",
            VarBefore::Absent => "Absent",
            VarBefore::Unreadable => "Unreadable",
        })
    }
}

/// The variables of one service that a run is about to change, as they were.
#[derive(Clone)]
pub struct EnvSnapshot {
    /// The service.
    pub service: ServiceHandle,
    /// Each variable the run changes, before.
    pub vars: BTreeMap<String, VarBefore>,
    /// What the provider kept of its own (Vercel: the raw env records), for an exact restore.
    pub platform: Option<Arc<dyn Any + Send + Sync>>,
}

impl fmt::Debug for EnvSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvSnapshot")
            .field("service", &self.service)
            .field("vars", &self.vars)
            .field("platform", &self.platform.is_some())
            .finish()
    }
}

impl EnvSnapshot {
    /// From what `env_vars` returned (`current`) for the `keys` about to change. `complete`:
    /// the platform returns every variable with its value, so a key it did not return did
    /// not exist; otherwise such a key is [`VarBefore::Unreadable`].
    pub fn from_read(
        service: &ServiceHandle,
        current: &BTreeMap<String, SecretString>,
        keys: &[String],
        complete: bool,
    ) -> Self {
        let vars = keys
            .iter()
            .map(|k| {
                let before = match current.get(k) {
                    Some(v) => VarBefore::Value(v.clone()),
                    None if complete => VarBefore::Absent,
                    None => VarBefore::Unreadable,
                };
                (k.clone(), before)
            })
            .collect();
        EnvSnapshot {
            service: service.clone(),
            vars,
            platform: None,
        }
    }

    /// The provider's own part, if it is a `T`.
    pub fn platform<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.platform.as_deref().and_then(|p| p.downcast_ref::<T>())
    }
}

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvRestore {
    /// Variables set back to their old value.
    pub restored: Vec<String>,
    /// Variables the run had added, deleted.
    pub deleted: Vec<String>,
    /// Variables already as they were (nothing sent).
    pub unchanged: Vec<String>,
    /// Variables that could not be put back, and why.
    pub not_restored: Vec<(String, String)>,
}

impl EnvRestore {
    /// Whether every variable is as it was.
    pub fn complete(&self) -> bool {
        self.not_restored.is_empty()
    }

    /// One line for a report (names only, never values).
    pub fn describe(&self) -> String {
        let mut parts = vec![];
        let list = |v: &[String]| v.join(", ");
        if !self.restored.is_empty() {
            parts.push(format!("set back: {}", list(&self.restored)));
        }
        if !self.deleted.is_empty() {
            parts.push(format!(
                "added by the run, deleted: {}",
                list(&self.deleted)
            ));
        }
        if !self.unchanged.is_empty() {
            parts.push(format!("already as before: {}", list(&self.unchanged)));
        }
        for (k, why) in &self.not_restored {
            parts.push(format!("NOT restored: {k} ({why})"));
        }
        if parts.is_empty() {
            "no variable was changed".to_owned()
        } else {
            parts.join("; ")
        }
    }
}

/// The restore every provider gets unless it has an exact one of its own: reads the values
/// now, sets back those that differ (one [`EnvVars::set_env_vars`] call), deletes the
/// variables that were absent, and reports the unreadable ones as not restored. Writes go
/// through `target`, which must be the snapshot's service.
pub async fn restore_by_values<P: EnvVars + ?Sized>(
    provider: &P,
    target: &WriteTarget,
    snapshot: &EnvSnapshot,
) -> Result<EnvRestore> {
    check_target(target, snapshot)?;
    let service = target;
    let now = EnvVars::env_vars(provider, service).await?;
    let mut out = EnvRestore::default();
    let mut set = BTreeMap::new();
    let mut delete = vec![];
    for (key, before) in &snapshot.vars {
        match before {
            VarBefore::Value(old) => {
                if now.get(key).map(|v| v.expose_secret()) == Some(old.expose_secret()) {
                    out.unchanged.push(key.clone());
                } else {
                    set.insert(key.clone(), old.clone());
                }
            }
            VarBefore::Absent => delete.push(key.clone()),
            VarBefore::Unreadable => out.not_restored.push((
                key.clone(),
                format!(
                    "{} does not return its value before the run, so it keeps the value this run set",
                    provider.name()
                ),
            )),
        }
    }
    if !set.is_empty() {
        EnvVars::set_env_vars(provider, service, &set).await?;
        out.restored.extend(set.into_keys());
    }
    for key in delete {
        match EnvVars::delete_env_var(provider, service, &key).await {
            Ok(()) | Err(Error::NotFound { .. }) => out.deleted.push(key),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Refuses a restore through a target that is not the snapshot's service (another id or
/// environment): the values would land on the wrong service.
pub fn check_target(target: &WriteTarget, snapshot: &EnvSnapshot) -> Result<()> {
    let (t, s) = (target.handle(), &snapshot.service);
    if t.id != s.id || t.environment != s.environment || t.name != s.name {
        return Err(Error::config(format!(
            "the variables of service `{}` of `{}` cannot be restored through the target of `{}` of `{}`",
            s.name, s.environment, t.name, t.environment
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_not_read_is_absent_only_where_the_platform_lists_every_variable() {
        let svc = ServiceHandle {
            name: "web".into(),
            environment: "production".into(),
            id: "srv-1".into(),
            identity: Default::default(),
        };
        let current = BTreeMap::from([("A".to_owned(), SecretString::from("canary-old"))]);
        let keys = ["A".to_owned(), "B".to_owned()];
        let s = EnvSnapshot::from_read(&svc, &current, &keys, true);
        assert!(matches!(s.vars["A"], VarBefore::Value(_)));
        assert!(matches!(s.vars["B"], VarBefore::Absent));
        let s = EnvSnapshot::from_read(&svc, &current, &keys, false);
        assert!(matches!(s.vars["B"], VarBefore::Unreadable));
        assert!(!format!("{s:?}").contains("canary"));
    }
}
