//! A small stateful Netlify: sites, branch heads, builds that go new → building → ready (or
//! error) one step per poll, cancel, publishing, restore, lock, env vars with values per
//! context, and injected faults. It sits behind `prism proxy --errors`, so whatever it accepts and answers
//! is checked against Netlify's own description; it is not a second source of truth.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{Response, StatusCode};
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

type Q = Query<HashMap<String, String>>;

#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer 429 with this `Retry-After` (seconds).
    RateLimited(u64),
    /// Answer with this 5xx status.
    Server(u16),
    /// Answer 200 with a body that is not JSON.
    MalformedJson,
    /// Refuse the request with this 4xx status and a message.
    Refused(u16),
}

#[derive(Debug, Clone)]
pub struct FakeDeploy {
    pub id: String,
    pub branch: String,
    pub context: String,
    pub commit_ref: String,
    pub script: Vec<&'static str>,
    pub step: usize,
    pub locked: bool,
    /// Canceled while on its way: Netlify keeps it as state `error`, "Canceled build".
    pub canceled: bool,
    /// A build planned by time rather than by polls ([`Fake::ready_after`]).
    pub timed: Option<Timed>,
}

/// The moments of a build planned by time.
#[derive(Debug, Clone, Copy)]
pub struct Timed {
    /// When the build was started.
    pub created: Instant,
    /// When Netlify made it ready: `created` + the planned delay.
    pub ready_at: Instant,
    /// When a read of the deploy first answered `ready`.
    pub seen_ready: Option<Instant>,
}

impl FakeDeploy {
    pub fn state(&self) -> &'static str {
        if self.canceled {
            return "error";
        }
        if let Some(t) = &self.timed {
            return if Instant::now() >= t.ready_at {
                "ready"
            } else {
                "building"
            };
        }
        self.script[self.step.min(self.script.len() - 1)]
    }

    fn error_message(&self) -> &'static str {
        match self.state() {
            "error" if self.canceled => "Canceled build",
            "error" => "Build script returned non-zero exit code: 2",
            _ => "",
        }
    }
}

#[derive(Debug, Default)]
pub struct FakeSite {
    pub id: String,
    pub name: String,
    pub account_id: String,
    pub production_branch: String,
    pub heads: HashMap<String, String>,
    /// Newest first, as Netlify lists them.
    pub deploys: Vec<FakeDeploy>,
    pub published: Option<String>,
    /// The states the next build goes through.
    pub next_script: Vec<&'static str>,
    /// Builds are `building` until this long after they start, then `ready`, whoever
    /// polls and how often (overrides `next_script`; the overhead benchmark).
    pub ready_after: Option<Duration>,
    pub env: Vec<Value>,
    pub faults: VecDeque<Fault>,
    /// Every `METHOD path` this site received, for assertions on what was called.
    pub calls: Vec<String>,
    /// The site's primary custom domain and its aliases.
    pub custom_domain: Option<String>,
    pub domain_aliases: Vec<String>,
    /// The site's TLS certificate: its state (`issued`) and the domains it covers.
    pub certificate: Option<(String, Vec<String>)>,
    /// When each of `calls` arrived.
    pub call_times: Vec<Instant>,
    /// The team's slug.
    pub account_slug: String,
    /// The linked repository (`provider`, `repo_path`); `None`: no repository.
    pub repo: Option<(String, String)>,
    /// The branches Netlify deploys (`build_settings.allowed_branches`); empty: all.
    pub allowed_branches: Vec<String>,
    /// Build command, publish directory, base directory, GitHub App installation.
    pub cmd: Option<String>,
    pub dir: Option<String>,
    pub base: Option<String>,
    pub installation_id: Option<i64>,
    /// The legacy build environment (`build_settings.env`), values included.
    pub build_env: Vec<(String, String)>,
    /// Answered as `build_settings` instead of the above (odd shapes).
    pub build_settings_override: Option<Value>,
    /// The fault the next `updateSite` answers with (other calls are not affected).
    pub update_fault: Option<Fault>,
    /// Every `updateSite` body received.
    pub updates: Vec<Value>,
    /// When it was created (RFC 3339), as Netlify's `created_at` says.
    pub created_at: String,
}

impl FakeSite {
    /// Note a call and when it arrived.
    fn record(&mut self, call: String) {
        self.calls.push(call);
        self.call_times.push(Instant::now());
    }
}

#[derive(Debug, Default)]
pub struct FakeState {
    pub sites: Vec<FakeSite>,
    pub hooks: HashMap<String, (String, String)>,
    /// Every `createSite`/`createSiteInTeam` body received, with the team slug of the path.
    pub created: Vec<(Option<String>, Value)>,
    /// How many `deleteSite` requests arrived (whatever their answer).
    pub deletes: usize,
    seq: u64,
}

impl FakeState {
    fn next_id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}{:06}", self.seq)
    }

    fn site(&mut self, id: &str) -> Option<&mut FakeSite> {
        self.sites.iter_mut().find(|s| s.id == id)
    }
}

#[derive(Clone)]
pub struct Fake {
    pub url: String,
    pub state: Arc<Mutex<FakeState>>,
}

impl std::fmt::Debug for Fake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

fn json_response(status: u16, body: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn not_found(what: &str) -> Response<Body> {
    json_response(
        404,
        json!({ "code": 404, "message": format!("{what} not found") }),
    )
}

fn deploy_json(site: &FakeSite, d: &FakeDeploy) -> Value {
    json!({
        "id": d.id,
        "site_id": site.id,
        "state": d.state(),
        "branch": d.branch,
        "context": d.context,
        "commit_ref": d.commit_ref,
        "deploy_ssl_url": format!("https://{}--{}.netlify.app", d.id, site.name),
        "locked": d.locked,
        "error_message": d.error_message(),
    })
}

fn site_json(site: &FakeSite) -> Value {
    let published = site
        .published
        .as_ref()
        .and_then(|p| site.deploys.iter().find(|d| &d.id == p))
        .map(|d| deploy_json(site, d));
    let mut v = json!({
        "id": site.id,
        "name": site.name,
        "account_id": site.account_id,
        "url": format!("http://{}.netlify.app", site.name),
        "ssl_url": format!("https://{}.netlify.app", site.name),
        "account_slug": site.account_slug,
        "build_settings": build_settings_json(site),
    });
    if !site.created_at.is_empty() {
        v["created_at"] = json!(site.created_at);
    }
    if let Some(p) = published {
        v["published_deploy"] = p;
    }
    if let Some(d) = &site.custom_domain {
        v["custom_domain"] = json!(d);
    }
    v["domain_aliases"] = json!(site.domain_aliases);
    v
}

fn build_settings_json(site: &FakeSite) -> Value {
    if let Some(v) = &site.build_settings_override {
        return v.clone();
    }
    let mut v = json!({
        "repo_branch": site.production_branch,
        "allowed_branches": site.allowed_branches,
    });
    if let Some((provider, path)) = &site.repo {
        v["provider"] = json!(provider);
        v["repo_path"] = json!(path);
        v["repo_url"] = json!(format!("https://github.com/{path}"));
    }
    for (key, value) in [("cmd", &site.cmd), ("dir", &site.dir), ("base", &site.base)] {
        if let Some(value) = value {
            v[key] = json!(value);
        }
    }
    if let Some(id) = site.installation_id {
        v["installation_id"] = json!(id);
    }
    if !site.build_env.is_empty() {
        v["env"] = Value::Object(
            site.build_env
                .iter()
                .map(|(k, val)| (k.clone(), json!(val)))
                .collect(),
        );
    }
    v
}

fn fault_response(fault: Fault) -> Response<Body> {
    match fault {
        Fault::RateLimited(secs) => Response::builder()
            .status(429)
            .header("content-type", "application/json")
            .header("retry-after", secs.to_string())
            .body(Body::from(
                json!({ "code": 429, "message": "rate limited" }).to_string(),
            ))
            .unwrap(),
        Fault::Server(code) => {
            json_response(code, json!({ "code": code, "message": "upstream trouble" }))
        }
        Fault::MalformedJson => Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::from("{\"id\": \"d1\", \"state\": "))
            .unwrap(),
        Fault::Refused(code) => json_response(
            code,
            json!({ "code": code, "message": "refused by the fake" }),
        ),
    }
}

/// `updateSite`: only `build_settings.allowed_branches` is applied (what provisioning
/// sends); the body is kept for assertions.
async fn update_site(
    State(st): S,
    Path(site_id): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response<Body> {
    let mut st = st.lock().unwrap();
    let Some(site) = st.site(&site_id) else {
        return not_found("site");
    };
    site.record("PATCH site".into());
    if let Some(f) = site.update_fault.take() {
        return fault_response(f);
    }
    site.updates.push(body.clone());
    if let Some(list) = body["build_settings"]["allowed_branches"].as_array() {
        site.allowed_branches = list
            .iter()
            .filter_map(|b| b.as_str().map(str::to_owned))
            .collect();
    }
    json_response(200, site_json(site))
}

/// `createSite` and `createSiteInTeam`: a new site from `name` and `repo`; a taken name is
/// refused (422), as Netlify refuses it.
fn create_site_in(st: &mut FakeState, team: Option<String>, body: Value) -> Response<Body> {
    st.created.push((team.clone(), body.clone()));
    let Some(name) = body["name"].as_str().map(str::to_owned) else {
        return json_response(422, json!({ "code": 422, "message": "name is required" }));
    };
    if st.sites.iter().any(|s| s.name == name) {
        return json_response(
            422,
            json!({ "code": 422, "message": "subdomain must be unique" }),
        );
    }
    let id = st.next_id("site-");
    let repo = &body["repo"];
    let text = |k: &str| repo[k].as_str().map(str::to_owned);
    let production_branch = text("repo_branch").unwrap_or_else(|| "main".into());
    // The repository's branches are the repository's: a site linked to a repository another
    // site builds sees the same heads.
    let linked = text("provider").zip(text("repo_path"));
    let heads = st
        .sites
        .iter()
        .find(|s| s.repo.is_some() && s.repo == linked)
        .map(|s| s.heads.clone())
        .unwrap_or_default();
    let mut site = FakeSite {
        id: id.clone(),
        name,
        heads,
        account_id: "acct-1".into(),
        account_slug: team.unwrap_or_else(|| "personal".into()),
        allowed_branches: vec![production_branch.clone()],
        production_branch,
        repo: text("provider").zip(text("repo_path")),
        cmd: text("cmd"),
        dir: text("dir"),
        base: text("base"),
        installation_id: repo["installation_id"].as_i64(),
        created_at: now_rfc3339(),
        ..FakeSite::default()
    };
    site.record("POST site".into());
    let answer = site_json(&site);
    st.sites.push(site);
    json_response(201, answer)
}

async fn create_site(State(st): S, axum::Json(body): axum::Json<Value>) -> Response<Body> {
    create_site_in(&mut st.lock().unwrap(), None, body)
}

async fn create_site_in_team(
    State(st): S,
    Path(team): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response<Body> {
    create_site_in(&mut st.lock().unwrap(), Some(team), body)
}

/// Take the next injected fault of a site, recording the call.
fn fault_of(state: &mut FakeState, site_id: &str, call: String) -> Option<Response<Body>> {
    let site = state.site(site_id)?;
    site.record(call);
    site.faults.pop_front().map(fault_response)
}

type S = State<Arc<Mutex<FakeState>>>;

async fn list_sites(State(st): S, Query(q): Q) -> Response<Body> {
    let st = st.lock().unwrap();
    let name = q.get("name").cloned().unwrap_or_default();
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let per_page: usize = q
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(100);
    let matching: Vec<Value> = st
        .sites
        .iter()
        .filter(|s| s.name.contains(&name))
        .map(site_json)
        .collect();
    let page: Vec<Value> = matching
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    json_response(200, Value::Array(page))
}

/// `deleteSite`: the site and everything of it (deploys, variables, hooks) are gone; 204,
/// or 404 for a site that does not exist.
async fn delete_site(State(st): S, Path(site_id): Path<String>) -> Response<Body> {
    let mut st = st.lock().unwrap();
    if let Some(f) = fault_of(&mut st, &site_id, "DELETE site".into()) {
        return f;
    }
    st.deletes += 1;
    let before = st.sites.len();
    st.sites.retain(|s| s.id != site_id);
    if st.sites.len() == before {
        return not_found("site");
    }
    st.hooks.retain(|_, (site, _)| *site != site_id);
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .unwrap()
}

/// Now as RFC 3339 (UTC, seconds).
fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

async fn get_site(State(st): S, Path(site_id): Path<String>) -> Response<Body> {
    let mut st = st.lock().unwrap();
    if let Some(f) = fault_of(&mut st, &site_id, "GET site".into()) {
        return f;
    }
    match st.site(&site_id) {
        Some(s) => json_response(200, site_json(s)),
        None => not_found("site"),
    }
}

async fn list_deploys(State(st): S, Path(site_id): Path<String>, Query(q): Q) -> Response<Body> {
    let mut st = st.lock().unwrap();
    if let Some(f) = fault_of(&mut st, &site_id, "GET deploys".into()) {
        return f;
    }
    let Some(site) = st.site(&site_id) else {
        return not_found("site");
    };
    let per_page: usize = q
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(100);
    let out: Vec<Value> = site
        .deploys
        .iter()
        .filter(|d| {
            q.get("production")
                .is_none_or(|_| d.context == "production")
        })
        .filter(|d| q.get("branch").is_none_or(|b| &d.branch == b))
        .filter(|d| {
            q.get("deploy-previews")
                .is_none_or(|_| d.context == "deploy-preview")
        })
        .take(per_page)
        .map(|d| deploy_json(site, d))
        .collect();
    json_response(200, Value::Array(out))
}

/// Each poll moves a build one state on; reaching `ready` in production publishes it
/// unless the published deploy is locked.
async fn get_deploy(
    State(st): S,
    Path((site_id, deploy_id)): Path<(String, String)>,
) -> Response<Body> {
    let mut st = st.lock().unwrap();
    if let Some(f) = fault_of(&mut st, &site_id, format!("GET deploy {deploy_id}")) {
        return f;
    }
    let Some(site) = st.site(&site_id) else {
        return not_found("site");
    };
    let locked = site
        .published
        .as_ref()
        .and_then(|p| site.deploys.iter().find(|d| &d.id == p))
        .is_some_and(|d| d.locked);
    let Some(i) = site.deploys.iter().position(|d| d.id == deploy_id) else {
        return not_found("deploy");
    };
    let d = &mut site.deploys[i];
    let ready_now = d.state() == "ready";
    let was_ready = match &mut d.timed {
        // A timed build publishes when a read first sees it ready.
        Some(t) => {
            let seen = t.seen_ready.is_some();
            if ready_now && !seen {
                t.seen_ready = Some(Instant::now());
            }
            seen
        }
        None => ready_now,
    };
    if d.timed.is_none() && d.step + 1 < d.script.len() {
        d.step += 1;
    }
    if !was_ready && d.state() == "ready" && d.context == "production" && !locked {
        site.published = Some(deploy_id.clone());
    }
    json_response(200, deploy_json(site, &site.deploys[i]))
}

fn start_build(
    st: &mut FakeState,
    site_id: &str,
    branch: Option<String>,
) -> Option<(String, String)> {
    let deploy_id = st.next_id("dpl");
    let build_id = st.next_id("bld");
    let site = st.site(site_id)?;
    let branch = branch.unwrap_or_else(|| site.production_branch.clone());
    let context = if branch == site.production_branch {
        "production"
    } else {
        "branch-deploy"
    };
    let commit = site
        .heads
        .get(&branch)
        .cloned()
        .unwrap_or_else(|| "0000000000000000000000000000000000000000".into());
    let script = if site.next_script.is_empty() {
        vec!["new", "building", "ready"]
    } else {
        site.next_script.clone()
    };
    let timed = site.ready_after.map(|after| {
        let created = Instant::now();
        Timed {
            created,
            ready_at: created + after,
            seen_ready: None,
        }
    });
    site.deploys.insert(
        0,
        FakeDeploy {
            id: deploy_id.clone(),
            branch,
            context: context.into(),
            commit_ref: commit,
            script,
            step: 0,
            locked: false,
            canceled: false,
            timed,
        },
    );
    Some((build_id, deploy_id))
}

async fn create_build(State(st): S, Path(site_id): Path<String>, Query(q): Q) -> Response<Body> {
    let mut st = st.lock().unwrap();
    if let Some(f) = fault_of(
        &mut st,
        &site_id,
        format!(
            "POST builds {}",
            q.get("branch").cloned().unwrap_or_default()
        ),
    ) {
        return f;
    }
    match start_build(&mut st, &site_id, q.get("branch").cloned()) {
        Some((build_id, deploy_id)) => json_response(
            200,
            json!({ "id": build_id, "deploy_id": deploy_id, "done": false }),
        ),
        None => not_found("site"),
    }
}

async fn build_hook(State(st): S, Path(hook_id): Path<String>) -> Response<Body> {
    let mut st = st.lock().unwrap();
    let Some((site_id, branch)) = st.hooks.get(&hook_id).cloned() else {
        return not_found("hook");
    };
    if let Some(s) = st.site(&site_id) {
        s.record(format!("POST build_hook {hook_id}"));
    }
    start_build(&mut st, &site_id, Some(branch));
    Response::builder().status(200).body(Body::empty()).unwrap()
}

async fn restore(
    State(st): S,
    Path((site_id, deploy_id)): Path<(String, String)>,
) -> Response<Body> {
    let mut st = st.lock().unwrap();
    if let Some(f) = fault_of(&mut st, &site_id, format!("POST restore {deploy_id}")) {
        return f;
    }
    let Some(site) = st.site(&site_id) else {
        return not_found("site");
    };
    let Some(d) = site.deploys.iter().find(|d| d.id == deploy_id).cloned() else {
        return not_found("deploy");
    };
    site.published = Some(deploy_id);
    json_response(201, deploy_json(site, &d))
}

async fn lock(State(st): S, Path(deploy_id): Path<String>) -> Response<Body> {
    set_lock(st, deploy_id, true)
}

async fn unlock(State(st): S, Path(deploy_id): Path<String>) -> Response<Body> {
    set_lock(st, deploy_id, false)
}

fn set_lock(st: Arc<Mutex<FakeState>>, deploy_id: String, locked: bool) -> Response<Body> {
    let mut st = st.lock().unwrap();
    for site in st.sites.iter_mut() {
        if let Some(i) = site.deploys.iter().position(|d| d.id == deploy_id) {
            site.record(format!(
                "POST {} {deploy_id}",
                if locked { "lock" } else { "unlock" }
            ));
            site.deploys[i].locked = locked;
            return json_response(200, deploy_json(site, &site.deploys[i]));
        }
    }
    not_found("deploy")
}

/// `cancelSiteDeploy`: a deploy on its way stops and reads as `error`, "Canceled build", from
/// then on (it never reaches `ready`, so it is never published). A deploy that has finished
/// (ready, failed, or canceled already) cannot be canceled: 422 with a message, the error
/// shape the description gives every operation.
async fn cancel(State(st): S, Path(deploy_id): Path<String>) -> Response<Body> {
    let mut st = st.lock().unwrap();
    let Some(site_id) = st
        .sites
        .iter()
        .find(|s| s.deploys.iter().any(|d| d.id == deploy_id))
        .map(|s| s.id.clone())
    else {
        return not_found("deploy");
    };
    if let Some(f) = fault_of(&mut st, &site_id, format!("POST cancel {deploy_id}")) {
        return f;
    }
    let site = st.site(&site_id).expect("site");
    let i = site
        .deploys
        .iter()
        .position(|d| d.id == deploy_id)
        .expect("deploy");
    let state = site.deploys[i].state();
    if matches!(state, "ready" | "error") {
        return json_response(
            422,
            json!({ "code": 422, "message": format!("Deploy {deploy_id} is {state} and can no longer be canceled") }),
        );
    }
    site.deploys[i].canceled = true;
    json_response(201, deploy_json(site, &site.deploys[i]))
}

fn site_param(q: &HashMap<String, String>) -> String {
    q.get("site_id").cloned().unwrap_or_default()
}

async fn site_env(State(st): S, Path(site_id): Path<String>) -> Response<Body> {
    let mut st = st.lock().unwrap();
    if let Some(f) = fault_of(&mut st, &site_id, "GET site env".into()) {
        return f;
    }
    match st.site(&site_id) {
        Some(s) => json_response(200, Value::Array(s.env.iter().map(as_read).collect())),
        None => not_found("site"),
    }
}

/// A variable as Netlify answers it: the values of an `is_secret` one are not returned.
fn as_read(var: &Value) -> Value {
    let mut var = var.clone();
    if var["is_secret"] == json!(true) {
        for v in var["values"].as_array_mut().into_iter().flatten() {
            if let Some(o) = v.as_object_mut() {
                o.remove("value");
            }
        }
    }
    var
}

async fn get_env(
    State(st): S,
    Path((_account, key)): Path<(String, String)>,
    Query(q): Q,
) -> Response<Body> {
    let mut st = st.lock().unwrap();
    let Some(site) = st.site(&site_param(&q)) else {
        return not_found("site");
    };
    site.record(format!("GET env {key}"));
    match site.env.iter().find(|v| v["key"] == key.as_str()) {
        Some(v) => json_response(200, as_read(v)),
        None => not_found("environment variable"),
    }
}

fn with_ids(st: &mut FakeState, values: &mut Value) {
    for v in values.as_array_mut().into_iter().flatten() {
        if v.get("id").is_none() {
            v["id"] = json!(st.next_id("val"));
        }
    }
}

async fn create_env(
    State(st): S,
    Path(_account): Path<String>,
    Query(q): Q,
    axum::Json(body): axum::Json<Value>,
) -> Response<Body> {
    let mut st = st.lock().unwrap();
    let mut vars = body.as_array().cloned().unwrap_or_default();
    for var in vars.iter_mut() {
        if let Some(values) = var.get_mut("values") {
            with_ids(&mut st, values);
        }
    }
    let Some(site) = st.site(&site_param(&q)) else {
        return not_found("site");
    };
    site.record("POST env".into());
    site.env.extend(vars.iter().cloned());
    json_response(201, Value::Array(vars))
}

async fn patch_env(
    State(st): S,
    Path((_account, key)): Path<(String, String)>,
    Query(q): Q,
    axum::Json(body): axum::Json<Value>,
) -> Response<Body> {
    let mut st = st.lock().unwrap();
    let id = st.next_id("val");
    let Some(site) = st.site(&site_param(&q)) else {
        return not_found("site");
    };
    site.record(format!("PATCH env {key}"));
    let Some(var) = site.env.iter_mut().find(|v| v["key"] == key.as_str()) else {
        return not_found("environment variable");
    };
    let values = var["values"].as_array_mut().unwrap();
    values.retain(|v| {
        !(v["context"] == body["context"]
            && v.get("context_parameter") == body.get("context_parameter"))
    });
    let mut new = body.clone();
    new["id"] = json!(id);
    values.push(new);
    json_response(201, var.clone())
}

async fn put_env(
    State(st): S,
    Path((_account, key)): Path<(String, String)>,
    Query(q): Q,
    axum::Json(mut body): axum::Json<Value>,
) -> Response<Body> {
    let mut st = st.lock().unwrap();
    if let Some(values) = body.get_mut("values") {
        with_ids(&mut st, values);
    }
    let Some(site) = st.site(&site_param(&q)) else {
        return not_found("site");
    };
    site.record(format!("PUT env {key}"));
    let Some(var) = site.env.iter_mut().find(|v| v["key"] == key.as_str()) else {
        return not_found("environment variable");
    };
    *var = body.clone();
    json_response(200, body)
}

async fn delete_env(
    State(st): S,
    Path((_account, key)): Path<(String, String)>,
    Query(q): Q,
) -> Response<Body> {
    let mut st = st.lock().unwrap();
    let Some(site) = st.site(&site_param(&q)) else {
        return not_found("site");
    };
    site.record(format!("DELETE env {key}"));
    site.env.retain(|v| v["key"] != key.as_str());
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .unwrap()
}

async fn delete_env_value(
    State(st): S,
    Path((_account, key, id)): Path<(String, String, String)>,
    Query(q): Q,
) -> Response<Body> {
    let mut st = st.lock().unwrap();
    let Some(site) = st.site(&site_param(&q)) else {
        return not_found("site");
    };
    site.record(format!("DELETE env value {key}"));
    if let Some(var) = site.env.iter_mut().find(|v| v["key"] == key.as_str()) {
        var["values"]
            .as_array_mut()
            .unwrap()
            .retain(|v| v["id"] != id.as_str());
    }
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .unwrap()
}

impl Fake {
    /// Serve the fake on a loopback port from its own thread and runtime, so every test's
    /// runtime can use it.
    pub fn start() -> Fake {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let app = Router::new()
            .route("/sites", get(list_sites).post(create_site))
            .route("/{account_slug}/sites", post(create_site_in_team))
            .route(
                "/sites/{site_id}",
                get(get_site).patch(update_site).delete(delete_site),
            )
            .route("/sites/{site_id}/deploys", get(list_deploys))
            .route("/sites/{site_id}/deploys/{deploy_id}", get(get_deploy))
            .route(
                "/sites/{site_id}/deploys/{deploy_id}/restore",
                post(restore),
            )
            .route("/sites/{site_id}/builds", post(create_build))
            .route("/sites/{site_id}/ssl", get(site_certificate))
            .route("/deploys/{deploy_id}/lock", post(lock))
            .route("/deploys/{deploy_id}/unlock", post(unlock))
            .route("/deploys/{deploy_id}/cancel", post(cancel))
            .route("/build_hooks/{hook_id}", post(build_hook))
            .route("/api/v1/sites/{site_id}/env", get(site_env))
            .route("/accounts/{account_id}/env", post(create_env))
            .route(
                "/accounts/{account_id}/env/{key}",
                get(get_env)
                    .patch(patch_env)
                    .put(put_env)
                    .delete(delete_env),
            )
            .route(
                "/accounts/{account_id}/env/{key}/value/{id}",
                delete(delete_env_value),
            )
            .with_state(state.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        Fake { url, state }
    }

    /// A new site with a unique id and name; its production branch is `main`.
    pub fn add_site(&self, name_prefix: &str) -> (String, String) {
        let mut st = self.state.lock().unwrap();
        let id = st.next_id("site-");
        let name = format!("{name_prefix}-{}", id.trim_start_matches("site-"));
        st.sites.push(FakeSite {
            id: id.clone(),
            name: name.clone(),
            account_id: "acct-1".into(),
            account_slug: "acme-team".into(),
            production_branch: "main".into(),
            repo: Some(("github".into(), format!("acme/{name_prefix}"))),
            ..FakeSite::default()
        });
        (id, name)
    }

    pub fn with_site<T>(&self, site_id: &str, f: impl FnOnce(&mut FakeSite) -> T) -> T {
        let mut st = self.state.lock().unwrap();
        f(st.site(site_id).expect("site"))
    }

    /// `git push`: the branch's head is now `commit`.
    pub fn push(&self, site_id: &str, branch: &str, commit: &str) {
        self.with_site(site_id, |s| {
            s.heads.insert(branch.to_owned(), commit.to_owned())
        });
    }

    pub fn fail_next(&self, site_id: &str, fault: Fault) {
        self.with_site(site_id, |s| s.faults.push_back(fault));
    }

    pub fn add_hook(&self, site_id: &str, branch: &str) -> String {
        let mut st = self.state.lock().unwrap();
        let id = st.next_id("hook");
        st.hooks
            .insert(id.clone(), (site_id.to_owned(), branch.to_owned()));
        format!("{}/build_hooks/{id}", self.url)
    }

    /// A deploy as the fake holds it now (reading it does not move it on, unlike a GET).
    pub fn deploy(&self, site_id: &str, deploy_id: &str) -> FakeDeploy {
        self.with_site(site_id, |s| {
            s.deploys
                .iter()
                .find(|d| d.id == deploy_id)
                .cloned()
                .expect("deploy")
        })
    }

    pub fn published(&self, site_id: &str) -> Option<String> {
        self.with_site(site_id, |s| s.published.clone())
    }

    /// Every call a site received with when it arrived.
    pub fn calls_with_times(&self, site_id: &str) -> Vec<(Instant, String)> {
        self.with_site(site_id, |s| {
            s.call_times.iter().copied().zip(s.calls.clone()).collect()
        })
    }

    pub fn calls(&self, site_id: &str) -> Vec<String> {
        self.with_site(site_id, |s| s.calls.clone())
    }

    /// Whether a site named `name` exists.
    pub fn has_site_named(&self, name: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .sites
            .iter()
            .any(|s| s.name == name)
    }

    /// The site named `name`, if any: its id.
    pub fn site_id_named(&self, name: &str) -> Option<String> {
        let st = self.state.lock().unwrap();
        st.sites
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.id.clone())
    }

    /// How many `deleteSite` requests arrived.
    pub fn deletes(&self) -> usize {
        self.state.lock().unwrap().deletes
    }

    /// The whole state Netlify would show (sites with their build settings, branches,
    /// deploys, variables, domains; build hooks), not what was asked of it (calls, bodies
    /// received): equal before an instance's `up` and after its `down` when everything it
    /// made is gone.
    pub fn digest(&self) -> String {
        let st = self.state.lock().unwrap();
        let mut sites: Vec<&FakeSite> = st.sites.iter().collect();
        sites.sort_by(|a, b| a.id.cmp(&b.id));
        let mut out = String::new();
        for s in sites {
            let mut heads: Vec<_> = s.heads.iter().collect();
            heads.sort();
            out.push_str(&format!(
                "site {} {} account={} slug={} at={} build={} heads={heads:?} published={:?} domain={:?} aliases={:?} cert={:?}\n",
                s.id,
                s.name,
                s.account_id,
                s.account_slug,
                s.created_at,
                build_settings_json(s),
                s.published,
                s.custom_domain,
                s.domain_aliases,
                s.certificate,
            ));
            for d in &s.deploys {
                out.push_str(&format!(
                    "  deploy {} {} {} {} locked={} canceled={}\n",
                    d.id, d.branch, d.context, d.commit_ref, d.locked, d.canceled
                ));
            }
            for v in &s.env {
                out.push_str(&format!("  env {v}\n"));
            }
        }
        let mut hooks: Vec<_> = st.hooks.iter().collect();
        hooks.sort();
        for (id, (site, branch)) in hooks {
            out.push_str(&format!("hook {id} {site} {branch}\n"));
        }
        out
    }
}

async fn site_certificate(State(st): S, Path(site_id): Path<String>) -> Response<Body> {
    let mut st = st.lock().unwrap();
    if let Some(f) = fault_of(&mut st, &site_id, "GET site certificate".into()) {
        return f;
    }
    match st.site(&site_id).map(|s| s.certificate.clone()) {
        Some(Some((state, domains))) => json_response(
            200,
            json!({ "state": state, "domains": domains, "created_at": "2026-01-01T00:00:00Z" }),
        ),
        Some(None) => not_found("certificate"),
        None => not_found("site"),
    }
}
