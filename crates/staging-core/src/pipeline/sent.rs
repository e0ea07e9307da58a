//! The deploys a run has asked the platform for, from the moment each request is sent, and
//! canceling them when the run is interrupted (`staging up --cancel-on-interrupt`).
//!
//! A signal stops a run by dropping its future, at whatever await it was in. A deploy
//! request can be on its way then: the platform may have received it and started a build
//! while its answer (the deploy's id) is not in. A run that knew only the ids it had received
//! would leave that build running. So the deploy step writes each request into the run's
//! [`SentDeploys`] right *before* it is sent, and its id the moment the answer is in; the
//! ledger lives on the [`RunContext`], which outlives the dropped future. [`cancel_sent`]
//! then cancels every deploy in it: by its id when the answer came, else the one the
//! platform lists, read back within [`READ_BACK_TIMEOUT`], as the service's newest deploy,
//! of the run's commit, in place of the one that was newest when the request was sent.
//! Every provider with the [`crate::Cancel`] capability gets this through its required
//! [`crate::Provider::live_state`]; nothing is canceled that cannot be shown to be the run's
//! own (another commit, or no deploy newer than before, is reported and left alone).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::join_all;
use serde::Serialize;

use super::RunContext;
use super::steps::{commits_match, short};
use crate::boundary::WriteTarget;
use crate::cadence::Cadence;
use crate::error::{Error, Result};
use crate::provider::{Deploy, DeployStatus, DynProvider, ProviderExt};
use crate::retry::{Next, poll_until};

/// How long an unanswered deploy request is read back for: the platform may list the deploy
/// a moment after it received the request. Past it, nothing is canceled and the report says
/// so.
pub const READ_BACK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one cancel request (with its retries) may take.
pub const CANCEL_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest pause between two reads of the read-back (the provider's own poll interval
/// when it is shorter, and its read budget, still apply).
const READ_BACK_POLL: Duration = Duration::from_secs(1);

/// One deploy request of the run, from the moment it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentDeploy {
    /// The spec's service.
    pub service: String,
    /// Where the deploy was sent: the target the run's boundary issued for it.
    pub target: WriteTarget,
    /// The commit asked for.
    pub commit: String,
    /// The platform's newest deploy of the service when the request was sent (what the
    /// deploy step read before writing): a read-back looks for a deploy newer than it.
    pub newest_before: Option<String>,
    /// The deploy's id, once the platform's answer is in.
    pub deploy_id: Option<String>,
}

/// The run's deploy requests, by service: written by the deploy step before each request
/// is sent and when its answer is in, read by [`cancel_sent`] after a signal. Shared by
/// reference (the deploy step's concurrent starts hold `&RunContext`); the lock is never held
/// across an await.
#[derive(Debug, Default)]
pub struct SentDeploys {
    entries: Mutex<BTreeMap<String, SentDeploy>>,
}

impl SentDeploys {
    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SentDeploy>> {
        // A panic elsewhere while holding it leaves the map whole (each change is one insert
        // or one field): keep reading it.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The request for `deploy.service` is about to be sent (its answer not in).
    pub fn sending(&self, deploy: SentDeploy) {
        self.entries().insert(deploy.service.clone(), deploy);
    }

    /// The platform answered the request for `service` with deploy `deploy_id`.
    pub fn answered(&self, service: &str, deploy_id: &str) {
        if let Some(entry) = self.entries().get_mut(service) {
            entry.deploy_id = Some(deploy_id.to_owned());
        }
    }

    /// Every request sent so far, by service name.
    pub fn all(&self) -> Vec<SentDeploy> {
        self.entries().values().cloned().collect()
    }

    /// Whether no request was sent.
    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }
}

/// What [`cancel_sent`] did about one deploy request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CancelReport {
    /// The spec's service.
    pub service: String,
    /// The commit the request asked for.
    pub commit: String,
    /// The deploy, when known: from the answer, or read back.
    pub deploy_id: Option<String>,
    /// The deploy was found by reading the platform back: its answer had not arrived.
    pub read_back: bool,
    /// What happened.
    pub outcome: CancelOutcome,
}

/// How a cancel ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CancelOutcome {
    /// The cancel was sent; the deploy as the platform reports it now.
    Sent {
        /// Its status after the cancel (`canceled` unless it finished first).
        status: DeployStatus,
    },
    /// The deploy had finished before the cancel (read back live, failed, ...): nothing sent.
    AlreadyFinished {
        /// Its status.
        status: DeployStatus,
    },
    /// No deploy of the commit newer than the one before the request was listed within
    /// [`READ_BACK_TIMEOUT`]: the request most likely never reached the platform.
    NotFound,
    /// The newest deploy is of another commit (or of none known): not the run's, left alone.
    NotOurs {
        /// That deploy's id.
        id: String,
        /// Its commit, when the platform gives one.
        commit: Option<String>,
    },
    /// The cancel or the read-back failed; the deploy may still be running.
    Failed {
        /// Why.
        reason: String,
    },
}

impl CancelReport {
    /// Whether the deploy is known not to be running on after this (canceled, finished, or
    /// never started).
    pub fn settled(&self) -> bool {
        match &self.outcome {
            CancelOutcome::Sent { status } => status.is_terminal(),
            CancelOutcome::AlreadyFinished { .. } | CancelOutcome::NotFound => true,
            CancelOutcome::NotOurs { .. } | CancelOutcome::Failed { .. } => false,
        }
    }
}

impl fmt::Display for CancelReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let service = &self.service;
        let commit = short(&self.commit);
        let id = self.deploy_id.as_deref().unwrap_or("?");
        let found = if self.read_back {
            format!(
                " (of {commit}; its request was sent and its answer had not arrived: found on the platform by its commit)"
            )
        } else {
            String::new()
        };
        match &self.outcome {
            CancelOutcome::Sent { status } => {
                write!(f, "{service}: deploy {id} is {status}{found}")
            }
            CancelOutcome::AlreadyFinished { status } => write!(
                f,
                "{service}: deploy {id} was already {status}, nothing to cancel{found}"
            ),
            CancelOutcome::NotFound => write!(
                f,
                "{service}: the deploy of {commit} was requested, but the platform listed no new deploy of it within {}s: nothing canceled (check the platform if it shows one later)",
                READ_BACK_TIMEOUT.as_secs()
            ),
            CancelOutcome::NotOurs { id, commit: other } => write!(
                f,
                "{service}: the deploy of {commit} was requested, but the newest deploy {id} is of {}, not this run's: nothing canceled",
                other
                    .as_deref()
                    .map(|c| format!("commit {}", short(c)))
                    .unwrap_or_else(|| "an unknown commit".to_owned())
            ),
            CancelOutcome::Failed { reason } => match &self.deploy_id {
                Some(id) => write!(f, "{service}: deploy {id} was not canceled: {reason}"),
                None => write!(
                    f,
                    "{service}: the deploy of {commit} may be running (its answer had not arrived) and was not canceled: {reason}"
                ),
            },
        }
    }
}

/// Cancel every deploy request of the run that may still be running, all at once, each
/// bounded ([`READ_BACK_TIMEOUT`], then [`CANCEL_TIMEOUT`]): by its id when its answer came,
/// else read back by commit (see the module). One report per request, by service name; none
/// when no request was sent (nothing is read or written then).
pub async fn cancel_sent(ctx: &RunContext) -> Vec<CancelReport> {
    let sent = ctx.sent_deploys.all();
    let Some(provider) = ctx.provider.clone().filter(|_| !sent.is_empty()) else {
        return vec![];
    };
    join_all(sent.into_iter().map(|s| cancel_one(&provider, s))).await
}

async fn cancel_one(provider: &DynProvider, sent: SentDeploy) -> CancelReport {
    let mut report = CancelReport {
        service: sent.service.clone(),
        commit: sent.commit.clone(),
        deploy_id: sent.deploy_id.clone(),
        read_back: false,
        outcome: CancelOutcome::NotFound,
    };
    let id = match &sent.deploy_id {
        Some(id) => id.clone(),
        None => {
            report.read_back = true;
            let found = read_back(provider, &sent).await;
            match found {
                Ok(ReadBack::Ours(deploy)) => {
                    report.deploy_id = Some(deploy.id.clone());
                    if deploy.status.is_terminal() {
                        report.outcome = CancelOutcome::AlreadyFinished {
                            status: deploy.status,
                        };
                        return report;
                    }
                    deploy.id
                }
                Ok(ReadBack::Other(deploy)) => {
                    report.outcome = CancelOutcome::NotOurs {
                        id: deploy.id,
                        commit: deploy.commit,
                    };
                    return report;
                }
                Err(ReadBackError::NothingNew) => {
                    report.outcome = CancelOutcome::NotFound;
                    return report;
                }
                Err(ReadBackError::Failed(e)) => {
                    report.outcome = CancelOutcome::Failed {
                        reason: format!("reading its deploys back failed: {e}"),
                    };
                    return report;
                }
            }
        }
    };
    let cancel = provider.cancel_deploy(&sent.target, &id);
    report.outcome = match tokio::time::timeout(CANCEL_TIMEOUT, cancel).await {
        Ok(Ok(d)) => CancelOutcome::Sent { status: d.status },
        Ok(Err(e)) => CancelOutcome::Failed {
            reason: e.to_string(),
        },
        Err(_) => CancelOutcome::Failed {
            reason: format!("no answer within {}s", CANCEL_TIMEOUT.as_secs()),
        },
    };
    report
}

/// What the platform lists as the service's newest deploy once it is not the one before the
/// request.
enum ReadBack {
    /// Of the run's commit: the request's deploy.
    Ours(Deploy),
    /// Of another commit, or of none the platform names.
    Other(Deploy),
}

/// Why a read-back found no deploy to cancel.
enum ReadBackError {
    /// The platform answered, and listed nothing newer within the bound.
    NothingNew,
    /// The platform could not be read (or never answered within the bound): whether the
    /// deploy exists is not known.
    Failed(Error),
}

/// Reads the service's newest deploy until one newer than [`SentDeploy::newest_before`] is
/// listed, within [`READ_BACK_TIMEOUT`].
async fn read_back(
    provider: &DynProvider,
    sent: &SentDeploy,
) -> std::result::Result<ReadBack, ReadBackError> {
    let mut answered = false;
    match poll_listed(provider, sent, &mut answered).await {
        Ok(found) => Ok(found),
        Err(Error::Timeout { .. }) if answered => Err(ReadBackError::NothingNew),
        Err(e) => Err(ReadBackError::Failed(e)),
    }
}

/// The poll of [`read_back`]; `answered` is set once the platform answered a read.
async fn poll_listed(
    provider: &DynProvider,
    sent: &SentDeploy,
    answered: &mut bool,
) -> Result<ReadBack> {
    let pacing = provider.pacing();
    let cadence = Cadence::new(
        provider.name(),
        pacing.read_budget,
        pacing.poll_interval.min(READ_BACK_POLL),
    );
    poll_until(
        &cadence,
        READ_BACK_TIMEOUT,
        || {
            format!(
                "a deploy of {} to {} to be listed",
                short(&sent.commit),
                sent.service
            )
        },
        || provider.live_state(sent.target.handle()),
        |state: crate::provider::LiveState, _| {
            *answered = true;
            Ok(match state.latest {
                Some(d) if Some(&d.id) != sent.newest_before.as_ref() => {
                    if d.commit
                        .as_deref()
                        .is_some_and(|c| commits_match(c, &sent.commit))
                    {
                        Next::Done(ReadBack::Ours(d))
                    } else {
                        Next::Done(ReadBack::Other(d))
                    }
                }
                _ => Next::Again("not listed yet".to_owned()),
            })
        },
    )
    .await
}
