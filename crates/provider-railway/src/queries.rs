//! Every GraphQL document the crate sends, checked against Railway's published schema
//! (`schema/railway-schema.json`) at compile time by `graphql_client`'s derive: a field,
//! variable or type the schema does not have is a build error. The test stand-in checks
//! the same documents again, in full (arguments, input objects), as they are sent.
//!
//! One operation per file under `src/gql/`, one type here per operation.

#![allow(missing_docs, unreachable_pub, clippy::all)]

use std::collections::BTreeMap;
use std::fmt;

use graphql_client::GraphQLQuery;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Railway's `DateTime` scalar: an RFC 3339 string.
pub type DateTime = String;

/// Railway's `DeploymentMeta` scalar: an opaque object; `commitHash` and `image` are read
/// from it.
pub type DeploymentMeta = serde_json::Value;

/// Railway's `EnvironmentVariables` scalar: a JSON object of names to values. The values are
/// secrets from the moment they are read until they are sent; `Debug` shows names only.
#[derive(Default, Clone, Deserialize)]
#[serde(transparent)]
pub struct EnvironmentVariables(pub BTreeMap<String, SecretString>);

impl Serialize for EnvironmentVariables {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            // The one place a value leaves its wrapper: into the request body.
            map.serialize_entry(k, v.expose_secret())?;
        }
        map.end()
    }
}

impl fmt::Debug for EnvironmentVariables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

// rustfmt re-indents attributes inside macro_rules on every run; this layout is kept.
#[rustfmt::skip]
macro_rules! operation {
    ($name:ident, $file:literal) => {
        #[derive(GraphQLQuery, Debug)]
        #[graphql(
            schema_path = "schema/railway-schema.json",
            query_path = $file,
            response_derives = "Debug"
        )]
        pub struct $name;
    };
}

operation!(Project, "src/gql/project.graphql");
operation!(Projects, "src/gql/projects.graphql");
operation!(ProjectToken, "src/gql/project_token.graphql");
operation!(Deployments, "src/gql/deployments.graphql");
operation!(Deployment, "src/gql/deployment.graphql");
operation!(ServiceInstance, "src/gql/service_instance.graphql");
operation!(DeployCommit, "src/gql/deploy_commit.graphql");
operation!(RollbackDeployment, "src/gql/rollback.graphql");
operation!(CancelDeployment, "src/gql/cancel.graphql");
operation!(Variables, "src/gql/variables.graphql");
operation!(UpsertVariables, "src/gql/upsert_variables.graphql");
operation!(DeleteVariable, "src/gql/delete_variable.graphql");
operation!(DeploymentLogs, "src/gql/deployment_logs.graphql");
operation!(BuildLogs, "src/gql/build_logs.graphql");
operation!(EnvironmentCreate, "src/gql/environment_create.graphql");
operation!(EnvironmentCommit, "src/gql/environment_commit.graphql");

/// The documents by operation name, for the test that sends each one to the stand-in.
pub const DOCUMENTS: &[(&str, &str)] = &[
    ("Project", include_str!("gql/project.graphql")),
    ("Projects", include_str!("gql/projects.graphql")),
    ("ProjectToken", include_str!("gql/project_token.graphql")),
    ("Deployments", include_str!("gql/deployments.graphql")),
    ("Deployment", include_str!("gql/deployment.graphql")),
    (
        "ServiceInstance",
        include_str!("gql/service_instance.graphql"),
    ),
    ("DeployCommit", include_str!("gql/deploy_commit.graphql")),
    ("RollbackDeployment", include_str!("gql/rollback.graphql")),
    ("CancelDeployment", include_str!("gql/cancel.graphql")),
    ("Variables", include_str!("gql/variables.graphql")),
    (
        "UpsertVariables",
        include_str!("gql/upsert_variables.graphql"),
    ),
    (
        "DeleteVariable",
        include_str!("gql/delete_variable.graphql"),
    ),
    (
        "DeploymentLogs",
        include_str!("gql/deployment_logs.graphql"),
    ),
    ("BuildLogs", include_str!("gql/build_logs.graphql")),
    (
        "EnvironmentCreate",
        include_str!("gql/environment_create.graphql"),
    ),
    (
        "EnvironmentCommit",
        include_str!("gql/environment_commit.graphql"),
    ),
];
