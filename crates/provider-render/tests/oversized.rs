//! A Render API answer past the shared client's body cap fails naming the request, the host
//! and the cap, and is not read to its end.

use std::time::Duration;

use staging_core::limits::MAX_PROVIDER_BODY;
use staging_core::testkit::OversizedPeer;

/// A guard that only turns a hang into a failure; nothing here is timed.
const GUARD: Duration = Duration::from_secs(120);

use staging_core::Provider;
use staging_provider_render::RenderBuilder;

#[tokio::test]
async fn an_answer_over_the_body_cap_fails_naming_the_host_and_the_cap() {
    let peer = OversizedPeer::start(MAX_PROVIDER_BODY + 1024 * 1024);
    let p = RenderBuilder::new()
        .with_api_key("rnd_oversized_canary".to_owned())
        .with_base_url(peer.url())
        .build()
        .unwrap();
    let e = tokio::time::timeout(GUARD, p.locate("staging", "web"))
        .await
        .expect("bounded")
        .unwrap_err();
    peer.assert_refused(&e, "GET /", MAX_PROVIDER_BODY, "rnd_oversized_canary");
}
