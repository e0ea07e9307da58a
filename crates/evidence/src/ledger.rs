//! The ledgers of ephemeral instances ([`staging_core::teardown`]), kept in the evidence
//! store: each save is a record of its own (filed under [`LEDGER_COMMIT`], its environment
//! the instance's key `preview.pr-42`), so every runner that shares the evidence shares the
//! ledgers, the history of an instance stays on record, and a ledger edited by hand fails
//! its content hash — which makes `down` refuse it rather than trust it.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use staging_core::pipeline::Evidence;
use staging_core::spec::LoadedSpec;
use staging_core::teardown::{InstanceRecord, LedgerStore};
use staging_core::{Error, Result};

use crate::store::{DynEvidenceStore, EvidenceFilter};

/// The commit a ledger record is filed under: the ledger is the instance's, not a commit's.
pub const LEDGER_COMMIT: &str = "instance-ledger";

/// The name of the one step a ledger record holds.
const STEP: &str = "ledger";

/// A [`LedgerStore`] over an evidence store.
#[derive(Debug, Clone)]
pub struct EvidenceLedger {
    store: DynEvidenceStore,
    spec: Arc<LoadedSpec>,
}

impl EvidenceLedger {
    /// The ledgers of `spec`'s project in `store`.
    pub fn new(store: DynEvidenceStore, spec: Arc<LoadedSpec>) -> Self {
        EvidenceLedger { store, spec }
    }

    fn key(environment: &str, instance: &str) -> String {
        format!("{environment}.{instance}")
    }

    /// Every readable revision of every ledger (of `key`, when given), refusing when any
    /// record of a ledger cannot be read or was changed after it was written.
    async fn revisions(&self, key: Option<&str>) -> Result<Vec<InstanceRecord>> {
        let mut filter = EvidenceFilter::new().project(&self.spec.spec.project.name);
        if let Some(k) = key {
            filter = filter.environment(k);
        }
        let listing = self.store.list(&filter).await?;
        if let Some(u) = listing.unreadable.first() {
            return Err(Error::config(format!(
                "the evidence store holds a record it cannot read ({}: {}); an instance ledger may be among them, so none is trusted until it is repaired or removed",
                u.id, u.reason
            )));
        }
        let mut out = vec![];
        for entry in listing
            .entries
            .iter()
            .filter(|e| e.evidence.commit == LEDGER_COMMIT)
        {
            let record = entry
                .evidence
                .steps
                .iter()
                .find(|s| s.get("step").and_then(|v| v.as_str()) == Some(STEP))
                .and_then(|s| s.get("ledger"))
                .cloned()
                .and_then(|v| serde_json::from_value::<InstanceRecord>(v).ok());
            let Some(record) = record else {
                return Err(Error::config(format!(
                    "ledger record {} of `{}` holds no readable ledger: no instance ledger is trusted until it is repaired or removed",
                    entry.id, entry.evidence.environment
                )));
            };
            if !entry.intact {
                return Err(Error::config(format!(
                    "ledger record {} of instance `{}` was changed after it was written (its content hash does not match): refused, nothing deleted",
                    entry.id, entry.evidence.environment
                )));
            }
            if Self::key(&record.environment, &record.instance) != entry.evidence.environment {
                return Err(Error::config(format!(
                    "ledger record {} is filed under `{}` but names instance `{}` of `{}`: refused",
                    entry.id, entry.evidence.environment, record.instance, record.environment
                )));
            }
            out.push(record);
        }
        Ok(out)
    }
}

/// The newest revision of each instance among `records`.
fn newest(records: Vec<InstanceRecord>) -> Vec<InstanceRecord> {
    let mut by_key: std::collections::BTreeMap<(String, String), InstanceRecord> =
        Default::default();
    for r in records {
        let key = (r.environment.clone(), r.instance.clone());
        match by_key.get(&key) {
            Some(have) if have.revision >= r.revision => {}
            _ => {
                by_key.insert(key, r);
            }
        }
    }
    by_key.into_values().collect()
}

#[async_trait]
impl LedgerStore for EvidenceLedger {
    async fn load(&self, environment: &str, instance: &str) -> Result<Option<InstanceRecord>> {
        let key = Self::key(environment, instance);
        Ok(newest(self.revisions(Some(&key)).await?).into_iter().next())
    }

    async fn save(&self, record: &InstanceRecord) -> Result<()> {
        let mut evidence = Evidence {
            project: self.spec.spec.project.name.clone(),
            environment: Self::key(&record.environment, &record.instance),
            commit: LEDGER_COMMIT.to_owned(),
            spec_hash: self.spec.hash.clone(),
            effective_spec_hash: Some(self.spec.effective_hash.clone()),
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            recorded_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            ok: true,
            steps: vec![serde_json::json!({
                "step": STEP,
                "status": "passed",
                "summary": format!(
                    "instance `{}` of `{}`: {} resource(s) on record, {} not deleted",
                    record.instance,
                    record.environment,
                    record.created.len(),
                    record.remaining().count()
                ),
                "ledger": record,
            })],
            promoted_from: None,
            deploys: Default::default(),
            content_hash: String::new(),
        };
        evidence.content_hash = evidence.compute_hash();
        self.store.record(&evidence).await.map(|_| ())
    }

    async fn list(&self, environment: Option<&str>) -> Result<Vec<InstanceRecord>> {
        let all = newest(self.revisions(None).await?);
        Ok(all
            .into_iter()
            .filter(|r| environment.is_none_or(|e| r.environment == e))
            .collect())
    }
}
