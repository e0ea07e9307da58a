//! Secret-ness decided once (issue 28), through the binary against Render's own API
//! description (`prism proxy --errors`) in front of the team's stateful fake: production
//! holding plain values (`true`, `false`, `production`, `prod`, `https`, `1`, a domain) masks
//! none of them, `up` passes and records evidence, `promote` passes; `diff --json` stays
//! JSON; `diff`, `up`'s drift step and `secrets sync --apply` agree on a `differs_from` rule
//! the other environment's platform breaks; a failed `up` leaves evidence `doctor`
//! diagnoses; `logs --json` prints JSON lines only; a secret with `"`, `\`, `#`, `&`, `%` and
//! non-ASCII reaches a probe's target exactly and shows in no form anywhere.

mod common;
#[path = "../../provider-render/tests/support/mod.rs"]
mod render;

use std::path::{Path, PathBuf};

use common::{run_staging, text};
use render::{API_KEY, Kind, stand_in};

const OLD: &str = "0000000aaaaaaaabbbbbbbbccccccccdddddddd0";
const NEW: &str = "2222222aaaaaaaabbbbbbbbccccccccdddddddd2";

/// Staging's signing key, and the one production's platform holds.
const STAGING_KEY: &str = "canary-staging-key-5e1f7a9c3b2d4e6f";
const PRODUCTION_KEY: &str = "canary-production-key-8d2c6b4a1e3f";

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    let url = stand_in().prism.url();
    run_staging(
        dir,
        args,
        &[
            ("RENDER_API_KEY", API_KEY),
            ("RENDER_API_URL", url.as_str()),
        ],
    )
}

/// Two Render workers, staging's and production's (serving `OLD`), production's holding
/// the plain values of the issue and `held_key` as the signing key; a spec whose plain
/// variables have rules against production, and whose probe runs `probe`.
fn scene(name: &str, held_key: &str, probe: &str) -> (String, String, tempfile::TempDir) {
    let fake = &stand_in().fake;
    let staging_id = fake.add_service(&format!("{name}-staging"), Kind::Worker);
    let production_id = fake.add_service(&format!("{name}-production"), Kind::Worker);
    fake.add_live_deploy(&production_id, OLD);
    for (k, v) in [
        ("ENABLE_FEATURE", "true"),
        ("DEBUG", "false"),
        ("APP_ENV", "production"),
        ("TIER", "prod"),
        ("SCHEME", "https"),
        ("REPLICAS", "1"),
        ("APP_HOST", "shop.example.com"),
        ("JWT_SECRET", held_key),
    ] {
        fake.set_env(&production_id, k, v);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        format!(
            r#"[project]
name = "{name}"

[environments.staging]
provider = "render"
promotes_to = "production"
deploy_timeout = "2m"
secrets = {{ dotenv = "staging.env" }}

[environments.production]
provider = "render"
protected = true
deploy_timeout = "2m"
secrets = {{ dotenv = "production.env" }}

[services.worker]
http = false
settings = {{ service_id = "{staging_id}" }}
overrides.production = {{ service_id = "{production_id}" }}

[vars.ENABLE_FEATURE]
value = "true"
rules = {{ same_as = "production" }}

[vars.DEBUG]
value = "false"
rules = {{ same_as = "production" }}

[vars.APP_ENV]
value = "${{env}}"

[vars.TIER]
values = {{ staging = "staging", production = "prod" }}

[vars.SCHEME]
value = "https"
rules = {{ same_as = "production" }}

[vars.REPLICAS]
value = "1"
rules = {{ same_as = "production" }}

[vars.APP_HOST]
values = {{ staging = "staging.shop.example.com", production = "shop.example.com" }}

[vars.JWT_SECRET]
secret = true
rules = {{ differs_from = "production" }}

[[probes]]
name = "production-like-check"
command = {{ run = {probe} }}
"#
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("staging.env"),
        format!("JWT_SECRET={STAGING_KEY}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("production.env"),
        format!("JWT_SECRET={PRODUCTION_KEY}\n"),
    )
    .unwrap();
    (staging_id, production_id, dir)
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(files_under(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// The evidence records under the spec's directory, parsed.
fn evidence(dir: &Path) -> Vec<serde_json::Value> {
    files_under(&dir.join(".staging"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter_map(|p| serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok())
        .filter(|v: &serde_json::Value| v.get("content_hash").is_some())
        .collect()
}

fn assert_no_mask_and_no_key(all: &str) {
    assert!(
        !all.contains("[REDACTED]"),
        "a plain value was masked: {all}"
    );
    for key in [STAGING_KEY, PRODUCTION_KEY] {
        assert!(!all.contains(key), "a key leaked: {all}");
    }
}

#[test]
fn production_holding_plain_values_masks_none_of_them_and_up_then_promote_pass() {
    let (_, production_id, dir) = scene("plainvals", PRODUCTION_KEY, r#"["true"]"#);
    let out = run(dir.path(), &["up", "--env", "staging", "--commit", NEW]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_no_mask_and_no_key(&all);
    // The drift step judged the rules against production's platform, in plain words.
    assert!(
        all.contains("against what production's platform holds"),
        "{all}"
    );
    let records = evidence(dir.path());
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["ok"], true, "{}", records[0]);
    assert_eq!(records[0]["environment"], "staging");
    let body = records[0].to_string();
    assert_no_mask_and_no_key(&body);

    let out = run(
        dir.path(),
        &["promote", "--to", "production", "--commit", NEW, "--json"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_no_mask_and_no_key(&all);
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {all}"));
    assert_eq!(doc["ok"], true, "{doc}");
    assert_eq!(
        stand_in().fake.live_commit(&production_id).as_deref(),
        Some(NEW)
    );
    stand_in().prism.assert_no_violations();
}

#[test]
fn diff_json_over_plain_values_parses_and_shows_booleans_and_words_as_they_are() {
    let (_, _, dir) = scene("plaindiff", PRODUCTION_KEY, r#"["true"]"#);
    let out = run(dir.path(), &["diff", "staging", "production", "--json"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {all}"));
    assert_eq!(doc["ok"], true, "{doc}");
    assert_eq!(doc["b"], "production", "{doc}");
    assert_no_mask_and_no_key(&all);
    // Every rule held on the platform side, the platform's values compared.
    let rows = doc["platform_vars"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc}"));
    let row = |var: &str| {
        rows.iter()
            .find(|r| r["var"] == var)
            .unwrap_or_else(|| panic!("no {var}: {doc}"))
    };
    assert_eq!(row("ENABLE_FEATURE")["equal"], true, "{doc}");
    assert_eq!(row("ENABLE_FEATURE")["b_from"], "platform", "{doc}");
    assert_eq!(row("JWT_SECRET")["equal"], false, "{doc}");
}

#[test]
fn diff_drift_and_sync_agree_when_production_holds_stagings_signing_key() {
    // Production's platform holds staging's key; staging's platform holds no key at all.
    let (staging_id, _, dir) = scene("sharedkey", STAGING_KEY, r#"["true"]"#);

    let out = run(dir.path(), &["diff", "staging", "production", "--json"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {all}"));
    let broken = doc["rules_broken"].to_string();
    assert!(
        broken.contains("JWT_SECRET (service worker, on the platform)")
            && broken.contains("differs_from"),
        "{doc}"
    );
    assert_no_mask_and_no_key(&all);

    let out = run(
        dir.path(),
        &["up", "--env", "staging", "--commit", NEW, "--json"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {all}"));
    let drift = doc["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc}"))
        .iter()
        .find(|s| s["step"] == "drift")
        .cloned()
        .unwrap_or_default();
    assert_eq!(drift["status"], "failed", "{doc}");
    assert!(drift.to_string().contains("differs_from"), "{doc}");

    let before = stand_in().fake.requests_for(&staging_id).len();
    let out = run(
        dir.path(),
        &["secrets", "sync", "--env", "staging", "--apply", "--json"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {all}"));
    assert!(
        doc["refused"]
            .as_str()
            .is_some_and(|r| r.contains("differs_from")),
        "{doc}"
    );
    assert_eq!(doc["applied"], false, "{doc}");
    let writes: Vec<String> = stand_in().fake.requests_for(&staging_id)[before..]
        .iter()
        .filter(|r| !r.starts_with("GET "))
        .cloned()
        .collect();
    assert!(writes.is_empty(), "sync wrote: {writes:?}");
    assert_no_mask_and_no_key(&all);
}

#[test]
fn a_failed_up_leaves_evidence_that_doctor_diagnoses() {
    let (_, _, dir) = scene("plainfail", PRODUCTION_KEY, r#"["false"]"#);
    let out = run(dir.path(), &["up", "--env", "staging", "--commit", NEW]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert_no_mask_and_no_key(&all);
    let records = evidence(dir.path());
    assert_eq!(records.len(), 1, "no record of the failed run: {all}");
    assert_eq!(records[0]["ok"], false, "{}", records[0]);

    let out = run(dir.path(), &["doctor", "--env", "staging"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(!all.contains("nothing to diagnose"), "{all}");
    assert!(all.contains("smoke"), "{all}");
    assert!(all.contains("likely cause"), "{all}");
}

/// Standard base64, padded (no dependency for a test).
fn b64(s: &str) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ABC[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A canary, and how a log line may carry it.
const LOG_CANARY: &str = "canary-logs-9f8e7d6c5b4a3210";

#[test]
fn logs_json_prints_only_json_lines_whatever_a_line_holds() {
    let fake = &stand_in().fake;
    let id = fake.add_service("jsonlogs-web", Kind::StaticSite);
    let lines = [
        "booting in production with DEBUG=false".to_owned(),
        format!(
            "Authorization: Basic {}",
            b64(&format!("user:{LOG_CANARY}"))
        ),
        format!(r#"{{"token": "{LOG_CANARY}", "ok": true}}"#),
        format!("GET /callback?token={LOG_CANARY}&next=%2F"),
        format!("encoded {} here", b64(LOG_CANARY)),
        r#"a line with "quotes" and \ backslashes"#.to_owned(),
    ];
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    fake.set_logs(&id, &refs);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        format!(
            r#"[project]
name = "jsonlogs"

[environments.staging]
provider = "render"
secrets = {{ dotenv = "staging.env" }}

[services.web]
settings = {{ service_id = "{id}" }}

[vars.API_TOKEN]
secret = true
"#
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("staging.env"),
        format!("API_TOKEN={LOG_CANARY}\n"),
    )
    .unwrap();
    let out = run(
        dir.path(),
        &["logs", "--env", "staging", "--service", "web", "--json"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let parsed: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\n{all}"))
        })
        .collect();
    assert_eq!(parsed.len(), lines.len(), "{stdout}");
    for p in &parsed {
        assert_eq!(p["service"], "web", "{p}");
    }
    assert_eq!(parsed[0]["line"], "booting in production with DEBUG=false");
    assert_eq!(parsed[5]["line"], lines[5]);
    for form in [
        LOG_CANARY.to_owned(),
        b64(LOG_CANARY)[..16].to_owned(),
        b64(&format!("user:{LOG_CANARY}"))[..16].to_owned(),
    ] {
        assert!(!all.contains(&form), "leaked as {form}: {all}");
    }
    // The summary is on stderr, one JSON document.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: serde_json::Value = serde_json::from_str(stderr.trim())
        .unwrap_or_else(|e| panic!("stderr is not the envelope ({e}): {stderr}"));
    assert_eq!(summary["command"], "logs", "{summary}");
}

/// A secret with every character that breaks a URL or a JSON string, and non-ASCII.
const URL_SECRET: &str = "canary-q\"b\\s#h&a%p+é/ü-7c1d";

/// A one-thread HTTP server that records each request target and answers 200 with the
/// decoded `token` query parameter echoed as httpbin does: in `args`, and inside `data`, a
/// JSON text in a JSON string (escaped twice).
fn echo_server() -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            if reader.read_line(&mut first).is_err() {
                continue;
            }
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
                    break;
                }
            }
            let target = first.split(' ').nth(1).unwrap_or_default().to_owned();
            let token = target
                .split_once("token=")
                .map(|(_, t)| t.split('&').next().unwrap_or_default())
                .map(percent_decode)
                .unwrap_or_default();
            let _ = tx.send(token.clone());
            let inner = serde_json::json!({ "token": token }).to_string();
            let body = serde_json::json!({ "args": { "token": token }, "data": inner }).to_string();
            let mut s = stream;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, rx)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Every form of `secret` that must not appear: raw, JSON-escaped once and twice, its
/// percent-encoding, base64.
fn forms(secret: &str) -> Vec<String> {
    let once = serde_json::to_string(secret).unwrap();
    let once = once[1..once.len() - 1].to_owned();
    let twice = serde_json::to_string(&once).unwrap();
    let twice = twice[1..twice.len() - 1].to_owned();
    let encoded: String = secret
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    vec![
        secret.to_owned(),
        once,
        twice,
        encoded,
        b64(secret),
        // The part that is the secret's own, whatever the delimiter before it.
        "q\"b\\s#h&a%p".to_owned(),
    ]
}

#[test]
fn a_secret_with_url_and_json_syntax_reaches_the_probe_target_exactly_and_shows_in_no_form() {
    let (port, received) = echo_server();
    let fake = &stand_in().fake;
    let id = fake.add_service("urlsecret-web", Kind::Worker);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        format!(
            r#"[project]
name = "urlsecret"

[environments.staging]
provider = "render"
deploy_timeout = "2m"

[services.worker]
http = false
settings = {{ service_id = "{id}" }}

[vars.PROBE_TOKEN]
secret = true
source = {{ file = "token.secret" }}

[[probes]]
name = "echo"
http = {{ url = "http://127.0.0.1:{port}/echo?token=${{vars.PROBE_TOKEN}}&x=1", expect = {{ status = 201 }} }}
"#
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("token.secret"), URL_SECRET).unwrap();
    let junit = dir.path().join("out/junit.xml");
    let html = dir.path().join("out/report.html");
    let out = run(
        dir.path(),
        &[
            "up",
            "--env",
            "staging",
            "--commit",
            NEW,
            "--junit",
            junit.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
    );
    let all = text(&out);
    // The probe expected 201 and got 200: the run failed, its body was shown.
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("201"), "{all}");
    // The target received the value exactly.
    let got = received
        .try_recv()
        .unwrap_or_else(|_| panic!("the target received nothing: {all}"));
    assert_eq!(got, URL_SECRET);
    // No form of it anywhere: output, evidence, JUnit, HTML.
    let mut texts = vec![("output".to_owned(), all.clone())];
    for f in files_under(dir.path()) {
        if f.file_name().is_some_and(|n| n == "token.secret") {
            continue;
        }
        if let Ok(t) = std::fs::read_to_string(&f) {
            texts.push((f.display().to_string(), t));
        }
    }
    assert!(
        texts.iter().any(|(n, _)| n.ends_with("junit.xml")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|(n, _)| n.contains(".staging")),
        "no evidence: {all}"
    );
    for (name, t) in &texts {
        for form in forms(URL_SECRET) {
            assert!(!t.contains(&form), "{name} holds `{form}`:\n{t}");
        }
    }
    // The documents are whole: JUnit and HTML end as they began.
    let junit_text = std::fs::read_to_string(&junit).unwrap();
    assert!(
        junit_text.trim_end().ends_with("</testsuites>"),
        "{junit_text}"
    );
    let html_text = std::fs::read_to_string(&html).unwrap();
    assert!(html_text.trim_end().ends_with("</html>"), "{html_text}");
    // The evidence is JSON, the body excerpt in it masked.
    let records = evidence(dir.path());
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["ok"], false);
}

/// The variables of the scene, for platforms whose spec is written here: plain ones with
/// rules against production, and the signing key that must differ.
const VARS: &str = r#"
[vars.ENABLE_FEATURE]
value = "true"
rules = { same_as = "production" }

[vars.DEBUG]
value = "false"
rules = { same_as = "production" }

[vars.APP_ENV]
value = "${env}"

[vars.TIER]
values = { staging = "staging", production = "prod" }

[vars.SCHEME]
value = "https"
rules = { same_as = "production" }

[vars.REPLICAS]
value = "1"
rules = { same_as = "production" }

[vars.APP_HOST]
values = { staging = "staging.shop.example.com", production = "shop.example.com" }

[vars.JWT_SECRET]
secret = true
rules = { differs_from = "production" }

[[probes]]
name = "production-like-check"
command = { run = ["true"] }
"#;

/// The plain values production holds, as the issue lists them.
const PRODUCTION_HOLDS: &[(&str, &str)] = &[
    ("ENABLE_FEATURE", "true"),
    ("DEBUG", "false"),
    ("APP_ENV", "production"),
    ("TIER", "prod"),
    ("SCHEME", "https"),
    ("REPLICAS", "1"),
    ("APP_HOST", "shop.example.com"),
];

fn write_dotenvs(dir: &Path) {
    std::fs::write(
        dir.join("staging.env"),
        format!("JWT_SECRET={STAGING_KEY}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("production.env"),
        format!("JWT_SECRET={PRODUCTION_KEY}\n"),
    )
    .unwrap();
}

#[path = "../../provider-netlify/tests/support/mod.rs"]
mod netlify;

#[test]
fn netlify_production_holding_plain_values_masks_none_and_up_then_promote_pass() {
    let fake = &netlify::stack().fake;
    let (site, _) = fake.add_site("plainnet");
    fake.push(&site, "develop", NEW);
    fake.push(&site, "main", NEW);
    fake.with_site(&site, |s| {
        s.allowed_branches = vec!["main".into(), "develop".into()];
        for (i, (k, v)) in PRODUCTION_HOLDS
            .iter()
            .chain([("JWT_SECRET", PRODUCTION_KEY)].iter())
            .enumerate()
        {
            s.env.push(
                serde_json::json!({ "key": k, "scopes": ["builds"], "values": [
                    { "id": format!("p{i}"), "context": "production", "value": v },
                ]}),
            );
        }
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        format!(
            r#"[project]
name = "plainnet"

[environments.staging]
provider = "netlify"
promotes_to = "production"
deploy_timeout = "2m"
secrets = {{ dotenv = "staging.env" }}
settings = {{ site_id = "{site}", context = "branch:develop" }}

[environments.production]
provider = "netlify"
protected = true
deploy_timeout = "2m"
secrets = {{ dotenv = "production.env" }}
settings = {{ site_id = "{site}", context = "production" }}

[services.web]
http = false
{VARS}"#
        ),
    )
    .unwrap();
    write_dotenvs(dir.path());
    let url = netlify::stack().proxy.url.clone();
    let run = |args: &[&str]| {
        run_staging(
            dir.path(),
            args,
            &[
                ("NETLIFY_AUTH_TOKEN", "test-token-canary-3141"),
                ("NETLIFY_API_URL", url.as_str()),
            ],
        )
    };
    let out = run(&["up", "--env", "staging", "--commit", NEW]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_no_mask_and_no_key(&all);
    assert!(
        all.contains("against what production's platform holds"),
        "{all}"
    );
    let records = evidence(dir.path());
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["ok"], true, "{}", records[0]);
    assert_no_mask_and_no_key(&records[0].to_string());

    let out = run(&["promote", "--to", "production", "--commit", NEW]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_no_mask_and_no_key(&all);
}

#[path = "../../provider-railway/tests/support/mod.rs"]
mod railway;

/// A Railway project whose production holds the plain values of the issue, set through the
/// tool itself (`secrets sync --apply`: the Railway stand-in takes variables only through its
/// API), and a spec whose staging environment does not exist yet.
async fn railway_scene(s: &mut railway::StandIn) -> tempfile::TempDir {
    s.reset(&["production"], &["web"]).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"[project]
name = "plainrail"

[environments.staging]
provider = "railway"
promotes_to = "production"
deploy_timeout = "60s"
secrets = {{ dotenv = "staging.env" }}
settings = {{ project_id = "{project}", create_if_missing = true, plan = "pro" }}

[environments.production]
provider = "railway"
protected = true
deploy_timeout = "60s"
secrets = {{ dotenv = "production.env" }}
settings = {{ project_id = "{project}", plan = "pro" }}

[services.web]
http = false
{VARS}"#,
        project = s.project_id
    );
    std::fs::write(dir.path().join("staging.toml"), spec).unwrap();
    write_dotenvs(dir.path());
    // Production's values in the spec are the issue's words (`true`, `false`, `production`,
    // `prod`, `https`, `1`, a domain).
    let out = railway_run(
        s,
        dir.path(),
        &["secrets", "sync", "--env", "production", "--apply"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_no_mask_and_no_key(&all);
    dir
}

fn railway_run(s: &railway::StandIn, dir: &Path, args: &[&str]) -> std::process::Output {
    run_staging(
        dir,
        args,
        &[
            ("RAILWAY_API_TOKEN", railway::TOKEN),
            ("RAILWAY_API_URL", s.url.as_str()),
        ],
    )
}

#[tokio::test]
async fn railway_production_holding_plain_values_masks_none_and_up_then_promote_pass() {
    let mut s = railway::StandIn::start().await;
    let dir = railway_scene(&mut s).await;
    let out = railway_run(&s, dir.path(), &["up", "--env", "staging", "--commit", NEW]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_no_mask_and_no_key(&all);
    assert!(
        all.contains("against what production's platform holds"),
        "{all}"
    );
    let records = evidence(dir.path());
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["ok"], true, "{}", records[0]);
    assert_no_mask_and_no_key(&records[0].to_string());
    // One project, two environments, the same service in both: each is its own service
    // instance (service id, environment id), so promote writes production's own.
    let out = railway_run(
        &s,
        dir.path(),
        &["promote", "--to", "production", "--commit", NEW],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_no_mask_and_no_key(&all);
    let records = evidence(dir.path());
    assert!(
        records
            .iter()
            .any(|r| r["environment"] == "production" && r["ok"] == true),
        "{records:?}"
    );
    s.assert_no_rejected().await;
}

#[tokio::test]
async fn a_stale_deploy_on_railway_leaves_a_failed_record_that_doctor_diagnoses() {
    let mut s = railway::StandIn::start().await;
    let dir = railway_scene(&mut s).await;
    // Railway serves the cached old image: the deploy succeeds, the old commit runs.
    s.behaviour("web", "stale").await;
    let out = railway_run(&s, dir.path(), &["up", "--env", "staging", "--commit", NEW]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert_no_mask_and_no_key(&all);
    let records = evidence(dir.path());
    assert_eq!(records.len(), 1, "the failed run left no record: {all}");
    assert_eq!(records[0]["ok"], false, "{}", records[0]);
    let out = railway_run(&s, dir.path(), &["doctor", "--env", "staging"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(!all.contains("nothing to diagnose"), "{all}");
    assert!(all.contains("verify"), "{all}");
    assert!(all.contains("likely cause"), "{all}");
    s.assert_no_rejected().await;
}
