//! placeholder docs
#![deny(missing_docs)]

pub mod command;
pub mod db;
mod env;
pub mod files;
pub mod guard;
pub mod native;
pub mod split;
mod step;

pub use env::{
    DatabaseOutcome, DatabaseStatus, EnvApplyReport, EnvMigrations, EnvStatusReport, MigrateOptions,
};
pub use step::MigrateStep;
