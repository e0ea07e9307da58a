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

/// A silent server is given up on within the bound, with its host and the phase.
#[tokio::test]
async fn a_server_that_accepts_and_never_answers_fails_within_the_connect_bound() {
    let peer = staging_core::testkit::SilentPeer::start();
    for mode in ["disable", "prefer", "require"] {
        let url = SecretString::from(format!(
            "postgres://app:canary-pw@{}/db?sslmode={mode}",
            peer.addr()
        ));
        let limits = staging_postgres::Limits {
            connect: std::time::Duration::from_secs(1),
            ..Default::default()
        };
        let e = not_hung(staging_postgres::connect_with(&url, limits))
            .await
            .unwrap_err();
        assert!(
            matches!(e, staging_core::Error::Timeout { after, .. } if after == limits.connect),
            "{mode}: {e:?}"
        );
        let text = e.to_string();
        assert!(
            matches!(e, staging_core::Error::Timeout { .. }),
            "{mode}: {e:?}"
        );
        assert!(text.contains(&peer.addr().to_string()), "{mode}: {text}");
        assert!(text.contains("never answered"), "{mode}: {text}");
        assert!(!text.contains("canary-pw"), "{mode}: {text}");
    }
    // The URL's `connect_timeout` (seconds, as in libpq) is the bound when it is given.
    let url = SecretString::from(format!("postgres://{}/db?connect_timeout=1", peer.addr()));
    let e = not_hung(connect(&url)).await.unwrap_err().to_string();
    assert!(
        e.starts_with("timed out after 1s: connecting to the database at 127.0.0.1:"),
        "{e}"
    );
}

/// A query that outlives the bound is cancelled by the server, whose words are reported.
#[tokio::test]
async fn a_query_past_its_bound_is_cancelled_and_reported() {
    let limits = staging_postgres::Limits {
        query: std::time::Duration::from_millis(300),
        ..Default::default()
    };
    let c = staging_postgres::connect_with(&with("sslmode=disable"), limits)
        .await
        .unwrap();
    assert_eq!(first(&c, "SHOW statement_timeout").await, "300ms");
    let e = not_hung(c.simple_query("SELECT pg_sleep(300)"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("57014"), "{e}");
    assert!(
        staging_postgres::describe(&e).contains("statement timeout"),
        "{e}"
    );
}

/// The URL's own `statement_timeout` is kept.
#[tokio::test]
async fn a_statement_timeout_in_the_url_options_wins() {
    let c = connect(&with("sslmode=disable&options=-c%20statement_timeout%3D7s"))
        .await
        .unwrap();
    assert_eq!(first(&c, "SHOW statement_timeout").await, "7s");
}

/// A loopback proxy to the test server that can go silent: from `mute()` on, nothing the
/// server sends reaches the client (a network that drops replies, a server that hangs).
struct MutableProxy {
    addr: std::net::SocketAddr,
    muted: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl MutableProxy {
    fn start(upstream: &str) -> Self {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let muted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let upstream = upstream.to_owned();
        let m = muted.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let server = std::net::TcpStream::connect(&upstream).unwrap();
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    while let Ok(n @ 1..) = c_in.read(&mut buf) {
                        if s_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
                let (mut s_in, mut c_out, m) = (server, client, m.clone());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    while let Ok(n @ 1..) = s_in.read(&mut buf) {
                        if !m.load(Ordering::SeqCst) && c_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        MutableProxy { addr, muted }
    }

    fn mute(&self) {
        self.muted.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A server that goes silent mid-session: the client gives up a grace period after the
/// statement bound, says so with the host, and the connection is closed for the next call.
#[tokio::test]
async fn a_server_that_goes_silent_mid_session_fails_the_query_within_its_bound() {
    let upstream = url::Url::parse(&base_url()).unwrap();
    let proxy = MutableProxy::start(&format!(
        "{}:{}",
        upstream.host_str().unwrap(),
        upstream.port().unwrap_or(5432)
    ));
    let url = SecretString::from(format!(
        "postgres://{}@{}{}?sslmode=disable",
        upstream.username(),
        proxy.addr,
        upstream.path()
    ));
    let limits = staging_postgres::Limits {
        query: std::time::Duration::from_millis(500),
        ..Default::default()
    };
    let c = staging_postgres::connect_with(&url, limits).await.unwrap();
    assert_eq!(first(&c, "SELECT 1").await, "1");
    proxy.mute();
    let e = not_hung(c.simple_query("SELECT 2")).await.unwrap_err();
    assert!(e.is_timeout() && e.is_closed(), "{e}");
    assert_eq!(
        e.timed_out_after(),
        Some(limits.query + staging_postgres::QUERY_GRACE)
    );
    let text = staging_postgres::describe(&e);
    assert!(
        text.contains(&proxy.addr.to_string()) && text.contains("query"),
        "{text}"
    );
    assert!(staging_postgres::is_transient(&e));
    // The connection is closed: the next call fails at once.
    let e = not_hung(c.simple_query("SELECT 3")).await.unwrap_err();
    assert!(!e.is_timeout(), "the closed connection waited again: {e}");
}

/// Guards a test against hanging forever (far above every bound under test; not a timing
/// assertion: the bound itself is asserted through the error's `after`).
async fn not_hung<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(120), f)
        .await
        .expect("hung: no result within 120 s")
}
