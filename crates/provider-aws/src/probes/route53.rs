//! A Route53 record points where the spec says.

use std::time::Instant;

use aws_sdk_route53::types::RrType;
use staging_core::{Error, Probe, ProbeOutcome, Result, async_trait};

use crate::context::AwsContext;
use crate::error::map_sdk_error;

/// What a record must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordExpectation {
    /// An alias to this DNS name (an ALB's; `dualstack.` and case are ignored).
    Alias(String),
    /// Exactly these values, in any order.
    Values(Vec<String>),
}

/// The record `name`/`type` of a hosted zone holds what is expected.
#[derive(Debug, Clone)]
pub struct RecordProbe {
    name: String,
    ctx: AwsContext,
    zone: String,
    record: String,
    record_type: String,
    expect: RecordExpectation,
}

impl RecordProbe {
    /// A probe of record `record` (type `record_type`) in zone `zone` (a name or a zone id).
    pub fn new(
        name: impl Into<String>,
        ctx: AwsContext,
        zone: impl Into<String>,
        record: impl Into<String>,
        record_type: impl Into<String>,
        expect: RecordExpectation,
    ) -> Self {
        RecordProbe {
            name: name.into(),
            ctx,
            zone: zone.into(),
            record: record.into(),
            record_type: record_type.into().to_ascii_uppercase(),
            expect,
        }
    }

    async fn zone_id(&self, client: &aws_sdk_route53::Client) -> Result<Option<String>> {
        if !self.zone.contains('.') {
            return Ok(Some(
                self.zone.trim_start_matches("/hostedzone/").to_owned(),
            ));
        }
        let out = client
            .list_hosted_zones_by_name()
            .dns_name(&self.zone)
            .max_items(10)
            .send()
            .await
            .map_err(|e| map_sdk_error("route53:ListHostedZonesByName", e))?;
        let wanted = fqdn(&self.zone);
        let mut zones = out
            .hosted_zones()
            .iter()
            .filter(|z| fqdn(z.name()) == wanted);
        // A public zone is what the internet resolves; prefer it over a private one of the same name.
        let zone = zones
            .clone()
            .find(|z| !z.config().is_some_and(|c| c.private_zone()))
            .or_else(|| zones.next());
        Ok(zone.map(|z| z.id().trim_start_matches("/hostedzone/").to_owned()))
    }
}

fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.').to_ascii_lowercase())
}

fn alias_name(name: &str) -> String {
    let n = fqdn(name);
    n.strip_prefix("dualstack.").map(str::to_owned).unwrap_or(n)
}

#[async_trait]
impl Probe for RecordProbe {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "aws.route53_record"
    }

    async fn run(&self) -> Result<ProbeOutcome> {
        let started = Instant::now();
        let expected = match &self.expect {
            RecordExpectation::Alias(target) => {
                format!("{} {} alias to {}", self.record, self.record_type, target)
            }
            RecordExpectation::Values(v) => {
                format!("{} {} = {}", self.record, self.record_type, v.join(", "))
            }
        };
        let client = self.ctx.route53().await;
        let Some(zone_id) = self.zone_id(&client).await? else {
            return Ok(ProbeOutcome::fail(
                expected,
                format!("no hosted zone named {}", self.zone),
                started.elapsed(),
            ));
        };
        let out = match client
            .list_resource_record_sets()
            .hosted_zone_id(&zone_id)
            .start_record_name(&self.record)
            .start_record_type(RrType::from(self.record_type.as_str()))
            .max_items(5)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => match map_sdk_error("route53:ListResourceRecordSets", e) {
                Error::NotFound { what } => {
                    return Ok(ProbeOutcome::fail(expected, what, started.elapsed()));
                }
                other => return Err(other),
            },
        };
        let wanted = fqdn(&self.record);
        let record = out
            .resource_record_sets()
            .iter()
            .find(|r| fqdn(r.name()) == wanted && r.r#type().as_str() == self.record_type);
        let elapsed = started.elapsed();
        let Some(record) = record else {
            return Ok(ProbeOutcome::fail(
                expected,
                format!("no {} record named {}", self.record_type, self.record),
                elapsed,
            )
            .with_evidence("zone_id", zone_id));
        };
        let alias = record.alias_target().map(|a| a.dns_name().to_owned());
        let mut values: Vec<String> = record
            .resource_records()
            .iter()
            .map(|r| r.value().to_owned())
            .collect();
        values.sort();
        let observed = match &alias {
            Some(a) => format!("alias to {a}"),
            None => format!("values {}", values.join(", ")),
        };
        let ok = match &self.expect {
            RecordExpectation::Alias(target) => alias
                .as_deref()
                .is_some_and(|a| alias_name(a) == alias_name(target)),
            RecordExpectation::Values(want) => {
                let mut want = want.clone();
                want.sort();
                alias.is_none() && want == values
            }
        };
        let outcome = if ok {
            ProbeOutcome::pass(expected, observed, elapsed)
        } else {
            ProbeOutcome::fail(expected, observed, elapsed)
        };
        Ok(outcome.with_evidence("zone_id", zone_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_names_ignore_case_trailing_dot_and_dualstack() {
        assert_eq!(
            alias_name("dualstack.My-ALB-1.us-east-1.elb.amazonaws.com."),
            alias_name("my-alb-1.us-east-1.elb.amazonaws.com")
        );
        assert_ne!(
            alias_name("other.elb.amazonaws.com"),
            alias_name("my-alb.elb.amazonaws.com")
        );
    }
}
