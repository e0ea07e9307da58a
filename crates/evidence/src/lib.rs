//! # staging-evidence
//!
//! What makes a promotion trustworthy: a record of each run, a gate that reads it, and the
//! tools to see why environments or runs differ.
//!
//! - [`EvidenceStore`]: where runs are recorded — a directory ([`DirStore`], the default,
//!   `.staging/evidence/`) or a Postgres table ([`PgStore`]) for CI runners that share no
//!   disk. [`open_store`] picks the one the spec names; [`RecordEvidence`] is the
//!   pipeline's evidence step writing into it.
//! - [`lease`]: one run at a time changes an environment. Every command that changes one
//!   takes its [`Lease`] from the evidence store first (a lock file in the directory, a
//!   row guarded by an advisory lock in Postgres, with a log of every holder), renewed
//!   while the run lasts and released when it ends; read-only commands never take it.
//! - [`check_gate`]: `staging promote` asks it first. It answers [`GateDecision::Allowed`]
//!   with the evidence, or [`GateDecision::Refused`] with a [`Refusal`] that says exactly
//!   why (no run, other commit only, failed run and its step, a run that validated nothing,
//!   spec changed, evidence edited, too old). The evidence of the promotion then names the
//!   record that allowed it ([`RecordEvidence::promoted_from`]).
//! - [`diff_environments`]: `staging diff A B`, drift between two environments, and
//!   [`DriftReport::add_platform`]: the same against what each provider holds;
//!   [`PlatformRulesStep`] fails `up` before the deploy when a `same_as` / `differs_from`
//!   rule is broken against another environment's platform.
//! - [`doctor`]: each failure of a run with its likely cause and remedy.
//! - [`Junit`]: JUnit XML of whole runs for CI (valid against `junit-10.xsd`); [`html`], a
//!   self-contained page of a run; [`markdown_summary`] and [`github_outputs`] for CI.
//!
//! ## Why it is shaped so
//!
//! The evidence *format* (`Evidence`, its content hash, its file layout) stays in
//! `staging-core`, next to the pipeline that produces it, so a run recorded by core's own
//! `EvidenceStep` and one recorded here are the same record. Everything that *reads*
//! evidence back — listing, filtering, judging — lives here, with the one store that needs
//! a database driver (`staging-postgres`); core stays free of database drivers.
//!
//! The gate judges a record by its own content, never by where it is kept: a file moved to
//! another commit's directory, or a row whose columns were edited, is still only what its
//! body says, and a body that no longer matches its content hash refuses the promotion
//! rather than being skipped. The content hash detects edits, not forgery: anyone who can
//! write the store can write a record that hashes right, so the Postgres store's table
//! should be writable by CI only.
//!
//! Time is an input: [`GateRequest::at`] fixes "now", so age is tested without sleeping.
#![deny(missing_docs)]

pub mod data_state;
mod dir;
mod dir_lease;
pub mod doctor;
mod drift;
mod gate;
mod junit;
pub mod lease;
mod ledger;
mod open;
mod pg_lease;
mod platform;
mod postgres;
mod store;
mod views;

pub use data_state::{EvidenceStateLog, Unscrubbed, refuse_unscrubbed, unscrubbed_databases};
pub use dir::DirStore;
pub use doctor::{Diagnosed, Diagnosis, diagnose_evidence, diagnose_report};
pub use drift::{
    BrokenRule, DatabaseDrift, DriftReport, LiveEnvDiff, MigrationSide, SettingDiff,
    diff_environments,
};
pub use gate::{GateDecision, GateRequest, Refusal, check_gate};
pub use junit::{Junit, junit_xml};
pub use lease::{Lease, LeaseHolder, LeaseOptions, LeaseRecord, LeaseStore};
pub use ledger::{EvidenceLedger, LEDGER_COMMIT};
pub use open::{
    EVIDENCE_URL_KEY, RecordEvidence, check_direct_up, dir_store, open_store, promotion_pair,
};
pub use pg_lease::LeaseEvent;
pub use platform::{
    PlatformRules, PlatformRulesStep, PlatformService, PlatformSide, PlatformVarDiff, ValueSide,
    check_against_platforms, compare_platforms, read_platform, sync_checked,
};
pub use postgres::{DEFAULT_TABLE, PgStore, SCHEMA_MIGRATIONS};
pub use store::{
    DynEvidenceStore, EvidenceFilter, EvidenceStore, EvidenceSummary, Listing, StoredEvidence,
    Unreadable, latest,
};
pub use views::{RunView, github_outputs, html, markdown_summary};
