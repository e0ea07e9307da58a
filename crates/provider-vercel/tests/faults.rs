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
    // Without retries each is its kind.
    let bare = provider(Target::Production);
    fault("429", 1, Some(3)).await;
    let err = bare.live_state(&svc).await.unwrap_err();
    assert!(
        matches!(err, Error::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(3)),
        "{err:?}"
    );
}
