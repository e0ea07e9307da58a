//! New task-definition revisions made from an existing one: same everything, with a new
//! image and/or changed environment for one container.
//!
//! A variable lives in exactly one of the container's two lists: a plain value in
//! `environment`, a secret in `secrets` as a `valueFrom` reference (its value stays in
//! Secrets Manager). Setting a name in one list removes it from the other.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{ContainerDefinition, KeyValuePair, Secret, Tag, TaskDefinition};
use staging_core::{Error, Result};

/// Tag on a revision registered by a deploy: the commit it stands for.
pub(crate) const TAG_COMMIT: &str = "staging:commit";
/// Tag on a revision registered by a deploy: the revision the service ran before it, which
/// is where a rollback goes.
pub(crate) const TAG_PREVIOUS: &str = "staging:previous";

/// What changes in the new revision.
#[derive(Debug, Default)]
pub(crate) struct Change<'a> {
    pub(crate) image: Option<&'a str>,
    /// A plain value, into `environment` (and out of `secrets`).
    pub(crate) set_env: Option<(&'a str, &'a str)>,
    /// A secret: the name and the `valueFrom` reference (a Secrets Manager ARN), into
    /// `secrets` (and out of `environment`).
    pub(crate) set_secret: Option<(&'a str, &'a str)>,
    /// Out of both lists.
    pub(crate) delete_env: Option<&'a str>,
    /// Secrets found in plain `environment` and already written to Secrets Manager: name
    /// and `valueFrom`, moved into `secrets` (and out of `environment`).
    pub(crate) moved_secrets: Vec<(String, String)>,
}

/// The name of the container deploys change: the configured one, else the only one, else
/// the first essential one.
pub(crate) fn container_name(td: &TaskDefinition, configured: Option<&str>) -> Result<String> {
    let containers = td.container_definitions();
    let family = td.family().unwrap_or("?");
    if let Some(name) = configured {
        return containers
            .iter()
            .find(|c| c.name.as_deref() == Some(name))
            .and_then(|c| c.name.clone())
            .ok_or_else(|| {
                Error::not_found(format!(
                    "container `{name}` in task definition {family} (it has: {})",
                    containers
                        .iter()
                        .filter_map(|c| c.name.as_deref())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            });
    }
    let pick = if containers.len() == 1 {
        containers.first()
    } else {
        containers.iter().find(|c| c.essential.unwrap_or(true))
    };
    pick.and_then(|c| c.name.clone())
        .ok_or_else(|| Error::not_found(format!("a container in task definition {family}")))
}

/// The container named `name`.
pub(crate) fn container<'t>(td: &'t TaskDefinition, name: &str) -> Option<&'t ContainerDefinition> {
    td.container_definitions()
        .iter()
        .find(|c| c.name.as_deref() == Some(name))
}

/// The environment of a container, as a map.
pub(crate) fn environment(c: &ContainerDefinition) -> BTreeMap<String, String> {
    c.environment
        .iter()
        .flatten()
        .filter_map(|kv| Some((kv.name.clone()?, kv.value.clone().unwrap_or_default())))
        .collect()
}

/// The `secrets` of a container: name to `valueFrom`.
pub(crate) fn secrets(c: &ContainerDefinition) -> BTreeMap<String, String> {
    c.secrets
        .iter()
        .flatten()
        .map(|s| (s.name.clone(), s.value_from.clone()))
        .collect()
}

/// The value of tag `key`.
pub(crate) fn tag<'t>(tags: &'t [Tag], key: &str) -> Option<&'t str> {
    tags.iter()
        .find(|t| t.key.as_deref() == Some(key))
        .and_then(|t| t.value.as_deref())
}

/// A `RegisterTaskDefinition` call copying `base` with `change` applied to `container`.
pub(crate) fn register_from(
    client: &aws_sdk_ecs::Client,
    base: &TaskDefinition,
    container: &str,
    change: &Change<'_>,
    tags: Vec<Tag>,
) -> Result<
    aws_sdk_ecs::operation::register_task_definition::builders::RegisterTaskDefinitionFluentBuilder,
> {
    let mut containers: Vec<ContainerDefinition> = base.container_definitions().to_vec();
    for c in containers
        .iter_mut()
        .filter(|c| c.name.as_deref() == Some(container))
    {
        if let Some(image) = change.image {
            c.image = Some(image.to_owned());
        }
        if change.set_env.is_some()
            || change.set_secret.is_some()
            || change.delete_env.is_some()
            || !change.moved_secrets.is_empty()
        {
            let mut env = environment(c);
            let mut secrets = secrets(c);
            if let Some((k, v)) = change.set_env {
                secrets.remove(k);
                env.insert(k.to_owned(), v.to_owned());
            }
            for (k, from) in &change.moved_secrets {
                env.remove(k);
                secrets.insert(k.clone(), from.clone());
            }
            if let Some((k, from)) = change.set_secret {
                env.remove(k);
                secrets.insert(k.to_owned(), from.to_owned());
            }
            if let Some(k) = change.delete_env {
                env.remove(k);
                secrets.remove(k);
            }
            c.environment = Some(
                env.into_iter()
                    .map(|(k, v)| KeyValuePair::builder().name(k).value(v).build())
                    .collect(),
            );
            c.secrets = (!secrets.is_empty())
                .then(|| {
                    secrets
                        .into_iter()
                        .map(|(k, from)| Secret::builder().name(k).value_from(from).build())
                        .collect::<std::result::Result<Vec<_>, _>>()
                })
                .transpose()
                .map_err(|e| Error::failed(format!("a container secret: {e}")))?;
        }
    }
    Ok(client
        .register_task_definition()
        .set_family(base.family.clone())
        .set_task_role_arn(base.task_role_arn.clone())
        .set_execution_role_arn(base.execution_role_arn.clone())
        .set_network_mode(base.network_mode.clone())
        .set_container_definitions(Some(containers))
        .set_volumes(non_empty(base.volumes()))
        .set_placement_constraints(non_empty(base.placement_constraints()))
        .set_requires_compatibilities(non_empty(base.requires_compatibilities()))
        .set_cpu(base.cpu.clone())
        .set_memory(base.memory.clone())
        .set_pid_mode(base.pid_mode.clone())
        .set_ipc_mode(base.ipc_mode.clone())
        .set_proxy_configuration(base.proxy_configuration.clone())
        .set_ephemeral_storage(base.ephemeral_storage.clone())
        .set_runtime_platform(base.runtime_platform.clone())
        .set_enable_fault_injection(base.enable_fault_injection)
        .set_tags(non_empty(&tags)))
}

fn non_empty<T: Clone>(v: &[T]) -> Option<Vec<T>> {
    (!v.is_empty()).then(|| v.to_vec())
}

/// A tag.
pub(crate) fn make_tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}
