//! The `migrate` step of the pipeline.

use std::sync::Arc;

use async_trait::async_trait;
use staging_core::pipeline::{Finding, RunContext, Step, StepReport};
use staging_core::{MigrationState, Result};

use crate::command::OutputSink;
use crate::env::{DatabaseOutcome, EnvMigrations, MigrateOptions};
use crate::guard::{StaticUrls, UrlLookup};

/// Applies (or, on a dry run, plans) the migrations of every database of the spec, one
/// finding per database. Database URLs come from `ctx.vars`, so the secrets step runs first.
#[derive(Debug, Clone)]
pub struct MigrateStep {
    options: MigrateOptions,
    urls: Arc<dyn UrlLookup>,
}

impl MigrateStep {
    /// The step's name in reports.
    pub const NAME: &'static str = "migrate";

    /// A step with these options; `urls` reads the source environment's database URL for the
    /// staging-before-production rule.
    pub fn new(options: MigrateOptions, urls: Arc<dyn UrlLookup>) -> Self {
        MigrateStep { options, urls }
    }
}

impl Default for MigrateStep {
    /// Apply, no escape hatch, and no way to read another environment (so a protected
    /// environment is refused until a [`UrlLookup`] is given).
    fn default() -> Self {
        MigrateStep::new(MigrateOptions::default(), Arc::new(StaticUrls::new()))
    }
}

fn finding(o: &DatabaseOutcome, dry_run: bool) -> Finding {
    let name = format!("database {}", o.database);
    let seed = o
        .seed
        .as_ref()
        .map(|s| format!("; seed: {s}"))
        .unwrap_or_default();
    if let Some(error) = &o.error {
        return Finding::failed(name, error.clone());
    }
    if let Some(plan) = o.plan.as_ref().filter(|_| dry_run) {
        let versions: Vec<String> = plan
            .to_apply
            .iter()
            .filter(|e| e.state == MigrationState::Pending)
            .map(|e| {
                if e.version.is_empty() {
                    e.name.clone()
                } else {
                    format!("{}_{}", e.version, e.name)
                }
            })
            .collect();
        let message = if versions.is_empty() {
            format!("{}: up to date, nothing to apply{seed}", o.runner)
        } else {
            format!(
                "{}: would apply {}: {}{seed}",
                o.runner,
                versions.len(),
                versions.join(", ")
            )
        };
        return Finding::ok(name, message);
    }
    let report = o.report.clone().unwrap_or_default();
    let applied: Vec<String> = report
        .applied
        .iter()
        .map(|a| {
            if a.version.is_empty() {
                a.name.clone()
            } else {
                format!("{}_{}", a.version, a.name)
            }
        })
        .collect();
    let mut message = if applied.is_empty() {
        format!("{}: up to date", o.runner)
    } else {
        format!(
            "{}: applied {}: {}",
            o.runner,
            applied.len(),
            applied.join(", ")
        )
    };
    for w in &report.warnings {
        message.push_str(&format!("; WARNING {w}"));
    }
    message.push_str(&seed);
    let total = report.applied.iter().map(|a| a.duration).sum();
    Finding::ok(name, message).with_duration(total)
}

#[async_trait]
impl Step for MigrateStep {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<StepReport> {
        let progress = ctx.progress.clone();
        let sink: OutputSink =
            Arc::new(move |line| progress.message(MigrateStep::NAME, &line.line));
        let env = EnvMigrations::new(ctx.spec.clone(), &ctx.environment, ctx.vars.clone())?
            .with_options(self.options.clone())
            .with_url_lookup(self.urls.clone())
            .with_redactor(ctx.redactor.clone())
            .on_output(sink);
        if env.databases().is_empty() {
            return Ok(StepReport::skipped(
                Self::NAME,
                "no database in the spec declares migrations",
            ));
        }
        let report = env.apply().await;
        let findings: Vec<Finding> = report
            .databases
            .iter()
            .map(|o| finding(o, self.options.dry_run))
            .collect();
        let not_attempted = env.databases().len() - report.databases.len();
        let applied: usize = report
            .databases
            .iter()
            .filter_map(|d| d.report.as_ref())
            .map(|r| r.applied.len())
            .sum();
        let summary = match (report.ok, self.options.dry_run) {
            (true, true) => format!(
                "dry run: planned {} database(s) in `{}`, nothing changed",
                findings.len(),
                ctx.environment
            ),
            (true, false) => format!(
                "{applied} migration(s) applied to {} database(s) in `{}`",
                findings.len(),
                ctx.environment
            ),
            (false, _) => format!(
                "migrations failed in `{}`{}",
                ctx.environment,
                if not_attempted > 0 {
                    format!("; {not_attempted} database(s) after it not attempted")
                } else {
                    String::new()
                }
            ),
        };
        let mut step = StepReport::from_findings(Self::NAME, summary, findings);
        // A refusal (the database is another environment's: exit 2) or a database that
        // cannot be identified (exit 3) keeps its class in the run's exit code.
        if !report.ok {
            step.error_class = report
                .databases
                .iter()
                .filter_map(|d| d.error_class)
                .max_by_key(|c| c.exit_code());
        }
        Ok(step)
    }
}
