//! Provider settings, typed where they are read.
//!
//! Every provider declares the settings of an environment and of a service as Rust types
//! (`#[serde(deny_unknown_fields)]`, `schemars::JsonSchema`). The loader keeps each
//! `settings` and `overrides.ENV` table as written, with the place of every key and value
//! ([`SettingsTree`]). Core merges an environment's overrides onto the service's base table
//! key by key (tables recursively, any other value replaced) and deserializes the *merged*
//! table into the provider's type through toml's own deserializer, so serde's errors — an
//! unknown key, a wrong type, a missing field — point at the key or value as written, in
//! `settings` or in `overrides.ENV`, and an unknown key gets a "did you mean" suggestion.
//! No provider keeps a list of the keys it knows: its type is that list, and the JSON
//! Schema in `docs/` is generated from the same types ([`SettingsTypes`]).

use std::borrow::Cow;
use std::ops::Range;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{DeserializeOwned, IntoDeserializer};
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use super::template::{TRANSPORT_KEY, Template};
use super::{LoadedSpec, line_col};
use crate::error::{Error, Result};

/// One settings table as written in the spec: every key with its place, every string with
/// process variables already substituted. Other scalars are read again from the file's
/// text at their span when the table is deserialized.
#[derive(Debug, Clone)]
pub(crate) struct SettingsTree {
    span: Range<usize>,
    node: Node,
}

#[derive(Debug, Clone)]
enum Node {
    Table(Vec<Entry>),
    Array(Vec<SettingsTree>),
    String(String),
    /// Integer, float, boolean, datetime: its text is `source[span]`.
    Scalar,
}

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    key_span: Range<usize>,
    value: SettingsTree,
}

impl SettingsTree {
    /// Copy a parsed value (after substitution) out of the loader's tree.
    pub(crate) fn capture(value: &Spanned<DeValue<'_>>) -> Self {
        let node = match value.get_ref() {
            // A string holding a pipeline reference arrives in the template's transport form;
            // providers read such a setting (AWS `image = "app:${commit}"`) as spec text.
            DeValue::Table(t) if t.len() == 1 => match t.iter().next() {
                Some((k, v)) if k.get_ref().as_ref() == TRANSPORT_KEY => match v.get_ref() {
                    DeValue::String(json) => Node::String(
                        Template::decode(json)
                            .map(|t| t.to_source())
                            .unwrap_or_default(),
                    ),
                    _ => Node::Scalar,
                },
                _ => Node::Table(
                    t.iter()
                        .map(|(k, v)| Entry {
                            key: k.get_ref().to_string(),
                            key_span: k.span(),
                            value: SettingsTree::capture(v),
                        })
                        .collect(),
                ),
            },
            DeValue::Table(t) => Node::Table(
                t.iter()
                    .map(|(k, v)| Entry {
                        key: k.get_ref().to_string(),
                        key_span: k.span(),
                        value: SettingsTree::capture(v),
                    })
                    .collect(),
            ),
            DeValue::Array(items) => Node::Array(items.iter().map(SettingsTree::capture).collect()),
            DeValue::String(s) => Node::String(s.to_string()),
            _ => Node::Scalar,
        };
        SettingsTree {
            span: value.span(),
            node,
        }
    }

    /// An empty table placed at `span` (a table the spec does not write).
    fn empty(span: Range<usize>) -> Self {
        SettingsTree {
            span,
            node: Node::Table(vec![]),
        }
    }

    /// `self` with `over` merged onto it key by key: tables merge recursively, any other
    /// value (arrays included) is replaced, and a replaced key keeps the place it has in
    /// `over`.
    fn merged(&self, over: &SettingsTree) -> SettingsTree {
        let (Node::Table(base), Node::Table(top)) = (&self.node, &over.node) else {
            return over.clone();
        };
        let mut entries = base.clone();
        for e in top {
            match entries.iter_mut().find(|b| b.key == e.key) {
                Some(b) => {
                    b.value = b.value.merged(&e.value);
                    b.key_span = e.key_span.clone();
                }
                None => entries.push(e.clone()),
            }
        }
        SettingsTree {
            span: self.span.clone(),
            node: Node::Table(entries),
        }
    }

    /// The place of a key path (`service_name`, `ses.identities`) in this tree: a value's
    /// own place for a leaf, the key's for a table (as the loader's index does).
    fn span_of(&self, path: &str) -> Option<Range<usize>> {
        let mut node = self;
        let mut key_span = None;
        for part in path.split('.') {
            let Node::Table(entries) = &node.node else {
                return None;
            };
            let e = entries.iter().find(|e| e.key == part)?;
            key_span = Some(e.key_span.clone());
            node = &e.value;
        }
        match node.node {
            Node::Table(_) => key_span,
            _ => Some(node.span.clone()),
        }
    }

    /// This tree as toml's own spanned value, so toml's deserializer reports spans.
    fn to_de<'a>(&'a self, source: &'a str) -> Spanned<DeValue<'a>> {
        let value = match &self.node {
            Node::Table(entries) => {
                let mut t = DeTable::new();
                for e in entries {
                    t.insert(
                        Spanned::new(e.key_span.clone(), Cow::Borrowed(e.key.as_str())),
                        e.value.to_de(source),
                    );
                }
                DeValue::Table(t)
            }
            Node::Array(items) => {
                let mut a = DeArray::new();
                for item in items {
                    a.push(item.to_de(source));
                }
                DeValue::Array(a)
            }
            Node::String(s) => DeValue::String(Cow::Borrowed(s.as_str())),
            Node::Scalar => source
                .get(self.span.clone())
                .and_then(|text| DeValue::parse(text).ok())
                .map(Spanned::into_inner)
                .unwrap_or(DeValue::String(Cow::Borrowed(""))),
        };
        Spanned::new(self.span.clone(), value)
    }
}

/// Typed settings, with the place in the spec of every key they were read from, so a check
/// beyond the type (an id's prefix, two keys that exclude each other) points at the key.
#[derive(Debug, Clone)]
pub struct Settings<T> {
    /// The settings.
    pub value: T,
    tree: SettingsTree,
    /// The offset of the table itself (where a missing key is reported), made a
    /// `file:line:col` only for a message.
    place: Option<usize>,
    path: String,
    source_path: String,
    source: std::sync::Arc<str>,
}

impl<T> Settings<T> {
    /// `file:line:col` of `key` (a dotted path, `ses.identities`) as written — in
    /// `settings` or in `overrides.ENV`, wherever the merged value came from; the value's
    /// place for a leaf, the key's for a table — or of the table when the key is not
    /// written.
    pub fn location_of(&self, key: &str) -> String {
        match self.tree.span_of(key) {
            Some(span) => format!(
                "{}:{}",
                self.source_path,
                line_col(&self.source, span.start)
            ),
            None => match self.place {
                Some(at) => format!("{}:{}", self.source_path, line_col(&self.source, at)),
                None => self.source_path.clone(),
            },
        }
    }

    /// An error at the place of `key` (see [`Settings::location_of`]).
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> Error {
        Error::config_at(self.location_of(key), message)
    }

    /// Whether the spec writes `key` (a dotted path) in these settings.
    pub fn has(&self, key: &str) -> bool {
        self.tree.span_of(key).is_some()
    }

    /// The key path of the table in the spec (`services.web.settings`,
    /// `environments.staging.settings`), for messages.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl LoadedSpec {
    fn settings_tree(&self, path: &str, fallback: &str) -> SettingsTree {
        match self.settings.get(path) {
            Some(t) => t.clone(),
            None => SettingsTree::empty(self.spans.get(fallback).cloned().unwrap_or(0..0)),
        }
    }

    fn typed<T: DeserializeOwned>(
        &self,
        tree: SettingsTree,
        path: String,
        what: &str,
    ) -> Result<Settings<T>> {
        let place = self.offset_of(&path);
        let value = T::deserialize(tree.to_de(&self.source).into_deserializer()).map_err(|e| {
            let message = e.message().trim().replace('\n', " ");
            let message = match did_you_mean(&message) {
                Some(hint) => format!("{what}: {message}; did you mean `{hint}`?"),
                None => format!("{what}: {message}"),
            };
            match e.span() {
                Some(span) => Error::config_at(
                    format!(
                        "{}:{}",
                        self.path.display(),
                        line_col(&self.source, span.start)
                    ),
                    message,
                ),
                None => Error::config_at(self.format_place(place), message),
            }
        })?;
        Ok(Settings {
            value,
            tree,
            place,
            path,
            source_path: self.path.display().to_string(),
            source: self.source.clone(),
        })
    }

    /// `[environments.ENV.settings]`, deserialized into the provider's type `T`.
    pub fn environment_settings<T: DeserializeOwned>(
        &self,
        environment: &str,
    ) -> Result<Settings<T>> {
        let env = self.spec.environment(environment)?;
        let path = format!("environments.{environment}.settings");
        let tree = self.settings_tree(&path, &format!("environments.{environment}"));
        self.typed(
            tree,
            path,
            &format!(
                "settings of environment `{environment}` on {}",
                env.provider
            ),
        )
    }

    /// The settings of service `service` in `environment`: `[services.NAME.settings]` with
    /// `[services.NAME.overrides.ENV]` merged onto it key by key, deserialized into the
    /// provider's type `T`. An unknown or misspelt key in either table is an error at its
    /// place.
    pub fn service_settings<T: DeserializeOwned>(
        &self,
        service: &str,
        environment: &str,
    ) -> Result<Settings<T>> {
        if !self.spec.services.contains_key(service) {
            return Err(Error::config(format!("no service `{service}` in the spec")));
        }
        self.merged_settings("services", service, environment)
    }

    /// `[TABLE.NAME.settings]` with `[TABLE.NAME.overrides.ENV]` merged onto it, typed: a
    /// service's (`services`) or a datastore's (`datastores`) settings.
    pub(crate) fn merged_settings<T: DeserializeOwned>(
        &self,
        table: &str,
        name: &str,
        environment: &str,
    ) -> Result<Settings<T>> {
        let env = self.spec.environment(environment)?;
        let base_path = format!("{table}.{name}.settings");
        let base = self.settings_tree(&base_path, &format!("{table}.{name}"));
        let over_path = format!("{table}.{name}.overrides.{environment}");
        let (tree, path) = match self.settings.get(&over_path) {
            Some(over) => (base.merged(over), format!("{base_path} + {over_path}")),
            None => (base, base_path.clone()),
        };
        let what = match table {
            "services" => "service",
            _ => "datastore",
        };
        let mut settings = self.typed(
            tree,
            base_path,
            &format!(
                "{what} `{name}` in environment `{environment}` on {}",
                env.provider
            ),
        )?;
        settings.path = path;
        Ok(settings)
    }
}

/// The closest of the expected names in a serde "unknown field/variant" message, when it is
/// close enough to be a typo.
pub fn did_you_mean(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))?;
    let (given, expected) = rest.split_once('`')?;
    let expected = expected.split_once("expected")?.1;
    closest(given, expected.split('`').skip(1).step_by(2))
}

/// The candidate closest to `given`, when it is close enough to be a typo of it (an
/// environment name, a key).
pub fn closest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::damerau_levenshtein(given, candidate), candidate))
        .filter(|(d, c)| *d <= (c.chars().count() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_owned())
}

/// The types of one provider's settings: what core deserializes `environments.*.settings`
/// and each service's merged settings into, and what the JSON Schema describes. Built with
/// [`SettingsTypes::of`] from the provider's own types.
#[derive(Clone, Copy)]
pub struct SettingsTypes {
    check: fn(&LoadedSpec, &str) -> Result<()>,
    environment_schema: fn(&mut SchemaGenerator) -> Schema,
    service_schema: fn(&mut SchemaGenerator) -> Schema,
    /// The provider's datastore settings type, when it creates datastores.
    datastore: Option<DatastoreType>,
}

#[derive(Clone, Copy)]
struct DatastoreType {
    check: fn(&LoadedSpec, &str, &str) -> Result<()>,
    schema: fn(&mut SchemaGenerator) -> Schema,
}

fn check_datastore<D: DeserializeOwned>(
    spec: &LoadedSpec,
    datastore: &str,
    environment: &str,
) -> Result<()> {
    spec.datastore_settings::<D>(datastore, environment)
        .map(drop)
}

impl std::fmt::Debug for SettingsTypes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingsTypes").finish_non_exhaustive()
    }
}

fn check_typed<E: DeserializeOwned, S: DeserializeOwned>(
    spec: &LoadedSpec,
    environment: &str,
) -> Result<()> {
    spec.environment_settings::<E>(environment)?;
    for service in spec.spec.services.keys() {
        spec.service_settings::<S>(service, environment)?;
    }
    Ok(())
}

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

impl SettingsTypes {
    /// A provider whose environments are configured by `E` and whose services by `S`.
    pub fn of<E, S>() -> Self
    where
        E: DeserializeOwned + JsonSchema,
        S: DeserializeOwned + JsonSchema,
    {
        SettingsTypes {
            check: check_typed::<E, S>,
            environment_schema: schema_of::<E>,
            service_schema: schema_of::<S>,
            datastore: None,
        }
    }

    /// The same, for a provider that creates datastores (`[datastores.NAME]`) configured by
    /// `D`.
    pub fn with_datastores<D>(mut self) -> Self
    where
        D: DeserializeOwned + JsonSchema,
    {
        self.datastore = Some(DatastoreType {
            check: check_datastore::<D>,
            schema: schema_of::<D>,
        });
        self
    }

    /// Deserialize the environment's settings, every service's merged settings and every
    /// datastore's: any unknown key, wrong type or missing field is an error at its place.
    /// A datastore to create in an environment whose provider creates none is an error at
    /// its `create`.
    pub fn check(&self, spec: &LoadedSpec, environment: &str) -> Result<()> {
        (self.check)(spec, environment)?;
        for (name, d) in &spec.spec.datastores {
            match self.datastore {
                Some(t) => (t.check)(spec, name, environment)?,
                None if d.create.as_ref().is_some_and(|c| c.applies_to(environment)) => {
                    let provider = &spec.spec.environment(environment)?.provider;
                    return Err(spec.error_at(
                        &format!("datastores.{name}.create"),
                        format!(
                            "datastore `{name}` is to be created in `{environment}`, but {provider} creates no datastores"
                        ),
                    ));
                }
                None => {}
            }
        }
        Ok(())
    }

    pub(crate) fn schemas(&self, generator: &mut SchemaGenerator) -> (Schema, Schema) {
        (
            (self.environment_schema)(generator),
            (self.service_schema)(generator),
        )
    }

    pub(crate) fn datastore_schema(&self, generator: &mut SchemaGenerator) -> Option<Schema> {
        self.datastore.map(|t| (t.schema)(generator))
    }
}

/// The JSON Schema of the spec format with each provider's settings: an environment's
/// `settings` must match the type of its `provider` (`if`/`then` on `provider`); a
/// service's `settings` and `overrides.ENV` must match the service type of some registered
/// provider, and the one provider's when every environment uses it. A service or datastore
/// table may be partial (the merge with the overrides completes it), so its `required`
/// lists are dropped; `validate` checks the merged table in full. Its `$id` is [`crate::spec::SCHEMA_ID`].
pub fn json_schema_with(providers: &[(&str, SettingsTypes)]) -> serde_json::Value {
    use serde_json::{Value, json};
    let mut generator = SchemaGenerator::default();
    let schemas: Vec<(&str, Value, Value)> = providers
        .iter()
        .map(|(name, types)| {
            let (env, svc) = types.schemas(&mut generator);
            (*name, env.to_value(), svc.to_value())
        })
        .collect();
    let datastores: Vec<Value> = providers
        .iter()
        .filter_map(|(_, types)| types.datastore_schema(&mut generator))
        .map(|s| s.to_value())
        .collect();
    let mut root = generator.into_root_schema_for::<super::Spec>().to_value();
    let defs = &mut root["$defs"];
    // Service and datastore settings may be partial (`kind` in `settings`, a plan only in
    // `overrides.ENV`): strip `required` from their types; `validate` checks the merge.
    for svc in schemas.iter().map(|(_, _, svc)| svc).chain(&datastores) {
        if let Some(name) = svc["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/$defs/"))
            && let Some(def) = defs.get_mut(name).and_then(Value::as_object_mut)
        {
            def.remove("required");
        }
    }
    let env_rules: Vec<Value> = schemas
        .iter()
        .map(|(name, env, _)| {
            json!({
                "if": { "properties": { "provider": { "const": name } }, "required": ["provider"] },
                "then": { "properties": { "settings": env } }
            })
        })
        .collect();
    if let Some(env) = defs.get_mut("Environment").and_then(Value::as_object_mut) {
        env.insert("allOf".into(), Value::Array(env_rules));
        // `provider_settings.NAME` is NAME's environment settings.
        if let Some(ps) = env
            .get_mut("properties")
            .and_then(|p| p.get_mut("provider_settings"))
            .and_then(Value::as_object_mut)
        {
            let by_name: serde_json::Map<String, Value> = schemas
                .iter()
                .map(|(name, env, _)| ((*name).to_owned(), env.clone()))
                .collect();
            ps.insert("properties".into(), Value::Object(by_name));
        }
    }
    let any_service: Vec<Value> = schemas.iter().map(|(_, _, s)| s.clone()).collect();
    // A service on a provider of its own (`provider = "netlify"`) has that provider's type.
    let service_rules: Vec<Value> = schemas
        .iter()
        .map(|(name, _, svc)| {
            json!({
                "if": { "properties": { "provider": { "const": name } }, "required": ["provider"] },
                "then": {
                    "properties": {
                        "settings": svc,
                        "overrides": { "additionalProperties": svc }
                    }
                }
            })
        })
        .collect();
    if let Some(service) = defs.get_mut("Service").and_then(Value::as_object_mut) {
        service.insert("allOf".into(), Value::Array(service_rules));
    }
    if let Some(props) = defs
        .get_mut("Service")
        .and_then(|s| s.get_mut("properties"))
        .and_then(Value::as_object_mut)
    {
        if let Some(settings) = props.get_mut("settings").and_then(Value::as_object_mut) {
            settings.insert("anyOf".into(), Value::Array(any_service.clone()));
        }
        if let Some(over) = props.get_mut("overrides").and_then(Value::as_object_mut) {
            over.insert(
                "additionalProperties".into(),
                json!({ "type": "object", "anyOf": any_service }),
            );
        }
    }
    if !datastores.is_empty()
        && let Some(props) = defs
            .get_mut("Datastore")
            .and_then(|s| s.get_mut("properties"))
            .and_then(Value::as_object_mut)
    {
        if let Some(settings) = props.get_mut("settings").and_then(Value::as_object_mut) {
            settings.insert("anyOf".into(), Value::Array(datastores.clone()));
        }
        if let Some(over) = props.get_mut("overrides").and_then(Value::as_object_mut) {
            over.insert(
                "additionalProperties".into(),
                json!({ "type": "object", "anyOf": datastores }),
            );
        }
    }
    let one_provider: Vec<Value> = schemas
        .iter()
        .map(|(name, _, svc)| {
            json!({
                "if": {
                    "properties": {
                        "environments": {
                            "additionalProperties": { "properties": { "provider": { "const": name } } }
                        }
                    }
                },
                "then": {
                    "properties": {
                        "services": {
                            "additionalProperties": {
                                // A service on a provider of its own is not the
                                // environments' provider's.
                                "if": { "required": ["provider"] },
                                "else": {
                                    "properties": {
                                        "settings": svc,
                                        "overrides": { "additionalProperties": svc }
                                    }
                                }
                            }
                        }
                    }
                }
            })
        })
        .collect();
    if let Some(obj) = root.as_object_mut() {
        obj.insert("allOf".into(), Value::Array(one_provider));
        obj.insert("$id".into(), Value::from(super::SCHEMA_ID));
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_gets_the_closest_name() {
        let m =
            "unknown field `servce_name`, expected one of `service_id`, `service_name`, `owner_id`";
        assert_eq!(did_you_mean(m).as_deref(), Some("service_name"));
        let m = "unknown field `prot_env`, expected one of `command`, `port_env`, `port`";
        assert_eq!(did_you_mean(m).as_deref(), Some("port_env"));
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Svc {
        name: String,
        #[serde(default)]
        size: Option<u32>,
        #[serde(default)]
        check: Option<Check>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Check {
        path: String,
        #[serde(default)]
        every: Option<u32>,
    }

    fn load(text: &str) -> LoadedSpec {
        LoadedSpec::parse(
            "staging.toml",
            text.to_owned(),
            crate::spec::LoadOptions::new(&["p"]),
        )
        .unwrap()
    }

    const TWO: &str = "[project]\nname = \"x\"\n[environments.staging]\nprovider = \"p\"\n[environments.production]\nprovider = \"p\"\n";

    #[test]
    fn overrides_merge_key_by_key_and_tables_recursively() {
        let spec = load(&format!(
            "{TWO}[services.web.settings]\nname = \"web\"\nsize = 1\ncheck = {{ path = \"/up\", every = 5 }}\n[services.web.overrides.staging]\nname = \"web-staging\"\ncheck = {{ every = 9 }}\n"
        ));
        let s = spec.service_settings::<Svc>("web", "staging").unwrap();
        assert_eq!(s.value.name, "web-staging");
        assert_eq!(s.value.size, Some(1));
        let check = s.value.check.as_ref().unwrap();
        assert_eq!((check.path.as_str(), check.every), ("/up", Some(9)));
        // Each key's place is where its merged value was written.
        assert_eq!(s.location_of("name"), "staging.toml:12:8");
        assert_eq!(s.location_of("size"), "staging.toml:9:8");
        let p = spec.service_settings::<Svc>("web", "production").unwrap();
        assert_eq!(p.value.name, "web");
    }

    #[test]
    fn a_typo_in_a_nested_override_table_is_reported_where_it_is_written() {
        let spec = load(&format!(
            "{TWO}[services.web.settings]\nname = \"web\"\ncheck = {{ path = \"/up\" }}\n[services.web.overrides.staging]\ncheck = {{ evry = 9 }}\n"
        ));
        let err = spec
            .service_settings::<Svc>("web", "staging")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("staging.toml:11:11: ") && err.contains("did you mean `every`?"),
            "{err}"
        );
        // Production has no such override: its merged table is fine.
        spec.service_settings::<Svc>("web", "production").unwrap();
    }

    #[test]
    fn a_missing_field_is_reported_at_the_table() {
        let spec = load(&format!("{TWO}[services.web.settings]\nsize = 1\n"));
        let err = spec
            .service_settings::<Svc>("web", "staging")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `name`"), "{err}");
        assert!(err.starts_with("staging.toml:"), "{err}");
    }

    #[test]
    fn an_unrelated_name_gets_no_suggestion() {
        let m = "unknown field `colour`, expected one of `service_id`, `service_name`";
        assert_eq!(did_you_mean(m), None);
        assert_eq!(did_you_mean("unknown field `x`, there are no fields"), None);
        assert_eq!(did_you_mean("invalid type: integer"), None);
    }
}
