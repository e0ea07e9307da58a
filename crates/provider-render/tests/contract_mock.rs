//! Request and response shapes of every Render operation the crate calls, against
//! `prism mock` of Render's own API description. Prism answers with the description's
//! examples (ids and names are `"string"` there) and rejects any request that breaks it.

mod support;

use secrecy::{ExposeSecret, SecretString};
use staging_core::{
    DeployRequest, DeployTarget, Provider, ProviderExt, SecretStore, ServiceHandle,
};
use staging_provider_render::{Datastore, JobStatus, ServiceRef};
use support::{mock, provider};

fn handle() -> ServiceHandle {
    ServiceHandle {
        name: "web".into(),
        environment: "staging".into(),
        id: "srv-example".into(),
        identity: staging_core::Identity::new("test service", [("id", "srv-example")]),
    }
}

#[tokio::test]
async fn locates_a_service_by_id() {
    let p = support::builder(&mock().url())
        .with_service("web", ServiceRef::Id("srv-example".into()))
        .build()
        .unwrap();
    let h = p.locate("staging", "web").await.expect("locate by id");
    assert_eq!(h.name, "web");
    assert!(!h.id.is_empty());
    mock().assert_no_violations();
}

#[tokio::test]
async fn locates_a_service_by_name() {
    // The description's example service is named "string".
    let p = support::builder(&mock().url())
        .with_service_in("web", ServiceRef::Name("string".into()), "tea-example")
        .build()
        .unwrap();
    let h = p.locate("staging", "web").await.expect("locate by name");
    assert_eq!(h.environment, "staging");
    let err = provider(&mock().url())
        .locate("staging", "no-such-name")
        .await
        .unwrap_err();
    assert!(
        matches!(err, staging_core::Error::NotFound { .. }),
        "{err:?}"
    );
    mock().assert_no_violations();
}

#[tokio::test]
async fn live_state_reads_service_and_deploys() {
    let state = provider(&mock().url())
        .live_state(&handle())
        .await
        .expect("live state");
    let latest = state.latest.expect("a latest deploy");
    assert_eq!(latest.raw_status, "created");
    assert_eq!(latest.status, staging_core::DeployStatus::Queued);
    mock().assert_no_violations();
}

#[tokio::test]
async fn deploys_a_commit_and_an_image_with_cache_cleared() {
    let p = provider(&mock().url());
    let d = p
        .deploy(
            &staging_core::testkit::target(&handle()),
            &DeployRequest::commit("aaaaaaa1111"),
        )
        .await
        .expect("deploy commit");
    assert!(!d.id.is_empty());
    let image = DeployRequest {
        target: DeployTarget::Image("docker.io/acme/web:1.2.3".into()),
        commit: Some("aaaaaaa1111".into()),
        clear_cache: true,
    };
    p.deploy(&staging_core::testkit::target(&handle()), &image)
        .await
        .expect("deploy image");
    mock().assert_no_violations();
}

#[tokio::test]
async fn reads_one_deploy() {
    let d = provider(&mock().url())
        .deploy_status(&handle(), "dep-example")
        .await
        .expect("deploy status");
    assert_eq!(d.commit.as_deref(), Some("string"));
    assert_eq!(d.image.as_deref(), Some("string"));
    mock().assert_no_violations();
}

#[tokio::test]
async fn cancels_a_deploy() {
    provider(&mock().url())
        .cancel_deploy(&staging_core::testkit::target(&handle()), "dep-example")
        .await
        .expect("cancel");
    mock().assert_no_violations();
}

#[tokio::test]
async fn env_vars_are_read_set_and_deleted_one_key_at_a_time() {
    let p = provider(&mock().url());
    let vars = p.env_vars(&handle()).await.expect("env vars");
    assert!(vars.contains_key("string"));
    p.set_env_var(
        &staging_core::testkit::target(&handle()),
        "JWT_SECRET",
        &SecretString::from("s3cr3t-canary".to_owned()),
    )
    .await
    .expect("set");
    p.delete_env_var(&staging_core::testkit::target(&handle()), "JWT_SECRET")
        .await
        .expect("delete");
    mock().assert_no_violations();
}

#[tokio::test]
async fn env_store_reads_one_key() {
    let store = provider(&mock().url()).env_store(staging_core::testkit::target(&handle()));
    let v = store
        .get("DATABASE_URL")
        .await
        .expect("get")
        .expect("a value");
    assert_eq!(v.expose_secret(), "string");
    assert!(store.writable());
    assert_eq!(store.describe(), "render:env:web");
    mock().assert_no_violations();
}

#[tokio::test]
async fn custom_domains_are_listed_read_and_verified() {
    let p = provider(&mock().url());
    let domains = p.custom_domains(&handle()).await.expect("list");
    assert_eq!(domains.len(), 1);
    let one = p
        .custom_domain(&handle(), "staging.example.com")
        .await
        .expect("retrieve");
    assert!(one.verification_status == "verified" || one.verification_status == "unverified");
    p.verify_custom_domain(&handle(), "staging.example.com")
        .await
        .expect("verify");
    mock().assert_no_violations();
}

#[tokio::test]
async fn postgres_connection_is_a_secret() {
    let p = provider(&mock().url());
    // By name (the example is named "string"), then by id.
    let c = p
        .connection(Datastore::Postgres, "string")
        .await
        .expect("by name");
    assert!(!c.external_url.expose_secret().is_empty());
    p.connection(Datastore::Postgres, "dpg-example")
        .await
        .expect("by id");
    let store = p.datastore_store();
    assert!(
        store
            .get("postgres:string:internal")
            .await
            .expect("get")
            .is_some()
    );
    assert!(format!("{c:?}").contains("REDACTED"));
    mock().assert_no_violations();
}

#[tokio::test]
async fn key_value_connection_is_a_secret() {
    let p = provider(&mock().url());
    let c = p
        .connection(Datastore::KeyValue, "string")
        .await
        .expect("by name");
    assert!(!c.internal_url.expose_secret().is_empty());
    let keys = p
        .datastore_store()
        .list(Some("key_value:"))
        .await
        .expect("list");
    assert_eq!(
        keys,
        vec![
            "key_value:string".to_owned(),
            "key_value:string:internal".to_owned()
        ]
    );
    mock().assert_no_violations();
}

#[tokio::test]
async fn starts_a_job() {
    let job = provider(&mock().url())
        .run_job(&staging_core::testkit::target(&handle()), "bin/migrate")
        .await
        .expect("job");
    assert_eq!(job.status, JobStatus::Pending);
    mock().assert_no_violations();
}

#[tokio::test]
async fn reads_recent_logs() {
    let p = provider(&mock().url());
    let lines = p.recent_logs(&handle(), None, 5).await.expect("logs");
    assert!(!lines.is_empty() && lines.len() <= 5, "{lines:?}");
    let lines = p
        .deploy_logs(&handle(), "dep-example", 3)
        .await
        .expect("deploy logs");
    assert!(lines.iter().all(|l| l.ends_with("string")), "{lines:?}");
    mock().assert_no_violations();
}
