//! Templates end to end: a spec string is interpreted once. An environment variable whose
//! value looks like a pipeline reference arrives literally (never as the secret it names),
//! `$${` arrives as `${`, nested defaults work; and the promotion gate compares the
//! *effective* spec, so a probe loosened through an environment variable on the staging run
//! is not "the same spec".

use std::path::Path;

use assert_cmd::Command;

/// A local service that answers every GET with `{"status": "ok"}` and appends each request
/// path to `requests.log` (an echo target: it shows what the probe sent).
const ECHO_SERVER: &str = r#"
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open("requests.log", "a") as f:
            f.write(self.path + "\n")
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

const CANARY: &str = "canary-7d1f0e9c2b4a6d8f0e2c4a6b8d0f2e4c";

const SPEC: &str = r#"[project]
name = "tmpl"

[environments.staging]
provider = "local"
promotes_to = "production"
deploy_timeout = "60s"
secrets = { dotenv = "staging.env" }

[environments.production]
provider = "local"
protected = true
deploy_timeout = "60s"
secrets = { dotenv = "production.env" }

[services.web]
health_path = "/up"
settings = { command = ["python3", "server.py"], stop_timeout = "2s" }

[vars.API_TOKEN]
secret = true
rules = { min_length = 8 }

[[probes]]
name = "echo-url"
http = { url = "${services.web.url}/up?from_env=${FROM_ENV}&escaped=$${commit}&nested=${UNSET_VAR:-${commit}}", expect = { body_regex = "${RX:-^\\{\"status\": \"ok\"\\}$}" } }

[[probes]]
name = "echo-args"
command = { run = ["sh", "-c", "printf '%s\\n' \"$@\" > received.txt", "sh", "${FROM_ENV}", "$${vars.API_TOKEN}", "${UNSET_VAR:-${UNSET_TOO:-fallback}}", "${vars.API_TOKEN:-none}"] }
"#;

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("staging.toml"), SPEC).unwrap();
    std::fs::write(dir.path().join("server.py"), ECHO_SERVER).unwrap();
    std::fs::write(
        dir.path().join("staging.env"),
        format!("API_TOKEN={CANARY}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("production.env"),
        "API_TOKEN=prod-0a1b2c3d4e5f6a7b8c9d\n",
    )
    .unwrap();
    dir
}

fn staging(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::cargo_bin("staging").unwrap();
    cmd.args(args)
        .arg("-f")
        .arg(dir.join("staging.toml"))
        .env_remove("RX")
        .env_remove("FROM_ENV")
        .env_remove("UNSET_VAR")
        .env_remove("UNSET_TOO")
        .env("FROM_ENV", "${vars.API_TOKEN}");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

const COMMIT: &str = "3333333aaaaaaaabbbbbbbbccccccccddddddddd";

#[test]
fn an_env_value_that_looks_like_a_reference_arrives_literally_never_as_the_secret() {
    let dir = setup();
    let dir = dir.path();
    let (code, out) = staging(dir, &["up", "--env", "staging", "--commit", COMMIT], &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains(CANARY), "the secret was printed: {out}");

    let requests = std::fs::read_to_string(dir.join("requests.log")).unwrap();
    assert!(
        !requests.contains(CANARY),
        "the secret was sent in a URL: {requests}"
    );
    let probe = requests
        .lines()
        .find(|l| l.contains("from_env="))
        .unwrap_or_else(|| panic!("the probe's request is not in {requests}"));
    let decoded = probe
        .replace("%7B", "{")
        .replace("%7D", "}")
        .replace("%24", "$");
    assert!(decoded.contains("from_env=${vars.API_TOKEN}&"), "{probe}");
    assert!(
        decoded.contains("escaped=${commit}&"),
        "`$${{` must arrive as `${{`: {probe}"
    );
    assert!(decoded.contains(&format!("nested={COMMIT}")), "{probe}");

    let args = std::fs::read_to_string(dir.join("received.txt")).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(
        args,
        ["${vars.API_TOKEN}", "${vars.API_TOKEN}", "fallback", CANARY],
        "the command's arguments: an env value and `$${{` literal, nested defaults filled, \
         only the spec's own `${{vars.API_TOKEN}}` expanded"
    );
}

#[test]
fn a_nested_default_that_cannot_resolve_fails_validate_at_its_column() {
    let dir = setup();
    let dir = dir.path();
    let spec = SPEC.replace("${UNSET_TOO:-fallback}", "${UNSET_TOO}");
    std::fs::write(dir.join("staging.toml"), &spec).unwrap();
    let (code, out) = staging(dir, &["validate"], &[]);
    assert_eq!(code, Some(2), "{out}");
    let line = spec
        .lines()
        .position(|l| l.contains("${UNSET_TOO}"))
        .unwrap()
        + 1;
    let col = spec
        .lines()
        .nth(line - 1)
        .unwrap()
        .find("${UNSET_TOO}")
        .unwrap()
        + 1;
    assert!(
        out.contains(&format!(
            "staging.toml:{line}:{col}: undefined variable `${{UNSET_TOO}}`"
        )),
        "{out}"
    );

    let spec = SPEC.replace("${UNSET_TOO:-fallback}}", "${UNSET_TOO:-fallback}");
    std::fs::write(dir.join("staging.toml"), &spec).unwrap();
    let (code, out) = staging(dir, &["validate"], &[]);
    assert_eq!(code, Some(2), "an unclosed nested default: {out}");
    assert!(out.contains("not closed"), "{out}");
}

#[test]
fn a_probe_loosened_through_an_env_var_on_staging_is_not_the_same_spec_for_promote() {
    let dir = setup();
    let dir = dir.path();
    let (code, out) = staging(
        dir,
        &["up", "--env", "staging", "--commit", COMMIT],
        &[("RX", ".*")],
    );
    assert_eq!(code, Some(0), "{out}");

    // The evidence file records both hashes.
    let (_, list) = staging(dir, &["evidence", "list", "--json"], &[]);
    assert!(list.contains("staging"), "{list}");

    // Same file, stricter probe: refused, saying the file is the same.
    let (code, out) = staging(
        dir,
        &["promote", "--to", "production", "--commit", COMMIT],
        &[],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("spec changed"), "{out}");
    assert!(out.contains("environment variable"), "{out}");

    // The environment that staging ran under: the same effective spec, allowed.
    let (code, out) = staging(
        dir,
        &["promote", "--to", "production", "--commit", COMMIT],
        &[("RX", ".*")],
    );
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn evidence_records_the_effective_spec_hash_next_to_the_file_hash() {
    let dir = setup();
    let dir = dir.path();
    let (code, out) = staging(dir, &["up", "--env", "staging", "--commit", COMMIT], &[]);
    assert_eq!(code, Some(0), "{out}");
    let mut records = vec![];
    for e in walk(&dir.join(".staging/evidence")) {
        if e.extension().is_some_and(|x| x == "json") {
            records.push(std::fs::read_to_string(e).unwrap());
        }
    }
    assert_eq!(records.len(), 1, "{records:?}");
    let doc: serde_json::Value = serde_json::from_str(&records[0]).unwrap();
    let file = doc["spec_hash"].as_str().unwrap();
    let effective = doc["effective_spec_hash"].as_str().unwrap();
    assert_eq!(effective.len(), 64);
    assert_ne!(file, effective);
}

#[test]
fn a_record_without_an_effective_hash_is_refused_with_a_clear_message() {
    let dir = setup();
    let dir = dir.path();
    let (code, out) = staging(dir, &["up", "--env", "staging", "--commit", COMMIT], &[]);
    assert_eq!(code, Some(0), "{out}");
    // Rewrite the record as an older version wrote it: no effective hash, content hash
    // recomputed the way the tool does (so it is intact, merely old).
    for path in walk(&dir.join(".staging/evidence")) {
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let mut e: staging_core::pipeline::Evidence =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        e.effective_spec_hash = None;
        e.content_hash = e.compute_hash();
        std::fs::write(&path, serde_json::to_string_pretty(&e).unwrap()).unwrap();
    }
    let (code, out) = staging(
        dir,
        &["promote", "--to", "production", "--commit", COMMIT],
        &[],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("without an effective spec hash"), "{out}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
