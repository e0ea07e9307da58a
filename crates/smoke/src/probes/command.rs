//! The command probe: run a program, check its exit code and output. The escape hatch for
//! anything the other kinds do not cover.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use async_trait::async_trait;
use regex::Regex;
use staging_core::pipeline::RunContext;
use staging_core::spec::CommandCheck;
use staging_core::{Error, Probe, ProbeOutcome, Redactor, Result};

use super::fmt_duration;
use crate::template::Values;
use staging_core::spec::Template;

/// How much of a program's output a report keeps.
const OUTPUT_EXCERPT: usize = 500;

/// Runs a program (no shell) in the spec's directory. Its arguments may name secrets
/// (`${vars.X}`): they are filled in only when the program starts. The program is killed
/// when the attempt times out.
#[derive(Debug)]
pub struct CommandProbe {
    name: String,
    run: Vec<Template>,
    values: Values,
    exit_code: i32,
    stdout_regex: Option<Regex>,
    dir: PathBuf,
    redactor: Redactor,
}

impl CommandProbe {
    /// A probe from its spec table.
    pub fn from_spec(name: &str, check: &CommandCheck, ctx: &RunContext) -> Result<Self> {
        if check.run.is_empty() {
            return Err(Error::config(format!("probe `{name}`: `run` is empty")));
        }
        let values = Values::collect(ctx, name, check.run.iter(), &Default::default())?;
        let stdout_regex = check
            .stdout_regex
            .as_deref()
            .map(|r| {
                Regex::new(r)
                    .map_err(|e| Error::config(format!("probe `{name}`: stdout_regex: {e}")))
            })
            .transpose()?;
        Ok(CommandProbe {
            name: name.to_owned(),
            run: check.run.clone(),
            values,
            exit_code: check.exit_code,
            stdout_regex,
            dir: ctx.spec.base_dir(),
            redactor: ctx.redactor.clone(),
        })
    }
}

#[async_trait]
impl Probe for CommandProbe {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "command"
    }

    async fn run(&self) -> Result<ProbeOutcome> {
        let started = Instant::now();
        let args = self
            .run
            .iter()
            .map(|a| self.values.render(a))
            .collect::<Result<Vec<_>>>()?;
        let shown = self
            .run
            .iter()
            .map(Template::to_source)
            .collect::<Vec<_>>()
            .join(" ");
        let output = tokio::process::Command::new(&args[0])
            .args(&args[1..])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await;
        let expected_exit = format!("`{shown}` exits {}", self.exit_code);
        let output = match output {
            Ok(o) => o,
            // The probe could not run at all: an error (JUnit `<error>`), not a failure.
            Err(e) => {
                return Err(Error::io(format!("cannot start `{}`", args[0]), e));
            }
        };
        let took = started.elapsed();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let code = output.status.code();
        let with_output = |o: ProbeOutcome| {
            o.with_evidence(
                "stdout",
                self.redactor.shorten(stdout.trim_end(), OUTPUT_EXCERPT),
            )
            .with_evidence(
                "stderr",
                self.redactor.shorten(stderr.trim_end(), OUTPUT_EXCERPT),
            )
        };
        if code != Some(self.exit_code) {
            let observed = match code {
                Some(c) => format!("it exited {c}"),
                None => "it was killed by a signal".to_owned(),
            };
            return Ok(with_output(ProbeOutcome::fail(
                expected_exit,
                observed,
                took,
            )));
        }
        let mut held = vec![expected_exit];
        if let Some(re) = &self.stdout_regex {
            let expected = format!("stdout matching /{re}/");
            if !re.is_match(&stdout) {
                let observed = format!(
                    "stdout \"{}\"",
                    self.redactor.shorten(stdout.trim_end(), 120)
                );
                return Ok(with_output(ProbeOutcome::fail(expected, observed, took)));
            }
            held.push(expected);
        }
        Ok(ProbeOutcome::pass(
            held.join(", "),
            format!("exited {} in {}", self.exit_code, fmt_duration(took)),
            took,
        ))
    }
}
