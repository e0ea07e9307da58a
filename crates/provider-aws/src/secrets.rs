//! [`SecretsManagerStore`]: AWS Secrets Manager as a [`SecretStore`].

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use staging_core::{Error, Result, SecretStore, async_trait};

use crate::context::AwsContext;
use crate::error::map_sdk_error;

/// Secrets Manager: the secret named `PREFIX + key` holds the value of `key` as its
/// `SecretString`. `put` adds a new version (creating the secret the first time).
#[derive(Clone)]
pub struct SecretsManagerStore {
    ctx: AwsContext,
    prefix: String,
    /// Keys whose secret is named explicitly (an ARN or a full name), not by the prefix.
    explicit: std::collections::BTreeMap<String, String>,
}

impl fmt::Debug for SecretsManagerStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsManagerStore")
            .field("prefix", &self.prefix)
            .field("explicit", &self.explicit)
            .finish()
    }
}

impl SecretsManagerStore {
    /// A store whose secret names start with `prefix` (`staging/`; may be empty).
    pub fn new(ctx: AwsContext, prefix: impl Into<String>) -> Self {
        SecretsManagerStore {
            ctx,
            prefix: prefix.into(),
            explicit: Default::default(),
        }
    }

    /// With these keys kept in the secrets named here (an ARN or a full name) instead of
    /// the prefix + key.
    pub fn with_explicit_ids(mut self, ids: impl IntoIterator<Item = (String, String)>) -> Self {
        self.explicit.extend(ids);
        self
    }

    /// The Secrets Manager name of `key`: its explicit id, else the prefix plus the key.
    pub fn secret_id(&self, key: &str) -> String {
        match self.explicit.get(key) {
            Some(id) => id.clone(),
            None => format!("{}{key}", self.prefix),
        }
    }

    /// The value of the secret `id` (a name or an ARN), or `None` when it does not exist.
    pub async fn get_by_id(&self, id: &str) -> Result<Option<SecretString>> {
        let client = self.ctx.secrets_manager().await;
        let out = match client.get_secret_value().secret_id(id).send().await {
            Ok(out) => out,
            Err(e) => {
                return match map_sdk_error("secretsmanager:GetSecretValue", e) {
                    Error::NotFound { .. } => Ok(None),
                    other => Err(other),
                };
            }
        };
        if let Some(s) = out.secret_string() {
            return Ok(Some(SecretString::from(s.to_owned())));
        }
        match out.secret_binary() {
            Some(b) => String::from_utf8(b.as_ref().to_vec())
                .map(|s| Some(SecretString::from(s)))
                .map_err(|_| Error::failed(format!("secret `{id}` is binary, not text"))),
            None => Ok(None),
        }
    }

    /// Store `value` as the secret of `key` (a new version, or a new secret the first time;
    /// nothing when it already holds that value) and return the secret's ARN, what an ECS
    /// container's `secrets[].valueFrom` references.
    pub async fn put_returning_arn(&self, key: &str, value: &SecretString) -> Result<String> {
        let client = self.ctx.secrets_manager().await;
        let id = self.secret_id(key);
        if let Ok(current) = client.get_secret_value().secret_id(&id).send().await
            && current.secret_string() == Some(value.expose_secret())
            && let Some(arn) = current.arn()
        {
            return Ok(arn.to_owned());
        }
        let arn = match client
            .put_secret_value()
            .secret_id(&id)
            .secret_string(value.expose_secret())
            .send()
            .await
        {
            Ok(out) => out.arn().map(str::to_owned),
            Err(e) => match map_sdk_error("secretsmanager:PutSecretValue", e) {
                Error::NotFound { .. } => client
                    .create_secret()
                    .name(&id)
                    .secret_string(value.expose_secret())
                    .send()
                    .await
                    .map_err(|e| map_sdk_error("secretsmanager:CreateSecret", e))?
                    .arn()
                    .map(str::to_owned),
                other => return Err(other),
            },
        };
        arn.ok_or_else(|| Error::failed(format!("Secrets Manager returned no ARN for `{id}`")))
    }
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    fn describe(&self) -> String {
        if self.prefix.is_empty() {
            "aws-secretsmanager".to_owned()
        } else {
            format!("aws-secretsmanager:{}", self.prefix)
        }
    }

    fn writable(&self) -> bool {
        true
    }

    async fn get(&self, key: &str) -> Result<Option<SecretString>> {
        self.get_by_id(&self.secret_id(key)).await
    }

    async fn put(&self, key: &str, value: &SecretString) -> Result<()> {
        self.put_returning_arn(key, value).await.map(drop)
    }

    async fn list(&self, prefix: Option<&str>) -> Result<Vec<String>> {
        let client = self.ctx.secrets_manager().await;
        let full = format!("{}{}", self.prefix, prefix.unwrap_or(""));
        let mut keys = vec![];
        let mut next: Option<String> = None;
        for _ in 0..100 {
            let mut req = client
                .list_secrets()
                .set_next_token(next.take())
                .max_results(100);
            if !full.is_empty() {
                req = req.filters(
                    aws_sdk_secretsmanager::types::Filter::builder()
                        .key(aws_sdk_secretsmanager::types::FilterNameStringType::Name)
                        .values(&full)
                        .build(),
                );
            }
            let out = req
                .send()
                .await
                .map_err(|e| map_sdk_error("secretsmanager:ListSecrets", e))?;
            // The name filter matches words anywhere in the name; keep true prefixes only.
            keys.extend(
                out.secret_list()
                    .iter()
                    .filter_map(|s| s.name())
                    .filter(|n| n.starts_with(&full))
                    .filter_map(|n| n.strip_prefix(self.prefix.as_str()).map(str::to_owned)),
            );
            match out.next_token() {
                Some(t) => next = Some(t.to_owned()),
                None => break,
            }
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }
}
