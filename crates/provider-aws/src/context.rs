//! [`AwsContext`]: one lazily loaded `SdkConfig`, shared by the provider, the probes and the
//! secret store of an environment.
//!
//! `ProviderFactory::build` is synchronous while loading the AWS configuration is not, so
//! the configuration is loaded on first use (once) from the standard chain: environment
//! variables (including `AWS_ENDPOINT_URL`, which points every client at moto in tests),
//! profiles, SSO, `credential_process`, container and instance metadata.

use std::fmt;
use std::sync::Arc;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use tokio::sync::OnceCell;

/// Bound on one AWS operation, every retry included.
pub(crate) const AWS_OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Where AWS clients get their region, credentials and endpoint. Cheap to clone.
#[derive(Clone)]
pub struct AwsContext {
    inner: Arc<Inner>,
}

struct Inner {
    region: Option<String>,
    profile: Option<String>,
    config: OnceCell<SdkConfig>,
}

impl fmt::Debug for AwsContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the SdkConfig: it holds the credentials provider.
        f.debug_struct("AwsContext")
            .field("region", &self.inner.region)
            .field("profile", &self.inner.profile)
            .field("loaded", &self.inner.config.initialized())
            .finish()
    }
}

impl AwsContext {
    /// The standard aws-config chain, with an optional region and profile over it. Nothing is
    /// read until the first client is made.
    pub fn from_env(region: Option<String>, profile: Option<String>) -> Self {
        AwsContext {
            inner: Arc::new(Inner {
                region,
                profile,
                config: OnceCell::new(),
            }),
        }
    }

    /// An already built configuration (tests, embedding with custom credentials).
    pub fn from_sdk_config(config: SdkConfig) -> Self {
        let region = config.region().map(|r| r.to_string());
        AwsContext {
            inner: Arc::new(Inner {
                region,
                profile: None,
                config: OnceCell::new_with(Some(config)),
            }),
        }
    }

    /// The region asked for, if one was.
    pub fn region(&self) -> Option<&str> {
        self.inner.region.as_deref()
    }

    /// The configuration, loaded on first use. Its calls are bounded: connect 10 s, a pause
    /// between reads 30 s, one attempt 30 s, all attempts of one operation (retries included)
    /// 120 s (see docs/limits.md).
    pub async fn sdk_config(&self) -> &SdkConfig {
        self.inner
            .config
            .get_or_init(|| async {
                // Every call bounded: a silent endpoint fails instead of hanging a run.
                let timeouts = aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(staging_core::limits::DEFAULT_CONNECT_TIMEOUT)
                    .read_timeout(staging_core::limits::DEFAULT_READ_TIMEOUT)
                    .operation_attempt_timeout(staging_core::limits::DEFAULT_REQUEST_TIMEOUT)
                    .operation_timeout(AWS_OPERATION_TIMEOUT)
                    .build();
                let mut loader =
                    aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts);
                if let Some(region) = &self.inner.region {
                    loader = loader.region(Region::new(region.clone()));
                }
                if let Some(profile) = &self.inner.profile {
                    loader = loader.profile_name(profile);
                }
                loader.load().await
            })
            .await
    }

    /// An ECS client.
    #[cfg(feature = "ecs")]
    pub async fn ecs(&self) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::new(self.sdk_config().await)
    }

    /// An SESv2 client.
    #[cfg(feature = "ses")]
    pub async fn ses(&self) -> aws_sdk_sesv2::Client {
        aws_sdk_sesv2::Client::new(self.sdk_config().await)
    }

    /// A Secrets Manager client.
    #[cfg(feature = "secretsmanager")]
    pub async fn secrets_manager(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(self.sdk_config().await)
    }

    /// An ELBv2 client.
    #[cfg(feature = "elb")]
    pub async fn elb(&self) -> aws_sdk_elasticloadbalancingv2::Client {
        aws_sdk_elasticloadbalancingv2::Client::new(self.sdk_config().await)
    }

    /// An ACM client.
    #[cfg(feature = "acm")]
    pub async fn acm(&self) -> aws_sdk_acm::Client {
        aws_sdk_acm::Client::new(self.sdk_config().await)
    }

    /// A Route53 client.
    #[cfg(feature = "route53")]
    pub async fn route53(&self) -> aws_sdk_route53::Client {
        aws_sdk_route53::Client::new(self.sdk_config().await)
    }

    /// A CloudWatch Logs client.
    #[cfg(feature = "logs")]
    pub async fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        aws_sdk_cloudwatchlogs::Client::new(self.sdk_config().await)
    }
}
