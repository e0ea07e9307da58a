//! `staging import netlify.toml`: a site's deploy contexts and their `environment` tables,
//! as a spec skeleton to review.

use std::collections::BTreeMap;

use staging_core::{Error, Result};

/// A TOML string literal.
fn lit(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A value from netlify.toml as a spec string that means exactly its text: the spec would
/// read `${NAME}` as a variable of the shell `staging` runs in, so `${` is written `$${`.
fn literal(s: &str) -> String {
    lit(&s.replace("${", "$${"))
}

/// A TOML key, quoted when it is not a bare key.
fn key(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        s.to_owned()
    } else {
        lit(s)
    }
}

/// An environment name for a branch: `develop` and `staging` become `staging`.
fn env_name(branch: &str) -> String {
    match branch {
        "develop" | "staging" => "staging".to_owned(),
        b => b
            .to_ascii_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect(),
    }
}

fn environment_table(t: Option<&toml::Value>, at: &str) -> Result<BTreeMap<String, String>> {
    let Some(env) = t.and_then(|t| t.get("environment")) else {
        return Ok(BTreeMap::new());
    };
    let table = env
        .as_table()
        .ok_or_else(|| Error::config(format!("netlify.toml: `{at}.environment` is not a table")))?;
    table
        .iter()
        .map(|(k, v)| {
            let value = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => {
                    v.to_string()
                }
                _ => {
                    return Err(Error::config(format!(
                        "netlify.toml: `{at}.environment.{k}` is not a plain value"
                    )));
                }
            };
            Ok((k.clone(), value))
        })
        .collect()
}

/// Turn a `netlify.toml` into a `staging.toml` skeleton.
///
/// Each named branch context (`[context.develop]`) becomes an environment deployed in
/// context `branch:NAME` (`develop` and `staging` are named `staging`, and promote to
/// `production`); `[context.deploy-preview]` becomes a `preview` environment. Every
/// `environment` variable becomes a `[vars]` entry with the value each environment's builds
/// see, in Netlify's order: the branch's, then `branch-deploy`'s, then `[build.environment]`.
/// Without a branch context, `[context.deploy-preview]` is the staging environment. The
/// site's name is `${NETLIFY_SITE_NAME:-<project>}` (the variable, else the project's
/// name) until it is written in, and values are taken as text (a `${` in netlify.toml is
/// written `$${`), so the skeleton validates as generated: it names no undefined variable.
pub fn import_netlify_toml(text: &str) -> Result<String> {
    import_netlify_toml_as(text, "netlify-site")
}

/// [`import_netlify_toml`], naming the project `name` (the site's directory, say).
pub fn import_netlify_toml_as(text: &str, name: &str) -> Result<String> {
    let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        Error::config(format!(
            "netlify.toml is not valid TOML: {}",
            e.message().trim()
        ))
    })?;
    let build = doc.get("build");
    let base = environment_table(build, "build")?;
    let contexts = match doc.get("context") {
        Some(c) => c
            .as_table()
            .cloned()
            .ok_or_else(|| Error::config("netlify.toml: `context` is not a table"))?,
        None => toml::Table::new(),
    };
    let ctx_env = |name: &str| environment_table(contexts.get(name), &format!("context.{name}"));
    let production = ctx_env("production")?;
    let branch_deploy = ctx_env("branch-deploy")?;
    let preview = ctx_env("deploy-preview")?;

    // (environment, context setting, effective variables)
    let mut envs: Vec<(String, String, BTreeMap<String, String>)> = vec![];
    let overlay = |layers: &[&BTreeMap<String, String>]| {
        let mut out = BTreeMap::new();
        for l in layers {
            out.extend(l.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        out
    };
    envs.push((
        "production".into(),
        "production".into(),
        overlay(&[&base, &production]),
    ));
    let mut branches: Vec<&String> = contexts
        .keys()
        .filter(|k| {
            !matches!(
                k.as_str(),
                "production" | "deploy-preview" | "branch-deploy" | "dev"
            )
        })
        .collect();
    branches.sort_by_key(|b| (env_name(b) != "staging", b.to_string()));
    for branch in branches {
        let name = env_name(branch);
        if envs.iter().any(|(n, _, _)| *n == name) {
            return Err(Error::config(format!(
                "netlify.toml: branch contexts `{branch}` and another both map to environment `{name}`"
            )));
        }
        let own = ctx_env(branch)?;
        envs.push((
            name,
            format!("branch:{branch}"),
            overlay(&[&base, &branch_deploy, &own]),
        ));
    }
    if contexts.contains_key("deploy-preview") {
        // Deploy previews are the closest thing to staging when no branch deploys are set.
        let has_branch_staging = envs.iter().any(|(n, _, _)| n == "staging");
        envs.push((
            if has_branch_staging {
                "preview".into()
            } else {
                "staging".into()
            },
            "deploy-preview".into(),
            overlay(&[&base, &preview]),
        ));
    }
    let has_staging = envs.iter().any(|(n, _, _)| n == "staging");
    let site_default: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();

    let mut out = String::new();
    out.push_str("# Imported from netlify.toml by `staging import`: review before use.\n");
    if let Some(cmd) = build
        .and_then(|b| b.get("command"))
        .and_then(|c| c.as_str())
    {
        out.push_str(&format!("# Netlify builds with: {cmd}\n"));
    }
    out.push_str(&format!("\n[project]\nname = {}\n", lit(name)));
    for (name, context, _) in &envs {
        out.push_str(&format!(
            "\n[environments.{}]\nprovider = \"netlify\"\n",
            key(name)
        ));
        if name == "production" {
            out.push_str("protected = true\n");
        }
        if name == "staging" {
            out.push_str("promotes_to = \"production\"\n");
        }
        out.push_str(&format!(
            "[environments.{}.settings]\n# fill in the Netlify site's name (or set NETLIFY_SITE_NAME)\nsite_name = {}\ncontext = {}\n",
            key(name),
            lit(&format!("${{NETLIFY_SITE_NAME:-{name}}}", name = site_default)),
            lit(context)
        ));
    }
    out.push_str("\n[services.site]\nhealth_path = \"/\"\n");

    let keys: std::collections::BTreeSet<&String> =
        envs.iter().flat_map(|(_, _, vars)| vars.keys()).collect();
    for k in keys {
        out.push_str(&format!("\n[vars.{}]\n", key(k)));
        let per_env: Vec<(&String, Option<&String>)> =
            envs.iter().map(|(n, _, vars)| (n, vars.get(k))).collect();
        let first = per_env[0].1;
        if per_env
            .iter()
            .flat_map(|(_, v)| *v)
            .any(|v| v.contains("${"))
        {
            out.push_str(
                "# `$${` is netlify.toml's `${` kept as text; to read a variable where `staging` runs, write `${NAME:-default}`\n",
            );
        }
        if per_env.iter().all(|(_, v)| *v == first) {
            out.push_str(&format!(
                "value = {}\n",
                literal(first.expect("the key comes from some environment"))
            ));
        } else {
            if per_env.iter().any(|(_, v)| v.is_none()) {
                out.push_str("required = false\n");
            }
            let values: Vec<String> = per_env
                .iter()
                .filter_map(|(n, v)| v.map(|v| format!("{} = {}", key(n), literal(v))))
                .collect();
            out.push_str(&format!("values = {{ {} }}\n", values.join(", ")));
        }
    }
    out.push_str("\n[[probes]]\nname = \"spa-root\"\nhttp = { url = \"${services.site.url}/\", expect = { status = 200 } }\n");
    if !has_staging {
        out.push_str("\n# No branch context found: add `[environments.staging]` with `context = \"branch:develop\"`.\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_become_environments_and_values_follow_netlifys_precedence() {
        let out = import_netlify_toml(
            r#"
[build]
command = "npm run build"
publish = "dist"
[build.environment]
NODE_VERSION = "20"
API_URL = "https://api.example.com"
[context.branch-deploy.environment]
API_URL = "https://branch-api.example.com"
[context.develop.environment]
API_URL = "https://staging-api.example.com"
FEATURE_X = true
[context.deploy-preview]
command = "npm run build:preview"
"#,
        )
        .unwrap();
        let spec: toml::Table = out.parse().unwrap();
        let envs = spec["environments"].as_table().unwrap();
        assert_eq!(
            envs.keys().collect::<Vec<_>>(),
            ["preview", "production", "staging"]
        );
        assert_eq!(
            envs["staging"]["settings"]["context"].as_str(),
            Some("branch:develop")
        );
        assert_eq!(envs["staging"]["promotes_to"].as_str(), Some("production"));
        assert_eq!(envs["production"]["protected"].as_bool(), Some(true));
        assert_eq!(spec["vars"]["NODE_VERSION"]["value"].as_str(), Some("20"));
        let api = spec["vars"]["API_URL"]["values"].as_table().unwrap();
        assert_eq!(
            api["staging"].as_str(),
            Some("https://staging-api.example.com")
        );
        assert_eq!(api["production"].as_str(), Some("https://api.example.com"));
        assert_eq!(api["preview"].as_str(), Some("https://api.example.com"));
        assert_eq!(spec["vars"]["FEATURE_X"]["required"].as_bool(), Some(false));
        assert!(out.contains("# Netlify builds with: npm run build"));
    }

    #[test]
    fn invalid_netlify_toml_is_a_config_error() {
        assert!(matches!(
            import_netlify_toml("[build"),
            Err(Error::ConfigInvalid { .. })
        ));
        assert!(matches!(
            import_netlify_toml("context = 3"),
            Err(Error::ConfigInvalid { .. })
        ));
    }
}
