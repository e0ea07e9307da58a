//! The spec's settings for Vercel, as types: what `staging validate` deserializes
//! `[environments.E.settings]` and each service's merged settings into (an unknown key is an
//! error at its place, with a "did you mean"), and what the JSON Schema describes.

use schemars::JsonSchema;
use serde::Deserialize;

/// How a secret env var is stored on Vercel. Never `plain`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecretType {
    /// Encrypted at rest, readable back by the team (the default: `staging` can compare it).
    #[default]
    Encrypted,
    /// Write-only: nobody reads it back, `staging` included (production and preview only).
    Sensitive,
}

impl SecretType {
    pub(crate) fn word(self) -> &'static str {
        match self {
            SecretType::Encrypted => "encrypted",
            SecretType::Sensitive => "sensitive",
        }
    }
}

/// `[environments.E.settings]` of a `vercel` environment.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VercelEnvironmentSettings {
    /// The Vercel environment deployments go to: `production`, `preview`, or the slug of a
    /// custom environment (`staging`). Default: `production` for a spec environment named
    /// `production`, `preview` for one named `preview`, else the custom environment named
    /// like the spec environment.
    #[serde(default)]
    pub target: Option<String>,
    /// The git branch deployments are built from (`ref` of the git source); for `preview`
    /// also the branch whose env vars are read and written. Default `main`.
    #[serde(default)]
    pub git_branch: Option<String>,
    /// The team's id (`team_…`), sent as `teamId`.
    #[serde(default)]
    pub team_id: Option<String>,
    /// The team's slug, sent as `slug`, when no id is given.
    #[serde(default)]
    pub team_slug: Option<String>,
    /// How secret env vars are written: `encrypted` (default) or `sensitive`. Never `plain`.
    #[serde(default)]
    pub secret_type: SecretType,
    /// Production only: the staged flow. A deploy is built without taking the production
    /// domains (`autoAssignCustomDomains` off), verified and smoked at its own URL, and
    /// promoted (`requestPromote`) only when everything before passed; the project's
    /// `autoAssignCustomDomains` is then set back to what it was.
    #[serde(default)]
    pub staged: bool,
}

/// A service on Vercel (a Vercel project): `[services.S.settings]` with
/// `[services.S.overrides.E]` merged onto it.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VercelServiceSettings {
    /// The project's id (`prj_…`): never ambiguous.
    #[serde(default)]
    pub project_id: Option<String>,
    /// The project's name, when no id is given (default: the spec's service name).
    #[serde(default)]
    pub project: Option<String>,
    /// The GitHub repository deployments are built from, `org/repo`.
    #[serde(default)]
    pub repo: Option<String>,
}
