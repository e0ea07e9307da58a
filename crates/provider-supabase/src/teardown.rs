//! Deleting the branch an instance of an ephemeral environment created
//! ([`staging_core::teardown`]): the [`Teardown`] of [`SupabaseDatabaseBranch`].
//!
//! A Supabase branch is a project of its own (`project_ref`) under the spec's project; its
//! ledger id is the branch's `id`. The project's default branch (the project itself:
//! production's database) and a persistent branch (a long-lived one someone keeps, never
//! one `staging` creates) are refused wherever they turn up: by [`Teardown::find`] (an
//! error, never an answer), and by [`Teardown::delete`] from what Supabase lists right
//! before the `DELETE`, whatever the target says.

use async_trait::async_trait;
use serde_json::Value;
use staging_core::teardown::{Created, DeletionTarget, Found, Teardown};
use staging_core::{Error, Result};

use crate::http::PROVIDER;
use crate::{BRANCH_KIND, SupabaseDatabaseBranch, str_of};

impl SupabaseDatabaseBranch {
    /// Every branch of the spec's project, as Supabase lists them (`v1-list-all-branches`).
    async fn all_branches(&self) -> Result<Vec<Value>> {
        let v = self
            .client
            .get(
                &format!("/v1/projects/{}/branches", self.spec.project_ref),
                &[],
            )
            .await?;
        v.as_array().cloned().ok_or_else(|| {
            Error::failed(format!(
                "Supabase listed the branches of project {} as something other than a list",
                self.spec.project_ref
            ))
        })
    }

    /// Refuses (before any delete) the project's default branch and a persistent branch.
    fn refuse_kept(&self, what: &str, b: &Value) -> Result<()> {
        let flag = |key: &str| b.get(key).and_then(Value::as_bool).unwrap_or(false);
        let reason = if flag("is_default") || str_of(b, "project_ref") == self.spec.project_ref {
            Some("the project's default branch (production's database)")
        } else if flag("persistent") {
            Some("a persistent branch (kept on purpose; `staging` never creates one)")
        } else if str_of(b, "project_ref").is_empty() {
            Some("a branch whose own project Supabase does not name")
        } else {
            None
        };
        match reason {
            None => Ok(()),
            Some(reason) => Err(Error::PermissionDenied {
                provider: PROVIDER.to_owned(),
                message: format!(
                    "{what}: Supabase branch `{}` ({}) of project {} is {reason}; it is never deleted, nothing was",
                    str_of(b, "name"),
                    str_of(b, "id"),
                    self.spec.project_ref
                ),
            }),
        }
    }

    fn check_kind(created: &Created) -> Result<()> {
        if created.kind == BRANCH_KIND {
            return Ok(());
        }
        Err(Error::config(format!(
            "{}: `{}` is not what a Supabase teardown deletes (a `{BRANCH_KIND}`), so it is neither found nor deleted",
            created.describe(),
            created.kind
        )))
    }
}

#[async_trait]
impl Teardown for SupabaseDatabaseBranch {
    /// Among the project's branches: by the recorded id, else by name (two of the name: an
    /// error naming both). The default or a persistent branch is an error, never an answer.
    async fn find(&self, created: &Created) -> Result<Option<Found>> {
        Self::check_kind(created)?;
        let what = created.describe();
        let matching: Vec<Value> = self
            .all_branches()
            .await?
            .into_iter()
            .filter(|b| match &created.id {
                Some(id) => str_of(b, "id") == id,
                None => str_of(b, "name") == created.name,
            })
            .collect();
        let place = format!("branches of Supabase project {}", self.spec.project_ref);
        let Some(b) =
            staging_core::teardown::only_one(created, matching, &place, |b| str_of(b, "id"))?
        else {
            return Ok(None);
        };
        self.refuse_kept(&what, &b)?;
        Ok(Some(Found {
            id: str_of(&b, "id").to_owned(),
            name: str_of(&b, "name").to_owned(),
            created_at: b
                .get("created_at")
                .and_then(Value::as_str)
                .and_then(staging_rest::epoch_seconds),
            marked_ours: None,
        }))
    }

    /// `v1-delete-a-branch` by the branch's own project ref, read from Supabase's list right
    /// before (by the target's id), then waits (bounded) until it is no longer listed; refused before the `DELETE` when that says the branch
    /// is the default or a persistent one, or is no longer named as found. Gone already (not
    /// listed, or a 404 on the delete) is success.
    async fn delete(&self, target: &DeletionTarget) -> Result<()> {
        let created = target.created();
        Self::check_kind(created)?;
        let what = created.describe();
        let id = target.id();
        if id == self.spec.project_ref {
            return Err(Error::PermissionDenied {
                provider: PROVIDER.to_owned(),
                message: format!(
                    "{what}: `{id}` is project {} itself (production's database); it is never deleted, nothing was",
                    self.spec.project_ref
                ),
            });
        }
        let Some(b) = self
            .all_branches()
            .await?
            .into_iter()
            .find(|b| str_of(b, "id") == id)
        else {
            return Ok(());
        };
        self.refuse_kept(&what, &b)?;
        if str_of(&b, "name") != target.found().name {
            return Err(Error::config(format!(
                "{what}: Supabase branch {id} is now named `{}`, not `{}` as found: nothing deleted",
                str_of(&b, "name"),
                target.found().name
            )));
        }
        match self
            .client
            .delete(&format!("/v1/branches/{}", str_of(&b, "project_ref")))
            .await
        {
            Ok(_) | Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        // Supabase takes the branch's project down after answering: done once it is no
        // longer listed, within the builder's bound.
        staging_core::poll_until(
            &self.cadence(),
            self.timeout,
            || {
                format!(
                    "Supabase branch `{}` ({id}) to be gone",
                    target.found().name
                )
            },
            || self.all_branches(),
            |branches: Vec<Value>, _| {
                Ok(if branches.iter().any(|b| str_of(b, "id") == id) {
                    staging_core::retry::Next::Again("still listed".to_owned())
                } else {
                    staging_core::retry::Next::Done(())
                })
            },
        )
        .await
    }
}
