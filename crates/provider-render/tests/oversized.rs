//! A Render API answer past the shared client's body cap fails naming the request, the host
//! and the cap, and is not read to its end.

use staging_core::Provider;
use staging_core::testkit::OversizedPeer;
use staging_provider_render::RenderBuilder;

#[tokio::test]
async fn an_answer_over_the_body_cap_fails_naming_the_host_and_the_cap() {
    let peer = OversizedPeer::past_the_cap();
    let p = RenderBuilder::new()
        .with_api_key("rnd_oversized_canary".to_owned())
        .with_base_url(peer.url())
        .build()
        .unwrap();
    peer.assert_refuses(p.locate("staging", "web"), "GET /", "rnd_oversized_canary")
        .await;
}
