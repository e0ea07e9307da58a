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
