#![doc = include_str!("../README.md")]
//!
//! ## Why it is shaped so
//!
//! - A spec service is a Vercel project; a spec environment is a Vercel target
//!   (`production`, `preview` of a branch, or a custom environment such as `staging`).
//! - One private error and one function (the `error` module's `error_for_status`) turn
//!   Vercel's statuses into the toolkit's error kinds.
//! - Retrying is not done here: [`VercelFactory`] wraps the provider in core's
//!   `RetryProvider`; waiting is core's `wait_until_live` / `poll_until`.
//! - Env vars are written one key at a time for one target; a record shared with other
//!   targets is split rather than edited, so their values never change. Values are
//!   `encrypted` or `sensitive`, never `plain`.
//! - The token is a `SecretString` from the environment to its header; no `Debug`, error or
//!   log line holds it. Env var values are `SecretString`s from the answer on.
#![deny(missing_docs)]

mod builder;
mod client;
mod env;
mod error;
mod factory;
mod import;
mod promote;
mod provider;
mod restore;
mod secrets;
mod settings;
mod step;

pub use builder::{
    API_URL_VAR, DEFAULT_API_URL, ProjectRef, READ_BUDGET, TOKEN_VAR, Target, UNLISTED_API_URL_VAR,
    VercelBuilder,
};
pub use factory::VercelFactory;
pub use import::import_vercel_json;
pub use promote::StagedPromote;
pub use provider::VercelProvider;
pub use secrets::VercelEnvStore;
pub use settings::{SecretType, VercelEnvironmentSettings, VercelServiceSettings};
pub use step::StagedPromoteStep;
