//! ALB target health of a service's target group.

use std::time::Instant;

use staging_core::{Error, Probe, ProbeOutcome, Result, async_trait};

use crate::context::AwsContext;
use crate::error::map_sdk_error;

/// Every target of a target group is `healthy`; otherwise which are not, and why.
#[derive(Debug, Clone)]
pub struct TargetHealthProbe {
    name: String,
    ctx: AwsContext,
    target_group_arn: String,
}

impl TargetHealthProbe {
    /// A probe named `name` of the target group `target_group_arn`.
    pub fn new(
        name: impl Into<String>,
        ctx: AwsContext,
        target_group_arn: impl Into<String>,
    ) -> Self {
        TargetHealthProbe {
            name: name.into(),
            ctx,
            target_group_arn: target_group_arn.into(),
        }
    }
}

#[async_trait]
impl Probe for TargetHealthProbe {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "aws.alb_target_health"
    }

    async fn run(&self) -> Result<ProbeOutcome> {
        let started = Instant::now();
        let expected = "every target of the target group healthy";
        let client = self.ctx.elb().await;
        let out = match client
            .describe_target_health()
            .target_group_arn(&self.target_group_arn)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => match map_sdk_error("elasticloadbalancing:DescribeTargetHealth", e) {
                Error::NotFound { what } => {
                    return Ok(ProbeOutcome::fail(
                        expected,
                        format!("target group not found ({what})"),
                        started.elapsed(),
                    )
                    .with_evidence("target_group", &self.target_group_arn));
                }
                other => return Err(other),
            },
        };
        let targets = out.target_health_descriptions();
        let mut healthy = 0;
        let mut problems = vec![];
        for t in targets {
            let id = t.target().and_then(|t| t.id()).unwrap_or("?");
            let port = t
                .target()
                .and_then(|t| t.port())
                .map(|p| format!(":{p}"))
                .unwrap_or_default();
            let health = t.target_health();
            let state = health
                .and_then(|h| h.state())
                .map(|s| s.as_str())
                .unwrap_or("unknown");
            if state == "healthy" {
                healthy += 1;
                continue;
            }
            let mut why = format!("{id}{port} {state}");
            if let Some(reason) = health.and_then(|h| h.reason()) {
                why.push_str(&format!(" ({}", reason.as_str()));
                if let Some(d) = health.and_then(|h| h.description()) {
                    why.push_str(&format!(": {d}"));
                }
                why.push(')');
            }
            problems.push(why);
        }
        let elapsed = started.elapsed();
        let outcome = if targets.is_empty() {
            ProbeOutcome::fail(
                expected,
                "no registered targets (is the service attached to the target group?)",
                elapsed,
            )
        } else if problems.is_empty() {
            ProbeOutcome::pass(
                expected,
                format!("{healthy}/{} targets healthy", targets.len()),
                elapsed,
            )
        } else {
            ProbeOutcome::fail(
                expected,
                format!(
                    "{healthy}/{} targets healthy; not healthy: {}",
                    targets.len(),
                    problems.join("; ")
                ),
                elapsed,
            )
        };
        Ok(outcome.with_evidence("target_group", &self.target_group_arn))
    }
}
