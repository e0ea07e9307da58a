//! An interrupted run cancels the deploys it asked for from the moment each request was sent
//! (`pipeline::cancel_sent`): the deploy step records a request before sending it, so a run
//! dropped while the answer is on its way still cancels the deploy, read back by its commit;
//! and nothing is canceled that cannot be shown to be the run's own. Time is paused: the
//! read-back's bound passes without waiting.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use staging_core::pipeline::{
    CancelOutcome, DeployStep, RunContext, SentDeploy, Step, cancel_sent,
};
use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_core::{
    Cancel, Capabilities, Deploy, DeployKinds, DeployRequest, DeployStatus, Identity, LiveState,
    Provider, Result, ServiceHandle, WriteTarget, async_trait,
};

const COMMIT: &str = "1111111111111111111111111111111111111111";
const OTHER: &str = "2222222222222222222222222222222222222222";

/// A platform whose deploy request lands (the deploy is listed) but whose answer never
/// comes, when `hang` is set.
#[derive(Debug, Default)]
struct Platform {
    hang: bool,
    /// Every read times out.
    silent: bool,
    /// Newest last.
    deploys: Mutex<Vec<Deploy>>,
    canceled: Mutex<Vec<String>>,
    reads: Mutex<usize>,
}

fn deploy(id: &str, commit: &str, status: DeployStatus) -> Deploy {
    Deploy {
        id: id.to_owned(),
        status,
        commit: Some(commit.to_owned()),
        image: None,
        raw_status: status.to_string(),
    }
}

impl Platform {
    fn with(deploys: Vec<Deploy>) -> Arc<Platform> {
        Arc::new(Platform {
            deploys: Mutex::new(deploys),
            ..Platform::default()
        })
    }

    fn canceled(&self) -> Vec<String> {
        self.canceled.lock().unwrap().clone()
    }
}

#[async_trait]
impl Provider for Platform {
    fn name(&self) -> &str {
        "fake"
    }
    fn capabilities(&self) -> Capabilities<'_> {
        Capabilities {
            cancel: Some(self),
            ..Capabilities::none()
        }
    }
    fn deploy_kinds(&self, _: &str) -> DeployKinds {
        DeployKinds::COMMIT
    }
    async fn locate(&self, environment: &str, service: &str) -> Result<ServiceHandle> {
        Ok(ServiceHandle {
            name: service.to_owned(),
            environment: environment.to_owned(),
            id: format!("id-{service}"),
            identity: Identity::new("fake service", [("id", format!("id-{service}"))]),
        })
    }
    async fn live_state(&self, _: &ServiceHandle) -> Result<LiveState> {
        *self.reads.lock().unwrap() += 1;
        if self.silent {
            return Err(staging_core::Error::Timeout {
                what: "the fake's deploys".into(),
                after: Duration::from_secs(2),
            });
        }
        let deploys = self.deploys.lock().unwrap();
        Ok(LiveState {
            latest: deploys.last().cloned(),
            live: deploys
                .iter()
                .rev()
                .find(|d| d.status == DeployStatus::Live)
                .cloned(),
            url: None,
        })
    }
    async fn deploy(&self, _: &WriteTarget, _: &DeployRequest) -> Result<Deploy> {
        let d = {
            let mut deploys = self.deploys.lock().unwrap();
            let d = deploy(
                &format!("dep-{}", deploys.len()),
                COMMIT,
                DeployStatus::Queued,
            );
            deploys.push(d.clone());
            d
        };
        if self.hang {
            // Received and started; the answer never arrives.
            std::future::pending::<()>().await;
        }
        Ok(d)
    }
    async fn deploy_status(&self, _: &ServiceHandle, id: &str) -> Result<Deploy> {
        Ok(self
            .deploys
            .lock()
            .unwrap()
            .iter()
            .find(|d| d.id == id)
            .cloned()
            .expect("known deploy"))
    }
}

#[async_trait]
impl Cancel for Platform {
    async fn cancel_deploy(&self, _: &WriteTarget, id: &str) -> Result<Deploy> {
        self.canceled.lock().unwrap().push(id.to_owned());
        let mut deploys = self.deploys.lock().unwrap();
        let d = deploys
            .iter_mut()
            .find(|d| d.id == id)
            .expect("known deploy");
        d.status = DeployStatus::Canceled;
        Ok(d.clone())
    }
}

fn context(platform: &Arc<Platform>) -> RunContext {
    let text = "[project]\nname = \"t\"\n\n[environments.staging]\nprovider = \"fake\"\n\n[services.web]\n";
    let spec =
        LoadedSpec::parse("staging.toml", text.to_owned(), LoadOptions::new(&["fake"])).unwrap();
    let mut ctx = RunContext::new(Arc::new(spec), "staging", COMMIT).unwrap();
    ctx.provider = Some(platform.clone());
    staging_core::testkit::assume_isolated(&mut ctx);
    ctx
}

/// A request recorded as sent, its answer not in, the newest deploy before it `before`.
fn unanswered(ctx: &RunContext, before: Option<&str>) {
    let handle = ServiceHandle {
        name: "web".into(),
        environment: "staging".into(),
        id: "id-web".into(),
        identity: Identity::new("fake service", [("id", "id-web".to_owned())]),
    };
    ctx.sent_deploys.sending(SentDeploy {
        service: "web".into(),
        target: staging_core::testkit::target(&handle),
        commit: COMMIT.into(),
        newest_before: before.map(str::to_owned),
        deploy_id: None,
    });
}

#[tokio::test(start_paused = true)]
async fn a_deploy_whose_answer_never_came_is_read_back_by_its_commit_and_canceled() {
    let platform = Arc::new(Platform {
        hang: true,
        deploys: Mutex::new(vec![deploy("dep-old", OTHER, DeployStatus::Live)]),
        ..Platform::default()
    });
    let mut ctx = context(&platform);
    // The run is stopped while the deploy request waits for its answer (a signal drops it).
    tokio::select! {
        _ = DeployStep.run(&mut ctx) => panic!("the deploy step answered"),
        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
    }
    let reports = cancel_sent(&ctx).await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    let r = &reports[0];
    assert!(r.read_back, "{r:?}");
    assert_eq!(r.deploy_id.as_deref(), Some("dep-1"));
    assert_eq!(
        r.outcome,
        CancelOutcome::Sent {
            status: DeployStatus::Canceled
        }
    );
    assert!(r.settled());
    assert_eq!(platform.canceled(), ["dep-1"]);
    assert!(
        r.to_string().starts_with("web: deploy dep-1 is canceled"),
        "{r}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_deploy_whose_answer_came_is_canceled_by_its_id_without_a_read_back() {
    let platform = Platform::with(vec![deploy("dep-old", OTHER, DeployStatus::Live)]);
    let mut ctx = context(&platform);
    DeployStep.run(&mut ctx).await.unwrap();
    let reads = *platform.reads.lock().unwrap();
    let reports = cancel_sent(&ctx).await;
    assert_eq!(reports.len(), 1);
    assert!(!reports[0].read_back);
    assert_eq!(platform.canceled(), ["dep-1"]);
    assert_eq!(*platform.reads.lock().unwrap(), reads, "nothing read back");
}

#[tokio::test(start_paused = true)]
async fn a_newer_deploy_of_another_commit_is_not_canceled() {
    let platform = Platform::with(vec![
        deploy("dep-old", OTHER, DeployStatus::Live),
        deploy("dep-push", OTHER, DeployStatus::InProgress),
    ]);
    let ctx = context(&platform);
    unanswered(&ctx, Some("dep-old"));
    let reports = cancel_sent(&ctx).await;
    assert_eq!(
        reports[0].outcome,
        CancelOutcome::NotOurs {
            id: "dep-push".into(),
            commit: Some(OTHER.into())
        }
    );
    assert!(!reports[0].settled());
    assert!(platform.canceled().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_deploy_of_the_commit_older_than_the_request_is_not_taken_for_it() {
    // The newest deploy is of the run's commit but was there before the request was sent
    // (an earlier run's): nothing new is listed within the bound, nothing is canceled.
    let platform = Platform::with(vec![deploy("dep-earlier", COMMIT, DeployStatus::Queued)]);
    let ctx = context(&platform);
    unanswered(&ctx, Some("dep-earlier"));
    let reports = cancel_sent(&ctx).await;
    assert_eq!(reports[0].outcome, CancelOutcome::NotFound);
    assert!(platform.canceled().is_empty());
    assert!(*platform.reads.lock().unwrap() > 1, "read until the bound");
    assert!(
        reports[0].to_string().contains("nothing canceled"),
        "{}",
        reports[0]
    );
}

#[tokio::test(start_paused = true)]
async fn a_deploy_that_finished_before_the_cancel_is_left_alone() {
    let platform = Platform::with(vec![
        deploy("dep-old", OTHER, DeployStatus::Live),
        deploy("dep-new", COMMIT, DeployStatus::Failed),
    ]);
    let ctx = context(&platform);
    unanswered(&ctx, Some("dep-old"));
    let reports = cancel_sent(&ctx).await;
    assert_eq!(
        reports[0].outcome,
        CancelOutcome::AlreadyFinished {
            status: DeployStatus::Failed
        }
    );
    assert!(platform.canceled().is_empty());
}

#[tokio::test(start_paused = true)]
async fn without_a_request_sent_nothing_is_read_or_canceled() {
    let platform = Platform::with(vec![deploy("dep-old", OTHER, DeployStatus::Live)]);
    let ctx = context(&platform);
    assert!(cancel_sent(&ctx).await.is_empty());
    assert_eq!(*platform.reads.lock().unwrap(), 0);
    assert!(platform.canceled().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_platform_that_cannot_be_read_is_not_reported_as_having_no_deploy() {
    let platform = Arc::new(Platform {
        silent: true,
        ..Platform::default()
    });
    let ctx = context(&platform);
    unanswered(&ctx, Some("dep-old"));
    let reports = cancel_sent(&ctx).await;
    assert!(
        matches!(reports[0].outcome, CancelOutcome::Failed { .. }),
        "{:?}",
        reports[0]
    );
    assert!(!reports[0].settled());
    assert!(
        reports[0].to_string().contains("may be running"),
        "{}",
        reports[0]
    );
    assert!(platform.canceled().is_empty());
}
