//! A database that is a branch takes its URL from the branch in the environments the branch
//! is for: the value of its `url_var` is the branch's connection URL, secret and redacted;
//! other environments keep their own source.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use staging_core::spec::{BranchSpec, LoadOptions, LoadedSpec};
use staging_core::{
    BranchState, BranchStatus, DatabaseBranch, Error, Redactor, Result, async_trait,
};

const BRANCH_URL: &str = "postgresql://app:branch-canary-pass-81d2@ep-staging.neon.example/app";

/// A branch whose provider answers a fixed URL: what is under test is where the URL goes.
#[derive(Debug)]
struct AnsweringBranch(String);

#[async_trait]
impl DatabaseBranch for AnsweringBranch {
    fn describe(&self) -> String {
        format!("neon branch `{}`", self.0)
    }
    async fn missing(&self, _owner: &str) -> Result<Vec<staging_core::Creation>> {
        Ok(vec![])
    }
    async fn create(&self, _target: &staging_core::CreationTarget) -> Result<BranchStatus> {
        self.status().await
    }
    async fn reset_from_parent(&self) -> Result<BranchStatus> {
        self.status().await
    }
    async fn connection_url(&self) -> Result<SecretString> {
        if self.0 == "unreachable" {
            return Err(Error::Failed {
                message: "neon: the branch is gone".into(),
            });
        }
        Ok(SecretString::from(BRANCH_URL.to_owned()))
    }
    async fn status(&self) -> Result<BranchStatus> {
        Ok(BranchStatus {
            id: "br-1".into(),
            name: self.0.clone(),
            parent_id: None,
            state: BranchState::Ready,
            created: false,
        })
    }
}

fn spec(branch: &str) -> LoadedSpec {
    LoadedSpec::parse(
        "staging.toml",
        format!(
            r#"
[project]
name = "b"

[environments.staging]
provider = "local"
promotes_to = "production"

[environments.production]
provider = "local"
protected = true

[vars.DATABASE_URL]
values = {{ staging = "postgres://hand-written/staging", production = "postgres://prod-host/app" }}

[databases.main]
url_var = "DATABASE_URL"
branch = {{ neon = {{ project_id = "p", branch = "{branch}", parent = "main" }} }}
"#
        ),
        LoadOptions::new(&["local"]),
    )
    .unwrap()
}

/// The branches reached through the backends a session passes down (no process-wide
/// setting).
fn connect() -> staging_core::SecretBackends {
    staging_core::SecretBackends {
        database_branches: Some(Arc::new(|b: &BranchSpec| match b {
            BranchSpec::Neon(n) => Ok(Arc::new(AnsweringBranch(n.branch.clone())) as _),
            BranchSpec::Supabase(_) => unreachable!(),
        })),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_branch_url_is_the_database_url_of_the_environments_it_is_for_and_redacted() {
    let backends = connect();
    let s = spec("staging");
    let staging = staging_secrets::resolve_vars(&backends, &s, "staging", None)
        .await
        .unwrap();
    assert_eq!(staging.values["DATABASE_URL"].expose_secret(), BRANCH_URL);
    assert!(staging.secret_names.contains("DATABASE_URL"));
    assert_eq!(staging.sources["DATABASE_URL"], "neon branch `staging`");
    assert!(
        !Redactor::global()
            .redact(&format!("connect to {BRANCH_URL}"))
            .contains("branch-canary-pass-81d2")
    );
    let production = staging_secrets::resolve_vars(&backends, &s, "production", None)
        .await
        .unwrap();
    assert_eq!(
        production.values["DATABASE_URL"].expose_secret(),
        "postgres://prod-host/app",
        "a protected environment is never the branch"
    );
}

#[tokio::test]
async fn a_branch_that_cannot_be_read_is_an_error_of_its_variable_not_a_fallback() {
    let backends = connect();
    let s = spec("unreachable");
    let staging = staging_secrets::resolve_vars(&backends, &s, "staging", None)
        .await
        .unwrap();
    assert!(!staging.values.contains_key("DATABASE_URL"));
    assert!(
        staging.errors["DATABASE_URL"].contains("the branch is gone"),
        "{:?}",
        staging.errors
    );
}

#[tokio::test]
async fn without_the_branch_backends_a_branch_database_is_an_error_naming_what_is_missing() {
    // Nothing process-wide: a resolution given no branch backends never sees another
    // session's (the ones `connect` builds in the other tests) and never falls back to the
    // hand-written URL.
    let s = spec("staging");
    let staging =
        staging_secrets::resolve_vars(&staging_core::SecretBackends::none(), &s, "staging", None)
            .await
            .unwrap();
    assert!(!staging.values.contains_key("DATABASE_URL"));
    assert!(
        staging.errors["DATABASE_URL"].contains("database_branches"),
        "{:?}",
        staging.errors
    );
}
