//! The parts of Netlify's JSON the provider reads. Every field is optional: the contract
//! marks none of them required, and Prism's generated examples exercise exactly that.

use secrecy::SecretString;
use serde::Deserialize;

/// A site (`getSite`, `listSites`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Site {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) url: Option<String>,
    pub(crate) ssl_url: Option<String>,
    pub(crate) account_id: Option<String>,
    pub(crate) branch_deploy_custom_domain: Option<String>,
    pub(crate) published_deploy: Option<DeployJson>,
    /// The site's primary custom domain.
    pub(crate) custom_domain: Option<String>,
    /// Its other custom domains.
    pub(crate) domain_aliases: Vec<String>,
}

/// The site's TLS certificate (`showSiteTLSCertificate`): which domains it covers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SiteCertificate {
    pub(crate) state: Option<String>,
    pub(crate) domains: Vec<String>,
}

/// A deploy (`getSiteDeploy`, `listSiteDeploys`, `restoreSiteDeploy`, `lockDeploy`,
/// `cancelSiteDeploy`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DeployJson {
    pub(crate) id: String,
    pub(crate) state: Option<String>,
    pub(crate) commit_ref: Option<String>,
    pub(crate) branch: Option<String>,
    pub(crate) context: Option<String>,
    pub(crate) deploy_ssl_url: Option<String>,
    pub(crate) error_message: Option<String>,
    pub(crate) locked: Option<bool>,
    pub(crate) skipped: Option<bool>,
    pub(crate) title: Option<String>,
    pub(crate) created_at: Option<String>,
    pub(crate) updated_at: Option<String>,
    pub(crate) published_at: Option<String>,
    /// Not in the description; Netlify's answers carry it, and `failed_build` tells a build a
    /// plugin failed (whose message can also say "Canceled build") from one that was canceled.
    pub(crate) plugin_state: Option<String>,
}

/// A build (`createSiteBuild`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Build {
    pub(crate) id: Option<String>,
    pub(crate) deploy_id: Option<String>,
}

/// An environment variable with its values per context (`getEnvVar`, `getSiteEnvVars`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct EnvVar {
    pub(crate) key: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) values: Vec<EnvValue>,
    pub(crate) is_secret: bool,
}

/// One value of a variable, for one context. The value stays a [`SecretString`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct EnvValue {
    pub(crate) id: Option<String>,
    pub(crate) value: Option<SecretString>,
    pub(crate) context: String,
    pub(crate) context_parameter: Option<String>,
}
