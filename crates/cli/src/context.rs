//! Composition: the registered providers, loading the spec, picking the environment and
//! commit, and the pipeline of `up`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use staging_core::pipeline::{
    DeployStep, Pipeline, RunContext, ValidateStep, VerifyCommitStep, WaitStep,
};
use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_core::{Error, ProviderRegistry, Result};

use crate::Global;

/// Every provider this build of the CLI knows.
pub(crate) fn registry() -> ProviderRegistry {
    ProviderRegistry::new()
        .register(staging_provider_local::LocalFactory)
        .register(staging_provider_render::RenderFactory::new())
        .register(staging_provider_netlify::NetlifyFactory)
        .register(staging_provider_aws::AwsFactory)
}

/// Let `source = { provider = "..." }` read from the secret store of the environment's
/// provider (a Render datastore, AWS Secrets Manager).
pub(crate) fn connect_provider_secret_stores() {
    staging_secrets::set_provider_stores(std::sync::Arc::new(|spec: &LoadedSpec, env: &str| {
        registry().secret_store(spec, env)
    }));
}

/// Load and check the spec named by `-f`, else the one [`discover_spec`] finds.
pub(crate) fn load_spec(global: &Global) -> Result<Arc<LoadedSpec>> {
    let path = match &global.file {
        Some(path) => path.clone(),
        None => {
            let cwd = std::env::current_dir()
                .map_err(|e| Error::io("cannot read the current directory", e))?;
            discover_spec(&cwd)?
        }
    };
    tracing::info!(spec = %path.display(), "loading the spec");
    let registry = registry();
    let names = registry.names();
    Ok(Arc::new(LoadedSpec::load(&path, LoadOptions::new(&names))?))
}

/// `staging.toml` in `dir` or the nearest parent directory that has one, the way cargo
/// finds `Cargo.toml` and git finds `.git`; a usage error (exit 2) naming where it looked
/// when none has.
pub(crate) fn discover_spec(dir: &Path) -> Result<PathBuf> {
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

/// The environment named by `--env`, or the obvious one.
pub(crate) fn environment(global: &Global, spec: &LoadedSpec) -> Result<String> {
    if let Some(env) = &global.env {
        spec.spec.environment(env)?;
        return Ok(env.clone());
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

/// The commit to deploy: `--commit`, or the git HEAD of the spec's checkout.
pub(crate) fn commit(given: Option<&str>, spec: &LoadedSpec) -> Result<String> {
    if let Some(c) = given {
        if c.is_empty()
            || !c
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_./".contains(ch))
        {
            return Err(Error::config(format!("`{c}` is not a commit id")));
        }
        return Ok(c.to_owned());
    }
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(spec.base_dir())
        .args(["rev-parse", "HEAD"])
        .output()
        .map_err(|e| {
            Error::config(format!(
                "cannot run git to find the commit ({e}); pass --commit SHA"
            ))
        })?;
    if !out.status.success() {
        return Err(Error::config(format!(
            "cannot read the commit from git in {} (not a checkout, or no commit yet); pass --commit SHA",
            spec.base_dir().display()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A fresh context for a run.
pub(crate) fn run_context(
    global: &Global,
    spec: Arc<LoadedSpec>,
    env: &str,
    commit: String,
) -> Result<RunContext> {
    let mut ctx = RunContext::new(spec, env, commit)?;
    ctx.progress =
        crate::progress::for_output(global.output());
    Ok(ctx)
}

/// The pipeline of `up`.
pub(crate) fn up_pipeline(
    spec: &Arc<LoadedSpec>,
    commit: &str,
    smoke: staging_smoke::SmokeStep,
    evidence: staging_evidence::RecordEvidence,
) -> Pipeline {
    let other_envs = Arc::new(staging_migrate::SecretsUrlLookup::new(
        spec.clone(),
        Some(commit.to_owned()),
    ));
    Pipeline::new()
        .step(ValidateStep::new(registry()))
        .step(staging_secrets::SecretsStep)
        .step(staging_migrate::MigrateStep::new(
            staging_migrate::MigrateOptions::default(),
            other_envs,
        ))
        .step(DeployStep)
        .step(WaitStep)
        .step(VerifyCommitStep)
        .step(smoke)
        .step(evidence)
}
