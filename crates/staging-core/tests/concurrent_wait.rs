//! The deploy and wait steps handle every service at once: a platform in this process whose
//! deploys go live at set moments on tokio's paused clock, so what is asserted is the order
//! and the moments of the polls, never how fast this machine runs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use staging_core::pipeline::{DeployStep, RunContext, Step, WaitStep};
use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_core::{
    Capabilities, Deploy, DeployKinds, DeployRequest, DeployStatus, Error, LiveState, Logs, Pacing,
    Provider, ReadBudget, Result, ServiceHandle, async_trait,
};
use tokio::time::Instant;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const SECOND: Duration = Duration::from_secs(1);

/// What a deploy of one service does on the fake platform, counted from its deploy call.
#[derive(Debug, Clone, Copy)]
enum Plan {
    LiveAfter(Duration),
    FailsAfter(Duration),
    Never,
}

/// A platform whose deploys change state at set moments, recording when each service was
/// polled and when each call started.
#[derive(Debug)]
struct TimedPlatform {
    epoch: Instant,
    plans: BTreeMap<String, Plan>,
    budget: ReadBudget,
    /// Pretend every deploy trigger takes this long (a slow API), to see them overlap.
    deploy_takes: Duration,
    deployed_at: Mutex<BTreeMap<String, Duration>>,
    polls: Mutex<BTreeMap<String, Vec<Duration>>>,
    deploys_started: Mutex<Vec<Duration>>,
}

impl TimedPlatform {
    fn new(plans: &[(&str, Plan)]) -> Self {
        TimedPlatform {
            epoch: Instant::now(),
            plans: plans.iter().map(|(n, p)| (n.to_string(), *p)).collect(),
            budget: ReadBudget::unlimited("the timed fake"),
            deploy_takes: Duration::ZERO,
            deployed_at: Mutex::new(BTreeMap::new()),
            polls: Mutex::new(BTreeMap::new()),
            deploys_started: Mutex::new(vec![]),
        }
    }

    fn now(&self) -> Duration {
        Instant::now() - self.epoch
    }

    fn polls(&self, service: &str) -> Vec<Duration> {
        self.polls
            .lock()
            .unwrap()
            .get(service)
            .cloned()
            .unwrap_or_default()
    }
}

#[async_trait]
impl Provider for TimedPlatform {
    fn name(&self) -> &str {
        "timed"
    }
    fn pacing(&self) -> Pacing {
        Pacing {
            poll_interval: SECOND,
            read_budget: self.budget,
            ..Pacing::default()
        }
    }
    fn capabilities(&self) -> Capabilities<'_> {
        Capabilities {
            logs: Some(self),
            ..Capabilities::none()
        }
    }
    fn deploy_kinds(&self, _service: &str) -> DeployKinds {
        DeployKinds::COMMIT
    }

    async fn locate(&self, environment: &str, service: &str) -> Result<ServiceHandle> {
        if !self.plans.contains_key(service) {
            return Err(Error::not_found(format!("service {service}")));
        }
        Ok(ServiceHandle {
            name: service.to_owned(),
            environment: environment.to_owned(),
            id: format!("id-{service}"),
            identity: staging_core::Identity::new(
                "test service",
                [("id", format!("id-{service}"))],
            ),
        })
    }

    async fn live_state(&self, _: &ServiceHandle) -> Result<LiveState> {
        Ok(LiveState {
            latest: None,
            live: None,
            url: None,
        })
    }

    async fn deploy(
        &self,
        service: &staging_core::WriteTarget,
        _: &DeployRequest,
    ) -> Result<Deploy> {
        self.deploys_started.lock().unwrap().push(self.now());
        tokio::time::sleep(self.deploy_takes).await;
        self.deployed_at
            .lock()
            .unwrap()
            .insert(service.name.clone(), self.now());
        Ok(deploy(&service.name, DeployStatus::Queued, "created"))
    }

    async fn deploy_status(&self, service: &ServiceHandle, _: &str) -> Result<Deploy> {
        let now = self.now();
        self.polls
            .lock()
            .unwrap()
            .entry(service.name.clone())
            .or_default()
            .push(now);
        let since = now - self.deployed_at.lock().unwrap()[&service.name];
        Ok(match self.plans[&service.name] {
            Plan::LiveAfter(at) if since >= at => deploy(&service.name, DeployStatus::Live, "live"),
            Plan::FailsAfter(at) if since >= at => {
                deploy(&service.name, DeployStatus::Failed, "build_failed")
            }
            _ => deploy(&service.name, DeployStatus::InProgress, "build_in_progress"),
        })
    }
}

#[async_trait]
impl Logs for TimedPlatform {
    async fn recent_logs(
        &self,
        service: &ServiceHandle,
        _: Option<&str>,
        _: usize,
    ) -> Result<Vec<String>> {
        Ok(vec![format!(
            "{} printed this before it stopped",
            service.name
        )])
    }
}

fn deploy(service: &str, status: DeployStatus, raw: &str) -> Deploy {
    Deploy {
        id: format!("dep-{service}"),
        status,
        commit: Some(COMMIT.to_owned()),
        image: None,
        raw_status: raw.to_owned(),
    }
}

fn context(platform: &Arc<TimedPlatform>, deploy_timeout: &str) -> RunContext {
    let services: String = platform
        .plans
        .keys()
        .map(|s| format!("[services.{s}]\n"))
        .collect();
    let text = format!(
        "[project]\nname = \"t\"\n\n[environments.staging]\nprovider = \"timed\"\ndeploy_timeout = \"{deploy_timeout}\"\n\n{services}"
    );
    let spec = LoadedSpec::parse("staging.toml", text, LoadOptions::new(&["timed"])).unwrap();
    let mut ctx = RunContext::new(Arc::new(spec), "staging", COMMIT).unwrap();
    ctx.provider = Some(platform.clone());
    staging_core::testkit::assume_isolated(&mut ctx);
    ctx
}

#[tokio::test(start_paused = true)]
async fn two_services_are_waited_for_at_once_and_the_first_stops_being_polled_when_live() {
    let platform = Arc::new(TimedPlatform::new(&[
        ("api", Plan::LiveAfter(3 * SECOND)),
        ("web", Plan::LiveAfter(6 * SECOND)),
    ]));
    let mut ctx = context(&platform, "8s");
    assert!(DeployStep.run(&mut ctx).await.unwrap().ok());
    let started = Instant::now();
    let report = WaitStep.run(&mut ctx).await.unwrap();
    let took = started.elapsed();
    assert!(report.ok(), "{report:?}");

    // Polled every second (the fake's floor; its budget is unlimited), both from the start.
    let api = platform.polls("api");
    let web = platform.polls("web");
    assert_eq!(api, (0..=3).map(|s| s * SECOND).collect::<Vec<_>>());
    assert_eq!(web, (0..=6).map(|s| s * SECOND).collect::<Vec<_>>());
    // api's polling stopped at 3 s, when it was live, while web's went on until 6 s.
    assert!(web.iter().any(|t| *t > *api.last().unwrap()));
    // The whole wait took as long as the slowest service, within the one deploy_timeout.
    assert_eq!(took, 6 * SECOND);
    assert!(took < 8 * SECOND);
    let durations: Vec<_> = report.findings.iter().map(|f| f.duration_ms).collect();
    assert_eq!(durations, [Some(3000), Some(6000)]);
}

#[tokio::test(start_paused = true)]
async fn deploy_timeout_bounds_the_whole_wait_not_each_service() {
    // Waiting one after the other with the full bound each would take 3 s + 8 s.
    let platform = Arc::new(TimedPlatform::new(&[
        ("api", Plan::LiveAfter(3 * SECOND)),
        ("web", Plan::Never),
    ]));
    let mut ctx = context(&platform, "8s");
    DeployStep.run(&mut ctx).await.unwrap();
    let started = Instant::now();
    let report = WaitStep.run(&mut ctx).await.unwrap();
    let took = started.elapsed();
    assert!(!report.ok());
    assert!(took <= 8 * SECOND, "{took:?}");
    assert_eq!(report.summary, "not live within 8s");
    let api = &report.findings[0];
    let web = &report.findings[1];
    assert!(api.ok && api.message.contains("is live"), "{api:?}");
    assert!(!web.ok, "{web:?}");
    assert!(web.message.contains("web printed this"), "{web:?}");
    assert_eq!(platform.polls("web").last(), Some(&(8 * SECOND)));
}

#[tokio::test(start_paused = true)]
async fn the_first_failure_is_shown_with_its_logs_and_the_others_by_status() {
    let platform = Arc::new(TimedPlatform::new(&[
        ("api", Plan::FailsAfter(2 * SECOND)),
        ("web", Plan::LiveAfter(6 * SECOND)),
        ("worker", Plan::LiveAfter(SECOND)),
    ]));
    let mut ctx = context(&platform, "8s");
    DeployStep.run(&mut ctx).await.unwrap();
    let started = Instant::now();
    let report = WaitStep.run(&mut ctx).await.unwrap();
    assert_eq!(
        started.elapsed(),
        2 * SECOND,
        "the wait ends at the failure"
    );
    assert_eq!(report.summary, "a deploy failed");
    let by_name: BTreeMap<_, _> = report
        .findings
        .iter()
        .map(|f| (f.name.as_str(), f))
        .collect();
    let api = by_name["api"];
    assert!(!api.ok);
    assert!(api.message.contains("build_failed"), "{api:?}");
    assert!(api.message.contains("api printed this"), "{api:?}");
    let web = by_name["web"];
    assert!(!web.ok);
    assert!(
        web.message.contains("last seen `build_in_progress`") && web.message.contains("api"),
        "{web:?}"
    );
    assert!(
        !web.message.contains("printed"),
        "only the first failure fetches logs: {web:?}"
    );
    assert!(by_name["worker"].ok, "{:?}", by_name["worker"]);
    // web is no longer polled once the wait has stopped.
    assert!(platform.polls("web").iter().all(|t| *t <= 2 * SECOND));
}

#[tokio::test(start_paused = true)]
async fn the_services_share_the_read_budget_and_the_last_one_speeds_up() {
    // 240 reads a minute: a quarter is 60, so one service may be polled every second and
    // two every 2 s each.
    let mut platform = TimedPlatform::new(&[
        ("api", Plan::LiveAfter(3 * SECOND)),
        ("web", Plan::LiveAfter(9 * SECOND)),
    ]);
    platform.budget = ReadBudget::per_minute(240, "test");
    let platform = Arc::new(platform);
    let mut ctx = context(&platform, "30s");
    DeployStep.run(&mut ctx).await.unwrap();
    let report = WaitStep.run(&mut ctx).await.unwrap();
    assert!(report.ok(), "{report:?}");
    let api = platform.polls("api");
    let web = platform.polls("web");
    assert_eq!(api, [0, 2, 4].map(|s| s * SECOND));
    // Every 2 s while both wait; every second once web is alone.
    let gaps: Vec<_> = web.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().take_while(|g| **g == 2 * SECOND).count() >= 2,
        "{web:?}"
    );
    assert_eq!(gaps.last(), Some(&SECOND), "{web:?}");
    assert_eq!(web.last(), Some(&(9 * SECOND)));
    // Never more than a quarter of the budget: 60 polls a minute, both services together.
    let all: usize = api.len() + web.len();
    let span = web.last().unwrap().as_secs_f64() / 60.0;
    assert!(
        (all - 2) as f64 / span <= 60.0 + 1e-6,
        "{all} polls in {span} min"
    );
}

#[tokio::test(start_paused = true)]
async fn deploys_of_all_services_start_at_once() {
    let mut platform = TimedPlatform::new(&[
        ("api", Plan::LiveAfter(SECOND)),
        ("web", Plan::LiveAfter(SECOND)),
        ("worker", Plan::LiveAfter(SECOND)),
    ]);
    platform.deploy_takes = 5 * SECOND;
    let platform = Arc::new(platform);
    let mut ctx = context(&platform, "30s");
    let started = Instant::now();
    let report = DeployStep.run(&mut ctx).await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(
        started.elapsed(),
        5 * SECOND,
        "one slow trigger's time, not three"
    );
    assert_eq!(
        *platform.deploys_started.lock().unwrap(),
        [Duration::ZERO; 3]
    );
    assert_eq!(ctx.services.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_service_that_cannot_be_found_stops_the_deploy_step_before_any_deploy() {
    let platform = Arc::new(TimedPlatform::new(&[("api", Plan::LiveAfter(SECOND))]));
    let mut ctx = context(&platform, "30s");
    // The spec names a service the platform does not have.
    let text = "[project]\nname = \"t\"\n\n[environments.staging]\nprovider = \"timed\"\n\n[services.api]\n[services.ghost]\n";
    ctx.spec = Arc::new(
        LoadedSpec::parse(
            "staging.toml",
            text.to_owned(),
            LoadOptions::new(&["timed"]),
        )
        .unwrap(),
    );
    let err = DeployStep.run(&mut ctx).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(platform.deploys_started.lock().unwrap().is_empty());
}
