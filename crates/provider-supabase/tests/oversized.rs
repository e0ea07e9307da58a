//! A Supabase Management API answer past the shared client's body cap fails naming the
//! request, the host and the cap, and is not read to its end.

use std::time::Duration;

use staging_core::limits::MAX_PROVIDER_BODY;
use staging_core::testkit::OversizedPeer;

/// A guard that only turns a hang into a failure; nothing here is timed.
const GUARD: Duration = Duration::from_secs(120);

use staging_core::DatabaseBranch;
use staging_core::spec::SupabaseBranch;
use staging_provider_supabase::SupabaseBuilder;

#[tokio::test]
async fn an_answer_over_the_body_cap_fails_naming_the_host_and_the_cap() {
    let peer = OversizedPeer::start(MAX_PROVIDER_BODY + 1024 * 1024);
    let spec: SupabaseBranch =
        toml::from_str("project_ref = \"abcdefghijklmnopqrst\"\nbranch = \"staging\"").unwrap();
    let b = SupabaseBuilder::new()
        .with_token("sbp_oversized_canary")
        .with_base_url(peer.url())
        .build(spec)
        .unwrap();
    let e = tokio::time::timeout(GUARD, b.status())
        .await
        .expect("bounded")
        .unwrap_err();
    peer.assert_refused(&e, "GET /", MAX_PROVIDER_BODY, "sbp_oversized_canary");
}
