//! `staging import vercel.json`: a spec skeleton for the project a `vercel.json` describes.
//! The file's text is taken literally (`${` written `$${`); nothing in it is a credential.

use std::fmt::Write as _;

use serde::Deserialize;
use staging_core::{Error, Result};

/// The parts of `vercel.json` the skeleton uses; everything else is left to Vercel.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VercelJson {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    framework: Option<String>,
    #[serde(default)]
    build: Option<Build>,
    #[serde(default)]
    env: std::collections::BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    git: Option<Git>,
    #[serde(default)]
    crons: Vec<Cron>,
    #[serde(default)]
    functions: std::collections::BTreeMap<String, serde_json::Value>,
}

/// A scheduled function: the project's background work, deployed with it.
#[derive(Debug, Default, Deserialize)]
struct Cron {
    #[serde(default)]
    path: String,
    #[serde(default)]
    schedule: String,
}

#[derive(Debug, Default, Deserialize)]
struct Build {
    #[serde(default)]
    env: std::collections::BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Git {
    #[serde(default)]
    deployment_enabled: Option<serde_json::Value>,
}

fn quote(s: &str) -> String {
    serde_json::to_string(&s.replace("${", "$${")).unwrap_or_default()
}

/// A spec skeleton for `vercel.json` (its text), in project `project` (the file's directory,
/// unless the file names the project).
pub fn import_vercel_json(text: &str, project: &str) -> Result<String> {
    let config: VercelJson = serde_json::from_str(text)
        .map_err(|e| Error::config(format!("vercel.json is not valid: {e}")))?;
    let project = config.name.as_deref().unwrap_or(project);
    let mut keys: Vec<&String> = config
        .env
        .keys()
        .chain(config.build.iter().flat_map(|b| b.env.keys()))
        .collect();
    keys.sort();
    keys.dedup();
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "# Imported from vercel.json: a skeleton to review.\n#\n#   VERCEL_TOKEN=... staging plan --env staging\n"
    );
    if let Some(f) = &config.framework {
        let _ = writeln!(w, "# framework: {}", f.replace('\n', " "));
    }
    if config
        .git
        .as_ref()
        .and_then(|g| g.deployment_enabled.as_ref())
        .is_some()
    {
        let _ = writeln!(
            w,
            "# vercel.json sets git.deploymentEnabled: `staging` deploys by commit through the API either way."
        );
    }
    let _ = writeln!(w, "[project]\nname = {}\n", quote(project));
    let _ = writeln!(
        w,
        "[environments.staging]\nprovider = \"vercel\"\npromotes_to = \"production\"\n# A custom environment named `staging`, built from the `staging` branch (production's is\n# `main`); or target = \"preview\" with that git_branch.\nsettings = {{ target = \"staging\", git_branch = \"staging\" }}\n"
    );
    let _ = writeln!(
        w,
        "[environments.production]\nprovider = \"vercel\"\nprotected = true\nsettings = {{ target = \"production\", git_branch = \"main\" }}\n"
    );
    let _ = writeln!(
        w,
        "[services.web]\n# Set repo to the GitHub repository Vercel builds from.\nsettings = {{ project = {}, repo = \"ORG/REPO\" }}\n",
        quote(project)
    );
    // Background work deploys with the project (the same deployment, the same commit):
    // named here so that nothing in vercel.json is left out silently.
    for cron in &config.crons {
        let _ = writeln!(
            w,
            "# vercel.json runs {} on the schedule {} (a cron job of `web`, deployed with it)",
            cron.path.replace('\n', " "),
            cron.schedule.replace('\n', " ")
        );
    }
    for function in config.functions.keys() {
        let _ = writeln!(
            w,
            "# vercel.json configures the function {} (part of `web`, deployed with it)",
            function.replace('\n', " ")
        );
    }
    if !config.crons.is_empty() || !config.functions.is_empty() {
        w.push('\n');
    }
    for key in keys {
        let _ = writeln!(
            w,
            "# {} came from vercel.json's env: give it a source per environment.\n# [vars.{}]\n",
            key.replace('\n', " "),
            key.replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_")
        );
    }
    let _ = writeln!(
        w,
        "[[probes]]\nname = \"home\"\nhttp = {{ url = \"${{services.web.url}}/\", expect = {{ status = 200 }} }}"
    );
    Ok(out)
}
