//! [`VercelFactory`]: the spec's `provider = "vercel"` environments.
//!
//! Settings: [`VercelEnvironmentSettings`] (`target`, `git_branch`, `team_id` or
//! `team_slug`, `secret_type`) and [`VercelServiceSettings`] (`project_id` or `project`,
//! `repo`), deserialized by core with `deny_unknown_fields`, so a misspelt key is an error at
//! its place with a suggestion.

use std::sync::Arc;

use staging_core::isolation::Resource;
use staging_core::spec::{LoadedSpec, Settings, SettingsTypes};
use staging_core::{DynProvider, ProviderFactory, Result, RetryPolicy, RetryProvider};

use crate::builder::{ProjectRef, Target, VercelBuilder};
use crate::provider::VercelProvider;
use crate::settings::{VercelEnvironmentSettings, VercelServiceSettings};

/// Builds Vercel providers from a spec. Registered under the name `vercel`.
#[derive(Debug, Clone, Default)]
pub struct VercelFactory {
    lookup: Option<fn(&str) -> Option<String>>,
}

/// The target of spec environment `environment`.
fn target_of(settings: &VercelEnvironmentSettings, environment: &str) -> Target {
    Target::parse(settings.target.as_deref().unwrap_or(environment))
}

impl VercelFactory {
    /// A factory that reads `VERCEL_TOKEN` and `VERCEL_API_URL` from the process.
    pub fn new() -> Self {
        Self::default()
    }

    /// A factory that reads variables through `lookup` (tests).
    pub fn with_lookup(lookup: fn(&str) -> Option<String>) -> Self {
        VercelFactory {
            lookup: Some(lookup),
        }
    }

    /// The builder for `environment` of `spec`, settings applied, before `build()`.
    pub fn builder(&self, spec: &LoadedSpec, environment: &str) -> Result<VercelBuilder> {
        self.check(spec, environment)?;
        let mut b = match self.lookup {
            Some(f) => VercelBuilder::from_lookup(f),
            None => VercelBuilder::from_env(),
        };
        let env = spec
            .environment_settings::<VercelEnvironmentSettings>(environment)?
            .value;
        b = b
            .with_target(target_of(&env, environment))
            .with_secret_type(env.secret_type)
            .staged(env.staged);
        if let Some(branch) = env.git_branch {
            b = b.with_git_branch(branch);
        }
        if let Some(id) = env.team_id {
            b = b.with_team_id(id);
        } else if let Some(slug) = env.team_slug {
            b = b.with_team_slug(slug);
        }
        for name in spec.spec.services.keys() {
            let s = spec
                .service_settings::<VercelServiceSettings>(name, environment)?
                .value;
            b = b.with_project(
                name,
                ProjectRef {
                    id_or_name: s.project_id.or(s.project).unwrap_or_else(|| name.clone()),
                    repo: s.repo,
                },
            );
        }
        Ok(b)
    }

    /// Whether `environment` runs the staged production flow.
    pub fn is_staged(spec: &LoadedSpec, environment: &str) -> bool {
        spec.spec
            .environments
            .get(environment)
            .is_some_and(|e| e.provider == "vercel")
            && spec
                .environment_settings::<VercelEnvironmentSettings>(environment)
                .is_ok_and(|s| s.value.staged)
    }

    /// The Vercel provider itself (without the retry decorator), for what only Vercel does:
    /// the staged promote, the env var store.
    pub fn build_vercel(&self, spec: &LoadedSpec, environment: &str) -> Result<VercelProvider> {
        self.builder(spec, environment)?.build()
    }
}

/// A text setting that must not be blank or carry surrounding whitespace.
fn check_text<T>(settings: &Settings<T>, key: &str, value: Option<&str>) -> Result<()> {
    match value {
        Some(text) if text.trim().is_empty() || text.trim() != text => Err(settings.error_at(
            key,
            format!("`{key}` is empty or has surrounding whitespace"),
        )),
        _ => Ok(()),
    }
}

impl ProviderFactory for VercelFactory {
    fn name(&self) -> &'static str {
        "vercel"
    }

    /// The staged production flow promotes after the smoke checks passed at the
    /// deployment's own URL (a no-op step for environments of other providers).
    fn run_steps(&self) -> Vec<Box<dyn staging_core::pipeline::Step>> {
        vec![Box::new(crate::StagedPromoteStep)]
    }

    fn settings_types(&self) -> SettingsTypes {
        SettingsTypes::of::<VercelEnvironmentSettings, VercelServiceSettings>()
    }

    fn check(&self, spec: &LoadedSpec, environment: &str) -> Result<()> {
        let env = spec.environment_settings::<VercelEnvironmentSettings>(environment)?;
        let v = &env.value;
        for (key, value) in [
            ("target", v.target.as_deref()),
            ("git_branch", v.git_branch.as_deref()),
            ("team_id", v.team_id.as_deref()),
            ("team_slug", v.team_slug.as_deref()),
        ] {
            check_text(&env, key, value)?;
        }
        if v.team_id.is_some() && v.team_slug.is_some() {
            return Err(env.error_at(
                "team_slug",
                format!("environment {environment} has both `team_id` and `team_slug`; keep one"),
            ));
        }
        if v.target.as_deref() == Some("development") {
            return Err(env.error_at(
                "target",
                "`development` is `vercel dev` on a laptop, not a place to deploy: use `production`, `preview` or a custom environment",
            ));
        }
        let target = target_of(v, environment);
        if v.secret_type == crate::SecretType::Sensitive && matches!(target, Target::Custom(_)) {
            // Vercel accepts `sensitive` for production and preview only.
            return Err(env.error_at(
                "secret_type",
                "`sensitive` env vars exist for production and preview only; use `encrypted` for a custom environment",
            ));
        }
        if v.staged && target != Target::Production {
            return Err(env.error_at(
                "staged",
                "`staged` holds back the production domains; this environment's target is not production",
            ));
        }
        for name in spec.spec.services.keys() {
            let s = spec.service_settings::<VercelServiceSettings>(name, environment)?;
            check_text(&s, "project_id", s.value.project_id.as_deref())?;
            check_text(&s, "project", s.value.project.as_deref())?;
            if s.value.project_id.is_some() && s.value.project.is_some() {
                return Err(s.error_at(
                    "project",
                    format!("service `{name}` has both `project_id` and `project`; keep one"),
                ));
            }
            if let Some(repo) = s.value.repo.as_deref() {
                let ok = repo
                    .split_once('/')
                    .is_some_and(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'));
                if !ok {
                    return Err(s.error_at("repo", format!("`repo` is `{repo}`, not `org/repo`")));
                }
            }
        }
        Ok(())
    }

    /// A project's target: project + Vercel environment (+ branch for preview).
    fn resources(&self, spec: &LoadedSpec, environment: &str) -> Result<Vec<Resource>> {
        let env = spec
            .environment_settings::<VercelEnvironmentSettings>(environment)?
            .value;
        let target = match target_of(&env, environment) {
            Target::Production => "production".to_owned(),
            Target::Preview => format!(
                "preview:{}",
                env.git_branch.clone().unwrap_or_else(|| "main".into())
            ),
            Target::Custom(slug) => slug,
        };
        let team = env.team_id.or(env.team_slug);
        let mut out = vec![];
        for name in spec.spec.services.keys() {
            let s = spec
                .service_settings::<VercelServiceSettings>(name, environment)?
                .value;
            out.push(Resource::new(
                "vercel project target",
                format!("service {name}"),
                [
                    ("team", team.clone()),
                    (
                        "project",
                        Some(s.project_id.or(s.project).unwrap_or_else(|| name.clone())),
                    ),
                    ("target", Some(target.clone())),
                ],
            ));
        }
        Ok(out)
    }

    fn build(&self, spec: &LoadedSpec, environment: &str) -> Result<DynProvider> {
        let provider = self.build_vercel(spec, environment)?;
        Ok(Arc::new(RetryProvider::new(
            provider,
            RetryPolicy::default(),
        )))
    }
}
