//! The spec file (`staging.toml`): its model, loading with `file:line:col` errors, `${VAR}`
//! interpolation, and the checks that span more than one table.
//!
//! Loading goes in three passes over one parse: the TOML is parsed into a tree that keeps
//! every span; process environment variables are substituted in every string of that tree
//! (an undefined one is an error at its own column); then the typed [`Spec`] is deserialized
//! from the tree, so serde's errors (unknown key, wrong type) carry the span of the offending
//! key or value. Checks across tables (an unknown provider, a `promotes_to` naming no
//! environment) use an index of spans by key path.

mod databases;
pub mod interp;
mod model;
mod probes;
mod vars;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::IntoDeserializer;
use sha2::{Digest, Sha256};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub use databases::{Database, Migrations};
pub use model::{Environment, Project, Service, Spec};
pub use probes::{
    CommandCheck, DnsCheck, HttpCheck, HttpExpect, PostgresCheck, ProbeSpec, RedisCheck, TcpCheck,
    TlsCheck,
};
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

/// A spec as loaded from a file: the typed model, plus what is needed to point at a place in
/// the file.
#[derive(Debug, Clone)]
pub struct LoadedSpec {
    /// The file it was read from.
    pub path: PathBuf,
    /// The typed spec, process environment variables substituted.
    pub spec: Spec,
    /// SHA-256 of the file's bytes, hex: the spec hash evidence is keyed by.
    pub hash: String,
    source: String,
    spans: BTreeMap<String, Range<usize>>,
}

/// How to load a spec.
#[derive(Clone, Copy)]
pub struct LoadOptions<'a> {
    /// Looks up a process environment variable.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// The providers that can be named in `environments.*.provider`.
    pub known_providers: &'a [&'a str],
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
        }
    }
}

impl LoadedSpec {
    /// Read and check the spec at `path`.
    pub fn load(path: impl AsRef<Path>, options: LoadOptions<'_>) -> Result<Self> {
        let path = path.as_ref();
        let source = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("cannot read spec {}", path.display()), e))?;
        Self::parse(path, source, options)
    }

    /// Check a spec already in memory; `path` is used in messages and to resolve relative
    /// paths.
    pub fn parse(path: impl AsRef<Path>, source: String, options: LoadOptions<'_>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let hash = hex::encode(Sha256::digest(source.as_bytes()));
        let at = |span: Option<Range<usize>>| match span {
            Some(s) => format!("{}:{}", path.display(), line_col(&source, s.start)),
            None => path.display().to_string(),
        };

        let mut tree = DeTable::parse(&source).map_err(|e| {
            Error::config_at(
                at(e.span()),
                format!("invalid TOML: {}", e.message().trim()),
            )
        })?;

        let mut spans = BTreeMap::new();
        let mut problems = vec![];
        let mut walker = Walker {
            env: options.env,
            spans: &mut spans,
            problems: &mut problems,
        };
        walker.table(String::new(), tree.get_mut());
        if let Some((span, message)) = problems.into_iter().next() {
            return Err(Error::config_at(at(Some(span)), message));
        }

        let spec = Spec::deserialize(tree.into_deserializer())
            .map_err(|e| Error::config_at(at(e.span()), e.message().trim().replace('\n', " ")))?;

        let loaded = LoadedSpec {
            path,
            spec,
            hash,
            source,
            spans,
        };
        loaded.check(options.known_providers)?;
        Ok(loaded)
    }

    /// `file:line:col` of the key path (`environments.staging.provider`, `probes[0].http.url`),
    /// or of the nearest enclosing table that has a place.
    pub fn location_of(&self, key_path: &str) -> String {
        let mut key = key_path;
        loop {
            if let Some(span) = self.spans.get(key) {
                return format!(
                    "{}:{}",
                    self.path.display(),
                    line_col(&self.source, span.start)
                );
            }
            match key.rfind(['.', '[']) {
                Some(i) => key = &key[..i],
                None => return self.path.display().to_string(),
            }
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

    /// The spans of every `${...}` pipeline reference, by key path, for later checks.
    fn pipeline_refs(&self) -> Vec<(String, String)> {
        let mut out = vec![];
        for key in self.spans.keys().filter(|k| k.ends_with("#ref")) {
            if let Some((path, name)) = key.trim_end_matches("#ref").split_once('|') {
                out.push((path.to_owned(), name.to_owned()));
            }
        }
        out
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
        for (path, name) in self.pipeline_refs() {
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
                    self.location_of(&format!("{path}|{name}#ref")),
                    message,
                ));
            }
        }
        Ok(())
    }
}

fn join(set: &BTreeSet<&str>) -> String {
    set.iter().copied().collect::<Vec<_>>().join(", ")
}

/// `line:col` (both from 1; col in characters) of a byte offset.
pub fn line_col(source: &str, offset: usize) -> String {
    let offset = offset.min(source.len());
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    format!("{line}:{col}")
}

/// Walks the parsed tree: records spans by key path, substitutes process variables, and
/// collects problems with their spans.
struct Walker<'w> {
    env: &'w dyn Fn(&str) -> Option<String>,
    spans: &'w mut BTreeMap<String, Range<usize>>,
    problems: &'w mut Vec<(Range<usize>, String)>,
}

impl Walker<'_> {
    fn table(&mut self, path: String, table: &mut DeTable<'_>) {
        for (key, value) in table.iter_mut() {
            let child = if path.is_empty() {
                key.get_ref().to_string()
            } else {
                format!("{path}.{}", key.get_ref())
            };
            self.spans.insert(child.clone(), key.span());
            self.value(child, value);
        }
    }

    fn value(&mut self, path: String, value: &mut Spanned<DeValue<'_>>) {
        let span = value.span();
        // Leaves point at their value, tables at their key.
        if !matches!(value.get_ref(), DeValue::Table(_)) {
            self.spans.insert(path.clone(), span.clone());
        }
        match value.get_mut() {
            DeValue::String(s) => self.string(&path, span, s),
            DeValue::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let child = format!("{path}[{i}]");
                    self.spans.insert(child.clone(), item.span());
                    self.value(child, item);
                }
            }
            DeValue::Table(t) => self.table(path, t),
            _ => {}
        }
    }

    fn string(&mut self, path: &str, span: Range<usize>, s: &mut std::borrow::Cow<'_, str>) {
        // The string's span covers its quotes; offsets inside map 1:1 only for basic strings
        // without escapes, which is where `${` appears in practice. Point at the reference
        // when we can, at the string otherwise.
        let content_start = span.start + 1;
        let env = self.env;
        let lookup = |name: &str| {
            if interp::is_pipeline_name(name) {
                None
            } else {
                env(name)
            }
        };
        match interp::substitute(s, &lookup) {
            Err(e) => self
                .problems
                .push((content_start + e.offset..span.end, e.message)),
            Ok((out, unknown)) => {
                for r in unknown {
                    let at = content_start + r.offset..span.end;
                    if interp::is_pipeline_name(&r.name) {
                        self.spans.insert(format!("{path}|{}#ref", r.name), at);
                    } else {
                        self.problems.push((
                            at,
                            format!(
                                "undefined variable `${{{}}}`: it is not set in the environment, has no default (`${{{0}:-default}}`), and is not one of the pipeline's (commit, env, project, services.NAME.url, vars.NAME, capture.NAME)",
                                r.name
                            ),
                        ));
                    }
                }
                if let std::borrow::Cow::Owned(new) = out {
                    *s = std::borrow::Cow::Owned(new);
                }
            }
        }
    }
}
