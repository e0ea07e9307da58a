//! Instances of ephemeral environments (`[environments.preview] ephemeral = true`): the
//! ledger a run of `up --instance pr-42` records into, and `down`, `list` and `gc`.
//!
//! `down` deletes exactly what the instance's ledger recorded, in reverse order of creation,
//! and nothing else: every entry is first found on its platform and judged by the run's
//! write boundary ([`staging_core::WriteBoundary::deletion`], the one decision); a single
//! refusal — a resource another environment owns, one made again by hand under a recorded
//! name, a ledger edited after it was written — refuses the whole teardown before the first
//! delete request, naming every reason. No ledger: nothing is deleted. A teardown stopped
//! halfway has marked what it deleted, so the next `down` deletes the rest.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use staging_core::isolation::Writes;
use staging_core::teardown::{
    self, Created, CreatedBy, DynLedgerStore, DynTeardown, InstanceRecord, Ledger,
};
use staging_core::{Error, Result};
use staging_evidence::lease::LeaseOptions;
use staging_evidence::{DynEvidenceStore, EvidenceLedger};

use crate::Staging;

/// One instance of an ephemeral environment, as its ledger says (`staging list`).
#[derive(Debug, Clone, Serialize)]
pub struct Instance {
    /// The ephemeral environment (`preview`).
    pub environment: String,
    /// The instance (`pr-42`).
    pub instance: String,
    /// When its first `up` started (seconds since the epoch).
    pub created_at: u64,
    /// When its last `up` started.
    pub updated_at: u64,
    /// How long ago its first `up` started, in seconds.
    pub age_secs: u64,
    /// The commit of its last `up`.
    pub commit: String,
    /// When it expires (its environment's `ttl` after the last `up`), if it has a ttl.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Whether it has expired (what `staging gc` tears down).
    pub expired: bool,
    /// What it created that is not deleted yet: what costs money while it lives.
    pub resources: Vec<Created>,
    /// When `down` removed everything, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub down_at: Option<u64>,
}

impl Instance {
    fn of(record: InstanceRecord, now: u64) -> Self {
        Instance {
            expired: record.expired(now),
            age_secs: now.saturating_sub(record.created_at),
            resources: record.remaining().cloned().collect(),
            environment: record.environment,
            instance: record.instance,
            created_at: record.created_at,
            updated_at: record.updated_at,
            commit: record.commit,
            expires_at: record.expires_at,
            down_at: record.down_at,
        }
    }
}

/// How `down` runs.
#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    /// Say what would be deleted, and delete nothing.
    pub dry_run: bool,
    /// How long to wait for the instance's lease (held by a run of it), default none.
    pub wait_lock: Duration,
}

/// What `down` did (or would do) with one recorded resource.
#[derive(Debug, Clone, Serialize)]
pub struct Teardown {
    /// The ledger's entry.
    pub resource: Created,
    /// `deleted`, `gone` (the platform holds nothing under it any more), `would delete`
    /// (`--dry-run`), `already deleted` (by an earlier `down`).
    pub action: String,
    /// The platform id it was found under, when found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// What `staging down` did.
#[derive(Debug, Clone, Serialize)]
pub struct DownReport {
    /// The ephemeral environment.
    pub environment: String,
    /// The instance.
    pub instance: String,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Each recorded resource, in the order handled (reverse order of creation).
    pub resources: Vec<Teardown>,
}

impl DownReport {
    /// How many delete requests were sent.
    pub fn deleted(&self) -> usize {
        self.resources
            .iter()
            .filter(|t| t.action == "deleted")
            .count()
    }
}

/// One entry judged deletable, with what deletes it.
struct Planned {
    index: usize,
    target: Option<teardown::DeletionTarget>,
    by: Option<DynTeardown>,
}

impl Staging {
    /// The ledger store of this session's evidence store.
    fn ledgers(&self, store: &DynEvidenceStore) -> DynLedgerStore {
        Arc::new(EvidenceLedger::new(store.clone(), self.spec.clone()))
    }

    /// The ledger a run of `environment` at `commit` records its creations into: opened
    /// (and stored) for an instance of an ephemeral environment, `None` otherwise.
    pub(crate) async fn open_ledger(
        &self,
        store: &DynEvidenceStore,
        environment: &str,
        commit: &str,
    ) -> Result<Option<Ledger>> {
        let (Some(instance), true) = (&self.spec.instance, self.spec.is_ephemeral(environment))
        else {
            return Ok(None);
        };
        let ttl = self.spec.spec.environment(environment)?.ttl;
        Ledger::open(self.ledgers(store), environment, instance, commit, ttl)
            .await
            .map(Some)
            .map_err(|e| {
                Error::io(
                    format!(
                        "the ledger of instance `{instance}` could not be written, so nothing was started"
                    ),
                    std::io::Error::other(e.to_string()),
                )
            })
    }

    /// A session of the same spec for `instance` (loaded again with `${instance}` filled
    /// in), with the same providers and progress display.
    pub fn for_instance(&self, instance: &str) -> Result<Staging> {
        Staging::builder()
            .providers(self.base.clone())
            .spec_file(self.spec.path.clone())
            .instance(Some(instance))
            .progress(self.progress.clone())
            .build()
    }

    /// The instances on record (of `environment` when given): those not torn down, or every
    /// one with `all`.
    pub async fn instances(&self, environment: Option<&str>, all: bool) -> Result<Vec<Instance>> {
        if let Some(env) = environment
            && !self.spec.is_ephemeral(env)
        {
            self.spec.spec.environment(env)?;
            return Err(Error::config(format!(
                "environment `{env}` is not ephemeral, so it has no instances"
            )));
        }
        let store = staging_evidence::open_store(&self.spec).await?;
        let now = teardown::now_secs();
        let mut out: Vec<Instance> = self
            .ledgers(&store)
            .list(environment)
            .await?
            .into_iter()
            .filter(|r| all || r.down_at.is_none())
            .map(|r| Instance::of(r, now))
            .collect();
        out.sort_by(|a, b| {
            (a.environment.as_str(), a.created_at).cmp(&(b.environment.as_str(), b.created_at))
        });
        Ok(out)
    }

    /// `staging down`: delete what this session's instance of `environment` created (see
    /// the module documentation), under the instance's lease.
    pub async fn down(&self, environment: &str, options: DownOptions) -> Result<DownReport> {
        let store = staging_evidence::open_store(&self.spec).await?;
        if options.dry_run {
            return self.down_held(&store, environment, true).await;
        }
        let options = LeaseOptions {
            ttl: Duration::from_secs(60),
            wait: options.wait_lock,
            poll: Duration::from_secs(1),
        };
        let lease = self
            .lease(&store, environment, "down", None, options, |_| {})
            .await?;
        let report = self.down_held(&store, environment, false).await;
        if let Err(e) = lease.release().await {
            tracing::warn!(
                "the lease of `{environment}` was not released ({e}); it expires by itself"
            );
        }
        report
    }

    /// [`Staging::down`] for a caller that holds the instance's lease itself (the CLI,
    /// which also listens for signals), or a dry run (`dry_run`: nothing is deleted).
    pub async fn down_held(
        &self,
        store: &DynEvidenceStore,
        environment: &str,
        dry_run: bool,
    ) -> Result<DownReport> {
        let spec = self.spec.clone();
        spec.check_instance_for(environment)?;
        let instance = spec.instance.clone().unwrap_or_default();
        let ledgers = self.ledgers(store);
        let Some(mut record) = ledgers.load(environment, &instance).await? else {
            return Err(Error::config(format!(
                "instance `{instance}` of `{environment}` has no ledger in {}: nothing is deleted (only what `staging up --instance {instance}` recorded as created is ever deleted; was it stood up with another evidence store?)",
                store.describe()
            )));
        };
        let mut report = DownReport {
            environment: environment.to_owned(),
            instance: instance.clone(),
            dry_run,
            resources: vec![],
        };
        // Every other environment's resources, read through the run's credentials (failing
        // closed when they cannot be read): what the boundary refuses to delete.
        let provider = self.provider(environment)?;
        let boundary = self
            .check_isolation(environment, Writes::Run, Some(&provider))
            .await?;
        let factory = self.registry.factory_for(&spec, environment)?;
        let by_provider = factory.teardown(&spec, environment)?;
        // Judge every entry before the first delete request.
        let mut planned: Vec<Planned> = vec![];
        let mut refused: Vec<String> = vec![];
        for (index, created) in record.created.iter().enumerate().rev() {
            if created.deleted_at.is_some() {
                report.resources.push(Teardown {
                    resource: created.clone(),
                    action: "already deleted".into(),
                    id: created.id.clone(),
                });
                continue;
            }
            let by = match &created.by {
                CreatedBy::Provider => by_provider.clone(),
                CreatedBy::Database(db) => self.branch_teardown(db)?,
            };
            let Some(by) = by else {
                refused.push(format!(
                    "{}: {} deletes nothing, so it must be deleted by hand",
                    created.describe(),
                    match &created.by {
                        CreatedBy::Provider => format!("provider `{}`", factory.name()),
                        CreatedBy::Database(db) => format!("the branch of database `{db}`"),
                    }
                ));
                continue;
            };
            let unreadable = |e: Error| {
                Error::io(
                    format!(
                        "{} could not be read, so nothing was deleted",
                        created.describe()
                    ),
                    std::io::Error::other(e.to_string()),
                )
            };
            let mut found = by.find(created).await.map_err(unreadable)?;
            // Gone by its recorded id, but a named resource (unique in its namespace — a
            // service, a site — or a database branch): what holds that name now is looked
            // at too, so one made again by hand under the recorded name is refused with the
            // reason (the id differs) rather than passed over in silence.
            let named = created.namespace.is_some() || matches!(created.by, CreatedBy::Database(_));
            if found.is_none() && created.id.is_some() && named {
                let by_name = Created {
                    id: None,
                    ..created.clone()
                };
                found = by.find(&by_name).await.map_err(unreadable)?;
            }
            match boundary.deletion(created, found) {
                Ok(target) => planned.push(Planned {
                    index,
                    target,
                    by: Some(by),
                }),
                Err(e) => refused.push(e.to_string()),
            }
        }
        if !refused.is_empty() {
            return Err(Error::config(format!(
                "`down` of instance `{instance}` of `{environment}` refused, nothing deleted:\n  {}",
                refused.join("\n  ")
            )));
        }
        for p in planned {
            let created = record.created[p.index].clone();
            let id = p.target.as_ref().map(|t| t.id().to_owned());
            let action = match (&p.target, &p.by, dry_run) {
                (None, _, _) => "gone",
                (Some(_), _, true) => "would delete",
                (Some(target), Some(by), false) => {
                    if let Err(e) = by.delete(target).await {
                        let done = report.deleted();
                        teardown::save(&*ledgers, &mut record).await.ok();
                        return Err(Error::io(
                            format!(
                                "deleting {} failed after {done} deletion(s); `staging down` again deletes what is left",
                                created.describe()
                            ),
                            std::io::Error::other(e.to_string()),
                        ));
                    }
                    "deleted"
                }
                (Some(_), None, false) => unreachable!("a planned deletion has its teardown"),
            };
            if !dry_run {
                record.created[p.index].deleted_at = Some(teardown::now_secs());
                teardown::save(&*ledgers, &mut record).await?;
            }
            report.resources.push(Teardown {
                resource: created,
                action: action.into(),
                id,
            });
        }
        if !dry_run {
            record.down_at = Some(teardown::now_secs());
            teardown::save(&*ledgers, &mut record).await?;
        }
        Ok(report)
    }

    /// What finds and deletes the branch of database `db`, if its provider deletes any.
    fn branch_teardown(&self, db: &str) -> Result<Option<DynTeardown>> {
        let Some(branch) = self
            .spec
            .spec
            .databases
            .get(db)
            .and_then(|d| d.branch.as_ref())
        else {
            return Err(Error::config(format!(
                "the ledger names the branch of database `{db}`, which the spec no longer declares as a branch: it is not deleted (delete it by hand, or put the database back)"
            )));
        };
        let branch = crate::providers::database_branch(branch)?;
        Ok(branch
            .teardown()
            .is_some()
            .then(|| Arc::new(BranchTeardown(branch)) as DynTeardown))
    }

    /// `staging gc`: the instances (of `environment`, when given) whose ttl has passed, each
    /// torn down with `down` unless `dry_run`. One instance's failure does not stop the
    /// others; each result is returned with its instance.
    pub async fn gc(
        &self,
        environment: Option<&str>,
        dry_run: bool,
    ) -> Result<Vec<(Instance, Result<DownReport>)>> {
        let expired: Vec<Instance> = self
            .instances(environment, false)
            .await?
            .into_iter()
            .filter(|i| i.expired && self.spec.is_ephemeral(&i.environment))
            .collect();
        let mut out = vec![];
        for i in expired {
            let result = match self.for_instance(&i.instance) {
                Ok(session) => {
                    session
                        .down(
                            &i.environment,
                            DownOptions {
                                dry_run,
                                wait_lock: Duration::ZERO,
                            },
                        )
                        .await
                }
                Err(e) => Err(e),
            };
            out.push((i, result));
        }
        Ok(out)
    }
}

/// A database branch's teardown behind a pointer of its own (the branch hands out a borrow).
#[derive(Debug)]
struct BranchTeardown(staging_core::DynDatabaseBranch);

#[staging_core::async_trait]
impl teardown::Teardown for BranchTeardown {
    async fn find(&self, created: &Created) -> Result<Option<teardown::Found>> {
        match self.0.teardown() {
            Some(t) => t.find(created).await,
            None => Err(Error::not_supported("branch", "teardown")),
        }
    }

    async fn delete(&self, target: &teardown::DeletionTarget) -> Result<()> {
        match self.0.teardown() {
            Some(t) => t.delete(target).await,
            None => Err(Error::not_supported("branch", "teardown")),
        }
    }
}
