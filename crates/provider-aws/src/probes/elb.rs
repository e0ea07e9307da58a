//! ALB target health of a service's target groups: the one the spec names, or every one the
//! ECS service is attached to.

use std::time::Instant;

use staging_core::{Error, Probe, ProbeOutcome, Result, async_trait};

use crate::context::AwsContext;
use crate::error::map_sdk_error;

/// Every target of a target group is `healthy`; otherwise which are not, and why.
///
/// The target group is either given ([`TargetHealthProbe::new`]) or read from the ECS
/// service on each run ([`TargetHealthProbe::of_ecs_service`]): `DescribeServices` lists
/// the target groups a service behind a load balancer registers its tasks in, and each of
/// them is checked.
#[derive(Debug, Clone)]
pub struct TargetHealthProbe {
    name: String,
    ctx: AwsContext,
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    /// The target group the spec names.
    Arn(String),
    /// The target groups of an ECS service.
    #[cfg(feature = "ecs")]
    EcsService {
        /// The service's name in the spec, for the message that says how to set the ARN.
        spec_service: String,
        cluster: String,
        service: String,
    },
}

/// What one target group's health came to.
struct GroupHealth {
    ok: bool,
    observed: String,
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
            source: Source::Arn(target_group_arn.into()),
        }
    }

    /// A probe named `name` of every target group the ECS service `service` of `cluster` is
    /// attached to (its `loadBalancers[].targetGroupArn`), read on each run. A service with
    /// no target group fails, saying so and how to set `target_group_arn` for
    /// `spec_service` (the service's name in the spec).
    #[cfg(feature = "ecs")]
    pub fn of_ecs_service(
        name: impl Into<String>,
        ctx: AwsContext,
        spec_service: impl Into<String>,
        cluster: impl Into<String>,
        service: impl Into<String>,
    ) -> Self {
        TargetHealthProbe {
            name: name.into(),
            ctx,
            source: Source::EcsService {
                spec_service: spec_service.into(),
                cluster: cluster.into(),
                service: service.into(),
            },
        }
    }

    /// The target groups of the ECS service, or the outcome that says why there are none.
    #[cfg(feature = "ecs")]
    async fn discover(
        &self,
        expected: &str,
        started: Instant,
        spec_service: &str,
        cluster: &str,
        service: &str,
    ) -> Result<std::result::Result<Vec<String>, ProbeOutcome>> {
        let where_ = format!("ECS service `{service}` in cluster `{cluster}`");
        let fail = |observed: String| {
            Ok(Err(ProbeOutcome::fail(
                expected,
                observed,
                started.elapsed(),
            )
            .with_evidence("ecs_service", format!("{cluster}/{service}"))))
        };
        let set_it = format!(
            "set `target_group_arn = \"arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID\"` in [services.{spec_service}.settings] (or [services.{spec_service}.overrides.ENV]) to check a target group explicitly"
        );
        let out = match self
            .ctx
            .ecs()
            .await
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => match map_sdk_error("ecs:DescribeServices", e) {
                Error::NotFound { what } => {
                    return fail(format!(
                        "{where_} not found ({what}), so its target groups cannot be read; check `cluster` and `service`, or {set_it}"
                    ));
                }
                other => return Err(other),
            },
        };
        let Some(svc) = out
            .services()
            .iter()
            .find(|svc| svc.status() != Some("INACTIVE"))
        else {
            return fail(format!(
                "{where_} not found, so its target groups cannot be read; check `cluster` and `service`, or {set_it}"
            ));
        };
        let mut arns: Vec<String> = vec![];
        let mut classic = vec![];
        for lb in svc.load_balancers() {
            match lb.target_group_arn() {
                Some(arn) if !arns.iter().any(|a| a == arn) => arns.push(arn.to_owned()),
                Some(_) => {}
                None => classic.extend(lb.load_balancer_name().map(str::to_owned)),
            }
        }
        if !arns.is_empty() {
            return Ok(Ok(arns));
        }
        if classic.is_empty() {
            fail(format!(
                "{where_} has no load balancer (DescribeServices lists no loadBalancers), so there is no target group to check; {set_it}, or turn the check off with `target_health = false` if the service is not behind an ALB"
            ))
        } else {
            fail(format!(
                "{where_} is behind the classic load balancer {}, which has no target group to check; {set_it}, or turn the check off with `target_health = false`",
                classic.join(", ")
            ))
        }
    }

    /// The health of one target group.
    async fn group_health(
        &self,
        client: &aws_sdk_elasticloadbalancingv2::Client,
        arn: &str,
    ) -> Result<GroupHealth> {
        let out = match client
            .describe_target_health()
            .target_group_arn(arn)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => match map_sdk_error("elasticloadbalancing:DescribeTargetHealth", e) {
                Error::NotFound { what } => {
                    return Ok(GroupHealth {
                        ok: false,
                        observed: format!("target group not found ({what})"),
                    });
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
        Ok(if targets.is_empty() {
            GroupHealth {
                ok: false,
                observed: "no registered targets (is the service attached to the target group?)"
                    .to_owned(),
            }
        } else if problems.is_empty() {
            GroupHealth {
                ok: true,
                observed: format!("{healthy}/{} targets healthy", targets.len()),
            }
        } else {
            GroupHealth {
                ok: false,
                observed: format!(
                    "{healthy}/{} targets healthy; not healthy: {}",
                    targets.len(),
                    problems.join("; ")
                ),
            }
        })
    }
}

/// `NAME` of `arn:...:targetgroup/NAME/ID`, or the whole ARN.
fn short_name(arn: &str) -> &str {
    arn.split_once(":targetgroup/")
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap_or(arn)
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
        let (expected, arns, from): (String, Vec<String>, Option<String>) = match &self.source {
            Source::Arn(arn) => (
                "every target of the target group healthy".to_owned(),
                vec![arn.clone()],
                None,
            ),
            #[cfg(feature = "ecs")]
            Source::EcsService {
                spec_service,
                cluster,
                service,
            } => {
                let expected =
                    format!("every target of each target group of ECS service `{service}` healthy");
                match self
                    .discover(&expected, started, spec_service, cluster, service)
                    .await?
                {
                    Ok(arns) => (expected, arns, Some(format!("{cluster}/{service}"))),
                    Err(outcome) => return Ok(outcome),
                }
            }
        };
        let client = self.ctx.elb().await;
        let mut groups = Vec::with_capacity(arns.len());
        for arn in &arns {
            groups.push(self.group_health(&client, arn).await?);
        }
        let ok = groups.iter().all(|g| g.ok);
        let observed = match groups.as_slice() {
            [one] => one.observed.clone(),
            _ => arns
                .iter()
                .zip(&groups)
                .map(|(arn, g)| format!("target group {}: {}", short_name(arn), g.observed))
                .collect::<Vec<_>>()
                .join(" | "),
        };
        let elapsed = started.elapsed();
        let mut outcome = if ok {
            ProbeOutcome::pass(expected, observed, elapsed)
        } else {
            ProbeOutcome::fail(expected, observed, elapsed)
        };
        if let Some(from) = from {
            outcome = outcome.with_evidence("ecs_service", from);
        }
        Ok(outcome.with_evidence("target_group", arns.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::short_name;

    #[test]
    fn a_target_group_is_named_by_the_name_in_its_arn() {
        assert_eq!(
            short_name(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-web/0123456789abcdef"
            ),
            "shop-web"
        );
        assert_eq!(short_name("not-an-arn"), "not-an-arn");
    }
}
