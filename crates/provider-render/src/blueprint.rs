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
    /// The older spelling of `runtime`.
    env: Option<String>,
    health_check_path: Option<String>,
    domains: Vec<String>,
    env_vars: Vec<BpEnvVar>,
    maxmemory_policy: Option<String>,
    repo: Option<String>,
    branch: Option<String>,
    plan: Option<String>,
    region: Option<String>,
    build_command: Option<String>,
    start_command: Option<String>,
    pre_deploy_command: Option<String>,
    docker_command: Option<String>,
    root_dir: Option<String>,
    disk: Option<BpDisk>,
    /// A cron job's schedule.
    schedule: Option<String>,
    /// A static site's publish directory.
    static_publish_path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct BpDisk {
    name: String,
    mount_path: String,
    #[serde(rename = "sizeGB")]
    size_gb: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct BpDatabase {
    name: String,
    plan: Option<String>,
    region: Option<String>,
    postgres_major_version: Option<serde_json::Value>,
    database_name: Option<String>,
    user: Option<String>,
    #[serde(rename = "diskSizeGB")]
    disk_size_gb: Option<u32>,
    high_availability: Option<BpHighAvailability>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BpHighAvailability {
    enabled: bool,
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
    /// The value in preview environments (Render's `previewValue`): staging's.
    preview_value: Option<serde_json::Value>,
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
    /// A literal: production's value, and the preview (staging) value when one is given.
    Plain {
        production: String,
        preview: Option<String>,
    },
    Generated,
    Secret,
    /// A Render Postgres connection string.
    Postgres(String),
    /// Another property of a Render Postgres (`host`, `port`, `user`...): not a URL.
    PostgresPart(String, String),
    KeyValue(String),
    OtherService(String),
}

/// Words of a name (`_`-separated, singular or plural) that say its value is a credential:
/// never copied from production into staging. Whole words, so `OAUTH_CALLBACK` is not.
const SECRET_WORDS: &[&str] = &[
    "KEY",
    "APIKEY",
    "SECRET",
    "TOKEN",
    "PASSWORD",
    "PASSWD",
    "PRIVATE",
    "CREDENTIAL",
    "DSN",
    "AUTH",
    "SALT",
    "SIGNING",
];

/// A Blueprint's plan as the API's id: Render's docs and dashboards write `Basic-1gb`,
/// `Pro Plus`; the API says `basic_1gb`, `pro_plus`.
fn plan_id(plan: &str) -> String {
    plan.trim().to_ascii_lowercase().replace(['-', ' '], "_")
}

fn looks_secret(key: &str, value: &str) -> bool {
    let upper = key.to_ascii_uppercase();
    upper
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| {
            SECRET_WORDS
                .iter()
                .any(|w| word == *w || word.strip_suffix('S') == Some(w))
        })
        || url::Url::parse(value).is_ok_and(|u| u.password().is_some())
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
    import_blueprint_as(yaml, "app")
}

/// [`import_blueprint`], naming the project `default_name` (the directory the Blueprint is
/// in, say) when the Blueprint names none in `projects:`.
///
/// The skeleton validates as generated: each environment deploys its own services
/// (`<name>-staging` on staging), every secret has a source per environment (a datastore's
/// connection string from Render, anything else from `STAGING_KEY` / `PRODUCTION_KEY`),
/// the Blueprint's text is taken literally (a `${` in it is written `$${`, so no undefined
/// variable), a plain value's `previewValue` is staging's, a credential written in the
/// Blueprint is never copied into the spec and staging's must differ from production's,
/// and only a datastore's connection string is taken as a URL (`host`, `port`, `user` are
/// not).
pub fn import_blueprint_as(yaml: &str, default_name: &str) -> Result<String> {
    import_blueprint_from(yaml, default_name, None)
}

/// [`import_blueprint_as`] for a Blueprint in a checkout whose `origin` is `checkout_repo`
/// (`https://github.com/org/app`): Render builds a service that names no `repo` from the
/// Blueprint's own repository, so that is the `repo` its creation settings get.
pub fn import_blueprint_from(
    yaml: &str,
    default_name: &str,
    checkout_repo: Option<&str>,
) -> Result<String> {
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
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| default_name.to_owned());
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
        "[environments.production]\nprovider = \"render\"\nprotected = true"
    );
    let _ = writeln!(
        w,
        "# render.yaml defines production too: `create` may add what production lacks (it never\n# deletes or replaces). Remove this to refuse any creation on production.\nallow_create = true\n"
    );

    for s in &services {
        let id = ident(&s.name);
        let _ = writeln!(w, "[services.{id}]");
        if let Some(p) = &s.health_check_path {
            let _ = writeln!(w, "health_path = {}", quote(p));
        }
        if s.kind == "worker" || s.kind == "cron" {
            let _ = writeln!(w, "http = false");
        }
        let runtime = s.runtime.as_ref().or(s.env.as_ref());
        let _ = writeln!(
            w,
            "# Blueprint type `{}`{}",
            s.kind,
            runtime
                .map(|r| format!(", runtime `{r}`"))
                .unwrap_or_default()
        );
        let (settings, lacks) = service_creation_settings(s, checkout_repo);
        if s.repo.is_none()
            && let Some(repo) = checkout_repo
        {
            let _ = writeln!(
                w,
                "# repo: the Blueprint's own repository (this checkout's origin, {})",
                literal(repo)
            );
        }
        match lacks {
            None => {
                let _ = writeln!(
                    w,
                    "# Created when missing (never replaced), from these settings:\ncreate = true"
                );
            }
            Some(why) => {
                let _ = writeln!(
                    w,
                    "# create = true   # render.yaml lacks {why} to create it"
                );
            }
        }
        let mut all = vec![format!("service_name = {}", quote(&s.name))];
        all.extend(settings);
        let _ = writeln!(w, "settings = {{ {} }}", all.join(", "));
        // Staging gets a service of its own: without an override both environments
        // would name the production service, which the isolation check refuses.
        let _ = writeln!(
            w,
            "# Staging's own service on Render, built from the branch staging deploys (change it to yours):"
        );
        let _ = writeln!(
            w,
            "overrides.staging = {{ service_name = {}, branch = \"staging\" }}",
            quote(&format!("{}-staging", s.name))
        );
        let mut production = vec![];
        if let Some(b) = &s.branch {
            production.push(format!("branch = {}", quote(b)));
        }
        if !s.domains.is_empty() {
            let list: Vec<String> = s.domains.iter().map(|d| quote(d)).collect();
            production.push(format!("custom_domains = [{}]", list.join(", ")));
        }
        if !production.is_empty() {
            let _ = writeln!(w, "overrides.production = {{ {} }}", production.join(", "));
        }
        let _ = writeln!(w);
    }

    for db in &bp.databases {
        let _ = writeln!(w, "[datastores.{}]", ident(&db.name));
        let _ = writeln!(w, "create = true");
        let mut settings = vec![
            "kind = \"postgres\"".to_owned(),
            format!("name = {}", quote(&db.name)),
        ];
        let plan = match db.plan.as_deref().map(plan_id) {
            Some(p) if crate::settings::POSTGRES_PLANS.contains(&p.as_str()) => p,
            Some(_) => {
                let _ = writeln!(
                    w,
                    "# render.yaml's plan {} is not one staging knows: basic_256mb assumed",
                    quote(db.plan.as_deref().unwrap_or_default())
                );
                "basic_256mb".to_owned()
            }
            None => "basic_256mb".to_owned(),
        };
        settings.push(format!("plan = {}", quote(&plan)));
        if let Some(r) = &db.region {
            settings.push(format!("region = {}", quote(r)));
        }
        let version = match &db.postgres_major_version {
            Some(serde_json::Value::String(v)) => v.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => {
                let _ = writeln!(
                    w,
                    "# render.yaml names no Postgres version: set production's (16 assumed here)"
                );
                "16".to_owned()
            }
        };
        settings.push(format!("version = {}", quote(&version)));
        if let Some(n) = &db.database_name {
            settings.push(format!("database_name = {}", quote(n)));
        }
        if let Some(u) = &db.user {
            settings.push(format!("database_user = {}", quote(u)));
        }
        if let Some(gb) = db.disk_size_gb {
            settings.push(format!("disk_size_gb = {gb}"));
        }
        if let Some(ha) = &db.high_availability {
            settings.push(format!("high_availability = {}", ha.enabled));
        }
        let _ = writeln!(w, "settings = {{ {} }}", settings.join(", "));
        let _ = writeln!(
            w,
            "overrides.staging = {{ name = {} }}\n",
            quote(&format!("{}-staging", db.name))
        );
    }
    for kv in &key_values {
        let _ = writeln!(w, "[datastores.{}]", ident(&kv.name));
        let _ = writeln!(w, "create = true");
        let plan = match kv.plan.as_deref().map(plan_id) {
            Some(p) if crate::settings::KEY_VALUE_PLANS.contains(&p.as_str()) => p,
            Some(_) => {
                let _ = writeln!(
                    w,
                    "# render.yaml's plan {} is not one staging knows: starter assumed",
                    quote(kv.plan.as_deref().unwrap_or_default())
                );
                "starter".to_owned()
            }
            None => "starter".to_owned(),
        };
        let mut settings = vec![
            "kind = \"key_value\"".to_owned(),
            format!("name = {}", quote(&kv.name)),
            format!("plan = {}", quote(&plan)),
        ];
        if let Some(r) = &kv.region {
            settings.push(format!("region = {}", quote(r)));
        }
        let policy = kv
            .maxmemory_policy
            .as_deref()
            .map(|p| p.replace('-', "_"))
            .unwrap_or_else(|| "noeviction".to_owned());
        settings.push(format!("maxmemory_policy = {}", quote(&policy)));
        let _ = writeln!(w, "settings = {{ {} }}", settings.join(", "));
        let _ = writeln!(
            w,
            "overrides.staging = {{ name = {} }}\n",
            quote(&format!("{}-staging", kv.name))
        );
    }

    for (key, v) in &vars {
        let _ = writeln!(w, "[vars.{}]", bare_or_quoted(key));
        write_var(w, key, &v.origin);
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
                quote(&format!(
                    "${{services.{}.url}}{}",
                    ident(&s.name),
                    path.replace("${", "$${")
                ))
            );
        }
        for d in &s.domains {
            let _ = writeln!(
                w,
                "[[probes]]\nname = {}\ntls = {{ host = {} }}\n",
                quote(&format!("{d} certificate")),
                literal(d)
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

/// The creation settings of a Blueprint service (`type = ...`, `runtime = ...`), and what
/// it lacks to be created when it lacks something (a repo — the checkout's when it names
/// none —, build and start commands).
fn service_creation_settings(
    s: &BpService,
    checkout_repo: Option<&str>,
) -> (Vec<String>, Option<String>) {
    let mut out = vec![];
    let runtime = s.runtime.as_ref().or(s.env.as_ref());
    let service_type = match (s.kind.as_str(), runtime.map(String::as_str)) {
        ("web", Some("static")) => "static_site",
        ("web", _) => "web_service",
        ("pserv", _) => "private_service",
        ("worker", _) => "background_worker",
        ("cron", _) => "cron_job",
        _ => return (out, Some(format!("a kind staging creates (`{}`)", s.kind))),
    };
    out.push(format!("type = {}", quote(service_type)));
    let text = |out: &mut Vec<String>, key: &str, v: &Option<String>| {
        if let Some(v) = v.as_ref().filter(|v| !v.trim().is_empty()) {
            out.push(format!("{key} = {}", literal(v)));
        }
    };
    let repo = s.repo.clone().or_else(|| checkout_repo.map(str::to_owned));
    if service_type == "static_site" {
        // Render builds a static site and serves its files: no runtime, plan or region.
        text(&mut out, "repo", &repo);
        text(&mut out, "root_dir", &s.root_dir);
        text(&mut out, "build_command", &s.build_command);
        text(&mut out, "publish_path", &s.static_publish_path);
        let lacks = repo
            .is_none()
            .then(|| "`repo` (and the checkout has no `origin`)".to_owned());
        return (out, lacks);
    }
    if service_type == "cron_job" {
        text(&mut out, "schedule", &s.schedule);
    }
    // Only what the settings' own types accept (one list: `settings::Runtime`, `Region`).
    let runtime = runtime.filter(|r| is_a::<crate::settings::Runtime>(r));
    if let Some(r) = runtime {
        out.push(format!("runtime = {}", quote(r)));
    }
    text(&mut out, "repo", &repo);
    if let Some(plan) = s.plan.as_deref().map(plan_id) {
        let allowed = if service_type == "web_service" {
            crate::settings::SERVICE_PLANS
        } else {
            crate::settings::PAID_SERVICE_PLANS
        };
        if allowed.contains(&plan.as_str()) {
            out.push(format!("plan = {}", quote(&plan)));
        }
    }
    if let Some(r) = s
        .region
        .as_ref()
        .filter(|r| is_a::<crate::settings::Region>(r))
    {
        out.push(format!("region = {}", quote(r)));
    }
    text(&mut out, "root_dir", &s.root_dir);
    text(&mut out, "build_command", &s.build_command);
    let start = s.start_command.clone().or_else(|| s.docker_command.clone());
    text(&mut out, "start_command", &start);
    text(&mut out, "pre_deploy_command", &s.pre_deploy_command);
    if let Some(d) = &s.disk {
        out.push(format!(
            "disk = {{ name = {}, mount_path = {}{} }}",
            quote(&d.name),
            quote(&d.mount_path),
            d.size_gb
                .map(|g| format!(", size_gb = {g}"))
                .unwrap_or_default()
        ));
    }
    let mut lacks = vec![];
    if service_type == "cron_job" && s.schedule.as_deref().is_none_or(|c| c.trim().is_empty()) {
        lacks.push("`schedule`");
    }
    match runtime {
        None => lacks.push("a runtime staging builds"),
        Some(r) if r != "docker" => {
            if s.build_command.is_none() {
                lacks.push("`buildCommand`");
            }
            if s.start_command.is_none() {
                lacks.push("`startCommand`");
            }
        }
        Some(_) => {}
    }
    if repo.is_none() {
        lacks.push("`repo` (and the checkout has no `origin`)");
    }
    let lacks = (!lacks.is_empty()).then(|| lacks.join(", "));
    (out, lacks)
}

/// A `[vars.KEY]` body for `origin`: values per environment, and a source for every
/// secret (staging's never production's).
///
/// A secret is read per environment from `STAGING_KEY` and `PRODUCTION_KEY` (the
/// environments' own variables, so one shell or CI job can hold both and `differs_from` can
/// tell them apart); a credential the Blueprint writes in plain text is not copied into the
/// spec, where secrets never sit: the comment says which Blueprint value goes where.
fn write_var(w: &mut String, key: &str, origin: &Origin) {
    let per_env_sources = |w: &mut String, why: &str, rules: Option<&str>| {
        let _ = writeln!(w, "secret = true");
        for line in why.lines() {
            let _ = writeln!(w, "# {line}");
        }
        let _ = writeln!(
            w,
            "# Export STAGING_{key} and PRODUCTION_{key} where `staging` runs, or point these sources at your secret store."
        );
        let _ = writeln!(
            w,
            "sources = {{ staging = {{ env = {} }}, production = {{ env = {} }} }}",
            quote(&format!("STAGING_{key}")),
            quote(&format!("PRODUCTION_{key}"))
        );
        if let Some(rules) = rules {
            let _ = writeln!(w, "rules = {rules}");
        }
    };
    const NOT_PRODUCTIONS: &str = "{ differs_from = \"production\" }";
    match origin {
        Origin::Plain {
            production,
            preview,
        } if looks_secret(key, production) => per_env_sources(
            w,
            &format!(
                "render.yaml writes this credential in plain text ({}); it is not copied here.\nStaging never gets production's value{}.",
                if preview.is_some() {
                    "`value` for production, `previewValue` for previews"
                } else {
                    "a `value` for every environment"
                },
                if preview.is_some() {
                    ": STAGING_ takes the previewValue"
                } else {
                    ": give staging its own (a test or sandbox key)"
                }
            ),
            Some(NOT_PRODUCTIONS),
        ),
        Origin::Plain {
            production,
            preview: Some(preview),
        } => {
            let _ = writeln!(
                w,
                "# production's value, and staging's from Render's previewValue"
            );
            let _ = writeln!(
                w,
                "values = {{ staging = {}, production = {} }}",
                literal(preview),
                literal(production)
            );
        }
        Origin::Plain {
            production,
            preview: None,
        } => {
            let _ = writeln!(w, "value = {}", literal(production));
        }
        Origin::Generated => per_env_sources(
            w,
            "Render generates it (generateValue): staging needs its own, never production's.",
            Some("{ kind = \"signing_key\", differs_from = \"production\" }"),
        ),
        Origin::Secret => per_env_sources(w, "Set in the Render dashboard (sync: false).", None),
        Origin::Postgres(db) => {
            let _ = writeln!(
                w,
                "secret = true\n# the connection string of Render Postgres `{db}` (staging: `{db}-staging`)"
            );
            let _ = writeln!(
                w,
                "sources = {{ staging = {{ provider = {} }}, production = {{ provider = {} }} }}",
                quote(&format!("postgres:{db}-staging")),
                quote(&format!("postgres:{db}"))
            );
            let _ = writeln!(w, "rules = {{ kind = \"url\" }}");
        }
        Origin::PostgresPart(db, property) => per_env_sources(
            w,
            &format!(
                "The `{property}` of Render Postgres `{db}` (staging: `{db}-staging`): not a connection string."
            ),
            None,
        ),
        Origin::KeyValue(kv) => {
            let _ = writeln!(
                w,
                "secret = true\n# the connection string of Render Key Value `{kv}` (staging: `{kv}-staging`)"
            );
            let _ = writeln!(
                w,
                "sources = {{ staging = {{ provider = {} }}, production = {{ provider = {} }} }}",
                quote(&format!("key_value:{kv}-staging")),
                quote(&format!("key_value:{kv}"))
            );
            let _ = writeln!(w, "rules = {{ kind = \"url\" }}");
        }
        Origin::OtherService(svc) => per_env_sources(
            w,
            &format!(
                "Taken from service `{svc}` by Render (fromService): staging's from `{svc}-staging`."
            ),
            None,
        ),
    }
}

fn origin_of(ev: &BpEnvVar) -> Origin {
    if let Some(db) = &ev.from_database {
        return match db.property.as_deref() {
            None | Some("connectionString") => Origin::Postgres(db.name.clone()),
            Some(other) => Origin::PostgresPart(db.name.clone(), other.to_owned()),
        };
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
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(_) | serde_json::Value::Bool(_) => Some(v.to_string()),
        _ => None,
    };
    match ev.value.as_ref().and_then(text) {
        Some(production) if ev.sync != Some(false) => Origin::Plain {
            production,
            preview: ev.preview_value.as_ref().and_then(text),
        },
        _ => Origin::Secret,
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A value from the Blueprint as a spec string that means exactly its text: Render does not
/// expand `${...}` in a Blueprint, so neither may the spec (`$${` is a literal `${`).
fn literal(s: &str) -> String {
    quote(&s.replace("${", "$${"))
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

/// Whether `text` is a value of the settings enum `T` (its serde name).
fn is_a<T: serde::de::DeserializeOwned>(text: &str) -> bool {
    serde_json::from_value::<T>(serde_json::Value::String(text.to_owned())).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_is_told_by_whole_words_of_its_name_or_a_password_in_its_url() {
        for (key, value, secret) in [
            ("STRIPE_API_KEY", "x", true),
            ("DJANGO_SECRET_KEY", "x", true),
            ("GITHUB_CLIENT_SECRETS", "x", true),
            ("AUTH_TOKEN", "x", true),
            ("SENTRY_DSN", "x", true),
            ("DB_PASSWORD", "x", true),
            ("MAPS_APIKEY", "x", true),
            ("OAUTH_CALLBACK", "https://app.example/cb", false),
            ("KEYCLOAK_REALM", "main", false),
            ("MONKEY_MODE", "on", false),
            ("TOKENIZER", "bpe", false),
            ("UPSTREAM", "postgres://app:hunter2@db:5432/app", true),
            ("API_BASE_URL", "https://api.example", false),
        ] {
            assert_eq!(looks_secret(key, value), secret, "{key}");
        }
    }

    #[test]
    fn a_plan_as_render_s_docs_write_it_becomes_the_api_s_id() {
        let yaml = "services:\n  - type: web\n    name: web\n    runtime: node\n    plan: Standard\n    repo: https://github.com/org/app\n    buildCommand: npm ci\n    startCommand: npm start\n  - type: keyvalue\n    name: cache\n    plan: Starter\n    ipAllowList: []\ndatabases:\n  - name: db\n    plan: Basic-1gb\n  - name: old\n    plan: Hobby-XL\n";
        let spec = import_blueprint(yaml).unwrap();
        assert!(spec.contains("plan = \"basic_1gb\""), "{spec}");
        assert!(spec.contains("plan = \"standard\""), "{spec}");
        assert!(spec.contains("plan = \"starter\""), "{spec}");
        assert!(!spec.contains("Basic_1gb"), "{spec}");
        // A plan staging does not know is said, not written into the settings.
        assert!(
            spec.contains("\"Hobby-XL\" is not one staging knows"),
            "{spec}"
        );
        assert!(!spec.contains("plan = \"hobby_xl\""), "{spec}");
    }

    #[test]
    fn a_service_without_repo_is_built_from_the_checkout_s_origin() {
        let yaml = "services:\n  - type: web\n    name: web\n    runtime: node\n    buildCommand: npm ci\n    startCommand: npm start\n";
        let without = import_blueprint_as(yaml, "app").unwrap();
        assert!(without.contains("# create = true"), "{without}");
        let with = import_blueprint_from(yaml, "app", Some("https://github.com/org/app")).unwrap();
        assert!(with.contains("\ncreate = true"), "{with}");
        assert!(
            with.contains("repo = \"https://github.com/org/app\""),
            "{with}"
        );
        // A repo the Blueprint names wins over the checkout's.
        let own = yaml.replace(
            "runtime: node",
            "runtime: node\n    repo: https://github.com/org/other",
        );
        let own = import_blueprint_from(&own, "app", Some("https://github.com/org/app")).unwrap();
        assert!(
            own.contains("repo = \"https://github.com/org/other\""),
            "{own}"
        );
        assert!(!own.contains("org/app\""), "{own}");
    }
}
