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
    if out.json {
        out.json(&serde_json::json!({
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
    }
    Ok(0)
}
