//! SES (v2) readiness: the account can send and is out of the sandbox, sender identities are
//! verified with DKIM, and optionally a test message goes out.
//!
//! The runbooks' lesson: in the sandbox every *recipient* must be verified too, so a send to
//! an unverified address fails even though the sender is fine. The probes say so.

use std::time::Instant;

use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use staging_core::{Error, Probe, ProbeOutcome, Result, async_trait};

use crate::context::AwsContext;
use crate::error::map_sdk_error;

const SANDBOX_NOTE: &str = "in the SES sandbox every recipient must be verified too";

/// What `GetAccount` says.
#[derive(Debug, Clone, PartialEq)]
struct Account {
    sending_enabled: bool,
    production_access: bool,
    max_24h: f64,
    max_rate: f64,
    sent_24h: f64,
    enforcement: Option<String>,
}

async fn account(client: &aws_sdk_sesv2::Client) -> Result<Account> {
    let out = client
        .get_account()
        .send()
        .await
        .map_err(|e| map_sdk_error("ses:GetAccount", e))?;
    let quota = out.send_quota();
    Ok(Account {
        sending_enabled: out.sending_enabled(),
        production_access: out.production_access_enabled(),
        max_24h: quota.map(|q| q.max24_hour_send()).unwrap_or(0.0),
        max_rate: quota.map(|q| q.max_send_rate()).unwrap_or(0.0),
        sent_24h: quota.map(|q| q.sent_last24_hours()).unwrap_or(0.0),
        enforcement: out.enforcement_status().map(str::to_owned),
    })
}

/// The account can send, and (when required) has production access.
#[derive(Debug, Clone)]
pub struct SesAccountProbe {
    name: String,
    ctx: AwsContext,
    require_production_access: bool,
}

impl SesAccountProbe {
    /// A probe of the account; fails in the sandbox when `require_production_access`.
    pub fn new(name: impl Into<String>, ctx: AwsContext, require_production_access: bool) -> Self {
        SesAccountProbe {
            name: name.into(),
            ctx,
            require_production_access,
        }
    }
}

#[async_trait]
impl Probe for SesAccountProbe {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "aws.ses_account"
    }

    async fn run(&self) -> Result<ProbeOutcome> {
        let started = Instant::now();
        let expected = if self.require_production_access {
            "sending enabled, production access (out of the sandbox)"
        } else {
            "sending enabled"
        };
        let a = account(&self.ctx.ses().await).await?;
        let quota = format!(
            "{}/24h at {}/s, {} sent in the last 24h",
            a.max_24h, a.max_rate, a.sent_24h
        );
        let mode = if a.production_access {
            "production access".to_owned()
        } else {
            format!("sandbox: {SANDBOX_NOTE}")
        };
        let observed = format!(
            "sending {}, {mode} (quota {quota}){}",
            if a.sending_enabled {
                "enabled"
            } else {
                "DISABLED"
            },
            a.enforcement
                .as_deref()
                .filter(|e| *e != "HEALTHY")
                .map(|e| format!(", enforcement {e}"))
                .unwrap_or_default()
        );
        let ok = a.sending_enabled && (a.production_access || !self.require_production_access);
        let outcome = if ok {
            ProbeOutcome::pass(expected, observed, started.elapsed())
        } else {
            ProbeOutcome::fail(expected, observed, started.elapsed())
        };
        Ok(outcome
            .with_evidence("production_access", a.production_access.to_string())
            .with_evidence("max_24_hour_send", a.max_24h.to_string()))
    }
}

/// What `GetEmailIdentity` says of one identity.
#[derive(Debug, Clone)]
struct IdentityState {
    verified: bool,
    verification: String,
    domain: bool,
    dkim: String,
}

async fn identity(client: &aws_sdk_sesv2::Client, identity: &str) -> Result<Option<IdentityState>> {
    match client
        .get_email_identity()
        .email_identity(identity)
        .send()
        .await
    {
        Ok(out) => {
            let verification = out.verification_status().map(|s| s.as_str().to_owned());
            // `VerificationStatus` is the newer, finer field; older answers only carry the flag.
            let verified = match &verification {
                Some(v) => v == "SUCCESS",
                None => out.verified_for_sending_status(),
            };
            Ok(Some(IdentityState {
                verified,
                verification: verification.unwrap_or_else(|| {
                    if verified {
                        "SUCCESS".into()
                    } else {
                        "PENDING".into()
                    }
                }),
                domain: out.identity_type().map(|t| t.as_str()) == Some("DOMAIN"),
                dkim: out
                    .dkim_attributes()
                    .and_then(|d| d.status())
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_else(|| "NOT_STARTED".into()),
            }))
        }
        Err(e) => match map_sdk_error("ses:GetEmailIdentity", e) {
            Error::NotFound { .. } => Ok(None),
            other => Err(other),
        },
    }
}

/// A sender identity (domain or address) is verified, and a domain's DKIM is `SUCCESS`.
#[derive(Debug, Clone)]
pub struct SesIdentityProbe {
    name: String,
    ctx: AwsContext,
    identity: String,
    require_dkim: bool,
}

impl SesIdentityProbe {
    /// A probe of `identity` (`example.com` or `noreply@example.com`).
    pub fn new(
        name: impl Into<String>,
        ctx: AwsContext,
        identity: impl Into<String>,
        require_dkim: bool,
    ) -> Self {
        SesIdentityProbe {
            name: name.into(),
            ctx,
            identity: identity.into(),
            require_dkim,
        }
    }
}

#[async_trait]
impl Probe for SesIdentityProbe {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "aws.ses_identity"
    }

    async fn run(&self) -> Result<ProbeOutcome> {
        let started = Instant::now();
        let is_domain = !self.identity.contains('@');
        let expected = if is_domain && self.require_dkim {
            format!("{} verified, DKIM SUCCESS", self.identity)
        } else {
            format!("{} verified", self.identity)
        };
        let client = self.ctx.ses().await;
        let Some(state) = identity(&client, &self.identity).await? else {
            return Ok(ProbeOutcome::fail(
                expected,
                format!(
                    "{} is not an SES identity of this account and region",
                    self.identity
                ),
                started.elapsed(),
            ));
        };
        let observed = format!("verification {}, DKIM {}", state.verification, state.dkim);
        let dkim_ok = !(state.domain && self.require_dkim) || state.dkim == "SUCCESS";
        let outcome = if state.verified && dkim_ok {
            ProbeOutcome::pass(expected, observed, started.elapsed())
        } else {
            ProbeOutcome::fail(expected, observed, started.elapsed())
        };
        Ok(outcome.with_evidence("dkim", state.dkim))
    }
}

/// Send one test message; in the sandbox, first check that the recipient is verified (it
/// must be) and say so instead of sending into a rejection.
#[derive(Debug, Clone)]
pub struct SesTestSendProbe {
    name: String,
    ctx: AwsContext,
    from: String,
    to: String,
}

impl SesTestSendProbe {
    /// A probe sending from `from` to `to`.
    pub fn new(
        name: impl Into<String>,
        ctx: AwsContext,
        from: impl Into<String>,
        to: impl Into<String>,
    ) -> Self {
        SesTestSendProbe {
            name: name.into(),
            ctx,
            from: from.into(),
            to: to.into(),
        }
    }
}

#[async_trait]
impl Probe for SesTestSendProbe {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "aws.ses_send"
    }

    async fn run(&self) -> Result<ProbeOutcome> {
        let started = Instant::now();
        let expected = format!("a test message from {} to {} accepted", self.from, self.to);
        let client = self.ctx.ses().await;
        let a = account(&client).await?;
        let sandbox = !a.production_access;
        if sandbox {
            let domain = self.to.rsplit_once('@').map(|(_, d)| d).unwrap_or(&self.to);
            let mut verified = false;
            for candidate in [self.to.as_str(), domain] {
                if identity(&client, candidate)
                    .await?
                    .is_some_and(|s| s.verified)
                {
                    verified = true;
                    break;
                }
            }
            if !verified {
                return Ok(ProbeOutcome::fail(
                    expected,
                    format!(
                        "not sent: the account is in the sandbox and {} is not verified; {SANDBOX_NOTE}",
                        self.to
                    ),
                    started.elapsed(),
                ));
            }
        }
        let content = EmailContent::builder()
            .simple(
                Message::builder()
                    .subject(Content::builder().data("staging: SES test message").build().map_err(build_error)?)
                    .body(
                        Body::builder()
                            .text(
                                Content::builder()
                                    .data("Sent by `staging` to check that this environment can send mail.")
                                    .build()
                                    .map_err(build_error)?,
                            )
                            .build(),
                    )
                    .build(),
            )
            .build();
        let sent = client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(&self.to).build())
            .content(content)
            .send()
            .await;
        let elapsed = started.elapsed();
        match sent {
            Ok(out) => Ok(ProbeOutcome::pass(expected, "accepted", elapsed)
                .with_evidence("message_id", out.message_id().unwrap_or_default())),
            Err(e) => {
                let rejected = e.as_service_error().is_some_and(|s| {
                    s.is_message_rejected() || s.is_mail_from_domain_not_verified_exception()
                });
                let err = map_sdk_error("ses:SendEmail", e);
                if !rejected {
                    return Err(err);
                }
                let hint = if sandbox {
                    format!("; {SANDBOX_NOTE}")
                } else {
                    String::new()
                };
                Ok(ProbeOutcome::fail(
                    expected,
                    format!("rejected: {err}{hint}"),
                    elapsed,
                ))
            }
        }
    }
}

fn build_error(e: aws_sdk_sesv2::error::BuildError) -> Error {
    Error::failed(format!("cannot build the SES test message: {e}"))
}
