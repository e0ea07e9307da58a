//! The tls probe (and the http probe's `ca_file` / `insecure`) against TLS servers on
//! loopback with certificates made here by rcgen: valid, expired, for another host, and from
//! an unknown CA.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use staging_smoke::ProbeStatus;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

fn this_year() -> i32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    1970 + (secs / 31_556_952) as i32
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    Ca { params, key, pem }
}

/// A leaf certificate for `host` issued by `ca`, valid between the given years.
fn leaf(
    ca: &Ca,
    host: &str,
    from_year: i32,
    to_year: i32,
) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let mut params = CertificateParams::new(vec![host.to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, host);
    params.not_before = date_time_ymd(from_year, 1, 1);
    params.not_after = date_time_ymd(to_year, 1, 1);
    let key = KeyPair::generate().unwrap();
    let issuer = Issuer::from_params(&ca.params, &ca.key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    (
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

/// A TLS server on loopback answering every request with `200 ok`.
async fn tls_server(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> SocketAddr {
    staging_smoke::install_crypto_provider();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

fn tls_probe(name: &str, addr: SocketAddr, extra: &str) -> String {
    format!(
        "[[probes]]\nname = \"{name}\"\ntls = {{ host = \"localhost\", connect_to = \"{addr}\", ca_file = \"ca.pem\"{extra} }}\n"
    )
}

#[tokio::test]
async fn tls_probe_passes_a_valid_certificate_and_shows_its_facts() {
    let ca = ca("Smoke Test CA");
    let year = this_year();
    let (cert, key) = leaf(&ca, "localhost", year - 1, year + 2);
    let addr = tls_server(cert, key).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
    let ctx = context_in(dir.path(), &tls_probe("cert", addr, ""), &[]);
    let report = smoke(&ctx).await;
    let p = &report.probes[0];
    assert_eq!(p.status, ProbeStatus::Passed, "{report:#?}");
    let fact = |k: &str| {
        p.evidence
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(fact("subject"), "CN=localhost");
    assert_eq!(fact("issuer"), "CN=Smoke Test CA");
    assert_eq!(fact("sans"), "localhost");
    assert!(
        fact("not_after").contains(&(year + 2).to_string()),
        "{p:#?}"
    );
    assert!(fact("days_left").parse::<i64>().unwrap() > 300);
}

#[tokio::test]
async fn tls_probe_fails_an_expired_certificate() {
    let ca = ca("Smoke Test CA");
    let year = this_year();
    let (cert, key) = leaf(&ca, "localhost", year - 3, year - 1);
    let addr = tls_server(cert, key).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
    let report = smoke(&context_in(
        dir.path(),
        &tls_probe("expired", addr, ""),
        &[],
    ))
    .await;
    let p = &report.probes[0];
    assert_eq!(p.status, ProbeStatus::Failed);
    assert!(
        p.observed
            .as_deref()
            .unwrap()
            .starts_with("certificate expired (not after"),
        "{p:#?}"
    );
    assert!(
        p.evidence
            .iter()
            .any(|(k, v)| k == "days_left" && v.starts_with('-')),
        "{p:#?}"
    );
}

#[tokio::test]
async fn tls_probe_fails_a_certificate_for_another_host() {
    let ca = ca("Smoke Test CA");
    let year = this_year();
    let (cert, key) = leaf(&ca, "other.example", year - 1, year + 2);
    let addr = tls_server(cert, key).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
    let report = smoke(&context_in(
        dir.path(),
        &tls_probe("wrong-host", addr, ""),
        &[],
    ))
    .await;
    let p = &report.probes[0];
    assert_eq!(
        p.observed.as_deref(),
        Some("certificate is not valid for localhost (SANs: other.example)")
    );
}

#[tokio::test]
async fn tls_probe_fails_a_certificate_from_an_unknown_ca() {
    let trusted = ca("Smoke Test CA");
    let stranger = ca("Stranger CA");
    let year = this_year();
    let (cert, key) = leaf(&stranger, "localhost", year - 1, year + 2);
    let addr = tls_server(cert, key).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &trusted.pem).unwrap();
    let report = smoke(&context_in(
        dir.path(),
        &tls_probe("unknown-ca", addr, ""),
        &[],
    ))
    .await;
    let observed = report.probes[0].observed.clone().unwrap();
    assert!(
        observed.starts_with("certificate issued by a CA not among the CA in"),
        "{observed}"
    );
    assert!(observed.ends_with("(issuer: CN=Stranger CA)"), "{observed}");
}

#[tokio::test]
async fn tls_probe_fails_a_certificate_with_fewer_days_left_than_required() {
    let ca = ca("Smoke Test CA");
    let year = this_year();
    let (cert, key) = leaf(&ca, "localhost", year - 1, year + 2);
    let addr = tls_server(cert, key).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
    let report = smoke(&context_in(
        dir.path(),
        &tls_probe("short", addr, ", min_days_left = 5000"),
        &[],
    ))
    .await;
    let p = &report.probes[0];
    assert_eq!(
        p.expected.as_deref(),
        Some("at least 5000 days before expiry")
    );
    assert!(
        p.observed
            .as_deref()
            .unwrap()
            .contains("days left (not after"),
        "{p:#?}"
    );
}

#[tokio::test]
async fn https_probe_trusts_a_custom_ca_or_insecure_only_when_asked() {
    let ca = ca("Smoke Test CA");
    let year = this_year();
    let (cert, key) = leaf(&ca, "localhost", year - 1, year + 2);
    let addr = tls_server(cert, key).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
    let url = format!("https://localhost:{}/up", addr.port());
    let spec = format!(
        r#"
[[probes]]
name = "with-ca"
http = {{ url = "{url}", ca_file = "ca.pem" }}
[[probes]]
name = "insecure"
http = {{ url = "{url}", insecure = true }}
[[probes]]
name = "default-roots"
http = {{ url = "{url}" }}
"#
    );
    let report = smoke(&context_in(dir.path(), &spec, &[])).await;
    assert_eq!(report.probes[0].status, ProbeStatus::Passed, "{report:#?}");
    assert_eq!(report.probes[1].status, ProbeStatus::Passed, "{report:#?}");
    let default = &report.probes[2];
    assert_eq!(default.status, ProbeStatus::Failed);
    assert!(
        default.observed.as_deref().unwrap().contains("certificate"),
        "{default:#?}"
    );
}
