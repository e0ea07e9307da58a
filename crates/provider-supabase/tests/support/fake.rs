//! A small stateful fake of Supabase's Management API v1: branches that start in
//! `CREATING_PROJECT` and become ready, resets that start a workflow run whose steps exit
//! (or die, with a log), branch configs and API keys. It checks the bearer token itself.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const TOKEN: &str = "sbp_test_token_5e0b";
pub const ANON_KEY: &str = "anon-canary-key-1a2b";
pub const SERVICE_KEY: &str = "service-role-canary-key-3c4d";
pub const DB_PASS: &str = "db-pass-canary-5e6f";
const AT: &str = "2026-12-01T10:00:00Z";

/// Seconds since the epoch, now: when a branch of the fake is created.
fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `secs` since the epoch as Supabase writes a time.
fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}

#[derive(Debug, Clone)]
pub struct FakeBranch {
    pub id: String,
    pub name: String,
    pub parent_ref: String,
    pub project_ref: String,
    reads_to_ready: u32,
    pub resets: u32,
    /// Whether it is a persistent branch (one kept on purpose).
    pub persistent: bool,
    /// When it was created (seconds since the epoch): its `created_at`.
    pub created_at: u64,
}

#[derive(Debug)]
struct FakeRun {
    reads_left: u32,
    dies_with: Option<String>,
}

#[derive(Debug, Default)]
pub struct FakeState {
    pub branches: Vec<FakeBranch>,
    runs: BTreeMap<String, FakeRun>,
    /// The next run of a branch of this parent dies with this log.
    pub fail_next_run: BTreeMap<String, String>,
    /// Branch configs of these parents answer the parent's database.
    pub config_of_parent: Vec<String>,
    pub unauthorized: u32,
    /// The next this many branch lists answer 502 (a gateway between the client and
    /// Supabase failing), as a transient error.
    pub bad_gateway_next: u32,
    /// Branch lists answered so far.
    pub lists: u32,
    /// Branches of these parents are real local Postgres databases: their config answers
    /// 127.0.0.1:5432 (user `postgres`; the database is the spec's `database`, which the API
    /// does not name), and a reset copies the parent's database over the branch's
    /// (`CREATE DATABASE .. TEMPLATE ..`), the way a branch with data starts as its parent's.
    pub postgres: BTreeMap<String, LocalDatabases>,
    /// Resets of branches of these parents are what Supabase documents: the branch is
    /// rebuilt from its migrations (this SQL, on an empty database) without any data.
    pub data_less_resets: BTreeMap<String, String>,
    /// Every `DELETE` request, as `DELETE /path`.
    pub deletes: Vec<String>,
    /// The branch the next `DELETE` names goes just before it arrives (another `down`
    /// deleted it), so the `DELETE` answers 404.
    pub gone_before_next_delete: bool,
    seq: u32,
}

/// The local databases standing in for a parent project's and its branch's Postgres.
#[derive(Debug, Clone)]
pub struct LocalDatabases {
    pub parent: String,
    pub branch: String,
}

fn psql(sql: &str) {
    psql_in("test", sql)
}

fn psql_in(db: &str, sql: &str) {
    let out = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", db])
        .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[derive(Clone)]
pub struct Fake {
    state: Arc<Mutex<FakeState>>,
    port: u16,
}

type St = Arc<Mutex<FakeState>>;

fn lock(s: &St) -> MutexGuard<'_, FakeState> {
    s.lock().unwrap_or_else(|p| p.into_inner())
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
        lock(&self.state)
    }

    pub fn existing_branch(&self, parent: &str, name: &str) {
        let mut s = self.state();
        s.seq += 1;
        let n = s.seq;
        s.branches.push(FakeBranch {
            id: format!("00000000-0000-4000-8000-{n:012}"),
            name: name.into(),
            parent_ref: parent.into(),
            project_ref: letters(n),
            reads_to_ready: 0,
            resets: 0,
            persistent: true,
            created_at: now_secs(),
        });
    }

    /// Adds a preview branch of `parent` (not persistent), as `staging` creates one, made
    /// `age` seconds ago; returns its id.
    pub fn preview_branch(&self, parent: &str, name: &str, age: u64) -> String {
        self.existing_branch(parent, name);
        let mut s = self.state();
        let b = s.branches.last_mut().unwrap();
        b.persistent = false;
        b.created_at -= age;
        b.id.clone()
    }

    /// The whole state of the branches of `parent` — each branch's id, name, own project,
    /// resets, persistence and creation time — as one stable text: equal texts, equal
    /// states. How many reads a new branch still answers `CREATING_PROJECT` is not state.
    pub fn digest(&self, parent: &str) -> String {
        let s = self.state();
        let mut out = String::new();
        for b in s.branches.iter().filter(|b| b.parent_ref == parent) {
            out.push_str(&format!(
                "branch {} {:?} ref={} resets={} persistent={} at={}\n",
                b.id, b.name, b.project_ref, b.resets, b.persistent, b.created_at
            ));
        }
        out
    }

    /// The `DELETE` requests the fake was sent, as `DELETE /path`.
    pub fn deletes(&self) -> Vec<String> {
        self.state().deletes.clone()
    }

    pub fn branch(&self, parent: &str, name: &str) -> Option<FakeBranch> {
        self.state()
            .branches
            .iter()
            .find(|b| b.parent_ref == parent && b.name == name)
            .cloned()
    }
}

/// A project ref as Supabase writes them: 20 lowercase letters.
pub fn letters(mut n: u32) -> String {
    let mut tail = String::new();
    for _ in 0..6 {
        tail.insert(0, (b'a' + (n % 26) as u8) as char);
        n /= 26;
    }
    format!("branchrefbranc{tail}")
}

/// A parent project ref from a short tag (`create` -> `createaaaaaaaaaaaaaa`).
pub fn parent(tag: &str) -> String {
    format!("{tag:a<20}")
}

fn branch_json(b: &FakeBranch) -> Value {
    json!({
        "id": b.id, "name": b.name, "project_ref": b.project_ref,
        "parent_project_ref": b.parent_ref, "is_default": false, "persistent": b.persistent,
        "status": if b.reads_to_ready > 0 { "CREATING_PROJECT" } else { "FUNCTIONS_DEPLOYED" },
        "created_at": rfc3339(b.created_at), "updated_at": AT, "with_data": true,
    })
}

async fn gate(State(st): State<St>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {TOKEN}"));
    if !ok {
        lock(&st).unauthorized += 1;
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({ "message": "Unauthorized" })),
        )
            .into_response();
    }
    next.run(req).await
}

fn router(st: St) -> Router {
    Router::new()
        .route("/v1/projects/{r}/branches", get(list).post(create))
        .route("/v1/branches/{id}/reset", post(reset))
        .route("/v1/branches/{id}", get(config).delete(delete_branch))
        .route("/v1/projects/{r}/actions/{run}", get(run))
        .route("/v1/projects/{r}/actions/{run}/logs", get(logs))
        .route("/v1/projects/{r}/api-keys", get(api_keys))
        .layer(middleware::from_fn_with_state(st.clone(), gate))
        .with_state(st)
}

async fn list(State(st): State<St>, Path(parent): Path<String>) -> Response {
    let mut s = lock(&st);
    s.lists += 1;
    if s.bad_gateway_next > 0 {
        s.bad_gateway_next -= 1;
        return (
            StatusCode::BAD_GATEWAY,
            axum::Json(json!({ "message": "bad gateway" })),
        )
            .into_response();
    }
    let mut out = vec![];
    for b in s.branches.iter_mut().filter(|b| b.parent_ref == parent) {
        out.push(branch_json(b));
        b.reads_to_ready = b.reads_to_ready.saturating_sub(1);
    }
    axum::Json(Value::Array(out)).into_response()
}

async fn create(
    State(st): State<St>,
    Path(parent): Path<String>,
    body: axum::Json<Value>,
) -> Response {
    let mut s = lock(&st);
    s.seq += 1;
    let n = s.seq;
    let b = FakeBranch {
        id: format!("00000000-0000-4000-8000-{n:012}"),
        name: body["branch_name"].as_str().unwrap_or_default().to_owned(),
        parent_ref: parent,
        project_ref: letters(n),
        reads_to_ready: 2,
        resets: 0,
        persistent: body["persistent"].as_bool().unwrap_or(false),
        created_at: now_secs(),
    };
    let v = branch_json(&b);
    s.branches.push(b);
    (StatusCode::CREATED, axum::Json(v)).into_response()
}

async fn reset(State(st): State<St>, Path(id): Path<String>) -> Response {
    let mut s = lock(&st);
    let Some(i) = s.branches.iter().position(|b| b.project_ref == id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    s.branches[i].resets += 1;
    let parent = s.branches[i].parent_ref.clone();
    if let Some(db) = s.postgres.get(&parent) {
        psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            db.branch
        ));
        match s.data_less_resets.get(&parent) {
            Some(schema) => {
                psql(&format!("CREATE DATABASE {}", db.branch));
                psql_in(&db.branch, schema);
            }
            None => psql(&format!(
                "CREATE DATABASE {} TEMPLATE {}",
                db.branch, db.parent
            )),
        }
    }
    s.seq += 1;
    let run_id = format!("run{}", s.seq);
    let dies_with = s.fail_next_run.remove(&parent);
    s.runs.insert(
        run_id.clone(),
        FakeRun {
            reads_left: 2,
            dies_with,
        },
    );
    (
        StatusCode::CREATED,
        axum::Json(json!({ "workflow_run_id": run_id, "message": "ok" })),
    )
        .into_response()
}

async fn run(State(st): State<St>, Path((_r, run_id)): Path<(String, String)>) -> Response {
    let mut s = lock(&st);
    let Some(run) = s.runs.get_mut(&run_id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    run.reads_left = run.reads_left.saturating_sub(1);
    let last = match (run.reads_left, &run.dies_with) {
        (n, _) if n > 0 => "RUNNING",
        (_, Some(_)) => "DEAD",
        _ => "EXITED",
    };
    let step = |name: &str, status: &str| json!({ "name": name, "status": status, "created_at": AT, "updated_at": AT });
    axum::Json(json!({
        "id": run_id, "branch_id": "b", "workdir": null, "check_run_id": null,
        "created_at": AT, "updated_at": AT,
        "run_steps": [step("clone", "EXITED"), step("migrate", last)],
    }))
    .into_response()
}

async fn logs(State(st): State<St>, Path((_r, run_id)): Path<(String, String)>) -> Response {
    let s = lock(&st);
    let text = s
        .runs
        .get(&run_id)
        .and_then(|r| r.dies_with.clone())
        .unwrap_or_default();
    ([("content-type", "text/plain")], text).into_response()
}

async fn config(State(st): State<St>, Path(id): Path<String>) -> Response {
    let s = lock(&st);
    let Some(b) = s.branches.iter().find(|b| b.project_ref == id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let r = if s.config_of_parent.contains(&b.parent_ref) {
        b.parent_ref.clone()
    } else {
        b.project_ref.clone()
    };
    let host = if s.postgres.contains_key(&b.parent_ref) {
        "127.0.0.1".to_owned()
    } else {
        format!("db.{r}.supabase.co")
    };
    axum::Json(json!({
        "ref": r, "postgres_version": "17.4", "postgres_engine": "17",
        "release_channel": "ga", "status": "ACTIVE_HEALTHY",
        "db_host": host, "db_port": 5432,
        "db_user": "postgres", "db_pass": DB_PASS,
    }))
    .into_response()
}

async fn api_keys(Path(r): Path<String>) -> Response {
    axum::Json(json!([
        { "name": "anon", "api_key": format!("{ANON_KEY}-{r}"), "type": "legacy" },
        { "name": "service_role", "api_key": format!("{SERVICE_KEY}-{r}"), "type": "legacy" },
    ]))
    .into_response()
}

/// `v1-delete-a-branch`: the branch (by its own project ref) goes.
async fn delete_branch(State(st): State<St>, Path(id): Path<String>) -> Response {
    let mut s = lock(&st);
    s.deletes.push(format!("DELETE /v1/branches/{id}"));
    if std::mem::take(&mut s.gone_before_next_delete) {
        s.branches.retain(|b| b.project_ref != id);
    }
    let Some(i) = s.branches.iter().position(|b| b.project_ref == id) else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "message": "branch not found" })),
        )
            .into_response();
    };
    let b = s.branches.remove(i);
    if let Some(db) = s.postgres.get(&b.parent_ref) {
        psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            db.branch
        ));
    }
    axum::Json(json!({ "message": "ok" })).into_response()
}
