//! # staging-secrets
//!
//! Where each variable's value comes from, what makes one wrong, and never printing one.
#![deny(missing_docs)]

mod check;
mod diff;
mod dotenv;
pub mod fingerprint;
mod resolve;
mod rotate;
pub mod rules;
mod step;
pub mod store;
mod sync;

pub use check::{CheckReport, VarCheck, VarStatus, check, check_resolved};
pub use diff::{DiffReport, DiffRow, diff};
pub use fingerprint::{FINGERPRINT_KEY_ENV, Fingerprinter, Tag};
pub use resolve::{ResolvedVars, resolve_vars};
pub use rotate::{DEFAULT_GENERATED_LENGTH, RotateReport, generate, generated_length, rotate};
pub use rules::{Severity, Violation};
pub use step::SecretsStep;
pub use store::{
    CommandStore, DEFAULT_COMMAND_TIMEOUT, DotenvStore, EnvStore, FileStore, Location, locate,
};
pub use sync::{ServiceSync, SyncAction, SyncItem, SyncOptions, SyncOutcome, SyncReport, sync};
