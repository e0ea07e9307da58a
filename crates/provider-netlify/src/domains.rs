//! The custom-domain check: a smoke probe per domain a service's settings name
//! (`custom_domains`), which passes only when the domain is the site's custom domain or one
//! of its aliases on Netlify and the site's TLS certificate covers it (Netlify issues it
//! once the domain's DNS points at the site). Reads only: Netlify has no "check the DNS
//! again" call besides provisioning a certificate, which this check leaves to the dashboard.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use reqwest::Method;
use staging_core::spec::DomainName;
use staging_core::{Error, Probe, ProbeOutcome, Provider, Result};

use crate::models::SiteCertificate;
use crate::provider::NetlifyProvider;

/// The address Netlify's documentation gives for an apex domain's `A` record (its load
/// balancer), when the DNS host cannot `ALIAS`/`ANAME`.
pub const NETLIFY_APEX_A_RECORD: &str = "75.2.60.5";

/// Checks that one custom domain is on a Netlify site and covered by its certificate.
#[derive(Debug)]
pub struct NetlifyDomainProbe {
    name: String,
    provider: Arc<NetlifyProvider>,
    environment: String,
    service: String,
    domain: DomainName,
}

impl NetlifyDomainProbe {
    /// The check of `domain` on the site of `service` (the spec's name) in `environment`.
    pub fn new(
        provider: Arc<NetlifyProvider>,
        environment: &str,
        service: &str,
        domain: DomainName,
    ) -> Self {
        NetlifyDomainProbe {
            name: format!("custom domain {domain} ({service})"),
            provider,
            environment: environment.to_owned(),
            service: service.to_owned(),
            domain,
        }
    }
}

impl NetlifyProvider {
    /// The site's TLS certificate, or `None` when it has none yet.
    pub(crate) async fn site_certificate(&self, site_id: &str) -> Result<Option<SiteCertificate>> {
        let req = self.client.request(
            Method::GET,
            self.client.endpoint(&["sites", site_id, "ssl"]),
        );
        match self.client.json("showSiteTLSCertificate", req).await {
            Ok(cert) => Ok(Some(cert)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Whether a certificate name (`*.example.com` or a host) covers `domain`.
fn covers(name: &str, domain: &str) -> bool {
    match name.strip_prefix("*.") {
        Some(parent) => domain
            .split_once('.')
            .is_some_and(|(_, rest)| rest == parent),
        None => name == domain,
    }
}

#[async_trait]
impl Probe for NetlifyDomainProbe {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "custom_domain"
    }

    async fn run(&self) -> Result<ProbeOutcome> {
        let started = Instant::now();
        let domain = self.domain.as_str();
        let expected = format!(
            "{domain} a domain of {}'s site and covered by its certificate on Netlify",
            self.service
        );
        let handle = self
            .provider
            .locate(&self.environment, &self.service)
            .await?;
        let site = self.provider.site(&handle.id).await?;
        let site_name = site.name.clone().unwrap_or_else(|| handle.id.clone());
        let mut names: Vec<&str> = site.custom_domain.as_deref().into_iter().collect();
        names.extend(site.domain_aliases.iter().map(String::as_str));
        if !names.contains(&domain) {
            return Ok(ProbeOutcome::fail(
                expected,
                format!(
                    "{domain} is not a domain of site {site_name} on Netlify{}: add it (Domain management, or the site's `domain_aliases`), then create the DNS record Netlify shows",
                    if names.is_empty() {
                        " (the site has no custom domain)".to_owned()
                    } else {
                        format!(" (it has {})", names.join(", "))
                    }
                ),
                started.elapsed(),
            ));
        }
        let cert = self.provider.site_certificate(&handle.id).await?;
        let covered = cert.as_ref().is_some_and(|c| {
            c.state.as_deref() == Some("issued") && c.domains.iter().any(|n| covers(n, domain))
        });
        if covered {
            return Ok(ProbeOutcome::pass(
                expected,
                "on the site; its certificate covers it",
                started.elapsed(),
            ));
        }
        let host = format!("{site_name}.netlify.app");
        let record = if domain.matches('.').count() == 1 {
            format!(
                "create `{domain} ALIAS apex-loadbalancer.netlify.com` (or `ANAME`), or `{domain} A {NETLIFY_APEX_A_RECORD}` where the DNS host has no ALIAS"
            )
        } else {
            format!("create `{domain} CNAME {host}`")
        };
        let cert_state = match &cert {
            None => "the site has no certificate yet".to_owned(),
            Some(c) => format!(
                "the site's certificate ({}) covers {}",
                c.state.as_deref().unwrap_or("no state"),
                if c.domains.is_empty() {
                    "no domain".to_owned()
                } else {
                    c.domains.join(", ")
                }
            ),
        };
        Ok(ProbeOutcome::fail(
            expected,
            format!("{domain} is on the site but not verified ({cert_state}): {record}"),
            started.elapsed(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::covers;

    #[test]
    fn a_wildcard_covers_one_label_only() {
        assert!(covers("www.example.com", "www.example.com"));
        assert!(covers("*.example.com", "www.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("*.example.com", "a.b.example.com"));
        assert!(!covers("example.com", "www.example.com"));
    }
}
