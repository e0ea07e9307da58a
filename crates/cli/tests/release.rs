//! Installing `staging` in CI: the Action (`action.yml`) and the release workflow are valid
//! against SchemaStore's schemas, and `scripts/install.sh` installs a working binary from a
//! release built by `scripts/package-release.sh` — only when its checksum holds.
//!
//! The schemas come from `.tools/schemas/` (filled by `scripts/test-tools.sh` from the
//! check-jsonschema wheel on PyPI), or from `$STAGING_SCHEMAS_DIR`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// SchemaStore's schema `name` (`github-action.json`, `github-workflow.json`).
fn schemastore(name: &str) -> Value {
    let dir = std::env::var_os("STAGING_SCHEMAS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".tools/schemas"));
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: run `bash scripts/test-tools.sh` first",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn schema_errors(schema: &Value, doc: &Value) -> Vec<String> {
    let validator = jsonschema::validator_for(schema).expect("a valid JSON Schema");
    validator
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

#[test]
fn the_action_is_a_valid_composite_action_exposing_the_run_s_outputs() {
    let schema = schemastore("github-action.json");
    let action = yaml(&root().join("action.yml"));
    let errors = schema_errors(&schema, &action);
    assert!(errors.is_empty(), "action.yml: {}", errors.join("\n"));
    assert_eq!(action["runs"]["using"], "composite");
    for output in ["ok", "exit-code", "evidence-id"] {
        assert!(
            action["outputs"][output]["value"].is_string(),
            "action.yml has no output `{output}`"
        );
    }
    // It installs with the checked installer, never by compiling.
    let text = std::fs::read_to_string(root().join("action.yml")).unwrap();
    assert!(text.contains("scripts/install.sh"), "{text}");
    assert!(!text.contains("cargo install"), "{text}");

    // The attack: a key the Action format does not have is caught by the same schema.
    let mut broken = action.clone();
    broken["runs"]["using"] = Value::from("composit");
    assert!(!schema_errors(&schema, &broken).is_empty(), "a typo passed");
}

#[test]
fn the_release_workflow_is_a_valid_workflow_building_every_promised_target() {
    let schema = schemastore("github-workflow.json");
    let path = root().join(".github/workflows/release.yml");
    let workflow = yaml(&path);
    let errors = schema_errors(&schema, &workflow);
    assert!(errors.is_empty(), "release.yml: {}", errors.join("\n"));
    let text = std::fs::read_to_string(&path).unwrap();
    for target in [
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
    ] {
        assert!(text.contains(target), "release.yml builds no {target}");
    }
    assert!(text.contains("scripts/package-release.sh"), "{text}");
    let mut broken = workflow.clone();
    broken["jobs"]["build"]["runs-on"] = Value::Null;
    broken["jobs"]["build"]["steps"] = Value::from("none");
    assert!(!schema_errors(&schema, &broken).is_empty());
}

fn sh(script: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg(root().join("scripts").join(script)).args(args);
    for var in [
        "STAGING_REPO",
        "STAGING_VERSION",
        "STAGING_BASE_URL",
        "STAGING_TARGET",
        "STAGING_INSTALL_DIR",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// A release directory holding this build of `staging` packaged for `target`.
fn local_release(dir: &Path, target: &str) {
    let out = sh(
        "package-release.sh",
        &[env!("CARGO_BIN_EXE_staging"), target, dir.to_str().unwrap()],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const TARGET: &str = "x86_64-unknown-linux-musl";

#[test]
fn the_install_script_installs_a_working_staging_from_a_local_release() {
    let tmp = tempfile::tempdir().unwrap();
    let dist = tmp.path().join("dist");
    local_release(&dist, TARGET);
    let sums =
        std::fs::read_to_string(dist.join(format!("staging-{TARGET}.tar.gz.sha256"))).unwrap();
    assert!(
        sums.ends_with(&format!("  staging-{TARGET}.tar.gz\n")),
        "not sha256sum's format: {sums}"
    );
    let bin = tmp.path().join("bin");
    let out = sh(
        "install.sh",
        &[
            "--base-url",
            &format!("file://{}", dist.display()),
            "--target",
            TARGET,
            "--to",
            bin.to_str().unwrap(),
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let installed = Command::new(bin.join("staging"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(installed.status.success());
    assert!(
        String::from_utf8_lossy(&installed.stdout).starts_with("staging "),
        "{installed:?}"
    );
    assert!(err.contains("installed staging"), "{err}");
}

#[test]
fn the_install_script_installs_nothing_when_the_checksum_does_not_match() {
    let tmp = tempfile::tempdir().unwrap();
    let dist = tmp.path().join("dist");
    local_release(&dist, TARGET);
    let sums = dist.join(format!("staging-{TARGET}.tar.gz.sha256"));
    let text = std::fs::read_to_string(&sums).unwrap();
    // One hex digit changed; then a checksum file that holds no checksum; then a
    // checksum in capitals of the right archive, which is still the right one.
    let first = text.chars().next().unwrap();
    let flipped = if first == '0' { '1' } else { '0' };
    for (tampered, installs) in [
        (format!("{flipped}{}", &text[1..]), false),
        (format!("not-a-sum  staging-{TARGET}.tar.gz\n"), false),
        (String::new(), false),
        (text.to_uppercase().replace("STAGING-", "staging-"), true),
    ] {
        std::fs::write(&sums, &tampered).unwrap();
        let bin = tmp.path().join("bin");
        let _ = std::fs::remove_dir_all(&bin);
        let out = sh(
            "install.sh",
            &[
                "--base-url",
                &format!("file://{}", dist.display()),
                "--target",
                TARGET,
                "--to",
                bin.to_str().unwrap(),
            ],
            &[],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        if installs {
            assert!(out.status.success(), "{tampered}: {err}");
            continue;
        }
        assert_eq!(out.status.code(), Some(1), "{tampered:?}: {err}");
        assert!(
            err.contains("checksum") || err.contains("SHA-256"),
            "{tampered:?}: {err}"
        );
        assert!(
            !bin.join("staging").exists(),
            "installed despite {tampered:?}"
        );
    }
    // A tampered archive under the original checksum is refused the same way.
    std::fs::write(&sums, &text).unwrap();
    let archive = dist.join(format!("staging-{TARGET}.tar.gz"));
    let mut bytes = std::fs::read(&archive).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&archive, bytes).unwrap();
    let bin = tmp.path().join("bin");
    let _ = std::fs::remove_dir_all(&bin);
    let out = sh(
        "install.sh",
        &[
            "--base-url",
            &format!("file://{}", dist.display()),
            "--target",
            TARGET,
            "--to",
            bin.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(!bin.join("staging").exists());
}

#[test]
fn the_install_script_refuses_bad_usage_with_exit_2() {
    for args in [
        &["--target"][..],
        &["--frobnicate"],
        // No repository and no base URL: nowhere to install from.
        &["--target", TARGET],
    ] {
        let out = sh("install.sh", args, &[]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_preview_workflow_is_a_valid_workflow_that_stands_up_and_tears_down_per_pull_request() {
    let path = root().join("docs/ci/previews.yml");
    let errors = schema_errors(&schemastore("github-workflow.json"), &yaml(&path));
    assert!(
        errors.is_empty(),
        "docs/ci/previews.yml: {}",
        errors.join("\n")
    );
    let doc = std::fs::read_to_string(&path).unwrap();
    for needed in [
        "--instance \"pr-${{ github.event.number }}\"",
        "staging up ",
        "staging down ",
        "staging gc ",
        "--yes",
        "github.event.action == 'closed'",
    ] {
        assert!(doc.contains(needed), "{needed}: {doc}");
    }
}

#[test]
fn the_ci_docs_show_the_action_and_the_installer() {
    let path = root().join("docs/ci/github-actions.yml");
    let errors = schema_errors(&schemastore("github-workflow.json"), &yaml(&path));
    assert!(errors.is_empty(), "docs/ci: {}", errors.join("\n"));
    let doc = std::fs::read_to_string(&path).unwrap();
    assert!(doc.contains("uses: "), "{doc}");
    assert!(
        doc.contains("install.sh") || doc.contains("/staging@"),
        "{doc}"
    );
    assert!(
        !doc.contains("cargo install"),
        "docs/ci still compiles: {doc}"
    );
}
