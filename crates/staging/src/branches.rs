//! The `branches` step of `up` and `promote`: each database branch of the environment
//! (Neon, Supabase) made to exist before the secrets step reads its connection URL, then the
//! environment's data state checked (unscrubbed production data refuses the run).
//!
//! - Only `up` of an unprotected environment creates: the branch from its parent (on Neon
//!   with a read-write compute endpoint; an existing Neon branch without one gets one), each
//!   creation through the run's write boundary ([`staging_core::WriteBoundary::creation`]),
//!   waited for until ready. `promote` (and `up` of a protected environment) only checks
//!   that the branch is there, and fails naming what is missing.
//! - A branch forked from its parent holds the parent's (production's) data: the environment
//!   is marked unscrubbed ([`staging_core::data_state`]) *before* the create request is
//!   sent, so a run stopped mid-creation leaves the mark too.
//! - Then, under the run's lease, the data state decides: an environment marked unscrubbed
//!   (a fork just made, a failed or interrupted refresh, a copy without a scrub) is refused,
//!   naming the state and `staging refresh`, unless `--allow-unscrubbed` (recorded). So the
//!   first `up` of a fresh project creates the branch and stops there: making the copy safe is
//!   `staging refresh`'s job (it runs the migrations, the scrub and the PII guard and clears
//!   the mark), and `up` never deploys code against personal data without saying so.

use staging_core::data_state;
use staging_core::database_branch::{self, BRANCH_KIND};
use staging_core::pipeline::{Finding, RunContext, Step, StepReport, StepStatus};
use staging_core::spec::BranchSpec;
use staging_core::teardown::CreatedBy;
use staging_core::{Error, Result};
use staging_evidence::{DynEvidenceStore, EvidenceStateLog};

/// What the step does beyond checking: set by [`crate::Staging::start`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BranchOptions {
    /// Create what is missing (`up`); `false` for a promotion.
    pub(crate) create: bool,
    /// `--allow-unscrubbed`: run on unscrubbed data, recorded.
    pub(crate) allow_unscrubbed: bool,
}

/// The `branches` step (see the module documentation).
#[derive(Debug, Clone)]
pub(crate) struct BranchStep {
    store: DynEvidenceStore,
    options: BranchOptions,
}

impl BranchStep {
    /// The step's name in reports.
    pub(crate) const NAME: &'static str = "branches";

    pub(crate) fn new(store: DynEvidenceStore, options: BranchOptions) -> Self {
        BranchStep { store, options }
    }
}

/// The name of the branch `b` is forked from.
fn parent_of(b: &BranchSpec) -> String {
    match b {
        BranchSpec::Neon(n) => format!("neon branch {}", n.parent),
        BranchSpec::Supabase(s) => format!("supabase project {}", s.project_ref),
    }
}

#[staging_core::async_trait]
impl Step for BranchStep {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<StepReport> {
        let env = ctx.environment.clone();
        let protected = ctx.spec.spec.environment(&env)?.protected;
        let branches: Vec<(String, BranchSpec)> = ctx
            .spec
            .spec
            .databases
            .iter()
            .filter_map(|(name, d)| d.branch.as_ref().map(|b| (name.clone(), b.clone())))
            .filter(|(_, b)| b.applies_to(&env, protected))
            .collect();
        let mut findings = vec![];
        let log = EvidenceStateLog::new(self.store.clone(), ctx.spec.clone());
        for (db, spec) in &branches {
            let build = ctx.backends.database_branches.clone().ok_or_else(|| {
                Error::config(format!(
                    "database `{db}` is a branch, and nothing here can reach its provider (the `staging` facade built with the branch's `providers-*` feature can)"
                ))
            })?;
            let branch = build(spec)?;
            let owner = format!("database {db}");
            if !self.options.create || protected {
                let missing = branch.missing(&owner).await?;
                if !missing.is_empty() {
                    let what: Vec<String> = missing.iter().map(|c| c.describe()).collect();
                    return Err(Error::not_found(format!(
                        "{} of `{env}`: {} missing; only `staging up` of an unprotected environment creates it",
                        branch.describe(),
                        what.join(", ")
                    )));
                }
                findings.push(Finding::ok(&owner, format!("{} exists", branch.describe())));
                continue;
            }
            let boundary = ctx.boundary()?.clone();
            ctx.progress
                .message(Self::NAME, &format!("ensuring {}", branch.describe()));
            let mark = data_state::unscrubbed(
                db,
                &parent_of(spec),
                "`staging up` created the branch from it, with its data",
            );
            // An instance records the branch in its ledger before the request (so `down`
            // finds it after a run stopped mid-creation) and its id once it exists.
            let entry = std::sync::Arc::new(std::sync::Mutex::new(None::<usize>));
            let ledger = ctx.ledger.clone();
            let ensured = database_branch::ensure(&*branch, &boundary, &owner, |c| {
                let (log, env, mark) = (log.clone(), env.clone(), mark.clone());
                let (ledger, entry, db) = (ledger.clone(), entry.clone(), db.clone());
                async move {
                    // Marked before the fork is requested: a run stopped mid-creation leaves
                    // the mark, never an unmarked copy of production.
                    if c.kind.ends_with(BRANCH_KIND) {
                        staging_core::data_state::DataStateLog::record_state(&log, &env, mark)
                            .await
                            .map_err(|e| Error::Failed {
                                message: format!(
                                    "{} was not created: its data state could not be recorded first ({e}), and a fork of production is never made unmarked",
                                    c.describe()
                                ),
                            })?;
                        if let Some(ledger) = &ledger {
                            let i = ledger.requested(&c, CreatedBy::Database(db)).await?;
                            *entry.lock().unwrap_or_else(|p| p.into_inner()) = Some(i);
                        }
                    }
                    Ok(())
                }
            })
            .await?;
            let recorded = *entry.lock().unwrap_or_else(|p| p.into_inner());
            if let (Some(ledger), Some(i)) = (&ctx.ledger, recorded) {
                ledger.answered(i, &ensured.status.id).await?;
            }
            findings.push(Finding::ok(
                &owner,
                if ensured.created.is_empty() {
                    format!("{} exists", branch.describe())
                } else {
                    let made: Vec<String> = ensured.created.iter().map(|c| c.describe()).collect();
                    format!(
                        "created {}{}",
                        made.join(", "),
                        if ensured.forked() {
                            "; it holds its parent's data, so `staging refresh` must scrub it before the environment is used"
                        } else {
                            ""
                        }
                    )
                },
            ));
        }
        // An instance's branch is scrubbed by the run that made it: the refresh's own
        // migrations, scrub and PII guard, until its data state says scrubbed.
        if ctx.ledger.is_some() && self.options.create && !branches.is_empty() {
            match scrub_instance_branches(ctx, &self.store, &branches).await {
                Ok(scrubbed) => findings.extend(scrubbed),
                Err(e) => {
                    findings.push(Finding::failed("scrub", e.to_string()));
                    let mut report = StepReport::from_findings(Self::NAME, e.to_string(), findings);
                    report.status = StepStatus::Failed;
                    report.error_class = Some(e.class());
                    return Ok(report);
                }
            }
        }
        // Under the run's lease, after any fork this run made: the data state decides.
        let command = if self.options.create { "up" } else { "promote" };
        let mut overrode = false;
        match staging_evidence::refuse_unscrubbed(
            &self.store,
            &ctx.spec,
            &env,
            command,
            self.options.allow_unscrubbed,
        )
        .await
        {
            Ok(overridden) => {
                for u in overridden {
                    overrode = true;
                    findings.push(Finding::ok(
                        format!("data of database {}", u.database),
                        format!(
                            "--allow-unscrubbed: running on UNSCRUBBED data (recorded): {}",
                            u.message
                        ),
                    ));
                }
            }
            Err(e) => {
                findings.push(Finding::failed("data state", e.to_string()));
                let mut report = StepReport::from_findings(Self::NAME, e.to_string(), findings);
                report.status = StepStatus::Failed;
                report.error_class = Some(e.class());
                return Ok(report);
            }
        }
        if branches.is_empty() && findings.is_empty() {
            return Ok(StepReport::passed(
                Self::NAME,
                format!("`{env}` has no database branch, and no unscrubbed data on record"),
            ));
        }
        Ok(StepReport::from_findings(
            Self::NAME,
            format!(
                "{} database branch(es) of `{env}` ready; {}",
                branches.len(),
                if overrode {
                    "running on UNSCRUBBED data (--allow-unscrubbed, recorded)"
                } else {
                    "no unscrubbed data on record"
                }
            ),
            findings,
        ))
    }
}

/// Runs the refresh (reset from the parent, the environment's migrations, the scrub and the
/// PII guard) on each branch of an instance whose data state is unscrubbed — the fork this
/// run just made, or one an earlier run left unscrubbed — recording the state as the refresh
/// does. The findings say what each did; a refresh that did not end scrubbed is an error.
async fn scrub_instance_branches(
    ctx: &mut RunContext,
    store: &DynEvidenceStore,
    branches: &[(String, BranchSpec)],
) -> Result<Vec<Finding>> {
    use staging_core::pipeline::Step as _;
    let env = ctx.environment.clone();
    let spec = ctx.spec.clone();
    let unscrubbed = staging_evidence::unscrubbed_databases(
        &**store,
        &spec.spec.project.name,
        &spec.state_key(&env),
    )
    .await?;
    let dbs: Vec<String> = unscrubbed
        .into_iter()
        .map(|u| u.database)
        .filter(|d| branches.iter().any(|(n, _)| n == d))
        .collect();
    if dbs.is_empty() {
        return Ok(vec![]);
    }
    let source = spec
        .spec
        .environment(&env)?
        .like
        .clone()
        .ok_or_else(|| {
            Error::config(format!(
                "the instance's branch of database {} holds its parent's data and must be scrubbed: give `{env}` a `like = \"ENV\"` (the environment whose data its branch copies)",
                dbs.join(", ")
            ))
        })?;
    let backends = ctx.backends.clone();
    let refreshes =
        crate::refresh::resolve(&backends, &spec, &env, &source, false, Some(&dbs)).await?;
    let migrations =
        staging_migrate::EnvMigrations::from_secrets(&backends, spec.clone(), &env, None)
            .await
            .ok();
    let step = staging_migrate::refresh::RefreshStep::new(refreshes, migrations).with_state_log(
        std::sync::Arc::new(EvidenceStateLog::new(store.clone(), spec.clone())),
    );
    let report = step.run(ctx).await?;
    if !report.ok() {
        return Err(Error::Failed {
            message: format!(
                "the scrub of the instance's branch did not pass, so nothing is deployed against it: {}",
                report.summary
            ),
        });
    }
    Ok(report.findings)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex};

    use staging_core::secrecy::SecretString;
    use staging_core::spec::{LoadOptions, LoadedSpec};
    use staging_core::{BranchState, BranchStatus, Creation, CreationTarget, DatabaseBranch};

    use super::*;

    /// A branch that is missing until created; `fail` makes the create request fail.
    #[derive(Debug, Default)]
    struct Fake {
        creates: AtomicU32,
        exists: Mutex<bool>,
        fail: bool,
    }

    fn status(created: bool) -> BranchStatus {
        BranchStatus {
            id: "br-1".into(),
            name: "staging".into(),
            parent_id: Some("br-main".into()),
            state: BranchState::Ready,
            created,
        }
    }

    #[staging_core::async_trait]
    impl DatabaseBranch for Fake {
        fn describe(&self) -> String {
            "neon branch `staging` of `main`".into()
        }
        async fn missing(&self, owner: &str) -> Result<Vec<Creation>> {
            if *self.exists.lock().unwrap() {
                return Ok(vec![]);
            }
            Ok(vec![Creation {
                kind: "neon branch".into(),
                name: "staging".into(),
                owner: owner.into(),
                namespace: None,
                like: None,
                settings: Default::default(),
                request: serde_json::Value::Null,
            }])
        }
        async fn create(&self, _target: &CreationTarget) -> Result<BranchStatus> {
            self.creates.fetch_add(1, Ordering::SeqCst);
            if self.fail {
                return Err(Error::Failed {
                    message: "the create request was cut off".into(),
                });
            }
            *self.exists.lock().unwrap() = true;
            Ok(status(true))
        }
        async fn reset_from_parent(&self) -> Result<BranchStatus> {
            unreachable!("the branches step never resets")
        }
        async fn connection_url(&self) -> Result<SecretString> {
            unreachable!("the branches step never reads the URL")
        }
        async fn status(&self) -> Result<BranchStatus> {
            Ok(status(false))
        }
    }

    struct Setup {
        _dir: tempfile::TempDir,
        ctx: RunContext,
        store: DynEvidenceStore,
        branch: Arc<Fake>,
    }

    fn setup(fail: bool, boundary: bool) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staging.toml");
        std::fs::write(
            &path,
            r#"[project]
name = "branches"

[environments.staging]
provider = "local"
promotes_to = "production"

[environments.production]
provider = "local"
protected = true

[vars.DATABASE_URL]
secret = true

[databases.main]
url_var = "DATABASE_URL"
branch = { neon = { project_id = "p-1", branch = "staging", parent = "main" } }
"#,
        )
        .unwrap();
        let spec = Arc::new(LoadedSpec::load(&path, LoadOptions::new(&["local"])).unwrap());
        let store: DynEvidenceStore = Arc::new(staging_evidence::dir_store(&spec));
        let branch = Arc::new(Fake {
            fail,
            ..Fake::default()
        });
        let mut ctx = RunContext::new(spec, "staging", "0".repeat(40)).unwrap();
        let built = branch.clone();
        ctx.backends.database_branches = Some(Arc::new(move |_| {
            Ok(built.clone() as staging_core::DynDatabaseBranch)
        }));
        if boundary {
            ctx.boundary = Some(staging_core::boundary::unchecked_boundary_for_tests(
                "staging",
            ));
        }
        Setup {
            _dir: dir,
            ctx,
            store,
            branch,
        }
    }

    fn step(s: &Setup, create: bool, allow_unscrubbed: bool) -> BranchStep {
        BranchStep::new(
            s.store.clone(),
            BranchOptions {
                create,
                allow_unscrubbed,
            },
        )
    }

    async fn marked(s: &Setup) -> Vec<staging_evidence::Unscrubbed> {
        staging_evidence::unscrubbed_databases(&*s.store, "branches", "staging")
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_promotion_never_creates_a_missing_branch() {
        let mut s = setup(false, true);
        let e = step(&s, false, false).run(&mut s.ctx).await.unwrap_err();
        assert!(e.to_string().contains("only `staging up`"), "{e}");
        assert_eq!(s.branch.creates.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn without_the_runs_write_boundary_nothing_is_created_or_marked() {
        let mut s = setup(false, false);
        let e = step(&s, true, false).run(&mut s.ctx).await.unwrap_err();
        assert!(e.to_string().contains("no isolation check ran"), "{e}");
        assert_eq!(s.branch.creates.load(Ordering::SeqCst), 0);
        assert!(marked(&s).await.is_empty());
    }

    #[tokio::test]
    async fn a_fork_is_marked_before_its_request_so_a_cut_off_one_leaves_the_mark() {
        let mut s = setup(true, true);
        step(&s, true, false).run(&mut s.ctx).await.unwrap_err();
        assert_eq!(s.branch.creates.load(Ordering::SeqCst), 1);
        let m = marked(&s).await;
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0].database, "main");
    }

    #[tokio::test]
    async fn a_fork_refuses_its_own_run_unless_allowed_and_the_override_is_recorded() {
        let mut s = setup(false, true);
        let report = step(&s, true, false).run(&mut s.ctx).await.unwrap();
        assert_eq!(report.status, StepStatus::Failed, "{report:?}");
        assert!(report.summary.contains("holds UNSCRUBBED"), "{report:?}");
        assert!(report.summary.contains("staging refresh --env staging"));
        assert_eq!(s.branch.creates.load(Ordering::SeqCst), 1);
        // Found now: not created again; run with the override, which is on record.
        let report = step(&s, true, true).run(&mut s.ctx).await.unwrap();
        assert!(report.ok(), "{report:?}");
        assert!(report.summary.contains("UNSCRUBBED"), "{report:?}");
        assert_eq!(s.branch.creates.load(Ordering::SeqCst), 1);
        assert_eq!(marked(&s).await.len(), 1, "the data stays unscrubbed");
        let all = s
            .store
            .list(&staging_evidence::EvidenceFilter::new())
            .await
            .unwrap();
        assert!(
            all.entries.iter().any(|e| e
                .evidence
                .steps
                .iter()
                .any(|s| s.to_string().contains("ran with --allow-unscrubbed"))),
            "the override is recorded"
        );
    }
}
