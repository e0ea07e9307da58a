//! The custom-domain check: a smoke probe per domain a service's settings name
//! (`custom_domains`), which passes only when Render has the domain on that service and has
//! verified its DNS. An unverified domain is re-checked once (Render's `verify` call, the
//! dashboard's "Verify" button) before the probe fails naming the DNS record to create.

use std::time::Instant;

use async_trait::async_trait;
use staging_core::spec::DomainName;
use staging_core::{Probe, ProbeOutcome, Provider, Result, ServiceHandle};

use crate::model::CustomDomain;
use crate::provider::RenderProvider;

/// The address Render's documentation gives for an apex domain's `A` record (its load
/// balancer), when the DNS host cannot `ALIAS`/`ANAME` to the service's host.
pub const RENDER_APEX_A_RECORD: &str = "216.24.57.1";

/// Checks that one custom domain is added to a service and verified on Render.
#[derive(Debug)]
pub struct CustomDomainProbe {
    name: String,
    provider: RenderProvider,
    environment: String,
    service: String,
    domain: DomainName,
}

impl CustomDomainProbe {
    /// The check of `domain` on `service` (the spec's name) of `environment`.
    pub fn new(
        provider: RenderProvider,
        environment: &str,
        service: &str,
        domain: DomainName,
    ) -> Self {
        CustomDomainProbe {
            name: format!("custom domain {domain} ({service})"),
            provider,
            environment: environment.to_owned(),
            service: service.to_owned(),
            domain,
        }
    }

    /// The DNS record Render expects for `domain`: a `CNAME` to the service's own host for
    /// a subdomain, an `ALIAS`/`ANAME` to it (or `A` to Render's address) for an apex.
    fn record(&self, domain: &CustomDomain, host: Option<&str>) -> String {
        let host = host.unwrap_or("the service's onrender.com host");
        match domain.domain_type.as_deref() {
            Some("apex") => format!(
                "create `{name} ALIAS {host}` (or `ANAME`), or `{name} A {RENDER_APEX_A_RECORD}` where the DNS host has no ALIAS",
                name = domain.name
            ),
            _ => format!("create `{} CNAME {host}`", domain.name),
        }
    }

    async fn host_of(&self, handle: &ServiceHandle) -> Option<String> {
        let state = self.provider.live_state(handle).await.ok()?;
        state.url?.host_str().map(str::to_owned)
    }
}

#[async_trait]
impl Probe for CustomDomainProbe {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "custom_domain"
    }

    async fn run(&self) -> Result<ProbeOutcome> {
        let started = Instant::now();
        let expected = format!(
            "{} added to {} and verified on Render",
            self.domain, self.service
        );
        let handle = self
            .provider
            .locate(&self.environment, &self.service)
            .await?;
        let domains = self.provider.custom_domains(&handle).await?;
        let Some(found) = domains.iter().find(|d| d.name == self.domain.as_str()) else {
            let others: Vec<&str> = domains.iter().map(|d| d.name.as_str()).collect();
            return Ok(ProbeOutcome::fail(
                expected,
                format!(
                    "{} is not added to {} ({}) on Render{}: add it to the service (dashboard, or `POST /services/{}/custom-domains`), then create the DNS record Render shows",
                    self.domain,
                    self.service,
                    handle.id,
                    if others.is_empty() {
                        " (the service has no custom domain)".to_owned()
                    } else {
                        format!(" (it has {})", others.join(", "))
                    },
                    handle.id
                ),
                started.elapsed(),
            ));
        };
        if found.is_verified() {
            return Ok(ProbeOutcome::pass(expected, "verified", started.elapsed())
                .with_evidence("custom_domain", found.id.clone()));
        }
        // Ask Render to look at the DNS again (the record may have been created since), then
        // read what it concluded.
        self.provider
            .verify_custom_domain(&handle, &found.id)
            .await?;
        let again = self.provider.custom_domain(&handle, &found.id).await?;
        if again.is_verified() {
            return Ok(ProbeOutcome::pass(
                expected,
                "verified after a re-check",
                started.elapsed(),
            )
            .with_evidence("custom_domain", again.id.clone()));
        }
        let host = self.host_of(&handle).await;
        Ok(ProbeOutcome::fail(
            expected,
            format!(
                "{} is not verified on Render (checked again just now): {}",
                again.name,
                self.record(&again, host.as_deref())
            ),
            started.elapsed(),
        )
        .with_evidence("custom_domain", again.id.clone()))
    }
}
