//! Retry with exponential backoff, bounded by a deadline, honouring `Retry-After`; and
//! [`RetryProvider`], the decorator that gives every provider that behaviour for free.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use tokio::time::Instant;

use crate::boundary::WriteTarget;
use crate::cadence::{Cadence, Pacer};
use crate::error::{Error, Result};
use crate::provider::{
    Cancel, Capabilities, Deploy, DeployKinds, DeployRequest, EnvVars, EnvironmentSetup, LiveState,
    LogLine, LogQuery, Logs, Pacing, Provider, ProviderExt, Rollback, ServiceHandle,
};

/// Exponential backoff between `initial` and `max`, doubling each step, with a little jitter
/// so that many waiters do not poll in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
    step: u32,
}

impl Backoff {
    /// A backoff starting at `initial` and never exceeding `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            next: initial.max(Duration::from_millis(1)),
            max: max.max(initial),
            step: 0,
        }
    }

    /// The delay to wait now; each call doubles the next one up to the maximum.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        self.step = self.step.wrapping_add(1);
        // Deterministic jitter of up to 1/8 of the delay: spreads pollers without a RNG.
        let jitter = base / 8 * (self.step.wrapping_mul(2_654_435_761) % 8) / 8;
        (base + jitter).min(self.max)
    }
}

/// What `decide` makes of one answer of a [`poll_until`] loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next<T> {
    /// The wait is over.
    Done(T),
    /// Ask again; the platform's word for where the thing is (`build_in_progress`), which
    /// the cadence watches for long unchanged phases.
    Again(String),
}

/// Ask with `ask` until `decide` says the answer is the end, at the steady interval of
/// `cadence` (see [`crate::cadence`]): stretched only while a phase stays unchanged for
/// long, and after a retryable error (its `Retry-After` when it has one, else a backoff);
/// any other error is returned at once. Gives up with [`Error::Timeout`] (on `what`) after
/// `timeout`. `decide` sees each answer and how long the wait has lasted: `Ok(Next::Done)`
/// ends the wait, `Ok(Next::Again)` asks again, `Err` ends it with that error. Every
/// bounded wait for a remote state (a deploy going live, a job finishing) is this.
pub async fn poll_until<A, T, F>(
    cadence: &Cadence,
    timeout: Duration,
    what: impl FnOnce() -> String,
    mut ask: impl FnMut() -> F,
    mut decide: impl FnMut(A, Duration) -> Result<Next<T>>,
) -> Result<T>
where
    F: Future<Output = Result<A>>,
{
    let what = what();
    let started = Instant::now();
    let mut pacer = Pacer::new(cadence, what.clone());
    // The last state the platform reported: a timeout says where the wait stood.
    let mut last: Option<String> = None;
    loop {
        let delay = match ask().await {
            Ok(answer) => match decide(answer, started.elapsed())? {
                Next::Done(done) => return Ok(done),
                Next::Again(phase) => {
                    let delay = pacer.after_answer(&phase);
                    last = Some(phase);
                    delay
                }
            },
            Err(e) if e.is_retryable() => pacer.after_error(&e),
            Err(e) => return Err(e),
        };
        let elapsed = started.elapsed();
        if elapsed >= timeout {
            return Err(Error::Timeout {
                what: match last.filter(|l| !l.is_empty()) {
                    Some(last) => format!("{what} (still `{last}`)"),
                    None => what,
                },
                after: timeout,
            });
        }
        tokio::time::sleep(delay.min(timeout - elapsed)).await;
    }
}

/// How a retried call behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First delay.
    pub initial: Duration,
    /// Largest delay between two attempts.
    pub max_delay: Duration,
    /// Give up once this much time has passed since the first attempt.
    pub deadline: Duration,
    /// Give up after this many attempts in all.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
            deadline: Duration::from_secs(60),
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// Run `op` until it succeeds, fails with a non-retryable error, or the policy's bounds
    /// run out. A `Retry-After` from the error is honoured when it fits before the deadline;
    /// when it does not, the rate-limit error is returned at once instead of sleeping past the
    /// deadline.
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send,
        T: Send,
    {
        self.run_when(op, Error::is_retryable).await
    }

    /// Like [`RetryPolicy::run`], retrying only the errors `should_retry` accepts.
    pub async fn run_when<T, F, Fut>(
        &self,
        mut op: F,
        should_retry: fn(&Error) -> bool,
    ) -> Result<T>
    where
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send,
        T: Send,
    {
        let started = Instant::now();
        let mut backoff = Backoff::new(self.initial, self.max_delay);
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if should_retry(&e) && attempt < self.max_attempts => {
                    let delay = e.retry_after().unwrap_or_else(|| backoff.next_delay());
                    if started.elapsed() + delay > self.deadline {
                        return Err(e);
                    }
                    tracing::debug!(attempt, ?delay, error = %e, "retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// A provider decorator that retries the *reads* of a provider as whole calls under a
/// [`RetryPolicy`].
///
/// Writes (deploy, rollback, cancel, variables, environment preparation) are forwarded
/// untouched, never retried as a whole: a write method may read before or after it writes,
/// and a retried read failure inside it would send the write again (a 429 on a status read
/// re-sent Railway's deploy mutation). Whether one request of a write may be sent again is
/// decided where the request is sent (`staging_rest::Safety`), and an ambiguous failure is
/// read back by the provider before anything is re-sent.
#[derive(Debug)]
pub struct RetryProvider<P> {
    inner: P,
    policy: RetryPolicy,
}

impl<P: Provider> RetryProvider<P> {
    /// Wrap `inner` with `policy`.
    pub fn new(inner: P, policy: RetryPolicy) -> Self {
        RetryProvider { inner, policy }
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &P {
        &self.inner
    }
}

#[async_trait]
impl<P: Provider> Provider for RetryProvider<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn pacing(&self) -> Pacing {
        self.inner.pacing()
    }
    /// Exactly the inner provider's capabilities, each answered by this decorator (so its
    /// reads are retried): a capability the inner provider lacks is absent here too.
    fn capabilities(&self) -> Capabilities<'_> {
        Capabilities::mirrored(self.inner.capabilities(), self)
    }
    fn deploy_kinds(&self, service: &str) -> DeployKinds {
        self.inner.deploy_kinds(service)
    }
    async fn locate(&self, environment: &str, service: &str) -> Result<ServiceHandle> {
        self.policy
            .run(|| self.inner.locate(environment, service))
            .await
    }
    async fn live_state(&self, service: &ServiceHandle) -> Result<LiveState> {
        self.policy.run(|| self.inner.live_state(service)).await
    }
    async fn deploy(&self, service: &WriteTarget, request: &DeployRequest) -> Result<Deploy> {
        self.inner.deploy(service, request).await
    }
    async fn deploy_status(&self, service: &ServiceHandle, deploy_id: &str) -> Result<Deploy> {
        self.policy
            .run(|| self.inner.deploy_status(service, deploy_id))
            .await
    }
}

#[async_trait]
impl<P: Provider> EnvVars for RetryProvider<P> {
    async fn env_vars(&self, service: &ServiceHandle) -> Result<BTreeMap<String, SecretString>> {
        self.policy.run(|| self.inner.env_vars(service)).await
    }
    async fn set_env_var(
        &self,
        service: &WriteTarget,
        key: &str,
        value: &SecretString,
    ) -> Result<()> {
        self.inner.set_env_var(service, key, value).await
    }
    async fn set_env_vars(
        &self,
        service: &WriteTarget,
        variables: &BTreeMap<String, SecretString>,
    ) -> Result<()> {
        self.inner.set_env_vars(service, variables).await
    }
    async fn delete_env_var(&self, service: &WriteTarget, key: &str) -> Result<()> {
        self.inner.delete_env_var(service, key).await
    }
    async fn snapshot_env(
        &self,
        service: &ServiceHandle,
        current: &BTreeMap<String, SecretString>,
        keys: &[String],
    ) -> Result<crate::env_snapshot::EnvSnapshot> {
        self.policy
            .run(|| self.inner.snapshot_env(service, current, keys))
            .await
    }
    /// Not retried as a whole: it reads before each write, and a retry of the reads and
    /// writes inside is the inner provider's.
    async fn restore_env(
        &self,
        target: &WriteTarget,
        snapshot: &crate::env_snapshot::EnvSnapshot,
    ) -> Result<crate::env_snapshot::EnvRestore> {
        self.inner.restore_env(target, snapshot).await
    }
}

#[async_trait]
impl<P: Provider> Rollback for RetryProvider<P> {
    async fn rollback(&self, service: &WriteTarget) -> Result<Deploy> {
        self.inner.rollback(service).await
    }
    async fn rollback_to(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy> {
        self.inner.rollback_to(service, deploy_id).await
    }
}

#[async_trait]
impl<P: Provider> Logs for RetryProvider<P> {
    async fn recent_logs(
        &self,
        service: &ServiceHandle,
        deploy_id: Option<&str>,
        lines: usize,
    ) -> Result<Vec<String>> {
        self.policy
            .run(|| self.inner.recent_logs(service, deploy_id, lines))
            .await
    }
    async fn logs(&self, service: &ServiceHandle, query: &LogQuery) -> Result<Vec<LogLine>> {
        self.policy.run(|| self.inner.logs(service, query)).await
    }
}

#[async_trait]
impl<P: Provider> Cancel for RetryProvider<P> {
    async fn cancel_deploy(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy> {
        self.inner.cancel_deploy(service, deploy_id).await
    }
}

#[async_trait]
impl<P: Provider> EnvironmentSetup for RetryProvider<P> {
    async fn environment_setup(&self, environment: &str) -> Result<Option<String>> {
        self.policy
            .run(|| self.inner.environment_setup(environment))
            .await
    }
    async fn prepare_environment(
        &self,
        environment: &crate::boundary::EnvironmentTarget,
    ) -> Result<Option<String>> {
        // A write: never retried as a whole.
        self.inner.prepare_environment(environment).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let delays: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(100) && delays[0] < Duration::from_millis(113));
        assert!(delays[1] >= Duration::from_millis(200));
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(500)));
        assert_eq!(delays[5], Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_honours_retry_after_and_then_succeeds() {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let policy = RetryPolicy::default();
        let out = policy
            .run(|| async {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(Error::RateLimited {
                        provider: "p".into(),
                        retry_after: Some(Duration::from_secs(7)),
                    })
                } else {
                    Ok(42)
                }
            })
            .await
            .unwrap();
        assert_eq!(out, 42);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(started.elapsed() >= Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_gives_up_when_retry_after_passes_the_deadline() {
        let calls = AtomicU32::new(0);
        let policy = RetryPolicy {
            deadline: Duration::from_secs(5),
            ..RetryPolicy::default()
        };
        let err = policy
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(Error::RateLimited {
                    provider: "p".into(),
                    retry_after: Some(Duration::from_secs(30)),
                })
            })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::RateLimited { .. }));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_does_not_repeat_permanent_errors() {
        let calls = AtomicU32::new(0);
        let err = RetryPolicy::default()
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(Error::not_found("svc"))
            })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_stops_after_max_attempts() {
        let calls = AtomicU32::new(0);
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let _ = policy
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(Error::Provider {
                    provider: "p".into(),
                    source: "503".into(),
                    retryable: true,
                })
            })
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
