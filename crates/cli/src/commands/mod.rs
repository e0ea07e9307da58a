//! One module per command group.

pub(crate) mod evidence;
pub(crate) mod import;
pub(crate) mod instances;
pub(crate) mod lock;
pub(crate) mod logs;
pub(crate) mod migrate;
pub(crate) mod plan;
pub(crate) mod refresh;
pub(crate) mod rollback;
pub(crate) mod secrets;
pub(crate) mod smoke;
pub(crate) mod up;
pub(crate) mod validate;

use staging_core::Error;

use crate::output::Output;

/// What to say when services of a provider that runs them in its own process (local) are
/// not running: they live only inside the `staging up` that started them.
pub(crate) use staging::not_running_message as not_running;

/// Run `work`, a command that does not listen for signals itself, so that SIGINT, SIGTERM
/// and SIGHUP stop it cleanly: the commands it started (a secret store's command, a
/// migration tool's `versions_command`) run in process groups of their own, which a
/// terminal's Ctrl-C does not reach, and dropping `work` stops them. Exit 128 + the signal.
pub(crate) async fn stoppable(
    out: Output,
    work: impl std::future::Future<Output = staging_core::Result<u8>>,
) -> staging_core::Result<u8> {
    let mut stop = up::StopSignals::listen()?;
    tokio::select! {
        done = work => done,
        signal = stop.wait() => {
            out.note(&format!(
                "interrupted by {}: stopped, with every process it started",
                signal.name()
            ));
            Ok(signal.exit_code())
        }
    }
}

/// Print an error the way every command does, and return its exit code.
pub(crate) fn report_error(e: &Error, out: Output) -> u8 {
    let code = e.class().exit_code();
    if out.json {
        crate::output::set_error(crate::output::error_of(e));
    } else {
        out.note(&format!("error: {e}"));
    }
    code
}
