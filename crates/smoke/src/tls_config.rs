//! Root stores and rustls client configurations of the http and tls probes, over
//! `staging-tls` (the toolkit's one provider, root stores and verifiers).

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore};
use staging_core::Result;
use staging_tls::Verify;

/// The one crypto provider of the toolkit (also installed as the process default).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    crate::install_crypto_provider();
    staging_tls::provider()
}

/// The roots to verify against: only the CA in `ca_file` when given, else the webpki and
/// system roots.
pub(crate) fn roots(ca_file: Option<&Path>) -> Result<Arc<RootCertStore>> {
    match ca_file {
        Some(path) => staging_tls::roots_from_file(path),
        None => Ok(staging_tls::default_roots()),
    }
}

/// A client configuration trusting `ca_file` (plus the default roots when `merge_default`)
/// or, when `insecure`, any certificate.
pub(crate) fn client_config(
    ca_file: Option<&Path>,
    merge_default: bool,
    insecure: bool,
) -> Result<ClientConfig> {
    crate::install_crypto_provider();
    if insecure {
        return staging_tls::client_config(Arc::new(RootCertStore::empty()), Verify::Nothing);
    }
    let roots = match (ca_file, merge_default) {
        (Some(path), true) => staging_tls::default_roots_and_file(path)?,
        (ca, _) => roots(ca)?,
    };
    staging_tls::client_config(roots, Verify::Full)
}
