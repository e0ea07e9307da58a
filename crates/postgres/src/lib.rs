//! Postgres connections for `staging`, with libpq's `sslmode` rules over rustls.
//!
//! One function, [`connect`], turns a `postgres://` URL held in a [`SecretString`] into a
//! live [`Client`]. It exists (rather than each crate calling a driver directly) for three
//! reasons:
//!
//! - **`sslmode` means what it means in libpq** (and `psql`, and every platform's
//!   connection string): `disable`, `prefer` (the default: TLS when the server offers it,
//!   the certificate not checked), `require` (TLS, not checked — unless `sslrootcert` is
//!   given, then as `verify-ca`), `verify-ca` (the chain is checked, not the host name),
//!   `verify-full` (both). `sslrootcert` names a PEM file, or `system` for the machine's
//!   store added to the Mozilla roots; without it the verifying modes use the Mozilla roots.
//! - **No 40 ms stalls.** The socket has `TCP_NODELAY`, so the small back-to-back writes of
//!   a TLS handshake are not held by Nagle's algorithm until the server's delayed ACK
//!   (sqlx 0.9.0 dropped `TCP_NODELAY`, which costs ≈ 85 ms per TLS connect; see
//!   transact-rs/sqlx#4335).
//! - **Bounded and quiet.** Connecting — the socket, TLS, the startup message and
//!   authentication — is one wait, bounded by [`Limits::connect`] (10 s; the URL's
//!   `connect_timeout`, in seconds, overrides it), and a silent server is reported with its
//!   host and the phase it went silent in. Every query is bounded twice: the server's
//!   `statement_timeout` ([`Limits::query`], sent in the startup `options` unless the URL's
//!   `options` set one) and, should the server or the network go silent, the client gives
//!   up [`QUERY_GRACE`] later and closes the connection. Errors never contain the URL or its
//!   password.
//!
//! ```no_run
//! # async fn run() -> staging_core::Result<()> {
//! use secrecy::SecretString;
//! let url = SecretString::from("postgres://app@db.internal/app?sslmode=verify-full");
//! let client = staging_postgres::connect(&url).await?;
//! let rows = client.simple_query("SELECT 1").await.map_err(|e| staging_postgres::error("query", &e))?;
//! # let _ = rows; Ok(()) }
//! ```

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use staging_core::Error;
use staging_core::redact::mask_url_credentials;
use staging_tls::Verify;
use tokio_postgres::config::{Host, SslMode as DriverSslMode};

mod client;
mod identity;
mod socket;

pub use client::{Client, QUERY_GRACE, QueryError};
pub use identity::{ServerIdentity, identify, identity_of};
pub use tokio_postgres::error::{DbError, ErrorPosition, SqlState};
pub use tokio_postgres::types::ToSql;
pub use tokio_postgres::{Row, SimpleQueryMessage, SimpleQueryRow};

/// How long connecting (socket, TLS, startup, authentication) may take when neither the
/// caller nor the URL's `connect_timeout` says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = staging_core::limits::DEFAULT_CONNECT_TIMEOUT;

/// The server's `statement_timeout` (and, plus [`QUERY_GRACE`], the client's bound on each
/// call) when the caller does not say otherwise.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The bounds of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Socket, TLS, startup message and authentication, as one wait. The URL's
    /// `connect_timeout` (seconds, as in libpq) overrides it.
    pub connect: Duration,
    /// Each statement: the server's `statement_timeout`; the client waits
    /// [`QUERY_GRACE`] longer, then closes the connection.
    pub query: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connect: DEFAULT_CONNECT_TIMEOUT,
            query: DEFAULT_QUERY_TIMEOUT,
        }
    }
}

impl Limits {
    /// Both bounds the same: a probe gives its whole timeout to each phase.
    pub fn all(bound: Duration) -> Self {
        Limits {
            connect: bound,
            query: bound,
        }
    }
}

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it; the certificate is not checked.
    Prefer,
    /// TLS or fail; the certificate is not checked.
    Require,
    /// TLS or fail; the certificate chain is checked, the host name is not.
    VerifyCa,
    /// TLS or fail; the chain and the host name are checked.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// Where the trusted roots come from in the verifying modes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Roots {
    Mozilla,
    System,
    File(PathBuf),
}

/// What [`connect`] read from a URL: the driver's part and the TLS part.
#[derive(Debug)]
struct Target {
    config: tokio_postgres::Config,
    mode: SslMode,
    roots: Roots,
}

fn parse(url: &str) -> staging_core::Result<Target> {
    let scheme_ok = ["postgres://", "postgresql://"]
        .iter()
        .any(|p| url.len() >= p.len() && url[..p.len()].eq_ignore_ascii_case(p));
    if !scheme_ok {
        return Err(Error::config(
            "the database URL must start with postgres:// or postgresql://",
        ));
    }
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let mut mode = None;
    let mut root_file = None;
    let mut kept = vec![];
    for piece in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = url::form_urlencoded::parse(piece.as_bytes())
            .next()
            .unwrap_or_default();
        match key.as_ref() {
            "sslmode" => {
                mode = Some(SslMode::parse(&value).ok_or_else(|| {
                    Error::config(format!(
                        "sslmode `{value}` in the database URL is not one of disable, allow, prefer, require, verify-ca, verify-full"
                    ))
                })?);
            }
            "sslrootcert" => root_file = Some(value.into_owned()),
            "sslcert" | "sslkey" | "sslpassword" => {
                return Err(Error::config(format!(
                    "`{key}` in the database URL: client certificates are not supported; use a password or an IAM token"
                )));
            }
            _ => kept.push(piece),
        }
    }
    let driver_url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config = tokio_postgres::Config::from_str(&driver_url).map_err(|e| {
        Error::config(format!(
            "invalid database URL: {}",
            mask_url_credentials(&e.to_string())
        ))
    })?;
    let roots = match root_file.as_deref() {
        None => Roots::Mozilla,
        Some("system") => Roots::System,
        Some(path) => Roots::File(PathBuf::from(path)),
    };
    // libpq: `require` with a root certificate file behaves as `verify-ca`.
    let mode = match (mode.unwrap_or(SslMode::Prefer), &roots) {
        (SslMode::Require, Roots::File(_)) => SslMode::VerifyCa,
        (m, _) => m,
    };
    config.ssl_mode(match mode {
        SslMode::Disable => DriverSslMode::Disable,
        SslMode::Prefer => DriverSslMode::Prefer,
        _ => DriverSslMode::Require,
    });
    Ok(Target {
        config,
        mode,
        roots,
    })
}

fn tls_config(target: &Target) -> staging_core::Result<rustls::ClientConfig> {
    let roots = || match &target.roots {
        Roots::Mozilla => Ok(Arc::new(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })),
        Roots::System => Ok(staging_tls::default_roots()),
        Roots::File(path) => staging_tls::roots_from_file(path)
            .map_err(|e| Error::config(format!("sslrootcert: {e}"))),
    };
    match target.mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => {
            staging_tls::client_config(Arc::new(rustls::RootCertStore::empty()), Verify::Nothing)
        }
        SslMode::VerifyCa => staging_tls::client_config(roots()?, Verify::ChainOnly),
        SslMode::VerifyFull => staging_tls::client_config(roots()?, Verify::Full),
    }
}

/// libpq's variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`,
/// `PGSSLMODE`, `PGSSLROOTCERT`) for the database `url` names, read by the same parser as
/// [`connect`] — so a tool started with them (`pg_dump`, `pg_restore`) reaches the database
/// a connection of this crate identified, `?host=`, `?dbname=`, sockets and several hosts
/// included — and no password appears on a command line.
pub fn libpq_environment(url: &SecretString) -> staging_core::Result<Vec<(&'static str, String)>> {
    let target = parse(url.expose_secret())?;
    let c = &target.config;
    let hosts: Vec<String> = c
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            Host::Unix(dir) => dir.display().to_string(),
        })
        .collect();
    if hosts.is_empty() {
        return Err(Error::config("the database URL names no host"));
    }
    let ports: Vec<String> = c.get_ports().iter().map(u16::to_string).collect();
    let mut env = vec![("PGHOST", hosts.join(","))];
    if !ports.is_empty() {
        env.push(("PGPORT", ports.join(",")));
    }
    if let Some(user) = c.get_user() {
        env.push(("PGUSER", user.to_owned()));
    }
    if let Some(password) = c.get_password() {
        env.push(("PGPASSWORD", String::from_utf8_lossy(password).into_owned()));
    }
    if let Some(db) = c.get_dbname() {
        env.push(("PGDATABASE", db.to_owned()));
    }
    env.push((
        "PGSSLMODE",
        match target.mode {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
        .to_owned(),
    ));
    match &target.roots {
        Roots::File(path) => env.push(("PGSSLROOTCERT", path.display().to_string())),
        Roots::System => env.push(("PGSSLROOTCERT", "system".to_owned())),
        Roots::Mozilla => {}
    }
    Ok(env)
}

/// Connect to the database `url` names (see the crate docs for the TLS rules), with the
/// default [`Limits`].
pub async fn connect(url: &SecretString) -> staging_core::Result<Client> {
    connect_with(url, Limits::default()).await
}

/// Connect with these bounds. A server that does not answer in time fails with
/// [`Error::Timeout`] naming its `host:port` and the phase: the TCP connect, or the
/// handshake (TLS, startup, authentication), saying whether the server sent anything.
pub async fn connect_with(url: &SecretString, limits: Limits) -> staging_core::Result<Client> {
    let mut target = parse(url.expose_secret())?;
    let bound = target
        .config
        .get_connect_timeout()
        .copied()
        .unwrap_or(limits.connect);
    // The server's own bound on each statement, unless the URL's `options` set one; then
    // the client's bound follows it (a long migration can raise both in its URL).
    let mut limits = limits;
    let options = target.config.get_options().unwrap_or_default().to_owned();
    match url_statement_timeout(&options) {
        Some(Some(t)) => limits.query = t,
        Some(None) => {}
        None => {
            let ms = limits.query.as_millis().clamp(1, i32::MAX as u128);
            target
                .config
                .options(format!("{options} -c statement_timeout={ms}").trim_start());
        }
    }
    let mut tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(&target)?);
    let hosts = target.config.get_hosts();
    if hosts.is_empty() {
        return Err(Error::config("the database URL names no host"));
    }
    let mut last = None;
    for (i, host) in hosts.iter().enumerate() {
        let port = target
            .config
            .get_ports()
            .get(i)
            .or(target.config.get_ports().first())
            .copied()
            .unwrap_or(5432);
        let attempt = match host {
            Host::Tcp(name) => {
                let addr = target.config.get_hostaddrs().get(i).copied();
                connect_tcp(&target.config, &mut tls, name, addr, port, bound).await
            }
            Host::Unix(dir) => connect_unix(&target.config, &mut tls, dir, port, bound).await,
        };
        match attempt {
            Ok((client, peer)) => {
                return Ok(Client {
                    inner: client.0,
                    peer,
                    query_timeout: limits.query,
                    connection: client.1,
                });
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("at least one host"))
}

/// The `statement_timeout` the URL's `options` set: `None` when they set none,
/// `Some(None)` when it is `0` (the server's bound is off; the client keeps its own) or
/// cannot be read, else the duration (`7s`, `30min`, `1h`, `500ms`, plain milliseconds).
fn url_statement_timeout(options: &str) -> Option<Option<Duration>> {
    let at = options.find("statement_timeout")?;
    let value = options[at + "statement_timeout".len()..]
        .trim_start_matches([' ', '='])
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap_or_default()
        .trim_matches(['\'', '"']);
    let digits = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &value[digits.len()..];
    let n: u64 = digits.trim().parse().ok()?;
    let ms = match unit.trim() {
        "" | "ms" => n,
        "s" => n.saturating_mul(1000),
        "min" => n.saturating_mul(60_000),
        "h" => n.saturating_mul(3_600_000),
        "d" => n.saturating_mul(86_400_000),
        _ => return Some(None),
    };
    Some((ms > 0).then(|| Duration::from_millis(ms)))
}

type Connected = (tokio_postgres::Client, tokio::task::AbortHandle);

async fn connect_tcp(
    config: &tokio_postgres::Config,
    tls: &mut tokio_postgres_rustls::MakeRustlsConnect,
    host: &str,
    addr: Option<std::net::IpAddr>,
    port: u16,
    bound: Duration,
) -> staging_core::Result<(Connected, String)> {
    let peer = format!("{host}:{port}");
    let started = tokio::time::Instant::now();
    let open = async {
        match addr {
            Some(ip) => tokio::net::TcpStream::connect((ip, port)).await,
            None => tokio::net::TcpStream::connect((host, port)).await,
        }
    };
    let stream = open_bounded(open, bound, &peer, "a TCP connection to the database at").await?;
    // Small back-to-back handshake writes must not wait for a delayed ACK.
    let _ = stream.set_nodelay(true);
    let remaining = bound.saturating_sub(started.elapsed());
    let connector = <_ as tokio_postgres::tls::MakeTlsConnect<
        socket::Counted<tokio::net::TcpStream>,
    >>::make_tls_connect(tls, host)
    .map_err(|e| Error::config(format!("TLS for {host}: {e}")))?;
    handshake(config, stream, connector, &peer, remaining, bound).await
}

async fn connect_unix(
    config: &tokio_postgres::Config,
    tls: &mut tokio_postgres_rustls::MakeRustlsConnect,
    dir: &std::path::Path,
    port: u16,
    bound: Duration,
) -> staging_core::Result<(Connected, String)> {
    let path = dir.join(format!(".s.PGSQL.{port}"));
    let peer = path.display().to_string();
    let started = tokio::time::Instant::now();
    let open = tokio::net::UnixStream::connect(&path);
    let stream = open_bounded(open, bound, &peer, "a connection to the database socket").await?;
    let remaining = bound.saturating_sub(started.elapsed());
    let connector = <_ as tokio_postgres::tls::MakeTlsConnect<
        socket::Counted<tokio::net::UnixStream>,
    >>::make_tls_connect(tls, "localhost")
    .map_err(|e| Error::config(format!("TLS for {peer}: {e}")))?;
    handshake(config, stream, connector, &peer, remaining, bound).await
}

/// Opens a stream within `bound`: a refused or failed open is a retryable provider error,
/// one that takes longer a timeout naming `what` and the peer.
async fn open_bounded<S>(
    open: impl std::future::Future<Output = std::io::Result<S>>,
    bound: Duration,
    peer: &str,
    what: &str,
) -> staging_core::Result<S> {
    match tokio::time::timeout(bound, open).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(Error::Provider {
            provider: "postgres".to_owned(),
            source: format!("cannot connect: {peer}: {e}").into(),
            retryable: true,
        }),
        Err(_) => Err(Error::Timeout {
            what: format!("{what} {peer}"),
            after: bound,
        }),
    }
}

/// TLS (when the mode asks), the startup message and authentication on `stream`, within
/// `remaining`; then the connection is driven by a task of its own.
async fn handshake<S, T>(
    config: &tokio_postgres::Config,
    stream: S,
    tls: T,
    peer: &str,
    remaining: Duration,
    bound: Duration,
) -> staging_core::Result<(Connected, String)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio_postgres::tls::TlsConnect<socket::Counted<S>>,
    T::Stream: Send + 'static,
{
    let (stream, received) = socket::Counted::new(stream);
    match tokio::time::timeout(remaining, config.connect_raw(stream, tls)).await {
        Ok(Ok((client, connection))) => {
            let task = tokio::spawn(async move {
                // A connection that ends with an error fails the client's next query, which
                // reports it.
                if let Err(e) = connection.await {
                    tracing::debug!(target: "staging_postgres", "connection closed: {}", describe_driver(&e));
                }
            });
            Ok(((client, task.abort_handle()), peer.to_owned()))
        }
        Ok(Err(e)) => Err(error(&format!("cannot connect to {peer}"), &e.into())),
        Err(_) => {
            let phase = if received.load(std::sync::atomic::Ordering::Relaxed) == 0 {
                "the server accepted the connection and never answered the TLS or startup request"
            } else {
                "the TLS, startup and authentication handshake stalled after the server's first answer"
            };
            Err(Error::Timeout {
                what: format!("connecting to the database at {peer}: {phase}"),
                after: bound,
            })
        }
    }
}

/// The database's own words for `e`: message, detail and SQLSTATE for a server error, the
/// driver's text otherwise; never the URL or its password.
pub fn describe(e: &QueryError) -> String {
    match e.driver() {
        Some(driver) => describe_driver(driver),
        None => e.to_string(),
    }
}

pub(crate) fn describe_driver(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut text = db.message().to_owned();
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" ({detail})"));
            }
            text.push_str(&format!(" [SQLSTATE {}]", db.code().code()));
            text
        }
        None => mask_url_credentials(&staging_core::error::error_chain(e)).into_owned(),
    }
}

/// `e` as a `postgres` provider error, `context` first; retryable when the connection
/// failed or the server is shutting down or full, not when the SQL was refused.
pub fn error(context: &str, e: &QueryError) -> Error {
    Error::Provider {
        provider: "postgres".to_owned(),
        source: format!("{context}: {}", describe(e)).into(),
        retryable: is_transient(e),
    }
}

/// Whether `e` is about the connection rather than the statement.
pub fn is_transient(e: &QueryError) -> bool {
    let Some(e) = e.driver() else {
        return true;
    };
    match e.code() {
        Some(code) => {
            let code = code.code();
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
        }
        None => {
            e.is_closed() || {
                let mut source = std::error::Error::source(e);
                let mut io = false;
                while let Some(s) = source {
                    io |= s.is::<std::io::Error>();
                    source = s.source();
                }
                io
            }
        }
    }
}

/// The `SQLSTATE` of a server error, if `e` is one.
pub fn code(e: &QueryError) -> Option<&str> {
    e.code()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(url: &str) -> SslMode {
        parse(url).unwrap().mode
    }

    #[test]
    fn tools_get_the_database_the_connection_parser_reads_not_the_url_path() {
        let env = |url: &str| {
            libpq_environment(&SecretString::from(url.to_owned()))
                .unwrap()
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        // `?host=` names the host (a socket here), `?dbname=` overrides the path.
        let e = env("postgres:///pathdb?host=/var/run/postgresql&dbname=real&user=u%40x");
        assert_eq!(e["PGHOST"], "/var/run/postgresql");
        assert_eq!(e["PGDATABASE"], "real");
        assert_eq!(e["PGUSER"], "u@x");
        let e = env("postgresql://u:p%2Fw@h1:5433,h2:5434/app?sslmode=require");
        assert_eq!(e["PGHOST"], "h1,h2");
        assert_eq!(e["PGPORT"], "5433,5434");
        assert_eq!(e["PGPASSWORD"], "p/w");
        assert_eq!(e["PGSSLMODE"], "require");
        assert!(libpq_environment(&SecretString::from("mysql://h/db".to_owned())).is_err());
    }

    #[test]
    fn a_statement_timeout_in_the_url_sets_the_client_bound_too() {
        use std::time::Duration;
        assert_eq!(url_statement_timeout("-c search_path=x"), None);
        assert_eq!(
            url_statement_timeout("-c statement_timeout=7s"),
            Some(Some(Duration::from_secs(7)))
        );
        assert_eq!(
            url_statement_timeout("-c search_path=x -c statement_timeout=30min"),
            Some(Some(Duration::from_secs(1800)))
        );
        assert_eq!(
            url_statement_timeout("-c statement_timeout=1500"),
            Some(Some(Duration::from_millis(1500)))
        );
        assert_eq!(url_statement_timeout("-c statement_timeout=0"), Some(None));
        assert_eq!(
            url_statement_timeout("-c statement_timeout=2weeks"),
            Some(None)
        );
    }

    #[test]
    fn sslmode_defaults_to_prefer_and_require_with_a_root_file_verifies_the_chain() {
        assert_eq!(mode_of("postgres://h/db"), SslMode::Prefer);
        assert_eq!(mode_of("postgres://h/db?sslmode=disable"), SslMode::Disable);
        assert_eq!(
            mode_of("postgresql://h/db?sslmode=require"),
            SslMode::Require
        );
        assert_eq!(
            mode_of("postgres://h/db?sslmode=require&sslrootcert=%2Fetc%2Fca.pem"),
            SslMode::VerifyCa
        );
        assert_eq!(
            mode_of("postgres://h/db?sslmode=verify-full&application_name=x"),
            SslMode::VerifyFull
        );
        let t = parse("postgres://h/db?sslrootcert=system&sslmode=verify-ca").unwrap();
        assert_eq!((t.mode, t.roots), (SslMode::VerifyCa, Roots::System));
    }

    #[test]
    fn the_driver_gets_every_other_parameter() {
        let t =
            parse("postgres://u@h:6543/db?sslmode=require&application_name=stg&connect_timeout=3")
                .unwrap();
        assert_eq!(t.config.get_application_name(), Some("stg"));
        assert_eq!(
            t.config.get_connect_timeout(),
            Some(&Duration::from_secs(3))
        );
        assert_eq!(t.config.get_ports(), &[6543]);
        let t = parse("postgres://h/db").unwrap();
        assert_eq!(t.config.get_connect_timeout(), None);
    }

    #[test]
    fn bad_urls_are_config_errors_that_never_echo_the_password() {
        for (url, says) in [
            ("mysql://u:canary-pw@h/db", "postgres://"),
            (
                "postgres://u:canary-pw@h/db?sslmode=sometimes",
                "sslmode `sometimes`",
            ),
            (
                "postgres://u:canary-pw@h/db?sslcert=/c.pem",
                "client certificates",
            ),
            (
                "postgres://u:canary-pw@h/db?bogus=1",
                "invalid database URL",
            ),
        ] {
            let e = parse(url).unwrap_err().to_string();
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("canary-pw"), "{url}: {e}");
        }
    }

    #[test]
    fn a_missing_root_file_is_named() {
        let t =
            parse("postgres://h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem").unwrap();
        let e = tls_config(&t).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}
