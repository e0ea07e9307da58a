//! The parts of Render's API objects this crate reads, and the public values it returns.
//!
//! Deserialization is lenient on purpose: only the fields used are declared, and every field
//! the API description marks optional is optional here, so a new field or a missing optional
//! one never breaks a deploy.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use staging_core::{Deploy, DeployStatus};

/// `{service: {...}}` in `GET /services`.
#[derive(Debug, Deserialize)]
pub(crate) struct ServiceItem {
    pub(crate) service: Service,
}

/// A service, as much of it as we read.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Service {
    pub(crate) id: String,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) owner_id: Option<String>,
    #[serde(default)]
    pub(crate) service_details: Option<ServiceDetails>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServiceDetails {
    #[serde(default)]
    pub(crate) url: Option<String>,
}

/// `{deploy: {...}}` in `GET /services/{id}/deploys`.
#[derive(Debug, Deserialize)]
pub(crate) struct DeployItem {
    #[serde(default)]
    pub(crate) deploy: Option<RawDeploy>,
}

/// A deploy as Render describes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawDeploy {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) commit: Option<RawCommit>,
    #[serde(default)]
    pub(crate) image: Option<RawImage>,
    #[serde(default)]
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) created_at: Option<String>,
    #[serde(default)]
    pub(crate) started_at: Option<String>,
    #[serde(default)]
    pub(crate) finished_at: Option<String>,
    #[serde(default)]
    pub(crate) updated_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RawCommit {
    #[serde(default)]
    pub(crate) id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RawImage {
    #[serde(default, rename = "ref")]
    pub(crate) reference: Option<String>,
}

/// Render's deploy statuses mapped to the toolkit's. `deactivated` (replaced by a newer
/// deploy) and the three `*_failed` are terminal: waiting stops on them.
pub(crate) fn deploy_status(raw: &str) -> DeployStatus {
    match raw {
        "created" | "queued" => DeployStatus::Queued,
        "build_in_progress" | "update_in_progress" | "pre_deploy_in_progress" => {
            DeployStatus::InProgress
        }
        "live" => DeployStatus::Live,
        "build_failed" | "update_failed" | "pre_deploy_failed" => DeployStatus::Failed,
        "canceled" => DeployStatus::Canceled,
        "deactivated" => DeployStatus::Superseded,
        // A status newer than this crate: keep waiting; the wait is bounded anyway.
        _ => DeployStatus::InProgress,
    }
}

impl RawDeploy {
    pub(crate) fn to_deploy(&self) -> Deploy {
        let raw = self.status.clone().unwrap_or_else(|| "unknown".to_owned());
        Deploy {
            id: self.id.clone(),
            status: deploy_status(&raw),
            commit: self.commit.as_ref().and_then(|c| c.id.clone()),
            image: self.image.as_ref().and_then(|i| i.reference.clone()),
            raw_status: raw,
        }
    }
}

/// `{envVar: {key, value}}` in `GET /services/{id}/env-vars`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EnvVarItem {
    pub(crate) env_var: EnvVar,
}

#[derive(Debug, Deserialize)]
pub(crate) struct EnvVar {
    pub(crate) key: String,
    pub(crate) value: SecretString,
}

/// `{customDomain: {...}}` in `GET /services/{id}/custom-domains`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CustomDomainItem {
    pub(crate) custom_domain: CustomDomain,
}

/// A custom domain of a service and whether Render has verified its DNS.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CustomDomain {
    /// Render's id (`cdm-...`).
    pub id: String,
    /// The domain name.
    pub name: String,
    /// `apex` or `subdomain`.
    #[serde(default)]
    pub domain_type: Option<String>,
    /// `verified` or `unverified`.
    pub verification_status: String,
    /// The name this one redirects to (`www.example.com` for `example.com`), if any.
    #[serde(default)]
    pub redirect_for_name: Option<String>,
}

impl CustomDomain {
    /// Whether Render has verified the domain's DNS (and so serves a certificate for it).
    pub fn is_verified(&self) -> bool {
        self.verification_status == "verified"
    }
}

/// A one-off job's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for an instance.
    Pending,
    /// Running.
    Running,
    /// Exited zero.
    Succeeded,
    /// Exited non-zero or could not start.
    Failed,
    /// Canceled.
    Canceled,
}

impl JobStatus {
    fn from_raw(raw: Option<&str>) -> Self {
        match raw {
            Some("running") => JobStatus::Running,
            Some("succeeded") => JobStatus::Succeeded,
            Some("failed") => JobStatus::Failed,
            Some("canceled") => JobStatus::Canceled,
            _ => JobStatus::Pending,
        }
    }

    /// Whether the job will not change state any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Canceled
        )
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawJob {
    pub(crate) id: String,
    pub(crate) start_command: String,
    #[serde(default)]
    pub(crate) status: Option<String>,
}

/// A one-off job run on a service (a migration with the service's own environment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Job {
    /// Render's id (`job-...`).
    pub id: String,
    /// The command it runs.
    pub command: String,
    /// Its status.
    pub status: JobStatus,
}

impl From<RawJob> for Job {
    fn from(raw: RawJob) -> Self {
        Job {
            status: JobStatus::from_raw(raw.status.as_deref()),
            id: raw.id,
            command: raw.start_command,
        }
    }
}

/// `{postgres: {id, name}}` / `{keyValue: {id, name}}` in the datastore lists.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DatastoreItem {
    #[serde(alias = "keyValue")]
    pub(crate) postgres: Named,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Named {
    pub(crate) id: String,
    pub(crate) name: String,
}

/// `GET /postgres/{id}/connection-info`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PostgresConnectionInfo {
    pub(crate) internal_connection_string: SecretString,
    pub(crate) external_connection_string: SecretString,
}

/// `GET /key-value/{id}/connection-info`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KeyValueConnectionInfo {
    pub(crate) internal_connection_string: SecretString,
    pub(crate) external_connection_string: SecretString,
}

/// A page of `GET /logs`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LogsPage {
    #[serde(default)]
    pub(crate) has_more: bool,
    #[serde(default)]
    pub(crate) next_end_time: Option<String>,
    #[serde(default)]
    pub(crate) logs: Vec<LogLine>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LogLine {
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) timestamp: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_deploy_status_maps_to_a_kind() {
        let cases = [
            ("created", DeployStatus::Queued),
            ("queued", DeployStatus::Queued),
            ("build_in_progress", DeployStatus::InProgress),
            ("update_in_progress", DeployStatus::InProgress),
            ("pre_deploy_in_progress", DeployStatus::InProgress),
            ("live", DeployStatus::Live),
            ("deactivated", DeployStatus::Superseded),
            ("build_failed", DeployStatus::Failed),
            ("update_failed", DeployStatus::Failed),
            ("pre_deploy_failed", DeployStatus::Failed),
            ("canceled", DeployStatus::Canceled),
        ];
        for (raw, want) in cases {
            assert_eq!(deploy_status(raw), want, "{raw}");
        }
    }

    #[test]
    fn a_web_service_as_render_sends_it_gives_its_url() {
        // The contract's `serviceDetails` is a oneOf that a web service matches several
        // branches of, so the stand-ins serve other types; this is the shape Render sends.
        let json = r#"{"id":"srv-1","name":"web","ownerId":"tea-1","type":"web_service",
            "autoDeploy":"yes","serviceDetails":{"env":"docker","healthCheckPath":"/up",
            "url":"https://web-x1.onrender.com","numInstances":1,"plan":"starter"}}"#;
        let s: Service = serde_json::from_str(json).unwrap();
        assert_eq!(
            s.service_details.unwrap().url.as_deref(),
            Some("https://web-x1.onrender.com")
        );
    }
}
