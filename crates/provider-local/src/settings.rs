//! A service's settings for the local provider, read from the spec.

use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use staging_core::Result;
use staging_core::spec::{LoadedSpec, Service};

/// How one service runs locally (`[services.NAME.settings]` with the environment's
/// `overrides`).
#[derive(Debug, Clone)]
pub struct LocalServiceSettings {
    /// The program and its arguments.
    pub command: Vec<String>,
    /// The working directory (default: the spec's directory).
    pub workdir: PathBuf,
    /// A fixed port; by default each deploy gets a free one, so the old process keeps
    /// serving until the new one is healthy.
    pub port: Option<u16>,
    /// The variable the port is passed in (default `PORT`).
    pub port_env: String,
    /// The variable the deployed commit is passed in (default `STAGING_COMMIT`).
    pub commit_env: String,
    /// The path that answers 2xx when healthy (the service's `health_path`, default `/`).
    pub health_path: String,
    /// How long a process has to exit after SIGTERM before it is killed.
    pub stop_timeout: Duration,
}

/// `[environments.E.settings]` of a `local` environment: it has none, so any key is an
/// error at its place.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalEnvironmentConfig {}

/// A service on the local provider as the spec writes it: `[services.S.settings]` with
/// `[services.S.overrides.E]` merged onto it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalServiceConfig {
    /// The program and its arguments (`["cargo", "run", "-p", "app"]`).
    pub command: Vec<String>,
    /// The working directory, relative to the spec (default: the spec's directory).
    #[serde(default)]
    pub workdir: Option<String>,
    /// A fixed port; by default each deploy gets a free one.
    #[serde(default)]
    pub port: Option<u16>,
    /// The variable the port is passed in (default `PORT`).
    #[serde(default)]
    pub port_env: Option<String>,
    /// The variable the deployed commit is passed in (default `STAGING_COMMIT`).
    #[serde(default)]
    pub commit_env: Option<String>,
    /// How long a process has to exit after SIGTERM before it is killed (`5s`, `500ms`).
    #[serde(default, deserialize_with = "humantime_serde_compat::deserialize")]
    #[schemars(with = "Option<String>")]
    pub stop_timeout: Option<Duration>,
}

/// `stop_timeout = "5s"`, without pulling humantime-serde into this crate's public API.
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| parse(&s).map_err(serde::de::Error::custom))
            .transpose()
    }

    /// Core's one duration parser: checked arithmetic and a bound, so a huge value is an
    /// error at its place, never an overflow.
    fn parse(s: &str) -> Result<Duration, String> {
        staging_core::spec::duration::parse(s)
    }
}

impl LocalServiceSettings {
    /// Read the settings of `name` in `environment`, with errors that point into the spec.
    pub fn from_spec(
        spec: &LoadedSpec,
        environment: &str,
        name: &str,
        service: &Service,
    ) -> Result<Self> {
        let settings = spec.service_settings::<LocalServiceConfig>(name, environment)?;
        if settings.value.command.is_empty() {
            return Err(
                settings.error_at("command", format!("service `{name}`: `command` is empty"))
            );
        }
        let raw = settings.value;
        let health_path = service
            .health_path
            .clone()
            .unwrap_or_else(|| "/".to_owned());
        if !health_path.starts_with('/') {
            return Err(spec.error_at(
                &format!("services.{name}.health_path"),
                "`health_path` must start with `/`",
            ));
        }
        Ok(LocalServiceSettings {
            command: raw.command,
            workdir: raw
                .workdir
                .map(|w| spec.resolve_path(&w))
                .unwrap_or_else(|| spec.base_dir()),
            port: raw.port,
            port_env: raw.port_env.unwrap_or_else(|| "PORT".to_owned()),
            commit_env: raw
                .commit_env
                .unwrap_or_else(|| "STAGING_COMMIT".to_owned()),
            health_path,
            stop_timeout: raw.stop_timeout.unwrap_or(Duration::from_secs(5)),
        })
    }

    /// Settings for a command, with defaults for the rest (tests, embedding).
    pub fn for_command(command: Vec<String>, health_path: &str) -> Self {
        LocalServiceSettings {
            command,
            workdir: PathBuf::from("."),
            port: None,
            port_env: "PORT".to_owned(),
            commit_env: "STAGING_COMMIT".to_owned(),
            health_path: health_path.to_owned(),
            stop_timeout: Duration::from_secs(5),
        }
    }
}
