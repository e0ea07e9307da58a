//! Progress on long waits: a spinner on stderr when it is a terminal, nothing otherwise.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use staging_core::Redactor;
use staging_core::pipeline::{NoProgress, Progress};

/// A spinner per running step.
#[derive(Debug, Default)]
pub(crate) struct Spinner {
    bars: Mutex<BTreeMap<String, ProgressBar>>,
}

impl Progress for Spinner {
    fn start(&self, step: &str) {
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
}

/// A spinner when stderr is a terminal and the output is for people; nothing otherwise.
pub(crate) fn for_terminal(json: bool) -> std::sync::Arc<dyn Progress> {
    if !json && std::io::stderr().is_terminal() {
        std::sync::Arc::new(Spinner::default())
    } else {
        std::sync::Arc::new(NoProgress)
    }
}
