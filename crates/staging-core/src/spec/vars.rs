//! `[vars.NAME]`: the environment variables services receive, where each comes from, and
//! the rules its value must satisfy.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::Template;

/// One environment variable.
///
/// A plain variable has a `value` (or per-environment `values`); a secret has `secret =
/// true` and is read from a source: its own `source`/`sources`, or else the environment's
/// default store (`[environments.X] secrets = ...`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Var {
    /// Whether the spec declares the value a secret. Read only by
    /// [`crate::secretness`], the one place that decides what is secret (a value from a
    /// store is one too), hence not public.
    #[serde(default)]
    pub(crate) secret: bool,
    /// A plain value for every environment (may use `${env}`, `${commit}` and process vars).
    #[serde(default)]
    pub value: Option<Template>,
    /// Plain values per environment, over `value`.
    #[serde(default)]
    pub values: BTreeMap<String, Template>,
    /// Where the value is read from in every environment.
    #[serde(default)]
    pub source: Option<SecretSource>,
    /// Where the value is read from, per environment, over `source`.
    #[serde(default)]
    pub sources: BTreeMap<String, SecretSource>,
    /// Whether a missing value is an error (default true).
    #[serde(default = "yes")]
    pub required: bool,
    /// The services that receive it (default: all).
    #[serde(default)]
    pub services: Option<Vec<String>>,
    /// The rules its value must satisfy.
    #[serde(default)]
    pub rules: Rules,
}

fn yes() -> bool {
    true
}

/// Where a value is read from.
///
/// As a variable's `source`, the key names the value (`env = "STRIPE_KEY"`). As an
/// environment's default `secrets` store, `env` is a prefix put before the variable's name
/// (`env = "STAGING_"` reads `STAGING_JWT_SECRET`), and `{key}` in a command is replaced by
/// the variable's name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SecretSource {
    /// A process environment variable (or a prefix, as an environment's default store).
    Env(String),
    /// A dotenv file (path relative to the spec); the key is the variable's name.
    Dotenv(String),
    /// A file whose whole content is the value (path relative to the spec).
    File(String),
    /// A program whose standard output is the value (`["op", "read", "op://vault/item"]`).
    Command(Vec<String>),
    /// A key of the secret store the environment's provider offers: on Render a datastore's
    /// connection string (`postgres:shop-db`, `key_value:cache`, `:internal` for the
    /// private URL), on AWS a Secrets Manager secret name (after the environment's
    /// `secrets_prefix`). As an environment's default store, the key is the variable's name.
    Provider(String),
    /// A key of the Supabase branch that is this environment's database
    /// (`[databases.NAME] branch = { supabase = {..} }`): `anon_key`, `service_role_key` or
    /// `database_url`. With several such databases, name one: `main.anon_key`. As an
    /// environment's default store, the key is the variable's name.
    Supabase(String),
}

/// What a value must satisfy.
///
/// Built-in checks apply to every variable that has a value unless switched off here: a
/// placeholder (empty, `PLACEHOLDER…`, `REPLACE…ME`, `changeme`, `TODO`, `xxx`, `<…>`,
/// `your-…-here`) is refused, and so is leading or trailing whitespace or a newline. A
/// `signing_key` additionally needs 32 characters and 128 bits of estimated entropy unless
/// `min_length` / `min_entropy_bits` say otherwise. Comparisons with other environments
/// (`differs_from`, `same_as`) use keyed fingerprints, never the values themselves.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// The kind of value.
    #[serde(default)]
    pub kind: Option<ValueKind>,
    /// Minimum length in characters.
    #[serde(default)]
    pub min_length: Option<usize>,
    /// Minimum estimated entropy in bits (for keys).
    #[serde(default)]
    pub min_entropy_bits: Option<f64>,
    /// Extra placeholder values to refuse, besides the built-in ones. Compared without
    /// regard to case; `*` matches any run of characters (`"sk_test_*"`).
    #[serde(default)]
    pub placeholders: Vec<String>,
    /// Switch off the built-in placeholder check (the configurable `placeholders` still
    /// apply). For a variable whose empty value is meaningful.
    #[serde(default)]
    pub allow_placeholders: bool,
    /// Allow leading or trailing whitespace (refused by default).
    #[serde(default)]
    pub allow_whitespace: bool,
    /// The value must differ from this environment's value (staging must not share
    /// production's signing keys).
    #[serde(default)]
    pub differs_from: Option<String>,
    /// The value must equal this environment's value (a shared organization id).
    #[serde(default)]
    pub same_as: Option<String>,
    /// Values that must not be set (a one-time seed flag left on: `["true", "1"]`).
    /// Compared without regard to case or surrounding whitespace.
    #[serde(default)]
    pub forbid: Vec<String>,
    /// Environments where `forbid` applies (default: all).
    #[serde(default)]
    pub forbid_in: Vec<String>,
    /// Values refused in protected environments only (a debug flag: `["true"]`).
    #[serde(default)]
    pub forbid_in_protected: Vec<String>,
    /// How many characters `staging secrets rotate` generates (default: `min_length`, at
    /// least 64).
    #[serde(default)]
    pub length: Option<usize>,
    /// The characters `staging secrets rotate` draws from (default: `alphanumeric`).
    #[serde(default)]
    pub alphabet: Option<Alphabet>,
}

/// The characters a generated value is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Alphabet {
    /// `0-9a-f`: 4 bits per character (Rails `SECRET_KEY_BASE`).
    Hex,
    /// `A-Za-z0-9`: about 5.95 bits per character.
    Alphanumeric,
    /// `A-Za-z0-9-_`: 6 bits per character, safe in URLs and env files.
    Base64url,
}

/// The kind of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    /// Any text.
    String,
    /// An absolute URL.
    Url,
    /// An integer.
    Integer,
    /// `true`/`false`/`1`/`0`/`yes`/`no`.
    Boolean,
    /// A PEM block (certificate or key).
    Pem,
    /// A key that signs sessions or tokens (JWT, `SECRET_KEY_BASE`): at least 32 characters
    /// and 128 bits of entropy unless the rules say otherwise.
    SigningKey,
}
