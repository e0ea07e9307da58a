#![doc = include_str!("../README.md")]
//!
//! ## Why it is shaped so
//!
//! - One private error and one function (the `error` module's `error_for_status`) turn Render's
//!   answers into the toolkit's error kinds, so a 429 is a rate limit whichever call got it.
//! - Retrying is not done here: `RenderFactory::build` (core's `ProviderFactory::build`) wraps the provider in core's
//!   `RetryProvider`, the one retry policy of every provider. Here there is only pacing
//!   (deploy triggers and writes per minute) so that we do not earn the 429 in the first place.
//! - Env vars are written one key at a time (`PUT`/`DELETE .../env-vars/{key}`); the
//!   whole-set `PUT .../env-vars` replaces every var and is never called.
//! - What only Render does (custom domains, one-off jobs, datastores, cancel) is inherent
//!   methods of [`RenderProvider`], not trait methods, so core's trait stays small.
//! - The API key is a `SecretString` from the environment to the `Authorization` header; no
//!   `Debug`, error or log line holds it.
#![deny(missing_docs)]

mod blueprint;
mod builder;
mod client;
mod domains;
mod error;
mod extras;
mod factory;
mod model;
mod provider;
mod provision;
mod secrets;
mod settings;

pub use blueprint::{import_blueprint, import_blueprint_as, import_blueprint_from};
pub use builder::{
    API_KEY_VAR, API_URL_VAR, DEFAULT_BASE_URL, READ_BUDGET, RenderBuilder, ServiceRef,
};
pub use client::RateLimits;
pub use domains::{CustomDomainProbe, RENDER_APEX_A_RECORD};
pub use factory::RenderFactory;
pub use model::{CustomDomain, Job, JobStatus};
pub use provider::RenderProvider;
pub use provision::RenderProvisioner;
pub use secrets::{Connection, Datastore, RenderDatastoreStore, RenderEnvStore};
pub use settings::{
    DatastoreKind, DiskSettings, MaxmemoryPolicy, Region, RenderDatastoreSettings,
    RenderEnvironmentSettings, RenderServiceSettings, Runtime, ServiceType,
};
