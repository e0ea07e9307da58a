//! A small stateful fake of Neon's API v2: branches and endpoints that start in `init`,
//! operations that run for a few reads and then finish (or fail), restores that replace a
//! branch's data (and keep the old one under a name), and injected 423/429/5xx answers.
//! Prism's proxy sits in front of it, so its answers are checked against the contract.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const API_KEY: &str = "neon_test_key_7c2a";
const AT: &str = "2026-12-01T10:00:00Z";

#[derive(Debug, Clone)]
pub struct FakeBranch {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    /// Reads left before `init` becomes `ready`.
    init_reads: u32,
    /// Which branch's data it holds, and as of which reset (the "content" of the branch).
    pub data_of: String,
    pub resets: u32,
    /// Whether it has a compute endpoint.
    pub has_endpoint: bool,
    /// Whether Neon protects it.
    pub protected: bool,
    /// When it was created (seconds since the epoch): its `created_at`.
    pub created_at: u64,
}

#[derive(Debug)]
struct FakeOp {
    branch_id: String,
    action: &'static str,
    reads_left: u32,
    fails_with: Option<String>,
}

/// One project; tests share the stand-in, each with its own project.
#[derive(Debug, Default)]
pub struct FakeProject {
    pub branches: Vec<FakeBranch>,
    /// Answers for the next requests (status, Retry-After, only for this method).
    faults: VecDeque<(u16, Option<u64>, Option<&'static str>)>,
    /// The next operation started fails with this error.
    pub next_op_fails: Option<String>,
    /// `connection_uri` answers the parent's URL (a known failure of other tools).
    pub uri_of_parent: bool,
    pub requests: Vec<String>,
    /// Reads each operation started from now on takes to finish (default 2): a large number
    /// keeps a restore running while a test stops the client mid-wait.
    pub op_reads: Option<u32>,
    /// Branches backed by real local Postgres databases named `<prefix>_<branch>`: a create or
    /// a restore copies the parent's database (`CREATE DATABASE .. TEMPLATE ..`), the way a
    /// branch starts as its parent's data; endpoints and URLs name 127.0.0.1:5432.
    pub postgres_prefix: Option<String>,
}

fn psql(sql: &str) {
    let out = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl FakeProject {
    fn copy_database(&self, from: &str, to: &str) {
        if let Some(prefix) = &self.postgres_prefix {
            psql(&format!(
                "DROP DATABASE IF EXISTS \"{prefix}_{to}\" WITH (FORCE)"
            ));
            psql(&format!(
                "CREATE DATABASE \"{prefix}_{to}\" TEMPLATE \"{prefix}_{from}\""
            ));
        }
    }

    fn host(&self, branch_id: &str) -> String {
        if self.postgres_prefix.is_some() {
            "127.0.0.1".into()
        } else {
            host_of(branch_id)
        }
    }
}

#[derive(Debug, Default)]
pub struct FakeState {
    projects: BTreeMap<String, FakeProject>,
    ops: BTreeMap<String, FakeOp>,
    seq: u32,
}

#[derive(Clone)]
pub struct Fake {
    state: Arc<Mutex<FakeState>>,
    port: u16,
}

/// Seconds since the epoch, now: when a branch of the fake is created.
fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `secs` since the epoch as Neon writes a time.
fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}

fn host_of(id: &str) -> String {
    format!("ep-{id}.us-east-2.aws.neon.tech")
}

fn branch_json(project: &str, b: &FakeBranch) -> Value {
    let mut v = json!({
        "id": b.id, "project_id": project, "name": b.name,
        "current_state": if b.init_reads > 0 { "init" } else { "ready" },
        "state_changed_at": AT, "creation_source": "console",
        "created_at": rfc3339(b.created_at), "updated_at": AT,
        "default": b.parent_id.is_none(), "protected": b.protected, "cpu_used_sec": 0,
        "active_time_seconds": 0, "compute_time_seconds": 0, "written_data_bytes": 0,
        "data_transfer_bytes": 0,
    });
    if let Some(p) = &b.parent_id {
        v["parent_id"] = json!(p);
    }
    if b.resets > 0 {
        v["last_reset_at"] = json!(AT);
    }
    v
}

fn endpoint_json(project: &str, b: &FakeBranch, host: String) -> Value {
    json!({
        "host": host, "id": format!("ep-{}", b.id), "project_id": project,
        "branch_id": b.id, "region_id": "aws-us-east-2", "autoscaling_limit_max_cu": 1,
        "autoscaling_limit_min_cu": 0.25, "type": "read_write", "current_state": "active",
        "pooler_enabled": false, "pooler_mode": "transaction", "disabled": false,
        "passwordless_access": false, "creation_source": "console", "created_at": AT,
        "updated_at": AT, "settings": {}, "proxy_host": "us-east-2.aws.neon.tech",
        "suspend_timeout_seconds": 0, "provisioner": "k8s-neonvm",
    })
}

fn op_json(project: &str, id: &str, op: &FakeOp) -> Value {
    let status = match (&op.fails_with, op.reads_left) {
        (_, n) if n > 0 => "running",
        (Some(_), _) => "failed",
        (None, _) => "finished",
    };
    let mut v = json!({
        "id": id, "project_id": project, "branch_id": op.branch_id, "action": op.action,
        "status": status, "failures_count": 0, "created_at": AT, "updated_at": AT,
        "total_duration_ms": 10,
    });
    if let (Some(e), 0) = (&op.fails_with, op.reads_left) {
        v["error"] = json!(e);
    }
    v
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "code": status.as_str(), "message": message })),
    )
        .into_response()
}

impl FakeState {
    fn start_op(&mut self, project: &str, branch_id: &str, action: &'static str) -> Value {
        self.seq += 1;
        let id = format!("00000000-0000-4000-8000-{:012}", self.seq);
        let reads_left = self
            .projects
            .get(project)
            .and_then(|p| p.op_reads)
            .unwrap_or(2);
        let op = FakeOp {
            branch_id: branch_id.to_owned(),
            action,
            reads_left,
            fails_with: self
                .projects
                .get_mut(project)
                .and_then(|p| p.next_op_fails.take()),
        };
        let v = op_json(project, &id, &op);
        self.ops.insert(id, op);
        v
    }
}

impl Fake {
    pub fn start() -> Fake {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let (tx, rx) = std::sync::mpsc::channel();
        let st = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap().port()).unwrap();
                axum::serve(listener, router(st)).await.unwrap();
            });
        });
        Fake {
            state,
            port: rx.recv().unwrap(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on project `p`.
    pub fn with<T>(&self, p: &str, f: impl FnOnce(&mut FakeProject) -> T) -> T {
        f(self.state().projects.get_mut(p).expect("project declared"))
    }

    /// A fresh project with a `main` branch (production) and nothing else.
    pub fn project(&self, project: &str) {
        let main = FakeBranch {
            id: format!("br-main-{project}"),
            name: "main".into(),
            parent_id: None,
            init_reads: 0,
            data_of: "main".into(),
            resets: 0,
            has_endpoint: true,
            protected: false,
            created_at: now_secs(),
        };
        self.state().projects.insert(
            project.to_owned(),
            FakeProject {
                branches: vec![main],
                ..FakeProject::default()
            },
        );
    }

    /// Adds a branch of `main` that already exists.
    pub fn existing_branch(&self, project: &str, name: &str) {
        self.with(project, |p| {
            let parent = p.branches[0].id.clone();
            p.branches.push(FakeBranch {
                id: format!("br-{name}-{project}"),
                name: name.into(),
                parent_id: Some(parent),
                init_reads: 0,
                data_of: format!("{name}-own"),
                resets: 0,
                has_endpoint: true,
                protected: false,
                created_at: now_secs(),
            });
        })
    }

    pub fn fault(&self, project: &str, status: u16, retry_after: Option<u64>) {
        self.with(project, |p| p.faults.push_back((status, retry_after, None)))
    }

    /// Answers `status` to the next request with this method.
    pub fn fault_on(&self, project: &str, method: &'static str, status: u16) {
        self.with(project, |p| {
            p.faults.push_back((status, None, Some(method)))
        })
    }

    pub fn branch(&self, project: &str, name: &str) -> Option<FakeBranch> {
        self.with(project, |p| {
            p.branches.iter().find(|b| b.name == name).cloned()
        })
    }

    pub fn requests(&self, project: &str) -> Vec<String> {
        self.with(project, |p| p.requests.clone())
    }

    /// The `DELETE` requests project `project` was sent.
    pub fn deletes(&self, project: &str) -> Vec<String> {
        self.requests(project)
            .into_iter()
            .filter(|r| r.starts_with("DELETE "))
            .collect()
    }

    /// Makes branch `name` of `project` protected.
    pub fn protect(&self, project: &str, name: &str) {
        self.with(project, |p| {
            p.branches
                .iter_mut()
                .find(|b| b.name == name)
                .expect("branch")
                .protected = true
        })
    }

    /// Makes branch `name` of `project` say it was created `secs` seconds earlier.
    pub fn backdate(&self, project: &str, name: &str, secs: u64) {
        self.with(project, |p| {
            p.branches
                .iter_mut()
                .find(|b| b.name == name)
                .expect("branch")
                .created_at -= secs
        })
    }

    /// The whole state of project `project` — every branch, its parent, its data, its
    /// compute endpoint, its protection and creation time — as one stable text: equal texts,
    /// equal states. What it was asked (requests, operations, faults) is not state, nor is
    /// how many reads a new branch still answers `init`.
    pub fn digest(&self, project: &str) -> String {
        self.with(project, |p| {
            let mut out = String::new();
            for b in &p.branches {
                out.push_str(&format!(
                    "branch {} {:?} parent={:?} data={} resets={} endpoint={} protected={} at={}\n",
                    b.id,
                    b.name,
                    b.parent_id,
                    b.data_of,
                    b.resets,
                    b.has_endpoint,
                    b.protected,
                    b.created_at
                ));
            }
            out
        })
    }
}

type St = Arc<Mutex<FakeState>>;

fn lock(s: &St) -> MutexGuard<'_, FakeState> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

async fn gate(State(st): State<St>, req: Request, next: Next) -> Response {
    let authorized = req.headers().get("authorization")
        == Some(&HeaderValue::from_str(&format!("Bearer {API_KEY}")).unwrap());
    {
        let mut s = lock(&st);
        let path = req.uri().path().to_owned();
        let Some(p) = path
            .strip_prefix("/projects/")
            .and_then(|r| r.split('/').next())
            .and_then(|p| s.projects.get_mut(p))
        else {
            return error(StatusCode::NOT_FOUND, "project not found");
        };
        p.requests.push(format!("{} {path}", req.method()));
        if !authorized {
            return error(StatusCode::UNAUTHORIZED, "bad token");
        }
        for b in &mut p.branches {
            b.init_reads = b.init_reads.saturating_sub(1);
        }
        let method = req.method().as_str().to_owned();
        let due = p
            .faults
            .front()
            .is_some_and(|f| f.2.is_none_or(|m| m == method));
        if let Some((status, retry_after, _)) = due.then(|| p.faults.pop_front()).flatten() {
            let mut r = error(StatusCode::from_u16(status).unwrap(), "injected");
            if let Some(secs) = retry_after {
                r.headers_mut()
                    .insert("retry-after", HeaderValue::from(secs));
            }
            return r;
        }
    }
    next.run(req).await
}

fn router(st: St) -> Router {
    Router::new()
        .route("/projects/{p}/branches", get(list).post(create))
        .route(
            "/projects/{p}/branches/{b}",
            get(get_branch).delete(delete_branch),
        )
        .route("/projects/{p}/branches/{b}/restore", post(restore))
        .route("/projects/{p}/branches/{b}/endpoints", get(endpoints))
        .route("/projects/{p}/branches/{b}/databases", get(databases))
        .route("/projects/{p}/connection_uri", get(connection_uri))
        .route("/projects/{p}/endpoints", post(create_endpoint))
        .route("/projects/{p}/operations/{op}", get(operation))
        .layer(middleware::from_fn_with_state(st.clone(), gate))
        .with_state(st)
}

async fn list(State(st): State<St>, Path(p): Path<String>) -> Response {
    let s = lock(&st);
    let branches: Vec<Value> = s.projects[&p]
        .branches
        .iter()
        .map(|b| branch_json(&p, b))
        .collect();
    axum::Json(json!({ "branches": branches, "annotations": {} })).into_response()
}

async fn create(State(st): State<St>, Path(p): Path<String>, body: axum::Json<Value>) -> Response {
    let mut s = lock(&st);
    let name = body["branch"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let parent_id = body["branch"]["parent_id"].as_str().map(str::to_owned);
    let Some(parent) = s.projects[&p]
        .branches
        .iter()
        .find(|b| Some(&b.id) == parent_id.as_ref())
        .cloned()
    else {
        return error(StatusCode::BAD_REQUEST, "parent not found");
    };
    let b = FakeBranch {
        id: format!("br-{name}-{p}"),
        name,
        parent_id: Some(parent.id.clone()),
        init_reads: 2,
        data_of: parent.data_of.clone(),
        resets: 0,
        has_endpoint: body["endpoints"].as_array().is_some_and(|e| !e.is_empty()),
        protected: false,
        created_at: now_secs(),
    };
    let ops = vec![
        s.start_op(&p, &b.id, "create_branch"),
        s.start_op(&p, &b.id, "start_compute"),
    ];
    let host = s.projects[&p].host(&b.id);
    let endpoints: Vec<Value> = body["endpoints"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|_| endpoint_json(&p, &b, host.clone()))
                .collect()
        })
        .unwrap_or_default();
    s.projects[&p].copy_database(&parent.name, &b.name);
    let branch = branch_json(&p, &b);
    s.projects.get_mut(&p).unwrap().branches.push(b);
    (
        StatusCode::CREATED,
        axum::Json(json!({
            "branch": branch, "endpoints": endpoints, "operations": ops,
            "roles": [], "databases": [],
        })),
    )
        .into_response()
}

async fn restore(
    State(st): State<St>,
    Path((p, id)): Path<(String, String)>,
    body: axum::Json<Value>,
) -> Response {
    let mut s = lock(&st);
    let source = body["source_branch_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let proj = s.projects.get_mut(&p).unwrap();
    let Some(src) = proj.branches.iter().find(|b| b.id == source).cloned() else {
        return error(StatusCode::BAD_REQUEST, "source branch not found");
    };
    let Some(i) = proj.branches.iter().position(|b| b.id == id) else {
        return error(StatusCode::NOT_FOUND, "branch not found");
    };
    if let Some(keep) = body["preserve_under_name"].as_str() {
        let mut old = proj.branches[i].clone();
        old.id = format!("br-{keep}-{p}");
        old.name = keep.to_owned();
        proj.branches.push(old);
    }
    let target_name = proj.branches[i].name.clone();
    proj.copy_database(&src.name, &target_name);
    let b = &mut proj.branches[i];
    b.data_of = src.data_of;
    b.resets += 1;
    let b = b.clone();
    let op = s.start_op(&p, &id, "create_timeline");
    axum::Json(json!({ "branch": branch_json(&p, &b), "operations": [op] })).into_response()
}

async fn endpoints(State(st): State<St>, Path((p, id)): Path<(String, String)>) -> Response {
    let s = lock(&st);
    let proj = &s.projects[&p];
    let eps: Vec<Value> = proj
        .branches
        .iter()
        .filter(|b| b.id == id && b.has_endpoint)
        .map(|b| endpoint_json(&p, b, proj.host(&b.id)))
        .collect();
    axum::Json(json!({ "endpoints": eps })).into_response()
}

async fn databases(Path((_p, id)): Path<(String, String)>) -> Response {
    axum::Json(json!({ "databases": [{
        "id": 1, "branch_id": id, "name": "neondb", "owner_name": "neondb_owner",
        "created_at": AT, "updated_at": AT,
    }]}))
    .into_response()
}

async fn connection_uri(
    State(st): State<St>,
    Path(p): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let s = lock(&st);
    let proj = &s.projects[&p];
    let Some(b) = proj
        .branches
        .iter()
        .find(|b| Some(&b.id) == q.get("branch_id"))
    else {
        return error(StatusCode::NOT_FOUND, "branch not found");
    };
    let target = if proj.uri_of_parent {
        b.parent_id.clone().unwrap_or_else(|| b.id.clone())
    } else {
        b.id.clone()
    };
    let uri = match &proj.postgres_prefix {
        Some(prefix) => {
            let name = proj
                .branches
                .iter()
                .find(|x| x.id == target)
                .map(|x| x.name.clone())
                .unwrap_or_default();
            format!("postgresql://postgres@127.0.0.1:5432/{prefix}_{name}")
        }
        None => format!(
            "postgresql://{}:npg_canary_password_91f3@{}/{}?sslmode=require",
            q.get("role_name").cloned().unwrap_or_default(),
            host_of(&target),
            q.get("database_name").cloned().unwrap_or_default()
        ),
    };
    axum::Json(json!({ "uri": uri })).into_response()
}

async fn operation(State(st): State<St>, Path((p, id)): Path<(String, String)>) -> Response {
    let mut s = lock(&st);
    let Some(op) = s.ops.get_mut(&id) else {
        return error(StatusCode::NOT_FOUND, "operation not found");
    };
    op.reads_left = op.reads_left.saturating_sub(1);
    let v = op_json(&p, &id, op);
    axum::Json(json!({ "operation": v })).into_response()
}

async fn create_endpoint(
    State(st): State<St>,
    Path(p): Path<String>,
    body: axum::Json<Value>,
) -> Response {
    let mut s = lock(&st);
    let id = body["endpoint"]["branch_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let proj = s.projects.get_mut(&p).unwrap();
    let Some(b) = proj.branches.iter_mut().find(|b| b.id == id) else {
        return error(StatusCode::BAD_REQUEST, "branch not found");
    };
    b.has_endpoint = true;
    let b = b.clone();
    let host = proj.host(&b.id);
    let op = s.start_op(&p, &id, "start_compute");
    (
        StatusCode::CREATED,
        axum::Json(json!({ "endpoint": endpoint_json(&p, &b, host), "operations": [op] })),
    )
        .into_response()
}

async fn get_branch(State(st): State<St>, Path((p, id)): Path<(String, String)>) -> Response {
    let s = lock(&st);
    match s.projects[&p].branches.iter().find(|b| b.id == id) {
        Some(b) => axum::Json(json!({
            "branch": branch_json(&p, b),
            "annotation": { "object": { "type": "console/branch", "id": b.id }, "value": {} },
        }))
        .into_response(),
        None => error(StatusCode::NOT_FOUND, "branch not found"),
    }
}

/// Neon's `deleteProjectBranch`: the branch and its compute endpoints go; the project's
/// root or default branch, a protected one and one with children are refused.
async fn delete_branch(State(st): State<St>, Path((p, id)): Path<(String, String)>) -> Response {
    let mut s = lock(&st);
    let proj = s.projects.get_mut(&p).unwrap();
    let Some(i) = proj.branches.iter().position(|b| b.id == id) else {
        return error(StatusCode::NOT_FOUND, "branch not found");
    };
    let b = &proj.branches[i];
    if b.parent_id.is_none() || b.protected {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "cannot delete the root, default or a protected branch",
        );
    }
    if proj
        .branches
        .iter()
        .any(|c| c.parent_id.as_deref() == Some(id.as_str()))
    {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "cannot delete a branch that has child branches",
        );
    }
    let b = proj.branches.remove(i);
    if let Some(prefix) = &proj.postgres_prefix {
        psql(&format!(
            "DROP DATABASE IF EXISTS \"{prefix}_{}\" WITH (FORCE)",
            b.name
        ));
    }
    let branch = branch_json(&p, &b);
    let op = s.start_op(&p, &id, "delete_timeline");
    axum::Json(json!({ "branch": branch, "operations": [op] })).into_response()
}
