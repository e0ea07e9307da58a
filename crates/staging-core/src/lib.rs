//! # staging-core
//!
//! The traits, the spec model, the pipeline and the shared error of the `staging` toolkit.
//!
//! This crate knows nothing of HTTP or cloud SDKs: providers (`staging-provider-*`), probes
//! (`staging-smoke`), secret stores (`staging-secrets`) and migration runners
//! (`staging-migrate`) implement its traits in their own crates, and the `staging` CLI
//! composes them. That keeps the core small, cheap to compile, and the one place where the
//! vocabulary of the whole toolkit is defined:
//!
//! - [`Provider`]: a hosting platform — locate a service, read its live state, deploy,
//!   wait; optional capability traits (env vars, rollback, logs, cancel, environment
//!   setup) handed out through [`Capabilities`].
//! - [`SecretStore`]: where secret values come from; values are always `SecretString`.
//! - [`Probe`]: one smoke check with evidence.
//! - [`Migration`]: status and apply for one database.
//! - [`Provisioner`]: creates the services and datastores an environment lacks.
//! - [`DatabaseBranch`]: a database that is a branch of another (Neon, Supabase).
//! - [`spec`]: the `staging.toml` model, with `file:line:col` errors.
//! - [`pipeline`]: the steps of a run and how they report.
//! - [`isolation`]: a run never changes what another environment names.
//! - [`database_target`]: databases identified by what the server says; the token every
//!   database write needs.
//! - [`Error`]: one error of kinds, with [`Error::is_retryable`].
#![deny(missing_docs)]

pub mod boundary;
pub mod cadence;
pub mod composite;
pub mod data_state;
pub mod database_branch;
pub mod database_target;
pub mod env_snapshot;
pub mod error;
pub mod files;
pub mod isolation;
pub mod junit;
pub mod limits;
pub mod logged;
pub mod migration;
pub mod pipeline;
pub mod probe;
pub mod process;
pub mod provider;
pub mod provision;
pub mod redact;
pub mod registry;
pub mod retry;
pub mod secret;
pub mod secret_backends;
pub mod secretness;
pub mod spec;
#[cfg(feature = "testkit")]
pub mod stand_in;
pub mod teardown;
#[cfg(feature = "testkit")]
pub mod testkit;

/// The README's examples, compiled and run as doc tests (not part of the API).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use boundary::{CreationTarget, EnvironmentTarget, Identity, WriteBoundary, WriteTarget};
pub use cadence::{Cadence, ReadBudget};
pub use database_branch::{BranchState, BranchStatus, DatabaseBranch, DynDatabaseBranch, Ensured};
pub use database_target::{DatabaseIdentity, DatabaseTarget, DatabaseTargets, IdentifyDatabase};
pub use env_snapshot::{EnvRestore, EnvSnapshot, VarBefore};
pub use error::{BoxError, Error, ErrorClass, Result};
pub use logged::LoggedProvider;
pub use migration::{
    AppliedMigration, DynMigration, Migration, MigrationEntry, MigrationPlan, MigrationReport,
    MigrationState, MigrationStatus,
};
pub use probe::{DynProbe, Probe, ProbeOutcome};
pub use provider::{
    Cancel, Capabilities, Capability, Deploy, DeployKinds, DeployRequest, DeployStatus,
    DeployTarget, DynProvider, EnvVars, EnvironmentSetup, LiveState, LogLine, LogQuery, Logs,
    Pacing, Provider, ProviderExt, Rollback, ServiceHandle, WaitProgress, recent_logs_from_logs,
};
pub use provision::{Creation, DynProvisioner, ProvisionStep, Provisioner};
pub use redact::Redactor;
pub use registry::{ProviderFactory, ProviderRegistry, SpecWarning};
pub use retry::{Backoff, Next, RetryPolicy, RetryProvider, poll_until};
pub use secret::{DynSecretStore, SecretStore};
pub use secret_backends::SecretBackends;
pub use teardown::{
    Created, CreatedBy, DeletionTarget, DynLedgerStore, DynTeardown, Found, InstanceRecord, Ledger,
    LedgerStore, Teardown,
};

/// Re-exported so that implementors use the same version.
pub use async_trait::async_trait;
pub use secrecy;
