//! Issue 27: the write boundary, attacked through the real binary. Every case ends with zero
//! writes to production — counted in the stand-in's own request log — and exit 2 (refused:
//! both environments and the shared identity named) or 3 (cannot proceed: what could not be
//! read named).
//!
//! - event 1, stand-up: production's web named by `service_id`, staging's web by
//!   `service_name` = production's real name, staging's worker still to create;
//! - event 2, another workspace: no `owner_id`, the key sees two workspaces;
//! - fail-open: the API answering 401, 403, 500 or nothing at all, for `up`, `rollback`,
//!   `secrets sync --apply` and `secrets rotate` on Render, and `up` of the Netlify, Vercel
//!   and Railway examples (401 and 500).
//!
//! Railway's one-project layout, which must pass, is `provider-railway/tests/isolation.rs`.

mod common;
#[path = "../../provider-render/tests/support/mod.rs"]
mod render;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::{run_staging, text};
use render::fake::{Fake, Kind, OWNER};
use render::{API_KEY, stand_in};

const NEW: &str = "4444444aaaaaaaabbbbbbbbccccccccdddddddd4";
const CANARY: &str = "canary-staging-skb-9c41d7";

fn write_spec(dir: &Path, body: &str) {
    std::fs::write(
        dir.join("staging.toml"),
        format!(
            r#"[project]
name = "shop"
evidence_dir = "evidence"

[environments.staging]
provider = "render"
promotes_to = "production"
deploy_timeout = "1m"

[environments.production]
provider = "render"
protected = true

{body}
[vars.SECRET_KEY_BASE]
secret = true
sources = {{ staging = {{ env = "STAGING_SKB" }}, production = {{ env = "PRODUCTION_SKB" }} }}

[vars.RAILS_ENV]
values = {{ staging = "staging", production = "production" }}

[[probes]]
name = "app answers"
command = {{ run = ["true"] }}
"#
        ),
    )
    .unwrap();
}

fn run_render(url: &str, dir: &Path, args: &[&str]) -> std::process::Output {
    run_staging(
        dir,
        args,
        &[
            ("RENDER_API_KEY", API_KEY),
            ("RENDER_API_URL", url),
            ("STAGING_SKB", CANARY),
            ("PRODUCTION_SKB", "canary-production-skb-0a7e"),
        ],
    )
}

/// Every request of the fake that is not a read and mentions `what`.
fn writes_mentioning(fake: &Fake, what: &str) -> Vec<String> {
    fake.requests_mentioning(what)
        .into_iter()
        .filter(|r| !r.starts_with("GET "))
        .collect()
}

fn assert_refused_naming(out: &std::process::Output, parts: &[&str]) {
    let all = text(out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    for p in parts {
        assert!(all.contains(p), "`{p}` not named: {all}");
    }
    assert!(!all.contains(CANARY), "a secret value in the output: {all}");
}

#[test]
fn event_1_stand_up_with_staging_naming_production_s_web_by_its_real_name_writes_nothing() {
    let fake = &stand_in().fake;
    let url = stand_in().prism.url();
    let web = fake.add_service("iso1-web", Kind::Web);
    let worker = fake.add_service("iso1-worker", Kind::Worker);
    fake.add_live_deploy(&web, "1111111aaaaaaaabbbbbbbbccccccccdddddddd1");
    let dir = tempfile::tempdir().unwrap();
    // Production's web by id; staging's by name, and the name is production's real one.
    // Staging's worker is still to be created: the check must not wait for it.
    write_spec(
        dir.path(),
        &format!(
            r#"[services.web]
health_path = "/up"
create = {{ like = "production" }}
overrides.staging = {{ service_name = "iso1-web" }}
overrides.production = {{ service_id = "{web}" }}

[services.worker]
http = false
create = {{ like = "production" }}
settings = {{ service_name = "iso1-worker" }}
overrides.staging = {{ service_name = "iso1-worker-staging" }}
"#
        ),
    );
    for args in [
        &["up", "--env", "staging", "--commit", NEW][..],
        &["secrets", "sync", "--env", "staging", "--apply"],
        &["secrets", "rotate", "SECRET_KEY_BASE", "--env", "staging"],
        &["rollback", "--env", "staging"],
    ] {
        let out = run_render(&url, dir.path(), args);
        assert_refused_naming(
            &out,
            &[
                "environment `staging`",
                "environment `production`",
                &format!("service={web}"),
            ],
        );
        assert!(
            writes_mentioning(fake, &web).is_empty(),
            "{args:?} wrote to production's web: {:?}",
            writes_mentioning(fake, &web)
        );
        assert!(writes_mentioning(fake, &worker).is_empty());
        assert!(
            writes_mentioning(fake, "iso1-worker-staging").is_empty(),
            "{args:?} created the worker although the run is refused"
        );
    }
    stand_in().prism.assert_no_violations();
}

#[test]
fn event_2_without_owner_id_a_key_seeing_two_workspaces_is_refused_naming_both() {
    // A fake of its own: its key sees the team workspace and a personal one.
    let fake = Fake::start();
    fake.add_owner("usr-personal0001");
    let web = fake.add_service("iso2-web", Kind::Web);
    // A service with staging's name exists only in the personal workspace.
    let personal = fake.add_service_in("usr-personal0001", "iso2-web-staging", Kind::Web);
    let dir = tempfile::tempdir().unwrap();
    write_spec(
        dir.path(),
        &format!(
            r#"[services.web]
health_path = "/up"
overrides.staging = {{ service_name = "iso2-web-staging" }}
overrides.production = {{ service_id = "{web}" }}
"#
        ),
    );
    for args in [
        &["up", "--env", "staging", "--commit", NEW][..],
        &["secrets", "sync", "--env", "staging", "--apply"],
    ] {
        let out = run_render(&fake.url(), dir.path(), args);
        assert_refused_naming(&out, &[OWNER, "usr-personal0001", "owner_id"]);
    }
    let writes: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| !r.starts_with("GET "))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert!(writes_mentioning(&fake, &personal).is_empty());

    // Named, the workspace decides: the team's has no such service (not another's pick).
    std::fs::write(
        dir.path().join("staging.toml"),
        std::fs::read_to_string(dir.path().join("staging.toml"))
            .unwrap()
            .replace(
                "provider = \"render\"\npromotes_to",
                &format!(
                    "provider = \"render\"\nsettings = {{ owner_id = \"{OWNER}\" }}\npromotes_to"
                ),
            ),
    )
    .unwrap();
    let out = run_render(
        &fake.url(),
        dir.path(),
        &["up", "--env", "staging", "--commit", NEW],
    );
    let all = text(&out);
    assert_ne!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("iso2-web-staging") && all.contains(OWNER),
        "{all}"
    );
    assert!(writes_mentioning(&fake, &personal).is_empty(), "{all}");
}

/// A platform API that answers every request with one status (or never answers), counting
/// requests by method.
struct Broken {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Broken {
    /// `status` 0: accept, read the request, never answer.
    fn start(status: u16) -> Broken {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(vec![]));
        let seen = requests.clone();
        std::thread::spawn(move || {
            let mut held = vec![];
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut length = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                seen.lock().unwrap().push(format!(
                    "{} {}",
                    line.trim(),
                    String::from_utf8_lossy(&body)
                ));
                if status == 0 {
                    held.push(stream);
                    continue;
                }
                let reason = match status {
                    401 => "Unauthorized",
                    403 => "Forbidden",
                    _ => "Internal Server Error",
                };
                let body = r#"{"message":"refused by the test"}"#;
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Broken { url, requests }
    }

    /// Requests that are not reads: anything but GET, and GraphQL mutations.
    fn writes(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| {
                let graphql = r.contains("/graphql");
                if graphql {
                    r.contains("mutation")
                } else {
                    !r.starts_with("GET ")
                }
            })
            .cloned()
            .collect()
    }

    fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

fn assert_cannot_proceed(out: &std::process::Output, broken: &Broken, what: &[&str]) {
    let all = text(out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    for w in what {
        assert!(all.contains(w), "`{w}` not named: {all}");
    }
    assert!(broken.count() > 0, "the API was never asked: {all}");
    assert!(broken.writes().is_empty(), "{:?}", broken.writes());
    assert!(!all.contains(CANARY), "a secret value in the output: {all}");
}

#[test]
fn render_api_refusing_or_failing_or_silent_fails_every_writing_command_with_exit_3_and_no_write() {
    let dir = tempfile::tempdir().unwrap();
    write_spec(
        dir.path(),
        r#"[services.web]
health_path = "/up"
settings = { service_name = "iso3-web" }
overrides.staging = { service_name = "iso3-web-staging" }
"#,
    );
    for status in [401, 403, 500, 0] {
        let broken = Broken::start(status);
        for args in [
            &["up", "--env", "staging", "--commit", NEW][..],
            &["rollback", "--env", "staging"],
            &["secrets", "sync", "--env", "staging", "--apply"],
            &["secrets", "rotate", "SECRET_KEY_BASE", "--env", "staging"],
        ] {
            let out = run_render(&broken.url, dir.path(), args);
            assert_cannot_proceed(&out, &broken, &["`web`"]);
            if status == 0 {
                // Silent: the bound that ended the command, named: `up`'s preflight (6 s)
                // asks before anything else, the others' isolation check (30 s).
                let bound = if args[0] == "up" {
                    "within 6s"
                } else {
                    "within 30s"
                };
                assert!(text(&out).contains(bound), "{}", text(&out));
            }
        }
    }
}

#[test]
fn netlify_vercel_and_railway_examples_refusing_failing_or_silent_fail_up_sync_and_rollback_with_exit_3_and_no_write()
 {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let cases: [(&str, &str, &str, &str); 3] = [
        ("netlify", "NETLIFY_AUTH_TOKEN", "NETLIFY_API_URL", ""),
        ("vercel", "VERCEL_TOKEN", "VERCEL_API_URL", ""),
        (
            "railway",
            "RAILWAY_API_TOKEN",
            "RAILWAY_API_URL",
            "/graphql/v2",
        ),
    ];
    for (provider, token, url_var, path) in cases {
        for status in [401, 403, 500, 0] {
            let broken = Broken::start(status);
            let dir = tempfile::tempdir().unwrap();
            common::copy_dir(&Path::new(examples).join(provider), dir.path());
            let url = format!("{}{path}", broken.url);
            for args in [
                &["up", "--env", "staging", "--commit", NEW][..],
                &["secrets", "sync", "--env", "staging", "--apply"],
                &["rollback", "--env", "staging"],
            ] {
                let out = run_staging(
                    dir.path(),
                    args,
                    &[(token, "test-token-0001"), (url_var, &url)],
                );
                let all = text(&out);
                if provider == "netlify" && args[0] == "rollback" {
                    // Netlify rolls back only the production context: it cannot proceed,
                    // and says so before any write.
                    assert_eq!(out.status.code(), Some(3), "{all}");
                    assert!(all.contains("does not support rolling back"), "{all}");
                    assert!(broken.writes().is_empty(), "{:?}", broken.writes());
                    continue;
                }
                // Silent, Railway: the example reads staging's DATABASE_URL from the
                // platform first, and that is the read left unanswered.
                let unread = if status == 0 && provider == "railway" {
                    "`DATABASE_URL` of database `main`"
                } else {
                    "`web`"
                };
                assert_cannot_proceed(&out, &broken, &[unread]);
                if status == 0 {
                    // Silent: the bound that ended the command, named: `up` asks the
                    // platform first in its preflight (6 s), unless the spec's own values
                    // come from the platform (Railway's DATABASE_URL: the isolation check's
                    // offline half reads them first, within the check's 30 s); the other
                    // commands in the isolation check (30 s).
                    let bound = if args[0] == "up" && provider != "railway" {
                        "within 6s"
                    } else {
                        "within 30s"
                    };
                    assert!(all.contains(bound), "{provider} {args:?}: {all}");
                }
            }
        }
    }
}
