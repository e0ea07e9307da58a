//! rustls client configurations for `staging`, in one place: the one crypto provider
//! (aws-lc-rs; no ring, no OpenSSL), root stores, and the three ways a client may treat a
//! server's certificate.
//!
//! ```
//! use staging_tls::{Verify, client_config, default_roots};
//! let config = client_config(default_roots(), Verify::Full).unwrap();
//! # let _ = config;
//! ```

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use staging_core::{Error, Result};

/// The toolkit's one crypto provider, aws-lc-rs.
pub fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// The Mozilla roots (webpki-roots) plus the system's, loaded once per process.
pub fn default_roots() -> Arc<RootCertStore> {
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

/// The certificates of a PEM file as a root store; an error names the file when it cannot
/// be read or holds no certificate.
pub fn roots_from_file(path: &Path) -> Result<Arc<RootCertStore>> {
    let pem = std::fs::read(path)
        .map_err(|e| Error::io(format!("cannot read CA file {}", path.display()), e))?;
    let mut store = RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        let cert: CertificateDer<'static> =
            cert.map_err(|e| Error::config(format!("CA file {}: {e}", path.display())))?;
        store
            .add(cert)
            .map_err(|e| Error::config(format!("CA file {}: {e}", path.display())))?;
    }
    if store.is_empty() {
        return Err(Error::config(format!(
            "CA file {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(Arc::new(store))
}

/// The default roots and those of `path` together.
pub fn default_roots_and_file(path: &Path) -> Result<Arc<RootCertStore>> {
    let mut merged = (*default_roots()).clone();
    merged
        .roots
        .extend(roots_from_file(path)?.roots.iter().cloned());
    Ok(Arc::new(merged))
}

/// How a client treats the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// The chain must lead to a trusted root and the certificate must name the server.
    Full,
    /// The chain must lead to a trusted root; the name is not checked (libpq's `verify-ca`).
    ChainOnly,
    /// Not checked at all; the handshake signatures still are (libpq's `prefer` and
    /// `require`, a probe's `insecure = true`).
    Nothing,
}

/// A client configuration with `roots` (unused for [`Verify::Nothing`]).
pub fn client_config(roots: Arc<RootCertStore>, verify: Verify) -> Result<ClientConfig> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config(format!("TLS configuration: {e}")))?;
    Ok(match verify {
        Verify::Full => builder.with_root_certificates(roots).with_no_client_auth(),
        Verify::ChainOnly => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki_verifier(roots)?)))
            .with_no_client_auth(),
        Verify::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
            .with_no_client_auth(),
    })
}

/// The standard verifier over `roots`, with the toolkit's provider.
pub fn webpki_verifier(roots: Arc<RootCertStore>) -> Result<Arc<WebPkiServerVerifier>> {
    WebPkiServerVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| Error::config(format!("TLS configuration: {e}")))
}

/// A verifier that accepts every certificate but still checks the handshake signatures.
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

/// The standard verifier with the name check dropped.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_named() {
        let e = roots_from_file(Path::new("/nonexistent/ca.pem"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = roots_from_file(&empty).unwrap_err().to_string();
        assert!(e.contains("holds no PEM certificate"), "{e}");
    }

    #[test]
    fn default_roots_hold_at_least_the_mozilla_set() {
        assert!(default_roots().len() >= webpki_roots::TLS_SERVER_ROOTS.len());
    }
}
