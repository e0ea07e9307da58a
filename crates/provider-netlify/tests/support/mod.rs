//! Stand-ins for the contract tests: Prism serving Netlify's own API description (as a mock,
//! or as a validating proxy in front of the stateful fake in `fake.rs`), started once per
//! test binary and stopped when the binary exits.

#![allow(dead_code, unreachable_pub)]

pub mod fake;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use staging_provider_netlify::{
    DeployContext, NetlifyBuilder, NetlifyProvider, RateLimits, SiteRef, SiteTarget,
};

pub fn workspace_root() -> PathBuf {
    staging_core::stand_in::workspace_root(env!("CARGO_MANIFEST_DIR"))
}

/// Netlify's API description, found by the repository's one convention
/// ([`staging_core::testkit::contract_path`]).
pub fn contract() -> PathBuf {
    staging_core::testkit::contract_path("netlify-swagger.json")
}

#[allow(unused_imports)]
pub use staging_core::stand_in::free_port;

/// A running Prism (the one runner, [`staging_core::stand_in::Prism`]) behind the in-process
/// checking proxy ([`staging_test_support::Checked`]): `url` is the proxy's, so every body is
/// validated by Prism and again in-process (Prism skips schemas it cannot compile, such as
/// `createSiteBuild`'s request).
pub struct Prism {
    pub url: String,
    checked: staging_test_support::Checked<staging_core::stand_in::Prism>,
}

impl Prism {
    fn mock() -> Prism {
        Self::wrap(staging_core::stand_in::Prism::mock(
            env!("CARGO_MANIFEST_DIR"),
            &contract(),
        ))
    }

    fn proxy(upstream: &str) -> Prism {
        Self::wrap(staging_core::stand_in::Prism::proxy(
            env!("CARGO_MANIFEST_DIR"),
            &contract(),
            upstream,
        ))
    }

    fn wrap(runner: staging_core::stand_in::Prism) -> Prism {
        let checked = staging_test_support::Checked::new(runner, &contract());
        Prism {
            url: checked.url(),
            checked,
        }
    }

    /// Fails the test when Prism or the in-process check saw a contract violation so far.
    pub fn assert_no_violations(&self) {
        self.checked.assert_no_violations();
    }

    /// What the in-process check found so far.
    pub fn checker(&self) -> &staging_test_support::CheckingProxy {
        &self.checked.checker
    }
}

/// `prism mock`: the description's own example answers; rejects requests that break it.
pub fn mock() -> &'static Prism {
    static MOCK: OnceLock<Prism> = OnceLock::new();
    MOCK.get_or_init(Prism::mock)
}

/// The stateful fake, and `prism proxy --errors` in front of it: requests and the fake's
/// answers are both checked against the description.
pub struct Stack {
    pub fake: fake::Fake,
    pub proxy: Prism,
}

pub fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        let fake = fake::Fake::start();
        let proxy = Prism::proxy(&fake.url);
        Stack { fake, proxy }
    })
}

/// A fake and validating proxy of the caller's own, which no other test touches: its
/// digest is the caller's alone.
pub fn own_stack() -> Stack {
    let fake = fake::Fake::start();
    let proxy = Prism::proxy(&fake.url);
    Stack { fake, proxy }
}

/// Fast polls and no client-side waiting: tests check behaviour, not timing.
pub fn builder(base: &str) -> NetlifyBuilder {
    NetlifyBuilder::new()
        .with_token("test-token-canary-3141".to_owned().into())
        .with_base_url(base)
        .with_poll_interval(Duration::from_millis(20))
        .with_rate_limits(RateLimits {
            requests: 100_000,
            deploys: 10_000,
            window: Duration::from_secs(60),
        })
        .with_request_timeout(Duration::from_secs(30))
        .with_hook_wait(Duration::from_secs(30))
}

pub fn target(site_id: &str, context: DeployContext) -> SiteTarget {
    SiteTarget::new(SiteRef::Id(site_id.to_owned()), context)
}

/// A provider for service `web` on `site_id` in `context`, through the validating proxy.
pub fn provider(site_id: &str, context: DeployContext) -> NetlifyProvider {
    builder(&stack().proxy.url)
        .with_site("web", target(site_id, context))
        .build()
        .unwrap()
}
