//! Stand-ins for the Neon tests: `prism proxy --errors` of Neon's published API description
//! (`neon-v2.yaml`) in front of a small stateful fake, one per test binary.
#![allow(dead_code, unreachable_pub)]

pub mod fake;

use std::sync::OnceLock;
use std::time::Duration;

use staging_core::RetryPolicy;
use staging_core::spec::NeonBranch;
use staging_core::stand_in::Prism;
use staging_core::testkit::contract_path;
use staging_provider_neon::{NeonBuilder, NeonDatabaseBranch};

pub use fake::{API_KEY, Fake};

pub struct StandIn {
    pub fake: Fake,
    pub prism: Prism,
}

pub fn stand_in() -> &'static StandIn {
    static STAND_IN: OnceLock<StandIn> = OnceLock::new();
    STAND_IN.get_or_init(|| {
        let fake = Fake::start();
        let dir = env!("CARGO_MANIFEST_DIR");
        let prism = Prism::proxy(dir, &contract_path("neon-v2.yaml"), &fake.url());
        StandIn { fake, prism }
    })
}

pub fn spec(project: &str, branch: &str, parent: &str) -> NeonBranch {
    toml::from_str(&format!(
        "project_id = \"{project}\"\nbranch = \"{branch}\"\nparent = \"{parent}\""
    ))
    .unwrap()
}

/// A branch client for tests: short polls, quick retries, bounded generously.
pub fn branch(spec: NeonBranch) -> NeonDatabaseBranch {
    NeonBuilder::new()
        .with_api_key(API_KEY)
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
        .build(spec)
        .unwrap()
}

/// Find the branch or create what it lacks, through a boundary with nothing to compare
/// against (one environment): what `staging up`'s branch step does.
pub async fn ensure(b: &NeonDatabaseBranch) -> staging_core::Result<staging_core::BranchStatus> {
    let boundary = staging_core::boundary::unchecked_boundary_for_tests("staging");
    staging_core::database_branch::ensure(b, &boundary, "database main", |_| async { Ok(()) })
        .await
        .map(|e| e.status)
}
