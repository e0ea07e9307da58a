//! The `secrets` step of the pipeline.

use async_trait::async_trait;
use staging_core::Result;
use staging_core::pipeline::{Finding, RunContext, Step, StepReport};

use crate::check::{VarStatus, check_resolved};
use crate::fingerprint::Fingerprinter;
use crate::resolve::resolve_vars;

/// Resolves the variables of the run's environment, hands each to the run
/// ([`RunContext::set_var`], which registers secrets with the redactor), and checks the
/// rules: one finding per variable, with its source and fingerprint, never its value.
///
/// Fails when a rule fails, a required variable is missing or a source cannot be read.
#[derive(Debug, Clone, Copy, Default)]
pub struct SecretsStep;

impl SecretsStep {
    /// The step's name in reports.
    pub const NAME: &'static str = "secrets";
}

#[async_trait]
impl Step for SecretsStep {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<StepReport> {
        let spec = ctx.spec.clone();
        let commit = (!ctx.commit.is_empty()).then(|| ctx.commit.clone());
        let fingerprints = Fingerprinter::for_project(&spec.spec.project.name);
        let backends = ctx.backends.clone();
        let resolved = resolve_vars(&backends, &spec, &ctx.environment, commit.as_deref()).await?;
        let report = check_resolved(
            &backends,
            &spec,
            &resolved,
            &fingerprints,
            commit.as_deref(),
        )
        .await?;
        let secret_names = resolved.secret_names.clone();
        // A source that could not be reached (a database branch's API that did not answer)
        // makes the run one that could not proceed (exit 3), not a failed check.
        let unreachable = !resolved.unreachable.is_empty();
        ctx.deferred = resolved.deferred.clone();
        for (name, value) in resolved.values {
            let secret = secret_names.contains(&name);
            ctx.set_var(name, value, secret);
        }
        let mut findings = vec![];
        for row in &report.vars {
            let fp = row
                .fingerprint
                .as_deref()
                .map(|f| format!(", {f}"))
                .unwrap_or_default();
            let head = format!("{} from {}{fp}", status_word(row.status), row.source);
            let problems: Vec<&str> = row.problems.iter().map(|p| p.message.as_str()).collect();
            let message = if problems.is_empty() {
                head
            } else {
                format!("{head}: {}", problems.join("; "))
            };
            let message = ctx.redactor.redact(&message).into_owned();
            findings.push(if row.status.fails() {
                Finding::failed(&row.name, message)
            } else {
                Finding::ok(&row.name, message)
            });
        }
        let failed = report.failures().count();
        let summary = if failed == 0 {
            format!(
                "{} variable(s) of {} resolved and checked",
                report.vars.len(),
                ctx.environment
            )
        } else {
            format!(
                "{failed} of {} variable(s) of {} failed the rules",
                report.vars.len(),
                ctx.environment
            )
        };
        let mut step = StepReport::from_findings(Self::NAME, summary, findings);
        if unreachable && failed > 0 {
            step.error_class = Some(staging_core::ErrorClass::CannotProceed);
        }
        Ok(step)
    }
}

fn status_word(status: VarStatus) -> &'static str {
    match status {
        VarStatus::Ok => "ok",
        VarStatus::Warning => "warning",
        VarStatus::Invalid => "invalid",
        VarStatus::Missing => "missing",
        VarStatus::Unset => "unset (optional)",
        VarStatus::Error => "unreadable",
    }
}
