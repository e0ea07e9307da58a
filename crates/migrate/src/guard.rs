//! Staging before production: a protected environment is migrated only with what the
//! environment promoted to it already has.
//!
//! The check reads the source environment's database, so it needs that environment's URL;
//! [`UrlLookup`] supplies it (from the secret store in the CLI, from a map in tests).

use std::collections::BTreeMap;
use std::fmt::Debug;

use async_trait::async_trait;
use secrecy::SecretString;
use staging_core::{Error, MigrationPlan, MigrationState, MigrationStatus, Result};

/// Reads a variable's value in another environment (the source environment's database URL).
#[async_trait]
pub trait UrlLookup: Debug + Send + Sync {
    /// The value of `var` in `environment`.
    async fn lookup(&self, environment: &str, var: &str) -> Result<SecretString>;

    /// The values of `environment` that can be read here (at least its databases' URL
    /// variables): what every database write is compared against
    /// ([`staging_core::database_target::issue_database_targets`]). An error when none can
    /// be read; that environment is then not compared, and the reports say so.
    async fn values(&self, environment: &str) -> Result<BTreeMap<String, SecretString>>;
}

/// A [`UrlLookup`] over values already known, by environment and variable.
#[derive(Debug, Default, Clone)]
pub struct StaticUrls {
    values: BTreeMap<(String, String), SecretString>,
}

impl StaticUrls {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add the value of `var` in `environment`.
    pub fn with(mut self, environment: &str, var: &str, value: SecretString) -> Self {
        self.values
            .insert((environment.to_owned(), var.to_owned()), value);
        self
    }
}

#[async_trait]
impl UrlLookup for StaticUrls {
    async fn lookup(&self, environment: &str, var: &str) -> Result<SecretString> {
        self.values.get(&(environment.to_owned(), var.to_owned())).cloned().ok_or_else(|| {
            Error::not_found(format!("the value of `{var}` in environment `{environment}` (needed to check it was migrated first)"))
        })
    }

    async fn values(&self, environment: &str) -> Result<BTreeMap<String, SecretString>> {
        let values: BTreeMap<String, SecretString> = self
            .values
            .iter()
            .filter(|((e, _), _)| e == environment)
            .map(|((_, var), v)| (var.clone(), v.clone()))
            .collect();
        if values.is_empty() {
            return Err(Error::not_found(format!(
                "values of environment `{environment}`"
            )));
        }
        Ok(values)
    }
}

#[async_trait]
impl staging_core::isolation::EnvValues for StaticUrls {
    async fn values(&self, environment: &str) -> Result<BTreeMap<String, SecretString>> {
        UrlLookup::values(self, environment).await
    }
}

/// The versions a protected environment would apply that its source environment has not
/// applied (unchanged): `to_apply` of the target against the source's status.
pub fn missing_on_source(target_plan: &MigrationPlan, source: &MigrationStatus) -> Vec<String> {
    target_plan
        .to_apply
        .iter()
        .filter(|e| {
            !source
                .entries
                .iter()
                .any(|s| s.version == e.version && s.state == MigrationState::Applied)
        })
        .map(|e| {
            if e.name.is_empty() {
                e.version.clone()
            } else {
                format!("{}_{}", e.version, e.name)
            }
        })
        .collect()
}

/// The versions of `target` that `source` lacks: what a command runner's checkout lists but
/// the source environment's table does not have (refused before the command runs), or what
/// the command added to the target that the source does not have (refused after).
pub fn ahead_of_source(target: &[String], source: &[String]) -> Vec<String> {
    target
        .iter()
        .filter(|v| !source.contains(v))
        .cloned()
        .collect()
}

/// The refusal, listing the versions missing on the source environment.
pub fn refusal(environment: &str, source: &str, database: &str, missing: &[String]) -> Error {
    Error::failed(format!(
        "refusing to migrate protected environment `{environment}` (database `{database}`): {} migration(s) are not \
         applied on `{source}`, which promotes to it. Missing on {source}: {}. Apply them to {source} first \
         (`staging migrate apply --env {source}`)",
        missing.len(),
        missing.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use staging_core::MigrationEntry;

    fn entry(v: &str, state: MigrationState) -> MigrationEntry {
        MigrationEntry {
            version: v.to_owned(),
            name: format!("m{v}"),
            state,
        }
    }

    #[test]
    fn pending_on_production_must_be_applied_unchanged_on_staging() {
        let plan = MigrationPlan {
            to_apply: vec![
                entry("1", MigrationState::Pending),
                entry("2", MigrationState::Pending),
                entry("3", MigrationState::Pending),
            ],
        };
        let staging = MigrationStatus {
            entries: vec![
                entry("1", MigrationState::Applied),
                entry("2", MigrationState::Modified),
                entry("3", MigrationState::Pending),
            ],
        };
        assert_eq!(missing_on_source(&plan, &staging), vec!["2_m2", "3_m3"]);
    }
}
