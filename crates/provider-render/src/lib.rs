#![doc = include_str!("../README.md")]
//!
//! ## Why it is shaped so
//!
//! - HTTP is the shared platform client (`staging_rest`): bounds, the body cap, one mapping
//!   of statuses to kinds (Render's only override: 410 is "not found"), the key's shared rate
//!   budget (a 429 or `Ratelimit-Remaining: 0` pauses every request of the key; the
//!   `Ratelimit-Limit` of reads sets the cadence of waits) and retries that know what is
//!   safe: reads are retried inside the client, a deploy is sent again only after a 429, or
//!   after Render was asked whether it started (by commit or image).
//! - Core's `RetryProvider` (which `RenderFactory::build` wraps around the provider) retries
//!   reads only. Here there is only client-side pacing (deploy triggers and writes per
//!   minute) so that we do not earn the 429 in the first place.
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
mod teardown;

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
pub use teardown::RenderTeardown;
