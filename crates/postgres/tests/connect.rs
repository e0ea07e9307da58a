//! `connect` against the real test server: the sslmode rules, the password never echoed.

use secrecy::SecretString;
use staging_postgres::{SimpleQueryMessage, connect};

/// The test server (trust auth); override with `STAGING_TEST_PG_URL`.
fn base_url() -> String {
    std::env::var("STAGING_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn with(params: &str) -> SecretString {
    let base = base_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    SecretString::from(format!("{base}{sep}{params}"))
}

/// The first column of the first row `sql` returns.
async fn first(client: &staging_postgres::Client, sql: &str) -> String {
    client
        .simple_query(sql)
        .await
        .unwrap()
        .into_iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or_default().to_owned()),
            _ => None,
        })
        .expect("a row")
}

async fn server_has_tls() -> bool {
    let c = connect(&with("sslmode=disable")).await.unwrap();
    first(&c, "SHOW ssl").await == "on"
}

const USES_TLS: &str = "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

#[tokio::test]
async fn disable_connects_in_plain_text() {
    let c = connect(&with("sslmode=disable")).await.unwrap();
    assert_eq!(first(&c, USES_TLS).await, "false");
}

#[tokio::test]
async fn prefer_and_require_use_tls_without_checking_the_certificate() {
    if !server_has_tls().await {
        eprintln!("skipped: the test server has ssl = off");
        return;
    }
    // The default is prefer; the test server's certificate is self-signed.
    let c = connect(&SecretString::from(base_url())).await.unwrap();
    assert_eq!(first(&c, USES_TLS).await, "true");
    let c = connect(&with("sslmode=require")).await.unwrap();
    assert_eq!(first(&c, USES_TLS).await, "true");
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_no_trusted_root_signed() {
    if !server_has_tls().await {
        eprintln!("skipped: the test server has ssl = off");
        return;
    }
    let e = connect(&with("sslmode=verify-full"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("certificate"), "{e}");
}

#[tokio::test]
async fn verify_ca_trusts_the_given_root_and_ignores_the_host_name() {
    if !server_has_tls().await {
        eprintln!("skipped: the test server has ssl = off");
        return;
    }
    let c = connect(&with("sslmode=disable")).await.unwrap();
    let cert_file = first(&c, "SHOW ssl_cert_file").await;
    let Ok(pem) = std::fs::read(&cert_file) else {
        eprintln!("skipped: cannot read the server's certificate {cert_file}");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("server.pem");
    std::fs::write(&root, pem).unwrap();
    let root_param = format!("sslrootcert={}", root.display());
    // The certificate names the machine, not 127.0.0.1: verify-ca passes, verify-full not.
    let c = connect(&with(&format!("sslmode=verify-ca&{root_param}")))
        .await
        .unwrap();
    assert_eq!(first(&c, USES_TLS).await, "true");
    let c = connect(&with(&format!("sslmode=require&{root_param}")))
        .await
        .unwrap();
    assert_eq!(first(&c, USES_TLS).await, "true");
    let e = connect(&with(&format!("sslmode=verify-full&{root_param}")))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("certificate"), "{e}");
}

#[tokio::test]
async fn a_refused_connection_is_retryable_and_never_shows_the_password() {
    let url = SecretString::from(
        "postgres://postgres:canary-pg-secret@127.0.0.1:1/test?connect_timeout=2".to_owned(),
    );
    let e = connect(&url).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    let text = format!("{e} {e:?}");
    assert!(!text.contains("canary-pg-secret"), "{text}");
    assert!(text.contains("cannot connect"), "{text}");
}

#[tokio::test]
async fn a_server_error_keeps_its_sqlstate_and_is_not_retryable() {
    let c = connect(&with("sslmode=disable")).await.unwrap();
    let e = c
        .simple_query("SELECT * FROM no_such_table_here")
        .await
        .unwrap_err();
    assert_eq!(staging_postgres::code(&e), Some("42P01"));
    let err = staging_postgres::error("cannot read", &e);
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("[SQLSTATE 42P01]"), "{err}");
}
