//! `scripts/test-tools.sh`, the one place the tests' stand-ins come from: it fills
//! `.tools/contracts/` (registry-published API descriptions fetched, the others copied from
//! `$STAGING_CONTRACTS_DIR` or `../shared/contracts`), fails naming what is missing, and
//! once done runs again without a registry client.
//!
//! Each run is in a scratch copy of the repository's layout (`repo/scripts/test-tools.sh`,
//! `repo/.tools/`) whose installed tools are the real ones, and with registry clients on
//! `PATH` replaced by tripwires that fail loudly: a run that needs the network here is a bug.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use staging_core::testkit::contract_path;

const FETCHED: [&str; 3] = [
    "netlify-swagger.json",
    "neon-v2.yaml",
    "railway-schema.json",
];
const COPIED: [&str; 3] = [
    "render-public-api.json",
    "supabase-management-v1.json",
    "vercel-openapi.json",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The workspace's own installed tool at `rel` (under `.tools/`).
fn installed(rel: &str) -> PathBuf {
    let p = root().join(".tools").join(rel);
    assert!(
        p.exists(),
        "{} is missing: run `bash scripts/test-tools.sh` first",
        p.display()
    );
    p
}

/// A scratch `<tmp>/repo` with the script, the real Prism, moto and junit-10.xsd, and the
/// registry-published contracts already fetched; nothing beside it (no `../shared`).
/// Returns the scratch dir and a `PATH` whose registry clients are tripwires.
fn scratch_repo() -> (tempfile::TempDir, String) {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join("scripts")).unwrap();
    std::fs::create_dir_all(repo.join(".tools/contracts")).unwrap();
    std::fs::copy(
        root().join("scripts/test-tools.sh"),
        repo.join("scripts/test-tools.sh"),
    )
    .unwrap();
    for tool in ["prism", "venv"] {
        std::os::unix::fs::symlink(installed(tool), repo.join(".tools").join(tool)).unwrap();
    }
    std::fs::copy(installed("junit-10.xsd"), repo.join(".tools/junit-10.xsd")).unwrap();
    std::fs::create_dir_all(repo.join(".tools/schemas")).unwrap();
    for schema in ["github-action.json", "github-workflow.json"] {
        let rel = format!("schemas/{schema}");
        std::fs::copy(installed(&rel), repo.join(".tools").join(&rel)).unwrap();
    }
    for file in FETCHED {
        std::fs::copy(
            installed(&format!("contracts/{file}")),
            repo.join(".tools/contracts").join(file),
        )
        .unwrap();
    }
    let trip = tmp.path().join("tripwires");
    std::fs::create_dir_all(&trip).unwrap();
    for client in ["npm", "cargo", "pip", "python3", "apt-get", "curl"] {
        let p = trip.join(client);
        std::fs::write(
            &p,
            "#!/bin/sh\necho \"tripwire: $(basename \"$0\") $*\" >&2\nexit 97\n",
        )
        .unwrap();
        let mut perm = std::fs::metadata(&p).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(&p, perm).unwrap();
    }
    let path = format!(
        "{}:{}",
        trip.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (tmp, path)
}

fn run_script(tmp: &Path, path: &str, contracts_dir: Option<&Path>) -> (Output, String) {
    let mut cmd = Command::new("bash");
    cmd.arg(tmp.join("repo/scripts/test-tools.sh"))
        .env("PATH", path)
        .env_remove("STAGING_CONTRACTS_DIR");
    if let Some(dir) = contracts_dir {
        cmd.env("STAGING_CONTRACTS_DIR", dir);
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, err)
}

#[test]
fn the_tools_script_names_each_missing_contract_and_where_it_looked() {
    let (tmp, path) = scratch_repo();
    let (out, err) = run_script(tmp.path(), &path, None);
    assert!(!out.status.success(), "{err}");
    for file in COPIED {
        assert!(err.contains(file), "{file} not named: {err}");
    }
    let shared = tmp.path().canonicalize().unwrap().join("shared/contracts");
    assert!(
        err.contains(&shared.display().to_string()) && err.contains("STAGING_CONTRACTS_DIR"),
        "where it looked: {err}"
    );
    assert!(!err.contains("tripwire"), "a registry was asked: {err}");
    // The published ones are not reported missing: they came from their registries.
    for file in FETCHED {
        assert!(!err.contains(file), "{err}");
    }
}

#[test]
fn the_tools_script_copies_unpublished_contracts_and_a_second_run_is_offline() {
    let (tmp, path) = scratch_repo();
    // A directory of descriptions as a user would point at, read-only like CI's shared/.
    let mine = tmp.path().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    for file in COPIED {
        let to = mine.join(file);
        std::fs::copy(contract_path(file), &to).unwrap();
        let mut perm = std::fs::metadata(&to).unwrap().permissions();
        perm.set_readonly(true);
        std::fs::set_permissions(&to, perm).unwrap();
    }
    for _ in 0..2 {
        let (out, err) = run_script(tmp.path(), &path, Some(&mine));
        assert!(out.status.success(), "{err}");
        assert!(!err.contains("tripwire"), "a registry was asked: {err}");
        for file in COPIED {
            let copy = tmp.path().join("repo/.tools/contracts").join(file);
            assert_eq!(
                std::fs::read(&copy).unwrap(),
                std::fs::read(mine.join(file)).unwrap(),
                "{file}"
            );
        }
    }

    // A shared copy that disagrees with a registry's is reported, and the registry's kept.
    let shared = tmp.path().join("shared/contracts");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("netlify-swagger.json"), "{}").unwrap();
    let (out, err) = run_script(tmp.path(), &path, Some(&mine));
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("netlify-swagger.json") && err.contains("differs"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(
            tmp.path()
                .join("repo/.tools/contracts/netlify-swagger.json")
        )
        .unwrap(),
        std::fs::read(installed("contracts/netlify-swagger.json")).unwrap()
    );
}

#[test]
fn the_registry_contracts_match_the_shared_copies_when_both_exist() {
    let shared = root().join("../shared/contracts");
    for file in FETCHED {
        let fetched = installed(&format!("contracts/{file}"));
        let copy = shared.join(file);
        if copy.exists() {
            assert!(
                std::fs::read(&fetched).unwrap() == std::fs::read(&copy).unwrap(),
                "{} (from its registry) and {} differ",
                fetched.display(),
                copy.display()
            );
        }
    }
}
