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
    /// The Railway plan of the workspace, whose API rate limit paces the waits (a quarter
    /// of it at most): `free` (100 requests an hour), `hobby` (1,000 an hour, the default)
    /// or `pro` (10,000 an hour; Enterprise allows at least as much).
    #[serde(default)]
    pub plan: RailwayPlan,
}

/// A Railway plan, for its public API rate limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RailwayPlan {
    /// 100 requests an hour.
    Free,
    /// 1,000 requests an hour (10 a second).
    #[default]
    Hobby,
    /// 10,000 requests an hour (50 a second).
    Pro,
}

impl RailwayPlan {
    /// The plan's documented read budget.
    pub fn read_budget(self) -> staging_core::ReadBudget {
        use staging_core::ReadBudget;
        match self {
            RailwayPlan::Free => {
                ReadBudget::per_hour(100, "Railway public API, Free plan: 100 requests an hour")
            }
            RailwayPlan::Hobby => ReadBudget::per_hour(
                1_000,
                "Railway public API, Hobby plan: 1,000 requests an hour",
            ),
            RailwayPlan::Pro => ReadBudget::per_hour(
                10_000,
                "Railway public API, Pro plan: 10,000 requests an hour",
            ),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_plan_paces_waits_at_a_quarter_of_its_hourly_limit() {
        // One service: Hobby 1,000/h → a quarter is 250/h → one poll every 14.4 s.
        let interval = |p: RailwayPlan| p.read_budget().steady_interval(1);
        assert_eq!(interval(RailwayPlan::Hobby).as_millis(), 14_400);
        assert_eq!(interval(RailwayPlan::Pro).as_millis(), 1_440);
        assert_eq!(interval(RailwayPlan::Free).as_secs(), 144);
        assert_eq!(RailwayPlan::default(), RailwayPlan::Hobby);
        // Five services share the same quarter.
        assert_eq!(
            RailwayPlan::Pro
                .read_budget()
                .steady_interval(5)
                .as_millis(),
            7_200
        );
    }
}
