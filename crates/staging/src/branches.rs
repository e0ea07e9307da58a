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
            let ensured = database_branch::ensure(&*branch, &boundary, &owner, |c| {
                let (log, env, mark) = (log.clone(), env.clone(), mark.clone());
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
                    }
                    Ok(())
                }
            })
            .await?;
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
