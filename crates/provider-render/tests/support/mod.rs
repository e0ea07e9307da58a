//! Stand-ins for the Render tests: Prism serving Render's own API description, in mock mode
//! or as a validating proxy in front of a small stateful fake. One of each per test binary.
#![allow(dead_code, unreachable_pub)]

pub mod fake;
pub mod prism;

use std::sync::OnceLock;
use std::time::Duration;

use staging_core::RetryPolicy;
use staging_provider_render::{RateLimits, RenderBuilder, RenderProvider};

#[allow(unused_imports)]
pub use fake::{API_KEY, Fake, Fault, Kind};
pub use prism::Prism;

/// Prism's mock of the contract, started once per test binary.
pub fn mock() -> &'static Prism {
    static MOCK: OnceLock<Prism> = OnceLock::new();
    MOCK.get_or_init(Prism::mock)
}

/// The fake behind `prism proxy --errors`, started once per test binary.
pub struct StandIn {
    pub fake: Fake,
    pub prism: Prism,
}

/// A fake and validating proxy of the caller's own, which no other test touches (keep it in
/// a `OnceLock` of the test binary): its digest is the caller's alone.
pub fn own_stand_in() -> StandIn {
    let fake = Fake::start();
    let prism = Prism::proxy(&fake.url());
    StandIn { fake, prism }
}

pub fn stand_in() -> &'static StandIn {
    static STAND_IN: OnceLock<StandIn> = OnceLock::new();
    STAND_IN.get_or_init(|| {
        let fake = Fake::start();
        let prism = Prism::proxy(&fake.url());
        StandIn { fake, prism }
    })
}

/// A provider for tests: short polls, generous request timeout, no client-side pacing wait.
pub fn provider(base_url: &str) -> RenderProvider {
    builder(base_url).build().expect("build provider")
}

pub fn builder(base_url: &str) -> RenderBuilder {
    RenderBuilder::new()
        .with_api_key(API_KEY.to_owned())
        .with_base_url(base_url)
        .with_poll_interval(Duration::from_millis(20))
        .with_read_budget(staging_core::ReadBudget::unlimited("the fake"))
        .with_timeout(Duration::from_secs(30))
        .with_rate_limits(RateLimits {
            deploys_per_minute: 1000,
            writes_per_minute: 1000,
        })
}

/// Retries quickly, bounded generously: tests wait for behaviour, not for the clock.
pub fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        initial: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        deadline: Duration::from_secs(60),
        max_attempts: 8,
    }
}
