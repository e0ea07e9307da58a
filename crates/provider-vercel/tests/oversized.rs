//! A Vercel API answer past the shared client's body cap fails naming the request, the host
//! and the cap, and is not read to its end.

use staging_core::Provider;
use staging_core::testkit::OversizedPeer;
use staging_provider_vercel::{ProjectRef, Target, VercelBuilder};

#[tokio::test]
async fn an_answer_over_the_body_cap_fails_naming_the_host_and_the_cap() {
    let peer = OversizedPeer::past_the_cap();
    let p = VercelBuilder::new()
        .with_token("vc_oversized_canary".to_owned())
        .with_url(peer.url())
        .with_unlisted_url(peer.url())
        .with_team_id("team_1")
        .with_target(Target::Production)
        .with_project(
            "web",
            ProjectRef {
                id_or_name: "web".into(),
                repo: Some("acme/web".into()),
            },
        )
        .build()
        .unwrap();
    peer.assert_refuses(
        p.locate("production", "web"),
        "GET /",
        "vc_oversized_canary",
    )
    .await;
}
