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
