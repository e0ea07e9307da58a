//! The runner on its own, with probes written here.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use staging_core::{Error, Probe, ProbeOutcome, Result, async_trait};
use staging_smoke::{ProbeStatus, Runner, RunnerOptions, ScheduledProbe};

#[derive(Debug)]
enum Behaviour {
    Pass,
    CannotRun,
    Panic,
}

#[derive(Debug)]
struct Scripted {
    name: &'static str,
    behaviour: Behaviour,
    calls: AtomicU32,
}

#[async_trait]
impl Probe for Scripted {
    fn name(&self) -> &str {
        self.name
    }
    fn kind(&self) -> &str {
        "scripted"
    }
    async fn run(&self) -> Result<ProbeOutcome> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.behaviour {
            Behaviour::Pass => Ok(ProbeOutcome::pass("it runs", "it ran", Duration::ZERO)),
            Behaviour::CannotRun => Err(Error::config("the probe's URL is not a URL")),
            Behaviour::Panic => panic!("a bug in a probe"),
        }
    }
}

fn scripted(name: &'static str, behaviour: Behaviour) -> std::sync::Arc<Scripted> {
    std::sync::Arc::new(Scripted {
        name,
        behaviour,
        calls: AtomicU32::new(0),
    })
}

#[tokio::test]
async fn a_probe_that_cannot_be_set_up_fails_once_without_retries() {
    let probe = scripted("broken-spec", Behaviour::CannotRun);
    let runner = Runner::new(RunnerOptions::default());
    let report = runner
        .run(
            vec![ScheduledProbe::new(probe.clone()).with_retry_for(Duration::from_secs(60))],
            vec![],
        )
        .await;
    assert_eq!(probe.calls.load(Ordering::SeqCst), 1);
    let p = &report.probes[0];
    assert_eq!(p.status, ProbeStatus::Failed);
    assert_eq!(p.observed.as_deref(), Some("the probe's URL is not a URL"));
}

#[tokio::test]
async fn a_panicking_probe_fails_and_the_others_still_run() {
    let ok = scripted("fine", Behaviour::Pass);
    let bad = scripted("buggy", Behaviour::Panic);
    let runner = Runner::new(RunnerOptions {
        concurrency: 1,
        ..Default::default()
    });
    let report = runner
        .run(
            vec![ScheduledProbe::new(bad), ScheduledProbe::new(ok.clone())],
            vec![],
        )
        .await;
    assert_eq!(
        report.probes[0].observed.as_deref(),
        Some("the probe panicked")
    );
    assert_eq!(report.probes[1].status, ProbeStatus::Passed);
    assert_eq!(report.summary.passed, 1);
    assert_eq!(report.summary.failed, 1);
    assert_eq!(report.exit_code(), 1);
}
