//! Environment variables per deploy context, through Netlify's account-level env API, and
//! [`NetlifyEnvStore`], the same variables as a [`SecretStore`].

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::Method;
use secrecy::SecretString;
use staging_core::{Error, Result, SecretStore, ServiceHandle, WriteTarget, async_trait};

use crate::context::{DeletePlan, SetPlan, plan_delete, plan_set};
use crate::models::EnvVar;
use crate::provider::NetlifyProvider;

impl NetlifyProvider {
    /// The account whose env API holds the site's variables: the setting, else the site's.
    pub(crate) async fn account_of(&self, service: &ServiceHandle) -> Result<String> {
        let target = self.target(&service.name)?;
        if let Some(a) = target.account_id.clone().filter(|a| !a.is_empty()) {
            return Ok(a);
        }
        self.site(&service.id)
            .await?
            .account_id
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                Error::config(format!(
                    "site {} names no account; set `account_id` in the environment's settings",
                    service.id
                ))
            })
    }

    /// One variable with all its values (`getEnvVar`); `None` when the site has no such key.
    pub(crate) async fn env_var(
        &self,
        service: &ServiceHandle,
        account: &str,
        key: &str,
    ) -> Result<Option<EnvVar>> {
        let req = self
            .client
            .request(
                Method::GET,
                self.client.endpoint(&["accounts", account, "env", key]),
            )
            .query(&[("site_id", service.id.as_str())]);
        match self.client.json::<EnvVar>("getEnvVar", req).await {
            Ok(v) => Ok(Some(v)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The value of one variable as a build in the service's context sees it.
    pub async fn env_var_value(
        &self,
        service: &ServiceHandle,
        key: &str,
    ) -> Result<Option<SecretString>> {
        let context = self.context_of(service)?;
        let account = self.account_of(service).await?;
        let var = self.env_var(service, &account, key).await?;
        Ok(var.and_then(|v| context.resolve(&v.values).and_then(|v| v.value.clone())))
    }

    /// Every variable of the site as the service's context sees it (`getSiteEnvVars`).
    /// Secret variables, whose values Netlify does not return, are left out.
    pub(crate) async fn read_env(
        &self,
        service: &ServiceHandle,
    ) -> Result<BTreeMap<String, SecretString>> {
        let context = self.context_of(service)?;
        let req = self
            .client
            .request(Method::GET, self.client.site_env_endpoint(&service.id));
        let vars: Vec<EnvVar> = self.client.json("getSiteEnvVars", req).await?;
        let mut out = BTreeMap::new();
        for var in vars {
            match context.resolve(&var.values).and_then(|v| v.value.clone()) {
                Some(value) => {
                    out.insert(var.key, value);
                }
                None if var.is_secret => {
                    tracing::debug!(key = %var.key, "secret Netlify variable: value not readable")
                }
                None => {}
            }
        }
        Ok(out)
    }

    /// Set the service's context's value of `key`, leaving other contexts' values as they are.
    pub(crate) async fn write_env(
        &self,
        service: &WriteTarget,
        key: &str,
        value: &SecretString,
    ) -> Result<()> {
        let context = self.context_of(service)?.clone();
        let account = self.account_of(service).await?;
        let existing = self.env_var(service, &account, key).await?;
        let site = [("site_id", service.id.as_str())];
        let mut plan = plan_set(existing.as_ref(), key, &context, value)
            .map_err(|m| Error::Conflict { message: m })?;
        if let SetPlan::Create(body) = &mut plan
            && self.secret_names.contains(key)
        {
            crate::context::mark_secret(body);
        }
        match plan {
            SetPlan::Create(body) => {
                let req = self
                    .client
                    .request(
                        Method::POST,
                        self.client.endpoint(&["accounts", &account, "env"]),
                    )
                    .query(&site)
                    .json(&body);
                self.client.empty("createEnvVars", req).await
            }
            SetPlan::Patch(body) => {
                let req = self
                    .client
                    .request(
                        Method::PATCH,
                        self.client.endpoint(&["accounts", &account, "env", key]),
                    )
                    .query(&site)
                    .json(&body);
                self.client.empty("setEnvVarValue", req).await
            }
            SetPlan::Replace(body) => {
                let req = self
                    .client
                    .request(
                        Method::PUT,
                        self.client.endpoint(&["accounts", &account, "env", key]),
                    )
                    .query(&site)
                    .json(&body);
                self.client.empty("updateEnvVar", req).await
            }
        }
    }

    /// Delete the service's context's own value of `key`; other contexts keep theirs.
    pub(crate) async fn remove_env(&self, service: &WriteTarget, key: &str) -> Result<()> {
        let context = self.context_of(service)?.clone();
        let account = self.account_of(service).await?;
        let existing = self.env_var(service, &account, key).await?;
        let site = [("site_id", service.id.as_str())];
        match plan_delete(existing.as_ref(), key, &context)
            .map_err(|m| Error::Conflict { message: m })?
        {
            DeletePlan::Nothing => Ok(()),
            DeletePlan::Value(id) => {
                let url = self
                    .client
                    .endpoint(&["accounts", &account, "env", key, "value", &id]);
                self.client
                    .empty(
                        "deleteEnvVarValue",
                        self.client.request(Method::DELETE, url).query(&site),
                    )
                    .await
            }
            DeletePlan::Key => {
                let url = self.client.endpoint(&["accounts", &account, "env", key]);
                self.client
                    .empty(
                        "deleteEnvVar",
                        self.client.request(Method::DELETE, url).query(&site),
                    )
                    .await
            }
            DeletePlan::Replace(body) => {
                let url = self.client.endpoint(&["accounts", &account, "env", key]);
                self.client
                    .empty(
                        "updateEnvVar",
                        self.client
                            .request(Method::PUT, url)
                            .query(&site)
                            .json(&body),
                    )
                    .await
            }
        }
    }

    /// The site's variables in the service's context, as a [`SecretStore`].
    pub fn env_store(self: &Arc<Self>, service: WriteTarget) -> NetlifyEnvStore {
        NetlifyEnvStore {
            provider: Arc::clone(self),
            service,
        }
    }
}

/// A site's environment variables in one deploy context, as a [`SecretStore`]: `get` reads
/// the value a build in that context sees, `put` sets that context's value only.
#[derive(Debug, Clone)]
pub struct NetlifyEnvStore {
    provider: Arc<NetlifyProvider>,
    service: WriteTarget,
}

#[async_trait]
impl SecretStore for NetlifyEnvStore {
    fn describe(&self) -> String {
        let context = self
            .provider
            .context_of(&self.service)
            .map(|c| c.to_string())
            .unwrap_or_else(|_| "?".into());
        format!("netlify:{}:{context}", self.service.id)
    }

    fn writable(&self) -> bool {
        true
    }

    async fn get(&self, key: &str) -> Result<Option<SecretString>> {
        self.provider.env_var_value(&self.service, key).await
    }

    async fn put(&self, key: &str, value: &SecretString) -> Result<()> {
        self.provider.write_env(&self.service, key, value).await
    }

    async fn list(&self, prefix: Option<&str>) -> Result<Vec<String>> {
        let vars = self.provider.read_env(&self.service).await?;
        Ok(vars
            .into_keys()
            .filter(|k| prefix.is_none_or(|p| k.starts_with(p)))
            .collect())
    }
}
