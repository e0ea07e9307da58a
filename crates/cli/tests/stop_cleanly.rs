//! Commands that change an environment stop cleanly on SIGTERM and SIGINT (issue 29), with
//! the real `staging` binary: `migrate apply` (command runner), `refresh` (pg_dump) and
//! `secrets sync` (a secret store's command) leave no process running and nothing written
//! after their exit, and release the environment's lease.

mod common;
#[path = "../../provider-render/tests/support/mod.rs"]
mod render;
#[path = "common/runs.rs"]
mod runs;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{run_staging, staging_command};
use render::{Kind, stand_in};
use runs::*;

/// A workspace whose staging database's migrations are a command that starts a child of
/// its own and writes to a file every 50 ms, announcing both pids in `pids`.
fn migrating_workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        r#"[project]
name = "lease-migrate"

[environments.staging]
provider = "local"
secrets = { dotenv = "staging.env" }

[vars.DATABASE_URL]
secret = true

[databases.main]
url_var = "DATABASE_URL"
migrations = { command = ["sh", "migrate.sh"] }
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("staging.env"),
        format!(
            "DATABASE_URL=sqlite://{}\n",
            dir.path().join("app.db").display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("migrate.sh"),
        "sleep 300 &\necho $$ $! > pids.tmp && mv pids.tmp pids\nwhile :; do echo write >> writes; sleep 0.05; done\n",
    )
    .unwrap();
    dir
}

/// Stop `staging ARGS` with `sig` once its child processes announced themselves in `pids`;
/// then no process it started runs, and nothing is written after its exit.
fn stopped_leaves_nothing_running(
    dir: &Path,
    args: &[&str],
    env: &[(&str, String)],
    sig: nix::sys::signal::Signal,
    pids_file: PathBuf,
    writes_file: Option<PathBuf>,
) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = Bg::start(staging_command(dir, args, &env));
    wait_for("the child processes started", || pids_file.exists());
    if let Some(w) = &writes_file {
        wait_for("the first write", || w.exists());
    }
    run.signal(sig);
    let (code, out) = run.finish();
    let expected = if sig == nix::sys::signal::Signal::SIGINT {
        130
    } else {
        143
    };
    assert_eq!(code, Some(expected), "{out}");
    assert!(out.contains("interrupted by"), "{out}");
    let pids: Vec<i32> = std::fs::read_to_string(&pids_file)
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(!pids.is_empty());
    for pid in &pids {
        assert!(
            !running(*pid),
            "process {pid} still runs after the exit: {out}"
        );
    }
    if let Some(w) = writes_file {
        let size = std::fs::metadata(&w).unwrap().len();
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            std::fs::metadata(&w).unwrap().len(),
            size,
            "written after the exit"
        );
    }
}

#[test]
fn sigterm_and_sigint_to_migrate_apply_stop_the_migration_command_and_its_children() {
    for sig in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
    ] {
        let dir = migrating_workspace();
        stopped_leaves_nothing_running(
            dir.path(),
            &["migrate", "apply", "--env", "staging"],
            &[],
            sig,
            dir.path().join("pids"),
            Some(dir.path().join("writes")),
        );
        // And the lease went with it.
        let out = run_staging(
            dir.path(),
            &["lock", "status", "--env", "staging", "--json"],
            &[],
        );
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["lease"], serde_json::Value::Null, "{doc}");
    }
}

#[test]
fn sigterm_and_sigint_to_refresh_stop_pg_dump_and_its_children() {
    // The two databases exist on the local server: refresh identifies each by what the
    // server says before it starts the dump (an unreadable identity is refused, exit 3).
    for db in ["lease_refresh_staging", "lease_refresh_production"] {
        let out = std::process::Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"])
            .arg(format!("DROP DATABASE IF EXISTS {db}"))
            .args(["-qc", &format!("CREATE DATABASE {db}")])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for sig in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let pids = dir.path().join("pids");
        let writes = dir.path().join("writes");
        // Stand-ins for the PostgreSQL client tools: a dump that runs until stopped.
        let dump = format!(
            "#!/bin/sh\nsleep 300 &\necho $$ $! > {p}.tmp && mv {p}.tmp {p}\nwhile :; do echo dump >> {w}; sleep 0.05; done\n",
            p = pids.display(),
            w = writes.display()
        );
        for tool in ["pg_dump", "pg_restore"] {
            let path = bin.join(tool);
            std::fs::write(&path, &dump).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(
            dir.path().join("staging.toml"),
            r#"[project]
name = "lease-refresh"

[environments.staging]
provider = "local"
promotes_to = "production"
secrets = { dotenv = "staging.env" }

[environments.production]
provider = "local"
protected = true
secrets = { dotenv = "production.env" }

[vars.DATABASE_URL]
secret = true

[databases.main]
url_var = "DATABASE_URL"
"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("staging.env"),
            "DATABASE_URL=postgres://postgres@127.0.0.1:5432/lease_refresh_staging\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("production.env"),
            "DATABASE_URL=postgres://postgres@127.0.0.1:5432/lease_refresh_production\n",
        )
        .unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        stopped_leaves_nothing_running(
            dir.path(),
            &["refresh", "--env", "staging"],
            &[("PATH", path)],
            sig,
            pids,
            Some(writes),
        );
    }
}

#[test]
fn sigterm_and_sigint_to_secrets_sync_and_check_stop_the_store_command_and_write_nothing() {
    let cases = [
        ("sync", nix::sys::signal::Signal::SIGTERM),
        ("sync", nix::sys::signal::Signal::SIGINT),
        // A read-only command too: the store's command is in a group of its own, which a
        // terminal's Ctrl-C does not reach, so `staging` stops it.
        ("check", nix::sys::signal::Signal::SIGINT),
    ];
    for (n, (command, sig)) in cases.into_iter().enumerate() {
        let fake = &stand_in().fake;
        let id = fake.add_service(&format!("lease-sync-{n}"), Kind::Worker);
        let prod = fake.add_service(&format!("lease-sync-prod-{n}"), Kind::Worker);
        let dir = tempfile::tempdir().unwrap();
        render_spec(dir.path(), &id, &prod, "");
        // A secret read by a command that hangs (a vault CLI waiting on the network).
        let mut spec = std::fs::read_to_string(dir.path().join("staging.toml")).unwrap();
        spec.push_str(
            "\n[vars.API_TOKEN]\nsecret = true\nsource = { command = [\"sh\", \"vault.sh\"] }\n",
        );
        std::fs::write(dir.path().join("staging.toml"), spec).unwrap();
        std::fs::write(
            dir.path().join("vault.sh"),
            "sleep 300 &\necho $$ $! > pids.tmp && mv pids.tmp pids\nwait\n",
        )
        .unwrap();
        let before = fake.requests_for(&id).len();
        let args: &[&str] = if command == "sync" {
            &["secrets", "sync", "--env", "staging", "--apply"]
        } else {
            &["secrets", "check", "--env", "staging"]
        };
        stopped_leaves_nothing_running(
            dir.path(),
            args,
            &render_env(),
            sig,
            dir.path().join("pids"),
            None,
        );
        std::thread::sleep(Duration::from_millis(300));
        let writes: Vec<String> = fake.requests_for(&id)[before..]
            .iter()
            .filter(|r| !r.starts_with("GET "))
            .cloned()
            .collect();
        assert_eq!(writes, Vec::<String>::new(), "nothing written");
    }
}
