//! `staging`: one file and one command to stand up, validate and promote staging
//! environments. This binary only parses, composes the library crates and prints.
//!
//! Exit codes: 0 everything passed; 1 a check or step failed; 2 bad usage or an invalid
//! spec; 3 the run could not proceed (provider unreachable, auth refused, not supported);
//! 130 interrupted.

mod commands;
mod context;
mod logging;
mod output;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::output::Output;

const AFTER_HELP: &str = "\
Exit codes:
  0  everything passed
  1  a check or step failed
  2  bad usage or an invalid spec
  3  the run could not proceed (provider unreachable, auth refused, timeout of the tool itself)
  130 interrupted (Ctrl-C) during a run; local services were stopped
      (Ctrl-C ending `up --keep-running` after the run exits with the run's own code)

Nothing ever prompts; every secret value is redacted from every output.";

/// Stand up, validate and promote production-like staging environments.
#[derive(Debug, Parser)]
#[command(name = "staging", version, after_help = AFTER_HELP, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Debug, Args, Clone)]
pub(crate) struct Global {
    /// The spec file.
    #[arg(short = 'f', long = "file", global = true, default_value = staging_core::spec::DEFAULT_FILE, env = "STAGING_FILE")]
    pub(crate) file: PathBuf,
    /// The environment to act on (default: the first that promotes to another, else the only one).
    #[arg(short = 'e', long = "env", global = true, env = "STAGING_ENV")]
    pub(crate) env: Option<String>,
    /// Print one JSON document on stdout instead of the human report.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// No colour (also when NO_COLOR is set or stdout is not a terminal).
    #[arg(long, global = true)]
    pub(crate) no_color: bool,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the spec: syntax, keys, types, variables, providers and their settings.
    Validate,
    /// Print the JSON Schema of the spec format with every provider's settings (what
    /// `docs/staging.schema.json` holds), for editors. Reads no spec.
    Schema,
    /// Show what `up` would change, reading what is live and changing nothing: per service
    /// the target and live commit → the commit to deploy, per variable add/change/unchanged/
    /// remove by fingerprint, pending migrations, the probes, whether the gate would allow a
    /// promote.
    Plan(commands::up::UpArgs),
    /// Run the whole pipeline on an environment: validate, secrets, migrate, deploy, wait,
    /// verify the live commit, smoke, record evidence.
    Up(commands::up::UpArgs),
    /// Show the live state of each service: deploy status, live commit, URL.
    Status,
    /// Run the pipeline on a protected environment, only if the environment promoting to it
    /// has passing evidence for the same commit and spec.
    Promote(commands::up::PromoteArgs),
    /// Return the services of an environment (or one) to the previous live deploy, or to a
    /// named one; wait until live, verify the live commit, record evidence. Allowed on
    /// protected environments.
    Rollback(commands::rollback::RollbackArgs),
    /// Recent log lines of a service or one deploy, redacted (`--json`: one JSON object per
    /// line); `--follow` keeps polling until Ctrl-C or SIGTERM.
    Logs(commands::logs::LogsArgs),
    /// Recorded evidence of runs.
    #[command(subcommand)]
    Evidence(commands::evidence::EvidenceCmd),
    /// Drift between two environments: variables, secrets by fingerprint, migrations, settings.
    Diff {
        /// The first environment.
        a: String,
        /// The second environment.
        b: String,
    },
    /// Each failure of the latest run, with its likely cause and remedy.
    Doctor(commands::evidence::DoctorArgs),
    /// Run the spec's smoke probes against what is live now.
    Smoke(commands::smoke::SmokeArgs),
    /// Migrations: status, and apply (staging first, production only after).
    #[command(subcommand)]
    Migrate(commands::migrate::MigrateCmd),
    /// Turn a render.yaml (Render Blueprint) or netlify.toml into a spec skeleton.
    Import(commands::import::ImportArgs),
    /// Secrets: check the rules, compare environments, push to the provider, rotate.
    #[command(subcommand)]
    Secrets(commands::secrets::SecretsCmd),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // One crypto provider for every TLS client in the process.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    logging::init(cli.global.verbose);
    context::connect_provider_secret_stores();
    let out = Output::new(cli.global.json, cli.global.no_color);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            out.note(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::from(3);
        }
    };
    let code = runtime.block_on(async {
        let result = match cli.command {
            Command::Validate => commands::validate::run(&cli.global, out).await,
            Command::Schema => {
                let schema = context::registry().json_schema();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&schema).unwrap_or_default()
                );
                Ok(0)
            }
            Command::Plan(args) => commands::plan::run(&cli.global, &args, out).await,
            Command::Up(args) => commands::up::up(&cli.global, &args, out).await,
            Command::Status => commands::up::status(&cli.global, out).await,
            Command::Promote(args) => commands::up::promote(&cli.global, &args, out).await,
            Command::Rollback(args) => commands::rollback::run(&cli.global, &args, out).await,
            Command::Logs(args) => commands::logs::run(&cli.global, &args, out).await,
            Command::Evidence(cmd) => commands::evidence::evidence(&cli.global, &cmd, out).await,
            Command::Diff { a, b } => commands::evidence::diff(&cli.global, &a, &b, out).await,
            Command::Doctor(args) => commands::evidence::doctor(&cli.global, &args, out).await,
            Command::Smoke(args) => commands::smoke::run(&cli.global, &args, out).await,
            Command::Migrate(cmd) => commands::migrate::run(&cli.global, &cmd, out).await,
            Command::Import(args) => commands::import::run(&args, out).await,
            Command::Secrets(cmd) => commands::secrets::run(&cli.global, &cmd, out).await,
        };
        match result {
            Ok(code) => code,
            Err(e) => commands::report_error(&e, out),
        }
    });
    // Child processes of the local provider are stopped when their provider is dropped,
    // which happened inside the command; don't wait for stray background tasks.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    ExitCode::from(code)
}
