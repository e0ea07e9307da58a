//! A Render API that accepts connections and never answers: each call fails within the
//! request bound, naming the host, instead of hanging `up`.

mod support;

use std::time::Duration;

use staging_core::Provider;
use staging_core::testkit::SilentPeer;

#[tokio::test]
async fn a_silent_render_api_fails_within_the_request_bound_naming_the_host() {
    let peer = SilentPeer::start();
    let p = support::builder(&format!("http://{}", peer.addr()))
        .with_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(120), p.locate("staging", "web"))
        .await
        .expect("hung: no answer within 120 s")
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&peer.addr().to_string())
            && text.contains("timed out waiting for the answer"),
        "{text}"
    );
    assert!(peer.accepted() >= 1);
    assert!(!text.contains(support::API_KEY), "{text}");
}
