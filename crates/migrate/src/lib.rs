//! # staging-migrate
//!
//! Migrations for `staging`: staging first, production only after — with a native SQL
//! runner for Postgres and SQLite, and a command runner for the tools teams already use
//! (alembic, rails, prisma, sqlx-cli, dbmate).
//!
//! ## Why it is shaped so
//!
//! - **Two runners, one trait.** Both implement [`staging_core::Migration`], so the pipeline,
//!   the CLI and the production rule do not care which one a database uses. The native
//!   runner ([`native::SqlMigrator`]) exists so the bundled example needs no external tool
//!   and so teams without one get locking, drift detection and precise errors; the command
//!   runner ([`command::CommandMigrator`]) exists because a team on alembic should not have
//!   to rewrite its migrations to get the staging-before-production rule.
//! - **One lock per run, one transaction per migration.** A Postgres session advisory lock
//!   (or a lock file next to the SQLite file) is held for the whole run, and applied versions
//!   are read only after it is taken, so ten runners started at once apply each migration
//!   exactly once. Each migration commits together with its metadata row, so a runner killed
//!   mid-migration leaves either all of it or none of it; on Postgres the session also sets
//!   `client_connection_check_interval` so the server notices a killed runner within a
//!   second, rolls back and frees the lock.
//! - **One round trip per migration on Postgres.** A migration is sent as one simple query,
//!   `BEGIN; <file>; INSERT <metadata>; COMMIT;`. The server's per-statement completions
//!   say which statement failed, and its error position says the line; see
//!   [`split`] for how statements are counted.
//! - **Refuse rather than guess.** Applied migrations that changed (checksum) or vanished
//!   block `apply` unless the explicit, logged escape hatch is used; a misnamed `.sql` file is
//!   an error, not skipped; a protected environment is migrated only with versions its source
//!   environment already has ([`guard`]), and seed/reset-style commands never run there.
//! - **Secrets stay secret.** URLs live in `SecretString`; driver errors and child-process
//!   output pass through the [`staging_core::Redactor`] or URL-credential masking.
//!
//! ## Entry points
//!
//! - [`EnvMigrations`]: every database of a spec in one environment — `status()` and
//!   `apply()` return serializable reports (what `staging migrate status|apply` prints).
//! - [`MigrateStep`]: the `migrate` step of the pipeline.
//! - [`native::SqlMigrator`], [`command::CommandMigrator`]: one database, directly.
//!
//! The naming scheme, metadata table, lock, no-transaction marker, escape hatch and the
//! production rule are documented in `docs/migrations.md`.
#![deny(missing_docs)]

pub mod command;
pub mod db;
mod env;
pub mod files;
pub mod guard;
pub mod native;
pub mod pii;
pub mod refresh;
mod secrets;
pub mod split;
mod step;

pub use env::{
    DatabaseOutcome, DatabaseStatus, EnvApplyReport, EnvMigrations, EnvStatusReport, MigrateOptions,
};
pub use secrets::{SecretsUrlLookup, database_url_vars};
/// What identifies a Postgres database (re-exported for the callers that issue
/// [`staging_core::DatabaseTarget`]s, such as `staging refresh`).
pub use staging_postgres::ServerIdentity;
pub use step::MigrateStep;
