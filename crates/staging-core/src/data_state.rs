//! Whether an environment's database holds unscrubbed production data: a state, recorded
//! where evidence is kept, that `up`, `smoke` and `promote` refuse on.
//!
//! A refresh marks the database BEFORE its copy starts and clears the mark only after its
//! scrub and PII guard passed, so a failed scrub, a refresh stopped by a signal mid-restore
//! (the platform may finish the restore anyway) and a copy without a scrub all leave the mark.
//! A fork from production (a branch created from its parent, with its data) is marked the
//! same way. Each mark is a record of its own, with one step named [`STEP`] whose finding per
//! database (`database main`) fails while the data is unscrubbed and passes once scrubbed;
//! the newest such finding of a database decides.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use crate::Result;
use crate::pipeline::{Finding, StepReport};

/// The step name of a record of the data's state.
pub const STEP: &str = "database-state";

/// The finding name of database `database` in a [`STEP`] report.
pub fn finding_name(database: &str) -> String {
    format!("database {database}")
}

/// A [`STEP`] report: database `database` holds unscrubbed data copied from `source`
/// (`why`: what put it there).
pub fn unscrubbed(database: &str, source: &str, why: &str) -> StepReport {
    StepReport::from_findings(
        STEP,
        format!("database `{database}` holds unscrubbed data of `{source}`"),
        vec![Finding::failed(
            finding_name(database),
            format!(
                "UNSCRUBBED: holds personal data copied from `{source}` ({why}); `up`, `smoke` and `promote` refuse until `staging refresh` passes with its scrub (or run with --allow-unscrubbed, recorded)"
            ),
        )],
    )
}

/// A [`STEP`] report: database `database` was scrubbed (`how`).
pub fn scrubbed(database: &str, how: &str) -> StepReport {
    StepReport::from_findings(
        STEP,
        format!("database `{database}` scrubbed"),
        vec![Finding::ok(
            finding_name(database),
            format!("scrubbed: {how}"),
        )],
    )
}

/// Where the state is recorded (the evidence store): each call is one record of its own,
/// written before it returns.
#[async_trait]
pub trait DataStateLog: Debug + Send + Sync + 'static {
    /// Record `report` (a [`STEP`] report) for `environment` now.
    async fn record_state(&self, environment: &str, report: StepReport) -> Result<()>;
}

/// A log behind a pointer.
pub type DynDataStateLog = Arc<dyn DataStateLog>;
