//! The stores of this crate: the process environment, a dotenv file, a plain file (or a
//! directory of them) and a command. Provider crates add their own.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use staging_core::redact::Redactor;
use staging_core::spec::{LoadedSpec, SecretSource};
use staging_core::{DynSecretStore, Error, Result, SecretBackends, SecretStore};
use tokio::io::AsyncReadExt;

use crate::{dotenv, write};

/// How long a command store may run before it is killed.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of a failing command's standard error is shown (after redaction).
const STDERR_SHOWN: usize = 600;

/// The process environment, optionally under a prefix (`STAGING_` reads `STAGING_<key>`).
///
/// Read-only: a process cannot meaningfully change the environment of whoever started it.
#[derive(Debug, Clone, Default)]
pub struct EnvStore {
    prefix: String,
}

impl EnvStore {
    /// Read `<prefix><key>`.
    pub fn new(prefix: impl Into<String>) -> Self {
        EnvStore {
            prefix: prefix.into(),
        }
    }
}

#[async_trait]
impl SecretStore for EnvStore {
    fn describe(&self) -> String {
        if self.prefix.is_empty() {
            "env".to_owned()
        } else {
            format!("env:{}*", self.prefix)
        }
    }

    fn writable(&self) -> bool {
        false
    }

    async fn get(&self, key: &str) -> Result<Option<SecretString>> {
        let name = format!("{}{key}", self.prefix);
        match std::env::var_os(&name) {
            None => Ok(None),
            Some(v) => v
                .into_string()
                .map(|s| Some(SecretString::from(s)))
                .map_err(|_| {
                    Error::failed(format!("environment variable {name} is not valid UTF-8"))
                }),
        }
    }

    async fn put(&self, _key: &str, _value: &SecretString) -> Result<()> {
        Err(Error::not_supported(
            self.describe(),
            "writing (set the variable where the process is started)",
        ))
    }

    async fn list(&self, prefix: Option<&str>) -> Result<Vec<String>> {
        let mut keys: Vec<String> = std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .filter_map(|k| k.strip_prefix(&self.prefix).map(str::to_owned))
            .filter(|k| prefix.is_none_or(|p| k.starts_with(p)))
            .collect();
        keys.sort();
        Ok(keys)
    }
}

/// A dotenv file; see the syntax the parser accepts in the crate's `dotenv` module docs:
/// `export`, comments, single and double quotes with escapes, no `$VAR` expansion.
///
/// Writable: [`SecretStore::put`] rewrites only the entry of that key (or appends one),
/// atomically, keeping every other byte.
#[derive(Debug, Clone)]
pub struct DotenvStore {
    path: PathBuf,
    shown: String,
}

impl DotenvStore {
    /// The dotenv file at `path`; `shown` is how it is named in messages (the path as
    /// written in the spec).
    pub fn new(path: impl Into<PathBuf>, shown: impl Into<String>) -> Self {
        DotenvStore {
            path: path.into(),
            shown: shown.into(),
        }
    }

    async fn read(&self) -> Result<Option<String>> {
        write::clean_up_after_killed_writers(&self.path);
        match tokio::fs::read_to_string(&self.path).await {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(
                format!("cannot read dotenv file {}", self.shown),
                e,
            )),
        }
    }

    fn syntax(&self, e: dotenv::ParseError) -> Error {
        Error::config_at(format!("{}:{}", self.shown, e.line), e.message)
    }
}

#[async_trait]
impl SecretStore for DotenvStore {
    fn describe(&self) -> String {
        format!("dotenv:{}", self.shown)
    }

    fn writable(&self) -> bool {
        true
    }

    async fn get(&self, key: &str) -> Result<Option<SecretString>> {
        match self.read().await? {
            None => Ok(None),
            Some(text) => dotenv::lookup(&text, key).map_err(|e| self.syntax(e)),
        }
    }

    /// Under the file's lock (see [`crate::write`]): re-read, set the one entry, replace.
    async fn put(&self, key: &str, value: &SecretString) -> Result<()> {
        let store = self.clone();
        let key = key.to_owned();
        let value = value.clone();
        blocking(move || {
            let shown = format!("dotenv file {}", store.shown);
            write::locked_update(&store.path, &shown, |text| {
                dotenv::set(&text.unwrap_or_default(), &key, &value)
                    .map(String::into_bytes)
                    .map_err(|e| store.syntax(e))
            })
        })
        .await
    }

    async fn list(&self, prefix: Option<&str>) -> Result<Vec<String>> {
        let text = self.read().await?.unwrap_or_default();
        let mut keys: Vec<String> = dotenv::parse(&text)
            .map_err(|e| self.syntax(e))?
            .into_iter()
            .map(|e| e.key)
            .filter(|k| prefix.is_none_or(|p| k.starts_with(p)))
            .collect();
        keys.sort();
        keys.dedup();
        Ok(keys)
    }
}

/// Files whose whole content is a value, exactly as stored: a trailing newline is part of
/// the value (the whitespace rule reports it; nothing here trims it away).
///
/// Either one file for one variable, or a directory with one file per key (as Docker and
/// Kubernetes mount secrets: `/run/secrets/JWT_SECRET`), or a path with `{key}` in it.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
    shown: String,
    layout: FileLayout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileLayout {
    Single,
    PerKey,
}

impl FileStore {
    /// One file holding one value; the key asked for is ignored.
    pub fn single(path: impl Into<PathBuf>, shown: impl Into<String>) -> Self {
        FileStore {
            path: path.into(),
            shown: shown.into(),
            layout: FileLayout::Single,
        }
    }

    /// One file per key: `{key}` in `path` is replaced by the key, or, without `{key}`,
    /// `path` is a directory and the key is the file's name.
    pub fn per_key(path: impl Into<PathBuf>, shown: impl Into<String>) -> Self {
        FileStore {
            path: path.into(),
            shown: shown.into(),
            layout: FileLayout::PerKey,
        }
    }

    fn path_for(&self, key: &str) -> Result<PathBuf> {
        if self.layout == FileLayout::Single {
            return Ok(self.path.clone());
        }
        if key.is_empty() || key.contains(['/', '\\']) || key == "." || key == ".." {
            return Err(Error::config(format!(
                "`{key}` cannot name a file in {}",
                self.shown
            )));
        }
        let template = self.path.to_string_lossy();
        if template.contains("{key}") {
            Ok(PathBuf::from(template.replace("{key}", key)))
        } else {
            Ok(self.path.join(key))
        }
    }
}

#[async_trait]
impl SecretStore for FileStore {
    fn describe(&self) -> String {
        format!("file:{}", self.shown)
    }

    fn writable(&self) -> bool {
        true
    }

    async fn get(&self, key: &str) -> Result<Option<SecretString>> {
        let path = self.path_for(key)?;
        write::clean_up_after_killed_writers(&path);
        match tokio::fs::read(&path).await {
            Ok(bytes) => String::from_utf8(bytes)
                .map(|s| Some(SecretString::from(s)))
                .map_err(|_| Error::failed(format!("{} is not valid UTF-8 text", self.describe()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("cannot read {}", self.describe()), e)),
        }
    }

    async fn put(&self, key: &str, value: &SecretString) -> Result<()> {
        let path = self.path_for(key)?;
        let shown = self.describe();
        let value = value.clone();
        blocking(move || {
            write::locked_update(&path, &shown, |_| {
                Ok(value.expose_secret().as_bytes().to_vec())
            })
        })
        .await
    }

    async fn list(&self, prefix: Option<&str>) -> Result<Vec<String>> {
        if self.layout == FileLayout::Single || self.path.to_string_lossy().contains("{key}") {
            return Err(Error::not_supported(self.describe(), "listing keys"));
        }
        let mut keys = vec![];
        let mut dir = match tokio::fs::read_dir(&self.path).await {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(keys),
            Err(e) => return Err(Error::io(format!("cannot list {}", self.describe()), e)),
        };
        while let Some(entry) = dir
            .next_entry()
            .await
            .map_err(|e| Error::io(format!("cannot list {}", self.describe()), e))?
        {
            let is_file = entry
                .file_type()
                .await
                .map(|t| t.is_file())
                .unwrap_or(false);
            if let (true, Ok(name)) = (is_file, entry.file_name().into_string())
                && prefix.is_none_or(|p| name.starts_with(p))
            {
                keys.push(name);
            }
        }
        keys.sort();
        Ok(keys)
    }
}

/// A program whose standard output is the value: `op read op://vault/item/field`,
/// `doppler secrets get KEY --plain`, `aws secretsmanager get-secret-value ...`.
///
/// `{key}` in any argument is replaced by the key asked for. The program runs in the spec's
/// directory with no standard input, and is killed after the timeout. Exactly one final line
/// ending (`\n` or `\r\n`) is removed from the output, since every such tool prints one; any
/// more whitespace stays part of the value and the whitespace rule reports it. On failure the
/// error shows the exit status and the redacted standard error, never standard output.
/// Read-only.
#[derive(Clone)]
pub struct CommandStore {
    argv: Vec<String>,
    dir: Option<PathBuf>,
    timeout: Duration,
}

impl std::fmt::Debug for CommandStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Arguments may hold tokens substituted from the environment when the spec loaded.
        f.debug_struct("CommandStore")
            .field("program", &self.program())
            .field("args", &self.argv.len().saturating_sub(1))
            .field("dir", &self.dir)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl CommandStore {
    /// Run `argv` (program and arguments; `{key}` is replaced by the key).
    pub fn new(argv: Vec<String>) -> Result<Self> {
        if argv.first().is_none_or(|p| p.is_empty()) {
            return Err(Error::config(
                "a command store needs a program to run (`command = [\"op\", \"read\", \"...\"]`)",
            ));
        }
        Ok(CommandStore {
            argv,
            dir: None,
            timeout: DEFAULT_COMMAND_TIMEOUT,
        })
    }

    /// Run the program in `dir`.
    pub fn in_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Kill the program after `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn program(&self) -> &str {
        &self.argv[0]
    }
}

#[async_trait]
impl SecretStore for CommandStore {
    fn describe(&self) -> String {
        // Only the program: arguments may carry tokens substituted from the environment.
        format!("command:{}", self.program())
    }

    fn writable(&self) -> bool {
        false
    }

    async fn get(&self, key: &str) -> Result<Option<SecretString>> {
        let args: Vec<String> = self.argv[1..]
            .iter()
            .map(|a| a.replace("{key}", key))
            .collect();
        let mut cmd = tokio::process::Command::new(self.program());
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        let what = self.describe();
        // In a process group of its own, stopped whole when the read is abandoned (a
        // timeout, a signal to `staging`).
        let mut group =
            staging_core::process::GroupChild::spawn(&mut cmd).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::not_found(format!(
                    "program `{}` of the secret store {what} (is it installed and on PATH?)",
                    self.program()
                )),
                _ => Error::io(format!("cannot run {what}"), e),
            })?;
        let mut stdout = group.child_mut().stdout.take().expect("piped");
        let mut stderr = group.child_mut().stderr.take().expect("piped");
        let run = async {
            let mut out = Vec::new();
            let mut err = Vec::new();
            let (r1, r2, status) = tokio::join!(
                stdout.read_to_end(&mut out),
                stderr.read_to_end(&mut err),
                group.wait()
            );
            r1.and(r2)
                .map_err(|e| Error::io(format!("cannot read the output of {what}"), e))?;
            let status = status.map_err(|e| Error::io(format!("cannot wait for {what}"), e))?;
            Ok::<_, Error>((status, SecretBytes(out), err))
        };
        let (status, out, err) = match tokio::time::timeout(self.timeout, run).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(Error::Timeout {
                    what: format!("{what} to print the value of {key}"),
                    after: self.timeout,
                });
            }
        };
        if !status.success() {
            let stderr = String::from_utf8_lossy(&err);
            let shown = Redactor::global().shorten(stderr.trim(), STDERR_SHOWN);
            let code = status
                .code()
                .map(|c| format!("exit code {c}"))
                .unwrap_or_else(|| "killed by a signal".to_owned());
            return Err(Error::failed(format!(
                "{what} failed for {key} ({code}){}",
                if shown.is_empty() {
                    String::new()
                } else {
                    format!(": {shown}")
                }
            )));
        }
        let mut value = String::from_utf8(out.0).map_err(|_| {
            Error::failed(format!(
                "{what} printed a value for {key} that is not UTF-8"
            ))
        })?;
        if value.ends_with("\r\n") {
            value.truncate(value.len() - 2);
        } else if value.ends_with('\n') {
            value.truncate(value.len() - 1);
        }
        Ok(Some(SecretString::from(value)))
    }

    async fn put(&self, _key: &str, _value: &SecretString) -> Result<()> {
        Err(Error::not_supported(
            self.describe(),
            "writing (a command store only reads)",
        ))
    }

    async fn list(&self, _prefix: Option<&str>) -> Result<Vec<String>> {
        Err(Error::not_supported(self.describe(), "listing keys"))
    }
}

/// Bytes of a value on their way into a `SecretString`; no Debug of the content.
struct SecretBytes(Vec<u8>);

/// Run a blocking file write (it may wait for a lock) off the async workers.
async fn blocking(f: impl FnOnce() -> Result<()> + Send + 'static) -> Result<()> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::failed(format!("a secret file write did not finish: {e}")))?
}

/// Where one variable's value is read in one environment: the store and the key in it.
#[derive(Debug, Clone)]
pub struct Location {
    /// The store.
    pub store: DynSecretStore,
    /// The key within the store.
    pub key: String,
    /// `env:STRIPE_KEY`, `dotenv:.env.staging`, `command:op`: for tables, never a value.
    pub description: String,
}

/// The store a [`SecretSource`] names, for variable `var`.
///
/// `as_default` says the source is an environment's default `secrets` store rather than
/// the variable's own: then `env` is a prefix, a `file` is a directory of one file per
/// variable (or a path with `{key}`), and `{key}` in a command is the variable's name.
pub fn locate(
    backends: &SecretBackends,
    spec: &LoadedSpec,
    environment: &str,
    source: &SecretSource,
    var: &str,
    as_default: bool,
) -> Result<Location> {
    let (store, key, description): (DynSecretStore, String, String) = match source {
        SecretSource::Env(name) if as_default => (
            std::sync::Arc::new(EnvStore::new(name.clone())),
            var.to_owned(),
            format!("env:{name}{var}"),
        ),
        SecretSource::Env(name) => (
            std::sync::Arc::new(EnvStore::new("")),
            name.clone(),
            format!("env:{name}"),
        ),
        SecretSource::Dotenv(path) => {
            let resolved = spec.resolve_path(path);
            let store = DotenvStore::new(resolved.clone(), path.clone());
            let d = missing_file(store.describe(), &resolved);
            (std::sync::Arc::new(store), var.to_owned(), d)
        }
        SecretSource::File(path) => {
            let resolved = spec.resolve_path(path);
            let store = if as_default || path.contains("{key}") {
                FileStore::per_key(resolved, path.clone())
            } else {
                FileStore::single(resolved, path.clone())
            };
            let d = if as_default || path.contains("{key}") {
                format!("file:{}", path_for_display(path, var))
            } else {
                missing_file(store.describe(), &spec.resolve_path(path))
            };
            (std::sync::Arc::new(store), var.to_owned(), d)
        }
        SecretSource::Command(argv) => {
            let store = CommandStore::new(argv.clone())?.in_dir(spec.base_dir());
            let d = store.describe();
            (std::sync::Arc::new(store), var.to_owned(), d)
        }
        SecretSource::Provider(key) => {
            let store = provider_store(backends, spec, environment)?;
            let key = if as_default {
                var.to_owned()
            } else {
                key.clone()
            };
            let d = format!("{}:{key}", store.describe());
            (store, key, d)
        }
        SecretSource::Supabase(key) => {
            let (store, key) = crate::branches::supabase_store(
                backends,
                spec,
                environment,
                if as_default { var } else { key },
            )?;
            let d = format!("{}:{key}", store.describe());
            (store, key, d)
        }
    };
    Ok(Location {
        store,
        key,
        description,
    })
}

fn provider_store(
    backends: &SecretBackends,
    spec: &LoadedSpec,
    environment: &str,
) -> Result<DynSecretStore> {
    let lookup = backends.provider_stores.clone().ok_or_else(|| {
        Error::config(
            "a `provider` secret source needs the provider registry (`SecretBackends::provider_stores`; a `staging` facade session sets it)",
        )
    })?;
    let provider = spec
        .spec
        .environment(environment)
        .map(|e| e.provider.clone())
        .unwrap_or_default();
    lookup(spec, environment)?.ok_or_else(|| {
        spec.error_at(
            &format!("environments.{environment}.provider"),
            format!(
                "environment `{environment}` runs on `{provider}`, which offers no secret store for `source = {{ provider = ... }}`"
            ),
        )
    })
}

fn path_for_display(path: &str, var: &str) -> String {
    if path.contains("{key}") {
        path.replace("{key}", var)
    } else {
        format!("{}/{var}", path.trim_end_matches('/'))
    }
}

/// Masks a secret in error text that a store produced.
pub(crate) fn redact_error(e: &Error) -> String {
    Redactor::global().redact(&e.to_string()).into_owned()
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes({} bytes)", self.0.len())
    }
}

/// A file store's description, saying so when its file does not exist: a mistyped path
/// reads "no such file", not just "no value".
fn missing_file(described: String, path: &std::path::Path) -> String {
    if path.exists() {
        described
    } else {
        format!(
            "{described}, a file that does not exist: {}",
            path.display()
        )
    }
}
