//! Env vars of one target, one key at a time, never touching another target's value.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use staging_core::{Result, WriteTarget};

use crate::provider::{VercelProvider, project_of};

/// Sets `key` for the provider's target only.
pub(crate) async fn set(
    p: &VercelProvider,
    service: &WriteTarget,
    key: &str,
    value: &SecretString,
) -> Result<()> {
    let scope = p.scope(project_of(service)).await?;
    let kind = p.secret_type().word();
    let records = p.env_records(project_of(service), false).await?;
    let mine = records.iter().find(|r| r.key == key && scope.covers(r));
    if let Some(r) = mine
        && let Some(id) = &r.id
    {
        if VercelProvider::scope_only(&scope, r) {
            return p
                .edit_env(
                    project_of(service),
                    id,
                    &json!({ "value": value.expose_secret(), "type": kind }),
                )
                .await;
        }
        // Shared with other targets: take ours out of it, so their value stays as it is.
        p.edit_env(
            project_of(service),
            id,
            &VercelProvider::scope_without(&scope, r),
        )
        .await?;
    }
    let mut body = VercelProvider::scope_fields(&scope);
    body["key"] = json!(key);
    body["value"] = json!(value.expose_secret());
    body["type"] = json!(kind);
    p.create_env(project_of(service), &body).await
}

/// Removes `key` from the provider's target only.
pub(crate) async fn delete(p: &VercelProvider, service: &WriteTarget, key: &str) -> Result<()> {
    let scope = p.scope(project_of(service)).await?;
    let records = p.env_records(project_of(service), false).await?;
    for r in records.iter().filter(|r| r.key == key && scope.covers(r)) {
        let Some(id) = &r.id else { continue };
        if VercelProvider::scope_only(&scope, r) {
            p.remove_env(project_of(service), id).await?;
        } else {
            p.edit_env(
                project_of(service),
                id,
                &VercelProvider::scope_without(&scope, r),
            )
            .await?;
        }
    }
    Ok(())
}
