//! `staging`: one file and one command to stand up, validate and promote staging
//! environments. This binary only parses, composes the library crates and prints.
//!
//! Exit codes: 0 everything passed; 1 a check or step failed; 2 bad usage or an invalid
//! spec; 3 the run could not proceed (provider unreachable, auth refused, not supported);
//! 128 + the signal when SIGINT (130), SIGTERM (143) or SIGHUP (129) stopped a run.

mod commands;
mod context;
mod help;
mod lease;
mod logging;
mod output;
mod progress;
mod reports;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::output::{ColorChoice, Output};

const AFTER_HELP: &str = "\
Exit codes:
  0  everything passed
  1  a check or step failed
  2  bad usage or an invalid spec
  3  the run could not proceed (provider unreachable, auth refused, timeout of the tool itself,
     another run holds the environment's lease: see --wait-lock and `staging lock status`)
  130 interrupted (Ctrl-C, SIGINT) during a run; local services were stopped
      (Ctrl-C ending `up --keep-running` after the run exits with the run's own code)
  143 terminated (SIGTERM, how CI cancels a job) during a run, likewise
  129 hung up (SIGHUP, the terminal closed) during a run, likewise

Nothing ever prompts; every secret value is redacted from every output.";

/// `staging --version`: the package version and the commit it was built from (see build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("STAGING_BUILD_COMMIT"),
    ")"
);

/// Stand up, validate and promote production-like staging environments.
#[derive(Debug, Parser)]
#[command(name = "staging", version = VERSION, after_help = AFTER_HELP, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Debug, Args, Clone)]
pub(crate) struct Global {
    /// The spec file (default: `staging.toml` in the current directory or the nearest
    /// parent directory that has one).
    #[arg(short = 'f', long = "file", global = true, env = "STAGING_FILE", value_hint = clap::ValueHint::FilePath)]
    pub(crate) file: Option<PathBuf>,
    /// The environment to act on (default: the first that promotes to another, else the only one).
    // An environment's name, not a file: shells complete nothing rather than file names.
    #[arg(short = 'e', long = "env", global = true, env = "STAGING_ENV", value_hint = clap::ValueHint::Other)]
    pub(crate) env: Option<String>,
    /// The instance of an ephemeral environment to act on (`pr-42`): `${instance}` in the
    /// spec becomes it, and its resources, lease, evidence and ledger are its own.
    #[arg(long, global = true, env = "STAGING_INSTANCE", value_name = "NAME", value_hint = clap::ValueHint::Other)]
    pub(crate) instance: Option<String>,
    /// Print one JSON document on stdout instead of the human report.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// When to colour output and logs: auto (when the stream is a terminal and NO_COLOR is
    /// unset, or CLICOLOR_FORCE is set), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub(crate) color: ColorChoice,
    /// No colour: the same as `--color never`.
    #[arg(long, global = true)]
    pub(crate) no_color: bool,
    /// More log output on stderr: -v what the tool does (each step's decisions, each
    /// provider call), -vv detail, -vvv everything, libraries included. RUST_LOG wins
    /// (targets are crate names: RUST_LOG=staging_provider_render=debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
}

impl Global {
    /// `--color`, with `--no-color` meaning `never`.
    pub(crate) fn color_choice(&self) -> ColorChoice {
        if self.no_color {
            ColorChoice::Never
        } else {
            self.color
        }
    }

    /// How this invocation prints.
    pub(crate) fn output(&self) -> Output {
        Output::new(self.json, self.color_choice())
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the spec: syntax, keys, types, variables, providers and their settings (with
    /// --online, also that each provider accepts its credentials).
    Validate(commands::validate::ValidateArgs),
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
    /// Tear an instance of an ephemeral environment down (`--env preview --instance pr-42`):
    /// delete exactly what its `up` recorded as created, in reverse order, after checking
    /// each is still that resource and no other environment's; `--dry-run` only says what.
    Down(commands::instances::DownArgs),
    /// The instances of ephemeral environments on record: age, commit, expiry, and the
    /// resources each holds.
    List(commands::instances::ListArgs),
    /// Tear down the instances whose `ttl` has passed (a dry run unless `--yes`).
    Gc(commands::instances::GcArgs),
    /// Run the pipeline on a protected environment, only if the environment promoting to it
    /// has passing evidence for the same commit and spec.
    Promote(commands::up::PromoteArgs),
    /// Return the services of an environment (or one) to the previous live deploy, or to a
    /// named one; wait until live, verify the live commit, record evidence. Allowed on
    /// protected environments.
    Rollback(commands::rollback::RollbackArgs),
    /// Make the environment's databases fresh copies of another's (a Neon branch reset, or
    /// pg_dump/pg_restore), run its migrations, then the spec's scrub; record evidence.
    /// Refused on a protected environment.
    Refresh(commands::refresh::RefreshArgs),
    /// Recent log lines of a service or one deploy, redacted (`--json`: one JSON object per
    /// line); `--follow` keeps polling until Ctrl-C or SIGTERM.
    Logs(commands::logs::LogsArgs),
    /// Recorded evidence of runs.
    #[command(subcommand)]
    Evidence(commands::evidence::EvidenceCmd),
    /// The environment's lease, which every command that changes the environment takes
    /// (`up`, `promote`, `rollback`, `refresh`, `migrate apply`, `secrets sync --apply`,
    /// `secrets rotate`): who holds it, and releasing it by force.
    #[command(subcommand)]
    Lock(commands::lock::LockCmd),
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
    /// Turn a render.yaml (Render Blueprint), netlify.toml or railway.json/railway.toml into a
    /// spec skeleton.
    Import(commands::import::ImportArgs),
    /// Secrets: check the rules, compare environments, push to the provider, rotate.
    #[command(subcommand)]
    Secrets(commands::secrets::SecretsCmd),
    /// Print a shell completion script on stdout.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page staging(1) (roff) on stdout.
    Man,
}

/// Commands that read no spec: the global `-f`/`--env` mean nothing there, so their help
/// and completions leave them out (a value given anyway, or from `STAGING_FILE`, is ignored).
const NO_SPEC: &[&str] = &["import", "schema", "completions", "man"];

/// The whole command line, examples under each subcommand's `--help`.
pub(crate) fn cli_command() -> clap::Command {
    let mut cmd = help::with_examples(Cli::command());
    // A subcommand's own argument of a global's id stops the global being copied into it:
    // these are the same options, hidden.
    let global = |cmd: &clap::Command, id: &str| {
        cmd.get_arguments()
            .find(|a| a.get_id() == id)
            .cloned()
            .map(|a| a.global(false).hide(true))
    };
    let hidden: Vec<clap::Arg> = ["file", "env"]
        .iter()
        .filter_map(|id| global(&cmd, id))
        .collect();
    for name in NO_SPEC {
        cmd = cmd.mut_subcommand(*name, |sub| sub.args(hidden.clone()));
    }
    cmd
}

/// The command line as completion scripts and the man page describe it: [`cli_command`],
/// with `-f`/`--env` offered only by the commands that read a spec (completion generators
/// list hidden options too, so there they are left out rather than hidden).
pub(crate) fn described_command() -> clap::Command {
    let mut cmd = help::with_examples(Cli::command());
    let own: Vec<clap::Arg> = ["file", "env"]
        .iter()
        .filter_map(|id| cmd.get_arguments().find(|a| a.get_id() == *id).cloned())
        .collect();
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .filter(|n| !NO_SPEC.contains(&n.as_str()))
        .collect();
    for arg in &own {
        cmd = cmd.mut_arg(arg.get_id().clone(), |a| a.global(false));
    }
    for name in names {
        cmd = cmd.mut_subcommand(name, |sub| sub.args(own.clone()));
    }
    cmd
}

/// The subcommand path of a parsed command line: `up`, `evidence list`.
fn command_path(matches: &clap::ArgMatches) -> String {
    let mut path = vec![];
    let mut m = matches;
    while let Some((name, sub)) = m.subcommand() {
        path.push(name.to_owned());
        m = sub;
    }
    path.join(" ")
}

/// A command line clap refused: with `--json` (before any `--`), the envelope on stdout
/// with an `error` of kind `usage`, exit 2; otherwise clap's own message. `--help` and
/// `--version` print as usual.
fn usage_error(e: clap::Error) -> ExitCode {
    if !e.use_stderr() {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let before_dashes = || args.iter().take_while(|a| *a != "--");
    if before_dashes().any(|a| a == "--json") {
        let subcommands: Vec<String> = cli_command()
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .collect();
        let command = before_dashes()
            .find(|a| subcommands.contains(a))
            .cloned()
            .unwrap_or_default();
        output::set_command(&command);
        let message = e.render().to_string();
        output::set_error(output::error_value("usage", message.trim_end(), None));
        output::emit(2);
    } else {
        let _ = e.print();
    }
    ExitCode::from(2)
}

/// A generated file (completions, man page) on stdout; with `--json`, inside the envelope
/// as `text`.
fn generated(
    out: Output,
    write: impl FnOnce(&mut dyn std::io::Write) -> staging_core::Result<()>,
) -> staging_core::Result<u8> {
    if out.json {
        let mut buf = Vec::new();
        write(&mut buf)?;
        out.json(&serde_json::json!({ "text": String::from_utf8_lossy(&buf) }));
    } else {
        write(&mut std::io::stdout().lock())?;
    }
    Ok(0)
}

fn main() -> ExitCode {
    let cli = match cli_command()
        .try_get_matches()
        .and_then(|m| Ok((Cli::from_arg_matches(&m)?, command_path(&m))))
    {
        Ok((cli, path)) => {
            output::set_command(&path);
            cli
        }
        Err(e) => return usage_error(e),
    };
    // One crypto provider for every TLS client in the process.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    logging::init(cli.global.verbose, cli.global.color_choice());
    let out = cli.global.output();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let e = staging_core::Error::io("cannot start the async runtime", e);
            let code = commands::report_error(&e, out);
            output::emit(code);
            return ExitCode::from(code);
        }
    };
    let code = runtime.block_on(async {
        let result = match cli.command {
            Command::Validate(args) => {
                commands::stoppable(out, commands::validate::run(&cli.global, &args, out)).await
            }
            Command::Schema => {
                let schema = staging::providers().json_schema();
                if out.json {
                    // Inside the envelope like every other command's result.
                    out.json(&serde_json::json!({ "schema": schema }));
                } else {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&schema).unwrap_or_default()
                    );
                }
                Ok(0)
            }
            Command::Plan(args) => {
                commands::stoppable(out, commands::plan::run(&cli.global, &args, out)).await
            }
            Command::Up(args) => commands::up::up(&cli.global, &args, out).await,
            Command::Status => commands::up::status(&cli.global, out).await,
            Command::Down(args) => commands::instances::down(&cli.global, &args, out).await,
            Command::List(args) => commands::instances::list(&cli.global, &args, out).await,
            Command::Gc(args) => commands::instances::gc(&cli.global, &args, out).await,
            Command::Promote(args) => commands::up::promote(&cli.global, &args, out).await,
            Command::Rollback(args) => commands::rollback::run(&cli.global, &args, out).await,
            Command::Refresh(args) => commands::refresh::run(&cli.global, &args, out).await,
            Command::Logs(args) => commands::logs::run(&cli.global, &args, out).await,
            Command::Evidence(cmd) => commands::evidence::evidence(&cli.global, &cmd, out).await,
            Command::Lock(cmd) => commands::lock::run(&cli.global, &cmd, out).await,
            Command::Diff { a, b } => {
                commands::stoppable(out, commands::evidence::diff(&cli.global, &a, &b, out)).await
            }
            Command::Doctor(args) => commands::evidence::doctor(&cli.global, &args, out).await,
            Command::Smoke(args) => {
                commands::stoppable(out, commands::smoke::run(&cli.global, &args, out)).await
            }
            Command::Migrate(cmd) => commands::migrate::run(&cli.global, &cmd, out).await,
            Command::Import(args) => commands::import::run(&args, out).await,
            Command::Secrets(cmd) => commands::secrets::run(&cli.global, &cmd, out).await,
            Command::Completions { shell } => {
                generated(out, |w| help::completions(described_command(), shell, w))
            }
            Command::Man => generated(out, |w| help::man(described_command(), w)),
        };
        match result {
            Ok(code) => code,
            Err(e) => commands::report_error(&e, out),
        }
    });
    if out.json {
        output::emit(code);
    }
    // Child processes of the local provider are stopped when their provider is dropped,
    // which happened inside the command; don't wait for stray background tasks.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    ExitCode::from(code)
}
