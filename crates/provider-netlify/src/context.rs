//! Deploy contexts: how an environment of the spec maps onto Netlify's `production`,
//! `deploy-preview`, `branch-deploy` and per-branch contexts, and how a context reads and
//! writes its own value of an environment variable without touching the others'.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::models::{EnvValue, EnvVar};

/// The contexts an `all` value stands for, split out when one context gets its own value.
/// The same list the Netlify CLI uses for `env:set --context`.
const CONTEXTS_OF_ALL: [&str; 4] = ["dev", "branch-deploy", "deploy-preview", "production"];

/// A Netlify deploy context, as an environment of the spec selects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployContext {
    /// The production branch; its deploys are published at the site's URL.
    Production,
    /// Deploy previews of pull requests: readable, not deployable from here.
    DeployPreview,
    /// The generic branch-deploy context, building `branch`.
    BranchDeploy {
        /// The branch this environment builds.
        branch: String,
    },
    /// One named branch (`branch:develop`), with its own env var values.
    Branch(String),
}

impl DeployContext {
    /// Parse a `context` setting; `branch` is the environment's `branch` setting, which the
    /// generic `branch-deploy` context needs.
    pub fn parse(context: &str, branch: Option<&str>) -> Result<Self, String> {
        let expected = "expected `production`, `deploy-preview`, `branch-deploy` (with `branch`) or `branch:NAME`";
        match context {
            "production" => Ok(DeployContext::Production),
            "deploy-preview" => Ok(DeployContext::DeployPreview),
            "branch-deploy" => match branch {
                Some(b) if !b.trim().is_empty() => Ok(DeployContext::BranchDeploy {
                    branch: b.to_owned(),
                }),
                _ => Err(
                    "context `branch-deploy` needs a `branch` setting naming the branch to build"
                        .into(),
                ),
            },
            other => match other.strip_prefix("branch:") {
                Some(b) if !b.trim().is_empty() && !b.contains(char::is_whitespace) => {
                    Ok(DeployContext::Branch(b.to_owned()))
                }
                Some(_) => Err(format!("`{other}` names no branch; {expected}")),
                None => Err(format!("unknown deploy context `{other}`; {expected}")),
            },
        }
    }

    /// The branch a deploy of this context builds; `None` builds the production branch.
    pub fn build_branch(&self) -> Option<&str> {
        match self {
            DeployContext::Production | DeployContext::DeployPreview => None,
            DeployContext::BranchDeploy { branch } | DeployContext::Branch(branch) => Some(branch),
        }
    }

    /// The `listSiteDeploys` filter that selects this context's deploys.
    pub(crate) fn deploy_filter(&self) -> Vec<(&'static str, String)> {
        match self {
            DeployContext::Production => vec![("production", "true".into())],
            DeployContext::DeployPreview => vec![("deploy-previews", "true".into())],
            DeployContext::BranchDeploy { branch } | DeployContext::Branch(branch) => {
                vec![("branch", branch.clone())]
            }
        }
    }

    /// The `context` and `context_parameter` this context writes its values under.
    pub(crate) fn env_target(&self) -> (&'static str, Option<&str>) {
        match self {
            DeployContext::Production => ("production", None),
            DeployContext::DeployPreview => ("deploy-preview", None),
            DeployContext::BranchDeploy { .. } => ("branch-deploy", None),
            DeployContext::Branch(b) => ("branch", Some(b)),
        }
    }

    fn owns(&self, v: &EnvValue) -> bool {
        let (context, parameter) = self.env_target();
        v.context == context && (context != "branch" || v.context_parameter.as_deref() == parameter)
    }

    /// The value a build in this context sees, in Netlify's order of precedence: the
    /// branch's own value, then the context's, then `all`.
    pub(crate) fn resolve<'v>(&self, values: &'v [EnvValue]) -> Option<&'v EnvValue> {
        let find = |context: &str, parameter: Option<&str>| {
            values.iter().find(|v| {
                v.context == context
                    && (parameter.is_none() || v.context_parameter.as_deref() == parameter)
            })
        };
        let own = match self {
            DeployContext::Production => find("production", None),
            DeployContext::DeployPreview => find("deploy-preview", None),
            DeployContext::BranchDeploy { branch } | DeployContext::Branch(branch) => {
                find("branch", Some(branch)).or_else(|| find("branch-deploy", None))
            }
        };
        own.or_else(|| find("all", None))
    }
}

impl fmt::Display for DeployContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeployContext::Production => f.write_str("production"),
            DeployContext::DeployPreview => f.write_str("deploy-preview"),
            DeployContext::BranchDeploy { branch } => write!(f, "branch-deploy ({branch})"),
            DeployContext::Branch(b) => write!(f, "branch:{b}"),
        }
    }
}

/// How to set one context's value of a variable.
#[derive(Debug)]
pub(crate) enum SetPlan {
    /// No such variable: create it with this one value (`createEnvVars`, body is the array).
    Create(Value),
    /// Set this context's value alone (`setEnvVarValue`).
    Patch(Value),
    /// The variable has one value for `all`: split it per context and replace the variable
    /// (`updateEnvVar`), so the other contexts keep the value they had.
    Replace(Value),
}

/// How to delete one context's value of a variable.
#[derive(Debug)]
pub(crate) enum DeletePlan {
    /// The context has no value of its own: nothing to do.
    Nothing,
    /// Delete this value (`deleteEnvVarValue`).
    Value(String),
    /// It was the variable's only value: delete the variable (`deleteEnvVar`).
    Key,
    /// Replace the variable with these values (`updateEnvVar`).
    Replace(Value),
}

fn value_json(context: &str, parameter: Option<&str>, value: &str) -> Value {
    let mut v = json!({ "context": context, "value": value });
    if let Some(p) = parameter {
        v["context_parameter"] = json!(p);
    }
    v
}

/// The values of `var` with its `all` value split per context, minus `ctx`'s own value.
/// `None` when the `all` value cannot be read (a secret variable).
fn split_without(var: &EnvVar, ctx: &DeployContext) -> Option<Vec<Value>> {
    let mut out = vec![];
    let own = ctx.env_target();
    for v in &var.values {
        if ctx.owns(v) {
            continue;
        }
        if v.context == "all" {
            let value = v.value.as_ref()?;
            for c in CONTEXTS_OF_ALL {
                let shadowed = var.values.iter().any(|o| o.context == c);
                if !(shadowed || (own.0 == c && own.1.is_none())) {
                    out.push(value_json(c, None, value.expose_secret()));
                }
            }
        } else {
            out.push(value_json(
                &v.context,
                v.context_parameter.as_deref(),
                v.value.as_ref()?.expose_secret(),
            ));
        }
    }
    Some(out)
}

fn replace_body(var: &EnvVar, values: Vec<Value>) -> Value {
    json!({ "key": var.key, "scopes": var.scopes, "values": values, "is_secret": var.is_secret })
}

/// The scopes a secret value may have on Netlify (not `post-processing`).
pub(crate) const SECRET_SCOPES: [&str; 3] = ["builds", "functions", "runtime"];

/// Make a `createEnvVars` body create secret variables: `is_secret`, in the scopes
/// secret values may have. Only the context's own value is created, never `dev`'s, which
/// cannot hold a secret.
pub(crate) fn mark_secret(body: &mut Value) {
    for var in body.as_array_mut().into_iter().flatten() {
        var["is_secret"] = json!(true);
        var["scopes"] = json!(SECRET_SCOPES);
    }
}

/// Plan setting `ctx`'s value of `key` to `value`, given the variable as it is now.
pub(crate) fn plan_set(
    existing: Option<&EnvVar>,
    key: &str,
    ctx: &DeployContext,
    value: &SecretString,
) -> Result<SetPlan, String> {
    let (context, parameter) = ctx.env_target();
    let own = value_json(context, parameter, value.expose_secret());
    match existing {
        None => Ok(SetPlan::Create(json!([{ "key": key, "values": [own] }]))),
        Some(var) if var.values.iter().any(|v| v.context == "all") => {
            let mut values = split_without(var, ctx).ok_or_else(|| {
                format!("`{key}` is a secret with one value for all contexts; it cannot be split per context without reading it")
            })?;
            values.push(own);
            Ok(SetPlan::Replace(replace_body(var, values)))
        }
        Some(_) => Ok(SetPlan::Patch(own)),
    }
}

/// Plan deleting `ctx`'s own value of a variable, leaving every other context's value.
pub(crate) fn plan_delete(
    existing: Option<&EnvVar>,
    key: &str,
    ctx: &DeployContext,
) -> Result<DeletePlan, String> {
    let Some(var) = existing else {
        return Ok(DeletePlan::Nothing);
    };
    if var.values.iter().any(|v| v.context == "all") {
        let values = split_without(var, ctx).ok_or_else(|| {
            format!("`{key}` is a secret with one value for all contexts; it cannot be split per context without reading it")
        })?;
        return Ok(if values.is_empty() {
            DeletePlan::Key
        } else {
            DeletePlan::Replace(replace_body(var, values))
        });
    }
    let Some(own) = var.values.iter().find(|v| ctx.owns(v)) else {
        return Ok(DeletePlan::Nothing);
    };
    if var.values.len() == 1 {
        return Ok(DeletePlan::Key);
    }
    match &own.id {
        Some(id) => Ok(DeletePlan::Value(id.clone())),
        None => {
            let values = split_without(var, ctx)
                .ok_or_else(|| format!("`{key}` has secret values that cannot be read back"))?;
            Ok(DeletePlan::Replace(replace_body(var, values)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn val(context: &str, parameter: Option<&str>, value: &str) -> EnvValue {
        EnvValue {
            id: Some(format!("id-{context}-{}", parameter.unwrap_or(""))),
            value: Some(value.to_owned().into()),
            context: context.into(),
            context_parameter: parameter.map(Into::into),
        }
    }

    fn var(values: Vec<EnvValue>) -> EnvVar {
        EnvVar {
            key: "API_URL".into(),
            scopes: vec!["builds".into()],
            values,
            is_secret: false,
        }
    }

    fn develop() -> DeployContext {
        DeployContext::Branch("develop".into())
    }

    #[test]
    fn contexts_parse_from_settings() {
        assert_eq!(
            DeployContext::parse("production", None),
            Ok(DeployContext::Production)
        );
        assert_eq!(
            DeployContext::parse("deploy-preview", None),
            Ok(DeployContext::DeployPreview)
        );
        assert_eq!(DeployContext::parse("branch:develop", None), Ok(develop()));
        assert_eq!(
            DeployContext::parse("branch-deploy", Some("qa")),
            Ok(DeployContext::BranchDeploy {
                branch: "qa".into()
            })
        );
        assert!(
            DeployContext::parse("branch-deploy", None)
                .unwrap_err()
                .contains("`branch` setting")
        );
        assert!(DeployContext::parse("branch:", None).is_err());
        assert!(
            DeployContext::parse("staging", None)
                .unwrap_err()
                .contains("unknown deploy context `staging`")
        );
    }

    #[test]
    fn a_branch_reads_its_own_value_then_branch_deploy_then_all() {
        let values = vec![
            val("all", None, "a"),
            val("branch-deploy", None, "bd"),
            val("branch", Some("develop"), "dev-branch"),
        ];
        let got = |ctx: &DeployContext, vs: &[EnvValue]| {
            ctx.resolve(vs)
                .and_then(|v| v.value.as_ref())
                .map(|v| v.expose_secret().to_owned())
        };
        assert_eq!(got(&develop(), &values).as_deref(), Some("dev-branch"));
        assert_eq!(
            got(&DeployContext::Branch("qa".into()), &values).as_deref(),
            Some("bd")
        );
        assert_eq!(
            got(&DeployContext::Production, &values).as_deref(),
            Some("a")
        );
        assert_eq!(got(&develop(), &values[..1]).as_deref(), Some("a"));
        assert_eq!(
            got(
                &DeployContext::Production,
                &[val("branch", Some("develop"), "x")]
            ),
            None
        );
    }

    #[test]
    fn setting_a_new_key_creates_it_with_one_context_value() {
        let plan = plan_set(None, "API_URL", &develop(), &"v".to_owned().into()).unwrap();
        let SetPlan::Create(body) = plan else {
            panic!("{plan:?}")
        };
        assert_eq!(
            body,
            json!([{ "key": "API_URL", "values": [{ "context": "branch", "context_parameter": "develop", "value": "v" }] }])
        );
    }

    #[test]
    fn setting_an_existing_key_patches_only_this_context() {
        let existing = var(vec![
            val("production", None, "p"),
            val("deploy-preview", None, "dp"),
        ]);
        let plan = plan_set(
            Some(&existing),
            "API_URL",
            &develop(),
            &"v".to_owned().into(),
        )
        .unwrap();
        let SetPlan::Patch(body) = plan else {
            panic!("{plan:?}")
        };
        assert_eq!(
            body,
            json!({ "context": "branch", "context_parameter": "develop", "value": "v" })
        );
    }

    #[test]
    fn setting_over_an_all_value_splits_it_so_other_contexts_keep_theirs() {
        let existing = var(vec![val("all", None, "shared")]);
        let plan = plan_set(
            Some(&existing),
            "API_URL",
            &DeployContext::Production,
            &"prod".to_owned().into(),
        )
        .unwrap();
        let SetPlan::Replace(body) = plan else {
            panic!("{plan:?}")
        };
        assert_eq!(
            body["values"],
            json!([
                { "context": "dev", "value": "shared" },
                { "context": "branch-deploy", "value": "shared" },
                { "context": "deploy-preview", "value": "shared" },
                { "context": "production", "value": "prod" },
            ])
        );
        assert_eq!(body["scopes"], json!(["builds"]));

        let secret = EnvVar {
            is_secret: true,
            values: vec![EnvValue {
                value: None,
                ..val("all", None, "")
            }],
            ..var(vec![])
        };
        assert!(plan_set(Some(&secret), "API_URL", &develop(), &"v".to_owned().into()).is_err());
    }

    #[test]
    fn deleting_removes_only_this_contexts_value() {
        let existing = var(vec![
            val("production", None, "p"),
            val("branch", Some("develop"), "d"),
        ]);
        assert!(
            matches!(plan_delete(Some(&existing), "K", &develop()).unwrap(), DeletePlan::Value(id) if id == "id-branch-develop")
        );
        let only = var(vec![val("branch", Some("develop"), "d")]);
        assert!(matches!(
            plan_delete(Some(&only), "K", &develop()).unwrap(),
            DeletePlan::Key
        ));
        let other = var(vec![val("production", None, "p")]);
        assert!(matches!(
            plan_delete(Some(&other), "K", &develop()).unwrap(),
            DeletePlan::Nothing
        ));
        assert!(matches!(
            plan_delete(None, "K", &develop()).unwrap(),
            DeletePlan::Nothing
        ));
        let all = var(vec![val("all", None, "s")]);
        let DeletePlan::Replace(body) =
            plan_delete(Some(&all), "K", &DeployContext::Production).unwrap()
        else {
            panic!()
        };
        assert_eq!(body["values"].as_array().unwrap().len(), 3, "{body}");
    }
}
