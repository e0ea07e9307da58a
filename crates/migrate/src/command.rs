//! The command runner: alembic, rails, prisma, sqlx-cli, dbmate — whatever the spec names.
//!
//! The tool owns its migrations; this runner only gives it the target's `DATABASE_URL`,
//! streams its output line by line through the [`Redactor`], and turns its exit status into
//! a report. Where the tool keeps a version table (`alembic_version`, `schema_migrations`,
//! `_sqlx_migrations`, `_prisma_migrations`), `status` reads it from the database.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sqlx::{AssertSqlSafe, Column, Row};
use staging_core::{
    AppliedMigration, Error, Migration, MigrationEntry, MigrationPlan, MigrationReport,
    MigrationState, MigrationStatus, Redactor, Result,
};
use tokio::io::AsyncRead;

use crate::db::{self, Conn, DbKind, IfMissing, TableName, db_error, is_undefined_table};

/// How many of the last output lines a failure quotes.
const TAIL_LINES: usize = 20;

/// Which stream a line of a command's output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of a command's output, already redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutputLine {
    /// Where it came from.
    pub stream: OutputStream,
    /// The line, without its newline, secrets masked.
    pub line: String,
}

/// Receives each redacted output line as it is printed.
pub type OutputSink = Arc<dyn Fn(&OutputLine) + Send + Sync>;

/// The result of running a command to its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandRun {
    /// The command as run (`alembic upgrade head`).
    pub command: String,
    /// Its exit code (`None` when killed by a signal).
    pub exit_code: Option<i32>,
    /// How long it ran.
    pub duration_ms: u64,
    /// Its last lines of output, redacted.
    pub tail: Vec<OutputLine>,
}

/// Runs a migration tool with the target's `DATABASE_URL`.
#[derive(Clone)]
pub struct CommandMigrator {
    argv: Vec<String>,
    url: SecretString,
    cwd: PathBuf,
    version_table: Option<TableName>,
    redactor: Redactor,
    sink: Option<OutputSink>,
}

impl std::fmt::Debug for CommandMigrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandMigrator")
            .field("argv", &self.argv)
            .field("url", &self.url)
            .field("cwd", &self.cwd)
            .field("version_table", &self.version_table)
            .finish_non_exhaustive()
    }
}

impl CommandMigrator {
    /// A runner of `argv` (program first; no shell) in directory `cwd`, with `DATABASE_URL`
    /// set to `url`. The URL's password is registered with `redactor`, through which every
    /// line of output passes.
    pub fn new(
        argv: Vec<String>,
        url: SecretString,
        cwd: impl Into<PathBuf>,
        redactor: Redactor,
    ) -> Result<Self> {
        if argv.first().is_none_or(|p| p.trim().is_empty()) {
            return Err(Error::config("the migration command is empty"));
        }
        if let Ok(parsed) = url::Url::parse(url.expose_secret())
            && let Some(password) = parsed.password()
        {
            redactor.register_if_secret(
                staging_core::secretness::Origin::Credential,
                &SecretString::from(password.to_owned()),
            );
        }
        Ok(CommandMigrator {
            argv,
            url,
            cwd: cwd.into(),
            version_table: None,
            redactor,
            sink: None,
        })
    }

    /// Read the tool's versions from `table` (`alembic_version`, `schema_migrations`).
    pub fn with_version_table(mut self, table: &str) -> Result<Self> {
        self.version_table = Some(TableName::parse(table)?);
        Ok(self)
    }

    /// Send each output line here as well as to `tracing`.
    pub fn on_output(mut self, sink: OutputSink) -> Self {
        self.sink = Some(sink);
        self
    }

    /// The command as one string.
    pub fn command_line(&self) -> String {
        self.argv.join(" ")
    }

    /// Whether `status` can read versions from the database.
    pub fn has_version_table(&self) -> bool {
        self.version_table.is_some()
    }

    /// Run the command to its end, streaming its output. A non-zero exit is not an `Err`
    /// here; see [`CommandRun::exit_code`].
    pub async fn run(&self) -> Result<CommandRun> {
        let started = Instant::now();
        let mut cmd = tokio::process::Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .current_dir(&self.cwd)
            .env("DATABASE_URL", self.url.expose_secret())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // In a process group of its own: when the run is stopped (a signal, the loss of the
        // lease) the tool and everything it started are stopped with it, before `staging`
        // releases the lease and exits.
        let mut child = staging_core::process::GroupChild::spawn(&mut cmd).map_err(|e| {
            let what = format!("cannot start `{}` in {}", self.argv[0], self.cwd.display());
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::config(format!("{what}: not found (is it installed and on PATH?)"))
            } else {
                Error::io(what, e)
            }
        })?;
        let stdout = child.child_mut().stdout.take().expect("piped");
        let stderr = child.child_mut().stderr.take().expect("piped");
        let tail = std::sync::Mutex::new(VecDeque::with_capacity(TAIL_LINES));
        let (a, b, status) = tokio::join!(
            self.stream(stdout, OutputStream::Stdout, &tail),
            self.stream(stderr, OutputStream::Stderr, &tail),
            child.wait()
        );
        a?;
        b?;
        let status =
            status.map_err(|e| Error::io(format!("waiting for `{}`", self.command_line()), e))?;
        Ok(CommandRun {
            command: self.command_line(),
            exit_code: status.code(),
            duration_ms: started.elapsed().as_millis() as u64,
            tail: tail.into_inner().unwrap_or_else(|e| e.into_inner()).into(),
        })
    }

    async fn stream(
        &self,
        reader: impl AsyncRead + Unpin,
        stream: OutputStream,
        tail: &std::sync::Mutex<VecDeque<OutputLine>>,
    ) -> Result<()> {
        // Lossy, redacted, and read until the tool closes it: bad bytes never stop the read.
        staging_core::redact::for_each_line_lossy(reader, &self.redactor, |line| {
            let line = OutputLine { stream, line };
            tracing::info!(target: "staging_migrate::command", stream = ?line.stream, "{}", line.line);
            if let Some(sink) = &self.sink {
                sink(&line);
            }
            let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        })
        .await;
        Ok(())
    }

    /// The versions in the tool's table, in the table's order; `None` without a table.
    pub async fn versions(&self) -> Result<Option<Vec<String>>> {
        let Some(table) = &self.version_table else {
            return Ok(None);
        };
        let Some(mut conn) =
            db::connect(&self.url, IfMissing::ReportAbsent, Duration::from_secs(30)).await?
        else {
            return Ok(Some(vec![]));
        };
        let sql = format!("SELECT * FROM {}", table.quoted());
        let versions = match &mut conn {
            Conn::Postgres(c) => {
                match db::pg_select(c, &sql, "cannot read the version table").await? {
                    None => vec![],
                    Some(rows) => rows
                        .iter()
                        .map(|r| {
                            let names: Vec<&str> = r.columns().iter().map(|c| c.name()).collect();
                            let index = version_column(&names);
                            r.get(index).map(str::to_owned).ok_or_else(|| {
                                Error::failed(format!(
                                    "the version table has an empty `{}`",
                                    names.get(index).copied().unwrap_or_default()
                                ))
                            })
                        })
                        .collect::<Result<Vec<_>>>()?,
                }
            }
            Conn::Sqlite { conn: c, .. } => {
                match sqlx::query(AssertSqlSafe(sql)).fetch_all(&mut *c).await {
                    Err(e) if is_undefined_table(&e) => vec![],
                    Err(e) => {
                        return Err(db_error(DbKind::Sqlite, "cannot read the version table", e));
                    }
                    Ok(rows) => rows.iter().map(version_of).collect::<Result<Vec<_>>>()?,
                }
            }
        };
        Ok(Some(versions))
    }
}

/// The version of one row of a tool's table: its `version_num` (alembic), `version` (rails,
/// dbmate, sqlx) or `migration_name` (prisma) column, else its first column.
fn version_of(row: &sqlx::sqlite::SqliteRow) -> Result<String> {
    let names: Vec<&str> = row.columns().iter().map(|c| c.name()).collect();
    let index = version_column(&names);
    if let Ok(v) = row.try_get::<String, _>(index) {
        return Ok(v);
    }
    row.try_get::<i64, _>(index)
        .map(|v| v.to_string())
        .map_err(|e| {
            Error::failed(format!(
                "cannot read a version from column `{}`: {e}",
                names.get(index).copied().unwrap_or_default()
            ))
        })
}

/// Which column holds the version: `version_num` (alembic), `version` (rails, dbmate, sqlx)
/// or `migration_name` (prisma), else the first.
fn version_column(names: &[&str]) -> usize {
    ["version_num", "version", "migration_name"]
        .iter()
        .find_map(|want| names.iter().position(|n| n == want))
        .unwrap_or(0)
}

/// How long a `versions_command` may run: it only reads the checkout.
pub const VERSIONS_TIMEOUT: Duration = Duration::from_secs(120);

/// The versions a `versions_command` lists: it runs in `cwd` **without** `DATABASE_URL` (it
/// must not touch a database; one inherited from the process environment is removed), and
/// the first word of each non-empty line of its standard output is a version. Fails when it
/// cannot start, exits non-zero, prints nothing, or runs longer than [`VERSIONS_TIMEOUT`].
/// Its output in errors passes through `redactor`.
pub async fn list_versions(
    argv: &[String],
    cwd: &std::path::Path,
    redactor: &Redactor,
) -> Result<Vec<String>> {
    let shown = argv.join(" ");
    let program = argv
        .first()
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| Error::config("the versions command is empty"))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&argv[1..])
        .current_dir(cwd)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = async {
        staging_core::process::GroupChild::spawn(&mut cmd)?
            .wait_with_output()
            .await
    };
    let out = match tokio::time::timeout(VERSIONS_TIMEOUT, child).await {
        Err(_) => {
            return Err(Error::Timeout {
                what: format!("the versions command `{shown}`"),
                after: VERSIONS_TIMEOUT,
            });
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::config(format!(
                "cannot start the versions command `{shown}` in {}: not found (is it installed and on PATH?)",
                cwd.display()
            )));
        }
        Ok(Err(e)) => {
            return Err(Error::io(
                format!("cannot run the versions command `{shown}`"),
                e,
            ));
        }
        Ok(Ok(out)) => out,
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(TAIL_LINES).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(Error::failed(format!(
            "the versions command `{shown}` failed ({}); its last output:\n{}",
            out.status,
            redactor.redact(&tail.join("\n"))
        )));
    }
    let versions: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    if versions.is_empty() {
        return Err(Error::failed(format!(
            "the versions command `{shown}` printed no version: it must print the versions this checkout's migrations bring a database to, one per line"
        )));
    }
    Ok(versions)
}

/// Why a command looks like it seeds, truncates, flushes, resets, drops or rolls back data
/// (refused on protected environments), or `None`. A second guard only: what a command is
/// comes from its declared kind (`seed`, `reset`, migration `command`) in the spec.
pub fn destructive_reason(argv: &[String]) -> Option<String> {
    // Anywhere in an argument (`db:seed`, `flush_and_truncate`, `dropdb`).
    const PARTS: [&str; 9] = [
        "seed", "truncate", "reset", "drop", "wipe", "purge", "fixtures", "fixture", "flush",
    ];
    // Whole words of an argument (`migrate:fresh`, `db:rollback`; not `refresh_views`).
    const WORDS: [&str; 6] = ["rollback", "undo", "fresh", "erase", "redo", "downgrade"];
    const EXACT: [&str; 6] = [
        "db:setup",
        "db:schema:load",
        "db:structure:load",
        "clean",
        "clear",
        "loaddata",
    ];
    argv.iter().find_map(|arg| {
        let a = arg.to_ascii_lowercase();
        let mut words = a.split(|c: char| !c.is_ascii_alphanumeric());
        if EXACT.contains(&a.as_str())
            || PARTS.iter().any(|w| a.contains(w))
            || words.any(|w| WORDS.contains(&w))
        {
            Some(format!(
                "`{arg}` in `{}` looks like a seed/truncate/flush/reset command",
                argv.join(" ")
            ))
        } else {
            None
        }
    })
}

#[async_trait]
impl Migration for CommandMigrator {
    fn describe(&self) -> String {
        format!("command: {}", self.command_line())
    }

    async fn status(&self) -> Result<MigrationStatus> {
        let Some(versions) = self.versions().await? else {
            return Err(Error::not_supported(
                format!("command `{}`", self.command_line()),
                "status without `version_table` (set it to the tool's table, e.g. `alembic_version`)",
            ));
        };
        Ok(MigrationStatus {
            entries: versions
                .into_iter()
                .map(|v| MigrationEntry {
                    version: v,
                    name: String::new(),
                    state: MigrationState::Applied,
                })
                .collect(),
        })
    }

    async fn plan(&self) -> Result<MigrationPlan> {
        // The tool decides what to apply; the honest plan is the command itself.
        Ok(MigrationPlan {
            to_apply: vec![MigrationEntry {
                version: String::new(),
                name: format!("run `{}`", self.command_line()),
                state: MigrationState::Pending,
            }],
        })
    }

    async fn apply(&self) -> Result<MigrationReport> {
        let before = self.versions().await?;
        let run = self.run().await?;
        if run.exit_code != Some(0) {
            let status = run
                .exit_code
                .map(|c| format!("exit code {c}"))
                .unwrap_or_else(|| "a signal".to_owned());
            let tail: Vec<&str> = run.tail.iter().map(|l| l.line.as_str()).collect();
            return Err(Error::failed(format!(
                "`{}` failed with {status}; its last output:\n{}",
                run.command,
                tail.join("\n")
            )));
        }
        let duration = Duration::from_millis(run.duration_ms);
        let applied = match (before, self.versions().await?) {
            (Some(before), Some(after)) => after
                .into_iter()
                .filter(|v| !before.contains(v))
                .map(|v| AppliedMigration {
                    version: v,
                    name: run.command.clone(),
                    duration,
                })
                .collect(),
            _ => vec![AppliedMigration {
                version: String::new(),
                name: run.command.clone(),
                duration,
            }],
        };
        Ok(MigrationReport {
            applied,
            warnings: vec![],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn seed_and_reset_commands_are_destructive_and_upgrades_are_not() {
        for cmd in [
            "rails db:seed",
            "prisma migrate reset --force",
            "dbmate drop",
            "python manage.py flush_and_truncate",
            "python manage.py flush --no-input",
            "sh -c 'python manage.py flush --no-input && python manage.py migrate'",
            "php artisan migrate:fresh",
            "php artisan migrate:rollback",
            "flyway clean",
            "alembic downgrade base",
            "python manage.py loaddata demo.json",
            "rails db:rollback STEP=1",
        ] {
            assert!(destructive_reason(&argv(cmd)).is_some(), "{cmd}");
        }
        for cmd in [
            "alembic upgrade head",
            "rails db:migrate",
            "prisma migrate deploy",
            "sqlx migrate run",
            "dbmate up",
            "python manage.py refresh_views",
            "python manage.py migrate",
        ] {
            assert!(destructive_reason(&argv(cmd)).is_none(), "{cmd}");
        }
    }

    #[test]
    fn debug_hides_the_url() {
        let url = SecretString::from("postgres://u:canary-pw-123@h/db".to_owned());
        let m =
            CommandMigrator::new(argv("alembic upgrade head"), url, ".", Redactor::new()).unwrap();
        assert!(!format!("{m:?}").contains("canary"));
    }
}
