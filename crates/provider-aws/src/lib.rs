#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod context;
mod error;
mod factory;
mod settings;

#[cfg(feature = "ecs")]
mod ecs;
#[cfg(all(feature = "ecs", feature = "logs"))]
mod logs;
pub mod probes;
#[cfg(feature = "secretsmanager")]
mod secrets;

pub use context::AwsContext;
#[cfg(feature = "ecs")]
pub use ecs::{
    EcsProvider, EcsServiceState, READ_BUDGET as ECS_READ_BUDGET, RolloutDiagnosis, StoppedTask,
};
#[cfg(feature = "ecs")]
pub use factory::ecs_secret_store;
pub use factory::ecs_secrets_prefix;
#[cfg(feature = "secretsmanager")]
pub use factory::secret_store;
pub use factory::{AwsFactory, build_probes, context_from_spec, settings_from_spec};
pub use probes::probes_from_settings;
#[cfg(feature = "secretsmanager")]
pub use secrets::SecretsManagerStore;
pub use settings::{
    AcmSettings, AwsEnvironmentSettings, EcsServiceConfig, EcsServiceSettings, RecordSettings,
    SesSettings,
};
