//! The Netlify provider against Netlify's own API description: `prism mock` for request and
//! response shapes, `prism proxy --errors` in front of a stateful fake for deploy states,
//! rate limits, server errors and malformed answers, and core's conformance suite.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use staging_core::{
    Capabilities, Deploy, DeployRequest, DeployStatus, DynProvider, Error, LiveState, Provider,
    ProviderExt, RetryPolicy, RetryProvider, SecretStore, ServiceHandle, async_trait,
};
use staging_provider_netlify::{DeployContext, NetlifyProvider, SiteRef, SiteTarget};
use support::fake::Fault;

const WAIT: Duration = Duration::from_secs(60);
const SHA_1: &str = "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SHA_2: &str = "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn develop() -> DeployContext {
    DeployContext::Branch("develop".into())
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

// ---------------------------------------------------------------- prism mock: shapes

fn mock_provider(context: DeployContext) -> NetlifyProvider {
    // Prism's generated examples name every site "string".
    let mut target = SiteTarget::new(SiteRef::Name("string".into()), context);
    target.account_id = Some("acct-mock".into());
    support::builder(&support::mock().url)
        .with_site("web", target)
        .build()
        .unwrap()
}

#[tokio::test]
async fn every_read_is_accepted_by_the_contract_and_its_answers_parse() {
    let p = mock_provider(DeployContext::Production);
    let svc = p.locate("staging", "web").await.expect("listSites by name");
    assert_eq!(svc.id, "string");
    let state = p.live_state(&svc).await.expect("listSiteDeploys + getSite");
    assert!(state.latest.is_some() && state.live.is_some(), "{state:?}");
    let d = p.deploy_status(&svc, "dpl-1").await.expect("getSiteDeploy");
    assert_eq!(
        d.raw_status, "string",
        "an unknown state is reported as Netlify's word"
    );
    let vars = p
        .env_vars(&svc)
        .await
        .expect("getSiteEnvVars at /api/v1/sites/{site_id}/env");
    assert!(vars.contains_key("string"), "{:?}", vars.keys());
    let store = Arc::new(mock_provider(DeployContext::Production))
        .env_store(staging_core::testkit::target(&svc));
    assert!(store.get("string").await.expect("getEnvVar").is_some());
}

#[tokio::test]
async fn every_write_is_accepted_by_the_contract() {
    let p = mock_provider(develop());
    let svc = p.locate("staging", "web").await.unwrap();
    let d = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit(SHA_1),
        )
        .await
        .expect("createSiteBuild with branch");
    assert_eq!(d.id, "string");
    // The mock's variable has an `all` value, so setting one context splits it (updateEnvVar).
    p.set_env_var(
        &staging_core::testkit::target(&svc),
        "API_URL",
        &secret("https://staging-api.example.com"),
    )
    .await
    .expect("updateEnvVar");
    p.delete_env_var(&staging_core::testkit::target(&svc), "API_URL")
        .await
        .expect("updateEnvVar on delete");

    let prod = mock_provider(DeployContext::Production);
    let svc = prod.locate("production", "web").await.unwrap();
    prod.lock_published_deploy(&staging_core::testkit::target(&svc))
        .await
        .expect("lockDeploy");
    prod.unlock_published_deploy(&staging_core::testkit::target(&svc))
        .await
        .expect("unlockDeploy");
}

#[tokio::test]
async fn cancel_is_accepted_by_the_contract_and_its_answer_reads_as_canceled() {
    let p = mock_provider(develop());
    assert!(p.capabilities().cancel.is_some(), "cancel is declared");
    let svc = p.locate("staging", "web").await.unwrap();
    // The mock answers 201 ("Cancelled") with state "string": whatever word the answer
    // shows, an accepted cancel means the deploy will not go live.
    let d = p
        .cancel_deploy(&staging_core::testkit::target(&svc), "dpl-1")
        .await
        .expect("cancelSiteDeploy");
    assert_eq!(d.status, DeployStatus::Canceled, "{d:?}");
}

// ---------------------------------------------------------------- proxy + fake: behaviour

#[tokio::test]
async fn deploy_waits_until_ready_and_reports_the_commit() {
    let fake = &support::stack().fake;
    let (site, _) = fake.add_site("app");
    fake.push(&site, "develop", SHA_1);
    let p = support::provider(&site, develop());
    let svc = p.locate("staging", "web").await.unwrap();
    let d = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit(SHA_1),
        )
        .await
        .unwrap();
    let mut seen = vec![];
    let live = p
        .wait_until_live(&svc, &d.id, WAIT, &mut |w| {
            seen.push(w.deploy.raw_status.clone())
        })
        .await
        .unwrap();
    assert_eq!(live.commit.as_deref(), Some(SHA_1));
    assert_eq!(
        seen.first().map(String::as_str),
        Some("building"),
        "{seen:?}"
    );
    assert!(
        fake.calls(&site)
            .contains(&"POST builds develop".to_owned()),
        "{:?}",
        fake.calls(&site)
    );

    let state = p.live_state(&svc).await.unwrap();
    assert_eq!(state.live_commit(), Some(SHA_1));
    assert_eq!(
        state.latest.as_ref().map(|d| d.id.as_str()),
        Some(d.id.as_str())
    );
    let name = fake.with_site(&site, |s| s.name.clone());
    assert_eq!(
        state.url.unwrap().as_str(),
        format!("https://develop--{name}.netlify.app/")
    );
}

#[tokio::test]
async fn a_failed_build_fails_the_wait_with_netlifys_error() {
    let fake = &support::stack().fake;
    let (site, _) = fake.add_site("app");
    fake.push(&site, "develop", SHA_1);
    fake.with_site(&site, |s| s.next_script = vec!["new", "building", "error"]);
    let p = support::provider(&site, develop());
    let svc = p.locate("staging", "web").await.unwrap();
    let d = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit(SHA_1),
        )
        .await
        .unwrap();
    let err = p
        .wait_until_live(&svc, &d.id, WAIT, &mut |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Failed { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("error: Build script returned non-zero exit code"),
        "{err}"
    );
}

#[tokio::test]
async fn a_build_of_another_commit_fails_instead_of_passing_as_live() {
    let fake = &support::stack().fake;
    let (site, _) = fake.add_site("app");
    fake.push(&site, "develop", SHA_1); // SHA_2 was never pushed
    let p = support::provider(&site, develop());
    let svc = p.locate("staging", "web").await.unwrap();
    let d = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit(SHA_2),
        )
        .await
        .unwrap();
    let err = p
        .wait_until_live(&svc, &d.id, WAIT, &mut |_| {})
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("built commit {SHA_1}, not {SHA_2}")),
        "{err}"
    );
}

#[tokio::test]
async fn waiting_is_bounded_when_a_build_never_finishes() {
    let fake = &support::stack().fake;
    let (site, _) = fake.add_site("app");
    fake.push(&site, "develop", SHA_1);
    fake.with_site(&site, |s| s.next_script = vec!["new", "enqueued"]);
    let p = support::provider(&site, develop());
    let svc = p.locate("staging", "web").await.unwrap();
    let d = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit(SHA_1),
        )
        .await
        .unwrap();
    let err = p
        .wait_until_live(&svc, &d.id, Duration::from_millis(300), &mut |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn a_429_while_waiting_is_honoured_and_the_wait_goes_on() {
    let fake = &support::stack().fake;
    let (site, _) = fake.add_site("app");
    fake.push(&site, "develop", SHA_1);
    let p = support::provider(&site, develop());
    let svc = p.locate("staging", "web").await.unwrap();
    let d = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit(SHA_1),
        )
        .await
        .unwrap();
    // The client waits the named second out and asks again.
    fake.fail_next(&site, Fault::RateLimited(1));
    p.deploy_status(&svc, &d.id)
        .await
        .expect("read again after the 429");
    fake.fail_next(&site, Fault::RateLimited(1));
    let live = p
        .wait_until_live(&svc, &d.id, WAIT, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(live.status, DeployStatus::Live);
}

#[tokio::test]
async fn server_errors_on_reads_are_retried_by_the_shared_client() {
    let fake = &support::stack().fake;
    let (site, _) = fake.add_site("app");
    let inner = support::provider(&site, develop());
    let svc = inner.locate("staging", "web").await.unwrap();
    // The shared client sends a read again on 502/503 itself, without the decorator.
    fake.fail_next(&site, Fault::Server(502));
    fake.fail_next(&site, Fault::Server(503));
    inner
        .live_state(&svc)
        .await
        .expect("the read is sent again past two 5xx");
    fake.fail_next(&site, Fault::Server(503));
    let policy = RetryPolicy {
        initial: Duration::from_millis(10),
        ..RetryPolicy::default()
    };
    let p = RetryProvider::new(inner, policy);
    p.live_state(&svc).await.expect("retried past a 5xx");
}

#[tokio::test]
async fn a_malformed_answer_is_an_error_not_a_hang() {
    let fake = &support::stack().fake;
    let (site, _) = fake.add_site("app");
    let p = support::provider(&site, develop());
    let svc = p.locate("staging", "web").await.unwrap();
    fake.fail_next(&site, Fault::MalformedJson);
    let err = p.deploy_status(&svc, "dpl-x").await.unwrap_err();
    assert!(matches!(err, Error::Provider { .. }), "{err:?}");
    for shown in [format!("{err:?}"), err.to_string(), format!("{p:?}")] {
        assert!(
            !shown.contains("test-token-canary-3141"),
            "the token leaked: {shown}"
        );
    }
}

#[tokio::test]
async fn the_stand_ins_reject_what_the_contract_does_not_allow() {
    let http = reqwest::Client::new();
    for base in [&support::mock().url, &support::stack().proxy.url] {
        let no_token = http.get(format!("{base}/sites")).send().await.unwrap();
        assert_eq!(
            no_token.status(),
            401,
            "{base}: a request without a bearer token"
        );
        let bad_enum = http
            .get(format!("{base}/accounts/a1/env"))
            .bearer_auth("t")
            .query(&[("context_name", "branch")])
            .send()
            .await
            .unwrap();
        assert_eq!(
            bad_enum.status(),
            422,
            "{base}: `branch` is not a context_name the env list accepts"
        );
        let violations = bad_enum
            .headers()
            .get("sl-violations")
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let body = bad_enum.text().await.unwrap_or_default();
        assert!(
            violations.is_some() || body.contains("context_name"),
            "{base}: no violation reported: {body}"
        );
    }
}

#[tokio::test]
async fn locate_by_name_pages_through_the_sites() {
    let fake = &support::stack().fake;
    // 101 other sites whose names contain the wanted one: the match is on page two.
    for _ in 0..101 {
        fake.add_site("pager-site");
    }
    let (want, name) = fake.add_site("pager");
    let mut target = support::target("unused", develop());
    target.site = SiteRef::Name(name.clone());
    let p = support::builder(&support::stack().proxy.url)
        .with_site("web", target)
        .build()
        .unwrap();
    let svc = p.locate("staging", "web").await.unwrap();
    assert_eq!(svc.id, want);

    let mut target = support::target("unused", develop());
    target.site = SiteRef::Name("no-such-site-anywhere".into());
    let p = support::builder(&support::stack().proxy.url)
        .with_site("web", target)
        .build()
        .unwrap();
    assert!(matches!(
        p.locate("staging", "web").await.unwrap_err(),
        Error::NotFound { .. }
    ));
}

#[tokio::test]
async fn restore_publishes_the_previous_deploy_and_lock_holds_it() {
    let fake = &support::stack().fake;
    let (site, _) = fake.add_site("shop");
    let p = support::provider(&site, DeployContext::Production);
    let svc = p.locate("production", "web").await.unwrap();
    for sha in [SHA_1, SHA_2] {
        fake.push(&site, "main", sha);
        let d = p
            .deploy(
                &staging_core::testkit::target(&svc),
                &DeployRequest::commit(sha),
            )
            .await
            .unwrap();
        p.wait_until_live(&svc, &d.id, WAIT, &mut |_| {})
            .await
            .unwrap();
    }
    let restored = p
        .rollback(&staging_core::testkit::target(&svc))
        .await
        .unwrap();
    assert_eq!(restored.commit.as_deref(), Some(SHA_1));
    assert_eq!(p.live_state(&svc).await.unwrap().live_commit(), Some(SHA_1));

    let locked = p
        .lock_published_deploy(&staging_core::testkit::target(&svc))
        .await
        .unwrap();
    assert_eq!(locked.id, restored.id);
    // While locked, a new production build is ready but not published: the wait says so.
    fake.push(&site, "main", SHA_2);
    let d = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit(SHA_2),
        )
        .await
        .unwrap();
    let err = p
        .wait_until_live(&svc, &d.id, WAIT, &mut |_| {})
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("auto publishing is locked"),
        "{err}"
    );
    p.unlock_published_deploy(&staging_core::testkit::target(&svc))
        .await
        .unwrap();
    assert!(
        fake.calls(&site)
            .iter()
            .any(|c| c.starts_with("POST unlock"))
    );
}

#[tokio::test]
async fn logs_of_a_deploy_are_its_record_created_ready_and_published() {
    let fake = &support::stack().fake;
    let (site, _) = fake.add_site("shop");
    let p = support::provider(&site, DeployContext::Production);
    let svc = p.locate("production", "web").await.unwrap();
    fake.push(&site, "main", SHA_1);
    let d = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit(SHA_1),
        )
        .await
        .unwrap();
    p.wait_until_live(&svc, &d.id, WAIT, &mut |_| {})
        .await
        .unwrap();
    let query = staging_core::LogQuery {
        deploy_id: Some(d.id.clone()),
        ..staging_core::LogQuery::last(10)
    };
    let lines = p.logs(&svc, &query).await.expect("logs");
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert!(
        texts[0].starts_with(&format!("deploy {} created", d.id))
            && texts[0].contains(&SHA_1[..12]),
        "{texts:?}"
    );
    assert!(
        texts.contains(&format!("deploy {} is ready", d.id).as_str()),
        "{texts:?}"
    );
    let last = p
        .logs(&svc, &staging_core::LogQuery::last(1))
        .await
        .expect("logs");
    assert_eq!(last.len(), 1, "--lines is not honoured: {last:?}");
}

#[tokio::test]
async fn canceling_a_building_deploy_stops_it_and_the_published_deploy_stays_live() {
    let fake = &support::stack().fake;
    let (site, _) = fake.add_site("shop");
    let p = support::provider(&site, DeployContext::Production);
    let svc = p.locate("production", "web").await.unwrap();
    fake.push(&site, "main", SHA_1);
    let first = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit(SHA_1),
        )
        .await
        .unwrap();
    p.wait_until_live(&svc, &first.id, WAIT, &mut |_| {})
        .await
        .unwrap();

    fake.push(&site, "main", SHA_2);
    let d = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit(SHA_2),
        )
        .await
        .unwrap();
    let building = p.deploy_status(&svc, &d.id).await.unwrap();
    assert_eq!(building.status, DeployStatus::InProgress, "{building:?}");

    let canceled = p
        .cancel_deploy(&staging_core::testkit::target(&svc), &d.id)
        .await
        .expect("cancel");
    assert_eq!(canceled.status, DeployStatus::Canceled, "{canceled:?}");
    assert_eq!(canceled.raw_status, "error: Canceled build");
    assert!(fake.deploy(&site, &d.id).canceled, "Netlify was not asked");

    // Netlify keeps it as `error`, "Canceled build": read back it is canceled, not failed,
    // it never becomes ready, and the published deploy is still the first one.
    let err = p
        .wait_until_live(&svc, &d.id, WAIT, &mut |_| {})
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("ended as canceled (error: Canceled build)"),
        "{err}"
    );
    assert_eq!(fake.published(&site), Some(first.id.clone()));
    let state = p.live_state(&svc).await.unwrap();
    assert_eq!(state.live_commit(), Some(SHA_1));
    assert_eq!(
        state.latest.map(|l| (l.id, l.status)),
        Some((d.id.clone(), DeployStatus::Canceled))
    );

    // Netlify refuses a second cancel; the answer is the deploy as it is: still canceled.
    let again = p
        .cancel_deploy(&staging_core::testkit::target(&svc), &d.id)
        .await
        .expect("cancel again");
    assert_eq!(again.status, DeployStatus::Canceled, "{again:?}");
}

#[tokio::test]
async fn canceling_a_deploy_that_is_already_live_is_refused_and_reports_it_live() {
    let fake = &support::stack().fake;
    let (site, _) = fake.add_site("app");
    fake.push(&site, "develop", SHA_1);
    let p = support::provider(&site, develop());
    let svc = p.locate("staging", "web").await.unwrap();
    let d = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit(SHA_1),
        )
        .await
        .unwrap();
    p.wait_until_live(&svc, &d.id, WAIT, &mut |_| {})
        .await
        .unwrap();

    let answer = p
        .cancel_deploy(&staging_core::testkit::target(&svc), &d.id)
        .await
        .expect("a late cancel");
    assert_eq!(answer.status, DeployStatus::Live, "{answer:?}");
    assert_eq!(answer.commit.as_deref(), Some(SHA_1));
    assert!(
        fake.calls(&site).contains(&format!("POST cancel {}", d.id)),
        "{:?}",
        fake.calls(&site)
    );
    assert_eq!(fake.deploy(&site, &d.id).state(), "ready");
    assert_eq!(p.live_state(&svc).await.unwrap().live_commit(), Some(SHA_1));
}

#[tokio::test]
async fn canceling_a_deploy_that_already_failed_reports_the_failure() {
    let fake = &support::stack().fake;
    let (site, _) = fake.add_site("app");
    fake.push(&site, "develop", SHA_1);
    fake.with_site(&site, |s| s.next_script = vec!["new", "error"]);
    let p = support::provider(&site, develop());
    let svc = p.locate("staging", "web").await.unwrap();
    let d = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit(SHA_1),
        )
        .await
        .unwrap();
    assert_eq!(
        p.deploy_status(&svc, &d.id).await.unwrap().status,
        DeployStatus::Failed
    );
    let answer = p
        .cancel_deploy(&staging_core::testkit::target(&svc), &d.id)
        .await
        .expect("cancel");
    assert_eq!(answer.status, DeployStatus::Failed, "{answer:?}");
    assert!(
        answer
            .raw_status
            .contains("Build script returned non-zero exit code"),
        "{answer:?}"
    );
    assert!(!fake.deploy(&site, &d.id).canceled);
}

#[tokio::test]
async fn a_refused_cancel_of_a_deploy_still_building_is_a_conflict_not_a_spec_error() {
    let fake = &support::stack().fake;
    let (site, _) = fake.add_site("app");
    fake.push(&site, "develop", SHA_1);
    let p = support::provider(&site, develop());
    let svc = p.locate("staging", "web").await.unwrap();
    let d = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit(SHA_1),
        )
        .await
        .unwrap();
    fake.fail_next(&site, Fault::Refused(422));
    let err = p
        .cancel_deploy(&staging_core::testkit::target(&svc), &d.id)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    assert!(err.to_string().contains("refused by the fake"), "{err}");
    assert!(!fake.deploy(&site, &d.id).canceled);
    for shown in [format!("{err:?}"), err.to_string()] {
        assert!(
            !shown.contains("test-token-canary-3141"),
            "the token leaked: {shown}"
        );
    }
}

#[tokio::test]
async fn canceling_an_unknown_deploy_is_not_found() {
    let fake = &support::stack().fake;
    let (site, _) = fake.add_site("app");
    let p = support::provider(&site, develop());
    let svc = p.locate("staging", "web").await.unwrap();
    let err = p
        .cancel_deploy(&staging_core::testkit::target(&svc), "dpl-nowhere")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn a_429_on_cancel_is_waited_out_and_the_cancel_sent_once_more() {
    let fake = &support::stack().fake;
    let (site, _) = fake.add_site("app");
    fake.push(&site, "develop", SHA_1);
    let inner = support::provider(&site, develop());
    let svc = inner.locate("staging", "web").await.unwrap();
    let d = inner
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit(SHA_1),
        )
        .await
        .unwrap();
    fake.fail_next(&site, Fault::RateLimited(1));
    let p = RetryProvider::new(inner, RetryPolicy::default());
    let canceled = p
        .cancel_deploy(&staging_core::testkit::target(&svc), &d.id)
        .await
        .expect("retried past 429");
    assert_eq!(canceled.status, DeployStatus::Canceled);
    let cancels = fake
        .calls(&site)
        .iter()
        .filter(|c| c.starts_with("POST cancel"))
        .count();
    assert_eq!(cancels, 2, "one refused with 429, one accepted");
}

#[tokio::test]
async fn a_branch_context_cannot_roll_back_or_lock() {
    let fake = &support::stack().fake;
    let (site, _) = fake.add_site("app");
    let p = support::provider(&site, develop());
    let svc = p.locate("staging", "web").await.unwrap();
    assert!(p.capabilities().rollback.is_none());
    assert!(matches!(
        p.rollback(&staging_core::testkit::target(&svc))
            .await
            .unwrap_err(),
        Error::NotSupported { .. }
    ));
    assert!(matches!(
        p.lock_published_deploy(&staging_core::testkit::target(&svc))
            .await
            .unwrap_err(),
        Error::NotSupported { .. }
    ));
}

#[tokio::test]
async fn a_build_hook_deploy_finds_the_deploy_it_started() {
    let fake = &support::stack().fake;
    let (site, _) = fake.add_site("app");
    fake.push(&site, "develop", SHA_1);
    let mut target = support::target(&site, develop());
    target.build_hook = Some(secret(&fake.add_hook(&site, "develop")));
    let p = support::builder(&support::stack().proxy.url)
        .with_site("web", target)
        .build()
        .unwrap();
    let svc = p.locate("staging", "web").await.unwrap();
    let d = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit(SHA_1),
        )
        .await
        .unwrap();
    let live = p
        .wait_until_live(&svc, &d.id, WAIT, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(live.commit.as_deref(), Some(SHA_1));
    let calls = fake.calls(&site);
    assert!(
        calls.iter().any(|c| c.starts_with("POST build_hook"))
            && !calls.iter().any(|c| c.starts_with("POST builds")),
        "{calls:?}"
    );
}

fn values_of(fake: &support::fake::Fake, site: &str, key: &str) -> Vec<serde_json::Value> {
    fake.with_site(site, |s| {
        let var = s.env.iter().find(|v| v["key"] == key).cloned().unwrap_or(json!({ "values": [] }));
        let mut values: Vec<_> = var["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| json!({ "context": v["context"], "context_parameter": v.get("context_parameter"), "value": v["value"] }))
            .collect();
        values.sort_by_key(|v| v.to_string());
        values
    })
}

#[tokio::test]
async fn env_vars_per_context_never_clobber_other_contexts() {
    let fake = &support::stack().fake;
    let (site, _) = fake.add_site("app");
    fake.with_site(&site, |s| {
        s.env.push(json!({ "key": "API_URL", "scopes": ["builds"], "values": [
            { "id": "v1", "context": "production", "value": "https://api.example.com" },
            { "id": "v2", "context": "deploy-preview", "value": "https://preview-api.example.com" },
        ]}));
        s.env.push(json!({ "key": "NODE_VERSION", "values": [{ "id": "v3", "context": "all", "value": "20" }] }));
    });
    let staging = Arc::new(support::provider(&site, develop()));
    let svc = staging.locate("staging", "web").await.unwrap();

    staging
        .set_env_var(
            &staging_core::testkit::target(&svc),
            "API_URL",
            &secret("https://staging-api.example.com"),
        )
        .await
        .unwrap();
    let api = values_of(fake, &site, "API_URL");
    assert_eq!(api.len(), 3, "{api:?}");
    assert!(api.contains(&json!({ "context": "production", "context_parameter": null, "value": "https://api.example.com" })));
    assert!(api.contains(&json!({ "context": "branch", "context_parameter": "develop", "value": "https://staging-api.example.com" })));

    // An `all` value is split so that only the branch gets the new one.
    staging
        .set_env_var(
            &staging_core::testkit::target(&svc),
            "NODE_VERSION",
            &secret("22"),
        )
        .await
        .unwrap();
    let prod = support::provider(&site, DeployContext::Production);
    let prod_svc = prod.locate("production", "web").await.unwrap();
    assert_eq!(
        prod.env_vars(&prod_svc).await.unwrap()["NODE_VERSION"].expose_secret(),
        "20"
    );
    let vars = staging.env_vars(&svc).await.unwrap();
    assert_eq!(vars["NODE_VERSION"].expose_secret(), "22");
    assert_eq!(
        vars["API_URL"].expose_secret(),
        "https://staging-api.example.com"
    );

    // The same through the SecretStore, and deleting only the branch's own value.
    let store = staging.env_store(staging_core::testkit::target(&svc));
    assert_eq!(
        store.get("API_URL").await.unwrap().unwrap().expose_secret(),
        "https://staging-api.example.com"
    );
    store
        .put("SESSION_SECRET", &secret("store-canary-2718"))
        .await
        .unwrap();
    assert!(
        store
            .list(Some("SESSION"))
            .await
            .unwrap()
            .contains(&"SESSION_SECRET".to_owned())
    );
    assert!(!format!("{store:?}").contains("store-canary-2718"));
    staging
        .delete_env_var(&staging_core::testkit::target(&svc), "API_URL")
        .await
        .unwrap();
    assert_eq!(values_of(fake, &site, "API_URL").len(), 2);
    assert_eq!(
        prod.env_vars(&prod_svc).await.unwrap()["API_URL"].expose_secret(),
        "https://api.example.com"
    );
}

#[tokio::test]
async fn a_secret_variable_is_created_is_secret_and_never_read_back() {
    let fake = &support::stack().fake;
    let (site, _) = fake.add_site("secret-app");
    let staging = support::builder(&support::stack().proxy.url)
        .with_site("web", support::target(&site, develop()))
        .with_secret_names(["JWT_SECRET".to_owned()])
        .build()
        .unwrap();
    let svc = staging.locate("staging", "web").await.unwrap();
    let canary = "canary-netlify-secret-6021";
    staging
        .set_env_var(
            &staging_core::testkit::target(&svc),
            "JWT_SECRET",
            &secret(canary),
        )
        .await
        .unwrap();
    staging
        .set_env_var(
            &staging_core::testkit::target(&svc),
            "PUBLIC_URL",
            &secret("https://staging.example.com"),
        )
        .await
        .unwrap();
    let (jwt, public) = fake.with_site(&site, |s| {
        let find = |k: &str| s.env.iter().find(|v| v["key"] == k).cloned().unwrap();
        (find("JWT_SECRET"), find("PUBLIC_URL"))
    });
    // Stored with the flag, in the scopes secret values may have, for the branch alone.
    assert_eq!(jwt["is_secret"], json!(true), "{jwt}");
    assert_eq!(
        jwt["scopes"],
        json!(["builds", "functions", "runtime"]),
        "{jwt}"
    );
    assert_eq!(jwt["values"].as_array().unwrap().len(), 1, "{jwt}");
    assert_eq!(jwt["values"][0]["context"], json!("branch"));
    assert_ne!(public["is_secret"], json!(true), "{public}");
    // Netlify does not return a secret's value: it is not read back, the plain one is.
    let vars = staging.env_vars(&svc).await.unwrap();
    assert!(!vars.contains_key("JWT_SECRET"), "{:?}", vars.keys());
    assert_eq!(
        vars["PUBLIC_URL"].expose_secret(),
        "https://staging.example.com"
    );
    // Setting it again (every run does, as it cannot be compared) patches the branch's
    // value of the secret variable.
    staging
        .set_env_var(
            &staging_core::testkit::target(&svc),
            "JWT_SECRET",
            &secret("canary-netlify-secret-6022"),
        )
        .await
        .unwrap();
    let values = values_of(fake, &site, "JWT_SECRET");
    assert_eq!(values.len(), 1, "{values:?}");
    assert_eq!(values[0]["value"], json!("canary-netlify-secret-6022"));
}

// ---------------------------------------------------------------- conformance

/// `git push` before each deploy, as CI does before `staging deploy`: Netlify builds the
/// branch's head, so the suite's commits must be there first.
#[derive(Debug)]
struct PushThenDeploy {
    inner: NetlifyProvider,
    site: String,
    branch: &'static str,
}

/// A decorator: it hands out exactly the capabilities the Netlify provider has.
#[async_trait]
impl Provider for PushThenDeploy {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn pacing(&self) -> staging_core::Pacing {
        self.inner.pacing()
    }
    fn capabilities(&self) -> Capabilities<'_> {
        let inner = self.inner.capabilities();
        Capabilities {
            env: inner.env.map(|_| self as &dyn staging_core::EnvVars),
            rollback: inner.rollback.map(|_| self as &dyn staging_core::Rollback),
            logs: inner.logs.map(|_| self as &dyn staging_core::Logs),
            cancel: inner.cancel.map(|_| self as &dyn staging_core::Cancel),
            ..Capabilities::none()
        }
    }
    fn deploy_kinds(&self, service: &str) -> staging_core::DeployKinds {
        self.inner.deploy_kinds(service)
    }
    async fn locate(
        &self,
        environment: &str,
        service: &str,
    ) -> staging_core::Result<ServiceHandle> {
        self.inner.locate(environment, service).await
    }
    async fn live_state(&self, service: &ServiceHandle) -> staging_core::Result<LiveState> {
        self.inner.live_state(service).await
    }
    async fn deploy(
        &self,
        service: &staging_core::WriteTarget,
        request: &DeployRequest,
    ) -> staging_core::Result<Deploy> {
        if let Some(c) = &request.commit {
            support::stack().fake.push(&self.site, self.branch, c);
        }
        self.inner
            .deploy(&staging_core::testkit::target(service), request)
            .await
    }
    async fn deploy_status(
        &self,
        service: &ServiceHandle,
        deploy_id: &str,
    ) -> staging_core::Result<Deploy> {
        self.inner.deploy_status(service, deploy_id).await
    }
}

#[async_trait]
impl staging_core::Rollback for PushThenDeploy {
    async fn rollback(&self, service: &staging_core::WriteTarget) -> staging_core::Result<Deploy> {
        ProviderExt::rollback(&self.inner, &staging_core::testkit::target(service)).await
    }
    async fn rollback_to(
        &self,
        service: &staging_core::WriteTarget,
        deploy_id: &str,
    ) -> staging_core::Result<Deploy> {
        ProviderExt::rollback_to(
            &self.inner,
            &staging_core::testkit::target(service),
            deploy_id,
        )
        .await
    }
}

#[async_trait]
impl staging_core::EnvVars for PushThenDeploy {
    async fn env_vars(
        &self,
        service: &ServiceHandle,
    ) -> staging_core::Result<BTreeMap<String, SecretString>> {
        ProviderExt::env_vars(&self.inner, service).await
    }
    async fn set_env_var(
        &self,
        service: &staging_core::WriteTarget,
        key: &str,
        value: &SecretString,
    ) -> staging_core::Result<()> {
        ProviderExt::set_env_var(
            &self.inner,
            &staging_core::testkit::target(service),
            key,
            value,
        )
        .await
    }
    async fn delete_env_var(
        &self,
        service: &staging_core::WriteTarget,
        key: &str,
    ) -> staging_core::Result<()> {
        ProviderExt::delete_env_var(&self.inner, &staging_core::testkit::target(service), key).await
    }
}

#[async_trait]
impl staging_core::Logs for PushThenDeploy {
    async fn logs(
        &self,
        service: &ServiceHandle,
        query: &staging_core::LogQuery,
    ) -> staging_core::Result<Vec<staging_core::LogLine>> {
        ProviderExt::logs(&self.inner, service, query).await
    }
    async fn recent_logs(
        &self,
        service: &ServiceHandle,
        deploy_id: Option<&str>,
        lines: usize,
    ) -> staging_core::Result<Vec<String>> {
        ProviderExt::recent_logs(&self.inner, service, deploy_id, lines).await
    }
}

#[async_trait]
impl staging_core::Cancel for PushThenDeploy {
    async fn cancel_deploy(
        &self,
        service: &staging_core::WriteTarget,
        deploy_id: &str,
    ) -> staging_core::Result<Deploy> {
        ProviderExt::cancel_deploy(
            &self.inner,
            &staging_core::testkit::target(service),
            deploy_id,
        )
        .await
    }
}

fn conformance_provider(context: DeployContext, branch: &'static str) -> (DynProvider, String) {
    let (site, _) = support::stack().fake.add_site("conformance");
    let inner = support::provider(&site, context);
    let p: DynProvider = Arc::new(RetryProvider::new(
        PushThenDeploy {
            inner,
            site: site.clone(),
            branch,
        },
        RetryPolicy::default(),
    ));
    (p, site)
}

/// The suite's cancel case ran (it returns early when a deploy is already over): Netlify
/// holds a canceled build of the suite's second commit.
fn assert_the_cancel_case_ran(site: &str) {
    let canceled: Vec<String> = support::stack().fake.with_site(site, |s| {
        s.deploys
            .iter()
            .filter(|d| d.canceled)
            .map(|d| d.commit_ref.clone())
            .collect()
    });
    assert_eq!(canceled, vec![staging_core::testkit::COMMIT_B.to_owned()]);
}

#[tokio::test]
async fn netlify_passes_the_conformance_suite_in_production() {
    let (p, site) = conformance_provider(DeployContext::Production, "main");
    staging_core::testkit::run_all(&p, "production", "web").await;
    assert_the_cancel_case_ran(&site);
}

#[tokio::test]
async fn netlify_passes_the_conformance_suite_on_a_branch_context() {
    let (p, site) = conformance_provider(develop(), "develop");
    staging_core::testkit::run_all(&p, "staging", "web").await;
    assert_the_cancel_case_ran(&site);
}

#[tokio::test]
async fn a_status_read_answered_429_or_503_never_sends_a_second_build() {
    for (label, fault) in [("429", Fault::RateLimited(0)), ("503", Fault::Server(503))] {
        let fake = &support::stack().fake;
        let (site, _) = fake.add_site("app");
        fake.push(&site, "develop", SHA_1);
        let p = support::provider(&site, develop());
        let svc = p.locate("staging", "web").await.unwrap();
        let d = p
            .deploy(
                &staging_core::testkit::target(&svc),
                &DeployRequest::commit(SHA_1),
            )
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        // The next reads (the deploy's status, while it is waited for) fail once each.
        fake.fail_next(&site, fault.clone());
        fake.fail_next(&site, fault.clone());
        p.wait_until_live(&svc, &d.id, WAIT, &mut |_| {})
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        // Both faults were answered to the wait's reads (the test is not vacuous).
        let left = fake.with_site(&site, |s| s.faults.len());
        assert_eq!(left, 0, "{label}: the faults were not reached");
        let builds = fake
            .calls(&site)
            .iter()
            .filter(|c| c.starts_with("POST builds"))
            .count();
        assert_eq!(builds, 1, "{label}: {:?}", fake.calls(&site));
    }
}
