//! The isolation check in core, against a platform in memory: identities at the platform's
//! granularity, the write boundary refusing what another environment owns (also for a
//! service that only appears later in the run), and failing closed — exit 3, naming what
//! could not be read — on every answer but "not found" for another environment.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use secrecy::SecretString;
use serde::Deserialize;
use staging_core::isolation::{NoValues, READ_BOUND, Writes, check_before_write};
use staging_core::pipeline::{DeployStep, IsolationStep, RunContext, Step};
use staging_core::spec::{LoadOptions, LoadedSpec, SettingsTypes};
use staging_core::{
    Capabilities, Deploy, DeployKinds, DeployRequest, DeployStatus, DynProvider, EnvVars, Error,
    ErrorClass, Identity, LiveState, Logs, Provider, ProviderFactory, ProviderRegistry, Result,
    ServiceHandle, WriteTarget, async_trait,
};

/// What the platform answers when a service of an environment is located.
#[derive(Debug, Clone)]
enum Answer {
    /// Found, with these identity parts.
    Found(Vec<(&'static str, &'static str)>),
    NotFound,
    Unauthenticated,
    Forbidden,
    ServerError,
    /// Never answers.
    Silent,
}

#[derive(Debug, Default)]
struct Platform {
    answers: BTreeMap<(String, String), Answer>,
    writes: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct Fake {
    platform: Arc<Mutex<Platform>>,
}

impl Fake {
    fn answer(&self, env: &str, service: &str, a: Answer) {
        self.platform
            .lock()
            .unwrap()
            .answers
            .insert((env.to_owned(), service.to_owned()), a);
    }
    fn writes(&self) -> Vec<String> {
        self.platform.lock().unwrap().writes.clone()
    }
}

#[derive(Debug)]
struct FakeProvider {
    fake: Fake,
}

#[async_trait]
impl Provider for FakeProvider {
    fn name(&self) -> &str {
        "p"
    }
    fn capabilities(&self) -> Capabilities<'_> {
        Capabilities {
            env: Some(self),
            logs: Some(self),
            ..Capabilities::none()
        }
    }
    fn deploy_kinds(&self, _service: &str) -> DeployKinds {
        DeployKinds::COMMIT
    }

    async fn locate(&self, environment: &str, service: &str) -> Result<ServiceHandle> {
        let answer = self
            .fake
            .platform
            .lock()
            .unwrap()
            .answers
            .get(&(environment.to_owned(), service.to_owned()))
            .cloned()
            .unwrap_or(Answer::NotFound);
        let refused = |m: &str| Error::Provider {
            provider: "p".into(),
            source: m.to_owned().into(),
            retryable: false,
        };
        match answer {
            Answer::Found(parts) => Ok(ServiceHandle {
                name: service.to_owned(),
                environment: environment.to_owned(),
                id: parts.last().map(|p| p.1).unwrap_or_default().to_owned(),
                identity: Identity::new("p service", parts),
            }),
            Answer::NotFound => Err(Error::not_found(format!("service {service}"))),
            Answer::Unauthenticated => Err(Error::Unauthenticated {
                provider: "p".into(),
                message: "HTTP 401".into(),
            }),
            Answer::Forbidden => Err(Error::PermissionDenied {
                provider: "p".into(),
                message: "HTTP 403".into(),
            }),
            Answer::ServerError => Err(refused("HTTP 500")),
            Answer::Silent => std::future::pending().await,
        }
    }

    async fn live_state(&self, _: &ServiceHandle) -> Result<LiveState> {
        Ok(LiveState {
            latest: None,
            live: None,
            url: None,
        })
    }

    async fn deploy(&self, service: &WriteTarget, _: &DeployRequest) -> Result<Deploy> {
        self.fake
            .platform
            .lock()
            .unwrap()
            .writes
            .push(format!("deploy {}", service.id));
        Ok(Deploy {
            id: "dep-1".into(),
            status: DeployStatus::Queued,
            commit: None,
            image: None,
            raw_status: "queued".into(),
        })
    }

    async fn deploy_status(&self, _: &ServiceHandle, _: &str) -> Result<Deploy> {
        Err(Error::not_found("deploy"))
    }
}

#[async_trait]
impl EnvVars for FakeProvider {
    async fn env_vars(&self, _: &ServiceHandle) -> Result<BTreeMap<String, SecretString>> {
        Ok(BTreeMap::new())
    }

    async fn set_env_var(&self, service: &WriteTarget, key: &str, _: &SecretString) -> Result<()> {
        self.fake
            .platform
            .lock()
            .unwrap()
            .writes
            .push(format!("set {key} on {}", service.id));
        Ok(())
    }

    async fn delete_env_var(&self, _: &WriteTarget, _: &str) -> Result<()> {
        Ok(())
    }
}

#[async_trait]
impl Logs for FakeProvider {
    async fn recent_logs(
        &self,
        _: &ServiceHandle,
        _: Option<&str>,
        _: usize,
    ) -> Result<Vec<String>> {
        Ok(vec![])
    }
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Empty {}

impl ProviderFactory for Fake {
    fn name(&self) -> &'static str {
        "p"
    }
    fn settings_types(&self) -> SettingsTypes {
        SettingsTypes::of::<Empty, Empty>()
    }
    fn check(&self, _: &LoadedSpec, _: &str) -> Result<()> {
        Ok(())
    }
    fn resources(&self, _: &LoadedSpec, _: &str) -> Result<Vec<staging_core::isolation::Resource>> {
        Ok(vec![])
    }
    fn build(&self, _: &LoadedSpec, _: &str) -> Result<DynProvider> {
        Ok(Arc::new(FakeProvider { fake: self.clone() }))
    }
}

fn spec() -> Arc<LoadedSpec> {
    Arc::new(
        LoadedSpec::parse(
            "staging.toml",
            "[project]\nname = \"shop\"\n[environments.staging]\nprovider = \"p\"\npromotes_to = \"production\"\n[environments.production]\nprovider = \"p\"\nprotected = true\n[services.web]\n[services.worker]\n".to_owned(),
            LoadOptions::new(&["p"]),
        )
        .unwrap(),
    )
}

async fn check(fake: &Fake) -> Result<staging_core::isolation::IsolationReport> {
    let registry = ProviderRegistry::new().register(fake.clone());
    check_before_write(&registry, &spec(), "staging", Writes::Run, &NoValues, None)
        .await
        .map(|(report, _)| report)
}

/// Production's web and worker exist; staging's worker does.
fn usual(fake: &Fake) {
    fake.answer(
        "production",
        "web",
        Answer::Found(vec![("service", "svc-web"), ("environment", "env-prod")]),
    );
    fake.answer(
        "production",
        "worker",
        Answer::Found(vec![("service", "svc-worker"), ("environment", "env-prod")]),
    );
    fake.answer(
        "staging",
        "worker",
        Answer::Found(vec![("service", "svc-worker"), ("environment", "env-stg")]),
    );
}

#[tokio::test]
async fn one_service_in_two_environments_of_one_project_is_two_targets() {
    let fake = Fake::default();
    usual(&fake);
    fake.answer(
        "staging",
        "web",
        Answer::Found(vec![("service", "svc-web"), ("environment", "env-stg")]),
    );
    let report = check(&fake).await.unwrap();
    assert_eq!(report.compared_ids_with, ["production"]);
}

#[tokio::test]
async fn production_s_target_is_refused_even_while_another_service_is_still_to_create() {
    let fake = Fake::default();
    usual(&fake);
    // Staging's web resolves to production's instance; staging's worker does not exist yet.
    fake.answer(
        "staging",
        "web",
        Answer::Found(vec![("service", "svc-web"), ("environment", "env-prod")]),
    );
    fake.answer("staging", "worker", Answer::NotFound);
    let err = check(&fake).await.unwrap_err();
    let text = err.to_string();
    assert_eq!(err.class(), ErrorClass::Usage, "{text}");
    assert!(
        text.contains("service `web` of environment `staging`")
            && text.contains("protected environment `production`")
            && text.contains("service=svc-web environment=env-prod"),
        "{text}"
    );
}

#[tokio::test]
async fn another_environment_not_found_through_the_run_s_key_is_an_answer() {
    let fake = Fake::default();
    usual(&fake);
    fake.answer("production", "web", Answer::NotFound);
    fake.answer(
        "staging",
        "web",
        Answer::Found(vec![("service", "svc-web"), ("environment", "env-stg")]),
    );
    let report = check(&fake).await.unwrap();
    assert_eq!(report.not_visible, ["production/web"]);
}

#[tokio::test(start_paused = true)]
async fn every_other_answer_fails_closed_with_exit_3_naming_what_was_not_read() {
    for (env, failure) in [
        ("production", Answer::Unauthenticated),
        ("production", Answer::Forbidden),
        ("production", Answer::ServerError),
        ("production", Answer::Silent),
        ("staging", Answer::Unauthenticated),
        ("staging", Answer::Forbidden),
        ("staging", Answer::ServerError),
        ("staging", Answer::Silent),
    ] {
        let fake = Fake::default();
        usual(&fake);
        fake.answer(
            "staging",
            "web",
            Answer::Found(vec![("service", "svc-web"), ("environment", "env-stg")]),
        );
        fake.answer(env, "web", failure.clone());
        let err = check(&fake).await.unwrap_err();
        let text = err.to_string();
        assert_eq!(
            err.class(),
            ErrorClass::CannotProceed,
            "{failure:?}: {text}"
        );
        assert!(
            text.contains(&format!("service `web` of environment `{env}`")),
            "{failure:?}: {text}"
        );
        if matches!(failure, Answer::Silent) {
            assert!(
                text.contains(&humantime::format_duration(READ_BOUND).to_string()),
                "{text}"
            );
        }
        assert!(fake.writes().is_empty());
    }
}

#[tokio::test]
async fn a_service_that_appears_during_the_run_is_compared_when_it_is_written() {
    let fake = Fake::default();
    usual(&fake);
    fake.answer("staging", "web", Answer::NotFound);
    let registry = ProviderRegistry::new().register(fake.clone());
    let mut ctx = RunContext::new(spec(), "staging", "0123456789abcdef").unwrap();
    ctx.provider = Some(Arc::new(FakeProvider { fake: fake.clone() }));
    IsolationStep::new(registry, Arc::new(NoValues))
        .run(&mut ctx)
        .await
        .unwrap();
    // Created in the run (provision), it turns out to be production's instance.
    fake.answer(
        "staging",
        "web",
        Answer::Found(vec![("service", "svc-web"), ("environment", "env-prod")]),
    );
    ctx.vars
        .insert("RAILS_ENV".into(), SecretString::from("staging"));
    let err = DeployStep.run(&mut ctx).await.unwrap_err().to_string();
    assert!(
        err.contains("service=svc-web environment=env-prod") && err.contains("`production`"),
        "{err}"
    );
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());
}

#[tokio::test]
async fn without_an_isolation_check_the_deploy_step_writes_nothing() {
    let fake = Fake::default();
    usual(&fake);
    let mut ctx = RunContext::new(spec(), "staging", "0123456789abcdef").unwrap();
    ctx.provider = Some(Arc::new(FakeProvider { fake: fake.clone() }));
    let err = DeployStep.run(&mut ctx).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Usage);
    assert!(err.to_string().contains("no isolation check ran"), "{err}");
    assert!(fake.writes().is_empty());
}
