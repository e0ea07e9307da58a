//! The environment lease for the commands that change an environment (`up`, `promote`,
//! `rollback`, `refresh`, `migrate apply|reset`, `secrets sync --apply`, `secrets
//! rotate`): taken from the evidence store before the first write, released after the run
//! and every process it started have stopped. Read-only commands never take it.

use std::future::Future;
use std::time::Duration;

use clap::Args;
use staging_core::Result;
use staging_core::spec::LoadedSpec;
use staging_evidence::DynEvidenceStore;
use staging_evidence::lease::{self, Lease, LeaseHolder, LeaseOptions};

use crate::commands::up::{StopSignals, Stopped};
use crate::output::Output;

/// How a command that changes an environment takes its lease.
#[derive(Debug, Args, Clone)]
pub(crate) struct LeaseArgs {
    /// When another run holds the environment's lease, wait up to DUR for it (`5m`);
    /// without it the command fails at once with exit 3, naming the run that holds it.
    /// Read-only commands (`plan`, `status`, `diff`, `logs`) never take the lease.
    #[arg(long, value_name = "DUR", env = "STAGING_WAIT_LOCK", value_parser = staging_core::spec::duration::parse)]
    pub(crate) wait_lock: Option<Duration>,
    /// How long the lease lasts unless renewed; the run renews it every third of this while
    /// it lasts, so it is how long a crashed run keeps the environment.
    #[arg(long, value_name = "DUR", env = "STAGING_LEASE_TTL", default_value = "60s", value_parser = staging_core::spec::duration::parse)]
    pub(crate) lease_ttl: Duration,
}

/// How a run that held the lease ended.
#[derive(Debug)]
pub(crate) enum Held<T> {
    /// The work ended by itself.
    Done(T),
    /// A signal stopped it.
    Stopped(Stopped),
    /// The lease was lost (released by force, or not renewed in time); why.
    Lost(String),
}

/// Who takes the lease of `env` of `spec`'s project: this process, running `command`
/// (`up`, `migrate apply`) of `commit` when it deploys one.
pub(crate) fn holder(
    spec: &LoadedSpec,
    env: &str,
    command: &str,
    commit: Option<&str>,
) -> LeaseHolder {
    LeaseHolder::this_process(
        &spec.spec.project.name,
        // An instance of an ephemeral environment has a lease of its own.
        spec.state_key(env),
        command,
        commit.map(str::to_owned),
    )
}

/// Take the lease for `holder` from `store`, waiting as `args` says; a signal while waiting
/// ends the wait (`Ok(Err(signal))`), another run's lease past the wait is an
/// `Error::Locked` (exit 3) naming it.
pub(crate) async fn take(
    store: &DynEvidenceStore,
    holder: LeaseHolder,
    args: &LeaseArgs,
    stop: &mut StopSignals,
    out: Output,
) -> Result<std::result::Result<Lease, Stopped>> {
    let env = holder.environment.clone();
    if args.lease_ttl < Duration::from_secs(1) {
        return Err(staging_core::Error::config(format!(
            "--lease-ttl {} is too short: a lease must last at least 1s to be renewed",
            humantime::format_duration(args.lease_ttl)
        )));
    }
    let wait = args.wait_lock.unwrap_or_default();
    let options = LeaseOptions {
        ttl: args.lease_ttl,
        wait,
        poll: Duration::from_secs(1).min(args.lease_ttl / 4),
    };
    let on_wait = |other: &lease::LeaseRecord| {
        out.note(&format!(
            "waiting up to {} (--wait-lock) for the lease of `{env}`: {} holds it",
            humantime::format_duration(wait),
            other.describe()
        ));
    };
    tokio::select! {
        lease = lease::acquire(store.clone(), holder, options, on_wait) => lease.map(Ok),
        signal = stop.wait() => Ok(Err(signal)),
    }
}

/// Run `work` while holding `lease`: it ends by itself, or is stopped (dropped, which stops
/// the processes it started) by a signal or by the loss of the lease.
pub(crate) async fn run_held<T>(
    lease: &mut Lease,
    stop: &mut StopSignals,
    work: impl Future<Output = T>,
) -> Held<T> {
    tokio::select! {
        done = work => Held::Done(done),
        signal = stop.wait() => Held::Stopped(signal),
        why = lease.lost() => Held::Lost(why),
    }
}

/// Release `lease`, saying so when that fails (it then expires by itself).
pub(crate) async fn release(lease: Lease, out: Output) {
    let env = lease.holder().environment.clone();
    if let Err(e) = lease.release().await {
        out.note(&format!(
            "warning: the lease of `{env}` was not released ({e}); it expires by itself"
        ));
    }
}

/// The work's result, or what a command says when a signal or the loss of its lease
/// stopped it, and the exit code: 128 + the signal, or 3.
pub(crate) fn finish<T>(held: Held<T>, what: &str, out: Output) -> std::result::Result<T, u8> {
    match held {
        Held::Done(t) => Ok(t),
        Held::Stopped(signal) => {
            out.note(&format!(
                "interrupted by {}: {what} was stopped, and every process it started with it",
                signal.name()
            ));
            Err(signal.exit_code())
        }
        Held::Lost(why) => {
            let e = staging_core::Error::Locked {
                message: format!(
                    "{what} was stopped: {why}; every process it started was stopped with it"
                ),
            };
            Err(crate::commands::report_error(&e, out))
        }
    }
}
