//! A missing staging environment is created from production (and never a protected one);
//! Railway Postgres is a secret source. Through the schema-validating stand-in.

mod support;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use secrecy::{ExposeSecret, SecretString};
use staging_core::{DeployRequest, Error, Provider, ProviderExt, ProviderFactory, SecretStore};
use staging_provider_railway::{CreateFrom, EnvironmentPlan, RailwayFactory, Ref};
use support::StandIn;

fn from_production() -> CreateFrom {
    CreateFrom {
        source: Ref::Name("production".into()),
        source_environment: "production".into(),
    }
}

#[tokio::test]
async fn a_missing_staging_environment_is_created_from_production() {
    let mut s = StandIn::start().await;
    s.reset(&["production"], &["web", "Postgres"]).await;
    let p = s
        .builder()
        .with_create_from(from_production())
        .build()
        .unwrap();

    // A variable read from a service of the environment to create says why it cannot be.
    let store = p.service_variables_store("staging");
    let err = store.get("service:Postgres").await.unwrap_err();
    assert!(err.to_string().contains("does not exist yet"), "{err}");

    // What `plan` shows, before anything is written.
    let plan = p.environment_plan("staging").await.unwrap();
    assert!(
        matches!(&plan, EnvironmentPlan::Create { name, from, .. } if name == "staging" && from == "production"),
        "{plan:?}"
    );
    assert!(s.mutations().await.is_empty(), "planning wrote something");
    let err = p.locate("staging", "web").await.unwrap_err();
    assert!(
        err.to_string().contains("creates it from `production`"),
        "{err}"
    );

    p.ensure_environment("staging").await.unwrap();
    let state = s.state().await;
    let created = &state["created_environments"][0];
    assert_eq!(created["name"], "staging");
    assert_eq!(created["source"], "production");
    assert_eq!(created["stageInitialChanges"], true);
    assert_eq!(created["skipInitialDeploys"], true);

    // Staging's own variables before its first deploy; production's copies stay otherwise.
    let web = p.locate("staging", "web").await.unwrap();
    assert!(
        p.live_state(&web).await.unwrap().latest.is_none(),
        "a deploy started"
    );
    p.set_env_vars(
        &staging_core::testkit::target(&web),
        &BTreeMap::from([(
            "APP_ENV".to_owned(),
            SecretString::from("staging".to_owned()),
        )]),
    )
    .await
    .unwrap();
    let d = p
        .deploy(
            &staging_core::testkit::target(&web),
            &DeployRequest::commit(staging_core::testkit::COMMIT_A),
        )
        .await
        .unwrap();
    p.wait_until_live(&web, &d.id, std::time::Duration::from_secs(30), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        s.mutations().await,
        [
            "environmentCreate",
            "environmentPatchCommitStaged",
            "variableCollectionUpsert",
            "serviceInstanceDeployV2"
        ]
    );
    let state = s.state().await;
    assert_eq!(state["commits"][0]["environment"], "staging");
    assert_eq!(
        state["commits"][0]["skipDeploys"], true,
        "the commit deployed"
    );
    assert!(
        state["staged"].as_object().unwrap().is_empty(),
        "changes left staged: {}",
        state["staged"]
    );
    let vars = p.env_vars(&web).await.unwrap();
    assert_eq!(vars["APP_ENV"].expose_secret(), "staging");
    assert_eq!(
        vars["PORT"].expose_secret(),
        "8080",
        "production's variables were not copied"
    );
    // Once it exists, there is nothing to create.
    assert!(matches!(
        p.environment_plan("staging").await.unwrap(),
        EnvironmentPlan::Exists { .. }
    ));
    s.assert_no_rejected().await;
}

#[tokio::test]
async fn a_protected_environment_is_never_created() {
    let mut s = StandIn::start().await;
    s.reset(&["staging"], &["web"]).await;
    let p = s
        .builder()
        .with_environment(Ref::Name("production".into()))
        .protected(true)
        .with_create_from(CreateFrom {
            source: Ref::Name("staging".into()),
            source_environment: "staging".into(),
        })
        .build()
        .unwrap();
    let err = p.ensure_environment("production").await.unwrap_err();
    assert!(err.to_string().contains("protected"), "{err}");
    assert!(s.mutations().await.is_empty());
    s.assert_no_rejected().await;
}

#[tokio::test]
async fn without_create_if_missing_a_missing_environment_is_not_found() {
    let mut s = StandIn::start().await;
    s.reset(&["production"], &["web"]).await;
    let p = s.provider();
    let err = p.ensure_environment("staging").await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(s.mutations().await.is_empty());
}

static URL: OnceLock<String> = OnceLock::new();

fn lookup(name: &str) -> Option<String> {
    match name {
        "RAILWAY_API_TOKEN" => Some(support::TOKEN.to_owned()),
        "RAILWAY_API_URL" => URL.get().cloned(),
        _ => None,
    }
}

#[tokio::test]
async fn the_postgres_service_url_is_read_as_a_secret() {
    let s = StandIn::start().await;
    URL.set(s.url.clone()).unwrap();
    let spec = support::spec(&s.project_id, "");
    // Through the factory, as `source = { provider = "service:Postgres" }` reaches it.
    let store = RailwayFactory::with_lookup(lookup)
        .secret_store(&spec, "staging")
        .unwrap()
        .expect("railway offers a secret store");
    let public = store.get("service:Postgres").await.unwrap().unwrap();
    assert!(
        public
            .expose_secret()
            .contains("canary-public-staging@proxy.rlwy.net"),
        "the public URL (reachable from CI) is the default"
    );
    let private = store
        .get("service:Postgres:DATABASE_URL")
        .await
        .unwrap()
        .unwrap();
    assert!(
        private
            .expose_secret()
            .contains("canary-private-staging@postgres.railway.internal")
    );
    // Production's store reads production's instance.
    let prod = RailwayFactory::with_lookup(lookup)
        .secret_store(&spec, "production")
        .unwrap()
        .unwrap();
    assert!(
        prod.get("service:Postgres")
            .await
            .unwrap()
            .unwrap()
            .expose_secret()
            .contains("canary-public-production")
    );
    assert!(store.get("service:Redis").await.unwrap().is_none());
    assert!(matches!(
        store.get("postgres:x").await,
        Err(Error::ConfigInvalid { .. })
    ));
    assert!(!store.writable());
    assert!(!format!("{store:?}").contains("canary"));
    assert_eq!(
        store.list(None).await.unwrap(),
        ["service:Postgres", "service:web"]
    );
    s.assert_no_rejected().await;
}
