//! The library facade (`staging`) and the CLI are one product: an embedder's `up` and
//! `promote` run the same pipeline, record evidence the CLI's gate accepts (and the other
//! way round), and are refused exactly where the CLI is.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

mod common;
use common::{copy_dir, run_staging, text};

/// A binary of this workspace, built once for these tests (into the same target dir).
fn built(package: &str, bin: &str) -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--locked", "-p", package])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "cargo build -p {package} failed");
    let staging = assert_cmd::cargo::cargo_bin("staging");
    staging.parent().unwrap().join(bin)
}

fn demo_app() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| built("demo-app", "demo-app"))
}

/// `examples/embed`: an external crate that uses only the facade's public API.
fn embed() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| built("staging-embed-example", "staging-embed-example"))
}

/// The demo spec (`examples/demo`) in a fresh directory, its service the built demo app.
fn demo() -> tempfile::TempDir {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&example, dir.path());
    let spec_path = dir.path().join("staging.toml");
    let text = std::fs::read_to_string(&spec_path).unwrap();
    let command = format!("command = [{:?}]", demo_app().display().to_string());
    let text = text.replace(
        r#"command = ["cargo", "run", "--quiet", "--package", "demo-app"]"#,
        &command,
    );
    assert!(
        text.contains(&command),
        "the example's command line changed; update this test"
    );
    std::fs::write(&spec_path, text).unwrap();
    dir
}

fn run_embed(dir: &Path, commit: &str, what: &str) -> std::process::Output {
    Command::new(embed())
        .arg(dir.join("staging.toml"))
        .arg(commit)
        .arg(what)
        .env_remove("STAGING_ENV")
        .env_remove("STAGING_FILE")
        .output()
        .unwrap()
}

#[test]
fn embedded_up_and_promote_and_the_cli_accept_each_others_evidence() {
    let dir = demo();
    let dir = dir.path();
    let c1 = "e1bed0000000000000000000000000000000c0de";
    let c2 = "c11000000000000000000000000000000000c0de";
    let never = "0ff0000000000000000000000000000000000000";

    // The embedder's `up` passes the whole pipeline and prints the typed report...
    let out = run_embed(dir, c1, "up");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["commit"], c1);
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    for step in [
        "isolation",
        "secrets",
        "migrate",
        "deploy",
        "wait",
        "verify",
        "smoke",
        "evidence",
    ] {
        assert!(steps.contains(&step), "no `{step}` step in {steps:?}");
    }
    // ...whose evidence the CLI's gate accepts.
    let out = run_staging(dir, &["promote", "--to", "production", "--commit", c1], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("gate: `staging` passed"),
        "{}",
        text(&out)
    );

    // The CLI's `up`, and the embedder's `promote` on its evidence.
    let out = run_staging(dir, &["up", "--env", "staging", "--commit", c2], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run_embed(dir, c2, "promote");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["environment"].as_str(), report["ok"].as_bool()),
        (Some("production"), Some(true)),
        "{report}"
    );

    // The attack: a commit nobody ran on staging is refused by both, alike.
    let embedded = run_embed(dir, never, "promote");
    let cli = run_staging(
        dir,
        &["promote", "--to", "production", "--commit", never],
        &[],
    );
    assert_eq!(embedded.status.code(), Some(1), "{}", text(&embedded));
    assert_eq!(cli.status.code(), Some(1), "{}", text(&cli));
    assert!(text(&embedded).contains("refused"), "{}", text(&embedded));
    assert!(text(&cli).contains("REFUSED"), "{}", text(&cli));
}

/// Staging's override names production's fixed port: both environments' services would be
/// one process.
const SHARED_PORT: &str = r#"[project]
name = "shop"

[environments.staging]
provider = "local"
promotes_to = "production"

[environments.production]
provider = "local"
protected = true

[services.web.overrides.staging]
command = ["true"]
port = 18080

[services.web.overrides.production]
command = ["true"]
port = 18080
"#;

#[test]
fn an_embedded_up_whose_staging_names_productions_target_is_refused_like_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("staging.toml"), SHARED_PORT).unwrap();
    let commit = "5ba2ed0000000000000000000000000000000bad";

    let cli = run_staging(
        dir.path(),
        &["up", "--env", "staging", "--commit", commit],
        &[],
    );
    assert_eq!(cli.status.code(), Some(2), "{}", text(&cli));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let refused = runtime.block_on(async {
        let session = staging::Staging::builder()
            .providers(staging::providers())
            .spec_file(dir.path().join("staging.toml"))
            .build()
            .unwrap();
        session.up("staging", commit).await
    });
    let e = refused.expect_err("an embedded up must be refused like the CLI's");
    assert_eq!(e.class(), staging::ErrorClass::Usage, "{e}");
    assert_eq!(e.class().exit_code(), 2);
    let message = e.to_string();
    assert!(
        message.contains("environment `staging`")
            && message.contains("protected environment `production`")
            && message.contains("local port port=18080")
            && message.contains("refused before any write"),
        "{message}"
    );
    // The CLI says exactly the same.
    assert!(
        text(&cli).contains(&message),
        "the CLI's refusal differs from the library's:\nlibrary: {message}\ncli: {}",
        text(&cli)
    );
    // Nothing ran: no evidence was recorded for the refused run.
    assert!(!dir.path().join(".staging/evidence").exists());
}
