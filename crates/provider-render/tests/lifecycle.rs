//! The deploy lifecycle, env vars, jobs, logs and failures, against a stateful fake behind
//! `prism proxy --errors`: Prism checks our requests and the fake's answers against Render's
//! API description, so a scenario only passes when both sides keep to the contract.

mod support;

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use staging_core::{
    DeployRequest, DeployStatus, DeployTarget, DynProvider, Error, Provider, ProviderExt,
    RetryProvider,
};
use staging_provider_render::{RenderProvider, ServiceRef};
use support::{Fault, Kind, provider, quick_retries, stand_in};

const WAIT: Duration = Duration::from_secs(60);

fn via_prism() -> RenderProvider {
    provider(&stand_in().prism.url())
}

async fn service(name: &str, kind: Kind) -> (String, staging_core::ServiceHandle) {
    let id = stand_in().fake.add_service(name, kind);
    let h = support::builder(&stand_in().prism.url())
        .with_service(name, ServiceRef::Id(id.clone()))
        .build()
        .unwrap()
        .locate("staging", name)
        .await
        .expect("locate");
    (id, h)
}

#[tokio::test]
async fn conformance_suite_passes_against_the_stand_in() {
    let id = stand_in()
        .fake
        .add_service("conformance-worker", Kind::Worker);
    let p = support::builder(&stand_in().prism.url())
        .with_service("worker", ServiceRef::Id(id))
        .build()
        .unwrap();
    let p: DynProvider = Arc::new(RetryProvider::new(p, quick_retries()));
    staging_core::testkit::run_all(&p, "staging", "worker").await;
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn deploy_waits_until_live_and_reports_commit() {
    let (id, h) = service("site-deploys", Kind::StaticSite).await;
    let p = via_prism();
    let d = p
        .deploy(
            &staging_core::testkit::target(&h),
            &DeployRequest::commit("c0ffee0123456789"),
        )
        .await
        .expect("deploy");
    assert_eq!(d.status, DeployStatus::Queued);
    let mut seen = vec![];
    let live = p
        .wait_until_live(&h, &d.id, WAIT, &mut |pr| {
            seen.push(pr.deploy.raw_status.clone())
        })
        .await
        .expect("goes live");
    assert_eq!(seen, ["build_in_progress", "update_in_progress", "live"]);
    assert_eq!(live.commit.as_deref(), Some("c0ffee0123456789"));
    p.verify_live_commit(&h, "c0ffee0123456789")
        .await
        .expect("the live commit is the one deployed");
    // A prefix is another commit: ids are compared whole.
    p.verify_live_commit(&h, "c0ffee0").await.unwrap_err();
    let err = p.verify_live_commit(&h, "deadbeef").await.unwrap_err();
    assert!(err.to_string().contains("cached"), "{err}");
    let state = p.live_state(&h).await.expect("state");
    assert_eq!(state.live_commit(), Some("c0ffee0123456789"));
    assert_eq!(
        state.url.map(|u| u.to_string()),
        Some("https://site-deploys.onrender.com/".into())
    );

    let image = DeployRequest {
        target: DeployTarget::Image("ghcr.io/acme/site:2".into()),
        commit: None,
        clear_cache: true,
    };
    let d2 = p
        .deploy(&staging_core::testkit::target(&h), &image)
        .await
        .expect("deploy image");
    p.wait_until_live(&h, &d2.id, WAIT, &mut |_| {})
        .await
        .expect("image goes live");
    assert_eq!(
        p.live_state(&h)
            .await
            .unwrap()
            .live
            .unwrap()
            .image
            .as_deref(),
        Some("ghcr.io/acme/site:2")
    );
    let posts: Vec<String> = stand_in()
        .fake
        .requests_for(&id)
        .into_iter()
        .filter(|r| r.starts_with("POST"))
        .collect();
    assert!(
        posts[0].contains(r#""commitId":"c0ffee0123456789""#) && posts[0].contains("do_not_clear"),
        "{posts:?}"
    );
    assert!(
        posts[1].contains(r#""imageUrl":"ghcr.io/acme/site:2""#)
            && posts[1].contains(r#""clearCache":"clear""#),
        "{posts:?}"
    );
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn a_queued_deploy_is_found_and_waited_for() {
    let (id, h) = service("worker-queued", Kind::Worker).await;
    stand_in().fake.queue_next_deploy(&id);
    let p = via_prism();
    let d = p
        .deploy(
            &staging_core::testkit::target(&h),
            &DeployRequest::commit("7777777aaaaaaa"),
        )
        .await
        .expect("202 Queued is a deploy");
    assert_eq!(d.commit.as_deref(), Some("7777777aaaaaaa"));
    p.wait_until_live(&h, &d.id, WAIT, &mut |_| {})
        .await
        .expect("goes live");
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn each_failure_status_stops_the_wait() {
    let (id, h) = service("worker-failures", Kind::Worker).await;
    let p = via_prism();
    for failure in [
        "build_failed",
        "update_failed",
        "pre_deploy_failed",
        "canceled",
        "deactivated",
    ] {
        stand_in()
            .fake
            .plan_next_deploy(&id, &["build_in_progress", failure]);
        let d = p
            .deploy(
                &staging_core::testkit::target(&h),
                &DeployRequest::commit("badbad0000000"),
            )
            .await
            .expect("deploy");
        let err = p
            .wait_until_live(&h, &d.id, WAIT, &mut |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Failed { .. }), "{failure}: {err:?}");
        assert!(err.to_string().contains(failure), "{failure}: {err}");
    }
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn failed_deploy_shows_its_logs() {
    let (id, h) = service("worker-logs", Kind::Worker).await;
    stand_in().fake.set_logs(
        &id,
        &[
            "==> Building",
            "error: could not compile",
            "==> Build failed",
        ],
    );
    stand_in().fake.plan_next_deploy(&id, &["build_failed"]);
    let p = via_prism();
    let d = p
        .deploy(
            &staging_core::testkit::target(&h),
            &DeployRequest::commit("badbad1111111"),
        )
        .await
        .unwrap();
    p.wait_until_live(&h, &d.id, WAIT, &mut |_| {})
        .await
        .unwrap_err();
    let lines = p.deploy_logs(&h, &d.id, 2).await.expect("logs");
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].ends_with("error: could not compile") && lines[1].ends_with("==> Build failed"),
        "{lines:?}"
    );
    let logs_query = stand_in()
        .fake
        .requests_for(&id)
        .into_iter()
        .find(|r| r.starts_with("GET /logs"))
        .unwrap();
    assert!(
        logs_query.contains("startTime=") && logs_query.contains("ownerId=tea-"),
        "{logs_query}"
    );
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn rollback_returns_to_the_previous_live_commit() {
    let (_, h) = service("worker-rollback", Kind::Worker).await;
    let p = via_prism();
    let err = p
        .rollback(&staging_core::testkit::target(&h))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Failed { .. }), "{err:?}");
    for c in ["1111111aaaaaaa", "2222222bbbbbbb"] {
        let d = p
            .deploy(
                &staging_core::testkit::target(&h),
                &DeployRequest::commit(c),
            )
            .await
            .unwrap();
        p.wait_until_live(&h, &d.id, WAIT, &mut |_| {})
            .await
            .unwrap();
    }
    let r = p
        .rollback(&staging_core::testkit::target(&h))
        .await
        .expect("rollback");
    assert_eq!(r.commit.as_deref(), Some("1111111aaaaaaa"));
    p.wait_until_live(&h, &r.id, WAIT, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        p.live_state(&h).await.unwrap().live_commit(),
        Some("1111111aaaaaaa")
    );
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn rollback_to_a_deploy_that_never_went_live_is_refused_before_any_write() {
    let (id, h) = service("worker-rollback-to", Kind::Worker).await;
    let p = via_prism();
    let target = staging_core::testkit::target(&h);
    let good = p
        .deploy(&target, &DeployRequest::commit("3333333ccccccc"))
        .await
        .unwrap();
    p.wait_until_live(&h, &good.id, WAIT, &mut |_| {})
        .await
        .unwrap();
    stand_in().fake.plan_next_deploy(&id, &["build_failed"]);
    let failed = p
        .deploy(&target, &DeployRequest::commit("4444444ddddddd"))
        .await
        .unwrap();
    assert!(
        p.wait_until_live(&h, &failed.id, WAIT, &mut |_| {})
            .await
            .is_err()
    );
    let rollbacks = || {
        stand_in()
            .fake
            .requests_for(&id)
            .into_iter()
            .filter(|r| r.starts_with("POST ") && r.contains("/rollback"))
            .count()
    };
    let err = p.rollback_to(&target, &failed.id).await.unwrap_err();
    assert!(matches!(err, Error::ConfigInvalid { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&failed.id)
            && text.contains("never went live")
            && text.contains("build_failed"),
        "{text}"
    );
    assert_eq!(rollbacks(), 0, "refused before the write");
    // The attack: an id that is not a deploy of this service at all.
    let err = p
        .rollback_to(&target, "dep-doesnotexist")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert_eq!(rollbacks(), 0);
    // To the deploy that was live: sent, and recorded under its commit.
    let r = p.rollback_to(&target, &good.id).await.expect("rollback");
    assert_eq!(r.commit.as_deref(), Some("3333333ccccccc"));
    assert_eq!(rollbacks(), 1);
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn cancel_during_wait_cancels_the_deploy() {
    let (id, h) = service("worker-cancel", Kind::Worker).await;
    // A deploy that builds for a long time (each read is one step).
    stand_in()
        .fake
        .plan_next_deploy(&id, &["build_in_progress"; 40]);
    let p = via_prism();
    let d = p
        .deploy(
            &staging_core::testkit::target(&h),
            &DeployRequest::commit("3333333ccccccc"),
        )
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tx.send(()).unwrap();
    let err = p
        .wait_until_live_or_cancel(
            &staging_core::testkit::target(&h),
            &d.id,
            WAIT,
            async move {
                let _ = rx.await;
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("canceled"), "{err}");
    assert_eq!(stand_in().fake.deploy_status(&id, &d.id), "canceled");
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn env_vars_page_with_cursor() {
    let (id, h) = service("worker-env", Kind::Worker).await;
    for i in 0..150 {
        stand_in()
            .fake
            .set_env(&id, &format!("VAR_{i:03}"), &format!("value-{i}"));
    }
    let p = via_prism();
    let vars = p.env_vars(&h).await.expect("env vars");
    assert_eq!(vars.len(), 150);
    assert_eq!(vars["VAR_149"].expose_secret(), "value-149");
    let reqs = stand_in().fake.requests_for(&id);
    let lists: Vec<&String> = reqs
        .iter()
        .filter(|r| r.starts_with("GET") && r.contains("/env-vars?"))
        .collect();
    assert_eq!(lists.len(), 2, "{lists:?}");
    assert!(
        lists.iter().all(|r| r.contains("limit=100")) && lists[1].contains("cursor=VAR_099"),
        "{lists:?}"
    );
    // Never the whole-set PUT, which would replace every var.
    p.set_env_var(
        &staging_core::testkit::target(&h),
        "ONE",
        &SecretString::from("1".to_owned()),
    )
    .await
    .unwrap();
    assert!(
        !stand_in()
            .fake
            .requests_for(&id)
            .iter()
            .any(|r| r.starts_with(&format!("PUT /services/{id}/env-vars ")))
    );
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn locate_by_name_pages_with_cursor() {
    for _ in 0..105 {
        stand_in().fake.add_service("crowd", Kind::Worker);
    }
    let err = via_prism().locate("staging", "crowd").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("105 Render services are named `crowd`"),
        "{err}"
    );
    let only = stand_in().fake.add_service("loner", Kind::Worker);
    assert_eq!(
        via_prism().locate("staging", "loner").await.unwrap().id,
        only
    );
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn unknown_service_is_not_found() {
    let p = support::builder(&stand_in().prism.url())
        .with_service("web", ServiceRef::Id("srv-missing".into()))
        .build()
        .unwrap();
    let err = p.locate("staging", "web").await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn job_runs_and_waits_until_succeeded() {
    let (id, h) = service("worker-jobs", Kind::Worker).await;
    let job = via_prism()
        .run_job_and_wait(
            &staging_core::testkit::target(&h),
            "bin/rails db:migrate",
            WAIT,
        )
        .await
        .expect("job succeeds");
    assert_eq!(job.command, "bin/rails db:migrate");
    assert!(
        stand_in()
            .fake
            .requests_for(&id)
            .iter()
            .any(|r| r.contains(r#""startCommand":"bin/rails db:migrate""#))
    );
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn failed_job_is_an_error() {
    let (id, h) = service("worker-jobfail", Kind::Worker).await;
    stand_in().fake.plan_next_job(&id, &["running", "failed"]);
    let err = via_prism()
        .run_job_and_wait(&staging_core::testkit::target(&h), "bin/migrate", WAIT)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Failed { .. }) && err.to_string().contains("Failed"),
        "{err:?}"
    );
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn rate_limit_with_retry_after_is_honoured() {
    let (id, h) = service("worker-429a", Kind::Worker).await;
    let p = via_prism();
    let d = p
        .deploy(
            &staging_core::testkit::target(&h),
            &DeployRequest::commit("4444444dddddd"),
        )
        .await
        .unwrap();
    // The client itself waits the window out and asks again: no whole-call retry needed.
    stand_in().fake.inject(&id, Fault::Status(429, Some(1)));
    let before = stand_in().fake.requests_for(&id).len();
    p.deploy_status(&h, &d.id)
        .await
        .expect("read again after Retry-After");
    assert_eq!(stand_in().fake.requests_for(&id).len(), before + 2);
    assert_eq!(stand_in().fake.pending_faults(&id), 0);
    // With no time left for the wait, the rate limit is the answer, naming it. (Straight
    // to the fake: another address is another budget, so the pause holds up no other test
    // that goes through Prism.)
    stand_in().fake.inject(&id, Fault::Status(429, Some(8)));
    let err = support::builder(&stand_in().fake.url())
        .with_retry(staging_core::RetryPolicy {
            deadline: Duration::from_secs(2),
            ..quick_retries()
        })
        .build()
        .unwrap()
        .deploy_status(&h, &d.id)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn rate_limit_without_retry_after_backs_off() {
    let (id, h) = service("worker-429b", Kind::Worker).await;
    stand_in().fake.inject(&id, Fault::Status(429, None));
    via_prism()
        .live_state(&h)
        .await
        .expect("read again after a pause");
    stand_in().fake.inject(&id, Fault::Status(429, None));
    stand_in().fake.inject(&id, Fault::Status(429, None));
    let retried = RetryProvider::new(via_prism(), quick_retries());
    retried.env_vars(&h).await.expect("retried with backoff");
    // The deploy wait too: a 429 while polling is waited out, not fatal.
    let d = retried
        .deploy(
            &staging_core::testkit::target(&h),
            &DeployRequest::commit("5555555eeeeee"),
        )
        .await
        .unwrap();
    stand_in().fake.inject(&id, Fault::Status(429, None));
    via_prism()
        .wait_until_live(&h, &d.id, WAIT, &mut |_| {})
        .await
        .expect("wait survives a 429");
    assert_eq!(stand_in().fake.pending_faults(&id), 0);
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn server_errors_are_retried() {
    let (id, h) = service("worker-5xx", Kind::Worker).await;
    // 502, 503 (and 504) are passing failures of a read: retried inside the client.
    for status in [502, 503] {
        stand_in().fake.inject(&id, Fault::Status(status, None));
        via_prism()
            .env_vars(&h)
            .await
            .unwrap_or_else(|e| panic!("{status}: {e:?}"));
    }
    // A 500 is Render's error, retryable, and retried only by the read-only whole-call retry.
    stand_in().fake.inject(&id, Fault::Status(500, None));
    let err = via_prism().env_vars(&h).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(matches!(err, Error::Provider { .. }), "{err:?}");
    for status in [500, 502, 503] {
        stand_in().fake.inject(&id, Fault::Status(status, None));
    }
    RetryProvider::new(via_prism(), quick_retries())
        .env_vars(&h)
        .await
        .expect("retried past 500, 502, 503");
    assert_eq!(stand_in().fake.pending_faults(&id), 0);
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn request_timeout_is_retryable() {
    let (id, h) = service("worker-slow", Kind::Worker).await;
    // Straight to the fake: through Prism, the abandoned request would end in Prism's shared
    // log whenever the fake answers, at a time no test controls. The request itself is the
    // same `GET .../env-vars` the other tests send through Prism.
    stand_in()
        .fake
        .inject(&id, Fault::Delay(Duration::from_secs(5)));
    let p = support::builder(&stand_in().fake.url())
        .with_timeout(Duration::from_millis(500))
        .with_retry(quick_retries())
        .build()
        .unwrap();
    p.env_vars(&h).await.expect("a read is asked again");
    // With one attempt only, the timeout is the answer: retryable, naming host and phase.
    stand_in()
        .fake
        .inject(&id, Fault::Delay(Duration::from_secs(5)));
    let p = support::builder(&stand_in().fake.url())
        .with_timeout(Duration::from_millis(500))
        .with_retry(staging_core::RetryPolicy {
            max_attempts: 1,
            ..quick_retries()
        })
        .build()
        .unwrap();
    let err = p.env_vars(&h).await.unwrap_err();
    assert!(
        err.is_retryable() && matches!(err, Error::Provider { .. }),
        "{err:?}"
    );
    let shown = err.to_string();
    assert!(
        shown.contains("timed out waiting for the answer") && shown.contains("127.0.0.1"),
        "{shown}"
    );
}

#[tokio::test]
async fn malformed_json_is_a_provider_error() {
    // Prism refuses to forward a body that is not JSON (it answers 500 itself), so this one
    // talks to the fake directly: the client's own behaviour is what is tested.
    let (id, h) = service("worker-garbage", Kind::Worker).await;
    let p = provider(&stand_in().fake.url());
    let d = p
        .deploy(
            &staging_core::testkit::target(&h),
            &DeployRequest::commit("6666666ffffff"),
        )
        .await
        .unwrap();
    stand_in().fake.inject(&id, Fault::Malformed);
    let err = p.deploy_status(&h, &d.id).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Provider {
                retryable: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("unexpected response body"),
        "{err}"
    );
}

#[tokio::test]
async fn the_api_key_never_shows_in_debug_or_errors() {
    let (id, h) = service("worker-canary", Kind::Worker).await;
    let p = via_prism();
    p.set_env_var(
        &staging_core::testkit::target(&h),
        "CANARY",
        &SecretString::from("canary-7e3a".to_owned()),
    )
    .await
    .unwrap();
    let vars = p.env_vars(&h).await.unwrap();
    stand_in().fake.inject(&id, Fault::Status(500, None));
    let err = p.env_vars(&h).await.unwrap_err();
    let shown = format!("{p:?} {vars:?} {err:?} {err}");
    assert!(!shown.contains(support::API_KEY), "{shown}");
    assert!(!shown.contains("canary-7e3a"), "{shown}");
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn logs_of_a_service_are_the_newest_lines_oldest_first() {
    let (id, h) = service("worker-recent-logs", Kind::Worker).await;
    stand_in()
        .fake
        .set_logs(&id, &["booting", "connected to queue", "job 7 done"]);
    let p = via_prism();
    let lines = p
        .logs(&h, &staging_core::LogQuery::last(2))
        .await
        .expect("logs");
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["connected to queue", "job 7 done"], "{lines:?}");
    assert!(
        lines.iter().all(|l| l.at.is_some()),
        "Render gives each line a time: {lines:?}"
    );
    let writes: Vec<String> = stand_in()
        .fake
        .requests_for(&id)
        .into_iter()
        .filter(|r| !r.starts_with("GET "))
        .collect();
    assert!(writes.is_empty(), "reading logs wrote: {writes:?}");
    stand_in().prism.assert_no_violations();
}
