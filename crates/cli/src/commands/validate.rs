//! `staging validate`.

use staging_core::Result;

use crate::Global;
use crate::context::{load_spec, registry};
use crate::output::Output;

/// Load the spec and check every environment's provider settings (or the one `--env` names).
pub(crate) async fn run(global: &Global, out: Output) -> Result<u8> {
    let spec = load_spec(global)?;
    let registry = registry();
    let envs: Vec<String> = match &global.env {
        Some(e) => {
            spec.spec.environment(e)?;
            vec![e.clone()]
        }
        None => spec.spec.environments.keys().cloned().collect(),
    };
    for env in &envs {
        registry.check(&spec, env)?;
    }
    // What each environment's settings name must be its own (offline; database URLs are
    // compared before a run's first write, where the secret sources are read).
    for env in &envs {
        staging_core::isolation::check_settings(&registry, &spec, env).await?;
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
            "ok": true,
            "file": spec.path.display().to_string(),
            "spec_hash": spec.hash,
            "environments": envs,
            "services": spec.spec.services.keys().collect::<Vec<_>>(),
            "probes": spec.spec.probes.len(),
        }));
    } else {
        out.line(&format!(
            "{} is valid: {} environment(s) ({}), {} service(s), {} variable(s), {} database(s), {} probe(s)",
            spec.path.display(),
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
    }
    Ok(0)
}
