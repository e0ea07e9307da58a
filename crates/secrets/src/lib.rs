//! # staging-secrets
//!
//! Where each variable's value comes from, what makes one wrong, and never printing one.
//!
//! ## Why it is shaped so
//!
//! - **Values stay in `SecretString`** from the store that read them until a provider call
//!   sends them. Every type here that holds a value has a hand-written `Debug` that shows
//!   names only; every report ([`CheckReport`], [`DiffReport`], [`SyncReport`],
//!   [`RotateReport`]) holds *fingerprints*, never values, so it can be serialized to JSON,
//!   JUnit or evidence files without a second thought. Secrets are registered with the
//!   global [`staging_core::Redactor`] the moment they are read, so that even text this crate
//!   does not control (a provider's error echoing a value, a command's stderr) is masked.
//! - **Stores are [`staging_core::SecretStore`]s** ([`EnvStore`], [`DotenvStore`],
//!   [`FileStore`], [`CommandStore`]); provider crates add theirs. [`locate`] maps a spec's
//!   `SecretSource` to a store and a key: as a variable's own `source` the key is named, as
//!   an environment's default `secrets` store the variable's name is the key (`env` is a
//!   prefix, `{key}` in a command or file path is replaced).
//! - **Resolution is separate from judgement.** [`resolve_vars`] only reads (it fails only on
//!   a wrongly declared spec; a source that cannot be read is recorded per variable), and
//!   [`check_resolved`] applies the [`rules`]. The pipeline's [`SecretsStep`] and the
//!   `secrets check|diff|sync|rotate` commands are thin layers over those two, so they agree.
//! - **Comparisons are keyed.** `differs_from` / `same_as` / `diff` / `sync` compare
//!   HMAC-SHA256 tags under a random per-run key; the short fingerprint shown in tables is a
//!   stable keyed hash (see [`fingerprint`] for the choice of keys).
//! - **Writes are serialised.** A store file is rewritten under an advisory lock beside it,
//!   through a 0600 temporary file and a rename, through symlinks to their target (see
//!   [`write`](mod@write)): two rotations at once both land, a killed one leaves nothing readable
//!   behind once the next write has run.
//! - **Messages say why.** A rule's message says what is wrong and what it breaks (a missing
//!   signing key logs everyone out at every restart), and never repeats the value.
#![deny(missing_docs)]

pub mod branches;
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
pub mod write;

pub use check::{CheckReport, VarCheck, VarStatus, check, check_resolved};
pub use diff::{DiffReport, DiffRow, diff};
pub use fingerprint::{FINGERPRINT_KEY_ENV, Fingerprinter, Tag};
pub use resolve::{ResolvedVars, resolve_vars};
pub use rotate::{
    DEFAULT_GENERATED_LENGTH, RotateReport, generate, generated_length, rotate, rotate_dry_run,
};
pub use rules::{Severity, Violation};
pub use step::SecretsStep;
pub use store::{
    CommandStore, DEFAULT_COMMAND_TIMEOUT, DotenvStore, EnvStore, FileStore, Location, locate,
};
pub use sync::{ServiceSync, SyncAction, SyncItem, SyncOptions, SyncOutcome, SyncReport, sync};
