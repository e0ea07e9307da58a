//! A Netlify API answer past the shared client's body cap fails naming the request, the
//! host and the cap, and is not read to its end.

use staging_core::Provider;
use staging_core::testkit::OversizedPeer;
use staging_provider_netlify::{DeployContext, NetlifyBuilder, SiteRef, SiteTarget};

#[tokio::test]
async fn an_answer_over_the_body_cap_fails_naming_the_host_and_the_cap() {
    let peer = OversizedPeer::past_the_cap();
    let p = NetlifyBuilder::new()
        .with_token("nf_oversized_canary".to_owned().into())
        .with_base_url(peer.url())
        .with_site(
            "web",
            SiteTarget::new(SiteRef::Id("s1".into()), DeployContext::Production),
        )
        .build()
        .unwrap();
    peer.assert_refuses(
        p.locate("production", "web"),
        "GET /sites/s1",
        "nf_oversized_canary",
    )
    .await;
}
