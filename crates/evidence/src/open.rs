//! Composition helpers for the CLI: the store a spec names, the pipeline step that records
//! into it, and the rules on which environment may be deployed how.

use std::sync::Arc;

use async_trait::async_trait;
use staging_core::pipeline::{Evidence, EvidenceRef, EvidenceStep, RunContext, Step, StepReport};
use staging_core::spec::LoadedSpec;
use staging_core::{Error, Result};

use crate::dir::DirStore;
use crate::postgres::PgStore;
use crate::store::DynEvidenceStore;

/// The key the evidence database URL is read under when its source is keyed by name (a
/// dotenv file holds `EVIDENCE_DATABASE_URL=...`).
pub const EVIDENCE_URL_KEY: &str = "EVIDENCE_DATABASE_URL";

/// The store the spec names: the Postgres table of `[project] evidence_postgres_url` when
/// set (its URL read from that secret source — `{ env = "NAME" }`, a dotenv file holding
/// [`EVIDENCE_URL_KEY`], a file, a command), else the directory `evidence_dir`.
pub async fn open_store(spec: &LoadedSpec) -> Result<DynEvidenceStore> {
    let project = &spec.spec.project;
    match &project.evidence_postgres_url {
        Some(source) => {
            let location = staging_secrets::locate(
                // The evidence URL is read from the spec's own stores only (env, dotenv,
                // file, command): never a provider's store or a branch.
                &staging_core::SecretBackends::none(),
                spec,
                "",
                source,
                EVIDENCE_URL_KEY,
                false,
            )?;
            let url = location.store.get(&location.key).await?.ok_or_else(|| {
                spec.error_at(
                    "project.evidence_postgres_url",
                    format!(
                        "the evidence store's database URL has no value ({}); set it, or remove \
                         `evidence_postgres_url` to keep evidence in `{}`",
                        location.description, project.evidence_dir
                    ),
                )
            })?;
            let store = PgStore::connect(&url, project.evidence_table.as_deref()).await?;
            Ok(Arc::new(store))
        }
        None => Ok(Arc::new(DirStore::new(
            spec.resolve_path(&project.evidence_dir),
        ))),
    }
}

/// The evidence step, recording into any [`crate::EvidenceStore`]. Named like
/// [`EvidenceStep`], so the pipeline runs it after a failed step too and a failed run is on
/// record.
#[derive(Debug, Clone)]
pub struct RecordEvidence {
    store: DynEvidenceStore,
    promoted_from: Option<EvidenceRef>,
    /// The id of the last record, shared by clones so the caller keeps a clone and reads
    /// it after the pipeline ran (for reports and CI outputs).
    recorded: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl RecordEvidence {
    /// A step recording into `store`.
    pub fn new(store: DynEvidenceStore) -> Self {
        RecordEvidence {
            store,
            promoted_from: None,
            recorded: Default::default(),
        }
    }

    /// Record the run as a promotion allowed by `source`, the record the gate accepted
    /// ([`crate::StoredEvidence::reference`]): the evidence names it in `promoted_from`.
    pub fn promoted_from(mut self, source: EvidenceRef) -> Self {
        self.promoted_from = Some(source);
        self
    }

    /// The store it records into.
    pub fn store(&self) -> &DynEvidenceStore {
        &self.store
    }

    /// The id of the record this step (or a clone of it) wrote last, if it ran.
    pub fn recorded_id(&self) -> Option<String> {
        self.recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl Step for RecordEvidence {
    fn name(&self) -> &'static str {
        EvidenceStep::NAME
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<StepReport> {
        let mut evidence = Evidence::from_context(ctx);
        if let Some(source) = &self.promoted_from {
            evidence = evidence.with_promoted_from(source.clone());
        }
        let id = self.store.record(&evidence).await?;
        *self.recorded.lock().unwrap_or_else(|e| e.into_inner()) = Some(id.clone());
        let allowed_by = self
            .promoted_from
            .as_ref()
            .map(|s| format!(", promoted on `{}` evidence {}", s.environment, s.id))
            .unwrap_or_default();
        Ok(StepReport::passed(
            EvidenceStep::NAME,
            format!("recorded {id} in {}{allowed_by}", self.store.describe()),
        ))
    }
}

/// Whether `staging up` may deploy `environment` directly: refused, with a message saying
/// how to get there, when it is protected and does not set `allow_direct_up = true`.
pub fn check_direct_up(spec: &LoadedSpec, environment: &str) -> Result<()> {
    let env = spec.spec.environment(environment)?;
    if !env.protected || env.allow_direct_up {
        return Ok(());
    }
    let how = match spec.spec.promoted_from(environment) {
        Some(source) => format!(
            "run `staging up --env {source}` and then `staging promote --from {source} --to {environment}`"
        ),
        None => format!(
            "no environment promotes to it: set `promotes_to = \"{environment}\"` on the environment that should go first"
        ),
    };
    Err(Error::failed(format!(
        "environment `{environment}` is protected and is changed only by promotion: {how} \
         (or set `allow_direct_up = true` on [environments.{environment}])"
    )))
}

/// The pair of a promotion: `from` defaults to the environment that promotes to `to`, and
/// must promote to it.
pub fn promotion_pair(spec: &LoadedSpec, from: Option<&str>, to: &str) -> Result<(String, String)> {
    spec.spec.environment(to)?;
    let from = match from {
        Some(f) => f.to_owned(),
        None => spec.spec.promoted_from(to).map(str::to_owned).ok_or_else(|| {
            Error::config(format!(
                "no environment promotes to `{to}`: set `promotes_to = \"{to}\"` on the one that should go first, or pass --from"
            ))
        })?,
    };
    let source = spec.spec.environment(&from)?;
    if source.promotes_to.as_deref() != Some(to) {
        return Err(spec.error_at(
            &format!("environments.{from}"),
            format!(
                "`{from}` does not promote to `{to}` (it promotes to {}); set `promotes_to = \"{to}\"` on it",
                source
                    .promotes_to
                    .as_deref()
                    .map(|t| format!("`{t}`"))
                    .unwrap_or_else(|| "nothing".to_owned())
            ),
        ));
    }
    Ok((from, to.to_owned()))
}

/// The directory store of the spec, whatever `evidence_postgres_url` says: where
/// `staging-core`'s own [`EvidenceStep`] writes.
pub fn dir_store(spec: &LoadedSpec) -> DirStore {
    DirStore::new(spec.resolve_path(&spec.spec.project.evidence_dir))
}
