//! `staging import render.yaml`: a Render Blueprint turned into a spec skeleton.
//!
//! The skeleton is a starting point to review, not a translation: a Blueprint says how to
//! create resources, a spec says how to check and deploy them. What maps:
//! services (`web`, `pserv`, `worker`, `cron`) become `[services.*]` found by name on
//! Render, with `healthCheckPath` as `health_path` and an HTTP probe; env vars and env var
//! groups become `[vars.*]` (secret unless a plain `value` is given; `generateValue` ones get
//! the signing-key rules); `databases` become `[databases.*]` plus a Postgres probe when a
//! variable takes their connection string; Key Value instances get a Redis probe requiring
//! `noeviction`; custom `domains` get a TLS probe.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Deserialize;
use staging_core::{Error, Result};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Blueprint {
    services: Vec<BpService>,
    databases: Vec<BpDatabase>,
    env_var_groups: Vec<BpGroup>,
    projects: Vec<BpProject>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct BpProject {
    name: Option<String>,
    environments: Vec<BpProjectEnv>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct BpProjectEnv {
    services: Vec<BpService>,
    databases: Vec<BpDatabase>,
    env_var_groups: Vec<BpGroup>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct BpService {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    runtime: Option<String>,
    health_check_path: Option<String>,
    domains: Vec<String>,
    env_vars: Vec<BpEnvVar>,
    maxmemory_policy: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct BpDatabase {
    name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct BpGroup {
    name: String,
    env_vars: Vec<BpEnvVar>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct BpEnvVar {
    key: Option<String>,
    value: Option<serde_json::Value>,
    generate_value: Option<bool>,
    sync: Option<bool>,
    from_database: Option<BpFrom>,
    from_service: Option<BpFrom>,
    from_group: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct BpFrom {
    name: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    property: Option<String>,
}

/// Where a variable's value comes from, as far as the skeleton cares.
#[derive(Debug, Clone, PartialEq)]
enum Origin {
    Plain(String),
    Generated,
    Secret,
    Postgres(String),
    KeyValue(String),
    OtherService(String),
}

#[derive(Debug)]
struct VarOut {
    origin: Origin,
    services: BTreeSet<String>,
}

const DEPLOYABLE: &[&str] = &["web", "pserv", "worker", "cron"];
const KEY_VALUE: &[&str] = &["keyvalue", "redis"];

/// Turns a Render Blueprint (`render.yaml`) into a `staging.toml` skeleton with a staging
/// and a production environment on Render.
///
/// ```
/// let toml = staging_provider_render::import_blueprint(
///     "services:\n  - type: web\n    name: web\n    healthCheckPath: /up\n",
/// )
/// .unwrap();
/// assert!(toml.contains("[services.web]"));
/// assert!(toml.contains("health_path = \"/up\""));
/// ```
pub fn import_blueprint(yaml: &str) -> Result<String> {
    let mut bp: Blueprint = serde_saphyr::from_str(yaml)
        .map_err(|e| Error::config(format!("render.yaml is not a valid Blueprint: {e}")))?;
    // Blueprints with `projects:` nest resources per environment; the resources of every
    // environment are merged into one skeleton (names usually differ by a suffix: review).
    let project_name = bp.projects.iter().find_map(|p| p.name.clone());
    for p in std::mem::take(&mut bp.projects) {
        for e in p.environments {
            bp.services.extend(e.services);
            bp.databases.extend(e.databases);
            bp.env_var_groups.extend(e.env_var_groups);
        }
    }

    let services: Vec<&BpService> = bp
        .services
        .iter()
        .filter(|s| DEPLOYABLE.contains(&s.kind.as_str()) && !s.name.is_empty())
        .collect();
    let key_values: Vec<&BpService> = bp
        .services
        .iter()
        .filter(|s| KEY_VALUE.contains(&s.kind.as_str()))
        .collect();
    let groups: BTreeMap<&str, &BpGroup> = bp
        .env_var_groups
        .iter()
        .map(|g| (g.name.as_str(), g))
        .collect();
    let all_services: BTreeSet<String> = services.iter().map(|s| ident(&s.name)).collect();

    let mut vars: BTreeMap<String, VarOut> = BTreeMap::new();
    let mut add = |key: &str, origin: Origin, service: &str| {
        let v = vars.entry(key.to_owned()).or_insert_with(|| VarOut {
            origin: origin.clone(),
            services: BTreeSet::new(),
        });
        v.services.insert(ident(service));
    };
    for s in &services {
        for ev in &s.env_vars {
            if let Some(group) = &ev.from_group {
                if let Some(g) = groups.get(group.as_str()) {
                    for gv in &g.env_vars {
                        if let Some(key) = &gv.key {
                            add(key, origin_of(gv), &s.name);
                        }
                    }
                }
            } else if let Some(key) = &ev.key {
                add(key, origin_of(ev), &s.name);
            }
        }
    }

    let name = project_name
        .or_else(|| services.first().map(|s| s.name.clone()))
        .unwrap_or_else(|| "app".to_owned());
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "# Generated by `staging import` from a Render Blueprint. Review every line:"
    );
    let _ = writeln!(
        w,
        "# the service names on Render, the workspace id, and where each secret comes from.\n"
    );
    let _ = writeln!(w, "[project]\nname = {}\n", quote(&name));
    let _ = writeln!(
        w,
        "[environments.staging]\nprovider = \"render\"\npromotes_to = \"production\""
    );
    let _ = writeln!(
        w,
        "# settings.owner_id = \"tea-...\"   # the Render workspace, when the key sees several\n"
    );
    let _ = writeln!(
        w,
        "[environments.production]\nprovider = \"render\"\nprotected = true\n"
    );

    for s in &services {
        let id = ident(&s.name);
        let _ = writeln!(w, "[services.{id}]");
        if let Some(p) = &s.health_check_path {
            let _ = writeln!(w, "health_path = {}", quote(p));
        }
        let _ = writeln!(
            w,
            "# Blueprint type `{}`{}",
            s.kind,
            s.runtime
                .as_ref()
                .map(|r| format!(", runtime `{r}`"))
                .unwrap_or_default()
        );
        let _ = writeln!(w, "settings = {{ service_name = {} }}", quote(&s.name));
        // Staging gets a service of its own: without an override both environments
        // would name the production service, which the isolation check refuses.
        let _ = writeln!(
            w,
            "# Staging's own service on Render (create it, or rename this to the one you have):"
        );
        let _ = writeln!(
            w,
            "overrides.staging = {{ service_name = {} }}\n",
            quote(&format!("{}-staging", s.name))
        );
    }

    for (key, v) in &vars {
        let _ = writeln!(w, "[vars.{}]", bare_or_quoted(key));
        match &v.origin {
            Origin::Plain(value) => {
                let _ = writeln!(w, "value = {}", quote(value));
            }
            Origin::Generated => {
                let _ = writeln!(
                    w,
                    "secret = true\n# Render generates it (generateValue); staging must not share production's"
                );
                let _ = writeln!(
                    w,
                    "rules = {{ kind = \"signing_key\", differs_from = \"production\" }}"
                );
            }
            Origin::Secret => {
                let _ = writeln!(
                    w,
                    "secret = true\n# set in the Render dashboard (sync: false); give it a `source`"
                );
            }
            Origin::Postgres(db) => {
                let _ = writeln!(
                    w,
                    "secret = true\n# Render Postgres `{db}` (render datastore key `postgres:{db}`)"
                );
            }
            Origin::KeyValue(kv) => {
                let _ = writeln!(
                    w,
                    "secret = true\n# Render Key Value `{kv}` (render datastore key `key_value:{kv}`)"
                );
            }
            Origin::OtherService(svc) => {
                let _ = writeln!(
                    w,
                    "secret = true\n# taken from service `{svc}` by Render (fromService)"
                );
            }
        }
        if v.services != all_services {
            let list: Vec<String> = v.services.iter().map(|s| quote(s)).collect();
            let _ = writeln!(w, "services = [{}]", list.join(", "));
        }
        let _ = writeln!(w);
    }

    let url_var_of = |pred: &dyn Fn(&Origin) -> bool| {
        vars.iter()
            .find(|(_, v)| pred(&v.origin))
            .map(|(k, _)| k.clone())
    };
    for db in &bp.databases {
        let var = url_var_of(&|o| matches!(o, Origin::Postgres(n) if n == &db.name));
        match var {
            Some(var) => {
                let _ = writeln!(
                    w,
                    "[databases.{}]\nurl_var = {}",
                    ident(&db.name),
                    quote(&var)
                );
                let _ = writeln!(
                    w,
                    "# migrations = {{ command = [\"...\"] }}   # or {{ dir = \"migrations\" }}\n"
                );
            }
            None => {
                let _ = writeln!(
                    w,
                    "# Render Postgres `{}`: no variable takes its connection string\n",
                    db.name
                );
            }
        }
    }

    for s in &services {
        if let (Some(path), "web") = (&s.health_check_path, s.kind.as_str()) {
            let _ = writeln!(
                w,
                "[[probes]]\nname = {}\nretry_for = \"2m\"",
                quote(&format!("{} health", s.name))
            );
            let _ = writeln!(
                w,
                "http = {{ url = {} }}\n",
                quote(&format!("${{services.{}.url}}{path}", ident(&s.name)))
            );
        }
        for d in &s.domains {
            let _ = writeln!(
                w,
                "[[probes]]\nname = {}\ntls = {{ host = {} }}\n",
                quote(&format!("{d} certificate")),
                quote(d)
            );
        }
    }
    for db in &bp.databases {
        if let Some(var) = url_var_of(&|o| matches!(o, Origin::Postgres(n) if n == &db.name)) {
            let _ = writeln!(
                w,
                "[[probes]]\nname = {}\npostgres = {{ url_var = {} }}\n",
                quote(&format!("{} round trip", db.name)),
                quote(&var)
            );
        }
    }
    for kv in &key_values {
        if let Some(var) = url_var_of(&|o| matches!(o, Origin::KeyValue(n) if n == &kv.name)) {
            let policy = kv
                .maxmemory_policy
                .clone()
                .unwrap_or_else(|| "noeviction".to_owned());
            let _ = writeln!(
                w,
                "[[probes]]\nname = {}\nredis = {{ url_var = {}, maxmemory_policy = {} }}\n",
                quote(&format!("{} policy", kv.name)),
                quote(&var),
                quote(&policy)
            );
        }
    }
    Ok(out.trim_end().to_owned() + "\n")
}

fn origin_of(ev: &BpEnvVar) -> Origin {
    if let Some(db) = &ev.from_database {
        return Origin::Postgres(db.name.clone());
    }
    if let Some(from) = &ev.from_service {
        let kind = from.kind.as_deref().unwrap_or_default();
        return if KEY_VALUE.contains(&kind)
            && from
                .property
                .as_deref()
                .is_none_or(|p| p == "connectionString")
        {
            Origin::KeyValue(from.name.clone())
        } else {
            Origin::OtherService(from.name.clone())
        };
    }
    if ev.generate_value == Some(true) {
        return Origin::Generated;
    }
    match &ev.value {
        Some(serde_json::Value::String(s)) if ev.sync != Some(false) => Origin::Plain(s.clone()),
        Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
            Origin::Plain(v.to_string())
        }
        _ => Origin::Secret,
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A spec name for a Render name: TOML bare-key characters only.
fn ident(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "_".to_owned() } else { s }
}

fn bare_or_quoted(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_owned()
    } else {
        quote(key)
    }
}
