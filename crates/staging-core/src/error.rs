//! The one error type of the toolkit: kinds, not strings.

use std::time::Duration;

/// A boxed error from a provider's own client, kept as the `source` of [`Error::Provider`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias used across every crate of the toolkit.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, as a kind a caller can act on.
///
/// Providers keep their own private error type and map it to one of these kinds in a single
/// function; the CLI maps kinds to exit codes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The thing asked for does not exist (service, deploy, secret, file).
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for, e.g. `service "web" in environment staging`.
        what: String,
    },
    /// Credentials are missing or were refused.
    #[error("authentication failed for {provider}: {message}")]
    Unauthenticated {
        /// The provider or store that refused.
        provider: String,
        /// Why, never containing the credential itself.
        message: String,
    },
    /// Credentials are valid but not allowed to do this.
    #[error("permission denied by {provider}: {message}")]
    PermissionDenied {
        /// The provider or store that refused.
        provider: String,
        /// Why.
        message: String,
    },
    /// The provider asked us to slow down.
    #[error("rate limited by {provider}{}", retry_after.map(|d| format!(" (retry after {})", humantime::format_duration(d))).unwrap_or_default())]
    RateLimited {
        /// The provider that limited us.
        provider: String,
        /// How long it asked us to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// The request conflicts with the current state (a deploy already running, say).
    #[error("conflict: {message}")]
    Conflict {
        /// What conflicts.
        message: String,
    },
    /// A bounded wait ran out.
    #[error("timed out after {}: {what}", humantime::format_duration(*after))]
    Timeout {
        /// What was being waited for.
        what: String,
        /// How long we waited.
        after: Duration,
    },
    /// The spec or a setting is invalid. `location` is `file:line:col` when known.
    #[error("{}{message}", location.as_ref().map(|l| format!("{l}: ")).unwrap_or_default())]
    ConfigInvalid {
        /// `file:line:col`, when the problem has a place in a file.
        location: Option<String>,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The provider cannot do this at all; see [`crate::Capabilities`].
    #[error("{provider} does not support {operation}")]
    NotSupported {
        /// The provider.
        provider: String,
        /// The operation it cannot do.
        operation: String,
    },
    /// Another run holds the environment's lease (it is being changed now): the message
    /// names that run — its id, command, commit, host and since when.
    #[error("{message}")]
    Locked {
        /// Which environment, held by which run, and how to wait for it.
        message: String,
    },
    /// A step or check ran and found a problem (a failed deploy, a failed migration).
    #[error("{message}")]
    Failed {
        /// What failed, with its evidence.
        message: String,
    },
    /// Any other failure of a provider's client, with its source.
    #[error("{provider}: {source}")]
    Provider {
        /// The provider.
        provider: String,
        /// The underlying error (already stripped of credentials).
        #[source]
        source: BoxError,
        /// Whether trying again may help (5xx, connection reset, timeouts).
        retryable: bool,
    },
    /// Local I/O failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether retrying the same request later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::RateLimited { .. } | Error::Timeout { .. } => true,
            Error::Provider { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// How long the provider asked us to wait before trying again, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Shorthand for [`Error::ConfigInvalid`] without a location.
    pub fn config(message: impl Into<String>) -> Self {
        Error::ConfigInvalid {
            location: None,
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::ConfigInvalid`] at a place in a file.
    pub fn config_at(location: impl Into<String>, message: impl Into<String>) -> Self {
        Error::ConfigInvalid {
            location: Some(location.into()),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound { what: what.into() }
    }

    /// Shorthand for [`Error::NotSupported`].
    pub fn not_supported(provider: impl Into<String>, operation: impl Into<String>) -> Self {
        Error::NotSupported {
            provider: provider.into(),
            operation: operation.into(),
        }
    }

    /// Shorthand for [`Error::Failed`].
    pub fn failed(message: impl Into<String>) -> Self {
        Error::Failed {
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The kind as a stable snake-case name (`not_found`, `unauthenticated`,
    /// `config_invalid`, ...), as machine-readable output (the CLI's `--json` envelope)
    /// names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "not_found",
            Error::Unauthenticated { .. } => "unauthenticated",
            Error::PermissionDenied { .. } => "permission_denied",
            Error::RateLimited { .. } => "rate_limited",
            Error::Conflict { .. } => "conflict",
            Error::Locked { .. } => "locked",
            Error::Timeout { .. } => "timeout",
            Error::ConfigInvalid { .. } => "config_invalid",
            Error::NotSupported { .. } => "not_supported",
            Error::Failed { .. } => "failed",
            Error::Provider { .. } => "provider",
            Error::Io { .. } => "io",
        }
    }

    /// The coarse class of this error, which the CLI maps to an exit code.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::ConfigInvalid { .. } => ErrorClass::Usage,
            Error::Failed { .. } | Error::Conflict { .. } => ErrorClass::Failed,
            Error::Timeout { .. } => ErrorClass::Failed,
            _ => ErrorClass::CannotProceed,
        }
    }
}

/// An error and its sources on one line (`error sending request: connection refused`),
/// a source left out when the text before already says it.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Coarse classes of failure, one per non-zero exit code of the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// A check or step ran and failed (exit 1).
    Failed,
    /// Bad usage or an invalid spec (exit 2).
    Usage,
    /// The run could not proceed: unreachable, refused, not supported (exit 3).
    CannotProceed,
}

impl ErrorClass {
    /// The documented exit code of the class.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorClass::Failed => 1,
            ErrorClass::Usage => 2,
            ErrorClass::CannotProceed => 3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_kinds_are_retryable() {
        let cases: Vec<(Error, bool)> = vec![
            (
                Error::RateLimited {
                    provider: "p".into(),
                    retry_after: None,
                },
                true,
            ),
            (
                Error::Timeout {
                    what: "x".into(),
                    after: Duration::from_secs(1),
                },
                true,
            ),
            (
                Error::Provider {
                    provider: "p".into(),
                    source: "x".into(),
                    retryable: true,
                },
                true,
            ),
            (
                Error::Provider {
                    provider: "p".into(),
                    source: "x".into(),
                    retryable: false,
                },
                false,
            ),
            (Error::not_found("svc"), false),
            (
                Error::Unauthenticated {
                    provider: "p".into(),
                    message: "no".into(),
                },
                false,
            ),
            (Error::config("bad"), false),
            (Error::not_supported("p", "rollback"), false),
        ];
        for (err, want) in cases {
            assert_eq!(err.is_retryable(), want, "{err:?}");
        }
    }

    #[test]
    fn config_error_displays_its_location_first() {
        let e = Error::config_at("staging.toml:3:7", "unknown key `prvider`");
        assert_eq!(e.to_string(), "staging.toml:3:7: unknown key `prvider`");
    }

    #[test]
    fn rate_limit_mentions_retry_after() {
        let e = Error::RateLimited {
            provider: "render".into(),
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(e.to_string(), "rate limited by render (retry after 3s)");
    }
}
