//! Stand-ins for the Supabase tests: `prism proxy --errors` of the Management API's published
//! description in front of a small stateful fake, one per test binary. The description
//! declares no security scheme, so the fake checks the bearer token itself.
#![allow(dead_code, unreachable_pub)]

pub mod fake;

use std::sync::OnceLock;
use std::time::Duration;

use staging_core::RetryPolicy;
use staging_core::spec::SupabaseBranch;
use staging_core::stand_in::Prism;
use staging_core::testkit::contract_path;
use staging_provider_supabase::{SupabaseBuilder, SupabaseDatabaseBranch};

pub use fake::{Fake, TOKEN};

pub struct StandIn {
    pub fake: Fake,
    /// Where the tests send: the in-process checking proxy in front of Prism in front of the
    /// fake (Prism skips the action-run answers' schemas it cannot compile).
    pub prism: staging_test_support::Checked<Prism>,
}

pub fn stand_in() -> &'static StandIn {
    static STAND_IN: OnceLock<StandIn> = OnceLock::new();
    STAND_IN.get_or_init(|| {
        let fake = Fake::start();
        let dir = env!("CARGO_MANIFEST_DIR");
        let contract = contract_path("supabase-management-v1.json");
        let prism = Prism::proxy(dir, &contract, &fake.url());
        StandIn {
            fake,
            prism: staging_test_support::Checked::new(prism, &contract),
        }
    })
}

pub fn spec(project_ref: &str, branch: &str) -> SupabaseBranch {
    toml::from_str(&format!(
        "project_ref = \"{project_ref}\"\nbranch = \"{branch}\""
    ))
    .unwrap()
}

pub fn builder() -> SupabaseBuilder {
    SupabaseBuilder::new()
        .with_base_url(stand_in().prism.url())
        .with_poll_interval(Duration::from_millis(20))
        .with_read_budget(staging_core::ReadBudget::unlimited("the test stand-in"))
        .with_timeout(Duration::from_secs(60))
        .with_retry_policy(RetryPolicy {
            initial: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
            deadline: Duration::from_secs(60),
            max_attempts: 8,
        })
}

pub fn branch(spec: SupabaseBranch) -> SupabaseDatabaseBranch {
    builder().with_token(TOKEN).build(spec).unwrap()
}

/// Find the branch or create what it lacks, through a boundary with nothing to compare
/// against (one environment): what `staging up`'s branch step does.
pub async fn ensure(
    b: &SupabaseDatabaseBranch,
) -> staging_core::Result<staging_core::BranchStatus> {
    let boundary = staging_core::boundary::unchecked_boundary_for_tests("staging");
    staging_core::database_branch::ensure(b, &boundary, "database main", |_| async { Ok(()) })
        .await
        .map(|e| e.status)
}
