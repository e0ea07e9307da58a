//! Composition: loading the spec, picking the environment and commit, the isolation
//! checks and the pipeline of `up` (what a [`crate::Staging`] session runs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use staging_core::isolation::{EnvValues, Writes};
use staging_core::pipeline::{
    AutoRollbackStep, DeployStep, IsolationStep, Pipeline, ReverifyStep, ValidateStep,
    VerifyCommitStep, WaitStep, is_full_commit_id,
};
use staging_core::secrecy::SecretString;
use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_core::{Error, ProviderRegistry, ProvisionStep, Result, SecretBackends};

/// Load and check the spec at `path`, else the one [`discover_spec`] finds from the current
/// directory, knowing the providers of `registry`.
pub(crate) fn load_spec(
    path: Option<&Path>,
    registry: &ProviderRegistry,
    instance: Option<&str>,
) -> Result<Arc<LoadedSpec>> {
    let path = match path {
        Some(path) => path.to_owned(),
        None => {
            let cwd = std::env::current_dir()
                .map_err(|e| Error::io("cannot read the current directory", e))?;
            discover_spec(&cwd)?
        }
    };
    tracing::info!(spec = %path.display(), "loading the spec");
    let names = registry.names();
    Ok(Arc::new(LoadedSpec::load(
        &path,
        LoadOptions::new(&names).with_instance(instance),
    )?))
}

/// `staging.toml` in `dir` or the nearest parent directory that has one, the way cargo
/// finds `Cargo.toml` and git finds `.git`; a usage error (exit 2) naming where it looked
/// when none has.
pub fn discover_spec(dir: &Path) -> Result<PathBuf> {
    let file = staging_core::spec::DEFAULT_FILE;
    for ancestor in dir.ancestors() {
        let candidate = ancestor.join(file);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(Error::config(format!(
        "no {file} in {} or any parent directory; pass -f PATH (or set STAGING_FILE)",
        dir.display()
    )))
}

/// The environment named by `given` (`--env`), or the obvious one: the only one, else the
/// one unprotected environment that promotes to another.
pub(crate) fn environment(given: Option<&str>, spec: &LoadedSpec) -> Result<String> {
    if let Some(env) = given {
        spec.spec.environment(env)?;
        return Ok(env.to_owned());
    }
    let envs = &spec.spec.environments;
    if envs.len() == 1 {
        return Ok(envs.keys().next().cloned().unwrap_or_default());
    }
    let sources: Vec<&String> = envs
        .iter()
        .filter(|(_, e)| e.promotes_to.is_some() && !e.protected)
        .map(|(n, _)| n)
        .collect();
    match sources.as_slice() {
        [one] => Ok((*one).clone()),
        _ => Err(Error::config(format!(
            "which environment? pass --env (declared: {})",
            envs.keys().cloned().collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// The commit to deploy or promote, as a full id: `given` (`--commit`), or the git HEAD of
/// the checkout at `dir`. A full id (40 or 64 hex digits) is taken as it is (lowercased);
/// anything else (a short id, a tag, a branch) is resolved through git in `dir`, and
/// refused (an [`Error::ConfigInvalid`], exit 2) when git cannot resolve it or finds it ambiguous.
/// Only full ids are recorded in evidence and compared by the gate.
///
/// ```no_run
/// let head = staging::resolve_commit(std::path::Path::new("."), None)?;
/// assert_eq!(head.len(), 40);
/// # Ok::<(), staging::Error>(())
/// ```
pub fn resolve_commit(dir: &Path, given: Option<&str>) -> Result<String> {
    let dir = dir.to_owned();
    let Some(given) = given else {
        return git_rev_parse(&dir, "HEAD").map_err(|why| {
            Error::config(format!(
                "cannot read the commit from git in {} ({why}); pass --commit SHA",
                dir.display()
            ))
        });
    };
    let c = given.trim();
    if is_full_commit_id(c) {
        return Ok(c.to_ascii_lowercase());
    }
    if c.is_empty()
        || c.starts_with('-')
        || !c
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-_./~^@".contains(ch))
    {
        return Err(Error::config(format!(
            "`{given}` is not a commit id (a full SHA, or a short id, tag or branch that git can resolve)"
        )));
    }
    git_rev_parse(&dir, c).map_err(|why| {
        Error::config(format!(
            "--commit `{c}` is not a full commit id and git cannot resolve it to one in {} ({why}); pass the full 40-character SHA",
            dir.display()
        ))
    })
}

/// The full id of the commit `rev` names in the checkout at `dir` (`git rev-parse --verify
/// REV^{commit}`), or why not (not a checkout, unknown, ambiguous).
fn git_rev_parse(dir: &std::path::Path, rev: &str) -> std::result::Result<String, String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--verify", "--quiet"])
        .arg(format!("{rev}^{{commit}}"))
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() && is_full_commit_id(&stdout) {
        return Ok(stdout.to_ascii_lowercase());
    }
    // `--verify --quiet` says nothing about why; ask once more without it.
    let err = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--verify"])
        .arg(format!("{rev}^{{commit}}"))
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .unwrap_or_default();
    Err(if err.contains("ambiguous") {
        let candidates = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["rev-parse", &format!("--disambiguate={rev}")])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        if candidates.is_empty() {
            "it is ambiguous".to_owned()
        } else {
            format!("it is ambiguous: it begins {}", candidates.join(", "))
        }
    } else if err.contains("not a git repository") {
        "not a git checkout".to_owned()
    } else {
        "no such commit".to_owned()
    })
}

/// Each environment's variable values as the spec's sources give them here, read once per
/// environment: where the isolation check takes database URLs from. An environment whose
/// sources cannot be read (production's, from a CI job holding only staging's
/// credentials) is an error, and its databases are not compared.
#[derive(Debug)]
pub struct SpecValues {
    backends: SecretBackends,
    spec: Arc<LoadedSpec>,
    commit: Option<String>,
    read: tokio::sync::Mutex<BTreeMap<String, BTreeMap<String, SecretString>>>,
}

impl SpecValues {
    /// Over `spec` narrowed to the databases' URL variables and the variables their plain
    /// values embed (`${vars.NAME}`): the check reads nothing else of another environment
    /// (no production `op read` for a staging run's API keys).
    pub fn new(backends: SecretBackends, spec: Arc<LoadedSpec>, commit: Option<String>) -> Self {
        let narrowed = staging_migrate::database_url_vars(&spec);
        SpecValues {
            backends,
            spec: Arc::new(narrowed),
            commit,
            read: tokio::sync::Mutex::new(BTreeMap::new()),
        }
    }
}

#[staging_core::async_trait]
impl EnvValues for SpecValues {
    async fn values(&self, environment: &str) -> Result<BTreeMap<String, SecretString>> {
        let mut read = self.read.lock().await;
        if let Some(v) = read.get(environment) {
            return Ok(v.clone());
        }
        if self.spec.spec.vars.is_empty() {
            return Ok(BTreeMap::new());
        }
        let resolved = staging_secrets::resolve_vars(
            &self.backends,
            &self.spec,
            environment,
            self.commit.as_deref(),
        )
        .await?;
        read.insert(environment.to_owned(), resolved.values.clone());
        Ok(resolved.values)
    }
}

/// Refuse (exit 2) before the first write of a command that changes `writes` of `env`
/// when any of it is also another environment's, and fail (exit 3) when what the check must
/// read cannot be read ([`staging_core::isolation`]). Returns the run's write boundary, the
/// issuer of the targets the command's platform writes take.
pub(crate) async fn check_isolation(
    registry: &ProviderRegistry,
    backends: &SecretBackends,
    spec: &Arc<LoadedSpec>,
    env: &str,
    writes: Writes,
    provider: Option<&staging_core::DynProvider>,
) -> Result<staging_core::WriteBoundary> {
    let values = SpecValues::new(backends.clone(), spec.clone(), None);
    staging_core::isolation::check_before_write(registry, spec, env, writes, &values, provider)
        .await
        .map(|(_, boundary)| boundary)
}

/// The offline half of [`check_isolation`] for a run of `env` at `commit`: what the spec and
/// the local sources alone show to be another environment's is refused (exit 2) before the
/// run's preflight makes its first request.
pub(crate) async fn check_isolation_offline(
    registry: &ProviderRegistry,
    backends: &SecretBackends,
    spec: &Arc<LoadedSpec>,
    env: &str,
    commit: &str,
) -> Result<()> {
    let values = SpecValues::new(backends.clone(), spec.clone(), Some(commit.to_owned()));
    staging_core::isolation::check_offline_before_write(registry, spec, env, Writes::Run, &values)
        .await
        .map(drop)
}

/// The pipeline of `up` (and of `promote`, which adds `auto_rollback`: after a deploy that
/// went live but failed verify or smoke, return each service to the deploy live before);
/// `branches` says whether its branches step creates and whether unscrubbed data is allowed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn up_pipeline(
    registry: &ProviderRegistry,
    backends: &SecretBackends,
    spec: &Arc<LoadedSpec>,
    commit: &str,
    smoke: staging_smoke::SmokeStep,
    auto_rollback: bool,
    branches: crate::branches::BranchOptions,
    evidence: staging_evidence::RecordEvidence,
) -> Pipeline {
    let other_envs = Arc::new(staging_migrate::SecretsUrlLookup::new(
        backends.clone(),
        spec.clone(),
        Some(commit.to_owned()),
    ));
    let values = Arc::new(SpecValues::new(
        backends.clone(),
        spec.clone(),
        Some(commit.to_owned()),
    ));
    let pipeline = Pipeline::new()
        .step(ValidateStep::new(registry.clone()))
        .step(IsolationStep::new(registry.clone(), values))
        // Before anything else is created or read: a run refused for unscrubbed data
        // creates no service, and the secrets step reads the branch's URL.
        .step(crate::branches::BranchStep::new(
            evidence.store().clone(),
            branches,
        ))
        .step(ProvisionStep::new(registry.clone()))
        .step(staging_secrets::SecretsStep)
        .step(staging_evidence::PlatformRulesStep::new(registry.clone()))
        .step(staging_migrate::MigrateStep::new(
            staging_migrate::MigrateOptions::default(),
            other_envs,
        ))
        .step(DeployStep)
        .step(WaitStep)
        .step(VerifyCommitStep)
        .step(smoke)
        // The probes passed against this commit only if it still serves: another deploy
        // between verify and the end of smoke fails the run.
        .step(ReverifyStep);
    // What the spec's providers add once the checks passed (Vercel's staged production
    // flow promotes after the smoke checks passed at the deployment's own URL).
    let pipeline = registry
        .run_steps(spec)
        .into_iter()
        .fold(pipeline, Pipeline::boxed_step);
    let pipeline = if auto_rollback {
        pipeline.step(AutoRollbackStep)
    } else {
        pipeline
    };
    pipeline.step(evidence)
}
