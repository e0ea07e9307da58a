//! The public conformance suite every provider runs against its stand-in (and, when asked,
//! against the real service).
//!
//! ```ignore
//! #[tokio::test]
//! async fn local_provider_passes_the_conformance_suite() {
//!     let provider: DynProvider = Arc::new(my_provider());
//!     staging_core::testkit::run_all(&provider, "staging", "web").await;
//! }
//! ```
//!
//! Each function panics with a message naming the broken expectation, like an assertion, and
//! otherwise says whether it ran or was skipped ([`Outcome`]): a check needs a capability the
//! provider does not implement, or a deploy kind it does not declare for the service.
//! [`run_all`] prints the [`ConformanceReport`] (`conformance of render: deploy ran, env
//! ran, ..., cancel skipped (not implemented)`) and returns it, and fails a provider that
//! declares what it cannot do ([`declarations_hold`]).
//! [`contract_path`] finds the providers' published API descriptions the stand-ins serve.

use std::time::Duration;

mod contracts;
pub use contracts::{CONTRACTS_DIR_VAR, contract_dirs, contract_path};

use secrecy::{ExposeSecret, SecretString};

use std::sync::Arc;

use crate::boundary::WriteTarget;
use crate::error::Error;
use crate::pipeline::{
    AutoRollbackStep, DeployStep, EvidenceStep, Finding, Pipeline, RollbackStep, RunContext, Step,
    StepReport, StepStatus, VerifyCommitStep, WaitStep,
};
use crate::provider::{
    Capability, DeployRequest, DeployStatus, DeployTarget, DynProvider, ProviderExt, ServiceHandle,
};
use crate::spec::{LoadOptions, LoadedSpec};

/// How long the suite waits for one deploy.
pub const DEPLOY_TIMEOUT: Duration = Duration::from_secs(60);

/// Two distinct commits the suite deploys.
pub const COMMIT_A: &str = "aaaaaaa1111111111111111111111111111111aa";
/// The second commit.
pub const COMMIT_B: &str = "bbbbbbb2222222222222222222222222222222bb";

/// The write target of `handle`, issued without the isolation check: what the conformance
/// suite and the providers' own lifecycle tests write through (one environment, nothing to
/// compare with). Production code has no such function (feature `testkit`).
pub fn target(handle: &ServiceHandle) -> WriteTarget {
    WriteTarget::unchecked_for_tests(handle.clone())
}

/// The creation target of `creation`, issued without the isolation check (tests only).
pub fn creation_target(creation: &crate::provision::Creation) -> crate::boundary::CreationTarget {
    crate::boundary::CreationTarget::unchecked_for_tests(creation.clone())
}

/// The environment target of `environment`, issued without the isolation check (tests only).
pub fn environment_target(environment: &str) -> crate::boundary::EnvironmentTarget {
    crate::boundary::EnvironmentTarget::unchecked_for_tests(environment)
}

/// A run context's write boundary with nothing to compare against, for tests whose spec has
/// one environment (tests only).
pub fn assume_isolated(ctx: &mut RunContext) {
    ctx.boundary = Some(crate::boundary::unchecked_boundary_for_tests(
        ctx.environment.clone(),
    ));
}

/// What one check of the suite did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It ran and every expectation held.
    Ran,
    /// It did not run, for the reason given (`not implemented`).
    Skipped(String),
}

impl Outcome {
    fn not_implemented(capability: Capability) -> Self {
        Outcome::Skipped(format!("{} not implemented", capability.name()))
    }

    fn no_commit_deploys(service: &str) -> Self {
        Outcome::Skipped(format!("no commit deploys declared for `{service}`"))
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Ran => f.write_str("ran"),
            Outcome::Skipped(why) => write!(f, "skipped ({why})"),
        }
    }
}

/// What [`run_all`] ran and skipped, check by check, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConformanceReport {
    /// The provider's name.
    pub provider: String,
    /// Each check by name (`deploy`, `env`, `rollback`, ...) with its outcome.
    pub checks: Vec<(&'static str, Outcome)>,
}

impl ConformanceReport {
    /// The outcome of the check named `check`.
    pub fn outcome(&self, check: &str) -> Option<&Outcome> {
        self.checks
            .iter()
            .find(|(name, _)| *name == check)
            .map(|(_, o)| o)
    }

    /// The names of the checks that ran.
    pub fn ran(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|(_, o)| *o == Outcome::Ran)
            .map(|(name, _)| *name)
            .collect()
    }

    /// The names of the checks that were skipped.
    pub fn skipped(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|(_, o)| *o != Outcome::Ran)
            .map(|(name, _)| *name)
            .collect()
    }
}

/// `conformance of NAME: deploy ran, env skipped (env not implemented), ...`
impl std::fmt::Display for ConformanceReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "conformance of {}: ", self.provider)?;
        for (i, (name, outcome)) in self.checks.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name} {outcome}")?;
        }
        Ok(())
    }
}

/// The value of an operation of a declared capability: panics naming the capability when
/// it answered `NotSupported` (declared but not implemented), else with `what` and the error.
fn declared<T>(p: &DynProvider, capability: &str, what: &str, r: crate::Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e @ Error::NotSupported { .. }) => panic!(
            "{} declares {capability} but does not implement it: {e}",
            p.name()
        ),
        Err(e) => panic!("{what}: {e}"),
    }
}

async fn locate(p: &DynProvider, env: &str, service: &str) -> ServiceHandle {
    p.locate(env, service)
        .await
        .unwrap_or_else(|e| panic!("locate({env}, {service}) failed: {e}"))
}

async fn deploy_and_wait(p: &DynProvider, svc: &ServiceHandle, commit: &str) {
    let d = p
        .deploy(&target(svc), &DeployRequest::commit(commit))
        .await
        .unwrap_or_else(|e| match e {
            Error::NotSupported { .. } => panic!(
                "{} declares commit deploys for `{}` but its deploy answered: {e}",
                p.name(),
                svc.name
            ),
            e => panic!("deploy {commit} failed: {e}"),
        });
    let live = p
        .wait_until_live(svc, &d.id, DEPLOY_TIMEOUT, &mut |_| {})
        .await
        .unwrap_or_else(|e| panic!("deploy {} of {commit} did not go live: {e}", d.id));
    assert_eq!(
        live.status,
        DeployStatus::Live,
        "wait_until_live returned a deploy that is not live"
    );
}

/// Deploy a commit, wait until live, and see it as the live commit.
pub async fn deploy_roundtrip(p: &DynProvider, env: &str, service: &str) -> Outcome {
    if !p.deploy_kinds(service).commit {
        return Outcome::no_commit_deploys(service);
    }
    let svc = locate(p, env, service).await;
    deploy_and_wait(p, &svc, COMMIT_A).await;
    let state = p.live_state(&svc).await.expect("live_state after deploy");
    assert_eq!(
        state.live_commit(),
        Some(COMMIT_A),
        "the live commit is not the one deployed"
    );
    Outcome::Ran
}

/// Set an env var, read it back, delete it, and see it gone; other keys untouched.
pub async fn env_var_roundtrip(p: &DynProvider, env: &str, service: &str) -> Outcome {
    if p.capabilities().env.is_none() {
        return Outcome::not_implemented(Capability::ReadEnv);
    }
    let svc = locate(p, env, service).await;
    let keep = SecretString::from("conformance-keep-value".to_owned());
    let value = SecretString::from("conformance-canary-4f1d".to_owned());
    let env = |what: &str, r| declared(p, "env", what, r);
    env(
        "set keep var",
        p.set_env_var(&target(&svc), "STAGING_CONFORMANCE_KEEP", &keep)
            .await,
    );
    env(
        "set var",
        p.set_env_var(&target(&svc), "STAGING_CONFORMANCE", &value)
            .await,
    );
    let vars = declared(p, "env", "read vars", p.env_vars(&svc).await);
    assert_eq!(
        vars.get("STAGING_CONFORMANCE")
            .map(|v| v.expose_secret().to_owned())
            .as_deref(),
        Some("conformance-canary-4f1d"),
        "a var that was set does not read back"
    );
    env(
        "delete var",
        p.delete_env_var(&target(&svc), "STAGING_CONFORMANCE").await,
    );
    let vars = declared(p, "env", "read vars after delete", p.env_vars(&svc).await);
    assert!(
        !vars.contains_key("STAGING_CONFORMANCE"),
        "a deleted var is still there"
    );
    assert!(
        vars.contains_key("STAGING_CONFORMANCE_KEEP"),
        "deleting one var removed another"
    );
    env(
        "delete keep var",
        p.delete_env_var(&target(&svc), "STAGING_CONFORMANCE_KEEP")
            .await,
    );
    Outcome::Ran
}

/// Deploy A then B, roll back, and see A live again.
pub async fn rollback_roundtrip(p: &DynProvider, env: &str, service: &str) -> Outcome {
    if let Some(skipped) = needs(p, service, Capability::Rollback) {
        return skipped;
    }
    let svc = locate(p, env, service).await;
    deploy_and_wait(p, &svc, COMMIT_A).await;
    deploy_and_wait(p, &svc, COMMIT_B).await;
    assert_eq!(
        p.live_state(&svc).await.expect("state").live_commit(),
        Some(COMMIT_B)
    );
    let d = declared(p, "rollback", "rollback", p.rollback(&target(&svc)).await);
    p.wait_until_live(&svc, &d.id, DEPLOY_TIMEOUT, &mut |_| {})
        .await
        .expect("rollback deploy goes live");
    assert_eq!(
        p.live_state(&svc).await.expect("state").live_commit(),
        Some(COMMIT_A),
        "after rollback the previous commit is not live"
    );
    Outcome::Ran
}

/// Deploy A then B, roll back to A's deploy by its id, and see A live again, verified; an
/// unknown deploy id is an error before anything changes.
pub async fn rollback_to_roundtrip(p: &DynProvider, env: &str, service: &str) -> Outcome {
    if let Some(skipped) = needs(p, service, Capability::Rollback) {
        return skipped;
    }
    let svc = locate(p, env, service).await;
    deploy_and_wait(p, &svc, COMMIT_A).await;
    let a = p
        .live_state(&svc)
        .await
        .expect("state")
        .live
        .expect("A is live");
    deploy_and_wait(p, &svc, COMMIT_B).await;
    let done =
        crate::pipeline::roll_back(p, &target(&svc), Some(&a.id), DEPLOY_TIMEOUT, &mut |_| {})
            .await
            .unwrap_or_else(|e| panic!("rollback to deploy {} failed: {e}", a.id));
    assert!(done.verified, "rollback to A not verified: {done:?}");
    assert_eq!(
        done.from.as_ref().and_then(|d| d.commit.as_deref()),
        Some(COMMIT_B),
        "the rollback does not say it came from B: {done:?}"
    );
    assert_eq!(
        p.live_state(&svc).await.expect("state").live_commit(),
        Some(COMMIT_A),
        "after rollback_to the named deploy's commit is not live"
    );
    assert!(
        crate::pipeline::roll_back(
            p,
            &target(&svc),
            Some("no-such-deploy-0000"),
            DEPLOY_TIMEOUT,
            &mut |_| {}
        )
        .await
        .is_err(),
        "a rollback to an unknown deploy did not fail"
    );
    assert_eq!(
        p.live_state(&svc).await.expect("state").live_commit(),
        Some(COMMIT_A),
        "a refused rollback changed the live commit"
    );
    Outcome::Ran
}

/// A check that fails, standing for a smoke step whose probe failed.
#[derive(Debug)]
struct FailingSmoke;

#[async_trait::async_trait]
impl Step for FailingSmoke {
    fn name(&self) -> &'static str {
        "smoke"
    }
    async fn run(&self, _ctx: &mut RunContext) -> crate::Result<StepReport> {
        Ok(StepReport::from_findings(
            "smoke",
            "1 of 1 probe(s) failed",
            vec![Finding::failed("health", "status 500, expected 200")],
        ))
    }
}

/// A spec with one protected environment `env` on `p`'s provider and one service, whose
/// evidence goes to a fresh directory; the context runs with `p` already built.
fn protected_context(p: &DynProvider, env: &str, service: &str, commit: &str) -> RunContext {
    use std::sync::atomic::{AtomicU32, Ordering};
    static RUN: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "staging-testkit-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    ));
    let source = format!(
        "[project]\nname = \"conformance\"\nevidence_dir = {:?}\n\n[environments.{env}]\nprovider = \"{}\"\nprotected = true\ndeploy_timeout = \"60s\"\n\n[services.{service}]\n",
        dir.display().to_string(),
        p.name()
    );
    let names = [p.name()];
    let spec = LoadedSpec::parse(dir.join("staging.toml"), source, LoadOptions::new(&names))
        .unwrap_or_else(|e| panic!("the suite's spec does not load: {e}"));
    let mut ctx = RunContext::new(Arc::new(spec), env, commit).expect("context");
    ctx.provider = Some(p.clone());
    // One environment: nothing else to compare with.
    ctx.boundary = Some(crate::boundary::unchecked_boundary_for_tests(env));
    ctx
}

/// The evidence files written under the context's evidence directory, as text.
fn evidence_texts(ctx: &RunContext) -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                walk(&e.path(), out);
            } else if let Ok(t) = std::fs::read_to_string(e.path()) {
                out.push(t);
            }
        }
    }
    let mut out = vec![];
    walk(&crate::pipeline::evidence_dir(ctx), &mut out);
    out
}

/// A promote-shaped run on a protected environment: A is live, the run deploys B, B goes
/// live and verifies, then its smoke step fails. The automatic rollback returns the service
/// to A's deploy, waits until live, verifies A is served again, and the evidence of the
/// run records it; the run fails (exit code 1).
pub async fn auto_rollback_after_failed_smoke(
    p: &DynProvider,
    env: &str,
    service: &str,
) -> Outcome {
    if let Some(skipped) = needs(p, service, Capability::Rollback) {
        return skipped;
    }
    let svc = locate(p, env, service).await;
    deploy_and_wait(p, &svc, COMMIT_A).await;
    let mut ctx = protected_context(p, env, service, COMMIT_B);
    let pipeline = Pipeline::new()
        .step(DeployStep)
        .step(WaitStep)
        .step(VerifyCommitStep)
        .step(FailingSmoke)
        .step(AutoRollbackStep)
        .step(EvidenceStep);
    let report = pipeline.run(&mut ctx).await;
    let step = |name: &str| {
        report
            .steps
            .iter()
            .find(|s| s.step == name)
            .unwrap_or_else(|| panic!("no {name} step in {report:?}"))
    };
    assert_eq!(
        step("verify").status,
        StepStatus::Passed,
        "B did not verify: {report:?}"
    );
    let rollback = step("rollback");
    assert_eq!(
        rollback.status,
        StepStatus::Passed,
        "the automatic rollback did not pass: {rollback:?}"
    );
    assert_eq!(
        report.exit_code(),
        1,
        "a rolled-back promote must still fail"
    );
    assert_eq!(
        p.live_state(&svc).await.expect("state").live_commit(),
        Some(COMMIT_A),
        "after the automatic rollback A is not live again"
    );
    assert_eq!(step("evidence").status, StepStatus::Passed, "{report:?}");
    let recorded = evidence_texts(&ctx);
    assert!(
        recorded
            .iter()
            .any(|t| t.contains("\"rollback\"") && t.contains(&COMMIT_A[..12])),
        "the evidence does not record the rollback to A: {recorded:?}"
    );
    Outcome::Ran
}

/// `staging rollback` on a protected environment: B live, roll back, A live and verified,
/// recorded in that environment's evidence under the commit now live.
pub async fn rollback_recorded_on_protected(p: &DynProvider, env: &str, service: &str) -> Outcome {
    if let Some(skipped) = needs(p, service, Capability::Rollback) {
        return skipped;
    }
    let svc = locate(p, env, service).await;
    deploy_and_wait(p, &svc, COMMIT_A).await;
    deploy_and_wait(p, &svc, COMMIT_B).await;
    let mut ctx = protected_context(p, env, service, "unknown");
    let pipeline = Pipeline::new()
        .step(RollbackStep::new().service(service))
        .step(EvidenceStep);
    let report = pipeline.run(&mut ctx).await;
    assert!(report.ok, "the rollback failed: {report:?}");
    let finding = &report.steps[0].findings[0];
    assert!(
        finding.message.contains(&COMMIT_B[..12]) && finding.message.contains(&COMMIT_A[..12]),
        "the rollback does not say from B to A: {}",
        finding.message
    );
    assert_eq!(
        report.commit, COMMIT_A,
        "the record is not keyed by the commit now live"
    );
    let recorded = evidence_texts(&ctx);
    assert!(
        recorded
            .iter()
            .any(|t| t.contains("\"rollback\"")
                && t.contains(&format!("\"environment\": \"{env}\""))),
        "the rollback is not recorded in {env}'s evidence: {recorded:?}"
    );
    Outcome::Ran
}

/// A deploy kind [`crate::Provider::deploy_kinds`] says no to answers `NotSupported`, as
/// does every operation of a capability the provider does not implement (through
/// [`ProviderExt`]).
pub async fn unsupported_is_declared(p: &DynProvider, env: &str, service: &str) -> Outcome {
    let caps = p.capabilities();
    let kinds = p.deploy_kinds(service);
    let svc = locate(p, env, service).await;
    let value = SecretString::from("x-unsupported".to_owned());
    let check = |what: &str, r: Result<(), Error>| {
        assert!(
            matches!(r, Err(Error::NotSupported { .. })),
            "{what} is declared unsupported but did not return NotSupported: {r:?}"
        );
    };
    if !kinds.commit {
        check(
            "deploy a commit",
            p.deploy(&target(&svc), &DeployRequest::commit(COMMIT_A))
                .await
                .map(drop),
        );
    }
    if !kinds.image {
        check(
            "deploy an image",
            p.deploy(&target(&svc), &image_request()).await.map(drop),
        );
    }
    if caps.rollback.is_none() {
        check("rollback", p.rollback(&target(&svc)).await.map(drop));
        check(
            "rollback to a deploy",
            p.rollback_to(&target(&svc), "no-such-deploy")
                .await
                .map(drop),
        );
    }
    if caps.env.is_none() {
        check("read env vars", p.env_vars(&svc).await.map(drop));
        check(
            "write env vars",
            p.set_env_var(&target(&svc), "X", &value).await,
        );
    }
    if caps.logs.is_none() {
        check("logs", p.recent_logs(&svc, None, 5).await.map(drop));
    }
    if caps.cancel.is_none() {
        check(
            "cancel a deploy",
            p.cancel_deploy(&target(&svc), "no-such-deploy")
                .await
                .map(drop),
        );
    }
    Outcome::Ran
}

/// What the provider declares, it does: every capability it hands out answers something
/// other than `NotSupported` (an error about the made-up deploy id is fine; "cannot do
/// that" is not). Reads, and writes aimed at a deploy that does not exist.
pub async fn declarations_hold(p: &DynProvider, env: &str, service: &str) -> Outcome {
    let caps = p.capabilities();
    let svc = locate(p, env, service).await;
    let name = p.name().to_owned();
    let holds = |what: &str, r: Result<(), Error>| {
        if let Err(e @ Error::NotSupported { .. }) = r {
            panic!("{name} declares {what} but does not implement it: {e}");
        }
    };
    if caps.env.is_some() {
        holds("env", p.env_vars(&svc).await.map(drop));
    }
    if caps.rollback.is_some() {
        holds(
            "rollback",
            p.rollback_to(&target(&svc), "no-such-deploy-0000")
                .await
                .map(drop),
        );
    }
    if caps.cancel.is_some() {
        holds(
            "cancel",
            p.cancel_deploy(&target(&svc), "no-such-deploy-0000")
                .await
                .map(drop),
        );
    }
    Outcome::Ran
}

/// The service's recent log lines are read without `NotSupported` (a provider that hands out
/// [`crate::Logs`] shows logs).
pub async fn logs_answer(p: &DynProvider, env: &str, service: &str) -> Outcome {
    if p.capabilities().logs.is_none() {
        return Outcome::not_implemented(Capability::Logs);
    }
    let svc = locate(p, env, service).await;
    if let Err(e @ Error::NotSupported { .. }) = p.recent_logs(&svc, None, 5).await {
        panic!(
            "{} declares logs but does not implement them: {e}",
            p.name()
        );
    }
    Outcome::Ran
}

/// `environment_setup` of `env` answers (ready or what it would create) without
/// `NotSupported` and without creating anything.
pub async fn environment_setup_answers(p: &DynProvider, env: &str) -> Outcome {
    if p.capabilities().environment_setup.is_none() {
        return Outcome::not_implemented(Capability::EnvironmentSetup);
    }
    if let Err(e @ Error::NotSupported { .. }) = p.environment_setup(env).await {
        panic!(
            "{} declares environment_setup but does not implement it: {e}",
            p.name()
        );
    }
    Outcome::Ran
}

/// A provider that declares image deploys for `service` takes one: the image live now is
/// deployed again (harmless on a real service too), and the answer must not be
/// `NotSupported`. Skipped when no image is declared or none is live to redeploy.
pub async fn image_deploy_declared(p: &DynProvider, env: &str, service: &str) -> Outcome {
    if !p.deploy_kinds(service).image {
        return Outcome::Skipped(format!("no image deploys declared for `{service}`"));
    }
    let svc = locate(p, env, service).await;
    let live = p.live_state(&svc).await.ok().and_then(|s| s.live);
    let Some(image) = live.and_then(|d| d.image) else {
        return Outcome::Skipped("no live image to deploy again".to_owned());
    };
    let request = DeployRequest {
        target: DeployTarget::Image(image),
        commit: None,
        clear_cache: false,
    };
    match p.deploy(&target(&svc), &request).await {
        Err(e @ Error::NotSupported { .. }) => panic!(
            "{} declares image deploys for `{service}` but does not implement it: {e}",
            p.name()
        ),
        Ok(d) => {
            let _ = p
                .wait_until_live(&svc, &d.id, DEPLOY_TIMEOUT, &mut |_| {})
                .await;
            Outcome::Ran
        }
        Err(_) => Outcome::Ran,
    }
}

/// The made-up image the suite asks a provider that declares no image deploys to deploy.
fn image_request() -> DeployRequest {
    DeployRequest {
        target: DeployTarget::Image("example/image:1".into()),
        commit: None,
        clear_cache: false,
    }
}

/// Why a check that needs `capability` and commit deploys to `service` is skipped, if it is.
fn needs(p: &DynProvider, service: &str, capability: Capability) -> Option<Outcome> {
    if !p.capabilities().has(capability) {
        Some(Outcome::not_implemented(capability))
    } else if !p.deploy_kinds(service).commit {
        Some(Outcome::no_commit_deploys(service))
    } else {
        None
    }
}

/// Cancel a deploy before it is live and see it end as canceled, with the live commit
/// unchanged.
pub async fn cancel_roundtrip(p: &DynProvider, env: &str, service: &str) -> Outcome {
    if let Some(skipped) = needs(p, service, Capability::Cancel) {
        return skipped;
    }
    let svc = locate(p, env, service).await;
    deploy_and_wait(p, &svc, COMMIT_A).await;
    let d = p
        .deploy(&target(&svc), &DeployRequest::commit(COMMIT_B))
        .await
        .expect("deploy to cancel");
    if d.status.is_terminal() {
        // Went live (or failed) before we could cancel: nothing to check on this stand-in.
        return Outcome::Skipped("the deploy ended before it could be canceled".to_owned());
    }
    let canceled = declared(
        p,
        "cancel",
        "cancel",
        p.cancel_deploy(&target(&svc), &d.id).await,
    );
    assert!(
        matches!(canceled.status, DeployStatus::Canceled | DeployStatus::Live),
        "a canceled deploy is {:?}",
        canceled.status
    );
    if canceled.status == DeployStatus::Canceled {
        assert_eq!(
            p.live_state(&svc).await.expect("state").live_commit(),
            Some(COMMIT_A),
            "canceling a deploy changed the live commit"
        );
    }
    Outcome::Ran
}

/// The whole suite, in order: prints and returns which checks ran and which were skipped
/// (and why), and panics at the first broken expectation, including a capability or deploy
/// kind declared but not implemented ([`declarations_hold`]).
pub async fn run_all(p: &DynProvider, env: &str, service: &str) -> ConformanceReport {
    let checks = vec![
        ("deploy", deploy_roundtrip(p, env, service).await),
        ("env", env_var_roundtrip(p, env, service).await),
        ("rollback", rollback_roundtrip(p, env, service).await),
        ("rollback_to", rollback_to_roundtrip(p, env, service).await),
        (
            "auto_rollback",
            auto_rollback_after_failed_smoke(p, env, service).await,
        ),
        (
            "rollback_recorded",
            rollback_recorded_on_protected(p, env, service).await,
        ),
        ("logs", logs_answer(p, env, service).await),
        ("cancel", cancel_roundtrip(p, env, service).await),
        ("environment_setup", environment_setup_answers(p, env).await),
        ("deploy_image", image_deploy_declared(p, env, service).await),
        ("undeclared", unsupported_is_declared(p, env, service).await),
        ("declared", declarations_hold(p, env, service).await),
    ];
    let report = ConformanceReport {
        provider: p.name().to_owned(),
        checks,
    };
    println!("{report}");
    report
}

/// A loopback listener that accepts every connection and never sends a byte: the silent
/// peer every network wait must survive (a firewall that drops replies, a hung server, a
/// port-forward to nowhere). Runs on a thread of its own, so it works under any runtime;
/// the connections are held open until it is dropped.
#[derive(Debug)]
pub struct SilentPeer {
    addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SilentPeer {
    /// Listen on `127.0.0.1` on a free port.
    pub fn start() -> Self {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("a local address");
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (s, a) = (stop.clone(), accepted.clone());
        std::thread::spawn(move || {
            let mut held = vec![];
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(c) = conn {
                    a.fetch_add(1, Ordering::SeqCst);
                    held.push(c);
                }
            }
        });
        SilentPeer {
            addr,
            stop,
            accepted,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// How many connections it has accepted (and left unanswered).
    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for SilentPeer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop so that it sees `stop` and drops what it holds.
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

/// A peer that answers every request `200` with a JSON body of `size` bytes, streamed: an
/// API that sends more than any client should read. Runs on a thread of its own, so it
/// works under any runtime.
#[derive(Debug)]
pub struct OversizedPeer {
    addr: std::net::SocketAddr,
}

impl OversizedPeer {
    /// Listen on `127.0.0.1` on a free port; every answer's body is 1 MiB past
    /// [`crate::limits::MAX_PROVIDER_BODY`].
    pub fn past_the_cap() -> Self {
        Self::start(crate::limits::MAX_PROVIDER_BODY + 1024 * 1024)
    }

    /// Listen on `127.0.0.1` on a free port; every answer's body is `size` bytes.
    pub fn start(size: u64) -> Self {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("a local address");
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(&conn);
                    let mut line = String::new();
                    // The request's head; its body (if any) is never read.
                    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                        line.clear();
                    }
                    let mut out = &conn;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {size}\r\n\r\n"
                    );
                    if out.write_all(head.as_bytes()).is_err() {
                        return;
                    }
                    let chunk = vec![b' '; 64 * 1024];
                    let mut left = size;
                    while left > 0 {
                        let n = left.min(chunk.len() as u64) as usize;
                        // The client hangs up at its cap: stop there.
                        if out.write_all(&chunk[..n]).is_err() {
                            return;
                        }
                        left -= n as u64;
                    }
                });
            }
        });
        OversizedPeer { addr }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Asserts that `call` (a provider's request to this peer) fails, within a guard that
    /// only turns a hang into a failure, refusing the answer past the provider's body cap
    /// ([`crate::limits::MAX_PROVIDER_BODY`]): the error names this peer's `host:port`, the
    /// cap and the request (`request`, such as `GET /services`), not `secret`, and is not
    /// retryable.
    pub async fn assert_refuses<T: std::fmt::Debug>(
        &self,
        call: impl std::future::Future<Output = crate::Result<T>>,
        request: &str,
        secret: &str,
    ) {
        let err = tokio::time::timeout(std::time::Duration::from_secs(120), call)
            .await
            .expect("bounded: no result within 120 s")
            .expect_err("an answer past the cap is refused");
        let text = format!("{err} {err:?}");
        let cap = crate::limits::format_size(crate::limits::MAX_PROVIDER_BODY);
        assert!(
            text.contains(&self.addr.to_string()),
            "names the host: {text}"
        );
        assert!(
            text.contains(&format!("larger than {cap}")),
            "names the cap: {text}"
        );
        assert!(text.contains(request), "names the request: {text}");
        assert!(!text.contains(secret), "the credential leaked: {text}");
        assert!(
            !err.is_retryable(),
            "an oversized answer is not asked again: {text}"
        );
    }
}
