//! Root stores and rustls client configurations shared by the http and tls probes.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use staging_core::{Error, Result};

/// The one crypto provider of the toolkit.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    crate::install_crypto_provider();
    P.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// The webpki roots plus the system's, loaded once per process.
fn default_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut store = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let native = rustls_native_certs::load_native_certs();
            let (added, _ignored) = store.add_parsable_certificates(native.certs);
            tracing::debug!(added, "system roots loaded");
            Arc::new(store)
        })
        .clone()
}

/// The roots to verify against: only the CA in `ca_file` when given, else the default ones.
pub(crate) fn roots(ca_file: Option<&Path>) -> Result<Arc<RootCertStore>> {
    let Some(path) = ca_file else {
        return Ok(default_roots());
    };
    let pem = std::fs::read(path)
        .map_err(|e| Error::io(format!("cannot read CA file {}", path.display()), e))?;
    let mut store = RootCertStore::empty();
    let mut found = 0;
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        let cert: CertificateDer<'static> =
            cert.map_err(|e| Error::config(format!("CA file {}: {e}", path.display())))?;
        store
            .add(cert)
            .map_err(|e| Error::config(format!("CA file {}: {e}", path.display())))?;
        found += 1;
    }
    if found == 0 {
        return Err(Error::config(format!(
            "CA file {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(Arc::new(store))
}

/// A client configuration trusting `ca_file` (plus the default roots when `merge_default`)
/// or, when `insecure`, any certificate.
pub(crate) fn client_config(
    ca_file: Option<&Path>,
    merge_default: bool,
    insecure: bool,
) -> Result<ClientConfig> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config(format!("TLS configuration: {e}")))?;
    if insecure {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
            .with_no_client_auth());
    }
    let roots = match (ca_file, merge_default) {
        (Some(path), true) => {
            let mut merged = (*default_roots()).clone();
            merged
                .roots
                .extend(roots(Some(path))?.roots.iter().cloned());
            Arc::new(merged)
        }
        (ca, _) => roots(ca)?,
    };
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// A verifier that accepts every certificate: `insecure = true`, only when asked.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
