//! `staging import railway.json` (or `railway.toml`): Railway's config-as-code file turned
//! into a spec skeleton.
//!
//! A Railway config file describes how one service builds and deploys; the skeleton is a
//! starting point to review. What maps: the service (named after the file's directory,
//! found on Railway by that name), `deploy.healthcheckPath` as `health_path` and a health
//! probe that checks the commit, a `deploy.preDeployCommand` that runs migrations
//! (`alembic`, `prisma migrate deploy`, `manage.py migrate`, `rails db:migrate`...) as the
//! database's migration command with `DATABASE_URL` read from the Railway Postgres service,
//! and the `environments` the file names as `[environments.*]`. A staging environment
//! promotes to a protected production, and is created from it when it is missing.

use std::fmt::Write as _;

use serde::Deserialize;
use staging_core::{Error, Result};

/// The two spellings of a Railway config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RailwayConfigFormat {
    /// `railway.json`.
    Json,
    /// `railway.toml`.
    Toml,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Config {
    deploy: Deploy,
    environments: std::collections::BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Deploy {
    healthcheck_path: Option<String>,
    pre_deploy_command: Option<PreDeploy>,
    start_command: Option<String>,
}

/// Railway takes the pre-deploy command as a string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PreDeploy {
    One(String),
    Many(Vec<String>),
}

/// A migration tool's command and where it keeps its versions.
fn migration_of(command: &str) -> Option<(Vec<String>, Option<&'static str>)> {
    let words: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
    let has = |w: &str| words.iter().any(|x| x == w);
    let runs = |tool: &str| {
        words
            .iter()
            .any(|x| x == tool || x.ends_with(&format!("/{tool}")))
    };
    // Only a tool that is known to migrate a database counts: a script of the app's own
    // (`npm run db:migrate`) says nothing about which database it talks to.
    let table = if has("alembic") {
        Some("alembic_version")
    } else if has("prisma") && has("migrate") {
        Some("_prisma_migrations")
    } else if has("db:migrate") && (runs("rails") || runs("rake")) {
        Some("schema_migrations")
    } else if has("migrate") && words.iter().any(|w| w.ends_with("manage.py")) {
        Some("django_migrations")
    } else {
        return None;
    };
    Some((words, table))
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A spec skeleton for the service `railway.json`/`railway.toml` describes, in project
/// `project` (the file's directory, say).
pub fn import_railway_config(
    text: &str,
    format: RailwayConfigFormat,
    project: &str,
) -> Result<String> {
    let config: Config = match format {
        RailwayConfigFormat::Json => serde_json::from_str(text)
            .map_err(|e| Error::config(format!("railway.json is not valid: {e}")))?,
        RailwayConfigFormat::Toml => {
            let value: toml::Value = toml::from_str(text).map_err(|e: toml::de::Error| {
                Error::config(format!(
                    "railway.toml is not valid TOML: {}",
                    e.message().trim()
                ))
            })?;
            serde_json::to_value(value)
                .and_then(serde_json::from_value)
                .map_err(|e| Error::config(format!("railway.toml is not valid: {e}")))?
        }
    };
    // The spec's name for the service: the directory's, with what a `${services.NAME.url}`
    // reference cannot hold (`api.example.com`) written `-`; Railway's name stays as it is.
    let service: String = project
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let service = service.as_str();
    // `pr` configures Railway's ephemeral PR environments: none is a persistent one.
    let mut envs: Vec<String> = config
        .environments
        .keys()
        .filter(|e| e.as_str() != "pr")
        .cloned()
        .collect();
    for default in ["staging", "production"] {
        if !envs.iter().any(|e| e == default) {
            envs.push(default.to_owned());
        }
    }
    envs.retain(|e| e != "production");
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "# Imported from Railway's config-as-code file: a skeleton to review.\n#\n#   RAILWAY_API_TOKEN=... staging plan --env staging\n"
    );
    if config.environments.contains_key("pr") {
        let _ = writeln!(
            w,
            "# The file's `pr` settings are for Railway's PR environments, which come and go with\n# pull requests: none is declared here.\n"
        );
    }
    let _ = writeln!(w, "[project]\nname = {}\n", quote(project));
    for env in &envs {
        let _ = writeln!(w, "[environments.{}]", quote(env));
        let _ = writeln!(w, "provider = \"railway\"\npromotes_to = \"production\"");
        let _ = writeln!(
            w,
            "# Set project_id (Railway project settings); a missing environment is copied from production.\nsettings = {{ project = {}, environment = {}, create_if_missing = true }}\n",
            quote(project),
            quote(env)
        );
    }
    let _ = writeln!(
        w,
        "[environments.production]\nprovider = \"railway\"\nprotected = true\nsettings = {{ project = {}, environment = \"production\" }}\n",
        quote(project)
    );
    let _ = writeln!(w, "[services.{}]", quote(service));
    if let Some(path) = &config.deploy.healthcheck_path {
        let _ = writeln!(w, "health_path = {}", quote(path));
    }
    let _ = writeln!(w, "settings = {{ service_name = {} }}\n", quote(project));
    if let Some(start) = &config.deploy.start_command {
        let _ = writeln!(w, "# Railway starts it with: {start}\n");
    }
    let commands: Vec<&String> = match &config.deploy.pre_deploy_command {
        Some(PreDeploy::One(c)) => vec![c],
        Some(PreDeploy::Many(list)) => list.iter().collect(),
        None => vec![],
    };
    let migration = commands.iter().find_map(|c| migration_of(c));
    if migration.is_none() {
        for c in &commands {
            let _ = writeln!(
                w,
                "# Railway runs before each deploy: {}\n# (not a migration tool staging knows: declare its database and the source of its URL yourself)\n",
                c.replace('\n', " ")
            );
        }
    }
    if let Some((command, table)) = migration {
        let _ = writeln!(
            w,
            "# Railway Postgres: the URL is read from the Postgres service's variables in each\n# environment (DATABASE_PUBLIC_URL, reachable from CI).\n[vars.DATABASE_URL]\nsecret = true\nsource = {{ provider = \"service:Postgres\" }}\nrules = {{ kind = \"url\", differs_from = \"production\" }}\n"
        );
        let list: Vec<String> = command.iter().map(|c| quote(c)).collect();
        let _ = write!(
            w,
            "[databases.main]\nurl_var = \"DATABASE_URL\"\nmigrations = {{ command = [{}]",
            list.join(", ")
        );
        if let Some(t) = table {
            let _ = write!(w, ", version_table = {}", quote(t));
        }
        let _ = writeln!(w, " }}\n");
    }
    if config.deploy.healthcheck_path.is_some() {
        let path = config.deploy.healthcheck_path.as_deref().unwrap_or("/");
        let _ = writeln!(
            w,
            "[[probes]]\nname = \"health\"\nretry_for = \"3m\"\nhttp = {{ url = \"${{services.{service}.url}}{path}\", expect = {{ status = 200 }} }}"
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_named_like_a_domain_gives_a_service_a_reference_can_name() {
        let json = r#"{"deploy":{"healthcheckPath":"/health"}}"#;
        let spec =
            import_railway_config(json, RailwayConfigFormat::Json, "api.example.com").unwrap();
        assert!(spec.contains("[services.\"api-example-com\"]"), "{spec}");
        assert!(
            spec.contains("service_name = \"api.example.com\""),
            "Railway's own name is kept: {spec}"
        );
        assert!(
            spec.contains("${services.api-example-com.url}/health"),
            "{spec}"
        );
    }

    #[test]
    fn railway_s_pr_environment_is_not_a_persistent_one() {
        let json = r#"{"environments":{"pr":{"deploy":{"startCommand":"x"}},"qa":{}}}"#;
        let spec = import_railway_config(json, RailwayConfigFormat::Json, "api").unwrap();
        assert!(!spec.contains("[environments.\"pr\"]"), "{spec}");
        assert!(!spec.contains("[environments.pr]"), "{spec}");
        assert!(spec.contains("[environments.\"qa\"]"), "{spec}");
    }

    #[test]
    fn an_app_script_named_db_migrate_invents_no_database() {
        for command in ["npm run db:migrate", "pnpm db:migrate", "node migrate.js"] {
            let json = format!(r#"{{"deploy":{{"preDeployCommand":"{command}"}}}}"#);
            let spec = import_railway_config(&json, RailwayConfigFormat::Json, "api").unwrap();
            assert!(!spec.contains("service:Postgres"), "{command}: {spec}");
            assert!(!spec.contains("[databases."), "{command}: {spec}");
            assert!(spec.contains(command), "the command is named: {spec}");
        }
        for command in [
            "bin/rails db:migrate",
            "bundle exec rake db:migrate",
            "python manage.py migrate",
        ] {
            let json = format!(r#"{{"deploy":{{"preDeployCommand":"{command}"}}}}"#);
            let spec = import_railway_config(&json, RailwayConfigFormat::Json, "api").unwrap();
            assert!(spec.contains("[databases.main]"), "{command}: {spec}");
        }
    }

    #[test]
    fn json_and_toml_give_the_same_skeleton() {
        let json = r#"{"$schema":"https://railway.com/railway.schema.json",
            "build":{"builder":"RAILPACK"},
            "deploy":{"startCommand":"uvicorn app.main:app","healthcheckPath":"/health",
                      "preDeployCommand":["alembic upgrade head"]}}"#;
        let toml = "[build]\nbuilder = \"RAILPACK\"\n[deploy]\nstartCommand = \"uvicorn app.main:app\"\nhealthcheckPath = \"/health\"\npreDeployCommand = [\"alembic upgrade head\"]\n";
        let a = import_railway_config(json, RailwayConfigFormat::Json, "api").unwrap();
        let b = import_railway_config(toml, RailwayConfigFormat::Toml, "api").unwrap();
        assert_eq!(a, b);
        assert!(a.contains("health_path = \"/health\""), "{a}");
        assert!(a.contains("\"alembic\", \"upgrade\", \"head\""), "{a}");
        assert!(a.contains("service:Postgres"), "{a}");
    }

    #[test]
    fn broken_files_are_config_errors() {
        let err = import_railway_config("{", RailwayConfigFormat::Json, "x").unwrap_err();
        assert!(matches!(err, Error::ConfigInvalid { .. }), "{err:?}");
        let err = import_railway_config("[deploy", RailwayConfigFormat::Toml, "x").unwrap_err();
        assert!(matches!(err, Error::ConfigInvalid { .. }), "{err:?}");
    }
}
