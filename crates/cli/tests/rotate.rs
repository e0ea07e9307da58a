//! `staging secrets rotate` on a dotenv store, with real processes: concurrent rotations,
//! a killed rotation, a symlinked file, `--dry-run`.

use std::path::Path;
use std::process::{Child, Command as StdCommand, Output, Stdio};
use std::time::{Duration, Instant};

const KEYS: usize = 6;

fn original(i: usize) -> String {
    format!("orig-{i}-5f0c2a9e7b3d1f4a6c8e0b2d4f6a8c0e")
}

fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = String::from(
        r#"[project]
name = "rot"

[environments.staging]
provider = "local"
secrets = { dotenv = "secrets.env" }

[services.web]
health_path = "/up"
settings = { command = ["true"] }

"#,
    );
    let mut env = String::from("# rotated by the tests\nOTHER=keep me\n");
    for i in 0..KEYS {
        spec.push_str(&format!("[vars.KEY_{i}]\nsecret = true\n\n"));
        env.push_str(&format!("KEY_{i}={}\n", original(i)));
    }
    std::fs::write(dir.path().join("staging.toml"), spec).unwrap();
    std::fs::write(dir.path().join("secrets.env"), env).unwrap();
    dir
}

fn rotate(dir: &Path, key: &str, extra: &[&str]) -> StdCommand {
    let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin("staging"));
    cmd.args(["secrets", "rotate", key, "--env", "staging"])
        .args(extra)
        .arg("-f")
        .arg(dir.join("staging.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn wait_bounded(mut child: Child) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("a rotation did not finish within 60s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn values(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn value_of(path: &Path, key: &str) -> String {
    values(path)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("{key} is gone from {}", path.display()))
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("staging-tmp"))
        .collect()
}

#[test]
fn concurrent_rotations_of_different_keys_in_separate_processes_all_land() {
    let dir = workspace();
    let env = dir.path().join("secrets.env");
    for round in 0..3 {
        let before: Vec<String> = (0..KEYS)
            .map(|i| value_of(&env, &format!("KEY_{i}")))
            .collect();
        // Started together, they take turns through the environment's lease.
        let children: Vec<Child> = (0..KEYS)
            .map(|i| {
                rotate(dir.path(), &format!("KEY_{i}"), &["--wait-lock", "2m"])
                    .spawn()
                    .unwrap()
            })
            .collect();
        for (i, child) in children.into_iter().enumerate() {
            let out = wait_bounded(child);
            assert_eq!(
                out.status.code(),
                Some(0),
                "round {round}, KEY_{i}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for (i, old) in before.iter().enumerate() {
            let now = value_of(&env, &format!("KEY_{i}"));
            assert_ne!(&now, old, "round {round}: the rotation of KEY_{i} was lost");
            assert_eq!(now.len(), 64, "KEY_{i}");
        }
        assert_eq!(value_of(&env, "OTHER"), "keep me");
        assert_eq!(values(&env).len(), KEYS + 1, "an entry was duplicated");
    }
    assert!(
        temp_files(dir.path()).is_empty(),
        "{:?}",
        temp_files(dir.path())
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let lock = dir.path().join(".secrets.env.staging-lock");
        let mode = std::fs::metadata(&lock).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the lock file is {mode:o}");
    }
}

#[test]
fn rotations_wait_for_the_store_lock_and_read_the_file_only_once_they_hold_it() {
    use std::io::BufRead;
    let dir = workspace();
    let env = dir.path().join("secrets.env");
    let before = std::fs::read(&env).unwrap();
    // This test is the other writer: it holds the lock while two rotations start.
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.path().join(".secrets.env.staging-lock"))
        .unwrap();
    lock.lock().unwrap();
    let (waiting_tx, waiting_rx) = std::sync::mpsc::channel();
    let mut running = vec![];
    // One rotation holds the environment's lease and waits for the store's lock; the other
    // waits for the lease.
    for key in ["KEY_0", "KEY_1"] {
        let mut child = rotate(dir.path(), key, &["-v", "--wait-lock", "2m"])
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let tx = waiting_tx.clone();
        let reader = std::thread::spawn(move || {
            let mut seen = String::new();
            for line in std::io::BufReader::new(stderr).lines() {
                let line = line.unwrap_or_default();
                if line.contains("waiting for the lock on dotenv file secrets.env") {
                    let _ = tx.send("store");
                }
                if line.contains("for the lease of `staging`") {
                    let _ = tx.send("lease");
                }
                seen.push_str(&line);
                seen.push('\n');
            }
            seen
        });
        running.push((key, child, reader));
    }
    let mut waits: Vec<&str> = (0..2)
        .map(|_| {
            waiting_rx
                .recv_timeout(Duration::from_secs(60))
                .expect("a rotation never said it waits")
        })
        .collect();
    waits.sort();
    assert_eq!(waits, ["lease", "store"]);
    assert_eq!(
        std::fs::read(&env).unwrap(),
        before,
        "a rotation wrote without the lock"
    );
    lock.unlock().unwrap();
    for (key, child, reader) in running {
        let out = wait_bounded(child);
        let stderr = reader.join().unwrap();
        assert_eq!(out.status.code(), Some(0), "{key}: {stderr}");
        assert_ne!(
            value_of(&env, key),
            original(key[4..].parse().unwrap()),
            "{key} was lost"
        );
    }
    for i in 2..KEYS {
        assert_eq!(value_of(&env, &format!("KEY_{i}")), original(i));
    }
}

#[test]
fn a_killed_rotation_leaves_no_temporary_file_after_the_next_run() {
    let dir = workspace();
    // What a rotation killed between writing its temporary file and the rename leaves: a
    // copy of every secret of the file.
    let stale = dir.path().join(".secrets.env.staging-tmp-4242424");
    let leftover = std::fs::read_to_string(dir.path().join("secrets.env")).unwrap();
    std::fs::write(&stale, &leftover).unwrap();

    // The next run of any command that reads the store removes it: here `secrets check`.
    let mut check = StdCommand::new(assert_cmd::cargo::cargo_bin("staging"));
    check
        .args(["secrets", "check", "--env", "staging", "-f"])
        .arg(dir.path().join("staging.toml"))
        .stdin(Stdio::null());
    let out = check.output().unwrap();
    assert!(
        !stale.exists(),
        "the stale temporary file is still there after `secrets check`: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // And the next rotation, whatever a run before it left.
    std::fs::write(&stale, &leftover).unwrap();
    let out = wait_bounded(rotate(dir.path(), "KEY_2", &[]).spawn().unwrap());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stale.exists(), "the stale temporary file is still there");
    assert!(
        temp_files(dir.path()).is_empty(),
        "{:?}",
        temp_files(dir.path())
    );
    assert_ne!(
        value_of(&dir.path().join("secrets.env"), "KEY_2"),
        original(2)
    );
}

#[cfg(unix)]
#[test]
fn a_symlinked_dotenv_is_written_through_to_its_target() {
    let dir = workspace();
    let real_dir = dir.path().join("vault");
    std::fs::create_dir(&real_dir).unwrap();
    std::fs::rename(dir.path().join("secrets.env"), real_dir.join("staging.env")).unwrap();
    std::os::unix::fs::symlink("vault/staging.env", dir.path().join("secrets.env")).unwrap();

    let out = wait_bounded(rotate(dir.path(), "KEY_0", &[]).spawn().unwrap());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let link = std::fs::symlink_metadata(dir.path().join("secrets.env")).unwrap();
    assert!(
        link.file_type().is_symlink(),
        "the symlink was replaced by a file"
    );
    assert_ne!(
        value_of(&real_dir.join("staging.env"), "KEY_0"),
        original(0)
    );
    assert_eq!(
        value_of(&real_dir.join("staging.env"), "KEY_1"),
        original(1)
    );
}

#[test]
fn dry_run_shows_the_change_by_fingerprint_and_writes_nothing() {
    let dir = workspace();
    let env = dir.path().join("secrets.env");
    let before = std::fs::read(&env).unwrap();
    let out = wait_bounded(rotate(dir.path(), "KEY_3", &["--dry-run"]).spawn().unwrap());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("would rotate KEY_3"), "{stdout}");
    assert!(stdout.contains("fp:"), "the current fingerprint: {stdout}");
    assert!(!stdout.contains(&original(3)), "{stdout}");
    assert_eq!(std::fs::read(&env).unwrap(), before, "a dry run wrote");

    let out = wait_bounded(
        rotate(dir.path(), "KEY_3", &["--dry-run", "--json"])
            .spawn()
            .unwrap(),
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["dry_run"], true, "{doc}");
    assert!(
        doc["previous_fingerprint"]
            .as_str()
            .is_some_and(|f| f.starts_with("fp:")),
        "{doc}"
    );
    assert_eq!(std::fs::read(&env).unwrap(), before, "a dry run wrote");
}
