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
/// ([`staging_core::testkit::contract_path`]), with one documented, mechanical repair.
///
/// `servicePOST.serviceDetails` is a `oneOf` of the five kinds' details with no
/// discriminator, and the kinds overlap: a static site's details require nothing, and the
/// native `envSpecificDetailsPOST` matches both of its own branches. So a web service's body
/// is valid only *as a static site*, and a cron job's as a cron job *and* a static site,
/// which `oneOf` refuses although Render creates it. The answer's `service.serviceDetails`
/// has the same overlap: a web service's details (which Render answers with its `url` and
/// `openPorts`) are also a complete worker's. The repair turns those two `oneOf`s into
/// `anyOf`s; every other schema is validated as published. The repaired copy is written
/// once per test binary into the system's temporary directory.
pub fn contract() -> PathBuf {
    static REPAIRED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    REPAIRED
        .get_or_init(|| {
            let published = staging_core::testkit::contract_path("render-public-api.json");
            let mut doc: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&published).expect("read the contract"))
                    .expect("the contract is JSON");
            for schema in ["servicePOST", "service"] {
                let details = doc
                    .pointer_mut(&format!(
                        "/components/schemas/{schema}/properties/serviceDetails"
                    ))
                    .and_then(|d| d.as_object_mut())
                    .unwrap_or_else(|| {
                        panic!("{schema}.serviceDetails is where the repair expects it")
                    });
                let branches = details.remove("oneOf").unwrap_or_else(|| {
                    panic!("{schema}.serviceDetails is a oneOf (else the repair is stale)")
                });
                details.insert("anyOf".to_owned(), branches);
            }
            let out = std::env::temp_dir().join(format!(
                "staging-render-public-api-repaired-{}.json",
                std::process::id()
            ));
            std::fs::write(&out, serde_json::to_vec(&doc).unwrap()).expect("write the repair");
            out
        })
        .clone()
}

/// A running Prism (see [`Runner`]); derefs to it for `url()`, `port` and the violations.
pub struct Prism(Runner);

impl std::borrow::Borrow<Runner> for Prism {
    fn borrow(&self) -> &Runner {
        &self.0
    }
}

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
