//! The one place where an AWS SDK error becomes a kind of [`staging_core::Error`].
//!
//! Every SDK call goes through [`map_sdk_error`]; it reduces the SDK's error to a
//! [`Failure`] (error code, HTTP status, transport problem or not) and [`classify`] decides
//! the kind from that alone, so the decision is a pure function tested by a table.

// With every AWS service compiled out, nothing calls an SDK.
#![cfg_attr(
    not(any(
        feature = "ecs",
        feature = "ses",
        feature = "secretsmanager",
        feature = "elb",
        feature = "acm",
        feature = "route53",
        feature = "logs"
    )),
    allow(dead_code)
)]

use std::error::Error as StdError;
use std::fmt;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use staging_core::Error;
use staging_core::error::error_chain;

/// The provider name errors are reported under.
pub(crate) const PROVIDER: &str = "aws";

/// What an SDK error boils down to, for [`classify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The AWS error code (`ThrottlingException`, `ResourceNotFoundException`).
    pub(crate) code: Option<String>,
    /// The HTTP status of the error response, when there was one.
    pub(crate) status: Option<u16>,
    /// Where the call failed before or without an error response.
    pub(crate) transport: Transport,
    /// The service's message or the client's description; never contains credentials.
    pub(crate) message: String,
}

/// How far a call got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// The service answered with an error response.
    Answered,
    /// The request could not be built (no credentials, no region).
    NotSent,
    /// Connection failure, timeout or an unreadable response.
    Lost,
}

/// An SDK error as the source of [`Error::Provider`]: the operation and the service's words,
/// nothing from the request (no headers, no signature).
#[derive(Debug)]
struct AwsCallError {
    operation: String,
    failure: Failure,
}

impl fmt::Display for AwsCallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.operation)?;
        if let Some(code) = &self.failure.code {
            write!(f, ": {code}")?;
        }
        if let Some(status) = self.failure.status {
            write!(f, " (HTTP {status})")?;
        }
        if !self.failure.message.is_empty() {
            write!(f, ": {}", self.failure.message)?;
        }
        Ok(())
    }
}

impl StdError for AwsCallError {}

/// Reduce an SDK error to a [`Failure`].
pub(crate) fn failure_of<E>(err: &SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    match err {
        SdkError::ServiceError(ctx) => Failure {
            code: ctx.err().code().map(str::to_owned),
            status: Some(ctx.raw().status().as_u16()),
            transport: Transport::Answered,
            message: ctx.err().message().map(str::to_owned).unwrap_or_default(),
        },
        SdkError::ConstructionFailure(_) => Failure {
            code: None,
            status: None,
            transport: Transport::NotSent,
            message: error_chain(err),
        },
        SdkError::ResponseError(ctx) => Failure {
            code: None,
            status: Some(ctx.raw().status().as_u16()),
            transport: Transport::Lost,
            message: error_chain(err),
        },
        _ => Failure {
            code: None,
            status: None,
            transport: Transport::Lost,
            message: error_chain(err),
        },
    }
}

/// Map an SDK error of `operation` (`ecs:DescribeServices`) to a kind.
pub(crate) fn map_sdk_error<E>(operation: &str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    classify(operation, failure_of(&err))
}

const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "PriorRequestNotComplete",
    "BandwidthLimitExceeded",
    "EC2ThrottledException",
];

const UNAUTHENTICATED: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "AuthFailure",
];

const PERMISSION: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "NotAuthorizedException",
    "AccountSendingPausedException",
];

const CONFLICT: &[&str] = &[
    "ConflictException",
    "ConcurrentModificationException",
    "ResourceExistsException",
    "ResourceInUseException",
    "AlreadyExistsException",
    "InvalidChangeBatch",
];

/// Decide the kind of a failed call. The single mapping of the crate; see the table test.
pub(crate) fn classify(operation: &str, failure: Failure) -> Error {
    let code = failure.code.as_deref().unwrap_or("");
    let status = failure.status.unwrap_or(0);
    let lower_message = failure.message.to_ascii_lowercase();
    let provider = || PROVIDER.to_owned();
    let describe = |f: &Failure| {
        let mut s = operation.to_owned();
        if let Some(c) = &f.code {
            s.push_str(": ");
            s.push_str(c);
        }
        if !f.message.is_empty() {
            s.push_str(": ");
            s.push_str(&f.message);
        }
        s
    };

    if THROTTLING.contains(&code) || status == 429 {
        return Error::RateLimited {
            provider: provider(),
            retry_after: None,
        };
    }
    if UNAUTHENTICATED.contains(&code) || status == 401 {
        return Error::Unauthenticated {
            provider: provider(),
            message: describe(&failure),
        };
    }
    if PERMISSION.contains(&code) || (status == 403 && failure.transport == Transport::Answered) {
        return Error::PermissionDenied {
            provider: provider(),
            message: describe(&failure),
        };
    }
    if failure.transport != Transport::Answered {
        // No answer: a missing or unloadable credential shows up here (as a construction or
        // a dispatch failure, depending on where the SDK noticed); a request that could not
        // be built for another reason (no region) is a configuration problem.
        if lower_message.contains("credential") || lower_message.contains("identity") {
            return Error::Unauthenticated {
                provider: provider(),
                message: format!(
                    "{operation}: no usable AWS credentials ({}); set a profile, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or an SSO session",
                    failure.message
                ),
            };
        }
        if failure.transport == Transport::NotSent {
            return Error::config(format!(
                "{operation}: the AWS request could not be built: {}",
                failure.message
            ));
        }
    }
    let not_found = code.ends_with("NotFound")
        || code.ends_with("NotFoundException")
        || code.starts_with("NoSuch")
        || status == 404;
    if not_found {
        return Error::not_found(describe(&failure));
    }
    if CONFLICT.contains(&code) || status == 409 {
        return Error::Conflict {
            message: describe(&failure),
        };
    }
    let retryable = failure.transport == Transport::Lost
        || status >= 500
        || matches!(
            code,
            "InternalFailure"
                | "InternalError"
                | "ServiceUnavailable"
                | "ServerException"
                | "ServiceException"
        );
    Error::Provider {
        provider: provider(),
        source: Box::new(AwsCallError {
            operation: operation.to_owned(),
            failure,
        }),
        retryable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(code: &str, status: u16) -> Failure {
        Failure {
            code: Some(code.to_owned()),
            status: Some(status),
            transport: Transport::Answered,
            message: "the service's words".into(),
        }
    }

    #[derive(Debug, PartialEq)]
    enum Kind {
        RateLimited,
        Unauthenticated,
        PermissionDenied,
        NotFound,
        Conflict,
        Config,
        Retryable,
        Fatal,
    }

    fn kind(e: &Error) -> Kind {
        match e {
            Error::RateLimited { .. } => Kind::RateLimited,
            Error::Unauthenticated { .. } => Kind::Unauthenticated,
            Error::PermissionDenied { .. } => Kind::PermissionDenied,
            Error::NotFound { .. } => Kind::NotFound,
            Error::Conflict { .. } => Kind::Conflict,
            Error::ConfigInvalid { .. } => Kind::Config,
            Error::Provider {
                retryable: true, ..
            } => Kind::Retryable,
            Error::Provider {
                retryable: false, ..
            } => Kind::Fatal,
            other => panic!("unexpected kind {other:?}"),
        }
    }

    #[test]
    fn sdk_failures_map_to_kinds() {
        let lost = |m: &str| Failure {
            code: None,
            status: None,
            transport: Transport::Lost,
            message: m.into(),
        };
        let not_sent = |m: &str| Failure {
            code: None,
            status: None,
            transport: Transport::NotSent,
            message: m.into(),
        };
        let cases: Vec<(Failure, Kind)> = vec![
            (answered("ThrottlingException", 400), Kind::RateLimited),
            (answered("Throttling", 400), Kind::RateLimited),
            (answered("TooManyRequestsException", 429), Kind::RateLimited),
            (answered("PriorRequestNotComplete", 400), Kind::RateLimited),
            (answered("Anything", 429), Kind::RateLimited),
            (
                answered("AccessDeniedException", 400),
                Kind::PermissionDenied,
            ),
            (answered("AccessDenied", 403), Kind::PermissionDenied),
            (answered("Whatever", 403), Kind::PermissionDenied),
            (
                answered("UnrecognizedClientException", 400),
                Kind::Unauthenticated,
            ),
            (answered("InvalidClientTokenId", 403), Kind::Unauthenticated),
            (
                answered("ExpiredTokenException", 400),
                Kind::Unauthenticated,
            ),
            (answered("ResourceNotFoundException", 400), Kind::NotFound),
            (answered("ServiceNotFoundException", 400), Kind::NotFound),
            (answered("ClusterNotFoundException", 400), Kind::NotFound),
            (answered("TargetGroupNotFound", 400), Kind::NotFound),
            (answered("NoSuchHostedZone", 404), Kind::NotFound),
            (answered("NotFoundException", 404), Kind::NotFound),
            (answered("ResourceExistsException", 400), Kind::Conflict),
            (
                answered("ConcurrentModificationException", 409),
                Kind::Conflict,
            ),
            (answered("InternalFailure", 500), Kind::Retryable),
            (answered("ServiceUnavailable", 503), Kind::Retryable),
            (answered("ServerException", 500), Kind::Retryable),
            (answered("InvalidParameterException", 400), Kind::Fatal),
            (answered("ValidationException", 400), Kind::Fatal),
            (answered("MessageRejected", 400), Kind::Fatal),
            (
                lost("dispatch failure: io error: connection refused"),
                Kind::Retryable,
            ),
            (lost("timeout"), Kind::Retryable),
            (
                not_sent("failed to construct request: no credentials in the chain"),
                Kind::Unauthenticated,
            ),
            (
                not_sent("failed to resolve identity"),
                Kind::Unauthenticated,
            ),
            (not_sent("no region configured"), Kind::Config),
            (
                lost(
                    "dispatch failure: other: failed to select an auth scheme: there was no identity resolver",
                ),
                Kind::Unauthenticated,
            ),
            (
                lost("dispatch failure: the credential provider was not enabled"),
                Kind::Unauthenticated,
            ),
        ];
        for (failure, want) in cases {
            let shown = format!("{failure:?}");
            let got = classify("test:Op", failure);
            assert_eq!(kind(&got), want, "{shown} became {got:?}");
        }
    }

    #[test]
    fn provider_errors_name_the_operation_and_the_code() {
        let e = classify(
            "ecs:UpdateService",
            answered("InvalidParameterException", 400),
        );
        let text = e.to_string();
        assert!(text.contains("ecs:UpdateService"), "{text}");
        assert!(text.contains("InvalidParameterException"), "{text}");
    }
}
