//! `staging refresh --env E [--from P]`: make E's databases fresh copies of P's (a branch
//! reset, or pg_dump/pg_restore for plain Postgres), then E's migrations, then the spec's
//! scrub, then the spec's database probes; record evidence. Refused on a protected
//! environment, always.

use std::sync::Arc;

use secrecy::SecretString;
use staging_core::database_target::issue_database_targets;
use staging_core::pipeline::{Pipeline, ValidateStep};
use staging_core::spec::LoadedSpec;
use staging_core::{Error, Result, SecretBackends};
use staging_evidence::{DynEvidenceStore, RecordEvidence};
use staging_migrate::refresh::{CopyFrom, Refresh, RefreshStep, check_dump_tools};
use staging_migrate::{EnvMigrations, SecretsUrlLookup};

use crate::Staging;
use crate::providers::database_branch;

/// Every check that can refuse the refresh, before the first write; then the refreshes.
pub(crate) async fn resolve(
    backends: &SecretBackends,
    spec: &Arc<LoadedSpec>,
    target: &str,
    source: &str,
    strict: bool,
    only: Option<&[String]>,
) -> Result<Vec<Refresh>> {
    let env = spec.spec.environment(target)?;
    if env.protected {
        return Err(Error::PermissionDenied {
            provider: "staging".into(),
            message: format!(
                "`{target}` is protected: a refresh replaces its data, so the target of a refresh can never be a protected environment"
            ),
        });
    }
    spec.spec.environment(source)?;
    if source == target {
        return Err(Error::config(format!(
            "`--from {source}` is the environment being refreshed"
        )));
    }
    let mut target_vars = None;
    let mut source_vars = None;
    let mut out = vec![];
    // What each written database is, by what its server says, compared with every other
    // environment's databases (the source's among them) before anything is written.
    let others = SecretsUrlLookup::new(backends.clone(), spec.clone(), None);
    let target_of = |name: &str, url: SecretString| {
        let others = &others;
        let name = name.to_owned();
        async move {
            let targets = issue_database_targets(
                spec,
                target,
                vec![(name.clone(), url)],
                others,
                &staging_migrate::ServerIdentity,
            )
            .await?;
            targets.get(&name).cloned()
        }
    };
    for (name, db) in &spec.spec.databases {
        if only.is_some_and(|o| !o.contains(name)) {
            continue;
        }
        let copy = match &db.branch {
            Some(b) if b.applies_to(target, env.protected) => {
                let branch = database_branch(b)?;
                let url = branch.connection_url().await?;
                CopyFrom::Branch(branch, target_of(name, url).await?)
            }
            _ => {
                if target_vars.is_none() {
                    target_vars = Some(
                        staging_secrets::resolve_vars(backends, spec, target, None)
                            .await?
                            .values,
                    );
                    source_vars = Some(
                        staging_secrets::resolve_vars(backends, spec, source, None)
                            .await?
                            .values,
                    );
                }
                let url_of = |vars: &Option<std::collections::BTreeMap<String, _>>, e: &str| {
                    vars.as_ref()
                        .and_then(|v| v.get(&db.url_var).cloned())
                        .ok_or_else(|| {
                            spec.error_at(
                                &format!("databases.{name}.url_var"),
                                format!("`{}` has no value in environment `{e}`, so database `{name}` cannot be refreshed", db.url_var),
                            )
                        })
                };
                let (t, s) = (url_of(&target_vars, target)?, url_of(&source_vars, source)?);
                // Only Postgres is copied by dump and restore: anything else is refused here,
                // before the first write, not found failed halfway.
                for (url, e) in [(&t, target), (&s, source)] {
                    let scheme =
                        url::Url::parse(staging_core::secrecy::ExposeSecret::expose_secret(url))
                            .map(|u| u.scheme().to_owned())
                            .unwrap_or_default();
                    if !matches!(scheme.as_str(), "postgres" | "postgresql") {
                        let what = if scheme.is_empty() {
                            "not a database URL".to_owned()
                        } else {
                            format!("a `{scheme}:` database")
                        };
                        return Err(spec.error_at(
                            &format!("databases.{name}.url_var"),
                            format!(
                                "database `{name}` of `{e}` is {what}: `staging refresh` copies Postgres databases only (a branch reset, or pg_dump and pg_restore)"
                            ),
                        ));
                    }
                }
                check_dump_tools()?;
                CopyFrom::Dump {
                    source: s,
                    target: target_of(name, t).await?,
                }
            }
        };
        out.push(Refresh {
            database: name.clone(),
            source: source.to_owned(),
            target: target.to_owned(),
            copy,
            scrub: db.scrub.clone(),
            base_dir: spec.base_dir(),
            seed: db.seed.clone(),
            strict,
        });
    }
    if out.is_empty() {
        return Err(Error::config("the spec declares no [databases] to refresh"));
    }
    Ok(out)
}

/// A refresh ready to run ([`Staging::prepare_refresh`]): every refusal already passed.
#[derive(Debug)]
pub struct RefreshRun {
    /// The environment refreshed.
    pub target: String,
    /// The environment copied from.
    pub source: String,
    /// The steps: validate, refresh (copy, migrations, scrub), the database probes when the
    /// spec has some, evidence.
    pub pipeline: Pipeline,
    /// What the steps share.
    pub context: crate::RunContext,
    /// The evidence store (where the lease is taken).
    pub store: DynEvidenceStore,
}

impl Staging {
    /// Every check that can refuse a refresh of `target` from `from` (default: the
    /// environment `target` promotes to), before the first write — a protected target, the
    /// same environment, a database that is another environment's, a database that is not
    /// Postgres, missing dump tools — then the run, ready to go under the lease. With
    /// `strict`, the built-in PII scan's findings fail the refresh (the spec's
    /// `scrub.verify` checks fail it either way).
    pub async fn prepare_refresh(
        &self,
        target: &str,
        from: Option<&str>,
        strict: bool,
    ) -> Result<RefreshRun> {
        let spec = self.spec().clone();
        spec.check_instance_for(target)?;
        let source = match from {
            Some(s) => s.to_owned(),
            None => {
                let env = spec.spec.environment(target)?;
                // An ephemeral environment's data comes from the one it is like.
                env.promotes_to.clone().or_else(|| env.like.clone())
            }
            .ok_or_else(|| {
                Error::config(format!(
                    "`{target}` promotes to no environment: say which one to copy from with --from"
                ))
            })?,
        };
        let refreshes = resolve(self.backends(), &spec, target, &source, strict, None).await?;
        let migrations =
            EnvMigrations::from_secrets(self.backends(), Arc::clone(&spec), target, None)
                .await
                .ok();
        let store = staging_evidence::open_store(&spec).await?;
        // Then the database probes (postgres, redis) on the refreshed data: the rest of the
        // spec's probes need deployed services, which a refresh does not touch.
        let mut probed = (*spec).clone();
        probed.spec.probes.retain(|p| {
            let kinds = p.kinds();
            !kinds.is_empty() && kinds.iter().all(|k| matches!(*k, "postgres" | "redis"))
        });
        let database_probes = !probed.spec.probes.is_empty();
        let spec = Arc::new(probed);
        let mut pipeline = Pipeline::new()
            .step(ValidateStep::new(self.registry().clone()))
            .step(
                RefreshStep::new(refreshes, migrations).with_state_log(Arc::new(
                    staging_evidence::EvidenceStateLog::new(store.clone(), spec.clone()),
                )),
            );
        if database_probes {
            pipeline = pipeline
                .step(staging_secrets::SecretsStep)
                .step(staging_smoke::SmokeStep::new());
        }
        let pipeline = pipeline.step(RecordEvidence::new(store.clone()));
        let mut context = self.run_context(target, "unknown".to_owned())?;
        context.spec = spec;
        Ok(RefreshRun {
            target: target.to_owned(),
            source,
            pipeline,
            context,
            store,
        })
    }
}
