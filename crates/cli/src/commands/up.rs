//! `staging up`, `staging plan`, `staging status`.

use clap::Args;
use staging_core::Result;

use crate::Global;
use crate::context::{commit, environment, load_spec, registry, run_context, up_pipeline};
use crate::output::Output;

/// Options of `up` and `plan`.
#[derive(Debug, Args, Clone)]
pub(crate) struct UpArgs {
    /// The commit to deploy (default: the git HEAD of the spec's checkout).
    #[arg(long)]
    pub(crate) commit: Option<String>,
    #[command(flatten)]
    pub(crate) probes: super::smoke::ProbeOptions,
}

/// Run the whole pipeline. Ctrl-C stops it and the services it started.
pub(crate) async fn up(global: &Global, args: &UpArgs, out: Output) -> Result<u8> {
    let spec = load_spec(global)?;
    let env = environment(global, &spec)?;
    let commit = commit(args.commit.as_deref(), &spec)?;
    let pipeline = up_pipeline(&spec, &commit, args.probes.step());
    let mut ctx = run_context(global, spec, &env, commit)?;
    let report = tokio::select! {
        report = pipeline.run(&mut ctx) => report,
        _ = tokio::signal::ctrl_c() => {
            drop(ctx);
            out.note("interrupted: the run was stopped and the services it started were stopped");
            return Ok(130);
        }
    };
    out.run(&report);
    Ok(report.exit_code())
}

/// What `up` would do.
pub(crate) async fn plan(global: &Global, args: &UpArgs, out: Output) -> Result<u8> {
    let spec = load_spec(global)?;
    let env = environment(global, &spec)?;
    let commit = commit(args.commit.as_deref(), &spec)?;
    let environment = spec.spec.environment(&env)?;
    registry().factory_for(&spec, &env)?.check(&spec, &env)?;
    let steps = up_pipeline(&spec, &commit, args.probes.step()).step_names();
    let services: Vec<&String> = spec.spec.services.keys().collect();
    if out.json {
        out.json(&serde_json::json!({
            "environment": env,
            "provider": environment.provider,
            "protected": environment.protected,
            "commit": commit,
            "steps": steps,
            "services": services,
            "vars": spec.spec.vars.iter().map(|(k, v)| serde_json::json!({"name": k, "secret": v.secret})).collect::<Vec<_>>(),
            "probes": spec.spec.probes.iter().map(|p| &p.name).collect::<Vec<_>>(),
        }));
        return Ok(0);
    }
    out.line(&format!(
        "plan for `{env}` on {} at {commit}:",
        environment.provider
    ));
    for (i, s) in steps.iter().enumerate() {
        out.line(&format!("  {}. {s}", i + 1));
    }
    out.line(&format!(
        "services: {}",
        services
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let vars: Vec<String> = spec
        .spec
        .vars
        .iter()
        .map(|(k, v)| {
            if v.secret {
                format!("{k} (secret)")
            } else {
                k.clone()
            }
        })
        .collect();
    out.line(&format!(
        "variables: {}",
        if vars.is_empty() {
            "none".into()
        } else {
            vars.join(", ")
        }
    ));
    out.line(&format!(
        "probes: {}",
        spec.spec
            .probes
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if environment.protected {
        out.line("this environment is protected: changes reach it through `staging promote`");
    }
    Ok(0)
}

/// The live state of each service.
pub(crate) async fn status(global: &Global, out: Output) -> Result<u8> {
    let spec = load_spec(global)?;
    let env = environment(global, &spec)?;
    let factory = registry().factory_for(&spec, &env)?;
    factory.check(&spec, &env)?;
    let provider = factory.build(&spec, &env)?;
    let mut rows = vec![];
    for name in spec.spec.services.keys() {
        let handle = provider.locate(&env, name).await?;
        let state = provider.live_state(&handle).await?;
        rows.push((name.clone(), handle, state));
    }
    if out.json {
        let services: Vec<_> = rows
            .iter()
            .map(|(name, handle, state)| serde_json::json!({ "service": name, "id": handle.id, "state": state }))
            .collect();
        out.json(&serde_json::json!({ "environment": env, "provider": provider.name(), "services": services }));
        return Ok(0);
    }
    out.line(&format!(
        "{:<12} {:<12} {:<14} {:<14} URL",
        "SERVICE", "STATUS", "LIVE COMMIT", "LATEST"
    ));
    for (name, _, state) in &rows {
        let live = state
            .live_commit()
            .map(|c| &c[..c.len().min(12)])
            .unwrap_or("-");
        let latest = state
            .latest
            .as_ref()
            .map(|d| d.raw_status.as_str())
            .unwrap_or("no deploy");
        let status = state.live.as_ref().map(|_| "live").unwrap_or("not live");
        let url = state
            .url
            .as_ref()
            .map(|u| u.to_string())
            .unwrap_or_else(|| "-".into());
        out.line(&format!(
            "{name:<12} {status:<12} {live:<14} {latest:<14} {url}"
        ));
    }
    if provider.name() == "local" {
        out.note("note: the local provider runs services only for the length of `staging up`");
    }
    Ok(0)
}
