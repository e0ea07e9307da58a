//! The directory store under faults: a full disk leaves no half record and the next run
//! recovers; FIFOs, devices, links out of the store and oversized files are refused at
//! once, with the reason, and never hang or fill memory.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use common::{SPEC, evidence, load, sha};
use staging_evidence::{
    DirStore, EvidenceFilter, EvidenceStore, GateDecision, GateRequest, Refusal, check_gate,
};

/// A tmpfs of `size` mounted at `dir`, unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> Result<Self, String> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(SmallDisk(dir.to_owned()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fill the filesystem of `dir` with one file until it refuses a byte more.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = [0u8; 4096];
    loop {
        if let Err(e) = f.write_all(&chunk) {
            assert_eq!(e.raw_os_error(), Some(28), "expected ENOSPC, got {e}");
            break;
        }
    }
    // Single bytes until nothing fits at all.
    while f.write_all(&[0]).is_ok() {}
    filler
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

#[tokio::test]
async fn a_full_disk_leaves_no_record_and_the_next_run_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let spec = load(dir.path(), SPEC);
    let root = dir.path().join(".staging/evidence");
    // A real full filesystem when this machine lets a test mount one (root in CI); the
    // same failure injected into the writer is covered by staging-core's `files` tests.
    let disk = match SmallDisk::mount(&root, "256k") {
        Ok(d) => d,
        Err(why) => {
            eprintln!("cannot mount a tmpfs here ({why}); the injected ENOSPC test covers this");
            return;
        }
    };
    let commit_dir = root.join(sha('a'));
    std::fs::create_dir_all(&commit_dir).unwrap();
    let filler = fill(&root);
    let store = DirStore::new(&root);
    let request = GateRequest::new(&spec, "staging", "production", &sha('a'));

    let ev = evidence(
        "staging",
        &sha('a'),
        &spec.effective_hash,
        None,
        SystemTime::now(),
    );
    let e = store.record(&ev).await.unwrap_err().to_string();
    assert!(
        e.contains("cannot write") && e.contains("No space left"),
        "{e}"
    );
    assert_eq!(
        files_under(&root),
        [filler.display().to_string()],
        "a failed write leaves no record and no temporary file"
    );
    let listing = store.list(&EvidenceFilter::new()).await.unwrap();
    assert!(listing.entries.is_empty() && listing.unreadable.is_empty());

    // Space is freed, staging passes again: the gate takes the new record at once.
    std::fs::remove_file(&filler).unwrap();
    let ev = evidence(
        "staging",
        &sha('a'),
        &spec.effective_hash,
        None,
        SystemTime::now(),
    );
    let id = store.record(&ev).await.unwrap();
    match check_gate(&store, &request).await.unwrap() {
        GateDecision::Allowed { evidence } => assert_eq!(evidence.id, id),
        other => panic!("refused after recovery: {other:?}"),
    }
    drop(disk);
}

#[tokio::test]
async fn leftovers_of_an_interrupted_write_never_block_a_later_run() {
    let dir = tempfile::tempdir().unwrap();
    let spec = load(dir.path(), SPEC);
    let root = dir.path().join(".staging/evidence");
    let commit_dir = root.join(sha('a'));
    std::fs::create_dir_all(&commit_dir).unwrap();
    // What a full disk left behind before writes were atomic, and what a crash mid-write
    // leaves now: an empty record and a temporary file.
    std::fs::write(
        commit_dir.join("staging-2026-01-01T00-00-00-000Z.json"),
        b"",
    )
    .unwrap();
    std::fs::write(
        commit_dir.join(".staging-2026-01-01T00-00-01-000Z.json.4242.0.tmp"),
        b"{\"project\":",
    )
    .unwrap();
    let store = DirStore::new(&root);
    let listing = store.list(&EvidenceFilter::new()).await.unwrap();
    assert!(listing.unreadable.is_empty(), "{:?}", listing.unreadable);

    let ev = evidence(
        "staging",
        &sha('a'),
        &spec.effective_hash,
        None,
        SystemTime::now(),
    );
    store.record(&ev).await.unwrap();
    let decision = check_gate(
        &store,
        &GateRequest::new(&spec, "staging", "production", &sha('a')),
    )
    .await
    .unwrap();
    assert!(decision.is_allowed(), "{decision:?}");
}

/// A store with one good record of commit `a`, and `plant` put next to it.
async fn store_with(
    plant: impl FnOnce(&Path, &Path),
) -> (tempfile::TempDir, DirStore, GateRequest) {
    let dir = tempfile::tempdir().unwrap();
    let spec = load(dir.path(), SPEC);
    let root = dir.path().join(".staging/evidence");
    let store = DirStore::new(&root);
    let ev = evidence(
        "staging",
        &sha('a'),
        &spec.effective_hash,
        None,
        SystemTime::now() - Duration::from_secs(5),
    );
    store.record(&ev).await.unwrap();
    plant(&root.join(sha('a')), dir.path());
    let request = GateRequest::new(&spec, "staging", "production", &sha('a'));
    (dir, store, request)
}

/// The gate's refusal as unreadable evidence, within two seconds, and its reasons.
async fn refused_quickly(store: &DirStore, request: &GateRequest) -> String {
    let started = Instant::now();
    let decision = tokio::time::timeout(Duration::from_secs(10), check_gate(store, request))
        .await
        .expect("the gate must not hang")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    match decision.refusal() {
        Some(r @ Refusal::EvidenceUnreadable { .. }) => {
            let listing = store.list(&EvidenceFilter::new()).await.unwrap();
            let reasons: Vec<String> = listing
                .unreadable
                .iter()
                .map(|u| format!("{}: {}", u.id, u.reason))
                .collect();
            format!("{r} | {}", reasons.join(" | "))
        }
        other => panic!("expected evidence_unreadable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_fifo_in_the_store_is_refused_at_once() {
    let (_d, store, request) = store_with(|commit_dir, _| {
        let fifo = commit_dir.join("staging-2099-01-01T00-00-00-000Z.json");
        assert!(
            Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
    })
    .await;
    let why = refused_quickly(&store, &request).await;
    assert!(why.contains("is a FIFO, not a regular file"), "{why}");
    let id = format!("{}/staging-2099-01-01T00-00-00-000Z.json", sha('a'));
    let e = store.get(&id).await.unwrap_err().to_string();
    assert!(e.contains("is a FIFO"), "{e}");
}

#[tokio::test]
async fn a_link_to_dev_zero_is_refused_without_reading_it() {
    let (_d, store, request) = store_with(|commit_dir, _| {
        std::os::unix::fs::symlink(
            "/dev/zero",
            commit_dir.join("staging-2099-01-01T00-00-00-000Z.json"),
        )
        .unwrap();
    })
    .await;
    let why = refused_quickly(&store, &request).await;
    assert!(why.contains("outside"), "{why}");
}

#[tokio::test]
async fn a_link_leaving_the_store_is_refused_even_to_a_valid_record() {
    let (_d, store, request) = store_with(|commit_dir, top| {
        // A genuine record, kept outside the store and linked in.
        let real = std::fs::read_dir(commit_dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let outside = top.join("elsewhere.json");
        std::fs::copy(&real, &outside).unwrap();
        std::os::unix::fs::symlink(
            &outside,
            commit_dir.join("staging-2099-01-01T00-00-00-000Z.json"),
        )
        .unwrap();
    })
    .await;
    let why = refused_quickly(&store, &request).await;
    assert!(why.contains("outside"), "{why}");
}

#[tokio::test]
async fn an_oversized_record_is_refused_by_its_size() {
    let (_d, store, request) = store_with(|commit_dir, _| {
        let f = std::fs::File::create(commit_dir.join("staging-2099-01-01T00-00-00-000Z.json"))
            .unwrap();
        // Sparse: 64 MiB on paper, nothing on disk.
        f.set_len(64 << 20).unwrap();
    })
    .await;
    let why = refused_quickly(&store, &request).await;
    assert!(why.contains("larger than 16 MiB"), "{why}");
}
