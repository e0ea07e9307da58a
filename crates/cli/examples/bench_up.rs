//! Overhead of `staging up` over the platform's own time: runs the real `staging` binary
//! against the stateful Render and Netlify fakes of the provider crates' tests, with every
//! deploy planned to go live a known time after it was triggered, for 1, 5 and 20 services.
//!
//! ```text
//! bench_up --staging target/debug/staging [--providers render,netlify] [--services 1,5,20]
//!          [--live-after-secs 20]
//! ```
//!
//! For each run it prints, from the fake's own clock: detection latency (a read first
//! answered live − the platform made it live), polls per minute per service while waiting
//! against the provider's read budget, and `up`'s wall time over the platform's (first
//! deploy triggered → last deploy live). `scripts/bench-up.sh` builds and runs it; it never
//! runs in tests or CI.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "../../provider-render/tests/support/fake.rs"]
#[allow(dead_code, unreachable_pub)]
mod render_fake;

#[path = "../../provider-netlify/tests/support/fake.rs"]
#[allow(dead_code, unreachable_pub)]
mod netlify_fake;

/// Read budgets as the providers declare them (reads a minute).
const RENDER_BUDGET: f64 = 100.0;
const NETLIFY_BUDGET: f64 = 500.0;

struct Args {
    staging: PathBuf,
    providers: Vec<String>,
    services: Vec<usize>,
    live_after: Duration,
}

fn args() -> Args {
    let mut a = Args {
        staging: PathBuf::from("target/debug/staging"),
        providers: vec!["render".into(), "netlify".into()],
        services: vec![1, 5, 20],
        live_after: Duration::from_secs(20),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--staging" => a.staging = PathBuf::from(value),
            "--providers" => a.providers = value.split(',').map(str::to_owned).collect(),
            "--services" => {
                a.services = value.split(',').map(|n| n.parse().unwrap()).collect();
            }
            "--live-after-secs" => a.live_after = Duration::from_secs(value.parse().unwrap()),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// What the fake saw of one service's deploy.
struct Seen {
    created: Instant,
    live_at: Instant,
    seen_live: Instant,
    /// When each status read of the deploy arrived.
    polls: Vec<Instant>,
}

struct Run {
    provider: String,
    services: usize,
    wall: Duration,
    seen: Vec<Seen>,
    budget: f64,
    cadence_lines: Vec<String>,
}

fn git_repo(dir: &Path) -> String {
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "bench")
            .env("GIT_AUTHOR_EMAIL", "bench@example.test")
            .env("GIT_COMMITTER_NAME", "bench")
            .env("GIT_COMMITTER_EMAIL", "bench@example.test")
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    git(&["init", "-q"]);
    git(&["commit", "-q", "--allow-empty", "-m", "bench"]);
    git(&["rev-parse", "HEAD"])
}

/// Runs `staging up -v` on `spec` with `env`, returning its wall time and the cadence lines.
fn run_up(
    staging: &Path,
    dir: &Path,
    commit: &str,
    env: &[(&str, String)],
) -> (Duration, Vec<String>) {
    let spec = dir.join("staging.toml");
    let started = Instant::now();
    let out = Command::new(staging)
        .args(["up", "-v", "--env", "staging", "--commit", commit, "-f"])
        .arg(&spec)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run staging");
    let wall = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "staging up failed ({}):\n{}\n{stderr}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    let cadence = stderr
        .lines()
        .filter(|l| l.contains("polling each deploy every"))
        .map(|l| l.trim().to_owned())
        .collect();
    (wall, cadence)
}

fn bench_render(a: &Args, n: usize) -> Run {
    let fake = render_fake::Fake::start();
    let dir = tempfile::tempdir().unwrap();
    let commit = git_repo(dir.path());
    let mut spec = String::from(
        "[project]\nname = \"bench\"\n\n[environments.staging]\nprovider = \"render\"\ndeploy_timeout = \"15m\"\n\n",
    );
    let mut ids = vec![];
    for i in 0..n {
        let name = format!("s{i:02}");
        let id = fake.add_service(&name, render_fake::Kind::Worker);
        fake.plan_next_deploy_live_after(&id, a.live_after);
        spec.push_str(&format!(
            "[services.{name}.settings]\nservice_id = \"{id}\"\n\n"
        ));
        ids.push(id);
    }
    std::fs::write(dir.path().join("staging.toml"), spec).unwrap();
    let (wall, cadence_lines) = run_up(
        &a.staging,
        dir.path(),
        &commit,
        &[
            ("RENDER_API_KEY", render_fake::API_KEY.to_owned()),
            ("RENDER_API_URL", fake.url()),
        ],
    );
    let seen = ids
        .iter()
        .map(|id| {
            let t = fake.timed_deploy(id).expect("a timed deploy");
            let polls = fake
                .requests_with_times(id)
                .into_iter()
                .filter(|(_, r)| r.starts_with("GET") && r.contains("/deploys/dep-"))
                .map(|(t, _)| t)
                .collect();
            Seen {
                created: t.created,
                live_at: t.live_at,
                seen_live: t.seen_live.expect("seen live"),
                polls,
            }
        })
        .collect();
    Run {
        provider: "render".into(),
        services: n,
        wall,
        seen,
        budget: RENDER_BUDGET,
        cadence_lines,
    }
}

fn bench_netlify(a: &Args, n: usize) -> Run {
    let fake = netlify_fake::Fake::start();
    let dir = tempfile::tempdir().unwrap();
    let commit = git_repo(dir.path());
    let mut spec = String::from(
        "[project]\nname = \"bench\"\n\n[environments.staging]\nprovider = \"netlify\"\ndeploy_timeout = \"15m\"\nsettings = { context = \"branch:staging\" }\n\n",
    );
    let mut ids = vec![];
    for i in 0..n {
        let name = format!("s{i:02}");
        let (id, _) = fake.add_site(&name);
        fake.push(&id, "staging", &commit);
        fake.with_site(&id, |s| s.ready_after = Some(a.live_after));
        spec.push_str(&format!(
            "[services.{name}.settings]\nsite_id = \"{id}\"\n\n"
        ));
        ids.push(id);
    }
    std::fs::write(dir.path().join("staging.toml"), spec).unwrap();
    let (wall, cadence_lines) = run_up(
        &a.staging,
        dir.path(),
        &commit,
        &[
            ("NETLIFY_AUTH_TOKEN", "bench-token".to_owned()),
            ("NETLIFY_API_URL", fake.url.clone()),
        ],
    );
    let seen = ids
        .iter()
        .map(|id| {
            let deploy = fake.with_site(id, |s| s.deploys[0].clone());
            let t = deploy.timed.expect("a timed build");
            let polls = fake
                .calls_with_times(id)
                .into_iter()
                .filter(|(_, c)| *c == format!("GET deploy {}", deploy.id))
                .map(|(t, _)| t)
                .collect();
            Seen {
                created: t.created,
                live_at: t.ready_at,
                seen_live: t.seen_ready.expect("seen ready"),
                polls,
            }
        })
        .collect();
    Run {
        provider: "netlify".into(),
        services: n,
        wall,
        seen,
        budget: NETLIFY_BUDGET,
        cadence_lines,
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn report(r: &Run) {
    let detection: Vec<Duration> = r.seen.iter().map(|s| s.seen_live - s.live_at).collect();
    let max_detection = detection.iter().max().copied().unwrap_or_default();
    let mean_detection = detection.iter().sum::<Duration>() / detection.len().max(1) as u32;
    // Status reads a minute while the wait step ran (its first poll to its last), all
    // services together, and on average per service.
    let polls: Vec<Instant> = r
        .seen
        .iter()
        .flat_map(|s| s.polls.iter().copied())
        .collect();
    let window = match (polls.iter().min(), polls.iter().max()) {
        (Some(first), Some(last)) if last > first => (*last - *first).as_secs_f64(),
        _ => f64::NAN,
    };
    let in_all = (polls.len().saturating_sub(r.services)) as f64 / window * 60.0;
    let per_service = in_all / r.services as f64;
    let first_created = r.seen.iter().map(|s| s.created).min().unwrap();
    let last_live = r.seen.iter().map(|s| s.live_at).max().unwrap();
    let spread = r.seen.iter().map(|s| s.created).max().unwrap() - first_created;
    let platform = last_live - first_created;
    let overhead = r.wall.saturating_sub(platform);
    println!(
        "{:<8} {:>3} service(s): up {} | platform {} (deploys triggered within {}) | overhead {} = detection {} + tool {}",
        r.provider,
        r.services,
        secs(r.wall),
        secs(platform),
        secs(spread),
        secs(overhead),
        secs(max_detection),
        secs(overhead.saturating_sub(max_detection)),
    );
    println!(
        "         detection: max {}, mean {} | status reads while waiting: {} in {:.1} s, {:.1}/min per service, {:.1}/min in all = {:.0}% of the {:.0}/min read budget",
        secs(max_detection),
        secs(mean_detection),
        polls.len(),
        window,
        per_service,
        in_all,
        in_all / r.budget * 100.0,
        r.budget
    );
    for l in &r.cadence_lines {
        let at = l.find("polling").unwrap_or(0);
        println!("         cadence: {}", &l[at..]);
    }
}

fn main() {
    let a = args();
    assert!(
        a.staging.exists(),
        "no staging binary at {}",
        a.staging.display()
    );
    println!(
        "staging up against the stateful fakes; every deploy goes live {} after its trigger",
        secs(a.live_after)
    );
    for provider in &a.providers {
        for &n in &a.services {
            let run = match provider.as_str() {
                "render" => bench_render(&a, n),
                "netlify" => bench_netlify(&a, n),
                other => panic!("unknown provider {other}"),
            };
            report(&run);
        }
    }
}
