//! The Postgres store against a real server (`STAGING_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`), each test in a schema of its own, dropped
//! at the end.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use common::{evidence, sha};
use secrecy::SecretString;
use staging_evidence::{
    EvidenceFilter, EvidenceStore, GateDecision, GateRequest, PgStore, Refusal, check_gate,
};

fn url() -> SecretString {
    SecretString::from(
        std::env::var("STAGING_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
    )
}

/// A schema no other test uses; dropped when the guard goes.
struct Schema(String);

impl Schema {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        Schema(format!("evidence_test_{}_{n}_{nanos}", std::process::id()))
    }

    fn table(&self) -> String {
        format!("{}.runs", self.0)
    }

    async fn drop_it(self) {
        exec(format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.0)).await;
    }
}

async fn exec(sql: String) {
    let c = staging_postgres::connect(&url()).await.unwrap();
    c.batch_execute(&sql).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_at_once_create_the_table_once_and_both_records_are_kept() {
    let schema = Schema::new();
    let table = schema.table();
    let writer = |who: char| {
        let table = table.clone();
        tokio::spawn(async move {
            // Each writer connects on its own, as two CI runners would: both race to create
            // the table, then write.
            let store = PgStore::connect(&url(), Some(&table)).await.unwrap();
            let mut ids = vec![];
            for i in 0..10 {
                let commit = format!("{}{i:039}", who);
                let e = evidence("staging", &commit, "spec", None, SystemTime::now());
                ids.push(store.record(&e).await.unwrap());
            }
            ids
        })
    };
    let (a, b) = (writer('a'), writer('b'));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());

    let store = PgStore::connect(&url(), Some(&table)).await.unwrap();
    let listing = store
        .list(&EvidenceFilter::new().environment("staging"))
        .await
        .unwrap();
    assert_eq!(listing.entries.len(), 20);
    assert!(listing.entries.iter().all(|e| e.intact));
    let mut ids: Vec<String> = a.into_iter().chain(b).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "every write got its own id");
    schema.drop_it().await;
}

#[tokio::test]
async fn records_are_listed_by_environment_and_commit_and_read_back_by_id() {
    let schema = Schema::new();
    let store = PgStore::connect(&url(), Some(&schema.table()))
        .await
        .unwrap();
    assert_eq!(
        store.describe(),
        format!("postgres table {}", schema.table())
    );
    let a = evidence("staging", &sha('a'), "spec", None, SystemTime::now());
    let id = store.record(&a).await.unwrap();
    store
        .record(&evidence(
            "production",
            &sha('a'),
            "spec",
            None,
            SystemTime::now(),
        ))
        .await
        .unwrap();
    store
        .record(&evidence(
            "staging",
            &sha('b'),
            "spec",
            Some("smoke"),
            SystemTime::now(),
        ))
        .await
        .unwrap();

    let staging_a = store
        .list(
            &EvidenceFilter::new()
                .environment("staging")
                .commit(&sha('a')[..7]),
        )
        .await
        .unwrap();
    assert_eq!(staging_a.entries.len(), 1);
    assert_eq!(staging_a.entries[0].id, id);

    let shown = store.get(&id).await.unwrap();
    assert_eq!(
        shown.evidence, a,
        "the body reads back exactly, so its hash still matches"
    );
    assert!(shown.intact);
    assert!(store.get("999999").await.is_err());
    assert!(store.get("not-a-number").await.is_err());

    let summaries = store
        .list(&EvidenceFilter::new())
        .await
        .unwrap()
        .summaries();
    assert_eq!(summaries.len(), 3);
    assert_eq!(
        summaries
            .iter()
            .find(|s| s.commit == sha('b'))
            .unwrap()
            .failed_step
            .as_deref(),
        Some("smoke")
    );
    schema.drop_it().await;
}

#[tokio::test]
async fn a_row_edited_in_the_database_is_not_intact_and_the_gate_refuses_it() {
    let schema = Schema::new();
    let dir = tempfile::tempdir().unwrap();
    let spec = common::load(dir.path(), common::SPEC);
    let store = PgStore::connect(&url(), Some(&schema.table()))
        .await
        .unwrap();
    let id = store
        .record(&evidence(
            "staging",
            &sha('a'),
            &spec.effective_hash,
            Some("smoke"),
            SystemTime::now(),
        ))
        .await
        .unwrap();
    exec(format!(
        "UPDATE \"{}\".runs SET ok = true, body = replace(replace(body, '\"ok\": false', '\"ok\": true'), '\"failed\"', '\"passed\"') WHERE id = {id}",
        schema.0
    ))
    .await;
    assert!(!store.get(&id).await.unwrap().intact);
    let decision = check_gate(
        &store,
        &GateRequest::new(&spec, "staging", "production", &sha('a')),
    )
    .await
    .unwrap();
    assert!(
        matches!(
            decision,
            GateDecision::Refused {
                refusal: Refusal::EvidenceEdited { .. }
            }
        ),
        "{decision:?}"
    );
    schema.drop_it().await;
}

#[tokio::test]
async fn the_gate_allows_promotion_on_passing_evidence_in_postgres() {
    let schema = Schema::new();
    let dir = tempfile::tempdir().unwrap();
    let spec = common::load(dir.path(), common::SPEC);
    let store = PgStore::connect(&url(), Some(&schema.table()))
        .await
        .unwrap();
    store
        .record(&evidence(
            "staging",
            &sha('a'),
            &spec.effective_hash,
            None,
            SystemTime::now(),
        ))
        .await
        .unwrap();
    let decision = check_gate(
        &store,
        &GateRequest::new(&spec, "staging", "production", &sha('a')),
    )
    .await
    .unwrap();
    assert!(decision.is_allowed(), "{decision:?}");
    schema.drop_it().await;
}

#[tokio::test]
async fn the_spec_opens_the_postgres_store_from_a_secret_source() {
    use secrecy::ExposeSecret;
    let schema = Schema::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ci.env"),
        format!("EVIDENCE_DATABASE_URL={}\n", url().expose_secret()),
    )
    .unwrap();
    let source = common::SPEC.replace(
        "name = \"shop\"",
        &format!(
            "name = \"shop\"\nevidence_postgres_url = {{ dotenv = \"ci.env\" }}\nevidence_table = \"{}\"",
            schema.table()
        ),
    );
    let spec = common::load(dir.path(), &source);
    let store = staging_evidence::open_store(&spec).await.unwrap();
    assert_eq!(
        store.describe(),
        format!("postgres table {}", schema.table())
    );
    assert!(!format!("{store:?}").contains("postgres://"));
    schema.drop_it().await;
}

#[tokio::test]
async fn a_wrong_password_is_reported_without_the_password() {
    let url = SecretString::from("postgres://postgres:canary-pw-31337@127.0.0.1:1/test".to_owned());
    let err = PgStore::connect(&url, None).await.unwrap_err().to_string();
    assert!(!err.contains("canary-pw-31337"), "{err}");
}

#[tokio::test]
async fn a_store_whose_connection_was_ended_by_the_server_connects_again() {
    use secrecy::ExposeSecret;
    let schema = Schema::new();
    let app = format!("evidence_reconnect_{}", schema.0);
    let base = url().expose_secret().to_owned();
    let sep = if base.contains('?') { '&' } else { '?' };
    let store_url = SecretString::from(format!("{base}{sep}application_name={app}"));
    let store = PgStore::connect(&store_url, Some(&schema.table()))
        .await
        .unwrap();
    let first = store
        .record(&evidence(
            "staging",
            &sha('a'),
            "spec",
            None,
            SystemTime::now(),
        ))
        .await
        .unwrap();

    // The server ends the store's session (a restart or failover looks the same).
    let admin = staging_postgres::connect(&url()).await.unwrap();
    let ended: i64 = admin
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1) t",
            &[&app],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(ended, 1, "the store holds one connection");

    // The call that meets the dead session may fail (retryably); the store then connects
    // again instead of failing for good.
    let e = evidence("staging", &sha('b'), "spec", None, SystemTime::now());
    let second = match store.record(&e).await {
        Ok(id) => id,
        Err(err) => {
            assert!(err.is_retryable(), "{err}");
            store.record(&e).await.unwrap()
        }
    };
    assert_ne!(first, second);
    assert_eq!(
        store
            .list(&EvidenceFilter::new())
            .await
            .unwrap()
            .entries
            .len(),
        2
    );
    schema.drop_it().await;
}

/// An evidence database that accepts and never answers: opening the store fails within the
/// connect bound, naming the host and the phase, instead of hanging `up` or `promote`.
#[tokio::test]
async fn a_silent_evidence_database_fails_within_the_connect_bound() {
    let peer = staging_core::testkit::SilentPeer::start();
    let url = secrecy::SecretString::from(format!(
        "postgres://app:canary-pw@{}/db?connect_timeout=1",
        peer.addr()
    ));
    let Err(e) = staging_evidence::PgStore::connect(&url, None).await else {
        panic!("a silent server must not be accepted");
    };
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
