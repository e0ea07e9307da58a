//! CI is never blank: a run that passed, failed, was refused by the gate, was a usage
//! error after the spec was read, or could not proceed (exit 3) writes the job summary,
//! the step outputs (`ok`, `exit_code`, `evidence_id`) and, when asked, the HTML page and
//! JUnit XML (valid against junit-10.xsd). And credential problems surface before any step:
//! Render unreachable or its key refused, AWS without credentials, all exit 3 from the
//! preflight.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

mod common;
use common::{SERVER, staging_command, text};

const C1: &str = "1111111111111111111111111111111111111111";

const SPEC: &str = r#"[project]
name = "ci"

[environments.staging]
provider = "local"
promotes_to = "production"
deploy_timeout = "60s"

[environments.production]
provider = "local"
protected = true
deploy_timeout = "60s"

[services.web]
health_path = "/up"
settings = { command = ["python3", "server.py"], stop_timeout = "2s" }

[[probes]]
name = "health <b>*live*</b>"
http = { url = "${services.web.url}/up", expect = { json = { "$.commit" = "${commit}" } } }
"#;

const FAILING_PROBE: &str = r#"
[[probes]]
name = "teapot <i>now</i>"
http = { url = "${services.web.url}/up", expect = { status = 418 } }
"#;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn workspace(spec: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("staging.toml"), spec).unwrap();
    std::fs::write(dir.path().join("server.py"), SERVER).unwrap();
    dir
}

/// The files a run wrote for CI, read back.
#[derive(Debug)]
struct Reports {
    code: i32,
    output: String,
    summary: String,
    outputs: BTreeMap<String, String>,
    html: String,
    junit: PathBuf,
}

/// `staging ARGS` in `dir` with every report asked for and GitHub's variables set.
fn run_with_reports(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Reports {
    let reports = dir.join("reports");
    let summary = dir.join("summary.md");
    let outputs = dir.join("outputs.txt");
    let _ = std::fs::remove_dir_all(&reports);
    let _ = std::fs::remove_file(&summary);
    let _ = std::fs::remove_file(&outputs);
    let mut all: Vec<&str> = args.to_vec();
    let junit = reports.join("junit.xml");
    let html = reports.join("report.html");
    let (junit_s, html_s) = (junit.display().to_string(), html.display().to_string());
    all.extend(["--junit", &junit_s, "--html", &html_s]);
    let out: Output = staging_command(dir, &all, env)
        .current_dir(dir)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_OUTPUT", &outputs)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let output = text(&out);
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap_or_else(|e| panic!("{} was not written ({e}):\n{output}", p.display()))
    };
    let outputs_text = read(&outputs);
    let mut parsed = BTreeMap::new();
    for line in outputs_text.lines() {
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not a key=value output line: {line:?}"));
        assert!(
            parsed.insert(k.to_owned(), v.to_owned()).is_none(),
            "{k} written twice: {outputs_text}"
        );
    }
    Reports {
        code: out.status.code().unwrap_or(-1),
        summary: read(&summary),
        outputs: parsed,
        html: read(&html),
        junit,
        output,
    }
}

/// What every run's reports must hold: outputs that agree with the exit code, a summary
/// with the verdict, an HTML page with it first, JUnit valid against junit-10.xsd.
fn check_reports(r: &Reports, code: i32, verdict: &str) {
    assert_eq!(r.code, code, "{}", r.output);
    assert_eq!(r.outputs["ok"], (code == 0).to_string(), "{:?}", r.outputs);
    assert_eq!(r.outputs["exit_code"], code.to_string(), "{:?}", r.outputs);
    assert!(r.outputs.contains_key("evidence_id"), "{:?}", r.outputs);
    assert!(
        r.summary.contains(&format!("{verdict} (exit {code})")),
        "summary: {}",
        r.summary
    );
    assert!(
        r.html.contains(&format!("id=\"verdict\">{verdict}<")),
        "{}",
        r.html
    );
    if code != 0 {
        let failures = r.html.find("id=\"failures\"").expect("a failures table");
        assert!(
            failures < r.html.find("id=\"run\"").unwrap(),
            "failures first"
        );
    }
    xmllint(&r.junit);
}

fn xmllint(file: &Path) {
    let xsd = root().join(".tools/junit-10.xsd");
    assert!(
        xsd.exists(),
        "{} is missing: run `bash scripts/test-tools.sh`",
        xsd.display()
    );
    let out = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(file)
        .output()
        .expect("xmllint is not installed: run `bash scripts/test-tools.sh`");
    assert!(
        out.status.success(),
        "{} does not validate against junit-10.xsd:\n{}\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(file).unwrap_or_default()
    );
}

#[test]
fn a_passing_and_a_failing_run_write_every_report() {
    let dir = workspace(SPEC);
    let d = dir.path();
    let passed = run_with_reports(d, &["up", "--env", "staging", "--commit", C1], &[]);
    check_reports(&passed, 0, "PASSED");
    assert!(
        !passed.outputs["evidence_id"].is_empty(),
        "{:?}",
        passed.outputs
    );

    std::fs::write(d.join("staging.toml"), format!("{SPEC}{FAILING_PROBE}")).unwrap();
    let failed = run_with_reports(d, &["up", "--env", "staging", "--commit", C1], &[]);
    check_reports(&failed, 1, "FAILED");
    // The probe's markup shows as written in the summary, and as text in the page.
    assert!(
        failed.summary.contains("teapot \\<i\\>now\\</i\\>"),
        "{}",
        failed.summary
    );
    assert!(!failed.summary.contains("<i>"), "{}", failed.summary);
    assert!(
        failed.html.contains("teapot &lt;i&gt;now&lt;/i&gt;"),
        "{}",
        failed.html
    );
    // The failed probe's request is in the page and in the JUnit, as `smoke --junit` has it.
    let failures = &failed.html[failed.html.find("id=\"failures\"").unwrap()..];
    assert!(
        failures.contains("request: GET http://127.0.0.1:"),
        "{failures}"
    );
    let junit = std::fs::read_to_string(&failed.junit).unwrap();
    assert!(junit.contains("request: GET http://127.0.0.1:"), "{junit}");
}

#[test]
fn a_refused_promotion_writes_every_report_with_the_refusal() {
    let dir = workspace(SPEC);
    let refused = run_with_reports(
        dir.path(),
        &["promote", "--to", "production", "--commit", C1],
        &[],
    );
    check_reports(&refused, 1, "REFUSED");
    assert!(
        refused.html.contains("<h2>Refused</h2>"),
        "{}",
        refused.html
    );
    assert_eq!(refused.outputs["environment"], "production");
    assert_eq!(refused.outputs["commit"], C1);
    assert_eq!(refused.outputs["evidence_id"], "");
    assert!(refused.summary.contains("gate"), "{}", refused.summary);
}

#[test]
fn a_usage_error_after_the_spec_was_read_writes_every_report() {
    let dir = workspace(SPEC);
    let r = run_with_reports(dir.path(), &["up", "--env", "stagin", "--commit", C1], &[]);
    check_reports(&r, 2, "FAILED");
    assert!(r.summary.contains("stagin"), "{}", r.summary);
}

#[test]
fn a_run_that_cannot_proceed_writes_every_report() {
    // `smoke` with nothing running: exit 3.
    let dir = workspace(SPEC);
    let r = run_with_reports(
        dir.path(),
        &["smoke", "--env", "staging", "--commit", C1],
        &[],
    );
    check_reports(&r, 3, "FAILED");
    assert!(r.summary.contains("nothing is running"), "{}", r.summary);
}

const RENDER_SPEC: &str = r#"[project]
name = "pre"

[environments.staging]
provider = "render"

[services.web]
settings = { service_name = "web" }

[vars.GREETING]
value = "hello"
services = ["web"]
"#;

/// A platform that refuses every key: answers each request 401 and records its request
/// line. A hand-written scenario (Render's contract has the 401); no request is written.
fn refusing_platform() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(vec![]));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64).flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            log.lock().unwrap().push(line.trim().to_owned());
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
            }
            let body = r#"{"id":"unauthorized","message":"unauthorized"}"#;
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, seen)
}

#[test]
fn render_with_its_key_refused_or_unreachable_exits_3_in_the_preflight_before_any_write() {
    let dir = workspace(RENDER_SPEC);
    let d = dir.path();
    let (url, seen) = refusing_platform();
    for (name, api) in [
        ("refused", url.as_str()),
        ("unreachable", "http://127.0.0.1:9/v1"),
    ] {
        for args in [
            &["up", "--env", "staging", "--commit", C1][..],
            &["plan", "--env", "staging", "--commit", C1],
            &["validate", "--online"],
        ] {
            let started = std::time::Instant::now();
            let out = staging_command(
                d,
                args,
                &[
                    ("RENDER_API_KEY", "rnd_preflight_canary_6d1f"),
                    ("RENDER_API_URL", api),
                ],
            )
            .current_dir(d)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
            let all = text(&out);
            eprintln!(
                "{name} {args:?}: exit {:?} after {:?}",
                out.status.code(),
                started.elapsed()
            );
            assert_eq!(out.status.code(), Some(3), "{name} {args:?}:\n{all}");
            assert!(!all.contains("rnd_preflight_canary_6d1f"), "{all}");
            if name == "refused" {
                assert!(all.contains("RENDER_API_KEY"), "says what to set: {all}");
            }
            if args[0] == "up" {
                let r = run_with_reports(
                    d,
                    args,
                    &[
                        ("RENDER_API_KEY", "rnd_preflight_canary_6d1f"),
                        ("RENDER_API_URL", api),
                    ],
                );
                check_reports(&r, 3, "FAILED");
                assert!(r.summary.contains("| preflight | error |"), "{}", r.summary);
                assert!(
                    !r.summary.contains("isolation"),
                    "no step ran: {}",
                    r.summary
                );
            }
        }
    }
    let requests = seen.lock().unwrap().clone();
    assert!(!requests.is_empty(), "the platform was never asked");
    for request in &requests {
        assert!(
            request.starts_with("GET "),
            "a write before the preflight ended: {requests:?}"
        );
    }
    assert!(
        !d.join(".staging").join("evidence").exists(),
        "evidence was recorded"
    );
}

#[test]
fn aws_without_credentials_exits_3_before_its_secrets_are_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        r#"[project]
name = "aws"

[environments.staging]
provider = "aws"
deploy_timeout = "30s"
secrets = { provider = "" }
settings = { region = "us-east-1", cluster = "staging", secrets_prefix = "aws/staging/" }

[services.web]
settings = { service = "web" }

[vars.JWT_SECRET]
secret = true
services = ["web"]
rules = { kind = "signing_key" }
"#,
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    for args in [
        &["up", "--env", "staging", "--commit", C1][..],
        &["plan", "--env", "staging", "--commit", C1],
    ] {
        let _ = std::fs::remove_file(&summary);
        let out = staging_command(dir.path(), args, &[])
            .current_dir(dir.path())
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("HOME", home.path())
            .env("AWS_CONFIG_FILE", home.path().join("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.path().join("none"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
            .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let all = text(&out);
        assert_eq!(out.status.code(), Some(3), "{args:?}:\n{all}");
        assert!(
            all.contains("AWS_ACCESS_KEY_ID") || all.contains("credentials"),
            "says what to set: {all}"
        );
        if args[0] == "up" {
            let md = std::fs::read_to_string(&summary).unwrap();
            assert!(md.contains("| preflight | error |"), "{md}");
        }
    }
}

#[test]
fn plan_refuses_the_options_of_a_run_instead_of_ignoring_them() {
    let dir = workspace(SPEC);
    for option in [
        &["--junit", "j.xml"][..],
        &["--html", "r.html"],
        &["--summary", "s.md"],
        &["--keep-running"],
        &["--cancel-on-interrupt"],
    ] {
        let mut args = vec!["plan", "--env", "staging", "--commit", C1];
        args.extend(option);
        let out = staging_command(dir.path(), &args, &[])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{option:?}: {}", text(&out));
        assert!(text(&out).contains(option[0]), "{}", text(&out));
    }
    let out = staging_command(
        dir.path(),
        &["plan", "--env", "staging", "--commit", C1],
        &[],
    )
    .current_dir(dir.path())
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// `(classname, name)` of every testcase of a JUnit file.
fn cases(junit: &Path) -> Vec<(String, String)> {
    let xml = std::fs::read_to_string(junit).unwrap();
    xml.split("<testcase ")
        .skip(1)
        .map(|t| {
            let head = t.split('>').next().unwrap();
            let attr = |a: &str| {
                head.split(&format!(" {a}=\""))
                    .nth(1)
                    .or_else(|| head.strip_prefix(&format!("{a}=\"")))
                    .and_then(|v| v.split('"').next())
                    .unwrap_or_default()
                    .to_owned()
            };
            (attr("classname"), attr("name"))
        })
        .collect()
}

#[test]
fn a_probe_is_the_same_junit_test_in_up_and_in_smoke() {
    let dir = workspace(&format!("{SPEC}{FAILING_PROBE}"));
    let d = dir.path();
    let up = run_with_reports(d, &["up", "--env", "staging", "--commit", C1], &[]);
    assert_eq!(up.code, 1, "{}", up.output);
    let up_cases = cases(&up.junit);
    // `smoke` against the same stack, kept running by another `up`.
    let mut keep = common::staging_command(
        d,
        &["up", "--env", "staging", "--commit", C1, "--keep-running"],
        &[],
    )
    .current_dir(d)
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(keep.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("press Ctrl-C to stop") {
            break;
        }
    }
    let smoke = run_with_reports(d, &["smoke", "--env", "staging", "--commit", C1], &[]);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(keep.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let _ = keep.wait();
    assert_eq!(smoke.code, 1, "{}", smoke.output);
    let smoke_cases = cases(&smoke.junit);
    for probe in [
        "health &lt;b&gt;*live*&lt;/b&gt;",
        "teapot &lt;i&gt;now&lt;/i&gt;",
    ] {
        let name = format!("smoke: {probe}");
        let in_up: Vec<_> = up_cases.iter().filter(|(_, n)| *n == name).collect();
        let in_smoke: Vec<_> = smoke_cases.iter().filter(|(_, n)| *n == name).collect();
        assert_eq!(in_up.len(), 1, "{name} in {up_cases:?}");
        assert_eq!(in_up, in_smoke, "up: {up_cases:?}\nsmoke: {smoke_cases:?}");
        assert_eq!(in_up[0].0, "staging.staging.smoke");
    }
}
