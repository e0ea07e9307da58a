//! A Railway GraphQL answer past the shared client's body cap fails naming the request, the
//! host and the cap, and is not read to its end.

use std::time::Duration;

use staging_core::limits::MAX_PROVIDER_BODY;
use staging_core::testkit::OversizedPeer;

/// A guard that only turns a hang into a failure; nothing here is timed.
const GUARD: Duration = Duration::from_secs(120);

use secrecy::SecretString;
use staging_core::Provider;
use staging_provider_railway::{RailwayBuilder, Ref};

#[tokio::test]
async fn an_answer_over_the_body_cap_fails_naming_the_host_and_the_cap() {
    let peer = OversizedPeer::start(MAX_PROVIDER_BODY + 1024 * 1024);
    let p = RailwayBuilder::new()
        .with_api_token(SecretString::from("rw_oversized_canary".to_owned()))
        .with_url(peer.url())
        .with_project(Ref::Id("p1".into()))
        .with_environment(Ref::Name("staging".into()))
        .build()
        .unwrap();
    let e = tokio::time::timeout(GUARD, p.locate("staging", "web"))
        .await
        .expect("bounded")
        .unwrap_err();
    peer.assert_refused(&e, "POST /", MAX_PROVIDER_BODY, "rw_oversized_canary");
}
