//! Each store: what it reads, what it writes, how it fails.

mod common;

use std::time::Duration;

use common::{CANARY, secret};
use secrecy::ExposeSecret;
use staging_core::{Error, SecretStore};
use staging_secrets::{CommandStore, DotenvStore, EnvStore, FileStore};

fn exposed(v: Option<secrecy::SecretString>) -> Option<String> {
    v.map(|v| v.expose_secret().to_owned())
}

#[tokio::test]
async fn env_store_reads_process_variables_with_and_without_a_prefix() {
    // Cargo sets CARGO_PKG_NAME for the test process; tests may not set variables
    // themselves (`set_var` is unsafe and the workspace forbids unsafe code).
    let plain = EnvStore::new("");
    assert_eq!(
        exposed(plain.get("CARGO_PKG_NAME").await.unwrap()).as_deref(),
        Some("staging-secrets")
    );
    assert_eq!(
        exposed(plain.get("STAGING_TEST_SURELY_UNSET_4711").await.unwrap()),
        None
    );
    let prefixed = EnvStore::new("CARGO_PKG_");
    assert_eq!(
        exposed(prefixed.get("NAME").await.unwrap()).as_deref(),
        Some("staging-secrets")
    );
    assert!(
        prefixed
            .list(Some("NA"))
            .await
            .unwrap()
            .contains(&"NAME".to_owned())
    );
    assert_eq!(prefixed.describe(), "env:CARGO_PKG_*");
}

#[tokio::test]
async fn env_store_is_read_only() {
    let store = EnvStore::new("");
    assert!(!store.writable());
    assert!(matches!(
        store.put("X", &secret("v")).await,
        Err(Error::NotSupported { .. })
    ));
}

#[tokio::test]
async fn dotenv_store_reads_quotes_exports_comments_and_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    std::fs::write(
        &path,
        "# staging\nexport API_KEY=abc123 # inline\nQUOTED=\"line1\\nline2\"\nLITERAL='a $b \\n'\nNEWLINE=\"key\\n\"\n",
    )
    .unwrap();
    let store = DotenvStore::new(&path, ".env");
    assert_eq!(
        exposed(store.get("API_KEY").await.unwrap()).as_deref(),
        Some("abc123")
    );
    assert_eq!(
        exposed(store.get("QUOTED").await.unwrap()).as_deref(),
        Some("line1\nline2")
    );
    assert_eq!(
        exposed(store.get("LITERAL").await.unwrap()).as_deref(),
        Some("a $b \\n")
    );
    assert_eq!(
        exposed(store.get("NEWLINE").await.unwrap()).as_deref(),
        Some("key\n")
    );
    assert_eq!(exposed(store.get("ABSENT").await.unwrap()), None);
    assert_eq!(
        store.list(None).await.unwrap(),
        ["API_KEY", "LITERAL", "NEWLINE", "QUOTED"]
    );
    assert_eq!(store.describe(), "dotenv:.env");
}

#[tokio::test]
async fn dotenv_store_put_rewrites_one_key_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    std::fs::write(&path, "# keep me\nA=1\nB=old\nC=3\n").unwrap();
    let store = DotenvStore::new(&path, ".env");
    store.put("B", &secret("new value")).await.unwrap();
    store.put("D", &secret("4")).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "# keep me\nA=1\nB='new value'\nC=3\nD=4\n"
    );
    assert_eq!(
        exposed(store.get("B").await.unwrap()).as_deref(),
        Some("new value")
    );
}

#[tokio::test]
async fn a_missing_dotenv_file_has_no_keys_and_a_broken_one_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = DotenvStore::new(dir.path().join("none"), "none");
    assert_eq!(exposed(store.get("A").await.unwrap()), None);
    std::fs::write(dir.path().join("bad"), format!("A=1\nB=\"{CANARY}\n")).unwrap();
    let bad = DotenvStore::new(dir.path().join("bad"), "bad.env");
    let err = bad.get("A").await.unwrap_err().to_string();
    assert!(err.starts_with("bad.env:2: "), "{err}");
    assert!(!err.contains(CANARY));
}

#[tokio::test]
async fn file_store_returns_the_content_exactly_including_a_trailing_newline() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.txt"), "sk_live_123\n").unwrap();
    let store = FileStore::single(dir.path().join("key.txt"), "key.txt");
    assert_eq!(
        exposed(store.get("ANY").await.unwrap()).as_deref(),
        Some("sk_live_123\n")
    );
    store.put("ANY", &secret("rotated")).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("key.txt")).unwrap(),
        "rotated"
    );
    let missing = FileStore::single(dir.path().join("nope"), "nope");
    assert_eq!(exposed(missing.get("ANY").await.unwrap()), None);
}

#[tokio::test]
async fn file_store_per_key_reads_one_file_per_variable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("JWT_SECRET"), "j").unwrap();
    let store = FileStore::per_key(dir.path(), "secrets");
    assert_eq!(
        exposed(store.get("JWT_SECRET").await.unwrap()).as_deref(),
        Some("j")
    );
    assert_eq!(store.list(None).await.unwrap(), ["JWT_SECRET"]);
    assert!(store.get("../etc").await.is_err());
    let templated = FileStore::per_key(dir.path().join("{key}.txt"), "{key}.txt");
    templated.put("API", &secret("a")).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("API.txt")).unwrap(),
        "a"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn files_written_by_a_store_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    FileStore::single(dir.path().join("k"), "k")
        .put("K", &secret("v"))
        .await
        .unwrap();
    let mode = std::fs::metadata(dir.path().join("k"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "mode {mode:o}");
}

#[cfg(unix)]
/// A script run through `sh`, so that no test executes a file another test's fork may
/// still hold open for writing (ETXTBSY).
fn script(dir: &std::path::Path, name: &str, body: &str) -> Vec<String> {
    let path = dir.join(name);
    std::fs::write(&path, format!("{body}\n")).unwrap();
    vec!["sh".into(), path.to_string_lossy().into_owned()]
}

#[cfg(unix)]
#[tokio::test]
async fn command_store_returns_stdout_less_one_final_newline_and_substitutes_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path(), "get.sh", "printf 'value-of-%s\\n' \"$1\"");
    let store = CommandStore::new([s, vec!["{key}".into()]].concat()).unwrap();
    assert_eq!(
        exposed(store.get("JWT").await.unwrap()).as_deref(),
        Some("value-of-JWT")
    );
    assert_eq!(store.describe(), "command:sh");

    let two = script(dir.path(), "two.sh", "printf 'v\\n\\n'");
    let store = CommandStore::new(two).unwrap();
    assert_eq!(
        exposed(store.get("K").await.unwrap()).as_deref(),
        Some("v\n"),
        "only one newline is removed"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn command_store_runs_in_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("here.txt"), "from-dir").unwrap();
    let store = CommandStore::new(vec!["cat".into(), "here.txt".into()])
        .unwrap()
        .in_dir(dir.path());
    assert_eq!(
        exposed(store.get("K").await.unwrap()).as_deref(),
        Some("from-dir")
    );
}

#[tokio::test]
async fn command_store_fails_clearly_when_the_program_is_missing() {
    let store = CommandStore::new(vec!["staging-no-such-program-4711".into()]).unwrap();
    let err = store.get("K").await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
    assert!(
        err.to_string().contains("staging-no-such-program-4711"),
        "{err}"
    );
    assert!(err.to_string().contains("PATH"), "{err}");
}

#[cfg(unix)]
#[tokio::test]
async fn command_store_reports_a_non_zero_exit_with_redacted_stderr_and_never_stdout() {
    let dir = tempfile::tempdir().unwrap();
    staging_core::Redactor::global().register(&secret(CANARY));
    let s = script(
        dir.path(),
        "fail.sh",
        &format!(
            "echo 'stdout-secret-xyz'; echo \"token {CANARY} rejected for postgres://u:pw123@db/x\" >&2; exit 3"
        ),
    );
    let err = CommandStore::new(s)
        .unwrap()
        .get("K")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("exit code 3"), "{err}");
    assert!(err.contains("rejected"), "{err}");
    assert!(!err.contains(CANARY), "{err}");
    assert!(!err.contains("pw123"), "{err}");
    assert!(!err.contains("stdout-secret-xyz"), "{err}");
}

#[cfg(unix)]
#[tokio::test]
async fn command_store_is_bounded_by_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path(), "slow.sh", "sleep 5; echo late");
    let store = CommandStore::new(s)
        .unwrap()
        .with_timeout(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let err = store.get("K").await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn command_store_is_read_only_and_needs_a_program() {
    let store = CommandStore::new(vec!["true".into()]).unwrap();
    assert!(!store.writable());
    assert!(store.put("K", &secret("v")).await.is_err());
    assert!(CommandStore::new(vec![]).is_err());
}
