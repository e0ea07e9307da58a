//! Messages say what is wrong and where, and exit codes say what kind of wrong: a
//! mistyped dotenv path is a file that does not exist (not a value that is missing), a
//! mistyped environment gets a did-you-mean, `refresh` of a SQLite database is refused
//! before it starts (exit 2), never reported as "1 database(s) refreshed" with exit 1.

use std::path::Path;

mod common;
use common::{run_staging, text};

const C1: &str = "1111111111111111111111111111111111111111";

fn project(spec: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("staging.toml"), spec).unwrap();
    dir
}

const SECRETS: &str = r#"[project]
name = "msg"

[environments.staging]
provider = "local"
promotes_to = "production"
secrets = { dotenv = "secrets/stagng.env" }

[environments.production]
provider = "local"
protected = true
secrets = { dotenv = "secrets/production.env" }

[vars.JWT_SECRET]
secret = true
rules = { kind = "signing_key", differs_from = "production" }
"#;

#[test]
fn a_mistyped_dotenv_path_is_named_as_a_file_that_does_not_exist() {
    let dir = project(SECRETS);
    let d = dir.path();
    std::fs::create_dir_all(d.join("secrets")).unwrap();
    std::fs::write(
        d.join("secrets/staging.env"),
        "JWT_SECRET=2f9c1d7e8a4b6c3d5e7f9a1b3c5d7e9f2a4b6c8d\n",
    )
    .unwrap();
    std::fs::write(
        d.join("secrets/production.env"),
        "JWT_SECRET=9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d\n",
    )
    .unwrap();
    let out = run_staging(d, &["secrets", "check", "--env", "staging"], &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("secrets/stagng.env"), "{all}");
    assert!(
        all.contains("does not exist"),
        "the file is named missing: {all}"
    );
    // The attack: the file that exists but lacks the key is a missing value, not a file.
    std::fs::write(d.join("secrets/stagng.env"), "OTHER=1\n").unwrap();
    let out = run_staging(d, &["secrets", "check", "--env", "staging"], &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("no value"), "{all}");
    assert!(!all.contains("does not exist"), "{all}");
    assert!(
        !all.contains("2f9c1d7e8a4b6c3d"),
        "a value was shown: {all}"
    );
}

#[test]
fn a_mistyped_environment_gets_the_closest_declared_name() {
    let dir = project(SECRETS);
    for (given, hint) in [
        ("stagng", Some("staging")),
        ("Staging", Some("staging")),
        ("prodution", Some("production")),
        // Nothing close: no guess, the declared names only.
        ("qa", None),
    ] {
        for args in [
            &["up", "--env", given, "--commit", C1][..],
            &["secrets", "check", "--env", given],
            &["validate", "--env", given],
        ] {
            let out = run_staging(dir.path(), args, &[]);
            let all = text(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {all}");
            assert!(all.contains(&format!("no environment `{given}`")), "{all}");
            match hint {
                Some(h) => assert!(all.contains(&format!("did you mean `{h}`?")), "{all}"),
                None => assert!(!all.contains("did you mean"), "{all}"),
            }
            assert!(all.contains("declared: production, staging"), "{all}");
        }
    }
}

const SQLITE: &str = r#"[project]
name = "lite"

[environments.staging]
provider = "local"
promotes_to = "production"

[environments.production]
provider = "local"
protected = true

[vars.DATABASE_URL]
value = "sqlite://${env}.db"

[databases.main]
url_var = "DATABASE_URL"
"#;

#[test]
fn refresh_of_a_sqlite_database_is_refused_before_it_starts() {
    let dir = project(SQLITE);
    let d = dir.path();
    std::fs::write(d.join("staging.db"), "staging bytes").unwrap();
    std::fs::write(d.join("production.db"), "production bytes").unwrap();
    let out = run_staging(d, &["refresh", "--env", "staging"], &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("Postgres databases only"), "{all}");
    assert!(all.contains("`sqlite:`"), "{all}");
    assert!(all.contains("staging.toml:"), "where: {all}");
    assert!(!all.contains("refreshed"), "{all}");
    assert_eq!(
        read(d, "staging.db"),
        "staging bytes",
        "nothing was written"
    );
    assert!(
        !d.join(".staging").join("evidence").exists(),
        "nothing was recorded"
    );
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap()
}

/// A local service that says one line on start, then answers every GET with 200.
const CHATTY: &str = r#"
import http.server, os, sys
print("chatty-service-started", flush=True)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

#[test]
fn rust_log_selects_a_local_service_s_output_by_its_crate_name() {
    let dir = project(
        r#"[project]
name = "chat"

[environments.staging]
provider = "local"

[services.web]
health_path = "/"
settings = { command = ["python3", "chatty.py"], stop_timeout = "2s" }
"#,
    );
    std::fs::write(dir.path().join("chatty.py"), CHATTY).unwrap();
    let run = |filter: &str| {
        let out = common::staging_command(dir.path(), &["up", "--commit", C1], &[])
            .current_dir(dir.path())
            .env("RUST_LOG", filter)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let log = run("staging_provider_local=debug");
    assert!(log.contains("chatty-service-started"), "{log}");
    assert!(log.contains("staging_provider_local"), "{log}");
    // The attack: another crate's name selects none of it.
    let log = run("staging_core=debug");
    assert!(!log.contains("chatty-service-started"), "{log}");
}

/// The bash completion script's case for one subcommand (`import`).
fn bash_case<'a>(script: &'a str, subcommand: &str) -> &'a str {
    let case = format!("\n        staging__subcmd__{subcommand})");
    let start = script
        .find(&case)
        .unwrap_or_else(|| panic!("no {case} in the script"));
    let rest = &script[start + case.len()..];
    &rest[..rest.find("\n        staging__").unwrap_or(rest.len())]
}

#[test]
fn completions_offer_no_file_names_for_an_environment_and_no_spec_options_to_import() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_staging(dir.path(), &["completions", "bash"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let script = String::from_utf8_lossy(&out.stdout).into_owned();
    let up = bash_case(&script, "up");
    // `--env` takes the word as typed; `--file` and `--junit` complete paths.
    let env = &up[up.find("--env)").expect("--env in up")..];
    let env = &env[..env.find(";;").unwrap()];
    assert!(
        !env.contains("compgen -f"),
        "--env completes file names: {env}"
    );
    let file = &up[up.find("--file)").expect("--file in up")..];
    let file = &file[..file.find(";;").unwrap()];
    assert!(file.contains("compgen -f"), "{file}");
    let import = bash_case(&script, "import");
    let opts = import.lines().find(|l| l.contains("opts=")).unwrap();
    for option in ["--env", "--file", " -f ", " -e "] {
        assert!(!opts.contains(option), "import offers {option}: {opts}");
    }
    assert!(opts.contains("--output"), "{opts}");
    // `--help` of import does not list them either; `up`'s does.
    let help = run_staging(dir.path(), &["import", "--help"], &[]);
    assert!(!text(&help).contains("--env"), "{}", text(&help));
    let help = run_staging(dir.path(), &["up", "--help"], &[]);
    assert!(text(&help).contains("--env"), "{}", text(&help));
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_staging(dir.path(), &["--version"], &[]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.starts_with("staging 0."), "{said}");
    let commit = said
        .split("(commit ")
        .nth(1)
        .and_then(|c| c.strip_suffix(")\n"))
        .unwrap_or_else(|| panic!("no commit: {said}"));
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{said}"
    );
}
