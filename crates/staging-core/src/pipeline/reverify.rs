//! The verify step, once more, after smoke: evidence says "the probes passed against this
//! commit", which holds only if this commit was still the one serving when they ran.
//!
//! Another pipeline, a push that triggers the platform's auto-deploy, someone in the
//! dashboard: any of them can replace the deploy between the verify step and the end of
//! smoke, and the probes then ran against another commit. [`ReverifyStep`] reads each
//! service's live deploy again and fails the run unless it is the very deploy the verify
//! step saw (same deploy id, same commit). A failed run records no passing evidence, so the
//! promotion gate refuses the commit.

use async_trait::async_trait;
use futures_util::future::join_all;

use super::steps::{commits_match, short};
use super::{Finding, RunContext, Step, StepReport};
use crate::error::Result;

/// Re-reads what each service serves after smoke and fails when another deploy replaced
/// the one verified before smoke; see the module docs. Skipped when the verify step
/// verified nothing (it failed, or there were no services).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReverifyStep;

impl ReverifyStep {
    /// The step's name.
    pub const NAME: &'static str = "reverify";
}

#[async_trait]
impl Step for ReverifyStep {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<StepReport> {
        if ctx.verified.is_empty() {
            return Ok(StepReport::skipped(
                Self::NAME,
                "the verify step verified no service",
            ));
        }
        let provider = ctx.provider()?.clone();
        let verified: Vec<(String, crate::provider::Deploy)> = ctx
            .verified
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let states = join_all(verified.iter().map(|(name, _)| {
            let provider = &provider;
            let handle = ctx.services.get(name).map(|s| s.handle.clone());
            async move {
                match handle {
                    Some(h) => provider.live_state(&h).await.map(Some),
                    None => Ok(None),
                }
            }
        }))
        .await;
        let mut findings = vec![];
        for ((name, before), state) in verified.iter().zip(states) {
            let now = state?.and_then(|s| s.live);
            let ours = format!(
                "deploy {} of {}",
                before.id,
                short(before.commit.as_deref().unwrap_or(&ctx.commit))
            );
            let finding = match &now {
                Some(d)
                    if d.id == before.id
                        && d.commit
                            .as_deref()
                            .is_some_and(|c| commits_match(c, &ctx.commit)) =>
                {
                    Finding::ok(name, format!("still serving {ours}"))
                }
                Some(d) => {
                    let theirs = format!(
                        "deploy {} of {}",
                        d.id,
                        d.commit
                            .as_deref()
                            .map(short)
                            .unwrap_or("an unknown commit")
                    );
                    Finding::failed(
                        name,
                        format!(
                            "another deploy replaced {ours} during smoke: {theirs} is live, so the probes may have run against another commit"
                        ),
                    )
                    .with_evidence(ours.clone(), theirs)
                }
                None => Finding::failed(
                    name,
                    format!("{ours} is no longer live after smoke: nothing is serving"),
                )
                .with_evidence(ours.clone(), "nothing live"),
            };
            findings.push(finding);
        }
        let ok = findings.iter().all(|f| f.ok);
        let summary = if ok {
            format!(
                "every service still serves the deploy verified before smoke ({})",
                short(&ctx.commit)
            )
        } else {
            "another deploy replaced a verified deploy during smoke".to_owned()
        };
        Ok(StepReport::from_findings(Self::NAME, summary, findings))
    }
}
