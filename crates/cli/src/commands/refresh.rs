//! `staging refresh --env E [--from P]`: make E's databases fresh copies of P's (a branch
//! reset, or pg_dump/pg_restore for plain Postgres), then E's migrations, then the spec's
//! scrub, then the spec's database probes; record evidence. Refused on a protected
//! environment, always.

use std::sync::Arc;

use clap::Args;
use secrecy::SecretString;
use staging_core::database_target::issue_database_targets;
use staging_core::pipeline::{Pipeline, ValidateStep};
use staging_core::spec::{BranchSpec, LoadedSpec};
use staging_core::{DynDatabaseBranch, DynSecretStore, Error, Result};
use staging_evidence::RecordEvidence;
use staging_migrate::refresh::{CopyFrom, Refresh, RefreshStep, check_dump_tools};
use staging_migrate::{EnvMigrations, SecretsUrlLookup};

use crate::Global;
use crate::context::{environment, load_spec, registry, run_context};
use crate::output::Output;

/// Options of `refresh`.
#[derive(Debug, Args, Clone)]
pub(crate) struct RefreshArgs {
    /// The environment to copy from (default: the one `--env` promotes to).
    #[arg(long, value_name = "ENV")]
    pub(crate) from: Option<String>,
    /// Fail when the built-in PII scan finds e-mail addresses or phone numbers left after
    /// the scrub (the spec's `scrub.verify` checks fail the refresh either way).
    #[arg(long)]
    pub(crate) strict: bool,
    #[command(flatten)]
    pub(crate) lease: crate::lease::LeaseArgs,
}

/// The branch of `spec` for a database in environment `env`, built from the environment's
/// credentials (`NEON_API_KEY`, `SUPABASE_ACCESS_TOKEN`).
pub(crate) fn database_branch(b: &BranchSpec) -> Result<DynDatabaseBranch> {
    match b {
        BranchSpec::Neon(n) => Ok(Arc::new(
            staging_provider_neon::NeonBuilder::from_env().build(n.clone())?,
        )),
        BranchSpec::Supabase(s) => Ok(Arc::new(
            staging_provider_supabase::SupabaseBuilder::from_env().build(s.clone())?,
        )),
    }
}

/// The secret store a database branch offers: a Supabase branch's `anon_key`,
/// `service_role_key` and `database_url`; a Neon branch offers none.
pub(crate) fn branch_secret_store(b: &BranchSpec) -> Result<Option<DynSecretStore>> {
    match b {
        BranchSpec::Neon(_) => Ok(None),
        BranchSpec::Supabase(s) => Ok(Some(Arc::new(
            staging_provider_supabase::SupabaseSecrets::new(Arc::new(
                staging_provider_supabase::SupabaseBuilder::from_env().build(s.clone())?,
            )),
        ))),
    }
}

/// Every check that can refuse the refresh, before the first write; then the refreshes.
async fn resolve(
    spec: &Arc<LoadedSpec>,
    target: &str,
    source: &str,
    strict: bool,
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
    let others = SecretsUrlLookup::new(spec.clone(), None);
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
        let copy = match &db.branch {
            Some(b) if b.applies_to(target, env.protected) => {
                let branch = database_branch(b)?;
                let url = branch.connection_url().await?;
                CopyFrom::Branch(branch, target_of(name, url).await?)
            }
            _ => {
                if target_vars.is_none() {
                    target_vars = Some(
                        staging_secrets::resolve_vars(spec, target, None)
                            .await?
                            .values,
                    );
                    source_vars = Some(
                        staging_secrets::resolve_vars(spec, source, None)
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

/// Refresh, scrub and record.
pub(crate) async fn run(global: &Global, args: &RefreshArgs, out: Output) -> Result<u8> {
    let spec = load_spec(global)?;
    let target = environment(global, &spec)?;
    let source = match &args.from {
        Some(s) => s.clone(),
        None => spec
            .spec
            .environment(&target)?
            .promotes_to
            .clone()
            .ok_or_else(|| {
                Error::config(format!(
                    "`{target}` promotes to no environment: say which one to copy from with --from"
                ))
            })?,
    };
    let refreshes = resolve(&spec, &target, &source, args.strict).await?;
    let migrations = EnvMigrations::from_secrets(Arc::clone(&spec), &target, None)
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
    let mut pipeline = Pipeline::new().step(ValidateStep::new(registry())).step(
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
    let mut ctx = run_context(global, spec.clone(), &target, "unknown".to_owned())?;
    let mut stop = super::up::StopSignals::listen()?;
    let mut lease = match crate::lease::take(
        &store,
        crate::lease::holder(&spec, &target, "refresh", None),
        &args.lease,
        &mut stop,
        out,
    )
    .await?
    {
        Ok(lease) => lease,
        Err(signal) => return Ok(signal.exit_code()),
    };
    if !out.json {
        out.line(&format!(
            "{} {target} from {source}",
            out.paint("1", "staging refresh"),
        ));
    }
    // A signal drops the run, and with it pg_dump, pg_restore and the migration and scrub
    // commands (each process group whole), before the lease is released.
    let held = crate::lease::run_held(&mut lease, &mut stop, pipeline.run(&mut ctx)).await;
    let code = match crate::lease::finish(held, "the refresh", out) {
        Ok(report) => {
            out.run(&report);
            report.exit_code()
        }
        Err(code) => code,
    };
    drop(ctx);
    crate::lease::release(lease, out).await;
    Ok(code)
}
