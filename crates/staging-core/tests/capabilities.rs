//! Capabilities are traits handed out through `Provider::capabilities`: the conformance
//! suite says which checks ran and which were skipped, fails a provider that declares what
//! it cannot do, and decorators hand out exactly what the provider they wrap has.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use secrecy::{ExposeSecret, SecretString};
use staging_core::testkit::{self, Outcome};
use staging_core::{
    Capabilities, Capability, Deploy, DeployKinds, DeployRequest, DeployStatus, DeployTarget,
    DynProvider, EnvVars, Error, Identity, LiveState, LoggedProvider, Provider, ProviderExt,
    Result, RetryPolicy, RetryProvider, ServiceHandle, WriteTarget, async_trait,
};

/// How the fake lies, if it does.
#[derive(Debug, Clone, Copy, Default)]
struct Lies {
    /// Declares image deploys, answers NotSupported to them.
    image: bool,
    /// Hands out env vars whose every operation answers NotSupported.
    env: bool,
}

/// An in-memory platform: a deploy is live as soon as it is asked about.
#[derive(Debug, Default)]
struct Fake {
    env: bool,
    lies: Lies,
    deploys: Mutex<Vec<Deploy>>,
    vars: Mutex<BTreeMap<String, SecretString>>,
}

impl Fake {
    fn provider(env: bool, lies: Lies) -> DynProvider {
        Arc::new(Fake {
            env,
            lies,
            ..Fake::default()
        })
    }
}

#[async_trait]
impl Provider for Fake {
    fn name(&self) -> &str {
        "fake"
    }
    fn capabilities(&self) -> Capabilities<'_> {
        Capabilities {
            env: self.env.then_some(self as &dyn EnvVars),
            ..Capabilities::none()
        }
    }
    fn deploy_kinds(&self, _service: &str) -> DeployKinds {
        if self.lies.image {
            DeployKinds::BOTH
        } else {
            DeployKinds::COMMIT
        }
    }
    async fn locate(&self, environment: &str, service: &str) -> Result<ServiceHandle> {
        Ok(ServiceHandle {
            name: service.to_owned(),
            environment: environment.to_owned(),
            id: format!("id-{service}"),
            identity: Identity::new("fake service", [("id", format!("id-{service}"))]),
        })
    }
    async fn live_state(&self, _: &ServiceHandle) -> Result<LiveState> {
        let live = self.deploys.lock().unwrap().last().cloned();
        Ok(LiveState {
            latest: live.clone(),
            live,
            url: None,
        })
    }
    async fn deploy(&self, _: &WriteTarget, request: &DeployRequest) -> Result<Deploy> {
        let DeployTarget::Commit(commit) = &request.target else {
            return Err(Error::not_supported("fake", "deploying an image"));
        };
        let mut deploys = self.deploys.lock().unwrap();
        let d = Deploy {
            id: format!("dep-{}", deploys.len()),
            status: DeployStatus::Live,
            commit: Some(commit.clone()),
            image: Some(format!("registry.example/web:{commit}")),
            raw_status: "live".into(),
        };
        deploys.push(d.clone());
        Ok(d)
    }
    async fn deploy_status(&self, _: &ServiceHandle, deploy_id: &str) -> Result<Deploy> {
        self.deploys
            .lock()
            .unwrap()
            .iter()
            .find(|d| d.id == deploy_id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("deploy {deploy_id}")))
    }
}

#[async_trait]
impl EnvVars for Fake {
    async fn env_vars(&self, _: &ServiceHandle) -> Result<BTreeMap<String, SecretString>> {
        if self.lies.env {
            return Err(Error::not_supported("fake", "reading variables"));
        }
        Ok(self.vars.lock().unwrap().clone())
    }
    async fn set_env_var(&self, _: &WriteTarget, key: &str, value: &SecretString) -> Result<()> {
        if self.lies.env {
            return Err(Error::not_supported("fake", "setting variables"));
        }
        self.vars
            .lock()
            .unwrap()
            .insert(key.to_owned(), value.clone());
        Ok(())
    }
    async fn delete_env_var(&self, _: &WriteTarget, key: &str) -> Result<()> {
        if self.lies.env {
            return Err(Error::not_supported("fake", "deleting variables"));
        }
        self.vars.lock().unwrap().remove(key);
        Ok(())
    }
}

/// The panic message of the suite run against `p`, or `None` when it passed.
async fn suite_panics(p: DynProvider) -> Option<String> {
    let err = tokio::spawn(async move { testkit::run_all(&p, "staging", "web").await })
        .await
        .err()?;
    let payload = err.into_panic();
    Some(
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default(),
    )
}

#[tokio::test]
async fn the_conformance_report_says_which_checks_ran_and_which_were_skipped() {
    let report = testkit::run_all(&Fake::provider(true, Lies::default()), "staging", "web").await;
    assert_eq!(report.outcome("deploy"), Some(&Outcome::Ran));
    assert_eq!(report.outcome("env"), Some(&Outcome::Ran));
    assert_eq!(report.outcome("declared"), Some(&Outcome::Ran));
    assert_eq!(
        report.outcome("deploy_image"),
        Some(&Outcome::Skipped(
            "no image deploys declared for `web`".into()
        ))
    );
    for skipped in [
        "rollback",
        "rollback_to",
        "logs",
        "cancel",
        "environment_setup",
    ] {
        assert!(
            matches!(report.outcome(skipped), Some(Outcome::Skipped(why)) if why.contains("not implemented")),
            "{skipped}: {report}"
        );
    }
    let printed = report.to_string();
    assert!(
        printed.starts_with(
            "conformance of fake: deploy ran, env ran, rollback skipped (rollback not implemented)"
        ),
        "{printed}"
    );
    assert!(
        printed.contains("cancel skipped (cancel not implemented)"),
        "{printed}"
    );
}

#[tokio::test]
async fn a_provider_without_env_vars_has_its_env_check_skipped_not_passed() {
    let report = testkit::run_all(&Fake::provider(false, Lies::default()), "staging", "web").await;
    assert_eq!(
        report.outcome("env"),
        Some(&Outcome::Skipped("env not implemented".into()))
    );
    assert!(!report.ran().contains(&"env"), "{report}");
    assert!(report.skipped().contains(&"env"), "{report}");
}

#[tokio::test]
async fn the_suite_fails_a_provider_that_declares_image_deploys_it_refuses() {
    let lies = Lies {
        image: true,
        ..Lies::default()
    };
    let message = suite_panics(Fake::provider(true, lies))
        .await
        .expect("the suite passed a provider that lies about image deploys");
    assert!(
        message.contains("fake declares image deploys for `web` but does not implement it"),
        "{message}"
    );
}

#[tokio::test]
async fn the_suite_fails_a_provider_that_hands_out_env_vars_answering_not_supported() {
    let lies = Lies {
        env: true,
        ..Lies::default()
    };
    let message = suite_panics(Fake::provider(true, lies))
        .await
        .expect("the suite passed a provider whose env vars are not supported");
    assert!(
        message.contains("fake declares env but does not implement it"),
        "{message}"
    );
}

#[tokio::test]
async fn an_absent_capability_answers_not_supported_naming_provider_and_operation() {
    let p = Fake::provider(false, Lies::default());
    let svc = p.locate("staging", "web").await.unwrap();
    let target = testkit::target(&svc);
    let err = p.rollback(&target).await.unwrap_err();
    assert!(
        matches!(&err, Error::NotSupported { provider, operation } if provider == "fake" && operation == "rolling back"),
        "{err:?}"
    );
    let err = p.env_vars(&svc).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "fake does not support reading environment variables"
    );
    assert!(matches!(
        p.cancel_deploy(&target, "dep-0").await,
        Err(Error::NotSupported { .. })
    ));
    assert!(matches!(
        p.recent_logs(&svc, None, 5).await,
        Err(Error::NotSupported { .. })
    ));
    // Environment setup is optional in the other sense: without it, every environment is
    // ready and preparing one does nothing.
    assert_eq!(p.environment_setup("staging").await.unwrap(), None);
}

#[tokio::test]
async fn decorators_hand_out_exactly_the_capabilities_of_the_provider_they_wrap() {
    for env in [true, false] {
        let inner = Fake::provider(env, Lies::default());
        let logged = LoggedProvider::new(inner.clone());
        let retried = RetryProvider::new(inner.clone(), RetryPolicy::default());
        for (which, caps) in [
            ("logged", logged.capabilities()),
            ("retried", retried.capabilities()),
        ] {
            for capability in Capability::ALL {
                assert_eq!(
                    caps.has(capability),
                    inner.capabilities().has(capability),
                    "{which} with env {env}: {capability:?}"
                );
            }
        }
        // What it hands out is the decorator itself (so its calls are logged), not the
        // provider it wraps.
        if let Some(e) = logged.capabilities().env {
            assert!(std::ptr::addr_eq(
                e as *const dyn EnvVars,
                &logged as *const LoggedProvider
            ));
        }
    }
}

#[tokio::test]
async fn a_logged_provider_writes_through_to_the_provider_it_wraps() {
    let inner = Fake::provider(true, Lies::default());
    let logged: DynProvider = LoggedProvider::wrap(inner.clone());
    let svc = logged.locate("staging", "web").await.unwrap();
    logged
        .set_env_var(&testkit::target(&svc), "K", &SecretString::from("v"))
        .await
        .unwrap();
    let vars = inner.env_vars(&svc).await.unwrap();
    assert_eq!(vars.get("K").map(|v| v.expose_secret()), Some("v"));
    assert!(matches!(
        logged.rollback(&testkit::target(&svc)).await,
        Err(Error::NotSupported { .. })
    ));
}
