//! The spec file (`staging.toml`): its model, loading with `file:line:col` errors,
//! templates, and the checks that span more than one table.
//!
//! Loading goes in three passes over one parse: the TOML is parsed into a tree that keeps
//! every span; every string of that tree is parsed once into a [`Template`] (process
//! environment variables filled in as literal text, an undefined one an error at its own
//! column, pipeline references such as `${commit}` kept as references); then the typed
//! [`Spec`] is deserialized from the tree, so serde's errors (unknown key, wrong type) carry
//! the span of the offending key or value. Fields that the pipeline fills in are typed
//! [`Template`]; a pipeline reference in any other field is an error at its place. Checks
//! across tables (an unknown provider, a `promotes_to` naming no environment or forming a
//! cycle) use an index of spans by key path.
//!
//! The loader also hashes the spec twice: the file's bytes ([`LoadedSpec::hash`]) and the
//! *effective* spec, the loaded tree in a canonical form after process variables were filled
//! in ([`LoadedSpec::effective_hash`]), which the promotion gate compares.

mod create;
mod databases;
mod domain;
pub mod duration;
mod instance;
mod load;
mod model;
mod probes;
mod providers;
mod settings;
pub mod template;
mod vars;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::IntoDeserializer;
use sha2::{Digest, Sha256};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub use create::{Create, CreationsAsked, Datastore};
pub use databases::{
    BranchSpec, Database, Migrations, NeonBranch, Scrub, ScrubVerify, SupabaseBranch,
};
pub use domain::DomainName;
pub use instance::{INSTANCE, MAX_INSTANCE_LEN, check_instance_name};
pub use load::line_col;
pub use model::{Environment, Project, Service, Spec};
pub use probes::{
    CommandCheck, DnsCheck, HttpCheck, HttpExpect, PostgresCheck, ProbeSpec, RedisCheck, TcpCheck,
    TlsCheck,
};
pub use settings::{Settings, SettingsTypes, closest, did_you_mean, json_schema_with};
pub use template::Template;
pub use vars::{Alphabet, Rules, SecretSource, ValueKind, Var};

use crate::error::{Error, Result};

/// The `$id` of the spec's JSON Schema: a name, not a place to fetch it from (editors are
/// pointed at the committed file, see the README's "Editor support").
pub const SCHEMA_ID: &str = "urn:staging:schema:spec:v1";

/// The JSON Schema of the spec format, generated from the types (committed as
/// `docs/staging.schema.json`; a test keeps the two equal), with its `$id`.
pub fn json_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(Spec)).unwrap_or_default();
    if let Some(map) = schema.as_object_mut() {
        map.insert("$id".to_owned(), serde_json::Value::from(SCHEMA_ID));
    }
    schema
}

/// The default file name of a spec.
pub const DEFAULT_FILE: &str = "staging.toml";

/// The largest spec file `LoadedSpec::load` reads (8 MiB).
pub const MAX_SPEC_BYTES: u64 = 8 << 20;

/// A spec as loaded from a file: the typed model, plus what is needed to point at a place in
/// the file.
#[derive(Debug, Clone)]
pub struct LoadedSpec {
    /// The file it was read from.
    pub path: PathBuf,
    /// The typed spec, process environment variables filled in.
    pub spec: Spec,
    /// SHA-256 of the file's bytes, hex.
    pub hash: String,
    /// SHA-256 of the effective spec, hex: the loaded tree after process variables were
    /// filled in, in a canonical form (keys sorted; comments, layout and quoting do not
    /// count). The promotion gate compares this one, so a probe loosened through an
    /// environment variable is not "the same spec".
    pub effective_hash: String,
    /// The file's text, shared with every [`Settings`] read from it (never copied).
    source: std::sync::Arc<str>,
    spans: BTreeMap<String, Range<usize>>,
    refs: Vec<load::FoundRef>,
    /// Every `settings` and `overrides.ENV` table as written, by key path, for typed
    /// reading ([`LoadedSpec::service_settings`]).
    settings: BTreeMap<String, settings::SettingsTree>,
    /// The instance of an ephemeral environment it was loaded for (`pr-42`), if any: every
    /// `${instance}` of the file holds it.
    pub instance: Option<String>,
}

/// How to load a spec.
#[derive(Clone, Copy)]
pub struct LoadOptions<'a> {
    /// Looks up a process environment variable.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// The providers that can be named in `environments.*.provider`.
    pub known_providers: &'a [&'a str],
    /// The instance of an ephemeral environment the spec is loaded for (`pr-42`): what
    /// `${instance}` becomes, as literal text. `None`: `${instance}` stays those characters
    /// (`validate`, `plan` of the template).
    pub instance: Option<&'a str>,
}

impl std::fmt::Debug for LoadOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadOptions")
            .field("known_providers", &self.known_providers)
            .finish()
    }
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl<'a> LoadOptions<'a> {
    /// Read variables from the process environment; accept these providers.
    pub fn new(known_providers: &'a [&'a str]) -> Self {
        LoadOptions {
            env: &process_env,
            known_providers,
            instance: None,
        }
    }

    /// The same options, loading for `instance` of an ephemeral environment.
    pub fn with_instance(mut self, instance: Option<&'a str>) -> Self {
        self.instance = instance;
        self
    }
}

impl LoadedSpec {
    /// Read and check the spec at `path`. A file that cannot be read (missing, a
    /// directory, a FIFO or device, unreadable, larger than [`MAX_SPEC_BYTES`]) or is not
    /// UTF-8 is a config error (exit 2), the latter at the `line:col` of its first bad byte.
    pub fn load(path: impl AsRef<Path>, options: LoadOptions<'_>) -> Result<Self> {
        let path = path.as_ref();
        let cannot = |why: String| {
            Error::config_at(
                path.display().to_string(),
                format!("cannot read spec: {why}"),
            )
        };
        // Judge what the path is before opening it: opening a FIFO would block.
        let meta = std::fs::metadata(path).map_err(|e| cannot(e.to_string()))?;
        if meta.is_dir() {
            return Err(cannot(
                "this is a directory (give the spec file, e.g. staging.toml)".to_owned(),
            ));
        }
        if !meta.is_file() {
            return Err(cannot(
                "not a regular file (a FIFO, socket or device)".to_owned(),
            ));
        }
        let file = std::fs::File::open(path).map_err(|e| cannot(e.to_string()))?;
        let mut bytes = vec![];
        std::io::Read::read_to_end(
            &mut std::io::Read::take(file, MAX_SPEC_BYTES + 1),
            &mut bytes,
        )
        .map_err(|e| cannot(e.to_string()))?;
        if bytes.len() as u64 > MAX_SPEC_BYTES {
            return Err(cannot(format!(
                "larger than {} MiB; a spec is a short text file",
                MAX_SPEC_BYTES >> 20
            )));
        }
        Self::parse_bytes(path, bytes, options)
    }

    /// Check a spec given as bytes (a file's content): bytes that are not UTF-8 are an
    /// error at the `line:col` of the first bad one.
    pub fn parse_bytes(
        path: impl AsRef<Path>,
        bytes: Vec<u8>,
        options: LoadOptions<'_>,
    ) -> Result<Self> {
        let path = path.as_ref();
        let source = String::from_utf8(bytes).map_err(|e| {
            let at = load::invalid_utf8_at(e.as_bytes(), e.utf8_error().valid_up_to());
            Error::config_at(
                format!("{}:{at}", path.display()),
                format!(
                    "the spec is not UTF-8 text (byte 0x{:02x} here; a TOML file must be UTF-8)",
                    e.as_bytes()[e.utf8_error().valid_up_to()]
                ),
            )
        })?;
        Self::parse(path, source, options)
    }

    /// Check a spec already in memory; `path` is used in messages and to resolve relative
    /// paths.
    pub fn parse(path: impl AsRef<Path>, source: String, options: LoadOptions<'_>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let hash = hex::encode(Sha256::digest(source.as_bytes()));
        let at = |offset: Option<usize>| match offset {
            Some(o) => format!("{}:{}", path.display(), line_col(&source, o)),
            None => path.display().to_string(),
        };

        let mut tree = DeTable::parse(&source).map_err(|e| {
            // The parser gives no span when it stops at its nesting limit: point at the
            // most deeply nested line.
            let offset = e
                .span()
                .map(|s| s.start)
                .unwrap_or_else(|| load::deepest_line(&source));
            Error::config_at(
                at(Some(offset)),
                format!("invalid TOML: {}", e.message().trim()),
            )
        })?;

        if let Some(instance) = options.instance {
            check_instance_name(instance)?;
        }
        let mut walker = load::Walker::new(&source, options.env);
        walker.instance = options.instance;
        walker.table(String::new(), tree.get_mut());
        let load::Walker {
            spans,
            refs,
            templated,
            mut problems,
            instance_at,
            ..
        } = walker;
        problems.sort_by_key(|(at, _)| *at);
        if let Some((offset, message)) = problems.into_iter().next() {
            return Err(Error::config_at(at(Some(offset)), message));
        }
        let effective_hash = load::effective_hash(tree.get_ref());

        let settings = capture_settings(tree.get_ref());
        let mut spec = Spec::deserialize(tree.into_deserializer()).map_err(|e| {
            let start = e.span().map(|s| s.start);
            let message = match start.and_then(|s| templated.get(&s)) {
                Some(names) => format!(
                    "this value takes no pipeline reference (found {}): only process environment variables are filled in here; write `$${{` for a literal `${{`",
                    names
                        .iter()
                        .map(|n| format!("`${{{n}}}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => {
                    let message = e.message().trim().replace('\n', " ");
                    match did_you_mean(&message) {
                        Some(hint) => format!("{message}; did you mean `{hint}`?"),
                        None => message,
                    }
                }
            };
            Error::config_at(at(start), message)
        })?;
        spec.settings_templates_to_source();
        spec.apply_like();

        let loaded = LoadedSpec {
            path,
            spec,
            hash,
            effective_hash,
            source: source.into(),
            spans,
            refs,
            settings,
            instance: options.instance.map(str::to_owned),
        };
        loaded.check(options.known_providers)?;
        loaded.check_instance_places(&instance_at)?;
        Ok(loaded)
    }

    /// `file:line:col` of the key path (`environments.staging.provider`, `probes[0].http.url`),
    /// or of the nearest enclosing table that has a place.
    pub fn location_of(&self, key_path: &str) -> String {
        self.format_place(self.offset_of(key_path))
    }

    /// The byte offset of the key path, or of the nearest enclosing table that has one:
    /// what a reader keeps until a message needs the `line:col` (working that out counts
    /// the file's lines up to it, which reading thousands of tables must not do for each).
    pub(crate) fn offset_of(&self, key_path: &str) -> Option<usize> {
        let mut key = key_path;
        loop {
            if let Some(span) = self.spans.get(key) {
                return Some(span.start);
            }
            match key.rfind(['.', '[']) {
                Some(i) => key = &key[..i],
                None => return None,
            }
        }
    }

    /// `file:line:col` of an offset, or the file alone.
    pub(crate) fn format_place(&self, offset: Option<usize>) -> String {
        match offset {
            Some(at) => format!("{}:{}", self.path.display(), line_col(&self.source, at)),
            None => self.path.display().to_string(),
        }
    }

    /// An error at the place of `key_path`.
    pub fn error_at(&self, key_path: &str, message: impl Into<String>) -> Error {
        Error::config_at(self.location_of(key_path), message)
    }

    /// The directory paths in the spec are relative to.
    pub fn base_dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// `relative` resolved against the spec's directory.
    pub fn resolve_path(&self, relative: &str) -> PathBuf {
        let p = Path::new(relative);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir().join(p)
        }
    }

    /// Checks that span several tables.
    fn check(&self, known_providers: &[&str]) -> Result<()> {
        let spec = &self.spec;
        let envs: BTreeSet<&str> = spec.environments.keys().map(String::as_str).collect();
        let name_env = |key: &str, env: &str, what: &str| -> Result<()> {
            if envs.contains(env) {
                Ok(())
            } else {
                Err(self.error_at(
                    key,
                    format!(
                        "{what} names environment `{env}`, which is not declared (declared: {})",
                        join(&envs)
                    ),
                ))
            }
        };
        if spec.environments.is_empty() {
            return Err(self.error_at("environments", "the spec declares no environment"));
        }
        self.check_ephemeral()?;
        self.check_service_providers(known_providers)?;
        for (name, env) in &spec.environments {
            let base = format!("environments.{name}");
            if !known_providers.contains(&env.provider.as_str()) {
                return Err(self.error_at(
                    &format!("{base}.provider"),
                    format!(
                        "unknown provider `{}` for environment `{name}`; expected one of: {}",
                        env.provider,
                        known_providers.join(", ")
                    ),
                ));
            }
            if let Some(to) = &env.promotes_to {
                name_env(&format!("{base}.promotes_to"), to, "`promotes_to`")?;
                if to == name {
                    return Err(self.error_at(
                        &format!("{base}.promotes_to"),
                        "an environment cannot promote to itself",
                    ));
                }
            }
            if env.protected
                && env.promotes_to.is_some()
                && !spec
                    .environments
                    .values()
                    .any(|e| e.promotes_to.as_deref() == Some(name))
            {
                // A protected environment that nothing promotes to is reachable only by `up`;
                // allowed, but promotion rules cannot guard it. Nothing to report.
            }
        }
        for (svc, service) in &spec.services {
            for env in &service.shared_with {
                name_env(
                    &format!("services.{svc}.shared_with"),
                    env,
                    &format!("service `{svc}` `shared_with`"),
                )?;
            }
            for env in service.overrides.keys() {
                name_env(
                    &format!("services.{svc}.overrides.{env}"),
                    env,
                    &format!("service `{svc}` overrides"),
                )?;
            }
        }
        for (var, v) in &spec.vars {
            let base = format!("vars.{var}");
            for env in v.values.keys() {
                name_env(
                    &format!("{base}.values.{env}"),
                    env,
                    &format!("`{var}`.values"),
                )?;
            }
            for env in v.sources.keys() {
                name_env(
                    &format!("{base}.sources.{env}"),
                    env,
                    &format!("`{var}`.sources"),
                )?;
            }
            for env in v
                .rules
                .differs_from
                .iter()
                .chain(v.rules.same_as.iter())
                .chain(v.rules.forbid_in.iter())
            {
                name_env(&format!("{base}.rules"), env, &format!("a rule of `{var}`"))?;
            }
            if v.secret && (v.value.is_some() || !v.values.is_empty()) {
                return Err(self.error_at(
                    &base,
                    format!("`{var}` is a secret but has a plain `value`; give it a `source` (or the environment's `secrets` store) instead, so the value never sits in the spec"),
                ));
            }
            if !v.secret
                && (v.source.is_some() || !v.sources.is_empty())
                && (v.value.is_some() || !v.values.is_empty())
            {
                return Err(self.error_at(
                    &base,
                    format!("`{var}` has both a `value` and a `source`; keep one"),
                ));
            }
            for s in v.services.iter().flatten() {
                if !spec.services.contains_key(s) {
                    return Err(self.error_at(
                        &format!("{base}.services"),
                        format!("`{var}` is given to service `{s}`, which is not declared"),
                    ));
                }
            }
        }
        for (db, d) in &spec.databases {
            for env in &d.shared_with {
                name_env(
                    &format!("databases.{db}.shared_with"),
                    env,
                    &format!("database `{db}` `shared_with`"),
                )?;
            }
            if !spec.vars.contains_key(&d.url_var) {
                return Err(self.error_at(
                    &format!("databases.{db}.url_var"),
                    format!(
                        "database `{db}` takes its URL from `{}`, which is not declared in [vars]",
                        d.url_var
                    ),
                ));
            }
            if d.migrations
                .as_ref()
                .is_some_and(|m| m.dir.is_some() == m.command.is_some())
            {
                return Err(self.error_at(
                    &format!("databases.{db}.migrations"),
                    "migrations need exactly one of `dir` (the native SQL runner) or `command` (an external tool)",
                ));
            }
            if let Some(m) = &d.migrations {
                if m.versions_command.is_some() && m.command.is_none() {
                    return Err(self.error_at(
                        &format!("databases.{db}.migrations.versions_command"),
                        "`versions_command` lists the versions of a migration `command`; the native runner (`dir`) reads its versions from the files",
                    ));
                }
                for (key, argv) in [
                    ("command", &m.command),
                    ("versions_command", &m.versions_command),
                ] {
                    if argv
                        .as_ref()
                        .is_some_and(|a| a.first().is_none_or(|p| p.trim().is_empty()))
                    {
                        return Err(self.error_at(
                            &format!("databases.{db}.migrations.{key}"),
                            format!("`{key}` is empty: it needs at least the program to run"),
                        ));
                    }
                }
            }
            if let Some(b) = &d.branch {
                let (kind, name, parent) = match b {
                    BranchSpec::Neon(n) => ("neon", n.branch.as_str(), Some(n.parent.as_str())),
                    BranchSpec::Supabase(s) => ("supabase", s.branch.as_str(), None),
                };
                if name.trim().is_empty() {
                    return Err(self.error_at(
                        &format!("databases.{db}.branch.{kind}.branch"),
                        "the branch needs a name",
                    ));
                }
                // Spelled apart (a case or a space) is still the parent: a branch name that
                // differs from its parent's only so is refused like the same name.
                if parent.is_some_and(|p| p.trim().eq_ignore_ascii_case(name.trim())) {
                    return Err(self.error_at(
                        &format!("databases.{db}.branch.{kind}.branch"),
                        format!(
                            "database `{db}`: branch `{name}` is its own parent; an environment's branch is never the database it is copied from"
                        ),
                    ));
                }
                for env in b.environments() {
                    name_env(
                        &format!("databases.{db}.branch.{kind}.environments"),
                        env,
                        &format!("database `{db}` branch"),
                    )?;
                    if spec.environments.get(env).is_some_and(|e| e.protected) {
                        return Err(self.error_at(
                            &format!("databases.{db}.branch.{kind}.environments"),
                            format!(
                                "database `{db}`: `{env}` is protected; a branch that `staging refresh` resets can only be the database of an unprotected environment"
                            ),
                        ));
                    }
                }
            }
            if let Some(s) = &d.scrub
                && s.sql.is_empty() == s.command.is_none()
            {
                return Err(self.error_at(
                    &format!("databases.{db}.scrub"),
                    "a scrub needs exactly one of `sql` (files run in order) or `command`",
                ));
            }
            for (i, v) in d.scrub.iter().flat_map(|s| s.verify.iter()).enumerate() {
                let at = format!("databases.{db}.scrub.verify[{i}]");
                let ident = |s: &str| {
                    let mut c = s.chars();
                    c.next()
                        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
                        && c.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
                };
                let table_ok = {
                    let parts: Vec<&str> = v.table.split('.').collect();
                    parts.len() <= 2 && parts.iter().all(|p| ident(p))
                };
                if !table_ok {
                    return Err(self.error_at(
                        &format!("{at}.table"),
                        format!(
                            "`{}` is not a table name (`users` or `schema.table`: letters, digits, `_`)",
                            v.table
                        ),
                    ));
                }
                if !ident(&v.column) {
                    return Err(self.error_at(
                        &format!("{at}.column"),
                        format!("`{}` is not a column name (letters, digits, `_`)", v.column),
                    ));
                }
                if v.pattern.trim().is_empty() {
                    return Err(self.error_at(
                        &format!("{at}.pattern"),
                        "the pattern is empty: it would match every row",
                    ));
                }
            }
            for (i, domain) in d
                .scrub
                .iter()
                .flat_map(|s| s.allow_domains.iter())
                .enumerate()
            {
                let ok = !domain.is_empty()
                    && !domain.starts_with('.')
                    && domain
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
                if !ok {
                    return Err(self.error_at(
                        &format!("databases.{db}.scrub.allow_domains[{i}]"),
                        format!(
                            "`{domain}` is not an e-mail domain (`yourcompany.com`, without `@`)"
                        ),
                    ));
                }
            }
            for (key, argv) in [("seed", &d.seed), ("reset", &d.reset)] {
                if argv
                    .as_ref()
                    .is_some_and(|a| a.first().is_none_or(|p| p.trim().is_empty()))
                {
                    return Err(self.error_at(
                        &format!("databases.{db}.{key}"),
                        format!("`{key}` is empty: it needs at least the program to run"),
                    ));
                }
            }
        }
        let mut probe_names = BTreeSet::new();
        for (i, p) in spec.probes.iter().enumerate() {
            let base = format!("probes[{i}]");
            if !probe_names.insert(p.name.as_str()) {
                return Err(self.error_at(
                    &format!("{base}.name"),
                    format!("two probes are named `{}`", p.name),
                ));
            }
            let kinds = p.kinds();
            if kinds.len() != 1 {
                return Err(self.error_at(
                    &base,
                    format!(
                        "probe `{}` needs exactly one of http, steps, tls, dns, tcp, postgres, redis, command (found {})",
                        p.name,
                        if kinds.is_empty() { "none".to_owned() } else { kinds.join(", ") }
                    ),
                ));
            }
            let http_checks = p
                .http
                .iter()
                .map(|c| (format!("{base}.http.max_body"), c))
                .chain(
                    p.steps
                        .iter()
                        .flatten()
                        .enumerate()
                        .map(|(j, c)| (format!("{base}.steps[{j}].max_body"), c)),
                );
            for (at, c) in http_checks {
                if let Some(max) = c.max_body
                    && (max == 0 || max > crate::limits::MAX_PROBE_BODY_CEILING)
                {
                    return Err(self.error_at(
                        &at,
                        format!(
                            "probe `{}`: max_body of {} is outside 1 byte..{} (the ceiling on a probe's response body)",
                            p.name,
                            crate::limits::format_size(max),
                            crate::limits::format_size(crate::limits::MAX_PROBE_BODY_CEILING)
                        ),
                    ));
                }
            }
            for env in p.environments.iter().flatten() {
                name_env(
                    &format!("{base}.environments"),
                    env,
                    &format!("probe `{}`", p.name),
                )?;
            }
            let url_vars = p
                .postgres
                .as_ref()
                .map(|c| &c.url_var)
                .into_iter()
                .chain(p.redis.as_ref().map(|c| &c.url_var));
            for var in url_vars {
                if !spec.vars.contains_key(var) {
                    return Err(self.error_at(
                        &base,
                        format!(
                            "probe `{}` reads `{var}`, which is not declared in [vars]",
                            p.name
                        ),
                    ));
                }
            }
        }
        self.check_promotion_cycles()?;
        self.check_creations()?;
        for load::FoundRef { name, at, .. } in &self.refs {
            let name = name.as_str();
            let bad = if let Some(rest) = name.strip_prefix("services.") {
                match rest.split_once('.') {
                    Some((svc, "url")) if spec.services.contains_key(svc) => None,
                    Some((svc, "url")) => Some(format!(
                        "`${{{name}}}` names service `{svc}`, which is not declared"
                    )),
                    _ => Some(format!(
                        "`${{{name}}}`: a service has only `url` (write `${{services.NAME.url}}`)"
                    )),
                }
            } else if let Some(var) = name.strip_prefix("vars.") {
                (!spec.vars.contains_key(var)).then(|| {
                    format!("`${{{name}}}` names `{var}`, which is not declared in [vars]")
                })
            } else {
                None
            };
            if let Some(message) = bad {
                return Err(Error::config_at(
                    format!("{}:{}", self.path.display(), line_col(&self.source, *at)),
                    message,
                ));
            }
        }
        Ok(())
    }
}

/// Copy every `environments.*.settings`, `services.*.settings`, `datastores.*.settings` and
/// their `overrides.*` tables out of the parsed tree, with their places.
fn capture_settings(root: &DeTable<'_>) -> BTreeMap<String, settings::SettingsTree> {
    fn entries<'a, 'i>(
        value: &'a Spanned<DeValue<'i>>,
    ) -> impl Iterator<Item = (&'a str, &'a Spanned<DeValue<'i>>)> {
        value
            .get_ref()
            .as_table()
            .into_iter()
            .flat_map(|t| t.iter().map(|(k, v)| (k.get_ref().as_ref(), v)))
    }
    fn child<'a, 'i>(
        value: &'a Spanned<DeValue<'i>>,
        key: &str,
    ) -> Option<&'a Spanned<DeValue<'i>>> {
        entries(value).find(|(k, _)| *k == key).map(|(_, v)| v)
    }
    let mut out = BTreeMap::new();
    for (table, value) in root.iter() {
        match table.get_ref().as_ref() {
            "environments" => {
                for (env, e) in entries(value) {
                    if let Some(s) = child(e, "settings") {
                        out.insert(
                            format!("environments.{env}.settings"),
                            settings::SettingsTree::capture(s),
                        );
                    }
                    for (provider, s) in child(e, "provider_settings").into_iter().flat_map(entries)
                    {
                        out.insert(
                            format!("environments.{env}.provider_settings.{provider}"),
                            settings::SettingsTree::capture(s),
                        );
                    }
                }
            }
            table @ ("services" | "datastores") => {
                for (svc, v) in entries(value) {
                    if let Some(s) = child(v, "settings") {
                        out.insert(
                            format!("{table}.{svc}.settings"),
                            settings::SettingsTree::capture(s),
                        );
                    }
                    for (env, o) in child(v, "overrides").into_iter().flat_map(entries) {
                        out.insert(
                            format!("{table}.{svc}.overrides.{env}"),
                            settings::SettingsTree::capture(o),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn join(set: &BTreeSet<&str>) -> String {
    set.iter().copied().collect::<Vec<_>>().join(", ")
}

impl LoadedSpec {
    /// A `promotes_to` chain that comes back to where it started (a → b → a) is refused at
    /// the `promotes_to` of the first environment (by name) on the cycle.
    fn check_promotion_cycles(&self) -> Result<()> {
        // Each environment promotes to at most one: the graph is a set of chains, each
        // ending in nothing or in one cycle. One walk marks every environment once (linear
        // for a chain thousands long); of the cycles found, the one with the first name is
        // reported, starting at that name.
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            OnPath,
            Done,
        }
        let envs = &self.spec.environments;
        let mut marks: BTreeMap<&str, Mark> = BTreeMap::new();
        let mut cycles: Vec<Vec<&str>> = vec![];
        for start in envs.keys() {
            let mut path: Vec<&str> = vec![];
            let mut at = Some(start.as_str());
            while let Some(name) = at {
                match marks.get(name) {
                    Some(Mark::Done) => break,
                    Some(Mark::OnPath) => {
                        let from = path.iter().position(|p| *p == name).unwrap_or(0);
                        cycles.push(path[from..].to_vec());
                        break;
                    }
                    None => {}
                }
                marks.insert(name, Mark::OnPath);
                path.push(name);
                at = envs
                    .get(name)
                    .and_then(|e| e.promotes_to.as_deref())
                    .filter(|next| envs.contains_key(*next));
            }
            for name in path {
                marks.insert(name, Mark::Done);
            }
        }
        let first = cycles
            .into_iter()
            .filter_map(|c| {
                let i = (0..c.len()).min_by_key(|&i| c[i])?;
                let mut rotated: Vec<&str> = c[i..].iter().chain(&c[..i]).copied().collect();
                rotated.push(c[i]);
                Some(rotated)
            })
            .min_by_key(|c| c[0]);
        match first {
            Some(cycle) => Err(self.error_at(
                &format!("environments.{}.promotes_to", cycle[0]),
                format!(
                    "`promotes_to` forms a cycle: {}; promotion must lead from staging towards production and end",
                    cycle.join(" → ")
                ),
            )),
            None => Ok(()),
        }
    }
}
