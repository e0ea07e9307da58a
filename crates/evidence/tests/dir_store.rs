//! The directory store: layout, listing, showing, and never overwriting.

mod common;

use std::time::{Duration, SystemTime};

use common::{evidence, sha};
use secrecy::SecretString;
use staging_core::Redactor;
use staging_evidence::{DirStore, EvidenceFilter, EvidenceStore};

#[tokio::test]
async fn two_runs_recorded_in_the_same_millisecond_both_keep_their_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::new(dir.path());
    let at = SystemTime::now();
    let e = evidence("staging", &sha('a'), "spec", None, at);
    let (x, y) = tokio::join!(store.record(&e), store.record(&e));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_ne!(x, y);
    assert!(x.starts_with(&format!("{}/staging-", sha('a'))), "{x}");
    let listing = store.list(&EvidenceFilter::new()).await.unwrap();
    assert_eq!(listing.entries.len(), 2);
    assert!(listing.entries.iter().all(|e| e.intact));
}

#[tokio::test]
async fn list_filters_by_environment_and_commit_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::new(dir.path().join("evidence"));
    let t0 = SystemTime::now() - Duration::from_secs(60);
    let old = store
        .record(&evidence("staging", &sha('a'), "s", None, t0))
        .await
        .unwrap();
    let new = store
        .record(&evidence(
            "staging",
            &sha('a'),
            "s",
            Some("smoke"),
            t0 + Duration::from_secs(30),
        ))
        .await
        .unwrap();
    store
        .record(&evidence("production", &sha('a'), "s", None, t0))
        .await
        .unwrap();
    store
        .record(&evidence("staging", &sha('b'), "s", None, t0))
        .await
        .unwrap();

    let l = store
        .list(
            &EvidenceFilter::new()
                .environment("staging")
                .commit(sha('a')),
        )
        .await
        .unwrap();
    let ids: Vec<&str> = l.entries.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, vec![new.as_str(), old.as_str()]);
    let newest = staging_evidence::latest(
        &store,
        &EvidenceFilter::new()
            .environment("staging")
            .commit(sha('a')),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(newest.id, new);
    let summary = &l.summaries()[0];
    assert!(!summary.ok);
    assert_eq!(summary.failed_step.as_deref(), Some("smoke"));

    assert_eq!(
        store
            .list(&EvidenceFilter::new())
            .await
            .unwrap()
            .entries
            .len(),
        4
    );
    assert_eq!(
        store
            .list(&EvidenceFilter::new().project("other"))
            .await
            .unwrap()
            .entries
            .len(),
        0
    );
}

#[tokio::test]
async fn show_reads_a_record_by_id_or_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::new(dir.path().join("evidence"));
    let e = evidence("staging", &sha('a'), "s", None, SystemTime::now());
    let id = store.record(&e).await.unwrap();
    assert_eq!(store.get(&id).await.unwrap().evidence, e);
    let path = store.root().join(&id);
    let by_path = store.get(path.to_str().unwrap()).await.unwrap();
    assert_eq!(by_path.evidence, e);
    assert!(store.get("nope/staging-x.json").await.is_err());
}

#[tokio::test]
async fn an_empty_or_missing_directory_lists_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::new(dir.path().join("never-created"));
    let l = store.list(&EvidenceFilter::new()).await.unwrap();
    assert!(l.entries.is_empty() && l.unreadable.is_empty());
}

#[tokio::test]
async fn a_secret_the_run_did_not_know_is_redacted_and_the_record_stays_intact() {
    let canary = "canary-value-5e4d3c2b1a";
    let dir = tempfile::tempdir().unwrap();
    let redactor = Redactor::new();
    let store = DirStore::new(dir.path()).with_redactor(redactor.clone());
    let mut e = evidence("staging", &sha('a'), "s", None, SystemTime::now());
    e.steps.push(serde_json::json!({"step": "smoke", "status": "passed", "summary": format!("token {canary}")}));
    e.content_hash = e.compute_hash();
    redactor.register(&SecretString::from(canary.to_owned()));

    let id = store.record(&e).await.unwrap();
    let text = std::fs::read_to_string(store.root().join(&id)).unwrap();
    assert!(!text.contains(canary));
    assert!(store.get(&id).await.unwrap().intact);
}

#[tokio::test]
async fn an_edited_record_is_not_laundered_by_being_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::new(dir.path());
    let mut e = evidence("staging", &sha('a'), "s", Some("smoke"), SystemTime::now());
    e.ok = true;
    let id = store.record(&e).await.unwrap();
    assert!(!store.get(&id).await.unwrap().intact);
}
