//! The tls probe: a handshake with SNI, the chain checked against the webpki and system roots
//! (or a given CA), the hostname checked against the certificate's SANs, and the days left
//! before expiry checked against a threshold.
//!
//! The handshake is completed even when the chain does not verify, so that a failure still
//! carries the evidence an operator needs (subject, issuer, SANs, not-after): the verifier
//! records the webpki verdict instead of aborting on it.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use staging_core::pipeline::RunContext;
use staging_core::spec::TlsCheck;
use staging_core::{Error, Probe, ProbeOutcome, Result};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::{error_chain, fmt_duration};
use crate::tls_config;

/// A TLS certificate check of `host:port`.
#[derive(Debug)]
pub struct TlsProbe {
    name: String,
    host: String,
    port: u16,
    connect_to: Option<String>,
    roots: Arc<RootCertStore>,
    roots_label: String,
    min_days_left: u32,
}

impl TlsProbe {
    /// A probe from its spec table; a relative `ca_file` is read from the spec's directory.
    pub fn from_spec(name: &str, check: &TlsCheck, ctx: &RunContext) -> Result<Self> {
        let ca = check
            .ca_file
            .as_ref()
            .map(|p| ctx.render(p).map(|p| ctx.spec.resolve_path(&p)))
            .transpose()?;
        let roots = tls_config::roots(ca.as_deref())?;
        Ok(TlsProbe {
            name: name.to_owned(),
            host: ctx.render(&check.host)?,
            port: check.port,
            connect_to: check
                .connect_to
                .as_ref()
                .map(|c| ctx.render(c))
                .transpose()?,
            roots,
            roots_label: match &ca {
                Some(p) => format!("the CA in {}", p.display()),
                None => "the webpki and system roots".to_owned(),
            },
            min_days_left: check.min_days_left,
        })
    }
}

/// The chain webpki was shown, and its verdict.
type Recorded = Arc<
    Mutex<
        Option<(
            Vec<CertificateDer<'static>>,
            std::result::Result<(), rustls::Error>,
        )>,
    >,
>;

/// Verifies with webpki, records the verdict and lets the handshake finish.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    seen: Recorded,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map(|_| ());
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some((chain, verdict));
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The facts of a certificate worth showing.
struct CertFacts {
    subject: String,
    issuer: String,
    sans: Vec<String>,
    not_after: String,
    days_left: i64,
}

fn facts(der: &CertificateDer<'_>) -> std::result::Result<CertFacts, String> {
    let (_, cert) = X509Certificate::from_der(der.as_ref())
        .map_err(|e| format!("cannot parse the certificate: {e}"))?;
    let sans = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext
            .value
            .general_names
            .iter()
            .map(|n| match n {
                GeneralName::DNSName(d) => d.to_string(),
                GeneralName::IPAddress(ip) => match ip.len() {
                    4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*ip).expect("4 bytes"))
                        .to_string(),
                    16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*ip).expect("16 bytes"))
                        .to_string(),
                    _ => format!("{ip:?}"),
                },
                other => other.to_string(),
            })
            .collect(),
        _ => vec![],
    };
    let validity = cert.validity();
    let days_left = match validity.time_to_expiration() {
        Some(d) => d.whole_days(),
        None => {
            -((x509_parser::time::ASN1Time::now() - validity.not_after)
                .map(|d| d.whole_days())
                .unwrap_or(0))
        }
    };
    Ok(CertFacts {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans,
        not_after: validity.not_after.to_string(),
        days_left,
    })
}

impl TlsProbe {
    fn describe(&self, e: &rustls::Error, f: Option<&CertFacts>) -> String {
        let issuer = f.map(|f| f.issuer.as_str()).unwrap_or("?");
        match e {
            rustls::Error::InvalidCertificate(ce) => match ce {
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    format!(
                        "certificate expired (not after {})",
                        f.map(|f| f.not_after.as_str()).unwrap_or("?")
                    )
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    format!(
                        "certificate is not valid for {} (SANs: {})",
                        self.host,
                        f.map(|f| f.sans.join(", ")).unwrap_or_default()
                    )
                }
                CertificateError::UnknownIssuer => {
                    format!(
                        "certificate issued by a CA not among {} (issuer: {issuer})",
                        self.roots_label
                    )
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    "certificate is not valid yet".to_owned()
                }
                other => format!("certificate rejected: {other}"),
            },
            other => format!("certificate rejected: {other}"),
        }
    }
}

#[async_trait]
impl Probe for TlsProbe {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "tls"
    }

    async fn run(&self) -> Result<ProbeOutcome> {
        let started = Instant::now();
        let target = self
            .connect_to
            .clone()
            .unwrap_or_else(|| format!("{}:{}", self.host, self.port));
        let expected_chain = format!(
            "a certificate for {} trusted by {}",
            self.host, self.roots_label
        );
        let fail = |expected: &str, observed: String| {
            ProbeOutcome::fail(expected, observed, started.elapsed())
        };

        let server_name = ServerName::try_from(self.host.clone()).map_err(|e| {
            Error::config(format!(
                "probe `{}`: `{}` is not a host name: {e}",
                self.name, self.host
            ))
        })?;
        let provider = tls_config::provider();
        let inner = staging_tls::webpki_verifier(self.roots.clone())
            .map_err(|e| Error::config(format!("probe `{}`: TLS roots: {e}", self.name)))?;
        let seen: Recorded = Arc::default();
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::config(format!("TLS configuration: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(RecordingVerifier {
                inner,
                seen: seen.clone(),
            }))
            .with_no_client_auth();

        let tcp = match tokio::net::TcpStream::connect(&target).await {
            Ok(s) => s,
            Err(e) => {
                return Ok(fail(
                    &expected_chain,
                    format!("connect to {target} failed: {e}"),
                ));
            }
        };
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let handshake = connector.connect(server_name, tcp).await;
        let recorded = seen.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some((chain, verdict)) = recorded else {
            let why = match handshake {
                Err(e) => format!("TLS handshake failed: {}", error_chain(&e)),
                Ok(_) => "the server sent no certificate".to_owned(),
            };
            return Ok(fail(&expected_chain, why));
        };
        if let Ok(mut stream) = handshake {
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
        }
        let facts = chain.first().map(facts).transpose();
        let facts = match facts {
            Ok(f) => f,
            Err(e) => return Ok(fail(&expected_chain, e)),
        };
        let with_facts = |mut o: ProbeOutcome| {
            if let Some(f) = &facts {
                o = o
                    .with_evidence("subject", f.subject.clone())
                    .with_evidence("issuer", f.issuer.clone())
                    .with_evidence("sans", f.sans.join(", "))
                    .with_evidence("not_after", f.not_after.clone())
                    .with_evidence("days_left", f.days_left.to_string());
            }
            o.with_evidence("chain_length", chain.len().to_string())
        };
        if let Err(e) = verdict {
            return Ok(with_facts(fail(
                &expected_chain,
                self.describe(&e, facts.as_ref()),
            )));
        }
        let Some(f) = &facts else {
            return Ok(fail(
                &expected_chain,
                "the server sent no certificate".to_owned(),
            ));
        };
        let expected_days = format!("at least {} days before expiry", self.min_days_left);
        if f.days_left < i64::from(self.min_days_left) {
            let observed = format!("{} days left (not after {})", f.days_left, f.not_after);
            return Ok(with_facts(fail(&expected_days, observed)));
        }
        let took = started.elapsed();
        let observed = format!(
            "trusted, {} days left, handshake in {}",
            f.days_left,
            fmt_duration(took)
        );
        Ok(with_facts(ProbeOutcome::pass(
            format!("{expected_chain}, {expected_days}"),
            observed,
            took,
        )))
    }
}
