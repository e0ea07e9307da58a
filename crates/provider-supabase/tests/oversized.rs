//! A Supabase Management API answer past the shared client's body cap fails naming the
//! request, the host and the cap, and is not read to its end.

use staging_core::DatabaseBranch;
use staging_core::spec::SupabaseBranch;
use staging_core::testkit::OversizedPeer;
use staging_provider_supabase::SupabaseBuilder;

#[tokio::test]
async fn an_answer_over_the_body_cap_fails_naming_the_host_and_the_cap() {
    let peer = OversizedPeer::past_the_cap();
    let spec: SupabaseBranch =
        toml::from_str("project_ref = \"abcdefghijklmnopqrst\"\nbranch = \"staging\"").unwrap();
    let b = SupabaseBuilder::new()
        .with_token("sbp_oversized_canary")
        .with_base_url(peer.url())
        .build(spec)
        .unwrap();
    peer.assert_refuses(b.status(), "GET /", "sbp_oversized_canary")
        .await;
}
