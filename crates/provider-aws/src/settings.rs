//! The spec's settings for AWS: `[environments.NAME.settings]` and
//! `[services.NAME.settings]` (with `overrides.NAME`), read with errors that point into the
//! file.

use schemars::JsonSchema;
use serde::Deserialize;
use staging_core::Result;
use staging_core::spec::LoadedSpec;

/// `[environments.NAME.settings]` of an `aws` environment.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsEnvironmentSettings {
    /// The region (default: the aws-config chain's).
    #[serde(default)]
    pub region: Option<String>,
    /// A named profile of `~/.aws/config` (default: the chain's).
    #[serde(default)]
    pub profile: Option<String>,
    /// The ECS cluster of the environment's services (a service may override it).
    #[serde(default)]
    pub cluster: Option<String>,
    /// Secrets Manager names are this prefix plus the variable name (`shop/staging/`):
    /// what `source = { provider = "NAME" }` reads (no prefix when unset), and where the
    /// ECS provider writes the value of each secret variable it references from a task
    /// definition (`PROJECT/ENVIRONMENT/` when unset, so two environments never write one
    /// secret).
    #[serde(default)]
    pub secrets_prefix: Option<String>,
    /// The Secrets Manager secret (an ARN or a full name) that holds a secret variable's
    /// value on ECS, by variable name, instead of `secrets_prefix` + the name:
    /// `secret_ids = { JWT_SECRET = "arn:aws:secretsmanager:...:secret:shop-jwt-AbCdEf" }`.
    #[serde(default)]
    pub secret_ids: std::collections::BTreeMap<String, String>,
    /// SES readiness checks.
    #[serde(default)]
    pub ses: Option<SesSettings>,
    /// Certificates that must be issued and not close to expiry.
    #[serde(default)]
    pub acm: Vec<AcmSettings>,
    /// DNS records that must point where they should.
    #[serde(default)]
    pub route53: Vec<RecordSettings>,
}

/// `[environments.NAME.settings.ses]`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SesSettings {
    /// Sender identities (domains or addresses) that must be verified.
    #[serde(default)]
    pub identities: Vec<String>,
    /// Fail while the account is in the sandbox (default true: production mail needs it).
    #[serde(default = "yes")]
    pub require_production_access: bool,
    /// Domain identities must also have DKIM `SUCCESS` (default true).
    #[serde(default = "yes")]
    pub require_dkim: bool,
    /// Send one test message from `test_from` to this address.
    #[serde(default)]
    pub test_recipient: Option<String>,
    /// The sender of the test message (default: the first address in `identities`).
    #[serde(default)]
    pub test_from: Option<String>,
}

/// One `[[environments.NAME.settings.acm]]`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcmSettings {
    /// The domain the certificate is for (its DomainName or a SAN).
    pub domain: String,
    /// The certificate's ARN, when the domain has several.
    #[serde(default)]
    pub certificate_arn: Option<String>,
    /// Fail when fewer days than this remain (default 21).
    #[serde(default = "default_min_days")]
    pub min_days_valid: u32,
    /// The region of the certificate, when not the environment's (CloudFront: us-east-1).
    #[serde(default)]
    pub region: Option<String>,
}

fn default_min_days() -> u32 {
    21
}

/// One `[[environments.NAME.settings.route53]]`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordSettings {
    /// The hosted zone's name (`example.com`) or id (`Z123...`).
    pub zone: String,
    /// The record's name (`staging.example.com`).
    pub name: String,
    /// The record type (default `A`).
    #[serde(default = "default_record_type", rename = "type")]
    pub record_type: String,
    /// The alias target's DNS name it must point at (an ALB's DNS name).
    #[serde(default)]
    pub alias_target: Option<String>,
    /// The values it must hold (any order), for a plain record.
    #[serde(default)]
    pub values: Vec<String>,
}

fn default_record_type() -> String {
    "A".to_owned()
}

fn yes() -> bool {
    true
}

/// One service on ECS: `[services.NAME.settings]` with the environment's overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsServiceSettings {
    /// The ECS cluster.
    pub cluster: String,
    /// The ECS service's name.
    pub service: String,
    /// The container whose image deploys change (default: the task definition's only or
    /// first essential container).
    pub container: Option<String>,
    /// How a commit becomes an image: `123.dkr.ecr.us-east-1.amazonaws.com/app:${commit}`.
    /// Without it, only image deploys are possible.
    pub image_template: Option<String>,
    /// The ALB target group of the service, for the target health probe. When unset and
    /// `target_health` is on, the probe reads the service's target groups from ECS.
    pub target_group_arn: Option<String>,
    /// Whether to check ALB target health: `Some(true)` checks `target_group_arn`, or every
    /// target group the ECS service is attached to when no ARN is set; `Some(false)` checks
    /// nothing; `None` (the key unset) checks `target_group_arn` when one is set.
    pub target_health: Option<bool>,
    /// The public URL of the service.
    pub url: Option<String>,
}

/// A service on ECS as the spec writes it: `[services.NAME.settings]` with
/// `[services.NAME.overrides.ENV]` merged onto it.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EcsServiceConfig {
    /// The ECS cluster (default: the environment's `cluster`).
    #[serde(default)]
    pub cluster: Option<String>,
    /// The ECS service's name (default: the spec's service name).
    #[serde(default)]
    pub service: Option<String>,
    /// The container whose image deploys change (default: the task definition's only or
    /// first essential container).
    #[serde(default)]
    pub container: Option<String>,
    /// How a commit becomes an image: `123.dkr.ecr.us-east-1.amazonaws.com/app:${commit}`.
    #[serde(default)]
    pub image: Option<String>,
    /// The ALB target group of the service, for the target health probe.
    #[serde(default)]
    pub target_group_arn: Option<String>,
    /// Whether to check ALB target health (see [`EcsServiceSettings::target_health`]).
    #[serde(default)]
    pub target_health: Option<bool>,
    /// The public URL of the service.
    #[serde(default)]
    pub url: Option<String>,
}

impl AwsEnvironmentSettings {
    /// Read `[environments.NAME.settings]`.
    pub fn from_spec(spec: &LoadedSpec, environment: &str) -> Result<Self> {
        let typed = spec.environment_settings::<AwsEnvironmentSettings>(environment)?;
        let settings = typed.value.clone();
        if let Some(ses) = &settings.ses
            && ses.test_recipient.is_some()
            && ses.test_from.is_none()
            && !ses.identities.iter().any(|i| i.contains('@'))
        {
            return Err(typed.error_at(
                "ses",
                "a test send needs a sender: set `test_from` or list an address in `identities`",
            ));
        }
        for (i, r) in settings.route53.iter().enumerate() {
            if r.alias_target.is_some() != r.values.is_empty() {
                return Err(spec.error_at(
                    &format!("environments.{environment}.settings.route53[{i}]"),
                    format!(
                        "record `{}` needs exactly one of `alias_target` or `values`",
                        r.name
                    ),
                ));
            }
        }
        Ok(settings)
    }
}

impl EcsServiceSettings {
    /// Read the settings of service `name` in `environment`.
    pub fn from_spec(
        spec: &LoadedSpec,
        environment: &str,
        env_settings: &AwsEnvironmentSettings,
        name: &str,
    ) -> Result<Self> {
        let typed = spec.service_settings::<EcsServiceConfig>(name, environment)?;
        let raw = typed.value.clone();
        let cluster = raw.cluster.or_else(|| env_settings.cluster.clone()).ok_or_else(|| {
            spec.error_at(
                &format!("environments.{environment}.settings"),
                format!("service `{name}` on aws needs an ECS cluster: set `cluster` in [environments.{environment}.settings] or in the service's settings"),
            )
        })?;
        if let Some(image) = &raw.image {
            check_image_template(image).map_err(|m| typed.error_at("image", m))?;
        }
        if let Some(arn) = &raw.target_group_arn
            && (!arn.starts_with("arn:") || !arn.contains(":targetgroup/"))
        {
            return Err(typed.error_at(
                "target_group_arn",
                format!("`{arn}` is not a target group ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID)"),
            ));
        }
        if let Some(url) = &raw.url {
            url::Url::parse(url)
                .map_err(|e| typed.error_at("url", format!("`{url}` is not a URL: {e}")))?;
        }
        Ok(EcsServiceSettings {
            cluster,
            service: raw.service.unwrap_or_else(|| name.to_owned()),
            container: raw.container,
            image_template: raw.image,
            target_group_arn: raw.target_group_arn,
            target_health: raw.target_health,
            url: raw.url,
        })
    }

    /// Settings for a service of a cluster, everything else unset (tests, embedding).
    pub fn new(cluster: impl Into<String>, service: impl Into<String>) -> Self {
        EcsServiceSettings {
            cluster: cluster.into(),
            service: service.into(),
            container: None,
            image_template: None,
            target_group_arn: None,
            target_health: None,
            url: None,
        }
    }

    /// Whether the ALB target health of this service is checked (see `target_health`).
    pub fn checks_target_health(&self) -> bool {
        self.target_health
            .unwrap_or(self.target_group_arn.is_some())
    }

    /// With an image template (`repo/app:${commit}`), so commits can be deployed.
    pub fn with_image_template(mut self, template: impl Into<String>) -> Self {
        self.image_template = Some(template.into());
        self
    }
}

const COMMIT_REF: &str = "${commit}";

fn check_image_template(template: &str) -> std::result::Result<(), String> {
    match template.matches(COMMIT_REF).count() {
        1 => Ok(()),
        0 => Err(format!(
            "`image = \"{template}\"` must contain `${{commit}}` once (e.g. `123456789012.dkr.ecr.us-east-1.amazonaws.com/app:${{commit}}`)"
        )),
        _ => Err(format!(
            "`image = \"{template}\"` contains `${{commit}}` more than once; the commit could not be read back from the image"
        )),
    }
}

/// The image for `commit` under `template`.
#[cfg_attr(not(feature = "ecs"), allow(dead_code))]
pub(crate) fn image_for_commit(template: &str, commit: &str) -> String {
    template.replacen(COMMIT_REF, commit, 1)
}

/// The commit an image was built from, when it matches `template`.
#[cfg_attr(not(feature = "ecs"), allow(dead_code))]
pub(crate) fn commit_of_image(template: &str, image: &str) -> Option<String> {
    let (prefix, suffix) = template.split_once(COMMIT_REF)?;
    let commit = image.strip_prefix(prefix)?.strip_suffix(suffix)?;
    (!commit.is_empty() && !commit.contains([':', '/', '@'])).then(|| commit.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_round_trips_through_the_image_template() {
        let t = "123.dkr.ecr.us-east-1.amazonaws.com/app:${commit}";
        let image = image_for_commit(t, "abc123");
        assert_eq!(image, "123.dkr.ecr.us-east-1.amazonaws.com/app:abc123");
        assert_eq!(commit_of_image(t, &image).as_deref(), Some("abc123"));
        assert_eq!(commit_of_image(t, "other/app:abc123"), None);
        assert_eq!(
            commit_of_image("repo/app:sha-${commit}-slim", "repo/app:sha-abc-slim").as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn an_image_template_needs_exactly_one_commit() {
        assert!(check_image_template("repo/app:${commit}").is_ok());
        assert!(check_image_template("repo/app:latest").is_err());
        assert!(check_image_template("repo/${commit}:${commit}").is_err());
    }
}
