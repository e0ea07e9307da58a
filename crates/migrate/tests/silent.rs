//! A database port that accepts and never answers: `apply`, `status` and `plan` fail within
//! the connect bound, naming the host and the phase, instead of waiting forever.

mod common;

use secrecy::SecretString;
use staging_core::Migration;
use staging_core::testkit::SilentPeer;
use staging_migrate::native::SqlMigrator;

#[tokio::test]
async fn migrate_against_a_silent_postgres_fails_naming_host_and_phase() {
    let peer = SilentPeer::start();
    let dir = tempfile::tempdir().unwrap();
    let migrations = dir.path().join("migrations");
    common::write(&migrations, &[("1_a.sql", "CREATE TABLE a (id int);")]);
    let url = SecretString::from(format!(
        "postgres://app:canary-pw@{}/db?sslmode=disable&connect_timeout=1",
        peer.addr()
    ));
    let m = SqlMigrator::new(url, migrations).unwrap();
    for e in [
        m.apply().await.unwrap_err(),
        m.status().await.unwrap_err(),
        m.plan().await.unwrap_err(),
    ] {
        let text = e.to_string();
        assert!(
            matches!(e, staging_core::Error::Timeout { after, .. } if after == std::time::Duration::from_secs(1)),
            "{e:?}"
        );
        assert!(
            text.contains(&peer.addr().to_string()) && text.contains("never answered"),
            "{text}"
        );
        assert!(!text.contains("canary-pw"), "{text}");
    }
}

/// The wait for another runner's lock is bounded by the lock timeout, not cut short by a
/// lower statement bound of the session (a `statement_timeout` in the URL): the error says
/// the lock was not free.
#[tokio::test]
async fn the_lock_wait_is_bounded_by_the_lock_timeout_not_the_statement_bound() {
    use sha2::Digest;
    let db = common::PgSchema::new("lockwait").await;
    let key = {
        let digest = sha2::Sha256::digest(
            format!("staging-migrate:{}.staging_migrations", db.name).as_bytes(),
        );
        i64::from_be_bytes(digest[..8].try_into().unwrap())
    };
    // Another runner holds the lock.
    let holder = db.connect().await;
    holder
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let migrations = dir.path().join("migrations");
    common::write(&migrations, &[("1_a.sql", "CREATE TABLE a (id int);")]);
    let url = SecretString::from(format!(
        "{}?options=-c%20search_path%3D{}%20-c%20statement_timeout%3D300",
        common::pg_base_url(),
        db.name
    ));
    let m = SqlMigrator::new(url, migrations)
        .unwrap()
        .lock_timeout(std::time::Duration::from_secs(1));
    let e = m.apply().await.unwrap_err();
    assert!(
        matches!(&e, staging_core::Error::Timeout { what, after } if what.contains("migration lock") && *after == std::time::Duration::from_secs(1)),
        "{e:?}"
    );
    assert!(!db.table_exists("a").await);
}
