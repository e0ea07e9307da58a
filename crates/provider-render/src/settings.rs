//! The spec's settings for Render, as types: what `staging validate` deserializes
//! `[environments.E.settings]` and each service's merged settings into (an unknown key is an
//! error at its place), and what the JSON Schema in `docs/` describes.

use schemars::JsonSchema;
use serde::Deserialize;
use staging_core::spec::DomainName;

/// `[environments.E.settings]` of a `render` environment.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderEnvironmentSettings {
    /// The workspace (`tea-...` or `usr-...`) to look for services and datastores in.
    #[serde(default)]
    pub owner_id: Option<String>,
}

/// A service on Render: `[services.S.settings]` with `[services.S.overrides.E]` merged
/// onto it.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderServiceSettings {
    /// The Render service id (`srv-...`): one request, never ambiguous.
    #[serde(default)]
    pub service_id: Option<String>,
    /// The Render service's name, when no id is given (default: the spec's service name).
    #[serde(default)]
    pub service_name: Option<String>,
    /// The workspace (`tea-...` or `usr-...`) of this service, when not the environment's.
    #[serde(default)]
    pub owner_id: Option<String>,
    /// The custom domains this service must serve (`["www.example.com"]`). The smoke step
    /// checks each is added to the service and verified on Render, asks Render to check its
    /// DNS again when it is not, and fails naming the DNS record to create.
    #[serde(default)]
    pub custom_domains: Vec<DomainName>,
}
