//! A small stateful fake of the Render API, for the scenarios Prism's mock cannot play
//! (deploys that move from `created` to `live`, failures, 429s, slow answers). Prism's proxy
//! sits in front of it, so its answers are checked against the contract like our requests.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const API_KEY: &str = "rnd_test_key_4f1d";
pub const OWNER: &str = "tea-fake0001";

/// An injected failure for the next request about one service.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this status (with `Retry-After` when given).
    Status(u16, Option<u64>),
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// Answer 200 with a body that is not JSON.
    Malformed,
    /// Answer normally (so that the fault after it hits the request after).
    Pass,
    /// Do what was asked at once, then hold the answer this long (a platform that did the
    /// work and went silent: an abandoned request is still done).
    AnswerLate(Duration),
}

/// Render's own limit on deploy triggers, per workspace, scaled down to a short window.
#[derive(Debug, Clone, Copy)]
struct DeployLimit {
    limit: u32,
    window: Duration,
    started: Option<Instant>,
    used: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Worker,
    StaticSite,
    /// A web service, answered with its `url` and `openPorts` as Render answers it (the
    /// stand-in's contract makes the overlapping `service.serviceDetails` `oneOf` an `anyOf`,
    /// see `prism::contract`). Its `type` says `web_service`.
    Web,
    /// A private service (served like a web service, for the same reason).
    Private,
}

/// A Render Postgres or Key Value of the fake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Postgres,
    KeyValue,
}

#[derive(Debug)]
struct FakeDatastore {
    id: String,
    store: Store,
    name: String,
    owner: String,
    status: String,
    /// The statuses the next reads of `GET /postgres/{id}` (or key value) answer, one each;
    /// the last one stays.
    steps: VecDeque<String>,
    /// What it was created with (`POST` body, or the test's definition).
    definition: Value,
    /// When it was created (seconds since the epoch): its `createdAt`.
    created_at: u64,
}

#[derive(Debug)]
struct FakeDeploy {
    id: String,
    commit: Option<String>,
    image: Option<String>,
    status: String,
    steps: VecDeque<String>,
    trigger: &'static str,
    at: u64,
    /// A deploy planned by time rather than by reads: created then, live this long after.
    timed: Option<Timed>,
}

/// The moments of a deploy planned by time ([`Fake::plan_next_deploy_live_after`]).
#[derive(Debug, Clone, Copy)]
pub struct Timed {
    /// When the deploy was created (the trigger arrived).
    pub created: Instant,
    /// When the platform made it live: `created` + the planned delay.
    pub live_at: Instant,
    /// When a read of the deploy first answered `live`.
    pub seen_live: Option<Instant>,
}

#[derive(Debug)]
struct FakeJob {
    id: String,
    command: String,
    status: String,
    steps: VecDeque<String>,
    at: u64,
}

#[derive(Debug)]
struct FakeService {
    id: String,
    name: String,
    kind: Kind,
    deploys: Vec<FakeDeploy>,
    env: BTreeMap<String, String>,
    jobs: Vec<FakeJob>,
    deploy_plans: VecDeque<Vec<String>>,
    /// Go live this long after creation, for the next deploys (overrides `deploy_plans`).
    live_after: Option<Duration>,
    /// Answer the next deploy trigger `202 Queued` without a body, as Render does when a
    /// deploy is queued behind a running one.
    queue_next: bool,
    job_plans: VecDeque<Vec<String>>,
    logs: Vec<String>,
    domains: Vec<FakeDomain>,
    owner: String,
    /// What it was created with (`POST /services` body, or the test's definition): the
    /// service answers its type, repo, branch and details from it.
    definition: Option<Value>,
    /// When it was created (seconds since the epoch): its `createdAt`.
    created_at: u64,
}

#[derive(Debug)]
struct FakeDomain {
    id: String,
    name: String,
    verified: bool,
    /// Whether the DNS record now exists: the next `verify` makes the domain verified.
    dns_ready: bool,
    /// When it was added (seconds since the epoch): its `createdAt`.
    created_at: u64,
}

#[derive(Debug, Default)]
pub struct FakeState {
    services: BTreeMap<String, FakeService>,
    datastores: BTreeMap<String, FakeDatastore>,
    /// The statuses a datastore created later with this name goes through, one per read.
    datastore_plans: HashMap<String, Vec<String>>,
    /// Custom domains whose DNS record exists already when they are added.
    dns_ready: std::collections::HashSet<String>,
    faults: HashMap<String, VecDeque<Fault>>,
    requests: Vec<String>,
    /// When each of `requests` arrived.
    request_times: Vec<Instant>,
    clock: u64,
    /// Workspaces the key sees besides [`OWNER`] (a personal one, another team).
    other_owners: Vec<String>,
    /// `Ratelimit-*` headers on reads, as Render sends them: the limit a minute, and the
    /// reads of the current minute.
    read_limit: Option<(u64, Option<Instant>, u64)>,
    deploy_limit: Option<DeployLimit>,
    /// When the deploy limit refused a trigger (429).
    refused_deploys: Vec<Instant>,
    /// When each accepted deploy trigger arrived.
    accepted_deploys: Vec<Instant>,
}

/// Handle on the fake, shared by the tests of one binary.
#[derive(Debug, Clone)]
pub struct Fake {
    pub port: u16,
    state: Arc<Mutex<FakeState>>,
}

/// Seconds since the epoch, now: when a resource of the fake is created.
fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `secs` since the epoch as Render writes a `createdAt`.
fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

fn ts(n: u64) -> String {
    format!(
        "2026-01-01T{:02}:{:02}:{:02}Z",
        (n / 3600) % 24,
        (n / 60) % 60,
        n % 60
    )
}

impl Fake {
    /// Starts the fake on its own thread and runtime, so that it outlives any one test.
    pub fn start() -> Fake {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let app_state = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, router(app_state)).await.unwrap();
            });
        });
        Fake { port, state }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a service and returns its id.
    pub fn add_service(&self, name: &str, kind: Kind) -> String {
        insert_service(&mut self.lock(), name, kind, OWNER, None)
    }

    /// Makes the key see workspace `owner` too (`GET /owners` lists it after [`OWNER`]).
    /// Use a fake of its own: every lookup by name without `owner_id` then has two
    /// workspaces to choose from.
    pub fn add_owner(&self, owner: &str) {
        self.lock().other_owners.push(owner.to_owned());
    }

    /// Adds a service in workspace `owner` and returns its id.
    pub fn add_service_in(&self, owner: &str, name: &str, kind: Kind) -> String {
        insert_service(&mut self.lock(), name, kind, owner, None)
    }

    /// Adds a service defined as `POST /services` would define it (`type`, `repo`,
    /// `branch`, `serviceDetails`...), in workspace [`OWNER`], and returns its id.
    pub fn add_defined_service(&self, name: &str, definition: Value) -> String {
        let kind = kind_of(&definition);
        insert_service(&mut self.lock(), name, kind, OWNER, Some(definition))
    }

    /// Adds an available Postgres (or Key Value) named `name` to workspace [`OWNER`],
    /// defined as `POST /postgres` (or `/key-value`) would define it, and returns its id.
    pub fn add_datastore(&self, store: Store, name: &str, definition: Value) -> String {
        let mut s = self.lock();
        insert_datastore(&mut s, store, name, OWNER, definition, vec![])
    }

    /// Adds an available Postgres (or Key Value) named `name` to workspace `owner`, and
    /// returns its id.
    pub fn add_datastore_in(
        &self,
        owner: &str,
        store: Store,
        name: &str,
        definition: Value,
    ) -> String {
        let mut s = self.lock();
        insert_datastore(&mut s, store, name, owner, definition, vec![])
    }

    /// The statuses the datastore created later with name `name` answers, one per read
    /// (default `creating`, then `available`); the last one stays (`["creating"]`: stuck).
    pub fn plan_datastore(&self, name: &str, steps: &[&str]) {
        self.lock().datastore_plans.insert(
            name.to_owned(),
            steps.iter().map(|s| s.to_string()).collect(),
        );
    }

    /// The datastores named `name`, as `(id, status, definition)`.
    pub fn datastores_named(&self, name: &str) -> Vec<(String, String, Value)> {
        self.lock()
            .datastores
            .values()
            .filter(|d| d.name == name)
            .map(|d| (d.id.clone(), d.status.clone(), d.definition.clone()))
            .collect()
    }

    /// Removes service `id` as if it were deleted in the dashboard (no request recorded).
    pub fn remove_service(&self, id: &str) {
        self.lock().services.remove(id);
    }

    /// The ids of the services named `name`.
    pub fn services_named(&self, name: &str) -> Vec<String> {
        self.lock()
            .services
            .values()
            .filter(|s| s.name == name)
            .map(|s| s.id.clone())
            .collect()
    }

    /// The names of the custom domains of service `id`.
    pub fn custom_domains(&self, id: &str) -> Vec<String> {
        self.lock().services[id]
            .domains
            .iter()
            .map(|d| d.name.clone())
            .collect()
    }

    /// When custom domain `name` is added later, its DNS record exists already: Render's
    /// next re-check verifies it.
    pub fn dns_ready_for(&self, name: &str) {
        self.lock().dns_ready.insert(name.to_owned());
    }

    /// Every request seen, as `METHOD /path?query body`, in order.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    /// Every request seen that mentions `text` (a name, an id) in its path or body.
    pub fn requests_mentioning(&self, text: &str) -> Vec<String> {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.contains(text))
            .cloned()
            .collect()
    }

    /// The statuses the next deploy of `id` goes through after `created`, one per read.
    pub fn plan_next_deploy(&self, id: &str, steps: &[&str]) {
        self.lock()
            .services
            .get_mut(id)
            .unwrap()
            .deploy_plans
            .push_back(steps.iter().map(|s| s.to_string()).collect());
    }

    /// Every later deploy of `id` is `build_in_progress` until `after` has passed since it
    /// was created, then `live`, whoever reads it and how often (the overhead benchmark).
    pub fn plan_next_deploy_live_after(&self, id: &str, after: Duration) {
        self.lock().services.get_mut(id).unwrap().live_after = Some(after);
    }

    /// The moments of the newest deploy of `id`, when it was planned by time.
    pub fn timed_deploy(&self, id: &str) -> Option<Timed> {
        self.lock().services[id].deploys.last()?.timed
    }

    /// When each request about service `id` arrived, with the request (`METHOD /path ...`).
    pub fn requests_with_times(&self, id: &str) -> Vec<(Instant, String)> {
        let s = self.lock();
        s.request_times
            .iter()
            .zip(&s.requests)
            .filter(|(_, r)| r.contains(id))
            .map(|(t, r)| (*t, r.clone()))
            .collect()
    }

    pub fn queue_next_deploy(&self, id: &str) {
        self.lock().services.get_mut(id).unwrap().queue_next = true;
    }

    pub fn plan_next_job(&self, id: &str, steps: &[&str]) {
        self.lock()
            .services
            .get_mut(id)
            .unwrap()
            .job_plans
            .push_back(steps.iter().map(|s| s.to_string()).collect());
    }

    pub fn set_env(&self, id: &str, key: &str, value: &str) {
        self.lock()
            .services
            .get_mut(id)
            .unwrap()
            .env
            .insert(key.to_owned(), value.to_owned());
    }

    /// The service's env vars as the fake holds them, in order.
    pub fn env(&self, id: &str) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self.lock().services[id]
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.sort();
        out
    }

    pub fn set_logs(&self, id: &str, lines: &[&str]) {
        self.lock().services.get_mut(id).unwrap().logs =
            lines.iter().map(|s| s.to_string()).collect();
    }

    /// Records a deploy of `commit` that is live now (what an earlier run left), returning
    /// its id.
    pub fn add_live_deploy(&self, id: &str, commit: &str) -> String {
        let mut s = self.lock();
        s.clock += 1;
        let at = s.clock;
        let svc = s.services.get_mut(id).unwrap();
        for d in svc.deploys.iter_mut().filter(|d| d.status == "live") {
            d.status = "deactivated".into();
        }
        let deploy = format!("dep-{at:06}");
        svc.deploys.push(FakeDeploy {
            id: deploy.clone(),
            commit: Some(commit.to_owned()),
            image: None,
            status: "live".into(),
            steps: VecDeque::new(),
            trigger: "api",
            at,
            timed: None,
        });
        deploy
    }

    /// A live deploy of `id` that Render reports without a commit (`commit: null`: an
    /// image or manual deploy).
    pub fn add_live_deploy_without_commit(&self, id: &str) -> String {
        let deploy = self.add_live_deploy(id, "unused");
        let mut s = self.lock();
        let svc = s.services.get_mut(id).unwrap();
        svc.deploys.last_mut().unwrap().commit = None;
        deploy
    }

    /// The commit of the deploy of `id` that is live now, if any.
    pub fn live_commit(&self, id: &str) -> Option<String> {
        self.lock().services[id]
            .deploys
            .iter()
            .find(|d| d.status == "live")
            .and_then(|d| d.commit.clone())
    }

    /// Adds custom domain `name` to service `id`, `verified` or not; when not, `dns_ready`
    /// says whether Render's next re-check (`verify`) finds the record. Returns its id.
    pub fn add_custom_domain(
        &self,
        id: &str,
        name: &str,
        verified: bool,
        dns_ready: bool,
    ) -> String {
        let mut s = self.lock();
        s.clock += 1;
        let domain_id = format!("cdm-{:06}", s.clock);
        s.services.get_mut(id).unwrap().domains.push(FakeDomain {
            id: domain_id.clone(),
            name: name.to_owned(),
            verified,
            dns_ready,
            created_at: now_secs(),
        });
        domain_id
    }

    /// Sends Render's `Ratelimit-Limit|Remaining|Reset` on every read: `limit` a minute.
    pub fn advertise_read_limit(&self, limit: u64) {
        self.lock().read_limit = Some((limit, None, 0));
    }

    /// Limits deploy triggers of the whole workspace to `limit` per `window`, refusing the
    /// others with 429 and Render's whole-second, rounded-down `Ratelimit-Reset`.
    pub fn limit_deploys(&self, limit: u32, window: Duration) {
        self.lock().deploy_limit = Some(DeployLimit {
            limit,
            window,
            started: None,
            used: 0,
        });
    }

    /// When the deploy limit refused triggers, and when it accepted them.
    pub fn deploy_limit_log(&self) -> (Vec<Instant>, Vec<Instant>) {
        let s = self.lock();
        (s.refused_deploys.clone(), s.accepted_deploys.clone())
    }

    /// How many deploys service `id` has.
    pub fn deploys_of(&self, id: &str) -> usize {
        self.lock().services[id].deploys.len()
    }

    /// Every request seen, with when it arrived.
    pub fn all_requests_with_times(&self) -> Vec<(Instant, String)> {
        let s = self.lock();
        s.request_times
            .iter()
            .copied()
            .zip(s.requests.iter().cloned())
            .collect()
    }

    /// Queues a failure for the next request that names service (or datastore) `id`, or,
    /// with `list /services NAME` (`/postgres`, `/key-value`), for the next list by name.
    pub fn inject(&self, id: &str, fault: Fault) {
        self.lock()
            .faults
            .entry(id.to_owned())
            .or_default()
            .push_back(fault);
    }

    pub fn pending_faults(&self, id: &str) -> usize {
        self.lock().faults.get(id).map_or(0, VecDeque::len)
    }

    /// Every request seen about service `id`, as `METHOD /path?query body`.
    pub fn requests_for(&self, id: &str) -> Vec<String> {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.contains(id))
            .cloned()
            .collect()
    }

    pub fn deploy_status(&self, id: &str, deploy: &str) -> String {
        self.lock().services[id]
            .deploys
            .iter()
            .find(|d| d.id == deploy)
            .unwrap()
            .status
            .clone()
    }
}

impl Fake {
    /// The whole state of the fake — every service (its definition, deploys, variables, jobs,
    /// custom domains) and every datastore — as one stable text: equal texts, equal states.
    /// What it was asked (the request log, faults, limits) is not state.
    pub fn digest(&self) -> String {
        let s = self.lock();
        let mut out = String::new();
        for svc in s.services.values() {
            out.push_str(&format!(
                "service {} {:?} {:?} owner={} at={} def={}\n",
                svc.id,
                svc.name,
                svc.kind,
                svc.owner,
                svc.created_at,
                svc.definition.clone().unwrap_or(Value::Null)
            ));
            for (k, v) in &svc.env {
                out.push_str(&format!("  env {k}={v}\n"));
            }
            for d in &svc.deploys {
                out.push_str(&format!(
                    "  deploy {} {} {:?} {:?}\n",
                    d.id, d.status, d.commit, d.image
                ));
            }
            for j in &svc.jobs {
                out.push_str(&format!("  job {} {} {:?}\n", j.id, j.status, j.command));
            }
            for d in &svc.domains {
                out.push_str(&format!(
                    "  domain {} {} verified={} at={}\n",
                    d.id, d.name, d.verified, d.created_at
                ));
            }
        }
        for d in s.datastores.values() {
            out.push_str(&format!(
                "datastore {} {:?} {:?} owner={} {} at={} def={}\n",
                d.id, d.store, d.name, d.owner, d.status, d.created_at, d.definition
            ));
        }
        out
    }

    /// Makes resource `id` (a service, datastore or custom domain) say it was created
    /// `secs` seconds earlier than it says now.
    pub fn backdate(&self, id: &str, secs: u64) {
        let mut s = self.lock();
        if let Some(svc) = s.services.get_mut(id) {
            svc.created_at -= secs;
            return;
        }
        if let Some(d) = s.datastores.get_mut(id) {
            d.created_at -= secs;
            return;
        }
        for svc in s.services.values_mut() {
            if let Some(d) = svc.domains.iter_mut().find(|d| d.id == id) {
                d.created_at -= secs;
                return;
            }
        }
        panic!("no resource {id} in the fake");
    }
}

type Shared = Arc<Mutex<FakeState>>;

/// A disk id as the contract writes them: `dsk-` and 20 lowercase letters or digits.
fn disk_id(service: &str) -> String {
    let tail: String = service
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    format!("dsk-{:0>20}", &tail[tail.len().saturating_sub(20)..])
}

fn kind_of(definition: &Value) -> Kind {
    match definition["type"].as_str() {
        Some("web_service") => Kind::Web,
        Some("private_service") => Kind::Private,
        Some("static_site") => Kind::StaticSite,
        _ => Kind::Worker,
    }
}

fn insert_service(
    s: &mut FakeState,
    name: &str,
    kind: Kind,
    owner: &str,
    definition: Option<Value>,
) -> String {
    s.clock += 1;
    let id = format!(
        "srv-{}{:04}",
        name.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(8)
            .collect::<String>(),
        s.clock
    );
    s.services.insert(
        id.clone(),
        FakeService {
            id: id.clone(),
            name: name.to_owned(),
            kind,
            deploys: vec![],
            env: BTreeMap::new(),
            jobs: vec![],
            deploy_plans: VecDeque::new(),
            live_after: None,
            queue_next: false,
            job_plans: VecDeque::new(),
            logs: vec![],
            domains: vec![],
            owner: owner.to_owned(),
            definition,
            created_at: now_secs(),
        },
    );
    id
}

fn insert_datastore(
    s: &mut FakeState,
    store: Store,
    name: &str,
    owner: &str,
    definition: Value,
    steps: Vec<String>,
) -> String {
    s.clock += 1;
    let prefix = match store {
        Store::Postgres => "dpg",
        Store::KeyValue => "red",
    };
    let id = format!("{prefix}-fake{:06}", s.clock);
    let mut steps: VecDeque<String> = steps.into();
    let status = steps.pop_front().unwrap_or_else(|| "available".into());
    s.datastores.insert(
        id.clone(),
        FakeDatastore {
            id: id.clone(),
            store,
            name: name.to_owned(),
            owner: owner.to_owned(),
            status,
            steps,
            definition,
            created_at: now_secs(),
        },
    );
    id
}

fn router(state: Shared) -> Router {
    Router::new()
        .route("/services", get(list_services).post(create_service))
        .route(
            "/postgres",
            get(|st, q| list_datastores(st, q, Store::Postgres))
                .post(|st, b| create_datastore(st, b, Store::Postgres)),
        )
        .route(
            "/postgres/{id}",
            get(get_datastore).delete(|st, p| delete_datastore(st, p, Store::Postgres)),
        )
        .route("/postgres/{id}/connection-info", get(connection_info))
        .route(
            "/key-value",
            get(|st, q| list_datastores(st, q, Store::KeyValue))
                .post(|st, b| create_datastore(st, b, Store::KeyValue)),
        )
        .route(
            "/key-value/{id}",
            get(get_datastore).delete(|st, p| delete_datastore(st, p, Store::KeyValue)),
        )
        .route("/key-value/{id}/connection-info", get(connection_info))
        .route("/services/{id}", get(get_service).delete(delete_service))
        .route(
            "/services/{id}/deploys",
            get(list_deploys).post(create_deploy),
        )
        .route("/services/{id}/deploys/{deploy}", get(get_deploy))
        .route(
            "/services/{id}/deploys/{deploy}/cancel",
            post(cancel_deploy),
        )
        .route("/services/{id}/rollback", post(rollback))
        .route("/services/{id}/env-vars", get(list_env))
        .route(
            "/services/{id}/env-vars/{key}",
            get(get_env).put(put_env).delete(delete_env),
        )
        .route("/services/{id}/jobs", post(create_job))
        .route("/services/{id}/jobs/{job}", get(get_job))
        .route(
            "/services/{id}/custom-domains",
            get(list_domains).post(create_domain),
        )
        .route(
            "/services/{id}/custom-domains/{domain}",
            get(get_domain).delete(delete_domain),
        )
        .route(
            "/services/{id}/custom-domains/{domain}/verify",
            post(verify_domain),
        )
        .route("/logs", get(logs))
        .route("/owners", get(list_owners))
        .layer(middleware::from_fn_with_state(state.clone(), gate))
        .with_state(state)
}

fn lock(s: &Shared) -> MutexGuard<'_, FakeState> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "id": "fake-error", "message": message })),
    )
        .into_response()
}

/// Checks the key, records the request, and plays an injected fault.
async fn gate(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if auth != format!("Bearer {API_KEY}") {
        return error(StatusCode::UNAUTHORIZED, "bad key");
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let uri = parts.uri.to_string();
    let created = matches!(
        (parts.method.as_str(), parts.uri.path()),
        ("POST", "/services" | "/postgres" | "/key-value")
    );
    let subject = if created {
        // A creation is about the name it creates.
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|b| b["name"].as_str().map(str::to_owned))
    } else {
        uri.strip_prefix("/postgres/")
            .or_else(|| uri.strip_prefix("/key-value/"))
            .map(|r| r.split(['/', '?']).next().unwrap_or_default().to_owned())
    };
    // A list of a collection by name (`GET /services?name=web`) is about that list:
    // `list /services web`.
    let listed = (parts.method == axum::http::Method::GET
        && matches!(parts.uri.path(), "/services" | "/postgres" | "/key-value"))
    .then(|| {
        let name = parts
            .uri
            .query()
            .unwrap_or_default()
            .split('&')
            .find_map(|p| p.strip_prefix("name="))
            .unwrap_or_default();
        format!("list {} {name}", parts.uri.path())
    });
    let subject = subject
        .filter(|_| listed.is_none())
        .or(listed)
        .or_else(|| {
            uri.strip_prefix("/services/")
                .map(|r| r.split(['/', '?']).next().unwrap_or_default().to_owned())
        })
        .or_else(|| {
            uri.split("resource=")
                .nth(1)
                .map(|r| r.split('&').next().unwrap_or_default().to_owned())
        })
        .unwrap_or_default();
    let fault = {
        let mut s = lock(&state);
        s.requests.push(format!(
            "{} {} {}",
            parts.method,
            uri,
            String::from_utf8_lossy(&bytes)
        ));
        let now = Instant::now();
        s.request_times.push(now);
        let is_deploy = parts.method == axum::http::Method::POST
            && parts.uri.path().starts_with("/services/")
            && parts.uri.path().ends_with("/deploys");
        if is_deploy && let Some(limit) = s.deploy_limit.as_mut() {
            if limit
                .started
                .is_none_or(|t| now.duration_since(t) >= limit.window)
            {
                limit.started = Some(now);
                limit.used = 0;
            }
            let left = limit.window - now.duration_since(limit.started.unwrap());
            let (max, used) = (limit.limit, limit.used);
            if used >= max {
                s.refused_deploys.push(now);
                let mut resp = error(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded");
                let h = resp.headers_mut();
                h.insert("ratelimit-limit", HeaderValue::from(max));
                h.insert("ratelimit-remaining", HeaderValue::from(0u32));
                // Whole seconds, rounded down, as Render sends them.
                h.insert("ratelimit-reset", HeaderValue::from(left.as_secs()));
                return resp;
            }
            limit.used += 1;
            s.accepted_deploys.push(now);
        }
        let read_headers = if parts.method == axum::http::Method::GET
            && let Some((limit, started, used)) = s.read_limit.as_mut()
        {
            if started.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60)) {
                *started = Some(now);
                *used = 0;
            }
            *used += 1;
            let left = Duration::from_secs(60) - now.duration_since(started.unwrap());
            Some((*limit, limit.saturating_sub(*used), left.as_secs()))
        } else {
            None
        };
        (
            s.faults.get_mut(&subject).and_then(VecDeque::pop_front),
            read_headers,
        )
    };
    let (fault, read_headers) = fault;
    match fault {
        Some(Fault::Status(code, retry_after)) => {
            let mut resp = error(StatusCode::from_u16(code).unwrap(), "injected");
            if let Some(secs) = retry_after {
                resp.headers_mut().insert(
                    "retry-after",
                    HeaderValue::from_str(&secs.to_string()).unwrap(),
                );
            }
            return resp;
        }
        Some(Fault::Malformed) => {
            let mut h = HeaderMap::new();
            h.insert("content-type", HeaderValue::from_static("application/json"));
            return (StatusCode::OK, h, "{\"id\": \"dep-").into_response();
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::Pass) | None => {}
        Some(Fault::AnswerLate(d)) => {
            let resp = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            tokio::time::sleep(d).await;
            return resp;
        }
    }
    let mut resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if let Some((limit, remaining, reset)) = read_headers {
        let h = resp.headers_mut();
        h.insert("ratelimit-limit", HeaderValue::from(limit));
        h.insert("ratelimit-remaining", HeaderValue::from(remaining));
        h.insert("ratelimit-reset", HeaderValue::from(reset));
    }
    resp
}

fn service_json(s: &FakeService) -> Value {
    let def = s.definition.clone().unwrap_or(Value::Null);
    let asked = &def["serviceDetails"];
    let details = match s.kind {
        Kind::Worker if s.definition.is_none() => json!({
            "env": "docker", "runtime": "docker",
            "envSpecificDetails": { "dockerCommand": "", "dockerContext": ".", "dockerfilePath": "./Dockerfile" },
            "numInstances": 1, "plan": "starter", "region": "oregon", "buildPlan": "starter"
        }),
        Kind::StaticSite => json!({
            "buildCommand": "npm run build", "publishPath": "dist", "buildPlan": "starter",
            "url": format!("https://{}.onrender.com", s.name)
        }),
        Kind::Worker | Kind::Web | Kind::Private => {
            let runtime = asked["runtime"].as_str().unwrap_or("docker");
            let e = &asked["envSpecificDetails"];
            let env_specific = if runtime == "docker" {
                json!({
                    "dockerCommand": e["dockerCommand"].as_str().unwrap_or(""),
                    "dockerContext": e["dockerContext"].as_str().unwrap_or("."),
                    "dockerfilePath": e["dockerfilePath"].as_str().unwrap_or("./Dockerfile"),
                })
            } else {
                json!({
                    "buildCommand": e["buildCommand"].as_str().unwrap_or(""),
                    "startCommand": e["startCommand"].as_str().unwrap_or(""),
                })
            };
            let mut d = json!({
                "env": runtime, "runtime": runtime, "envSpecificDetails": env_specific,
                "numInstances": 1,
                "plan": asked["plan"].as_str().unwrap_or("starter"),
                "region": asked["region"].as_str().unwrap_or("oregon"),
                "buildPlan": "starter",
            });
            if let Some(p) = asked["preDeployCommand"].as_str() {
                d["envSpecificDetails"]["preDeployCommand"] = json!(p);
            }
            if s.kind == Kind::Web {
                // As Render answers a web service: its health check, its ports and its
                // `onrender.com` URL (what `${services.NAME.url}` is).
                d["healthCheckPath"] = json!(asked["healthCheckPath"].as_str().unwrap_or(""));
                d["openPorts"] = json!([{ "port": 10000, "protocol": "TCP" }]);
                d["url"] = json!(format!("https://{}.onrender.com", s.name));
            }
            if let Some(disk) = asked.get("disk").filter(|d| d.is_object()) {
                d["disk"] = json!({
                    "id": disk_id(&s.id), "name": disk["name"],
                    "mountPath": disk["mountPath"], "sizeGB": disk["sizeGB"].as_u64().unwrap_or(1),
                });
            }
            d
        }
    };
    let mut v = json!({
        "id": s.id, "name": s.name, "ownerId": s.owner, "autoDeploy": "no",
        "createdAt": rfc3339(s.created_at), "updatedAt": rfc3339(s.created_at),
        "dashboardUrl": format!("https://dashboard.render.com/worker/{}", s.id),
        "notifyOnFail": "default", "rootDir": def["rootDir"].as_str().unwrap_or(""), "slug": s.name,
        "suspended": "not_suspended", "suspenders": [],
        "type": match s.kind {
            Kind::Worker => "background_worker",
            Kind::StaticSite => "static_site",
            Kind::Web => "web_service",
            Kind::Private => "private_service",
        },
        "serviceDetails": details,
    });
    for key in ["repo", "branch"] {
        if let Some(x) = def[key].as_str() {
            v[key] = json!(x);
        }
    }
    v
}

fn deploy_json(d: &FakeDeploy) -> Value {
    let mut v = json!({
        "id": d.id, "status": d.status, "trigger": d.trigger,
        "createdAt": ts(d.at), "updatedAt": ts(d.at + 1), "startedAt": ts(d.at),
    });
    if let Some(c) = &d.commit {
        v["commit"] = json!({ "id": c, "message": "a commit", "createdAt": ts(d.at) });
    }
    if let Some(i) = &d.image {
        v["image"] = json!({ "ref": i, "sha": "sha256:0000", "registryCredential": "" });
    }
    if !matches!(
        d.status.as_str(),
        "created"
            | "queued"
            | "build_in_progress"
            | "update_in_progress"
            | "pre_deploy_in_progress"
    ) {
        v["finishedAt"] = json!(ts(d.at + 2));
    }
    v
}

fn page<T>(items: Vec<(String, T)>, q: &HashMap<String, String>) -> Vec<(String, T)> {
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(20);
    let start = match q.get("cursor") {
        Some(c) => items
            .iter()
            .position(|(k, _)| k == c)
            .map_or(items.len(), |i| i + 1),
        None => 0,
    };
    items.into_iter().skip(start).take(limit).collect()
}

async fn list_services(
    State(st): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = lock(&st);
    let items: Vec<(String, Value)> = s
        .services
        .values()
        .filter(|svc| {
            q.get("name")
                .is_none_or(|n| n.split(',').any(|n| n == svc.name))
                && q.get("ownerId")
                    .is_none_or(|o| o.split(',').any(|o| o == svc.owner))
        })
        .map(|svc| (svc.id.clone(), service_json(svc)))
        .collect();
    let out: Vec<Value> = page(items, &q)
        .into_iter()
        .map(|(c, v)| json!({ "service": v, "cursor": c }))
        .collect();
    axum::Json(out).into_response()
}

async fn get_service(State(st): State<Shared>, Path(id): Path<String>) -> Response {
    match lock(&st).services.get(&id) {
        Some(s) => axum::Json(service_json(s)).into_response(),
        None => error(StatusCode::NOT_FOUND, "service not found"),
    }
}

async fn list_deploys(
    State(st): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut s = lock(&st);
    let Some(svc) = s.services.get_mut(&id) else {
        return error(StatusCode::NOT_FOUND, "service not found");
    };
    settle_timed(svc);
    let items: Vec<(String, Value)> = svc
        .deploys
        .iter()
        .rev()
        .filter(|d| {
            q.get("status")
                .is_none_or(|st| st.split(',').any(|x| x == d.status))
        })
        .map(|d| (d.id.clone(), deploy_json(d)))
        .collect();
    let out: Vec<Value> = page(items, &q)
        .into_iter()
        .map(|(c, v)| json!({ "deploy": v, "cursor": c }))
        .collect();
    axum::Json(out).into_response()
}

fn new_deploy(
    s: &mut FakeState,
    id: &str,
    commit: Option<String>,
    image: Option<String>,
    trigger: &'static str,
) -> Option<Value> {
    s.clock += 1;
    let at = s.clock;
    let svc = s.services.get_mut(id)?;
    let steps = svc.deploy_plans.pop_front().unwrap_or_else(|| {
        ["build_in_progress", "update_in_progress", "live"]
            .iter()
            .map(|x| x.to_string())
            .collect()
    });
    let timed = svc.live_after.map(|after| {
        let created = Instant::now();
        Timed {
            created,
            live_at: created + after,
            seen_live: None,
        }
    });
    let d = FakeDeploy {
        id: format!("dep-{at:06}"),
        commit,
        image,
        status: if timed.is_some() {
            "build_in_progress".into()
        } else {
            "created".into()
        },
        steps: if timed.is_some() {
            VecDeque::new()
        } else {
            steps.into()
        },
        trigger,
        at,
        timed,
    };
    let v = deploy_json(&d);
    svc.deploys.push(d);
    Some(v)
}

async fn create_deploy(
    State(st): State<Shared>,
    Path(id): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut s = lock(&st);
    let commit = body
        .get("commitId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let image = body
        .get("imageUrl")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let queued = s
        .services
        .get_mut(&id)
        .is_some_and(|svc| std::mem::take(&mut svc.queue_next));
    match new_deploy(&mut s, &id, commit, image, "api") {
        Some(_) if queued => StatusCode::ACCEPTED.into_response(),
        Some(v) => (StatusCode::CREATED, axum::Json(v)).into_response(),
        None => error(StatusCode::NOT_FOUND, "service not found"),
    }
}

async fn get_deploy(
    State(st): State<Shared>,
    Path((id, deploy)): Path<(String, String)>,
) -> Response {
    let mut s = lock(&st);
    let Some(svc) = s.services.get_mut(&id) else {
        return error(StatusCode::NOT_FOUND, "service not found");
    };
    let Some(i) = svc.deploys.iter().position(|d| d.id == deploy) else {
        return error(StatusCode::NOT_FOUND, "deploy not found");
    };
    settle_timed(svc);
    if svc.deploys[i].status == "live"
        && let Some(t) = &mut svc.deploys[i].timed
    {
        t.seen_live.get_or_insert_with(Instant::now);
    }
    // Each read moves the deploy one step along its plan.
    if let Some(next) = svc.deploys[i].steps.pop_front() {
        if next == "live" {
            for d in svc.deploys.iter_mut().filter(|d| d.status == "live") {
                d.status = "deactivated".into();
            }
        }
        svc.deploys[i].status = next;
    }
    axum::Json(deploy_json(&svc.deploys[i])).into_response()
}

/// Deploys planned by time that are due go live (the one live before is deactivated).
fn settle_timed(svc: &mut FakeService) {
    let now = Instant::now();
    let due: Vec<usize> = (0..svc.deploys.len())
        .filter(|i| {
            let d = &svc.deploys[*i];
            d.status == "build_in_progress" && d.timed.is_some_and(|t| now >= t.live_at)
        })
        .collect();
    for i in due {
        for d in svc.deploys.iter_mut().filter(|d| d.status == "live") {
            d.status = "deactivated".into();
        }
        svc.deploys[i].status = "live".into();
    }
}

async fn cancel_deploy(
    State(st): State<Shared>,
    Path((id, deploy)): Path<(String, String)>,
) -> Response {
    let mut s = lock(&st);
    let Some(d) = s
        .services
        .get_mut(&id)
        .and_then(|svc| svc.deploys.iter_mut().find(|d| d.id == deploy))
    else {
        return error(StatusCode::NOT_FOUND, "deploy not found");
    };
    d.status = "canceled".into();
    d.steps.clear();
    axum::Json(deploy_json(d)).into_response()
}

async fn rollback(
    State(st): State<Shared>,
    Path(id): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut s = lock(&st);
    let target = body
        .get("deployId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let Some(found) = s
        .services
        .get(&id)
        .and_then(|svc| svc.deploys.iter().find(|d| d.id == target))
    else {
        return error(StatusCode::NOT_FOUND, "deploy not found");
    };
    let (commit, image) = (found.commit.clone(), found.image.clone());
    let v = new_deploy(&mut s, &id, commit, image, "rollback").unwrap();
    (StatusCode::CREATED, axum::Json(v)).into_response()
}

async fn list_env(
    State(st): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = lock(&st);
    let Some(svc) = s.services.get(&id) else {
        return error(StatusCode::NOT_FOUND, "service not found");
    };
    let items: Vec<(String, Value)> = svc
        .env
        .iter()
        .map(|(k, v)| (k.clone(), json!({ "key": k, "value": v })))
        .collect();
    let out: Vec<Value> = page(items, &q)
        .into_iter()
        .map(|(c, v)| json!({ "envVar": v, "cursor": c }))
        .collect();
    axum::Json(out).into_response()
}

async fn get_env(State(st): State<Shared>, Path((id, key)): Path<(String, String)>) -> Response {
    let s = lock(&st);
    match s.services.get(&id).and_then(|svc| svc.env.get(&key)) {
        Some(v) => axum::Json(json!({ "key": key, "value": v })).into_response(),
        None => error(StatusCode::NOT_FOUND, "env var not found"),
    }
}

async fn put_env(
    State(st): State<Shared>,
    Path((id, key)): Path<(String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut s = lock(&st);
    let Some(svc) = s.services.get_mut(&id) else {
        return error(StatusCode::NOT_FOUND, "service not found");
    };
    let value = body
        .get("value")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    svc.env.insert(key.clone(), value.clone());
    axum::Json(json!({ "key": key, "value": value })).into_response()
}

async fn delete_env(State(st): State<Shared>, Path((id, key)): Path<(String, String)>) -> Response {
    let mut s = lock(&st);
    match s.services.get_mut(&id).and_then(|svc| svc.env.remove(&key)) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => error(StatusCode::NOT_FOUND, "env var not found"),
    }
}

fn job_json(service: &str, j: &FakeJob) -> Value {
    let mut v = json!({
        "id": j.id, "serviceId": service, "startCommand": j.command, "planId": "plan-srv-004",
        "status": j.status, "createdAt": ts(j.at),
    });
    if j.status != "pending" {
        v["startedAt"] = json!(ts(j.at + 1));
    }
    v
}

async fn create_job(
    State(st): State<Shared>,
    Path(id): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut s = lock(&st);
    s.clock += 1;
    let at = s.clock;
    let Some(svc) = s.services.get_mut(&id) else {
        return error(StatusCode::NOT_FOUND, "service not found");
    };
    let steps = svc
        .job_plans
        .pop_front()
        .unwrap_or_else(|| vec!["running".into(), "succeeded".into()]);
    let job = FakeJob {
        id: format!("job-{at:020}"),
        command: body
            .get("startCommand")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        status: "pending".into(),
        steps: steps.into(),
        at,
    };
    let v = job_json(&id, &job);
    svc.jobs.push(job);
    (StatusCode::CREATED, axum::Json(v)).into_response()
}

async fn get_job(State(st): State<Shared>, Path((id, job)): Path<(String, String)>) -> Response {
    let mut s = lock(&st);
    let Some(j) = s
        .services
        .get_mut(&id)
        .and_then(|svc| svc.jobs.iter_mut().find(|j| j.id == job))
    else {
        return error(StatusCode::NOT_FOUND, "job not found");
    };
    if let Some(next) = j.steps.pop_front() {
        j.status = next;
    }
    let v = job_json(&id, j);
    axum::Json(v).into_response()
}

async fn logs(State(st): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let s = lock(&st);
    let resource = q.get("resource").cloned().unwrap_or_default();
    let Some(svc) = s.services.get(&resource) else {
        return error(StatusCode::NOT_FOUND, "resource not found");
    };
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(20);
    // Newest first, as `direction=backward` asks.
    let lines: Vec<Value> = svc
        .logs
        .iter()
        .enumerate()
        .rev()
        .take(limit)
        .map(|(i, m)| {
            json!({ "id": format!("log-{i}"), "message": m, "timestamp": ts(i as u64),
                    "labels": [{ "name": "resource", "value": resource }] })
        })
        .collect();
    axum::Json(
        json!({ "hasMore": false, "nextStartTime": ts(0), "nextEndTime": ts(0), "logs": lines }),
    )
    .into_response()
}

fn domain_json(service: &FakeService, d: &FakeDomain) -> Value {
    let labels: Vec<&str> = d.name.split('.').collect();
    json!({
        "id": d.id, "name": d.name,
        "domainType": if labels.len() == 2 { "apex" } else { "subdomain" },
        "publicSuffix": labels[labels.len().saturating_sub(2)..].join("."),
        "redirectForName": "",
        "verificationStatus": if d.verified { "verified" } else { "unverified" },
        "createdAt": rfc3339(d.created_at),
        "server": { "id": service.id, "name": service.name },
    })
}

fn find_domain<'a>(svc: &'a mut FakeService, key: &str) -> Option<&'a mut FakeDomain> {
    svc.domains
        .iter_mut()
        .find(|d| d.id == key || d.name == key)
}

async fn list_domains(
    State(st): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = lock(&st);
    let Some(svc) = s.services.get(&id) else {
        return error(StatusCode::NOT_FOUND, "service not found");
    };
    let items: Vec<(String, Value)> = svc
        .domains
        .iter()
        .map(|d| (d.id.clone(), domain_json(svc, d)))
        .collect();
    let out: Vec<Value> = page(items, &q)
        .into_iter()
        .map(|(c, v)| json!({ "customDomain": v, "cursor": c }))
        .collect();
    axum::Json(out).into_response()
}

async fn get_domain(
    State(st): State<Shared>,
    Path((id, domain)): Path<(String, String)>,
) -> Response {
    let mut s = lock(&st);
    let Some(svc) = s.services.get_mut(&id) else {
        return error(StatusCode::NOT_FOUND, "service not found");
    };
    match find_domain(svc, &domain).map(|d| d.id.clone()) {
        Some(found) => {
            let d = svc.domains.iter().find(|d| d.id == found).unwrap();
            axum::Json(domain_json(svc, d)).into_response()
        }
        None => error(StatusCode::NOT_FOUND, "custom domain not found"),
    }
}

/// Render's "Verify": looks at the DNS again; the domain is verified once its record exists.
async fn verify_domain(
    State(st): State<Shared>,
    Path((id, domain)): Path<(String, String)>,
) -> Response {
    let mut s = lock(&st);
    let Some(d) = s
        .services
        .get_mut(&id)
        .and_then(|svc| find_domain(svc, &domain))
    else {
        return error(StatusCode::NOT_FOUND, "custom domain not found");
    };
    if d.dns_ready {
        d.verified = true;
    }
    StatusCode::ACCEPTED.into_response()
}

async fn create_service(State(st): State<Shared>, axum::Json(body): axum::Json<Value>) -> Response {
    let mut s = lock(&st);
    let name = body["name"].as_str().unwrap_or_default().to_owned();
    let owner = body["ownerId"].as_str().unwrap_or(OWNER).to_owned();
    if s.services
        .values()
        .any(|svc| svc.name == name && svc.owner == owner)
    {
        return error(StatusCode::CONFLICT, "a service with this name exists");
    }
    let kind = kind_of(&body);
    let id = insert_service(&mut s, &name, kind, &owner, Some(body));
    let v = service_json(&s.services[&id]);
    (StatusCode::CREATED, axum::Json(json!({ "service": v }))).into_response()
}

async fn list_owners(State(st): State<Shared>) -> Response {
    let s = lock(&st);
    let out: Vec<Value> = std::iter::once(OWNER.to_owned())
        .chain(s.other_owners.iter().cloned())
        .map(|o| json!({ "owner": owner_json(&o), "cursor": o }))
        .collect();
    axum::Json(out).into_response()
}

fn owner_json(id: &str) -> Value {
    json!({ "id": id, "name": "Fake team", "email": "team@example.com", "type": "team" })
}

fn datastore_json(d: &FakeDatastore) -> Value {
    let def = &d.definition;
    let region = def["region"].as_str().unwrap_or("oregon");
    match d.store {
        Store::Postgres => {
            let mut v = json!({
                "id": d.id, "ipAllowList": [], "createdAt": rfc3339(d.created_at), "updatedAt": rfc3339(d.created_at),
                "databaseName": def["databaseName"].as_str().unwrap_or("app_x1"),
                "databaseUser": def["databaseUser"].as_str().unwrap_or("app_x1_user"),
                "highAvailabilityEnabled": def["enableHighAvailability"].as_bool().unwrap_or(false),
                "name": d.name, "owner": owner_json(&d.owner),
                "plan": def["plan"].as_str().unwrap_or("basic_256mb"),
                "region": region, "readReplicas": [], "role": "primary", "status": d.status,
                "version": def["version"].as_str().unwrap_or("16"),
                "suspended": "not_suspended", "suspenders": [],
                "dashboardUrl": format!("https://dashboard.render.com/d/{}", d.id),
                "diskAutoscalingEnabled": false,
                "project": { "id": "prj-fake", "name": "fake" },
            });
            if let Some(gb) = def["diskSizeGB"].as_u64() {
                v["diskSizeGB"] = json!(gb);
            }
            v
        }
        Store::KeyValue => json!({
            "id": d.id, "createdAt": rfc3339(d.created_at), "updatedAt": rfc3339(d.created_at), "status": d.status,
            "region": region, "plan": def["plan"].as_str().unwrap_or("starter"),
            "name": d.name, "owner": owner_json(&d.owner),
            "options": { "maxmemoryPolicy": def["maxmemoryPolicy"].as_str().unwrap_or("allkeys_lru") },
            "ipAllowList": [], "version": "7.2.4",
            "dashboardUrl": format!("https://dashboard.render.com/r/{}", d.id),
        }),
    }
}

async fn list_datastores(
    State(st): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    store: Store,
) -> Response {
    let s = lock(&st);
    let items: Vec<(String, Value)> = s
        .datastores
        .values()
        .filter(|d| {
            d.store == store
                && q.get("name")
                    .is_none_or(|n| n.split(',').any(|n| n == d.name))
                && q.get("ownerId")
                    .is_none_or(|o| o.split(',').any(|o| o == d.owner))
        })
        .map(|d| (d.id.clone(), datastore_json(d)))
        .collect();
    let key = match store {
        Store::Postgres => "postgres",
        Store::KeyValue => "keyValue",
    };
    let out: Vec<Value> = page(items, &q)
        .into_iter()
        .map(|(c, v)| json!({ key: v, "cursor": c }))
        .collect();
    axum::Json(out).into_response()
}

async fn create_datastore(
    State(st): State<Shared>,
    axum::Json(body): axum::Json<Value>,
    store: Store,
) -> Response {
    let mut s = lock(&st);
    let name = body["name"].as_str().unwrap_or_default().to_owned();
    let owner = body["ownerId"].as_str().unwrap_or(OWNER).to_owned();
    if s.datastores
        .values()
        .any(|d| d.store == store && d.name == name && d.owner == owner)
    {
        return error(StatusCode::BAD_REQUEST, "a datastore with this name exists");
    }
    let steps = s
        .datastore_plans
        .remove(&name)
        .unwrap_or_else(|| vec!["creating".into(), "available".into()]);
    let id = insert_datastore(&mut s, store, &name, &owner, body, steps);
    (
        StatusCode::CREATED,
        axum::Json(datastore_json(&s.datastores[&id])),
    )
        .into_response()
}

async fn get_datastore(State(st): State<Shared>, Path(id): Path<String>) -> Response {
    let mut s = lock(&st);
    let Some(d) = s.datastores.get_mut(&id) else {
        return error(StatusCode::NOT_FOUND, "datastore not found");
    };
    // Each read moves a new datastore one step along its plan; the last step stays.
    if let Some(next) = d.steps.pop_front() {
        d.status = next;
    }
    axum::Json(datastore_json(d)).into_response()
}

async fn connection_info(State(st): State<Shared>, Path(id): Path<String>) -> Response {
    let s = lock(&st);
    let Some(d) = s.datastores.get(&id) else {
        return error(StatusCode::NOT_FOUND, "datastore not found");
    };
    let host = format!("{}-a", d.id);
    match d.store {
        Store::Postgres => axum::Json(json!({
            "password": format!("pw-{}", d.id),
            "internalConnectionString": format!("postgres://app:pw-{}@{host}/app", d.id),
            "externalConnectionString": format!("postgres://app:pw-{}@{host}.oregon-postgres.render.com/app", d.id),
            "psqlCommand": format!("PGPASSWORD=pw-{} psql -h {host} app", d.id),
        }))
        .into_response(),
        Store::KeyValue => axum::Json(json!({
            "internalConnectionString": format!("redis://{host}:6379"),
            "externalConnectionString": format!("rediss://red:pw-{}@{host}.oregon-keyvalue.render.com:6379", d.id),
            "cliCommand": format!("redis-cli -u rediss://{host}:6379"),
        }))
        .into_response(),
    }
}

async fn create_domain(
    State(st): State<Shared>,
    Path(id): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut s = lock(&st);
    s.clock += 1;
    let domain_id = format!("cdm-{:06}", s.clock);
    let name = body["name"].as_str().unwrap_or_default().to_owned();
    let ready = s.dns_ready.contains(&name);
    let Some(svc) = s.services.get_mut(&id) else {
        return error(StatusCode::NOT_FOUND, "service not found");
    };
    if svc.domains.iter().any(|d| d.name == name) {
        return error(StatusCode::CONFLICT, "custom domain exists");
    }
    svc.domains.push(FakeDomain {
        id: domain_id,
        name,
        verified: false,
        dns_ready: ready,
        created_at: now_secs(),
    });
    let v = domain_json(svc, svc.domains.last().unwrap());
    (StatusCode::CREATED, axum::Json(json!([v]))).into_response()
}

async fn delete_service(State(st): State<Shared>, Path(id): Path<String>) -> Response {
    match lock(&st).services.remove(&id) {
        // Its deploys, variables, jobs and custom domains go with it.
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => error(StatusCode::NOT_FOUND, "service not found"),
    }
}

async fn delete_datastore(
    State(st): State<Shared>,
    Path(id): Path<String>,
    store: Store,
) -> Response {
    let mut s = lock(&st);
    match s.datastores.get(&id) {
        Some(d) if d.store == store => {
            s.datastores.remove(&id);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => error(StatusCode::NOT_FOUND, "datastore not found"),
    }
}

async fn delete_domain(
    State(st): State<Shared>,
    Path((id, domain)): Path<(String, String)>,
) -> Response {
    let mut s = lock(&st);
    let Some(svc) = s.services.get_mut(&id) else {
        return error(StatusCode::NOT_FOUND, "service not found");
    };
    let before = svc.domains.len();
    svc.domains.retain(|d| d.id != domain && d.name != domain);
    if svc.domains.len() == before {
        return error(StatusCode::NOT_FOUND, "custom domain not found");
    }
    StatusCode::NO_CONTENT.into_response()
}
