//! Prism serving Render's own API description (or, through [`Prism::proxy_of`], another
//! provider's: the Vercel tests include this file): a thin use of the one Prism runner,
//! [`staging_core::stand_in::Prism`], which collects Prism's log to find contract
//! violations and never lets Prism outlive the test binary.

use std::ops::Deref;
use std::path::PathBuf;

use staging_core::stand_in::Prism as Runner;
#[allow(unused_imports)]
pub use staging_core::stand_in::free_port;

pub fn workspace_root() -> PathBuf {
    staging_core::stand_in::workspace_root(env!("CARGO_MANIFEST_DIR"))
}

/// Render's API description, found by the repository's one convention
/// ([`staging_core::testkit::contract_path`]).
pub fn contract() -> PathBuf {
    staging_core::testkit::contract_path("render-public-api.json")
}

/// A running Prism (see [`Runner`]); derefs to it for `url()`, `port` and the violations.
pub struct Prism(Runner);

impl Deref for Prism {
    type Target = Runner;
    fn deref(&self) -> &Runner {
        &self.0
    }
}

impl Prism {
    /// `prism mock` of Render's contract.
    pub fn mock() -> Prism {
        Prism(Runner::mock(env!("CARGO_MANIFEST_DIR"), &contract()))
    }

    /// `prism proxy --errors` of Render's contract in front of `upstream`.
    pub fn proxy(upstream: &str) -> Prism {
        Self::proxy_of(contract(), upstream)
    }

    /// `prism proxy --errors` of the API description `contract` in front of `upstream`.
    pub fn proxy_of(contract: PathBuf, upstream: &str) -> Prism {
        Prism(Runner::proxy(
            env!("CARGO_MANIFEST_DIR"),
            &contract,
            upstream,
        ))
    }
}
