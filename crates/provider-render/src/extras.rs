//! What Render can do beyond the [`staging_core::Provider`] trait: custom domains, one-off
//! jobs, a wait that cancels the deploy when asked to, and the logs of a failed deploy.

use std::future::Future;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use staging_core::{
    Cadence, Deploy, Error, Next, ProviderExt, Result, ServiceHandle, WriteTarget, poll_until,
};

use crate::client::Pace;
use crate::model::{CustomDomain, CustomDomainItem, Job, RawJob};
use crate::provider::RenderProvider;

impl RenderProvider {
    /// The custom domains of a service, with their verification status.
    pub async fn custom_domains(&self, service: &ServiceHandle) -> Result<Vec<CustomDomain>> {
        let items: Vec<CustomDomainItem> = self
            .client()
            .list_all(
                &["services", &service.id, "custom-domains"],
                &[],
                &format!("custom domains of {}", service.name),
            )
            .await?;
        Ok(items.into_iter().map(|i| i.custom_domain).collect())
    }

    /// One custom domain, by id or name.
    pub async fn custom_domain(
        &self,
        service: &ServiceHandle,
        domain: &str,
    ) -> Result<CustomDomain> {
        self.client()
            .get(
                &["services", &service.id, "custom-domains", domain],
                &[],
                &format!("custom domain {domain} of {}", service.name),
            )
            .await
    }

    /// Asks Render to check the domain's DNS again (it answers at once; read the domain
    /// later to see the outcome).
    pub async fn verify_custom_domain(&self, service: &ServiceHandle, domain: &str) -> Result<()> {
        self.client()
            .send(
                Method::POST,
                &["services", &service.id, "custom-domains", domain, "verify"],
                &[],
                None,
                Pace::Write,
                &format!("custom domain {domain} of {}", service.name),
            )
            .await?;
        Ok(())
    }

    /// Starts a one-off job running `command` on the service, with the service's own image
    /// and environment (a migration, say).
    pub async fn run_job(&self, service: &WriteTarget, command: &str) -> Result<Job> {
        let raw: RawJob = self
            .client()
            .write(
                Method::POST,
                &["services", &service.id, "jobs"],
                &json!({ "startCommand": command }),
                Pace::Write,
                &format!("job on {}", service.name),
            )
            .await?;
        Ok(raw.into())
    }

    /// The current state of a job.
    pub async fn job(&self, service: &ServiceHandle, job_id: &str) -> Result<Job> {
        let raw: RawJob = self
            .client()
            .get(
                &["services", &service.id, "jobs", job_id],
                &[],
                &format!("job {job_id} of {}", service.name),
            )
            .await?;
        Ok(raw.into())
    }

    /// Polls a job until it has finished, at the cadence of the read budget, honouring rate limits, bounded by
    /// `timeout`. Returns the job when it succeeded; [`Error::Failed`] when it failed or was
    /// canceled.
    pub async fn wait_for_job(
        &self,
        service: &ServiceHandle,
        job_id: &str,
        timeout: Duration,
    ) -> Result<Job> {
        poll_until(
            &Cadence::for_provider(self),
            timeout,
            || format!("job {job_id} on {} to finish", service.name),
            || self.job(service, job_id),
            |job, _| match job.status {
                crate::JobStatus::Succeeded => Ok(Next::Done(job)),
                status if status.is_terminal() => Err(Error::failed(format!(
                    "job {} (`{}`) on {} ended {status:?}",
                    job.id, job.command, service.name
                ))),
                status => Ok(Next::Again(format!("{status:?}"))),
            },
        )
        .await
    }

    /// Runs `command` as a one-off job and waits for it to succeed.
    pub async fn run_job_and_wait(
        &self,
        service: &WriteTarget,
        command: &str,
        timeout: Duration,
    ) -> Result<Job> {
        let job = self.run_job(service, command).await?;
        self.wait_for_job(service, &job.id, timeout).await
    }

    /// [`ProviderExt::wait_until_live`], but when `cancel` completes first (Ctrl-C, when the
    /// user asked for it) the deploy is canceled on Render and [`Error::Failed`] returned.
    pub async fn wait_until_live_or_cancel(
        &self,
        service: &WriteTarget,
        deploy_id: &str,
        timeout: Duration,
        cancel: impl Future<Output = ()> + Send,
    ) -> Result<Deploy> {
        let mut ignore_progress = |_: staging_core::WaitProgress<'_>| {};
        tokio::select! {
            out = self.wait_until_live(service, deploy_id, timeout, &mut ignore_progress) => out,
            () = cancel => {
                let d = self.cancel_deploy(service, deploy_id).await?;
                Err(Error::failed(format!("deploy {} of {} was canceled on request ({})", d.id, service.name, d.raw_status)))
            }
        }
    }

    /// The last `lines` log lines written during a deploy (its build and start), oldest
    /// first: what to show when a deploy failed.
    pub async fn deploy_logs(
        &self,
        service: &ServiceHandle,
        deploy_id: &str,
        lines: usize,
    ) -> Result<Vec<String>> {
        self.recent_logs(service, Some(deploy_id), lines).await
    }
}
