#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod context;
mod error;
mod settings;

#[cfg(feature = "ecs")]
mod ecs;
#[cfg(all(feature = "ecs", feature = "logs"))]
mod logs;

pub use context::AwsContext;
#[cfg(feature = "ecs")]
pub use ecs::{EcsProvider, EcsServiceState, RolloutDiagnosis, StoppedTask};
pub use settings::{
    AcmSettings, AwsEnvironmentSettings, EcsServiceSettings, RecordSettings, SesSettings,
};
