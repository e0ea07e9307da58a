//! Deleting the branch an instance of an ephemeral environment created
//! ([`staging_core::teardown`]): the [`Teardown`] of [`NeonDatabaseBranch`].
//!
//! Only a branch is ever deleted (its compute endpoints go with it; Neon deletes them). The
//! project's default, root or protected branch, and the branch the spec forks from (its
//! `parent`), are refused wherever they turn up: by [`Teardown::find`] (an error, never an
//! answer), and by [`Teardown::delete`] first from the target alone and then from what
//! Neon says of the branch right before the `DELETE` — whatever the target says.

use async_trait::async_trait;
use serde_json::Value;
use staging_core::teardown::{Created, DeletionTarget, Found, Teardown};
use staging_core::{Error, Result};

use crate::http::PROVIDER;
use crate::{BRANCH_KIND, NeonDatabaseBranch, str_of};

impl NeonDatabaseBranch {
    /// The branch `id` of the project as Neon describes it now; `None` when it is gone.
    async fn branch_by_id(&self, id: &str) -> Result<Option<Value>> {
        match self
            .client
            .get(&format!("{}/branches/{id}", self.project()), &[])
            .await
        {
            Ok(v) => Ok(v.get("branch").cloned()),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Refuses (before any delete) a branch that is the project's default, root or protected
    /// branch, or the spec's parent: what production's data lives in.
    fn refuse_kept(&self, what: &str, id: &str, name: &str, branch: Option<&Value>) -> Result<()> {
        let flag = |key: &str| {
            branch
                .and_then(|b| b.get(key))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        let reason = if name == self.spec.parent {
            Some("the parent the spec forks its branch from")
        } else if flag("default") || flag("primary") {
            Some("the project's default branch")
        } else if flag("protected") {
            Some("a protected branch")
        } else if branch.is_some_and(|b| str_of(b, "parent_id").is_empty()) {
            Some("the project's root branch")
        } else {
            None
        };
        match reason {
            None => Ok(()),
            Some(reason) => Err(Error::PermissionDenied {
                provider: PROVIDER.to_owned(),
                message: format!(
                    "{what}: Neon branch `{name}` ({id}) of project {} is {reason}; it is never deleted, nothing was",
                    self.spec.project_id
                ),
            }),
        }
    }

    fn check_kind(created: &Created) -> Result<()> {
        if created.kind == BRANCH_KIND {
            return Ok(());
        }
        Err(Error::config(format!(
            "{}: `{}` is not what a Neon teardown deletes (a `{BRANCH_KIND}`, whose compute endpoints go with it), so it is neither found nor deleted",
            created.describe(),
            created.kind
        )))
    }
}

#[async_trait]
impl Teardown for NeonDatabaseBranch {
    /// By the recorded id (`getProjectBranch`), else by name among the project's branches
    /// (two of the name: an error naming both). The default, root, protected or parent
    /// branch is an error, never an answer.
    async fn find(&self, created: &Created) -> Result<Option<Found>> {
        Self::check_kind(created)?;
        let what = created.describe();
        let branch = match &created.id {
            Some(id) => self.branch_by_id(id).await?,
            None => {
                let named: Vec<Value> = self
                    .branches()
                    .await?
                    .into_iter()
                    .filter(|b| str_of(b, "name") == created.name)
                    .collect();
                let place = format!("branches of Neon project {}", self.spec.project_id);
                staging_core::teardown::only_one(created, named, &place, |b| str_of(b, "id"))?
            }
        };
        let Some(b) = branch else {
            return Ok(None);
        };
        let (id, name) = (str_of(&b, "id").to_owned(), str_of(&b, "name").to_owned());
        self.refuse_kept(&what, &id, &name, Some(&b))?;
        Ok(Some(Found {
            created_at: b
                .get("created_at")
                .and_then(Value::as_str)
                .and_then(staging_rest::epoch_seconds),
            id,
            name,
            marked_ours: None,
        }))
    }

    /// `deleteProjectBranch`, then waits for its operations (bounded). Refused before any
    /// request when the target names the parent; refused before the `DELETE` when Neon
    /// says the branch is the default, root, protected or parent branch, or is no longer
    /// named as found. Gone already (404, or Neon's 204) is success.
    async fn delete(&self, target: &DeletionTarget) -> Result<()> {
        let created = target.created();
        Self::check_kind(created)?;
        let what = created.describe();
        let id = target.id();
        for name in [&created.name, &target.found().name] {
            self.refuse_kept(&what, id, name, None)?;
        }
        // What Neon says of it right before the delete, not what the target says.
        let Some(b) = self.branch_by_id(id).await? else {
            return Ok(());
        };
        let name = str_of(&b, "name");
        self.refuse_kept(&what, id, name, Some(&b))?;
        if name != target.found().name {
            return Err(Error::config(format!(
                "{what}: Neon branch {id} is now named `{name}`, not `{}` as found: nothing deleted",
                target.found().name
            )));
        }
        let answer = match self
            .client
            .delete(&format!("{}/branches/{id}", self.project()))
            .await
        {
            Ok(a) => a,
            Err(Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        if answer.body.is_empty() {
            return Ok(());
        }
        let body: Value = serde_json::from_slice(&answer.body).map_err(|e| {
            Error::failed(format!(
                "Neon answered the deletion of branch {id} with a body that is not JSON: {e}"
            ))
        })?;
        self.wait_for(&body).await
    }
}
