//! Readiness probes of the AWS stack, built from the environment's settings.
// With some services compiled out, their branches below are empty.
#![cfg_attr(
    not(all(
        feature = "elb",
        feature = "ecs",
        feature = "ses",
        feature = "acm",
        feature = "route53"
    )),
    allow(unused_imports, unused_mut, unused_variables)
)]

#[cfg(feature = "acm")]
mod acm;
#[cfg(feature = "elb")]
mod elb;
#[cfg(feature = "route53")]
mod route53;
#[cfg(feature = "ses")]
mod ses;

use std::collections::BTreeMap;
use std::sync::Arc;

use staging_core::DynProbe;

use crate::context::AwsContext;
use crate::settings::{AwsEnvironmentSettings, EcsServiceSettings};

#[cfg(feature = "acm")]
pub use acm::CertificateProbe;
#[cfg(feature = "elb")]
pub use elb::TargetHealthProbe;
#[cfg(feature = "route53")]
pub use route53::{RecordExpectation, RecordProbe};
#[cfg(feature = "ses")]
pub use ses::{SesAccountProbe, SesIdentityProbe, SesTestSendProbe};

/// The probes the settings ask for, in a stable order: ALB target health per service with a
/// `target_group_arn` or `target_health = true` (without an ARN, of every target group the
/// ECS service is attached to), SES account / identities / test send, ACM certificates,
/// Route53 records. A check whose service was compiled out (cargo feature) is skipped with a
/// warning.
pub fn probes_from_settings(
    ctx: &AwsContext,
    env: &AwsEnvironmentSettings,
    services: &BTreeMap<String, EcsServiceSettings>,
) -> Vec<DynProbe> {
    let mut probes: Vec<DynProbe> = vec![];
    for (name, s) in services {
        if !s.checks_target_health() {
            continue;
        }
        match &s.target_group_arn {
            Some(arn) => {
                #[cfg(feature = "elb")]
                probes.push(Arc::new(TargetHealthProbe::new(
                    format!("alb targets of {name}"),
                    ctx.clone(),
                    arn,
                )));
                #[cfg(not(feature = "elb"))]
                tracing::warn!(service = %name, target_group = %arn, "built without the `elb` feature: target health not checked");
            }
            None => {
                #[cfg(all(feature = "elb", feature = "ecs"))]
                probes.push(Arc::new(TargetHealthProbe::of_ecs_service(
                    format!("alb targets of {name}"),
                    ctx.clone(),
                    name,
                    &s.cluster,
                    &s.service,
                )));
                #[cfg(not(all(feature = "elb", feature = "ecs")))]
                tracing::warn!(service = %name, "built without the `elb` or `ecs` feature: the target groups of the ECS service cannot be read, target health not checked (set `target_group_arn` to check one with `elb` alone)");
            }
        }
    }
    if let Some(ses) = &env.ses {
        #[cfg(feature = "ses")]
        {
            probes.push(Arc::new(SesAccountProbe::new(
                "ses account",
                ctx.clone(),
                ses.require_production_access,
            )));
            for identity in &ses.identities {
                probes.push(Arc::new(SesIdentityProbe::new(
                    format!("ses identity {identity}"),
                    ctx.clone(),
                    identity,
                    ses.require_dkim,
                )));
            }
            if let Some(to) = &ses.test_recipient {
                let from = ses
                    .test_from
                    .clone()
                    .or_else(|| ses.identities.iter().find(|i| i.contains('@')).cloned());
                if let Some(from) = from {
                    probes.push(Arc::new(SesTestSendProbe::new(
                        format!("ses test send to {to}"),
                        ctx.clone(),
                        from,
                        to,
                    )));
                }
            }
        }
        #[cfg(not(feature = "ses"))]
        tracing::warn!(identities = ?ses.identities, "built without the `ses` feature: SES not checked");
    }
    for cert in &env.acm {
        #[cfg(feature = "acm")]
        {
            let ctx = match &cert.region {
                Some(region) if Some(region.as_str()) != ctx.region() => {
                    AwsContext::from_env(Some(region.clone()), None)
                }
                _ => ctx.clone(),
            };
            probes.push(Arc::new(CertificateProbe::new(
                format!("acm certificate {}", cert.domain),
                ctx,
                &cert.domain,
                cert.certificate_arn.clone(),
                cert.min_days_valid,
            )));
        }
        #[cfg(not(feature = "acm"))]
        tracing::warn!(domain = %cert.domain, "built without the `acm` feature: certificate not checked");
    }
    for r in &env.route53 {
        #[cfg(feature = "route53")]
        {
            let expect = match &r.alias_target {
                Some(target) => RecordExpectation::Alias(target.clone()),
                None => RecordExpectation::Values(r.values.clone()),
            };
            probes.push(Arc::new(RecordProbe::new(
                format!("route53 {} {}", r.name, r.record_type),
                ctx.clone(),
                &r.zone,
                &r.name,
                &r.record_type,
                expect,
            )));
        }
        #[cfg(not(feature = "route53"))]
        tracing::warn!(record = %r.name, "built without the `route53` feature: record not checked");
    }
    probes
}
