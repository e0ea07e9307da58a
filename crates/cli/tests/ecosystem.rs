//! How `staging` fits the tools around it, checked with consumers nobody here wrote: the
//! `--json` envelope against its JSON Schema (jsonschema), JUnit reports against the
//! Jenkins xUnit `junit-10.xsd` (xmllint), the HTML report in headless Chromium, GitHub's
//! step summary and outputs, shell completions and the man page, spec discovery, logs
//! piped to a file, imports that validate, and exit codes. xmllint, junit-10.xsd and
//! Chromium come from `scripts/test-tools.sh`; a missing one fails the test with the
//! command to run, it never skips.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

mod common;
use common::SERVER;

const C1: &str = "1111111111111111111111111111111111111111";

const SPEC: &str = r#"[project]
name = "eco"

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

[vars.JWT_SECRET]
secret = true
rules = { kind = "signing_key", differs_from = "production" }

[[probes]]
name = "health"
http = { url = "${services.web.url}/up", expect = { json = { "$.commit" = "${commit}" } } }
"#;

/// Probes that fail (a wrong status), could not run (a closed port), and are skipped (only
/// in production), besides one that passes.
const MIXED_PROBES: &str = r#"
[[probes]]
name = "teapot-expected"
http = { url = "${services.web.url}/up", expect = { status = 418 } }

[[probes]]
name = "nothing-listens"
timeout = "2s"
tcp = { address = "127.0.0.1:9" }

[[probes]]
name = "cannot-start"
command = { run = ["./no-such-program-here"] }

[[probes]]
name = "production-only"
environments = ["production"]
http = { url = "${services.web.url}/up" }
"#;

/// Probes that need no service: a wrong answer (connection refused on port 9), a program
/// that cannot start, one skipped outside production, and one that passes.
const SMOKE_ONLY: &str = r#"[project]
name = "smoke-only"

[environments.staging]
provider = "local"

[environments.production]
provider = "local"

[[probes]]
name = "refused"
timeout = "2s"
http = { url = "http://127.0.0.1:9/up", expect = { status = 200 } }

[[probes]]
name = "cannot-start"
command = { run = ["./no-such-program-here"] }

[[probes]]
name = "production-only"
environments = ["production"]
command = { run = ["true"] }

[[probes]]
name = "runs"
command = { run = ["true"] }
"#;

fn workspace(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("staging.toml"), format!("{SPEC}{extra}")).unwrap();
    std::fs::write(dir.path().join("server.py"), SERVER).unwrap();
    std::fs::write(
        dir.path().join("staging.env"),
        "JWT_SECRET=2f9c1d7e8a4b6c3d5e7f9a1b3c5d7e9f2a4b6c8d\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("production.env"),
        "JWT_SECRET=9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d\n",
    )
    .unwrap();
    dir
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `staging ARGS` in `dir`, with no GitHub variables leaking in from the environment.
fn staging_in(dir: &Path, args: &[&str]) -> Output {
    Command::cargo_bin("staging")
        .unwrap()
        .current_dir(dir)
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_OUTPUT")
        .env_remove("STAGING_FILE")
        .env_remove("RUST_LOG")
        .env_remove("CLICOLOR_FORCE")
        .args(args)
        .timeout(std::time::Duration::from_secs(180))
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// ---------------------------------------------------------------------------------------
// The JSON envelope

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("docs/json-output.schema.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

/// Run with `--json`; stdout must be exactly one document, valid against the schema, whose
/// `ok` says whether the exit code is 0 and whose `command` is `command`.
fn json_run(
    validator: &jsonschema::Validator,
    dir: &Path,
    command: &str,
    args: &[&str],
) -> (serde_json::Value, i32) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = staging_in(dir, &all);
    let code = out.status.code().unwrap_or(-1);
    let stdout = text(&out.stdout);
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "`staging {}` printed no single JSON document ({e}):\n{stdout}\nstderr:\n{}",
            all.join(" "),
            text(&out.stderr)
        )
    });
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "`staging {}` broke the schema: {errors:?}\n{doc:#}",
        all.join(" ")
    );
    assert_eq!(doc["ok"], code == 0, "`ok` vs exit {code}: {doc:#}");
    assert_eq!(doc["command"], command, "{doc:#}");
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));
    (doc, code)
}

#[test]
fn every_subcommand_prints_one_envelope_valid_against_the_schema() {
    let v = schema();
    let dir = workspace("");
    let d = dir.path();
    std::fs::write(
        d.join("render.yaml"),
        "services:\n  - type: web\n    name: web\n    healthCheckPath: /up\n",
    )
    .unwrap();

    let (doc, code) = json_run(&v, d, "validate", &["validate"]);
    assert_eq!(code, 0, "{doc:#}");
    assert!(doc["error"].is_null());
    json_run(&v, d, "plan", &["plan", "--env", "staging", "--commit", C1]);
    let (doc, code) = json_run(&v, d, "up", &["up", "--env", "staging", "--commit", C1]);
    assert_eq!(code, 0, "{doc:#}");
    assert!(doc["steps"].as_array().is_some_and(|s| !s.is_empty()));
    json_run(&v, d, "status", &["status", "--env", "staging"]);
    // Nothing runs between commands on the local provider: smoke cannot proceed.
    let (doc, code) = json_run(
        &v,
        d,
        "smoke",
        &["smoke", "--env", "staging", "--commit", C1],
    );
    assert_eq!(code, 3, "{doc:#}");
    assert_eq!(doc["error"]["kind"], "cannot_proceed");
    let (doc, _) = json_run(&v, d, "evidence list", &["evidence", "list"]);
    let id = doc["runs"][0]["id"].as_str().expect("a run").to_owned();
    json_run(&v, d, "evidence show", &["evidence", "show", &id]);
    json_run(&v, d, "diff", &["diff", "staging", "production"]);
    json_run(&v, d, "doctor", &["doctor", "--env", "staging"]);
    json_run(
        &v,
        d,
        "migrate status",
        &["migrate", "status", "--env", "staging"],
    );
    json_run(
        &v,
        d,
        "migrate apply",
        &["migrate", "apply", "--env", "staging", "--dry-run"],
    );
    json_run(
        &v,
        d,
        "secrets check",
        &["secrets", "check", "--env", "staging"],
    );
    json_run(
        &v,
        d,
        "secrets diff",
        &["secrets", "diff", "staging", "production"],
    );
    json_run(
        &v,
        d,
        "secrets sync",
        &["secrets", "sync", "--env", "staging"],
    );
    json_run(
        &v,
        d,
        "secrets rotate",
        &["secrets", "rotate", "JWT_SECRET", "--env", "staging"],
    );
    let (doc, code) = json_run(&v, d, "import", &["import", "render.yaml"]);
    assert_eq!(code, 0, "{doc:#}");
    assert!(
        doc["spec"].as_str().unwrap().contains("[services.web]"),
        "import --json carries the spec as a string: {doc:#}"
    );
    json_run(
        &v,
        d,
        "promote",
        &["promote", "--to", "production", "--commit", C1],
    );
    json_run(&v, d, "completions", &["completions", "bash"]);
    json_run(&v, d, "man", &["man"]);
    let (doc, code) = json_run(&v, d, "schema", &["schema"]);
    assert_eq!(code, 0, "{doc:#}");
    assert!(doc["schema"].is_object(), "{doc:#}");
}

#[test]
fn usage_errors_print_the_envelope_with_exit_2() {
    let v = schema();
    let dir = tempfile::tempdir().unwrap();
    for (args, command) in [
        (&["no-such-command"][..], ""),
        (&["up", "--no-such-flag"][..], "up"),
        (&["completions", "tcsh"][..], "completions"),
        (&["promote"][..], "promote"),
    ] {
        let (doc, code) = json_run(&v, dir.path(), command, args);
        assert_eq!(code, 2, "{args:?}: {doc:#}");
        assert_eq!(doc["error"]["kind"], "usage", "{doc:#}");
        assert!(
            !doc["error"]["message"].as_str().unwrap().contains('\x1b'),
            "{doc:#}"
        );
    }
    // Without --json, clap's own message on stderr and nothing on stdout.
    let out = staging_in(dir.path(), &["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn a_spec_error_in_the_envelope_has_kind_and_location() {
    let v = schema();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        "[project]\nname = \"x\"\n\n[environments.staging]\nprovder = \"local\"\n",
    )
    .unwrap();
    let (doc, code) = json_run(&v, dir.path(), "validate", &["validate"]);
    assert_eq!(code, 2, "{doc:#}");
    assert_eq!(doc["error"]["kind"], "config_invalid", "{doc:#}");
    let location = doc["error"]["location"].as_str().unwrap_or_default();
    assert!(location.contains("staging.toml:5:"), "{doc:#}");
}

// ---------------------------------------------------------------------------------------
// Discovery and exit codes

#[test]
fn the_spec_is_found_from_a_subdirectory_and_f_wins() {
    let dir = workspace("");
    let deep = dir.path().join("src/deep");
    std::fs::create_dir_all(&deep).unwrap();
    let out = staging_in(&deep, &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let found = dir.path().join("staging.toml").canonicalize().unwrap();
    let shown = text(&out.stdout);
    assert!(
        shown.contains("staging.toml is valid"),
        "validate says which file: {shown}"
    );
    // A nearer spec wins over the parent's.
    std::fs::write(
        deep.join("staging.toml"),
        "[project]\nname = \"inner\"\n\n[environments.dev]\nprovider = \"local\"\n",
    )
    .unwrap();
    let out = staging_in(&deep, &["--json", "validate"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["environments"], serde_json::json!(["dev"]), "{doc:#}");
    // -f wins over discovery.
    let out = staging_in(
        &deep,
        &["--json", "validate", "-f", found.to_str().unwrap()],
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["environments"],
        serde_json::json!(["production", "staging"])
    );
    // The typo'd -f is an error, not a fallback to discovery.
    let out = staging_in(&deep, &["validate", "-f", "stagin.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn no_spec_anywhere_is_a_usage_error_naming_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let out = staging_in(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("no staging.toml in") && err.contains("-f"),
        "{err}"
    );
}

#[test]
fn aws_without_credentials_or_endpoint_cannot_proceed_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        r#"[project]
name = "aws"

[environments.staging]
provider = "aws"
deploy_timeout = "30s"
settings = { region = "us-east-1", cluster = "staging" }

[services.web]
settings = { service = "web" }
"#,
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let run = |with_keys: bool, args: &[&str]| {
        let mut cmd = Command::cargo_bin("staging").unwrap();
        cmd.current_dir(dir.path())
            .env("HOME", home.path())
            .env("AWS_CONFIG_FILE", home.path().join("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.path().join("none"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            // Nothing listens on port 9 of loopback: unreachable at once.
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
            .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
            .args(args)
            .timeout(std::time::Duration::from_secs(120));
        if with_keys {
            cmd.env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing");
        }
        cmd.output().unwrap()
    };
    for with_keys in [false, true] {
        for args in [
            &["up", "--env", "staging", "--commit", C1][..],
            &["validate", "--online"][..],
        ] {
            let out = run(with_keys, args);
            assert_eq!(
                out.status.code(),
                Some(3),
                "credentials {with_keys}, {args:?}:\n{}\n{}",
                text(&out.stdout),
                text(&out.stderr)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Completions, man page, help

#[test]
fn completions_are_generated_for_every_shell() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef staging"),
        ("fish", "complete -c staging"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer[staging]"),
    ] {
        let out = staging_in(dir.path(), &["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = text(&out.stdout);
        assert!(script.contains(marker), "{shell}: no `{marker}`");
        assert!(script.contains("promote"), "{shell} completes subcommands");
    }
    let out = staging_in(dir.path(), &["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_man_page_is_roff_with_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = staging_in(dir.path(), &["man"]);
    assert_eq!(out.status.code(), Some(0));
    let page = text(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH staging"),
        "{page}"
    );
    for sub in [
        "validate",
        "up",
        "promote",
        "smoke",
        "import",
        "completions",
    ] {
        assert!(page.contains(sub), "the man page lacks `{sub}`");
    }
}

#[test]
fn each_subcommand_help_shows_examples() {
    let dir = tempfile::tempdir().unwrap();
    for sub in [
        &["up"][..],
        &["promote"],
        &["smoke"],
        &["import"],
        &["evidence", "list"],
    ] {
        let mut args = sub.to_vec();
        args.push("--help");
        let out = staging_in(dir.path(), &args);
        let help = text(&out.stdout);
        assert!(help.contains("Examples:"), "{sub:?}: {help}");
        assert!(
            help.contains(&format!("staging {}", sub.join(" "))),
            "{sub:?}: {help}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Logs

#[test]
fn verbose_logs_say_what_the_tool_does_without_ansi_when_piped() {
    let dir = workspace("");
    let out = staging_in(
        dir.path(),
        &["-v", "up", "--env", "staging", "--commit", C1],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let log = text(&out.stderr);
    assert!(!log.contains('\x1b'), "ANSI in a piped log:\n{log}");
    for said in [
        "deploy: starting",
        "smoke: passed",
        "staging_core",
        "deploy `web`",
    ] {
        assert!(log.contains(said), "-v does not say `{said}`:\n{log}");
    }
    // Library noise stays out below -vvv.
    assert!(!log.contains("hyper"), "{log}");

    // Forced colour: --color always, and CLICOLOR_FORCE.
    let out = staging_in(dir.path(), &["-v", "--color", "always", "validate"]);
    assert!(text(&out.stderr).contains('\x1b'));
    let out = Command::cargo_bin("staging")
        .unwrap()
        .current_dir(dir.path())
        .env("CLICOLOR_FORCE", "1")
        .env_remove("NO_COLOR")
        .args(["-v", "validate"])
        .output()
        .unwrap();
    assert!(text(&out.stderr).contains('\x1b'));
    let out = Command::cargo_bin("staging")
        .unwrap()
        .current_dir(dir.path())
        .env("CLICOLOR_FORCE", "1")
        .args(["-v", "--no-color", "validate"])
        .output()
        .unwrap();
    assert!(!text(&out.stderr).contains('\x1b'));
}

#[test]
fn rust_log_selects_by_crate_name() {
    let dir = workspace("");
    let out = Command::cargo_bin("staging")
        .unwrap()
        .current_dir(dir.path())
        .env("RUST_LOG", "staging_core=debug")
        .args(["up", "--env", "staging", "--commit", C1])
        .output()
        .unwrap();
    let log = text(&out.stderr);
    assert!(log.contains("staging_core"), "{log}");
    assert!(!log.contains("staging_provider_local"), "{log}");
}

// ---------------------------------------------------------------------------------------
// Report files: JUnit (xmllint + junit-10.xsd), HTML (headless Chromium), GitHub

/// `junit-10.xsd` (from the pytest sdist) and `xmllint` (Debian's libxml2-utils), both
/// installed by `scripts/test-tools.sh`. Missing, the test fails: it never skips the schema.
fn xsd() -> PathBuf {
    let xsd = root().join(".tools/junit-10.xsd");
    assert!(
        xsd.exists(),
        "{} is missing: run `bash scripts/test-tools.sh` (it takes junit-10.xsd from the pytest sdist on PyPI)",
        xsd.display()
    );
    let xmllint = std::process::Command::new("xmllint")
        .arg("--version")
        .output();
    assert!(
        xmllint.is_ok(),
        "xmllint is not installed: run `bash scripts/test-tools.sh` (it installs Debian's libxml2-utils)"
    );
    xsd
}

/// What junit-10.xsd requires and the issue names, checked by hand so the test holds on a
/// machine without xmllint: `testsuites` carries no `skipped` attribute; every `testsuite`
/// has `name`, `tests`, `failures`, `errors`, `timestamp` and `hostname`; every `testcase`
/// has `name`, `classname` and `time`.
fn junit_structure(file: &Path) -> String {
    let xml = std::fs::read_to_string(file).unwrap();
    assert!(xml.starts_with("<?xml"), "{xml}");
    let root_tag = xml
        .split("<testsuites")
        .nth(1)
        .and_then(|t| t.split('>').next())
        .unwrap_or_else(|| panic!("no <testsuites>: {xml}"));
    assert!(
        !root_tag.contains("skipped="),
        "junit-10.xsd has no testsuites@skipped: {root_tag}"
    );
    let suites: Vec<String> = xml
        .split("<testsuite ")
        .skip(1)
        .map(|t| format!(" {}", t.split('>').next().unwrap()))
        .collect();
    assert!(!suites.is_empty(), "no <testsuite>: {xml}");
    for head in &suites {
        for attr in [
            "name",
            "tests",
            "failures",
            "errors",
            "timestamp",
            "hostname",
        ] {
            assert!(
                head.contains(&format!(" {attr}=\"")),
                "a testsuite without {attr}: {head}"
            );
        }
    }
    for case in xml.split("<testcase ").skip(1) {
        let head = case.split('>').next().unwrap();
        for attr in ["name", "classname", "time"] {
            assert!(
                head.contains(&format!("{attr}=\"")),
                "a testcase without {attr}: {head}"
            );
        }
    }
    xml
}

fn xmllint(file: &Path) {
    junit_structure(file);
    let xsd = xsd();
    let out = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(xsd)
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} does not validate against junit-10.xsd:\n{}\n{}",
        file.display(),
        text(&out.stderr),
        std::fs::read_to_string(file).unwrap()
    );
}

#[test]
fn junit_of_passing_failing_skipped_and_errored_runs_validates_against_junit_10_xsd() {
    let dir = workspace(MIXED_PROBES);
    let d = dir.path();
    let reports = d.join("reports/nested");
    let up = reports.join("up.xml");
    let out = staging_in(
        d,
        &[
            "up",
            "--env",
            "staging",
            "--commit",
            C1,
            "--junit",
            up.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    xmllint(&up);
    let xml = std::fs::read_to_string(&up).unwrap();
    assert!(xml.contains("<failure"), "{xml}");
    assert!(
        xml.contains("<error"),
        "a probe that could not run is an error: {xml}"
    );
    assert!(xml.contains("<skipped"), "{xml}");
    assert!(
        xml.contains("expected status 418; observed"),
        "up's failures are as specific as smoke's: {xml}"
    );
    assert!(xml.contains("hostname=\"") && xml.contains("timestamp=\""));
    for case in xml.split("<testcase ").skip(1) {
        let head = case.split('>').next().unwrap();
        assert!(head.contains(" time=\""), "a testcase without time: {head}");
    }

    // A passing run, a promotion (gate + run), and smoke's own report.
    let pass = workspace("");
    let p = pass.path();
    let up = p.join("up.xml");
    let out = staging_in(
        p,
        &[
            "up",
            "--env",
            "staging",
            "--commit",
            C1,
            "--junit",
            up.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    xmllint(&up);
    let promote = p.join("promote.xml");
    let out = staging_in(
        p,
        &[
            "promote",
            "--to",
            "production",
            "--commit",
            C1,
            "--junit",
            promote.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    xmllint(&promote);
    // A refused promotion (no evidence for this commit).
    let refused = p.join("refused.xml");
    let out = staging_in(
        p,
        &[
            "promote",
            "--to",
            "production",
            "--commit",
            "2222222222222222222222222222222222222222",
            "--junit",
            refused.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    xmllint(&refused);

    // `smoke` on its own: a failing, errored and skipped run, then a passing one.
    let smoke = tempfile::tempdir().unwrap();
    let s = smoke.path();
    std::fs::write(s.join("staging.toml"), SMOKE_ONLY).unwrap();
    let failing = s.join("failing.xml");
    let out = staging_in(
        s,
        &[
            "smoke",
            "--env",
            "staging",
            "--commit",
            C1,
            "--junit",
            failing.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    xmllint(&failing);
    let xml = std::fs::read_to_string(&failing).unwrap();
    for element in ["<failure", "<error", "<skipped"] {
        assert!(xml.contains(element), "{element}: {xml}");
    }
    // In production the skipped probe runs (and passes); the other two still do not.
    let production = s.join("production.xml");
    let out = staging_in(
        s,
        &[
            "smoke",
            "--env",
            "production",
            "--commit",
            C1,
            "--junit",
            production.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    xmllint(&production);
    let passing = s.join("passing.xml");
    std::fs::write(
        s.join("staging.toml"),
        "[project]\nname = \"smoke-only\"\n\n[environments.staging]\nprovider = \"local\"\n\n\
         [[probes]]\nname = \"runs\"\ncommand = { run = [\"true\"] }\n",
    )
    .unwrap();
    let out = staging_in(
        s,
        &[
            "smoke",
            "--env",
            "staging",
            "--commit",
            C1,
            "--junit",
            passing.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    xmllint(&passing);
}

#[test]
fn the_junit_check_refuses_what_junit_10_xsd_refuses() {
    // The attack: the report shapes issue 17 found, each refused by xmllint and the schema.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.xml");
    for broken in [
        r#"<testsuites skipped="1"><testsuite name="s" tests="1" failures="0" errors="0"><testcase name="c" classname="k" time="0"/></testsuite></testsuites>"#,
        r#"<testsuites><testsuite name="s" failures="0" errors="0"><testcase name="c" classname="k" time="0"/></testsuite></testsuites>"#,
        r#"<testsuites><testsuite name="s" tests="1" failures="0" errors="0"><testcase name="c" classname="k" time="0"><oops/></testcase></testsuite></testsuites>"#,
    ] {
        std::fs::write(&bad, format!("<?xml version=\"1.0\"?>\n{broken}")).unwrap();
        let out = std::process::Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(xsd())
            .arg(&bad)
            .output()
            .unwrap();
        assert!(!out.status.success(), "xmllint accepted {broken}");
    }
}

#[test]
fn report_paths_are_checked_before_the_run_starts() {
    let dir = workspace("");
    let d = dir.path();
    std::fs::write(d.join("a-file"), "").unwrap();
    for option in ["--junit", "--html", "--summary"] {
        let out = staging_in(
            d,
            &[
                "up",
                "--env",
                "staging",
                "--commit",
                C1,
                option,
                "a-file/report",
            ],
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "{option}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stderr).contains(option), "{}", text(&out.stderr));
    }
    assert!(
        !d.join(".staging").exists(),
        "nothing ran: no evidence was recorded"
    );
}

fn chromium_dom(page: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "chromium cannot run ({e}): the HTML report is checked in a real browser; \
                 run `bash scripts/test-tools.sh` (it installs Debian's chromium)"
            )
        });
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// A probe whose name is markup that would fetch from `port` if the page let it through.
fn probe_named_as_an_image(port: u16) -> String {
    format!(
        r#"
[[probes]]
name = "<img src='http://127.0.0.1:{port}/pixel.png'><link rel=stylesheet href='https://example.com/x.css'>"
http = {{ url = "${{services.web.url}}/up", expect = {{ status = 200 }} }}
"#
    )
}

#[test]
fn the_html_report_renders_in_headless_chromium_and_shows_the_failing_probe() {
    // Anything the page fetches lands here; a self-contained report fetches nothing.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let dir = workspace(&format!("{MIXED_PROBES}{}", probe_named_as_an_image(port)));
    let d = dir.path();
    let page = d.join("out/report.html");
    let out = staging_in(
        d,
        &[
            "up",
            "--env",
            "staging",
            "--commit",
            C1,
            "--html",
            page.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let listed = staging_in(d, &["--json", "evidence", "list"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let evidence_id = listed["runs"][0]["id"].as_str().expect("a run").to_owned();

    let dom = chromium_dom(&page);
    // The failing probe, with what was expected and what was observed.
    let row = dom
        .split("<tr")
        .find(|r| r.contains("teapot-expected"))
        .unwrap_or_else(|| panic!("no row for the failing probe: {dom}"));
    assert!(row.contains("failed"), "{row}");
    assert!(row.contains("status 418"), "expected shown: {row}");
    assert!(row.contains("status 200"), "observed shown: {row}");
    assert!(dom.contains("FAILED"), "{dom}");
    // A probe that could not run is an error, not a failure.
    let row = dom
        .split("<tr")
        .find(|r| r.contains("cannot-start"))
        .unwrap();
    assert!(row.contains(">error<"), "{row}");
    // The commit, the evidence id, the service's URL and the steps with durations.
    assert!(dom.contains(C1), "the commit: {dom}");
    assert!(
        dom.contains(&evidence_id),
        "the evidence id {evidence_id}: {dom}"
    );
    assert!(dom.contains("http://127.0.0.1:"), "the service URL: {dom}");
    assert!(dom.contains(" ms</td>"), "step durations: {dom}");
    // Redacted: the staging secret is nowhere, neither in the file nor on the page.
    let canary = "2f9c1d7e8a4b6c3d5e7f9a1b3c5d7e9f2a4b6c8d";
    assert!(!dom.contains(canary) && !std::fs::read_to_string(&page).unwrap().contains(canary));
    // Self-contained: the markup in a probe's name is text, no element of the page loads
    // anything, and nothing reached the listener the markup pointed at.
    assert!(
        dom.contains("&lt;img src="),
        "the name is shown as text: {dom}"
    );
    for element in ["<img", "<link", "<script", "<iframe", "<object", "<embed"] {
        assert!(!dom.contains(element), "{element} in the page: {dom}");
    }
    // Text is serialized with `&lt;`, so every `<` starts a real element.
    for tag in dom
        .split('<')
        .skip(1)
        .map(|t| t.split('>').next().unwrap_or_default())
    {
        assert!(
            !tag.contains("src=") && !tag.contains("href="),
            "an element that loads something: <{tag}>"
        );
    }
    for fetch in ["url(", "@import"] {
        assert!(!dom.contains(fetch), "{fetch} in the page: {dom}");
    }
    assert!(
        listener.accept().is_err(),
        "the page fetched from the listener its markup named"
    );
}

#[test]
fn github_step_summary_and_outputs_are_written() {
    let dir = workspace("");
    let d = dir.path();
    let summary = d.join("summary.md");
    let outputs = d.join("outputs.txt");
    std::fs::write(&summary, "# earlier step\n").unwrap();
    let out = Command::cargo_bin("staging")
        .unwrap()
        .current_dir(d)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_OUTPUT", &outputs)
        .args(["up", "--env", "staging", "--commit", C1])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("# earlier step\n"), "appended: {md}");
    assert!(md.contains("PASSED") && md.contains(C1), "{md}");
    assert!(md.contains("| deploy | passed |"), "{md}");
    let o = std::fs::read_to_string(&outputs).unwrap();
    assert!(o.contains("ok=true\n"), "{o}");
    assert!(o.contains("url-web=http://127.0.0.1:"), "{o}");
    let id = o
        .lines()
        .find_map(|l| l.strip_prefix("evidence-id="))
        .unwrap();
    assert!(!id.is_empty(), "{o}");

    // --summary names the file without GitHub.
    let own = d.join("own-summary.md");
    let out = staging_in(
        d,
        &[
            "up",
            "--env",
            "staging",
            "--commit",
            C1,
            "--summary",
            own.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(std::fs::read_to_string(&own).unwrap().contains("PASSED"));
}

// ---------------------------------------------------------------------------------------
// Imports

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/imports")
}

/// Import `file` into a fresh directory and validate the result as generated.
fn import_and_validate(file: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join(file.parent().unwrap().file_name().unwrap());
    std::fs::create_dir_all(&project).unwrap();
    let copy = project.join(file.file_name().unwrap());
    std::fs::copy(file, &copy).unwrap();
    let out = staging_in(
        &project,
        &["import", copy.to_str().unwrap(), "-o", "staging.toml"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let spec = std::fs::read_to_string(project.join("staging.toml")).unwrap();
    let out = Command::cargo_bin("staging")
        .unwrap()
        .current_dir(&project)
        .env("RENDER_API_KEY", "rnd_test_key_for_validation")
        .env("NETLIFY_AUTH_TOKEN", "nfp_test_token_for_validation")
        .env_remove("NETLIFY_SITE_NAME")
        .env_remove("URL")
        .env_remove("DEPLOY_PRIME_URL")
        .env_remove("APP_URL")
        .env_remove("STAGING_FILE")
        .arg("validate")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{} does not validate as imported:\n{}\n{spec}",
        file.display(),
        text(&out.stderr)
    );
    spec
}

#[test]
fn every_realistic_import_validates_as_generated() {
    let mut seen = 0;
    for entry in std::fs::read_dir(fixtures()).unwrap().flatten() {
        if !entry.path().is_dir() {
            continue;
        }
        for name in ["render.yaml", "netlify.toml"] {
            let file = entry.path().join(name);
            if file.exists() {
                let spec = import_and_validate(&file);
                // Every `${` left is a pipeline reference, a variable with a default, or
                // the escape of a literal one: none can be undefined.
                let code = spec
                    .lines()
                    .filter(|l| !l.trim_start().starts_with('#'))
                    .collect::<Vec<_>>()
                    .join("\n");
                for (at, _) in code.match_indices("${") {
                    let escaped = at > 0 && &code[at - 1..at] == "$";
                    let rest = &code[at + 2..];
                    let name = &rest[..rest.find(['}', ':']).unwrap_or(rest.len())];
                    assert!(
                        escaped
                            || rest[name.len()..].starts_with(":-")
                            || ["services.", "vars.", "capture."]
                                .iter()
                                .any(|ns| name.starts_with(ns))
                            || ["commit", "env", "project"].contains(&name),
                        "{}: `${{{name}` may be undefined:\n{spec}",
                        file.display()
                    );
                }
                seen += 1;
            }
        }
    }
    assert!(seen >= 7, "only {seen} fixtures");
}

#[test]
fn a_render_import_keeps_environments_apart() {
    let spec = import_and_validate(&fixtures().join("shop/render.yaml"));
    let doc: toml::Table = spec.parse().unwrap();
    // Named after the directory, not the first service.
    assert_eq!(doc["project"]["name"].as_str(), Some("shop"));
    let vars = doc["vars"].as_table().unwrap();
    // A plain value's previewValue is staging's.
    let api = vars["API_BASE_URL"]["values"].as_table().unwrap();
    assert_eq!(
        api["staging"].as_str(),
        Some("https://api-preview.shop.example.com")
    );
    assert_eq!(
        api["production"].as_str(),
        Some("https://api.shop.example.com")
    );
    // A credential written in the Blueprint is not copied into the spec, and staging's is
    // its own, checked to differ from production's.
    assert!(
        !spec.contains("sk_live") && !spec.contains("sk_test") && !spec.contains("SG."),
        "{spec}"
    );
    for key in ["STRIPE_API_KEY", "SENDGRID_API_KEY"] {
        let var = vars[key].as_table().unwrap();
        assert!(
            var.get("value").is_none() && var.get("values").is_none(),
            "{var:?}"
        );
        assert_eq!(var["secret"].as_bool(), Some(true));
        assert_eq!(
            var["sources"]["staging"]["env"].as_str(),
            Some(format!("STAGING_{key}").as_str())
        );
        assert_eq!(
            var["sources"]["production"]["env"].as_str(),
            Some(format!("PRODUCTION_{key}").as_str())
        );
        assert_eq!(var["rules"]["differs_from"].as_str(), Some("production"));
    }
    // Only the connection string is the database URL; DB_HOST is not a URL.
    assert_eq!(
        doc["databases"]["shop-db"]["url_var"].as_str(),
        Some("DATABASE_URL")
    );
    assert!(vars["DB_HOST"].get("rules").is_none(), "{spec}");
    assert_eq!(
        vars["DATABASE_URL"]["rules"]["kind"].as_str(),
        Some("url"),
        "{spec}"
    );
    // Generated and datastore secrets have a source, staging's its own datastore.
    let session = vars["SESSION_SECRET"].as_table().unwrap();
    assert_eq!(
        session["sources"]["staging"]["env"].as_str(),
        Some("STAGING_SESSION_SECRET"),
        "{spec}"
    );
    assert_eq!(
        session["rules"]["differs_from"].as_str(),
        Some("production")
    );
    assert_eq!(
        vars["DATABASE_URL"]["sources"]["staging"]["provider"].as_str(),
        Some("postgres:shop-db-staging")
    );
    assert_eq!(
        vars["REDIS_URL"]["sources"]["staging"]["provider"].as_str(),
        Some("key_value:shop-cache-staging")
    );
    // Staging deploys its own services.
    assert_eq!(
        doc["services"]["shop-web"]["overrides"]["staging"]["service_name"].as_str(),
        Some("shop-web-staging")
    );

    let blog = import_and_validate(&fixtures().join("blog/render.yaml"));
    let doc: toml::Table = blog.parse().unwrap();
    assert_eq!(doc["project"]["name"].as_str(), Some("acme-blog"));
    assert_eq!(
        doc["vars"]["ALLOWED_HOSTS"]["values"]["staging"].as_str(),
        Some("*.onrender.com")
    );
}

#[test]
fn a_render_import_takes_blueprint_text_literally_and_only_connection_strings_as_urls() {
    let spec = import_and_validate(&fixtures().join("saas/render.yaml"));
    let doc: toml::Table = spec.parse().unwrap();
    assert_eq!(doc["project"]["name"].as_str(), Some("saas"));
    let vars = doc["vars"].as_table().unwrap();
    // Render does not expand `${APP_URL}` in a Blueprint: the spec keeps it as text.
    assert_eq!(
        vars["OAUTH_CALLBACK"]["value"].as_str(),
        Some("$${APP_URL}/auth/callback"),
        "{spec}"
    );
    // A connection string is a URL whatever its name; hosts and ports are not.
    assert_eq!(
        doc["databases"]["saas-db"]["url_var"].as_str(),
        Some("DB_CONN")
    );
    assert_eq!(vars["DB_CONN"]["rules"]["kind"].as_str(), Some("url"));
    assert_eq!(vars["QUEUE_URL"]["rules"]["kind"].as_str(), Some("url"));
    assert_eq!(
        vars["QUEUE_URL"]["sources"]["staging"]["provider"].as_str(),
        Some("key_value:queue-staging")
    );
    for part in ["DB_HOST", "DB_PORT", "QUEUE_HOST", "INTERNAL_API"] {
        assert!(vars[part].get("rules").is_none(), "{part}: {spec}");
        assert!(vars[part]["sources"].get("staging").is_some(), "{part}");
    }
    // A credential in the Blueprint stays out; group secrets have sources.
    assert!(!spec.contains("ghs_"), "{spec}");
    assert!(vars["JWT_SECRET"]["sources"].get("staging").is_some());
    assert!(vars["SENTRY_DSN"]["sources"].get("staging").is_some());
    assert_eq!(vars["LOG_FORMAT"]["value"].as_str(), Some("json"));
    assert_eq!(
        vars["APP_URL"]["values"]["staging"].as_str(),
        Some("https://app-preview.saas.example")
    );
}

#[test]
fn a_netlify_import_keeps_netlify_variable_references_as_text() {
    let spec = import_and_validate(&fixtures().join("marketing/netlify.toml"));
    let doc: toml::Table = spec.parse().unwrap();
    let envs = doc["environments"].as_table().unwrap();
    assert_eq!(
        envs["staging"]["settings"]["context"].as_str(),
        Some("branch:staging")
    );
    assert_eq!(
        envs["preview"]["settings"]["context"].as_str(),
        Some("deploy-preview")
    );
    // The site's name: the variable with a default, and a comment saying to fill it in.
    assert_eq!(
        envs["staging"]["settings"]["site_name"].as_str(),
        Some("${NETLIFY_SITE_NAME:-marketing}")
    );
    assert!(spec.contains("# fill in the Netlify site's name"), "{spec}");
    let vars = doc["vars"].as_table().unwrap();
    assert_eq!(
        vars["NEXT_PUBLIC_SITE_NAME"]["value"].as_str(),
        Some("$${NETLIFY_SITE_NAME}")
    );
    assert_eq!(
        vars["NEXT_PUBLIC_SITE_URL"]["values"]["staging"].as_str(),
        Some("$${DEPLOY_PRIME_URL}")
    );
    // Per-environment values; production-only ones stay production's.
    assert_eq!(
        vars["CONTENTFUL_PREVIEW"]["values"]["staging"].as_str(),
        Some("true")
    );
    assert_eq!(
        vars["CONTENTFUL_PREVIEW"]["values"]["production"].as_str(),
        Some("false")
    );
    assert!(
        vars["NEXT_PUBLIC_ANALYTICS_ID"]["values"]
            .get("staging")
            .is_none(),
        "{spec}"
    );
}

#[test]
fn a_netlify_import_without_branch_deploys_stages_on_deploy_previews() {
    let spec = import_and_validate(&fixtures().join("docs-site/netlify.toml"));
    let doc: toml::Table = spec.parse().unwrap();
    assert_eq!(
        doc["environments"]["staging"]["settings"]["context"].as_str(),
        Some("deploy-preview")
    );
    let algolia = doc["vars"]["ALGOLIA_API_KEY"].as_table().unwrap();
    assert!(algolia["values"].get("staging").is_none(), "{spec}");
}

// ---------------------------------------------------------------------------------------
// Docs

#[test]
fn every_crate_has_a_readme_and_the_readme_documents_how_staging_fits_in() {
    for crate_dir in std::fs::read_dir(root().join("crates")).unwrap().flatten() {
        if crate_dir.path().join("Cargo.toml").exists() {
            let readme = crate_dir.path().join("README.md");
            let text = std::fs::read_to_string(&readme)
                .unwrap_or_else(|_| panic!("{} has no README.md", crate_dir.path().display()));
            assert!(text.starts_with("# "), "{}", readme.display());
        }
    }
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for said in [
        "staging completions",
        "staging man",
        "--html PATH",
        "GITHUB_STEP_SUMMARY",
        "GITHUB_OUTPUT",
        "--summary PATH",
        "nearest parent directory",
        "| 0 |",
        "| 1 |",
        "| 2 |",
        "| 3 |",
        "| 130 |",
        "| 143 |",
        "| 129 |",
        "validate --online",
    ] {
        assert!(
            readme.contains(said),
            "the README does not document `{said}`"
        );
    }
}
