//! [`StagedPromoteStep`]: the last part of the staged production flow inside the pipeline.
//! The deploy step built the deployment without the production domains; the verify and smoke
//! steps checked it at its own URL; this step promotes it when everything before passed, and
//! in every case sets the project's `autoAssignCustomDomains` back to what it was.

use serde_json::Value;
use staging_core::pipeline::{Finding, RunContext, Step, StepReport, StepStatus};
use staging_core::{Result, async_trait};

use crate::factory::VercelFactory;
use crate::provider::AUTO_ASSIGN_META;

/// Promotes the staged production deployment of each service (`requestPromote`), waits until
/// the production domains point at it and verifies its commit; restores
/// `autoAssignCustomDomains` (Vercel's promote may switch it on: vercel/vercel #15095).
/// Skipped for environments that are not staged Vercel production; runs after a failure to
/// restore the setting, promoting nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct StagedPromoteStep;

#[async_trait]
impl Step for StagedPromoteStep {
    fn name(&self) -> &'static str {
        "promote"
    }

    fn runs_after_failure(&self) -> bool {
        true
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<StepReport> {
        if !VercelFactory::is_staged(&ctx.spec, &ctx.environment) {
            return Ok(StepReport::skipped(
                self.name(),
                "not a staged Vercel production environment",
            ));
        }
        let failed_before = ctx
            .reports
            .iter()
            .any(|r| matches!(r.status, StepStatus::Failed | StepStatus::Error));
        let vercel = VercelFactory::new().build_vercel(&ctx.spec, &ctx.environment)?;
        let timeout = ctx
            .spec
            .spec
            .environment(&ctx.environment)
            .map(|e| e.deploy_timeout)
            .unwrap_or(std::time::Duration::from_secs(600));
        let services: Vec<_> = ctx
            .services
            .iter()
            .map(|(name, s)| (name.clone(), s.handle.clone(), s.deploy_id.clone()))
            .collect();
        let mut findings = vec![];
        for (name, handle, deploy_id) in services {
            let Some(id) = deploy_id else {
                findings.push(Finding::skipped(&name, "nothing was deployed"));
                continue;
            };
            // Right before the write, through the run's boundary like the deploy was.
            let handle = ctx.write_target(handle)?;
            let before = vercel
                .deployment(&id)
                .await?
                .meta
                .get(AUTO_ASSIGN_META)
                .and_then(Value::as_str)
                .map(|v| v == "true");
            let promoted = if failed_before {
                // Never promoted, so it never served: the automatic rollback leaves the
                // deployment production serves alone.
                ctx.held_back.insert(name.clone());
                None
            } else {
                Some(
                    async {
                        vercel.promote(&handle, &id).await?;
                        vercel
                            .wait_for_production(&handle, &id, &ctx.commit, timeout)
                            .await
                    }
                    .await,
                )
            };
            let mut restored = false;
            if let Some(before) = before
                && vercel.auto_assign_custom_domains(&handle).await? != before
            {
                vercel
                    .set_auto_assign_custom_domains(&handle, before)
                    .await?;
                restored = true;
            }
            let note = if restored {
                "; autoAssignCustomDomains set back to what it was"
            } else {
                ""
            };
            findings.push(match promoted {
                None => Finding::skipped(
                    &name,
                    &format!("an earlier step failed: deployment {id} not promoted{note}"),
                ),
                Some(Ok(())) => Finding::ok(
                    &name,
                    format!("deployment {id} promoted: the production domains point at it{note}"),
                ),
                Some(Err(e)) => Finding::failed(
                    &name,
                    ctx.redactor
                        .redact(&format!("promoting deployment {id}: {e}{note}"))
                        .into_owned(),
                ),
            });
        }
        let summary = if failed_before {
            "not promoted: an earlier step failed".to_owned()
        } else {
            format!("{} deployment(s) promoted", findings.len())
        };
        Ok(StepReport::from_findings(self.name(), summary, findings))
    }
}
