//! A Neon API answer past the shared client's body cap fails naming the request, the host
//! and the cap, and is not read to its end.

use staging_core::DatabaseBranch;
use staging_core::spec::NeonBranch;
use staging_core::testkit::OversizedPeer;
use staging_provider_neon::NeonBuilder;

#[tokio::test]
async fn an_answer_over_the_body_cap_fails_naming_the_host_and_the_cap() {
    let peer = OversizedPeer::past_the_cap();
    let spec: NeonBranch =
        toml::from_str("project_id = \"p1\"\nbranch = \"staging\"\nparent = \"main\"").unwrap();
    let b = NeonBuilder::new()
        .with_api_key("napi_oversized_canary")
        .with_base_url(peer.url())
        .build(spec)
        .unwrap();
    peer.assert_refuses(b.status(), "GET /projects/p1", "napi_oversized_canary")
        .await;
}
