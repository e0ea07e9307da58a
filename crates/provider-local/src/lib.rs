#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod process;
mod settings;
mod state;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use staging_core::isolation::Resource;
use staging_core::spec::{LoadedSpec, SettingsTypes};
use staging_core::{
    Cancel, Capabilities, Deploy, DeployKinds, DeployRequest, DeployStatus, DeployTarget,
    DynProvider, EnvVars, Error, LiveState, Logs, Pacing, Provider, ProviderFactory, Result,
    Rollback, ServiceHandle, WriteTarget, async_trait,
};

use process::ServiceProcess;
pub use settings::{
    DEFAULT_SETTLE, LocalEnvironmentConfig, LocalServiceConfig, LocalServiceSettings,
};

const NAME: &str = "local";

/// The local provider: services as child processes.
#[derive(Debug)]
pub struct LocalProvider {
    services: BTreeMap<String, LocalServiceSettings>,
    state: Mutex<BTreeMap<String, Slot>>,
    /// Built on the first health check: building a client loads the system's root
    /// certificates (≈ 150 files here), which `staging validate` should not pay for.
    client: std::sync::OnceLock<reqwest::Client>,
    /// Where state files live (`<spec dir>/.staging/local`); none for a provider built
    /// without a spec, unless [`LocalProvider::with_state_dir`] sets one.
    state_dir: Option<PathBuf>,
}

/// What the provider knows of one service.
#[derive(Debug, Default)]
struct Slot {
    env: BTreeMap<String, SecretString>,
    deploys: Vec<Record>,
}

#[derive(Debug)]
struct Record {
    id: String,
    commit: String,
    status: DeployStatus,
    raw_status: String,
    port: u16,
    /// Whether this deploy was ever live: rollback goes back to the last such one.
    was_live: bool,
    /// When its process started (a service without HTTP is live after its settle time).
    started: std::time::Instant,
    process: Option<ServiceProcess>,
    logs: Arc<Mutex<VecDeque<String>>>,
}

impl Record {
    fn to_deploy(&self) -> Deploy {
        Deploy {
            id: self.id.clone(),
            status: self.status,
            commit: Some(self.commit.clone()),
            image: None,
            raw_status: self.raw_status.clone(),
        }
    }
}

impl LocalProvider {
    /// A provider for these services, by name.
    pub fn new(services: BTreeMap<String, LocalServiceSettings>) -> Self {
        LocalProvider {
            services,
            state: Mutex::new(BTreeMap::new()),
            client: std::sync::OnceLock::new(),
            state_dir: None,
        }
    }

    fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a plain HTTP client builds")
        })
    }

    /// Announce live services in state files under `dir` (one directory per environment),
    /// and report services that another process announced there.
    pub fn with_state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// The provider for `environment` of a spec.
    pub fn from_spec(spec: &LoadedSpec, environment: &str) -> Result<Self> {
        let mut services = BTreeMap::new();
        for (name, service) in &spec.spec.services {
            services.insert(
                name.clone(),
                LocalServiceSettings::from_spec(spec, environment, name, service)?,
            );
        }
        Ok(LocalProvider::new(services).with_state_dir(spec.base_dir().join(".staging/local")))
    }

    fn settings(&self, service: &str) -> Result<&LocalServiceSettings> {
        self.services
            .get(service)
            .ok_or_else(|| Error::not_found(format!("local service `{service}`")))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Slot>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Start `commit` of `service` as a new deploy.
    fn start(&self, service: &ServiceHandle, commit: &str) -> Result<Deploy> {
        let settings = self.settings(&service.name)?;
        let mut state = self.lock();
        let slot = state.entry(service.name.clone()).or_default();
        let live_port = slot
            .deploys
            .iter()
            .find(|d| d.status == DeployStatus::Live)
            .map(|d| d.port);
        let port = match settings.port {
            Some(p) => {
                // A fixed port cannot be shared: the old process makes way for the new one.
                for d in slot.deploys.iter_mut().filter(|d| d.process.is_some()) {
                    if let Some(p) = d.process.take() {
                        p.stop();
                    }
                    if d.status == DeployStatus::Live {
                        d.status = DeployStatus::Superseded;
                        d.raw_status = "stopped for a new deploy on the same port".into();
                    }
                }
                p
            }
            None => process::free_port(live_port)?,
        };
        let id = format!("local-{}-{}", service.name, slot.deploys.len() + 1);
        let logs = Arc::new(Mutex::new(VecDeque::new()));
        let mut env: Vec<(String, SecretString)> = slot
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env.push((
            settings.port_env.clone(),
            SecretString::from(port.to_string()),
        ));
        env.push((
            settings.commit_env.clone(),
            SecretString::from(commit.to_owned()),
        ));
        env.push((
            "STAGING_ENV".to_owned(),
            SecretString::from(service.environment.clone()),
        ));
        let process = ServiceProcess::spawn(settings, &env, logs.clone())?;
        let record = Record {
            id: id.clone(),
            commit: commit.to_owned(),
            status: DeployStatus::InProgress,
            raw_status: "starting".into(),
            port,
            was_live: false,
            started: std::time::Instant::now(),
            process: Some(process),
            logs,
        };
        let deploy = record.to_deploy();
        slot.deploys.push(record);
        Ok(deploy)
    }

    fn url(port: u16) -> url::Url {
        url::Url::parse(&format!("http://127.0.0.1:{port}/")).expect("a loopback URL parses")
    }

    fn state_file(&self, service: &ServiceHandle) -> Option<PathBuf> {
        let dir = self.state_dir.as_ref()?;
        Some(state::path(dir, &service.environment, &service.name))
    }

    /// Whether the health path answers 2xx on `port`.
    async fn healthy(&self, port: u16, health_path: &str) -> reqwest::Result<bool> {
        self.client()
            .get(format!("http://127.0.0.1:{port}{health_path}"))
            .send()
            .await
            .map(|r| r.status().is_success())
    }

    /// The live state of a service that another process runs, from its state file: live
    /// when its process is alive and its health path answers. A file whose process is gone
    /// is removed.
    async fn announced(&self, service: &ServiceHandle) -> Result<LiveState> {
        let nothing = LiveState {
            latest: None,
            live: None,
            url: None,
        };
        let Some(path) = self.state_file(service) else {
            return Ok(nothing);
        };
        let health_path = self.settings(&service.name)?.health_path.clone();
        let http = health_path.is_some();
        let health_path = health_path.unwrap_or_default();
        let announced = match state::read(&path) {
            Ok(None) => return Ok(nothing),
            Ok(Some(s)) if s.service == service.name && s.environment == service.environment => s,
            Ok(Some(_)) => {
                tracing::warn!(
                    "ignored {}: it describes another service or environment",
                    path.display()
                );
                return Ok(nothing);
            }
            Err(why) => {
                tracing::warn!("ignored {}: {why}", path.display());
                return Ok(nothing);
            }
        };
        if !state::pid_alive(announced.pid) {
            state::remove_if_owned(&path, announced.pid);
            tracing::warn!(
                "ignored and removed the stale state file {}: process {} of deploy {} ({}) is gone, so `{}` is not running; run `staging up --keep-running --env {}` to keep it up",
                path.display(),
                announced.pid,
                announced.deploy_id,
                announced.commit.chars().take(12).collect::<String>(),
                service.name,
                service.environment,
            );
            return Ok(nothing);
        }
        // A service without HTTP: its process being alive is all there is to check.
        let healthy = !http
            || self
                .healthy(announced.port, &health_path)
                .await
                .unwrap_or(false);
        let deploy = Deploy {
            id: announced.deploy_id.clone(),
            status: if healthy {
                DeployStatus::Live
            } else {
                DeployStatus::InProgress
            },
            commit: Some(announced.commit.clone()),
            image: None,
            raw_status: if healthy {
                // Short: `staging status` shows it in a column.
                "kept running".to_owned()
            } else {
                format!(
                    "running (pid {}) but {health_path} does not answer on port {}",
                    announced.pid, announced.port
                )
            },
        };
        Ok(LiveState {
            live: healthy.then(|| deploy.clone()),
            latest: Some(deploy),
            url: (healthy && http).then(|| Self::url(announced.port)),
        })
    }
}

impl Drop for LocalProvider {
    fn drop(&mut self) {
        let mut state = self.lock();
        let processes: Vec<ServiceProcess> = state
            .values_mut()
            .flat_map(|s| s.deploys.iter_mut().filter_map(|d| d.process.take()))
            .collect();
        drop(state);
        process::stop_all(processes);
    }
}

#[async_trait]
impl Provider for LocalProvider {
    fn name(&self) -> &str {
        NAME
    }

    fn pacing(&self) -> Pacing {
        Pacing {
            poll_interval: Duration::from_millis(200),
            read_budget: staging_core::ReadBudget::unlimited("local processes: no platform limit"),
            runs_services_in_process: true,
        }
    }

    fn capabilities(&self) -> Capabilities<'_> {
        Capabilities {
            env: Some(self),
            rollback: Some(self),
            logs: Some(self),
            cancel: Some(self),
            ..Capabilities::none()
        }
    }

    fn deploy_kinds(&self, _service: &str) -> DeployKinds {
        DeployKinds::COMMIT
    }

    async fn locate(&self, environment: &str, service: &str) -> Result<ServiceHandle> {
        let settings = self.settings(service)?;
        // A fixed port is what two environments could share; without one, the service is a
        // child process of this run, its own.
        let identity = match settings.port {
            Some(port) => staging_core::Identity::new("local port", [("port", port.to_string())]),
            None => staging_core::Identity::new(
                "local process",
                [("environment", environment), ("service", service)],
            ),
        };
        Ok(ServiceHandle {
            name: service.to_owned(),
            environment: environment.to_owned(),
            id: format!("local:{service}"),
            identity,
        })
    }

    async fn live_state(&self, service: &ServiceHandle) -> Result<LiveState> {
        // A service without HTTP has no URL.
        let http = self.settings(&service.name)?.health_path.is_some();
        {
            let state = self.lock();
            if let Some(slot) = state
                .get(&service.name)
                .filter(|slot| !slot.deploys.is_empty())
            {
                let live = slot
                    .deploys
                    .iter()
                    .rev()
                    .find(|d| d.status == DeployStatus::Live);
                return Ok(LiveState {
                    latest: slot.deploys.last().map(Record::to_deploy),
                    live: live.map(Record::to_deploy),
                    url: live.filter(|_| http).map(|d| Self::url(d.port)),
                });
            }
        }
        // Not deployed by this provider: maybe another `staging` process runs it.
        self.announced(service).await
    }

    async fn deploy(&self, service: &WriteTarget, request: &DeployRequest) -> Result<Deploy> {
        match &request.target {
            DeployTarget::Commit(sha) => self.start(service, sha),
            DeployTarget::Image(_) => Err(Error::not_supported(NAME, "deploying an image")),
        }
    }

    async fn deploy_status(&self, service: &ServiceHandle, deploy_id: &str) -> Result<Deploy> {
        let settings = self.settings(&service.name)?;
        let (health_path, settle) = (settings.health_path.clone(), settings.settle);
        let what = health_path
            .as_deref()
            .map(|p| format!("{p} answered"))
            .unwrap_or_else(|| format!("it stayed up for {}", humantime::format_duration(settle)));
        let (port, up_for) = {
            let mut state = self.lock();
            let record = find(&mut state, service, deploy_id)?;
            if record.status.is_terminal() {
                return Ok(record.to_deploy());
            }
            if let Some(code) = record.process.as_mut().and_then(ServiceProcess::exited) {
                record.status = DeployStatus::Failed;
                record.raw_status = format!("exited ({code}) before {what}");
                record.process = None;
                return Ok(record.to_deploy());
            }
            (record.port, record.started.elapsed())
        };
        // A service without HTTP is live once its process has stayed up for the settle time.
        let healthy = match &health_path {
            Some(path) => self.healthy(port, path).await,
            None => Ok(up_for >= settle),
        };
        let state_file = self.state_file(service);
        let mut state = self.lock();
        let slot = state
            .get_mut(&service.name)
            .ok_or_else(|| Error::not_found(deploy_id.to_owned()))?;
        let raw = match (&healthy, &health_path) {
            (Ok(true), _) => "live".to_owned(),
            (Ok(false), Some(path)) => format!("starting ({path} not 2xx yet)"),
            (Ok(false), None) => format!(
                "settling (up {}s of {}s, no HTTP)",
                up_for.as_secs(),
                settle.as_secs()
            ),
            (Err(_), _) => format!("starting (port {port} not answering yet)"),
        };
        if healthy.unwrap_or(false) {
            // The new deploy takes the traffic; the ones before it stop.
            for d in slot.deploys.iter_mut().filter(|d| d.id != deploy_id) {
                if let Some(p) = d.process.take() {
                    p.stop();
                }
                if matches!(d.status, DeployStatus::Live | DeployStatus::InProgress) {
                    d.status = DeployStatus::Superseded;
                    d.raw_status = "superseded".into();
                }
            }
        }
        let record = slot
            .deploys
            .iter_mut()
            .find(|d| d.id == deploy_id)
            .ok_or_else(|| Error::not_found(deploy_id.to_owned()))?;
        if record.status == DeployStatus::InProgress {
            if raw == "live" {
                record.status = DeployStatus::Live;
                record.was_live = true;
                if let Some(path) = state_file {
                    announce(record, service, path);
                }
            }
            record.raw_status = raw;
        }
        Ok(record.to_deploy())
    }
}

#[async_trait]
impl Rollback for LocalProvider {
    async fn rollback(&self, service: &WriteTarget) -> Result<Deploy> {
        let previous = {
            let state = self.lock();
            let slot = state
                .get(&service.name)
                .filter(|s| !s.deploys.is_empty())
                .ok_or_else(|| not_deployed_here(service))?;
            let live_idx = slot
                .deploys
                .iter()
                .rposition(|d| d.status == DeployStatus::Live);
            let before = live_idx.map_or(slot.deploys.len(), |i| i);
            slot.deploys[..before]
                .iter()
                .rev()
                .find(|d| d.was_live && d.status != DeployStatus::Live)
                .map(|d| d.commit.clone())
                .ok_or_else(|| {
                    Error::failed(format!(
                        "{} has no earlier live deploy to roll back to",
                        service.name
                    ))
                })?
        };
        self.start(service, &previous)
    }

    /// Starts the commit of the named earlier deploy again, as a new deploy.
    async fn rollback_to(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy> {
        let commit = {
            let mut state = self.lock();
            if state
                .get(&service.name)
                .is_none_or(|s| s.deploys.is_empty())
            {
                return Err(not_deployed_here(service));
            }
            find(&mut state, service, deploy_id)?.commit.clone()
        };
        self.start(service, &commit)
    }
}

#[async_trait]
impl EnvVars for LocalProvider {
    async fn env_vars(&self, service: &ServiceHandle) -> Result<BTreeMap<String, SecretString>> {
        self.settings(&service.name)?;
        Ok(self
            .lock()
            .get(&service.name)
            .map(|s| s.env.clone())
            .unwrap_or_default())
    }

    async fn set_env_var(
        &self,
        service: &WriteTarget,
        key: &str,
        value: &SecretString,
    ) -> Result<()> {
        self.settings(&service.name)?;
        let mut state = self.lock();
        state.entry(service.name.clone()).or_default().env.insert(
            key.to_owned(),
            SecretString::from(value.expose_secret().to_owned()),
        );
        Ok(())
    }

    async fn delete_env_var(&self, service: &WriteTarget, key: &str) -> Result<()> {
        self.settings(&service.name)?;
        if let Some(slot) = self.lock().get_mut(&service.name) {
            slot.env.remove(key);
        }
        Ok(())
    }
}

#[async_trait]
impl Cancel for LocalProvider {
    async fn cancel_deploy(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy> {
        let mut state = self.lock();
        let record = find(&mut state, service, deploy_id)?;
        if !record.status.is_terminal() {
            if let Some(p) = record.process.take() {
                p.stop();
            }
            record.status = DeployStatus::Canceled;
            record.raw_status = "canceled".into();
        }
        Ok(record.to_deploy())
    }
}

#[async_trait]
impl Logs for LocalProvider {
    async fn recent_logs(
        &self,
        service: &ServiceHandle,
        deploy_id: Option<&str>,
        lines: usize,
    ) -> Result<Vec<String>> {
        let state = self.lock();
        let Some(slot) = state.get(&service.name) else {
            return Ok(vec![]);
        };
        let record = match deploy_id {
            // A deploy id this provider never started is an error, as on the platforms.
            Some(id) => Some(
                slot.deploys
                    .iter()
                    .find(|d| d.id == id)
                    .ok_or_else(|| Error::not_found(format!("deploy {id} of {}", service.name)))?,
            ),
            None => slot.deploys.last(),
        };
        let Some(record) = record else {
            return Ok(vec![]);
        };
        let logs = record.logs.lock().unwrap_or_else(|e| e.into_inner());
        Ok(logs
            .iter()
            .skip(logs.len().saturating_sub(lines))
            .cloned()
            .collect())
    }
}

/// Write the state file that tells other `staging` processes where `record` serves.
fn announce(record: &mut Record, service: &ServiceHandle, path: PathBuf) {
    let Some(process) = record.process.as_mut() else {
        return;
    };
    let Some(pid) = process.pid() else {
        return;
    };
    let announced = state::ServiceState {
        service: service.name.clone(),
        environment: service.environment.clone(),
        pid,
        owner_pid: std::process::id(),
        port: record.port,
        url: LocalProvider::url(record.port).to_string(),
        commit: record.commit.clone(),
        deploy_id: record.id.clone(),
        started_at: state::now(),
    };
    process.publish(path, &announced);
}

/// A rollback asked of a provider that deployed nothing: local deploys live only in the
/// process that made them, so another process has no earlier deploy to return to.
fn not_deployed_here(service: &ServiceHandle) -> Error {
    Error::not_supported(
        NAME,
        format!(
            "rolling back `{}` from another process: local services and their earlier deploys live only in the `staging up` or `staging promote` that started them (`promote` rolls back by itself when a check fails after the deploy)",
            service.name
        ),
    )
}

fn find<'a>(
    state: &'a mut BTreeMap<String, Slot>,
    service: &ServiceHandle,
    deploy_id: &str,
) -> Result<&'a mut Record> {
    state
        .get_mut(&service.name)
        .and_then(|s| s.deploys.iter_mut().find(|d| d.id == deploy_id))
        .ok_or_else(|| Error::not_found(format!("deploy {deploy_id} of {}", service.name)))
}

/// Registers the local provider under the name `local`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalFactory;

impl ProviderFactory for LocalFactory {
    fn name(&self) -> &'static str {
        NAME
    }

    fn settings_types(&self) -> SettingsTypes {
        SettingsTypes::of::<LocalEnvironmentConfig, LocalServiceConfig>()
    }

    fn check(&self, spec: &LoadedSpec, environment: &str) -> Result<()> {
        spec.environment_settings::<LocalEnvironmentConfig>(environment)?;
        LocalProvider::from_spec(spec, environment).map(drop)
    }

    /// A service with a fixed `port`: two environments on one port would serve each
    /// other's requests. Services on a free port of their own name nothing shared.
    fn resources(&self, spec: &LoadedSpec, environment: &str) -> Result<Vec<Resource>> {
        let mut out = vec![];
        for name in spec.spec.services.keys() {
            let s = spec.service_settings::<LocalServiceConfig>(name, environment)?;
            if let Some(port) = s.value.port {
                out.push(Resource::new(
                    "local port",
                    format!("service {name}"),
                    [("port", Some(port.to_string()))],
                ));
            }
        }
        Ok(out)
    }

    fn build(&self, spec: &LoadedSpec, environment: &str) -> Result<DynProvider> {
        Ok(Arc::new(LocalProvider::from_spec(spec, environment)?))
    }
}
