//! # staging-provider-netlify
//!
//! Why it is shaped so: a Netlify site is one service whose environments are *deploy
//! contexts* of the same site, not separate services. So an environment of the spec maps to
//! a context (`production`, `deploy-preview`, `branch-deploy`, `branch:develop`), and every
//! operation is scoped by it: which deploys are "live" for it, which branch a deploy builds,
//! which value of an env var it reads and writes. Netlify builds from the repository, so
//! "deploy commit X" means "build the context's branch and prove it built X"; a build of
//! another commit fails the wait instead of passing silently. Requests go through the shared
//! platform client (`staging_rest`): its one mapping of statuses to kinds with Netlify's
//! differences as data (`error.rs`: 422 is a configuration error), its bounds, body cap,
//! `Retry-After` reading and retries; Netlify's own limits (500 requests, 3 deploys a
//! minute) are kept client-side by its windows.
//!
#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod client;
mod context;
mod domains;
mod env;
mod error;
mod factory;
mod import;
mod limit;
mod models;
mod provider;
mod provision;
mod teardown;

pub use client::DEFAULT_API_URL;
pub use context::DeployContext;
pub use domains::{NETLIFY_APEX_A_RECORD, NetlifyDomainProbe};
pub use env::NetlifyEnvStore;
pub use factory::{NetlifyFactory, NetlifySettings};
pub use import::{import_netlify_toml, import_netlify_toml_as};
pub use limit::RateLimits;
pub use provider::{NetlifyBuilder, NetlifyProvider, SiteRef, SiteTarget};
pub use provision::NetlifyProvisioner;
pub use teardown::NetlifyTeardown;
