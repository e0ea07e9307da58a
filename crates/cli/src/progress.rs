//! Progress on long waits: a spinner on stderr when it is a terminal, nothing otherwise.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use staging_core::Redactor;
use staging_core::pipeline::{NoProgress, Progress, StepReport};

use crate::output::Output;

/// A spinner per running step (on a terminal), and each step's lines as it ends (for
/// people, not for `--json`).
#[derive(Debug)]
pub(crate) struct Spinner {
    bars: Mutex<BTreeMap<String, ProgressBar>>,
    spin: bool,
    out: Output,
}

impl Progress for Spinner {
    fn start(&self, step: &str) {
        if !self.spin {
            return;
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:<9} {wide_msg} {elapsed}")
                .expect("static template"),
        );
        bar.set_prefix(step.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        self.bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(step.to_owned(), bar);
    }

    fn message(&self, step: &str, message: &str) {
        if let Some(bar) = self
            .bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(step)
        {
            bar.set_message(Redactor::global().redact(message).into_owned());
        }
    }

    fn finish(&self, step: &str) {
        if let Some(bar) = self
            .bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(step)
        {
            bar.finish_and_clear();
        }
    }

    fn report(&self, report: &StepReport) {
        self.out.show_step(report);
    }
}

/// For people: each step as it ends, with a spinner while it runs when stderr is a
/// terminal. For `--json`: nothing until the one document at the end.
pub(crate) fn for_output(out: Output) -> std::sync::Arc<dyn Progress> {
    if out.json {
        return std::sync::Arc::new(NoProgress);
    }
    std::sync::Arc::new(Spinner {
        bars: Mutex::default(),
        spin: std::io::stderr().is_terminal(),
        out,
    })
}
