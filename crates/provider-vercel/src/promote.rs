//! The staged production flow: a production deployment built without taking the domains,
//! smoked at its own URL, then promoted and verified again.
//!
//! Domains are held back with the project's `autoAssignCustomDomains = false` (the create
//! call has no such field in Vercel's published contract). Promote is known to turn that
//! setting back on (vercel/vercel #15095), so afterwards it is read again and restored to
//! what it was before the run.

use std::future::Future;
use std::time::Duration;

use staging_core::{
    DeployRequest, DeployStatus, Error, Provider, ProviderExt, Result, ServiceHandle, WriteTarget,
};

use crate::provider::{VercelProvider, project_of};

/// What a staged promote did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StagedPromote {
    /// The deployment now serving production.
    pub deployment_id: String,
    /// The deployment's own URL, where the smoke checks ran.
    pub url: url::Url,
    /// `autoAssignCustomDomains` before the run (and after it).
    pub auto_assign_before: bool,
    /// Whether promote had changed `autoAssignCustomDomains` and it was set back.
    pub auto_assign_restored: bool,
}

impl VercelProvider {
    /// Deploys `commit` to production without assigning the production domains, waits until
    /// READY, verifies its commit, runs `smoke` against the deployment's URL, promotes it,
    /// verifies that production now points at it, and leaves `autoAssignCustomDomains` as it
    /// was. When the deploy or the smoke fails, nothing is promoted and the setting is
    /// restored.
    pub async fn promote_staged<F, Fut>(
        &self,
        service: &WriteTarget,
        commit: &str,
        timeout: Duration,
        smoke: F,
    ) -> Result<StagedPromote>
    where
        F: FnOnce(url::Url) -> Fut + Send,
        Fut: Future<Output = Result<()>> + Send,
    {
        if *self.target() != crate::Target::Production {
            return Err(Error::failed(
                "a staged promote deploys to production; this environment's target is not production",
            ));
        }
        let before = self.auto_assign_custom_domains(service).await?;
        if before {
            self.set_auto_assign_custom_domains(service, false).await?;
        }
        let staged = self.stage(service, commit, timeout, smoke).await;
        let promoted = match staged {
            Ok((id, url)) => match self.promote(service, &id).await {
                Ok(()) => Ok((id, url)),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        // Whatever happened, the project's setting goes back to what it was.
        let now = self.auto_assign_custom_domains(service).await?;
        let restored = now != before;
        if restored {
            self.set_auto_assign_custom_domains(service, before).await?;
        }
        let (id, url) = promoted?;
        self.wait_for_production(service, &id, commit, timeout)
            .await?;
        Ok(StagedPromote {
            deployment_id: id,
            url,
            auto_assign_before: before,
            auto_assign_restored: restored,
        })
    }

    async fn stage<F, Fut>(
        &self,
        service: &WriteTarget,
        commit: &str,
        timeout: Duration,
        smoke: F,
    ) -> Result<(String, url::Url)>
    where
        F: FnOnce(url::Url) -> Fut + Send,
        Fut: Future<Output = Result<()>> + Send,
    {
        let d = self.deploy(service, &DeployRequest::commit(commit)).await?;
        let ready = self
            .wait_until_live(service, &d.id, timeout, &mut |_| {})
            .await?;
        if ready.status != DeployStatus::Live {
            return Err(Error::failed(format!(
                "{}: staged deployment {} ended {}",
                service.name, d.id, ready.raw_status
            )));
        }
        match ready.commit.as_deref() {
            Some(c) if staging_core::pipeline::commits_match(c, commit) => {}
            other => {
                return Err(Error::failed(format!(
                    "{}: deployment {} was built from commit {}, not {commit}",
                    service.name,
                    d.id,
                    other.unwrap_or("unknown")
                )));
            }
        }
        let url = self.deployment_url(&d.id).await?;
        smoke(url.clone()).await?;
        Ok((d.id, url))
    }

    /// Polls (bounded) until the production domains point at `id`, then verifies it.
    pub(crate) async fn wait_for_production(
        &self,
        service: &ServiceHandle,
        id: &str,
        commit: &str,
        timeout: Duration,
    ) -> Result<()> {
        staging_core::poll_until(
            &staging_core::Cadence::for_provider(self),
            timeout,
            || "the production domains to point at the promoted deployment".to_owned(),
            || async { Ok(self.project(project_of(service)).await?.production_id() == Some(id)) },
            |pointed: bool, _| {
                Ok(if pointed {
                    staging_core::retry::Next::Done(())
                } else {
                    staging_core::retry::Next::Again("pointing elsewhere".to_owned())
                })
            },
        )
        .await?;
        self.verify_deployment(service, id, commit).await.map(drop)
    }
}
