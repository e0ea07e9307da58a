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
    /// The team's slug (`createSiteInTeam` creates a site next to this one).
    pub(crate) account_slug: Option<String>,
    /// The repository and build settings, kept raw: only provisioning reads them
    /// ([`BuildSettings`]), and an odd shape there must not break every other read of the
    /// site.
    pub(crate) build_settings: Option<serde_json::Value>,
    /// When Netlify created it (RFC 3339): what a teardown compares with its ledger.
    pub(crate) created_at: Option<String>,
}

/// A site's `build_settings`, as provisioning reads them. Its `env` (the legacy build
/// environment, values included) is deliberately not a field: it is never read, so never
/// copied.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct BuildSettings {
    pub(crate) provider: Option<String>,
    pub(crate) repo_path: Option<String>,
    pub(crate) repo_url: Option<String>,
    /// The production branch.
    pub(crate) repo_branch: Option<String>,
    pub(crate) cmd: Option<String>,
    pub(crate) dir: Option<String>,
    /// Not in the description; Netlify's answers and its own Terraform provider carry it.
    pub(crate) base: Option<String>,
    pub(crate) functions_dir: Option<String>,
    /// The branches Netlify deploys: the production branch and each branch deploy. Empty
    /// or absent: every branch is deployed.
    pub(crate) allowed_branches: Option<Vec<String>>,
    pub(crate) installation_id: Option<i64>,
    pub(crate) deploy_key_id: Option<String>,
}

impl BuildSettings {
    /// Whether a repository is linked (Netlify builds branches only from one).
    pub(crate) fn has_repo(&self) -> bool {
        [&self.repo_path, &self.repo_url]
            .iter()
            .any(|v| v.as_deref().is_some_and(|v| !v.is_empty()))
    }

    /// Whether Netlify builds `branch`: every branch when the list is empty.
    pub(crate) fn deploys_branch(&self, branch: &str) -> bool {
        match &self.allowed_branches {
            None => true,
            Some(list) => list.is_empty() || list.iter().any(|b| b == branch),
        }
    }
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
