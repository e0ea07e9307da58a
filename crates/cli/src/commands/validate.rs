//! `staging validate`.

use clap::Args;
use staging_core::Result;

use crate::Global;
use crate::context::session;
use crate::output::Output;

/// Options of `validate`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct ValidateArgs {
    /// Also ask each environment's provider, once, whether it accepts the credentials and
    /// answers (changes nothing): missing or refused credentials and unreachable endpoints
    /// exit 3.
    #[arg(long)]
    pub(crate) online: bool,
    /// Make every warning (valid but risky settings, such as a worker's Key Value that
    /// evicts keys) an error: exit 2.
    #[arg(long)]
    pub(crate) strict: bool,
}

/// Load the spec and check every environment's provider settings (or the one `--env` names).
pub(crate) async fn run(global: &Global, args: &ValidateArgs, out: Output) -> Result<u8> {
    let session = session(global)?;
    let spec = session.spec().clone();
    // Every environment's provider settings (or `--env`'s), and that what each one's
    // settings name is its own (offline); with `--online`, each provider asked once.
    let envs = if args.online {
        session.validate_online(global.env.as_deref()).await?
    } else {
        session.validate(global.env.as_deref()).await?
    };
    let warnings = session.warnings(global.env.as_deref())?;
    if args.strict && !warnings.is_empty() {
        let list: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        return Err(staging_core::Error::config(format!(
            "{} warning(s), errors with --strict:\n  {}",
            warnings.len(),
            list.join("\n  ")
        )));
    }
    let no_health_check: Vec<&String> = spec
        .spec
        .services
        .iter()
        .filter(|(_, s)| !s.http)
        .map(|(name, _)| name)
        .collect();
    if out.json {
        out.json(&serde_json::json!({
            "no_health_check": no_health_check,
            "file": spec.path.display().to_string(),
            "spec_hash": spec.hash,
            "environments": envs,
            "services": spec.spec.services.keys().collect::<Vec<_>>(),
            "probes": spec.spec.probes.len(),
            "online": args.online,
            "warnings": warnings,
        }));
    } else {
        out.line(&format!(
            "{} is valid{}: {} environment(s) ({}), {} service(s), {} variable(s), {} database(s), {} probe(s)",
            spec.path.display(),
            if args.online {
                " and every provider answered"
            } else {
                ""
            },
            envs.len(),
            envs.join(", "),
            spec.spec.services.len(),
            spec.spec.vars.len(),
            spec.spec.databases.len(),
            spec.spec.probes.len()
        ));
        if !no_health_check.is_empty() {
            out.line(&format!(
                "no health check (http = false): {}: live when the platform says so (on the local provider, once the process has stayed up for its `settle` time, default 3s)",
                no_health_check
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for w in &warnings {
            out.line(&format!("warning: {w}"));
        }
    }
    Ok(0)
}
