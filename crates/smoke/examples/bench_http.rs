//! Benchmark: N HTTP probes against a loopback server that holds each response 50 ms.
//!
//! Prints the wall time of the smoke runner against the floor `ceil(N / concurrency) × 50 ms`,
//! the peak RSS of this process (the server runs in a child process, so it is not counted),
//! and, when `hurl` is on the PATH, the wall time of `hurl --test --jobs <concurrency>` on the
//! same N requests, in the same run.
//!
//! With `--https` the server speaks TLS with a certificate for `127.0.0.1` issued by a CA
//! made for the run (rcgen); both tools are given that CA (`ca_file`, `hurl --cacert`), so
//! every connection pays a real handshake and verification.
//!
//! ```text
//! cargo run --release -p staging-smoke --example bench_http -- [--probes 1000] [--concurrency 16] [--hold-ms 50] [--https]
//! ```
//! or `scripts/bench-smoke.sh`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use staging_core::Redactor;
use staging_core::pipeline::RunContext;
use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_smoke::{Runner, RunnerOptions, build_probes};

struct Args {
    probes: usize,
    concurrency: usize,
    hold_ms: u64,
    serve: bool,
    https: bool,
    /// Server mode: serve TLS with `cert.der` and `key.der` from this directory.
    tls_dir: Option<std::path::PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        probes: 1000,
        concurrency: 16,
        hold_ms: 50,
        serve: false,
        https: false,
        tls_dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match flag.as_str() {
            "--probes" => a.probes = value("--probes") as usize,
            "--concurrency" => a.concurrency = value("--concurrency") as usize,
            "--hold-ms" => a.hold_ms = value("--hold-ms"),
            "--serve" => a.serve = true,
            "--https" => a.https = true,
            "--tls-dir" => a.tls_dir = Some(it.next().expect("--tls-dir needs a path").into()),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// The server mode: print the port, hold each response `hold_ms`, serve until killed.
async fn serve(hold_ms: u64, tls_dir: Option<&std::path::Path>) {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/held",
        get(move || async move {
            tokio::time::sleep(Duration::from_millis(hold_ms)).await;
            "held"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    println!("{}", listener.local_addr().expect("addr").port());
    match tls_dir {
        None => axum::serve(listener, app).await.expect("serve"),
        Some(dir) => axum::serve(TlsListener::new(listener, dir), app)
            .await
            .expect("serve"),
    }
}

/// TLS over a TCP listener for `axum::serve`; handshakes run concurrently, each on its own
/// task, so the server side never serializes them.
struct TlsListener {
    local: std::net::SocketAddr,
    ready: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        std::net::SocketAddr,
    )>,
}

impl TlsListener {
    fn new(tcp: tokio::net::TcpListener, dir: &std::path::Path) -> Self {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let cert = CertificateDer::from(std::fs::read(dir.join("cert.der")).expect("cert"));
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            std::fs::read(dir.join("key.der")).expect("key"),
        ));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let local = tcp.local_addr().expect("addr");
        let (tx, ready) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move {
            loop {
                let Ok((stream, addr)) = tcp.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        let _ = tx.send((tls, addr)).await;
                    }
                });
            }
        });
        TlsListener { local, ready }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        self.ready.recv().await.expect("the accept loop never ends")
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// A CA made for this run and a certificate for `127.0.0.1` it issued, written to `dir`:
/// `ca.pem` for the clients, `cert.der` and `key.der` for the server.
fn make_certificates(dir: &std::path::Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.distinguished_name
        .push(DnType::CommonName, "bench-smoke CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().expect("ca key");
    let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("leaf params");
    leaf.distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let key = KeyPair::generate().expect("leaf key");
    let cert = leaf
        .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
        .expect("leaf cert");
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("write ca");
    std::fs::write(dir.join("cert.der"), cert.der()).expect("write cert");
    std::fs::write(dir.join("key.der"), key.serialize_der()).expect("write key");
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if args.serve {
        runtime.block_on(serve(args.hold_ms, args.tls_dir.as_deref()));
        return;
    }
    staging_smoke::install_crypto_provider();
    let tls_dir = args.https.then(|| {
        let dir = std::env::temp_dir().join(format!("bench-smoke-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tls dir");
        make_certificates(&dir);
        dir
    });

    // The server in a child process, so its memory is not counted as ours.
    let mut server = Command::new(std::env::current_exe().expect("exe"));
    server.args(["--serve", "--hold-ms", &args.hold_ms.to_string()]);
    if let Some(dir) = &tls_dir {
        server.arg("--tls-dir").arg(dir);
    }
    let mut server = server
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("port");
    let port: u16 = line.trim().parse().expect("port number");
    let scheme = if tls_dir.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://127.0.0.1:{port}/held");
    let ca = tls_dir.as_ref().map(|d| d.join("ca.pem"));
    let ca_setting = ca
        .as_ref()
        .map(|p| format!(", ca_file = \"{}\"", p.display()))
        .unwrap_or_default();

    let spec: String = (0..args.probes)
        .map(|i| format!("[[probes]]\nname = \"held-{i}\"\nhttp = {{ url = \"{url}\"{ca_setting}, expect = {{ status = 200 }} }}\n"))
        .collect();
    let source = format!(
        "[project]\nname = \"bench\"\n[environments.staging]\nprovider = \"local\"\n{spec}"
    );
    let no_env = |_: &str| None;
    let loaded = LoadedSpec::parse(
        "bench.toml",
        source,
        LoadOptions {
            env: &no_env,
            known_providers: &["local"],
            instance: None,
        },
    )
    .expect("spec");
    let mut ctx = RunContext::new(Arc::new(loaded), "staging", "bench").expect("context");
    ctx.redactor = Redactor::new();

    let (report, build_time, run_time) = runtime.block_on(async {
        let t = Instant::now();
        let built = build_probes(&ctx).expect("probes");
        let build_time = t.elapsed();
        let runner = Runner::new(RunnerOptions {
            concurrency: args.concurrency,
            ..Default::default()
        });
        let t = Instant::now();
        let report = runner.run(built.probes, built.skipped).await;
        (report, build_time, t.elapsed())
    });
    let rss = peak_rss_mb();
    assert!(
        report.ok,
        "some probes failed: {:?}",
        report.failures().next()
    );

    let floor = Duration::from_millis(args.probes.div_ceil(args.concurrency) as u64 * args.hold_ms);
    println!(
        "probes:       {} {scheme} (each response held {} ms), concurrency {}",
        args.probes, args.hold_ms, args.concurrency
    );
    println!(
        "floor:        {:.3} s  = ceil({}/{}) x {} ms",
        floor.as_secs_f64(),
        args.probes,
        args.concurrency,
        args.hold_ms
    );
    println!(
        "smoke:        {:.3} s  ({:.3}x floor), building the probes took {:.3} s",
        run_time.as_secs_f64(),
        run_time.as_secs_f64() / floor.as_secs_f64(),
        build_time.as_secs_f64()
    );
    match rss {
        Some(mb) => {
            println!("peak RSS:     {mb:.1} MB (runner process; the server is a child process)")
        }
        None => println!("peak RSS:     unknown (no /proc/self/status)"),
    }

    match hurl(&url, &args, ca.as_deref()) {
        Ok(hurl_time) => println!(
            "hurl:         {:.3} s  ({:.3}x floor); smoke is {:.2}x faster",
            hurl_time.as_secs_f64(),
            hurl_time.as_secs_f64() / floor.as_secs_f64(),
            hurl_time.as_secs_f64() / run_time.as_secs_f64()
        ),
        Err(why) => println!("hurl:         not run ({why})"),
    }
    let _ = server.kill();
    let _ = server.wait();
    if let Some(dir) = tls_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The same requests as `hurl --test --jobs <concurrency>`: one file per request.
fn hurl(url: &str, args: &Args, ca: Option<&std::path::Path>) -> Result<Duration, String> {
    let version = Command::new("hurl")
        .arg("--version")
        .output()
        .map_err(|_| "hurl is not installed".to_owned())?;
    let first = String::from_utf8_lossy(&version.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    let dir = std::env::temp_dir().join(format!("bench-smoke-hurl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let files: Vec<_> = (0..args.probes)
        .map(|i| {
            let path = dir.join(format!("held-{i:04}.hurl"));
            std::fs::write(&path, format!("GET {url}\nHTTP 200\n")).expect("write hurl file");
            path
        })
        .collect();
    let mut command = Command::new("hurl");
    command.args(["--test", "--jobs", &args.concurrency.to_string()]);
    if let Some(ca) = ca {
        command.arg("--cacert").arg(ca);
    }
    let started = Instant::now();
    let status = command
        .args(&files)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| e.to_string())?;
    let took = started.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    if !status.success() {
        return Err(format!("{first} failed: {status}"));
    }
    eprintln!("({first})");
    Ok(took)
}
