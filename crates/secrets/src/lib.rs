//! # staging-secrets
//!
//! Where each variable's value comes from, what makes one wrong, and never printing one.
#![deny(missing_docs)]

mod check;
mod dotenv;
pub mod fingerprint;
mod resolve;
pub mod rules;
mod step;
pub mod store;

pub use check::{CheckReport, VarCheck, VarStatus, check, check_resolved};
pub use fingerprint::{FINGERPRINT_KEY_ENV, Fingerprinter, Tag};
pub use resolve::{ResolvedVars, resolve_vars};
pub use rules::{Severity, Violation};
pub use step::SecretsStep;
pub use store::{
    CommandStore, DEFAULT_COMMAND_TIMEOUT, DotenvStore, EnvStore, FileStore, Location, locate,
};
