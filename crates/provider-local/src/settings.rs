//! A service's settings for the local provider, read from the spec.

use std::path::PathBuf;
use std::time::Duration;

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
    /// The path that answers 2xx when healthy (the service's `health_path`, default `/`);
    /// `None` for a service with `http = false`, which is live once its process has stayed
    /// up for `settle`.
    pub health_path: Option<String>,
    /// How long a service without HTTP must stay up to count as live (default 3s).
    pub settle: Duration,
    /// How long a process has to exit after SIGTERM before it is killed.
    pub stop_timeout: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    command: Vec<String>,
    #[serde(default)]
    workdir: Option<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    port_env: Option<String>,
    #[serde(default)]
    commit_env: Option<String>,
    #[serde(default, with = "humantime_serde_compat")]
    stop_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde_compat")]
    settle: Option<Duration>,
}

/// How long a service without HTTP must stay up before it counts as live, by default: long
/// enough for a worker that fails on a missing variable or an unreachable queue at boot.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(3);

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

    fn parse(s: &str) -> Result<Duration, String> {
        let s = s.trim();
        let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a duration like `5s` or `500ms`"))?;
        match unit {
            "ms" => Ok(Duration::from_millis(n)),
            "s" | "" => Ok(Duration::from_secs(n)),
            "m" => Ok(Duration::from_secs(n * 60)),
            _ => Err(format!("`{s}` is not a duration like `5s` or `500ms`")),
        }
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
        let table = service.settings_for(environment);
        let key = service.settings_path(name, environment, None);
        let raw: Raw = table.try_into().map_err(|e: toml::de::Error| {
            spec.error_at(
                &key,
                format!(
                    "service `{name}` on the local provider: {} (settings: command, workdir, port, port_env, commit_env, stop_timeout, settle)",
                    e.message().trim()
                ),
            )
        })?;
        if raw.command.is_empty() {
            return Err(spec.error_at(
                &format!("{key}.command"),
                format!("service `{name}`: `command` is empty"),
            ));
        }
        let health_path = match (&service.health_path, service.http) {
            (Some(_), false) => {
                return Err(spec.error_at(
                    &format!("services.{name}.health_path"),
                    format!("service `{name}` has `http = false`: it has no health path (remove `health_path`, or `http = false`)"),
                ));
            }
            (None, false) => None,
            (path, true) => Some(path.clone().unwrap_or_else(|| "/".to_owned())),
        };
        if let Some(path) = &health_path
            && !path.starts_with('/')
        {
            return Err(spec.error_at(
                &format!("services.{name}.health_path"),
                "`health_path` must start with `/`",
            ));
        }
        if raw.settle.is_some() && service.http {
            return Err(spec.error_at(
                &format!("{key}.settle"),
                format!("`settle` is for services with `http = false`; `{name}` is live when {} answers", health_path.as_deref().unwrap_or("/")),
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
            settle: raw.settle.unwrap_or(DEFAULT_SETTLE),
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
            health_path: Some(health_path.to_owned()),
            settle: DEFAULT_SETTLE,
            stop_timeout: Duration::from_secs(5),
        }
    }
}
