//! 429, 5xx and malformed answers of the Vercel API, in a binary of their own: the
//! malformed answer is (rightly) a contract violation in Prism's log, which the lifecycle
//! tests assert is empty.

mod support;

use std::time::Duration;

use staging_core::{Error, Provider};
use staging_provider_vercel::Target;
use support::*;

#[tokio::test]
async fn rate_limits_server_errors_and_malformed_answers_are_retried() {
    let _g = lock().await;
    reset(true).await;
    let p = retrying(Target::Production);
    let svc = p.locate("production", "web").await.unwrap();
    fault("429", 1, Some(0)).await;
    fault("503", 1, None).await;
    fault("malformed", 1, None).await;
    let state = p.live_state(&svc).await.unwrap();
    assert!(state.live.is_none());
    // Without the whole-call retry, the client itself asks a read again after a 500 (Vercel
    // answers passing 500s on reads), a 502 and a 503.
    let bare = builder(Target::Production)
        .with_retry(quick_retries())
        .build()
        .unwrap();
    let before = support::state().await["requests"]
        .as_array()
        .map_or(0, Vec::len);
    fault("500", 1, None).await;
    fault("502", 1, None).await;
    fault("503", 1, None).await;
    bare.live_state(&svc)
        .await
        .expect("a read is retried past 500, 502 and 503");
    if let Some(after) = support::state().await["requests"].as_array().map(Vec::len) {
        assert!(after >= before + 3, "{before} -> {after}");
    }
    // A rate limit longer than the call's deadline is the answer, naming the wait.
    let short = builder(Target::Production)
        .with_retry(staging_core::RetryPolicy {
            deadline: Duration::from_secs(1),
            ..quick_retries()
        })
        .build()
        .unwrap();
    fault("429", 1, Some(3)).await;
    let err = short.live_state(&svc).await.unwrap_err();
    assert!(
        matches!(err, Error::RateLimited { retry_after: Some(d), .. } if d > Duration::from_secs(1) && d <= Duration::from_secs(3)),
        "{err:?}"
    );
}

/// The deployments created so far (`POST /v13/deployments` that reached the fake).
async fn deployment_posts() -> usize {
    support::state().await["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == "/v13/deployments" && r["method"] == "POST")
        .count()
}

#[tokio::test]
async fn a_status_read_answered_429_or_503_never_sends_a_second_deployment() {
    let _g = lock().await;
    for (label, kind, retry_after) in [("429", "429", Some(0)), ("503", "503", None)] {
        reset(true).await;
        let p = retrying(Target::Production);
        let svc = p.locate("production", "web").await.unwrap();
        let before = deployment_posts().await;
        let d = p
            .deploy(
                &staging_core::testkit::target(&svc),
                &staging_core::DeployRequest::commit("abcabc1234567abcabc1234567abcabc12345678"),
            )
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        // The next reads (the deployment's status, while it is waited for) fail once each.
        fault(kind, 2, retry_after).await;
        use staging_core::ProviderExt;
        p.wait_until_live(&svc, &d.id, Duration::from_secs(60), &mut |_| {})
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(
            deployment_posts().await - before,
            1,
            "{label}: a failed status read sent the deployment again"
        );
    }
}
