//! A `Staging` session builds an environment's provider once: the preflight, every step of
//! a run and every command of the session (`status`, `logs`, `rollback`) get the one
//! provider while anything holds it. Counted with a factory registered through
//! `ProviderRegistry::register` that wraps the local provider's.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use staging::{Located, ProviderRegistry, RollbackOptions, Staging};
use staging_core::pipeline::StepStatus;
use staging_core::spec::{LoadedSpec, SettingsTypes};
use staging_core::{DynProvider, LogQuery, ProviderFactory, Result};
use staging_provider_local::LocalFactory;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// The local provider's factory, counting its builds per environment.
#[derive(Debug, Clone, Default)]
struct Counting {
    builds: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl Counting {
    fn builds(&self, environment: &str) -> usize {
        self.builds
            .lock()
            .unwrap()
            .get(environment)
            .copied()
            .unwrap_or(0)
    }
}

impl ProviderFactory for Counting {
    fn name(&self) -> &'static str {
        LocalFactory.name()
    }

    fn settings_types(&self) -> SettingsTypes {
        LocalFactory.settings_types()
    }

    fn check(&self, spec: &LoadedSpec, environment: &str) -> Result<()> {
        LocalFactory.check(spec, environment)
    }

    fn resources(
        &self,
        spec: &LoadedSpec,
        environment: &str,
    ) -> Result<Vec<staging_core::isolation::Resource>> {
        LocalFactory.resources(spec, environment)
    }

    fn build(&self, spec: &LoadedSpec, environment: &str) -> Result<DynProvider> {
        *self
            .builds
            .lock()
            .unwrap()
            .entry(environment.to_owned())
            .or_default() += 1;
        LocalFactory.build(spec, environment)
    }
}

/// A spec with one local worker that prints a line and stays up, in a fresh directory.
fn worker() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        r#"[project]
name = "jobs"

[environments.staging]
provider = "local"
deploy_timeout = "60s"

[services.worker]
http = false
settings = { command = ["sh", "-c", "echo worker started; exec sleep 600"], settle = "1s", stop_timeout = "2s" }
"#,
    )
    .unwrap();
    dir
}

fn session(dir: &tempfile::TempDir, counting: &Counting) -> Staging {
    Staging::builder()
        .providers(ProviderRegistry::new().register(counting.clone()))
        .spec_file(dir.path().join("staging.toml"))
        .build()
        .unwrap()
}

#[tokio::test]
async fn an_up_through_the_facade_builds_the_environments_provider_once() {
    let dir = worker();
    let counting = Counting::default();
    let session = session(&dir, &counting);
    let run = session.up("staging", COMMIT).await.unwrap();
    assert!(run.report.ok, "{:#?}", run.report);
    // Preflight, validate, isolation, provision, deploy, wait, verify, smoke, evidence.
    assert_eq!(counting.builds("staging"), 1, "{:#?}", run.report);

    // While the run's context holds it, the session's other commands get the same one:
    // `status` sees the process the run started, and builds nothing.
    let status = session.status("staging").await.unwrap();
    assert!(
        status.services[0].state.live.is_some(),
        "status built a provider of its own: {status:#?}"
    );
    let mut logs = session.logs("staging", None).unwrap();
    assert_eq!(logs.locate().await.unwrap(), Located::Ready);
    let lines = logs
        .read(&LogQuery {
            deploy_id: None,
            lines: 10,
            since: None,
        })
        .await
        .unwrap();
    assert!(
        lines.iter().any(|l| l.text.contains("worker started")),
        "{lines:?}"
    );
    assert_eq!(counting.builds("staging"), 1);

    // Held weakly: once the run's context and the reader are gone the provider is (its
    // worker stopped), and the next command builds a fresh one that runs nothing.
    drop(logs);
    drop(run);
    let mut logs = session.logs("staging", None).unwrap();
    let located = logs.locate().await.unwrap();
    assert!(
        matches!(&located, Located::NotRunning(m) if m.contains("nothing is running for `worker` of `staging`")),
        "{located:?}"
    );
    assert_eq!(counting.builds("staging"), 2);
}

#[tokio::test]
async fn two_commands_of_a_session_share_the_provider_they_hold() {
    let dir = worker();
    let counting = Counting::default();
    let session = session(&dir, &counting);
    let a = session.provider("staging").unwrap();
    let b = session.provider("staging").unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(counting.builds("staging"), 1);
    // Another session is another provider: nothing is shared through the process.
    let other = self::session(&dir, &counting);
    let c = other.provider("staging").unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
    assert_eq!(counting.builds("staging"), 2);
}

#[tokio::test]
async fn a_rollback_through_the_facade_refuses_a_service_the_platform_has_no_deploy_before() {
    // The rollback pipeline is the facade's: it validates, finds no previous deploy of a
    // service never deployed, and records nothing passed.
    let dir = worker();
    let counting = Counting::default();
    let session = session(&dir, &counting);
    let outcome = session
        .rollback("staging", RollbackOptions::default())
        .await
        .unwrap();
    assert!(!outcome.report.ok, "{:#?}", outcome.report);
    let steps: Vec<(&str, &StepStatus)> = outcome
        .report
        .steps
        .iter()
        .map(|s| (s.step.as_str(), &s.status))
        .collect();
    assert_eq!(steps[0], ("validate", &StepStatus::Passed), "{steps:?}");
    assert_eq!(counting.builds("staging"), 1, "{steps:?}");
}

#[tokio::test]
async fn logs_of_a_service_the_spec_does_not_declare_is_a_usage_error_with_a_suggestion() {
    let dir = worker();
    let session = session(&dir, &Counting::default());
    let e = session.logs("staging", Some("wroker")).unwrap_err();
    assert_eq!(e.kind(), "config_invalid");
    assert!(e.to_string().contains("did you mean `worker`?"), "{e}");
}
