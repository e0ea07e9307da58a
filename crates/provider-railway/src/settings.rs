//! The spec's settings for Railway, as types: what `staging validate` deserializes
//! `[environments.E.settings]` and each service's merged settings into (an unknown key is an
//! error at its place, with a "did you mean"), and what the JSON Schema in `docs/`
//! describes.

use schemars::JsonSchema;
use serde::Deserialize;

/// `[environments.E.settings]` of a `railway` environment.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RailwayEnvironmentSettings {
    /// The Railway project's id (a UUID). With a project token (`RAILWAY_TOKEN`) it may be
    /// left out: the token names its project.
    #[serde(default)]
    pub project_id: Option<String>,
    /// The Railway project's name, when no id is given (needs an account or workspace token).
    #[serde(default)]
    pub project: Option<String>,
    /// The workspace to look for `project` in.
    #[serde(default)]
    pub workspace_id: Option<String>,
    /// The Railway environment's name (default: the spec's environment name).
    #[serde(default)]
    pub environment: Option<String>,
    /// The Railway environment's id, instead of its name.
    #[serde(default)]
    pub environment_id: Option<String>,
    /// When the Railway environment does not exist, let `up` create it as a copy of the
    /// Railway environment of the spec environment this one `promotes_to` (services and
    /// variables, changes staged, no deployment), then set this environment's own
    /// variables before its first deploy. `plan` shows it first. Never for a protected
    /// environment.
    #[serde(default)]
    pub create_if_missing: bool,
}

/// A service on Railway: `[services.S.settings]` with `[services.S.overrides.E]` merged
/// onto it.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RailwayServiceSettings {
    /// The Railway service's id (a UUID): never ambiguous.
    #[serde(default)]
    pub service_id: Option<String>,
    /// The Railway service's name, when no id is given (default: the spec's service name).
    #[serde(default)]
    pub service_name: Option<String>,
}
