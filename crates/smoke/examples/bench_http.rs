//! Benchmark: N HTTP probes against a loopback server that holds each response 50 ms.
//!
//! Prints the wall time of the smoke runner against the floor `ceil(N / concurrency) × 50 ms`,
//! the peak RSS of this process (the server runs in a child process, so it is not counted),
//! and, when `hurl` is on the PATH, the wall time of `hurl --test --jobs <concurrency>` on the
//! same N requests, in the same run.
//!
//! ```text
//! cargo run --release -p staging-smoke --example bench_http -- [--probes 1000] [--concurrency 16] [--hold-ms 50]
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
}

fn args() -> Args {
    let mut a = Args {
        probes: 1000,
        concurrency: 16,
        hold_ms: 50,
        serve: false,
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
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// The server mode: print the port, hold each response `hold_ms`, serve until killed.
async fn serve(hold_ms: u64) {
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
    axum::serve(listener, app).await.expect("serve");
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
        runtime.block_on(serve(args.hold_ms));
        return;
    }

    // The server in a child process, so its memory is not counted as ours.
    let mut server = Command::new(std::env::current_exe().expect("exe"))
        .args(["--serve", "--hold-ms", &args.hold_ms.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("port");
    let port: u16 = line.trim().parse().expect("port number");
    let url = format!("http://127.0.0.1:{port}/held");

    let spec: String = (0..args.probes)
        .map(|i| format!("[[probes]]\nname = \"held-{i}\"\nhttp = {{ url = \"{url}\", expect = {{ status = 200 }} }}\n"))
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
        "probes:       {} (each response held {} ms), concurrency {}",
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

    match hurl(&url, &args) {
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
}

/// The same requests as `hurl --test --jobs <concurrency>`: one file per request.
fn hurl(url: &str, args: &Args) -> Result<Duration, String> {
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
    let started = Instant::now();
    let status = Command::new("hurl")
        .args(["--test", "--jobs", &args.concurrency.to_string()])
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
