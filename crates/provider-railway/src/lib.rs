#![doc = include_str!("../README.md")]
//!
//! ## Why it is shaped so
//!
//! - Every GraphQL document is a file under `src/gql/`, checked against Railway's published
//!   schema at compile time (`graphql_client`'s derive, as Railway's own CLI does) and again
//!   in full by the test stand-in as it is sent.
//! - One private error and one function (the `error` module's `error_for_answer`) turn
//!   Railway's answers — HTTP statuses and GraphQL `errors` inside a 200 — into the
//!   toolkit's error kinds.
//! - Retrying is not done here: [`RailwayFactory`] wraps the provider in core's
//!   `RetryProvider`, the one retry policy of every provider; waiting is core's
//!   `wait_until_live` over `poll_until`.
//! - A deploy is `serviceInstanceDeployV2` with the commit: a build of that commit. The
//!   redeploy mutations re-run the image already built and report SUCCESS anyway.
//! - Variables are written as a set in one `variableCollectionUpsert` with `replace: false`
//!   and `skipDeploys: true`: one write, no deployment per variable, nothing undeclared
//!   removed.
//! - Tokens are `SecretString`s from the environment to their header; no `Debug`, error or
//!   log line holds them. Variable values are `SecretString`s from the answer on.
#![deny(missing_docs)]

mod builder;
mod client;
mod error;
mod factory;
mod import;
mod provider;
mod queries;
mod secrets;
mod settings;

pub use builder::{
    API_TOKEN_VAR, API_URL_VAR, CreateFrom, DEFAULT_API_URL, PROJECT_TOKEN_VAR, RailwayBuilder, Ref,
};
pub use factory::RailwayFactory;
pub use import::{RailwayConfigFormat, import_railway_config};
pub use provider::{EnvironmentPlan, RailwayProvider};
pub use secrets::{RailwayServiceVariablesStore, RailwayVariableStore};
pub use settings::{RailwayEnvironmentSettings, RailwayPlan, RailwayServiceSettings};

/// Every GraphQL document the crate sends, by operation name (what the stand-in test sends
/// to the schema-validating server one by one).
pub const DOCUMENTS: &[(&str, &str)] = queries::DOCUMENTS;
