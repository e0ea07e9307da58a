//! `staging import`: a platform's own config file as a spec skeleton, by the importer of
//! the provider whose file it is (each behind its `providers-*` feature).

use staging_core::{Error, Result};

/// The spec skeleton for the platform config file named `file_name` holding `text`
/// (a Render Blueprint `render.yaml`, a `netlify.toml`, a Railway `railway.json` /
/// `railway.toml`, a `vercel.json`), for project `project`; `origin` is the repository a
/// Render Blueprint's services build from, when known. `None` for a file of no known kind
/// (see [`IMPORTABLE`]); a file of a provider this build has no feature for is an
/// [`Error::ConfigInvalid`] naming the feature.
pub fn import_config(
    file_name: &str,
    text: &str,
    project: &str,
    origin: Option<&str>,
) -> Result<Option<String>> {
    import(file_name, text, project, origin)
}

/// The kinds of file [`import_config`] reads, in a phrase.
pub const IMPORTABLE: &str = "a Render Blueprint (render.yaml), a netlify.toml, a railway.json / railway.toml, or a vercel.json";

fn import(
    file_name: &str,
    text: &str,
    project: &str,
    origin: Option<&str>,
) -> Result<Option<String>> {
    let _ = (text, project, origin);
    let name = file_name;
    if name == "vercel.json" || name.ends_with(".vercel.json") {
        #[cfg(feature = "providers-vercel")]
        return staging_provider_vercel::import_vercel_json(text, project).map(Some);
        #[cfg(not(feature = "providers-vercel"))]
        return Err(not_built("vercel"));
    }
    let railway_json = name == "railway.json" || name.ends_with(".railway.json");
    let railway_toml = name == "railway.toml" || name.ends_with(".railway.toml");
    if railway_json || railway_toml {
        #[cfg(feature = "providers-railway")]
        {
            use staging_provider_railway::RailwayConfigFormat;
            let format = if railway_json {
                RailwayConfigFormat::Json
            } else {
                RailwayConfigFormat::Toml
            };
            return staging_provider_railway::import_railway_config(text, format, project)
                .map(Some);
        }
        #[cfg(not(feature = "providers-railway"))]
        return Err(not_built("railway"));
    }
    if name.ends_with(".yaml") || name.ends_with(".yml") {
        #[cfg(feature = "providers-render")]
        return staging_provider_render::import_blueprint_from(text, project, origin).map(Some);
        #[cfg(not(feature = "providers-render"))]
        return Err(not_built("render"));
    }
    if name == "netlify.toml" || name.ends_with(".toml") {
        #[cfg(feature = "providers-netlify")]
        return staging_provider_netlify::import_netlify_toml_as(text, project).map(Some);
        #[cfg(not(feature = "providers-netlify"))]
        return Err(not_built("netlify"));
    }
    Ok(None)
}

#[allow(dead_code)]
fn not_built(provider: &str) -> Error {
    Error::config(format!(
        "this build of `staging` cannot import this file: enable the `providers-{provider}` feature of the `staging` crate"
    ))
}
