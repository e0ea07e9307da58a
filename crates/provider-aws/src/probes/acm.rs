//! An ACM certificate for a domain is ISSUED and not close to expiry.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_acm::types::{CertificateStatus, Filters, KeyAlgorithm};
use staging_core::{Error, Probe, ProbeOutcome, Result, async_trait};

use crate::context::AwsContext;
use crate::error::map_sdk_error;

/// The certificate for `domain` is `ISSUED` and valid for at least `min_days_valid` more days.
#[derive(Debug, Clone)]
pub struct CertificateProbe {
    name: String,
    ctx: AwsContext,
    domain: String,
    certificate_arn: Option<String>,
    min_days_valid: u32,
}

impl CertificateProbe {
    /// A probe of the certificate for `domain` (found by name, or given by ARN).
    pub fn new(
        name: impl Into<String>,
        ctx: AwsContext,
        domain: impl Into<String>,
        certificate_arn: Option<String>,
        min_days_valid: u32,
    ) -> Self {
        CertificateProbe {
            name: name.into(),
            ctx,
            domain: domain.into(),
            certificate_arn,
            min_days_valid,
        }
    }

    /// The ARNs of certificates whose name or SANs cover the domain, issued ones first.
    async fn find(&self, client: &aws_sdk_acm::Client) -> Result<Vec<String>> {
        let all_keys = [
            KeyAlgorithm::Rsa1024,
            KeyAlgorithm::Rsa2048,
            KeyAlgorithm::Rsa3072,
            KeyAlgorithm::Rsa4096,
            KeyAlgorithm::EcPrime256v1,
            KeyAlgorithm::EcSecp384r1,
            KeyAlgorithm::EcSecp521r1,
        ];
        let filters = Filters::builder()
            .set_key_types(Some(all_keys.to_vec()))
            .build();
        let mut found = vec![];
        let mut next: Option<String> = None;
        for _ in 0..20 {
            let out = client
                .list_certificates()
                .includes(filters.clone())
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| map_sdk_error("acm:ListCertificates", e))?;
            for c in out.certificate_summary_list() {
                let names = c.domain_name().into_iter().chain(
                    c.subject_alternative_name_summaries()
                        .iter()
                        .map(String::as_str),
                );
                if names.into_iter().any(|n| covers(n, &self.domain)) {
                    let issued = c.status() == Some(&CertificateStatus::Issued);
                    found.push((!issued, c.certificate_arn().unwrap_or_default().to_owned()));
                }
            }
            match out.next_token() {
                Some(t) => next = Some(t.to_owned()),
                None => break,
            }
        }
        found.sort();
        Ok(found.into_iter().map(|(_, arn)| arn).collect())
    }
}

/// Whether a certificate name (possibly `*.example.com`) covers `domain`.
fn covers(name: &str, domain: &str) -> bool {
    let (name, domain) = (
        name.trim_end_matches('.').to_ascii_lowercase(),
        domain.trim_end_matches('.').to_ascii_lowercase(),
    );
    if let Some(suffix) = name.strip_prefix("*.") {
        return domain
            .split_once('.')
            .is_some_and(|(_, rest)| rest == suffix);
    }
    name == domain
}

#[async_trait]
impl Probe for CertificateProbe {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "aws.acm_certificate"
    }

    async fn run(&self) -> Result<ProbeOutcome> {
        let started = Instant::now();
        let expected = format!(
            "certificate for {} ISSUED, valid at least {} more days",
            self.domain, self.min_days_valid
        );
        let client = self.ctx.acm().await;
        let candidates = match &self.certificate_arn {
            Some(arn) => vec![arn.clone()],
            None => self.find(&client).await?,
        };
        let Some(arn) = candidates.first() else {
            return Ok(ProbeOutcome::fail(
                expected,
                format!("no ACM certificate covers {}", self.domain),
                started.elapsed(),
            ));
        };
        let detail = match client
            .describe_certificate()
            .certificate_arn(arn)
            .send()
            .await
        {
            Ok(out) => out.certificate().cloned(),
            Err(e) => match map_sdk_error("acm:DescribeCertificate", e) {
                Error::NotFound { .. } => None,
                other => return Err(other),
            },
        };
        let Some(cert) = detail else {
            return Ok(ProbeOutcome::fail(
                expected,
                format!("certificate {arn} not found"),
                started.elapsed(),
            ));
        };
        let status = cert
            .status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|| "UNKNOWN".into());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let days_left = cert
            .not_after()
            .map(|t| (t.secs() - now).div_euclid(86_400));
        let elapsed = started.elapsed();
        let observed = format!(
            "{status}, {}",
            match days_left {
                Some(d) if d < 0 => format!("expired {} days ago", -d),
                Some(d) => format!("{d} days left"),
                None => "no expiry date".to_owned(),
            }
        );
        let ok =
            status == "ISSUED" && days_left.is_some_and(|d| d >= i64::from(self.min_days_valid));
        let outcome = if ok {
            ProbeOutcome::pass(expected, observed, elapsed)
        } else {
            ProbeOutcome::fail(expected, observed, elapsed)
        };
        let mut outcome = outcome.with_evidence("certificate_arn", arn);
        if let Some(t) = cert.not_after() {
            outcome = outcome.with_evidence("not_after", t.to_string());
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::covers;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(covers("staging.example.com", "staging.example.com"));
        assert!(covers("*.example.com", "staging.example.com"));
        assert!(!covers("*.example.com", "a.staging.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(covers("Staging.Example.com.", "staging.example.com"));
    }
}
