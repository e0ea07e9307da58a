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
    async fn ensure(&self) -> Result<BranchStatus> {
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

fn connect() {
    staging_secrets::set_database_branches(Arc::new(|b: &BranchSpec| match b {
        BranchSpec::Neon(n) => Ok(Arc::new(AnsweringBranch(n.branch.clone())) as _),
        BranchSpec::Supabase(_) => unreachable!(),
    }));
}

#[tokio::test]
async fn the_branch_url_is_the_database_url_of_the_environments_it_is_for_and_redacted() {
    connect();
    let s = spec("staging");
    let staging = staging_secrets::resolve_vars(&s, "staging", None)
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
    let production = staging_secrets::resolve_vars(&s, "production", None)
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
    connect();
    let s = spec("unreachable");
    let staging = staging_secrets::resolve_vars(&s, "staging", None)
        .await
        .unwrap();
    assert!(!staging.values.contains_key("DATABASE_URL"));
    assert!(
        staging.errors["DATABASE_URL"].contains("the branch is gone"),
        "{:?}",
        staging.errors
    );
}
