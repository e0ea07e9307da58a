//! The environment lease in both stores: a directory (lock file) and Postgres (a row under an
//! advisory lock, with a log of every holder), against the real filesystem and a real
//! server (`STAGING_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`),
//! each Postgres test in a schema of its own.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use common::{evidence, sha};
use secrecy::SecretString;
use staging_core::Error;
use staging_evidence::lease::{self, Attempt};
use staging_evidence::{
    DirStore, DynEvidenceStore, EvidenceFilter, EvidenceStore, LeaseHolder, LeaseOptions, PgStore,
};

fn url() -> SecretString {
    SecretString::from(
        std::env::var("STAGING_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
    )
}

fn schema() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "lease_test_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

async fn drop_schema(name: &str) {
    let c = staging_postgres::connect(&url()).await.unwrap();
    c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
        .await
        .unwrap();
}

fn holder(env: &str, commit: char) -> LeaseHolder {
    LeaseHolder::this_process("shop", env, "up", Some(sha(commit)))
}

fn at_once(ttl: Duration) -> LeaseOptions {
    LeaseOptions {
        ttl,
        wait: Duration::ZERO,
        poll: Duration::from_millis(20),
    }
}

fn waiting(ttl: Duration, wait: Duration) -> LeaseOptions {
    LeaseOptions {
        ttl,
        wait,
        poll: Duration::from_millis(20),
    }
}

/// The stores a test runs against: a fresh directory and a fresh Postgres schema.
async fn stores() -> (Vec<DynEvidenceStore>, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let name = schema();
    let pg = PgStore::connect(&url(), Some(&format!("{name}.runs")))
        .await
        .unwrap();
    let stores: Vec<DynEvidenceStore> = vec![
        Arc::new(DirStore::new(dir.path().join("evidence"))),
        Arc::new(pg),
    ];
    (stores, dir, name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_is_refused_at_once_naming_the_holder_and_gets_it_once_released() {
    let (stores, _dir, name) = stores().await;
    for store in stores {
        let first = lease::acquire(
            store.clone(),
            holder("staging", 'a'),
            at_once(Duration::from_secs(60)),
            |_| {},
        )
        .await
        .unwrap();
        let run = first.holder().run_id.clone();

        let mut seen = vec![];
        let e = lease::acquire(
            store.clone(),
            holder("staging", 'b'),
            at_once(Duration::from_secs(60)),
            |r| seen.push(r.clone()),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, Error::Locked { .. }), "{e:?}");
        assert_eq!(e.class().exit_code(), 3);
        let text = e.to_string();
        for part in [
            run.as_str(),
            "`up` of commit aaaaaaaaaaaa",
            &lease::this_host(),
            &format!("pid {}", std::process::id()),
            " since ",
            "--wait-lock",
        ] {
            assert!(text.contains(part), "{part} missing: {text}");
        }
        // Another environment is another lease.
        let other = lease::acquire(
            store.clone(),
            holder("preview", 'b'),
            at_once(Duration::from_secs(60)),
            |_| {},
        )
        .await
        .unwrap();
        other.release().await.unwrap();

        let shown = store
            .leases()
            .current("shop", "staging")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(shown.holder.run_id, run, "{}", store.describe());
        assert!(!shown.stale);

        first.release().await.unwrap();
        assert_eq!(
            store.leases().current("shop", "staging").await.unwrap(),
            None,
            "released at once in {}",
            store.describe()
        );
        let second = lease::acquire(
            store.clone(),
            holder("staging", 'b'),
            at_once(Duration::from_secs(60)),
            |_| {},
        )
        .await
        .unwrap();
        second.release().await.unwrap();
    }
    drop_schema(&name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_run_takes_the_lease_when_the_holder_releases_it() {
    let (stores, _dir, name) = stores().await;
    for store in stores {
        let first = lease::acquire(
            store.clone(),
            holder("staging", 'a'),
            at_once(Duration::from_secs(60)),
            |_| {},
        )
        .await
        .unwrap();
        let (told, mut waiting_seen) = tokio::sync::mpsc::unbounded_channel();
        let waiter = tokio::spawn({
            let store = store.clone();
            async move {
                lease::acquire(
                    store,
                    holder("staging", 'b'),
                    waiting(Duration::from_secs(60), Duration::from_secs(120)),
                    move |r| {
                        let _ = told.send(r.holder.run_id.clone());
                    },
                )
                .await
            }
        });
        // The waiter has found the first run holding it before the first lets go.
        let named = waiting_seen.recv().await.unwrap();
        assert_eq!(named, first.holder().run_id);
        assert!(!waiter.is_finished());
        first.release().await.unwrap();
        let second = waiter.await.unwrap().unwrap();
        assert_eq!(
            store
                .leases()
                .current("shop", "staging")
                .await
                .unwrap()
                .unwrap()
                .holder
                .run_id,
            second.holder().run_id
        );
        second.release().await.unwrap();
    }
    drop_schema(&name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_taken_over_and_its_holder_learns_it_lost_it() {
    let (stores, _dir, name) = stores().await;
    for store in stores {
        // A holder that stopped renewing (crashed, hung): its lease is stale after its time
        // to live, and the next run takes it without waiting.
        let crashed = holder("staging", 'a');
        let taken = store
            .leases()
            .try_acquire(&crashed, Duration::from_millis(300))
            .await
            .unwrap();
        assert!(matches!(taken, Attempt::Taken(_)), "{taken:?}");
        let held = store
            .leases()
            .try_acquire(&holder("staging", 'b'), Duration::from_secs(60))
            .await
            .unwrap();
        assert!(matches!(held, Attempt::Held(_)), "{held:?}");
        tokio::time::sleep(Duration::from_millis(600)).await;
        let stale = store
            .leases()
            .current("shop", "staging")
            .await
            .unwrap()
            .unwrap();
        assert!(stale.stale, "{stale:?}");
        let next = lease::acquire(
            store.clone(),
            holder("staging", 'b'),
            at_once(Duration::from_secs(60)),
            |_| {},
        )
        .await
        .unwrap();
        // The crashed run, come back, finds the lease no longer its own.
        assert_eq!(
            store
                .leases()
                .renew(&crashed, Duration::from_secs(60))
                .await
                .unwrap(),
            None
        );
        assert!(!store.leases().release(&crashed).await.unwrap());
        assert_eq!(
            store
                .leases()
                .current("shop", "staging")
                .await
                .unwrap()
                .unwrap()
                .holder
                .run_id,
            next.holder().run_id,
            "a late release by the old holder leaves the new one's lease"
        );
        next.release().await.unwrap();
    }
    drop_schema(&name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_renewed_while_the_run_lasts_outlives_its_time_to_live() {
    let (stores, _dir, name) = stores().await;
    for store in stores {
        let ttl = Duration::from_millis(600);
        let held = lease::acquire(store.clone(), holder("staging", 'a'), at_once(ttl), |_| {})
            .await
            .unwrap();
        // Three times its time to live: only renewal keeps it.
        tokio::time::sleep(ttl * 3).await;
        let e = lease::acquire(store.clone(), holder("staging", 'b'), at_once(ttl), |_| {})
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Locked { .. }), "{e:?}");
        held.release().await.unwrap();
    }
    drop_schema(&name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_released_by_force_tells_its_holder_it_is_lost() {
    let (stores, _dir, name) = stores().await;
    for store in stores {
        let mut held = lease::acquire(
            store.clone(),
            holder("staging", 'a'),
            at_once(Duration::from_millis(300)),
            |_| {},
        )
        .await
        .unwrap();
        let removed = store
            .leases()
            .force_release("shop", "staging", "ops@laptop")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(removed.holder.run_id, held.holder().run_id);
        let why = tokio::time::timeout(Duration::from_secs(30), held.lost())
            .await
            .expect("the holder learns at its next renewal");
        assert!(why.contains("no longer this run's"), "{why}");
        // Nothing left to force.
        assert_eq!(
            store
                .leases()
                .force_release("shop", "staging", "ops@laptop")
                .await
                .unwrap(),
            None
        );
        held.release().await.unwrap();
    }
    drop_schema(&name).await;
}

#[tokio::test]
async fn a_lock_file_of_a_process_of_this_host_that_is_gone_is_taken_over_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store: DynEvidenceStore = Arc::new(DirStore::new(dir.path()));
    // A process that ran here and is gone (SIGKILL): its lease has an hour to go.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let mut gone = holder("staging", 'a');
    gone.pid = dead;
    let taken = store
        .leases()
        .try_acquire(&gone, Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(matches!(taken, Attempt::Taken(_)));
    let found = store
        .leases()
        .current("shop", "staging")
        .await
        .unwrap()
        .unwrap();
    assert!(found.stale, "{found:?}");
    let next = lease::acquire(
        store.clone(),
        holder("staging", 'b'),
        at_once(Duration::from_secs(60)),
        |_| {},
    )
    .await
    .unwrap();
    next.release().await.unwrap();

    // The same on another host is not judged by pid: only expiry frees it.
    let mut elsewhere = holder("staging", 'a');
    elsewhere.pid = dead;
    elsewhere.host = "another-runner".to_owned();
    store
        .leases()
        .try_acquire(&elsewhere, Duration::from_secs(3600))
        .await
        .unwrap();
    let e = lease::acquire(
        store.clone(),
        holder("staging", 'b'),
        at_once(Duration::from_secs(60)),
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("another-runner"), "{e}");
}

#[tokio::test]
async fn an_unreadable_lock_file_refuses_until_released_by_force() {
    let dir = tempfile::tempdir().unwrap();
    let store: DynEvidenceStore = Arc::new(DirStore::new(dir.path()));
    std::fs::create_dir_all(dir.path().join(".leases")).unwrap();
    std::fs::write(dir.path().join(".leases/shop.staging.lock"), "{ not json").unwrap();
    let e = lease::acquire(
        store.clone(),
        holder("staging", 'a'),
        at_once(Duration::from_secs(60)),
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Error::Locked { .. }), "{e:?}");
    assert!(e.to_string().contains("--force"), "{e}");
    store
        .leases()
        .force_release("shop", "staging", "ops@laptop")
        .await
        .unwrap();
    lease::acquire(
        store.clone(),
        holder("staging", 'a'),
        at_once(Duration::from_secs(60)),
        |_| {},
    )
    .await
    .unwrap()
    .release()
    .await
    .unwrap();
    // The lock files never show up as evidence.
    let listing = store.list(&EvidenceFilter::new()).await.unwrap();
    assert!(listing.entries.is_empty() && listing.unreadable.is_empty());
}

/// Ten runners, each with its own connection as separate CI machines would have, all asking
/// for one environment at once: the log shows one holder at a time (each `acquired` followed
/// by that run's `released` before the next `acquired`), and every run's evidence is there,
/// intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_runners_at_once_hold_the_lease_one_at_a_time_by_the_log() {
    let name = schema();
    let table = format!("{name}.runs");
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let runners: Vec<_> = (0..10)
        .map(|i| {
            let (table, inside, most) = (table.clone(), inside.clone(), most.clone());
            tokio::spawn(async move {
                let store: DynEvidenceStore =
                    Arc::new(PgStore::connect(&url(), Some(&table)).await.unwrap());
                let commit = format!("{i:040}");
                let held = lease::acquire(
                    store.clone(),
                    LeaseHolder::this_process("shop", "staging", "up", Some(commit.clone())),
                    waiting(Duration::from_secs(60), Duration::from_secs(120)),
                    |_| {},
                )
                .await
                .unwrap();
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
                let e = evidence("staging", &commit, "spec", None, SystemTime::now());
                store.record(&e).await.unwrap();
                inside.fetch_sub(1, Ordering::SeqCst);
                let run = held.holder().run_id.clone();
                held.release().await.unwrap();
                run
            })
        })
        .collect();
    let mut runs = vec![];
    for r in runners {
        runs.push(r.await.unwrap());
    }
    assert_eq!(most.load(Ordering::SeqCst), 1, "two runs held it at once");

    let store = PgStore::connect(&url(), Some(&table)).await.unwrap();
    let log = store.lease_log("shop", "staging").await.unwrap();
    assert_eq!(log.len(), 20, "{log:#?}");
    for pair in log.chunks(2) {
        assert_eq!(pair[0].event, "acquired", "{log:#?}");
        assert_eq!(pair[1].event, "released", "{log:#?}");
        assert_eq!(pair[0].run_id, pair[1].run_id, "{log:#?}");
    }
    let mut logged: Vec<String> = log.iter().map(|e| e.run_id.clone()).collect();
    logged.dedup();
    logged.sort();
    runs.sort();
    assert_eq!(logged, runs);

    let listing = store
        .list(&EvidenceFilter::new().environment("staging"))
        .await
        .unwrap();
    assert_eq!(listing.entries.len(), 10);
    assert!(listing.entries.iter().all(|e| e.intact));
    assert!(listing.unreadable.is_empty());
    drop_schema(&name).await;
}

#[tokio::test]
async fn the_postgres_store_records_its_schema_versions_and_refuses_a_newer_one() {
    let name = schema();
    let table = format!("{name}.runs");
    PgStore::connect(&url(), Some(&table)).await.unwrap();
    // Connecting again applies nothing twice.
    PgStore::connect(&url(), Some(&table)).await.unwrap();
    let c = staging_postgres::connect(&url()).await.unwrap();
    let rows = c
        .query(
            &format!("SELECT version FROM \"{name}\".\"runs_schema\" ORDER BY version"),
            &[],
        )
        .await
        .unwrap();
    let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    let known: Vec<i32> = staging_evidence::SCHEMA_MIGRATIONS
        .iter()
        .map(|(v, _)| *v)
        .collect();
    assert_eq!(versions, known);

    c.batch_execute(&format!(
        "INSERT INTO \"{name}\".\"runs_schema\" (version, description) VALUES (99, 'from the future')"
    ))
    .await
    .unwrap();
    let e = PgStore::connect(&url(), Some(&table)).await.unwrap_err();
    assert!(e.to_string().contains("newer staging"), "{e}");
    drop_schema(&name).await;
}

#[tokio::test]
async fn a_store_created_before_schema_versions_is_migrated_in_place() {
    let name = schema();
    let c = staging_postgres::connect(&url()).await.unwrap();
    // The table as every earlier release created it, with a record in it.
    c.batch_execute(&format!(
        "CREATE SCHEMA \"{name}\";
         CREATE TABLE \"{name}\".\"runs\" (
            id BIGSERIAL PRIMARY KEY, project TEXT NOT NULL, environment TEXT NOT NULL,
            commit_sha TEXT NOT NULL, spec_hash TEXT NOT NULL, ok BOOLEAN NOT NULL,
            recorded_at TEXT NOT NULL, content_hash TEXT NOT NULL, body TEXT NOT NULL,
            inserted_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    ))
    .await
    .unwrap();
    let store = PgStore::connect(&url(), Some(&format!("{name}.runs")))
        .await
        .unwrap();
    let id = store
        .record(&evidence(
            "staging",
            &sha('a'),
            "spec",
            None,
            SystemTime::now(),
        ))
        .await
        .unwrap();
    assert!(store.get(&id).await.unwrap().intact);
    let held = lease::acquire(
        Arc::new(store),
        holder("staging", 'a'),
        at_once(Duration::from_secs(60)),
        |_| {},
    )
    .await
    .unwrap();
    held.release().await.unwrap();
    drop_schema(&name).await;
}
