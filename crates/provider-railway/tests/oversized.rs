//! A Railway GraphQL answer past the shared client's body cap fails naming the request, the
//! host and the cap, and is not read to its end.

use secrecy::SecretString;
use staging_core::Provider;
use staging_core::testkit::OversizedPeer;
use staging_provider_railway::{RailwayBuilder, Ref};

#[tokio::test]
async fn an_answer_over_the_body_cap_fails_naming_the_host_and_the_cap() {
    let peer = OversizedPeer::past_the_cap();
    let p = RailwayBuilder::new()
        .with_api_token(SecretString::from("rw_oversized_canary".to_owned()))
        .with_url(peer.url())
        .with_project(Ref::Id("p1".into()))
        .with_environment(Ref::Name("staging".into()))
        .build()
        .unwrap();
    peer.assert_refuses(p.locate("staging", "web"), "POST /", "rw_oversized_canary")
        .await;
}
