//! `staging refresh`: make an environment's database a fresh copy of another's, then migrate
//! it, then scrub personal data out of it, in that order, and say what was done.
//!
//! The copy is a branch reset ([`DatabaseBranch::reset_from_parent`](staging_core::DatabaseBranch::reset_from_parent), Neon/Supabase) or, for
//! plain Postgres, `pg_dump` of the source into `pg_restore` of the target (both from `PATH`,
//! checked before anything is written). The scrub runs before the run reports success: a
//! scrub that fails leaves the report failed with the reason, so the CLI marks the
//! environment failed and nothing is told the copy is ready.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use staging_core::spec::Scrub;
use staging_core::{DatabaseTarget, DynDatabaseBranch, Error, Result};
use staging_postgres::ServerIdentity;

/// How the target gets the source's data. Either way the database written — by the
/// restore, the migrations and the scrub — is a [`DatabaseTarget`]: identified by what its
/// server says and compared with every other environment's before the first write.
#[derive(Debug, Clone)]
pub enum CopyFrom {
    /// Reset the target branch from its parent (the source); the target is the branch's
    /// database, identified through its connection URL before the reset.
    Branch(DynDatabaseBranch, DatabaseTarget),
    /// `pg_dump` the source's database into the target's (`pg_restore --clean`).
    Dump {
        /// The source's URL.
        source: SecretString,
        /// The target's database.
        target: DatabaseTarget,
    },
}

impl CopyFrom {
    /// The database the refresh writes.
    pub fn target(&self) -> &DatabaseTarget {
        match self {
            CopyFrom::Branch(_, t) | CopyFrom::Dump { target: t, .. } => t,
        }
    }
}

/// Row counts of one table the scrub touches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableCounts {
    /// The table.
    pub table: String,
    /// Rows before the scrub (after the copy and the migrations).
    pub before: Option<i64>,
    /// Rows after the scrub.
    pub after: Option<i64>,
}

/// What a refresh did: what evidence records.
#[derive(Debug, Clone, Serialize)]
pub struct RefreshReport {
    /// The database (`main`).
    pub database: String,
    /// The environment copied from.
    pub source: String,
    /// The environment refreshed.
    pub target: String,
    /// `branch reset (neon branch ...)` or `pg_dump | pg_restore`.
    pub method: String,
    /// Whether the source's data reached the target.
    pub copied: bool,
    /// Migrations applied to the copy.
    pub migrations_applied: Vec<String>,
    /// Whether the scrub ran to the end.
    pub scrub_applied: bool,
    /// What the scrub ran (files, or the command).
    pub scrub: Vec<String>,
    /// Row counts per table the scrub touches.
    pub tables: Vec<TableCounts>,
    /// Why the refresh failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RefreshReport {
    /// Whether every part held.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// The programs a dump-and-restore needs, found on `PATH` before anything is written.
pub fn check_dump_tools() -> Result<(PathBuf, PathBuf)> {
    let find = |name: &str| -> Result<PathBuf> {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                Error::config(format!(
                    "`{name}` is not on PATH: refreshing a plain Postgres database copies it with pg_dump and pg_restore; install the PostgreSQL client tools (e.g. `apt-get install postgresql-client`) in a version at least the server's"
                ))
            })
    };
    Ok((find("pg_dump")?, find("pg_restore")?))
}

/// libpq's variables for a URL, so no password appears on a command line: read by the
/// parser every connection uses, so the tools reach the database that was identified.
fn libpq_env(url: &SecretString) -> Result<Vec<(&'static str, String)>> {
    let scheme = url
        .expose_secret()
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("postgres" | "postgresql")) {
        return Err(Error::config(
            "only Postgres databases can be refreshed by dump and restore",
        ));
    }
    staging_postgres::libpq_environment(url)
}

async fn run_tool(program: &Path, args: &[&str], url: &SecretString, what: &str) -> Result<()> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_remove("PGSERVICE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for var in [
        "PGHOST",
        "PGHOSTADDR",
        "PGPORT",
        "PGUSER",
        "PGPASSWORD",
        "PGDATABASE",
        "PGSSLMODE",
        "PGSSLROOTCERT",
        "PGPASSFILE",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in libpq_env(url)? {
        cmd.env(k, v);
    }
    // Its own process group, stopped whole when the refresh is (a signal, a timeout).
    let output = async {
        staging_core::process::GroupChild::spawn(&mut cmd)?
            .wait_with_output()
            .await
    };
    let out = tokio::time::timeout(Duration::from_secs(3600), output)
        .await
        .map_err(|_| Error::Timeout {
            what: what.to_owned(),
            after: Duration::from_secs(3600),
        })?
        .map_err(|source| Error::Io {
            context: format!("running {}", program.display()),
            source,
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(10).collect();
        return Err(Error::Failed {
            message: format!(
                "{what} failed ({}):\n{}",
                out.status,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ),
        });
    }
    Ok(())
}

/// Copies `source` into `target` with `pg_dump --format=custom` and `pg_restore --clean`;
/// the target's identity is read again right before the restore.
pub async fn dump_restore(source: &SecretString, target: &DatabaseTarget) -> Result<()> {
    let (pg_dump, pg_restore) = check_dump_tools()?;
    let dir = std::env::temp_dir().join(format!(
        "staging-refresh-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        context: "creating a directory for the dump".into(),
        source,
    })?;
    let file = dir.join("source.dump");
    let file_s = file.to_string_lossy().into_owned();
    // pg_restore needs a database named on its command line: the name only, never the URL.
    let target_db = libpq_env(target.url())?
        .into_iter()
        .find(|(k, _)| *k == "PGDATABASE")
        .map(|(_, v)| format!("--dbname={v}"))
        .unwrap_or_default();
    let result = async {
        run_tool(
            &pg_dump,
            &[
                "--format=custom",
                "--no-owner",
                "--no-acl",
                "--file",
                &file_s,
            ],
            source,
            "pg_dump of the source database",
        )
        .await?;
        target.recheck(&ServerIdentity).await?;
        run_tool(
            &pg_restore,
            &[
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-acl",
                "--single-transaction",
                "--exit-on-error",
                &target_db,
                &file_s,
            ],
            target.url(),
            "pg_restore into the target database",
        )
        .await
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The tables a scrub's SQL touches: the names after `UPDATE`, `DELETE FROM` and
/// `TRUNCATE [TABLE]`, in order of first mention.
pub fn tables_touched(sql: &str) -> Vec<String> {
    let words: Vec<String> = sql
        .lines()
        .map(|l| l.split("--").next().unwrap_or_default())
        .flat_map(|l| l.split_whitespace())
        .map(|w| w.trim_end_matches([';', ',', '(']).to_owned())
        .collect();
    let mut out: Vec<String> = vec![];
    let mut i = 0;
    while i < words.len() {
        let w = words[i].to_ascii_uppercase();
        let mut skip = match w.as_str() {
            "UPDATE" => 1,
            "DELETE"
                if words
                    .get(i + 1)
                    .is_some_and(|n| n.eq_ignore_ascii_case("FROM")) =>
            {
                2
            }
            "TRUNCATE" => 1,
            _ => 0,
        };
        if skip > 0 {
            if words
                .get(i + skip)
                .is_some_and(|n| n.eq_ignore_ascii_case("ONLY") || n.eq_ignore_ascii_case("TABLE"))
            {
                skip += 1;
            }
            if let Some(t) = words.get(i + skip)
                && is_table_name(t)
                && !out.contains(t)
            {
                out.push(t.clone());
            }
        }
        i += 1;
    }
    out
}

fn is_table_name(t: &str) -> bool {
    !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

async fn count_rows(url: &SecretString, tables: &[String]) -> Vec<Option<i64>> {
    let Ok(client) = staging_postgres::connect(url).await else {
        return vec![None; tables.len()];
    };
    let mut out = vec![];
    for t in tables {
        let n = match client
            .query_one(&format!("SELECT count(*) FROM {t}"), &[])
            .await
        {
            Ok(row) => row.try_get::<_, i64>(0).ok(),
            Err(_) => None,
        };
        out.push(n);
    }
    out
}

/// Runs the scrub against `target`'s database: each SQL file in its own transaction, or the
/// command with `DATABASE_URL`; its identity is read again first (on the scrub's own
/// connection for SQL files).
pub async fn run_scrub(scrub: &Scrub, base: &Path, target: &DatabaseTarget) -> Result<()> {
    let url = target.url();
    if let Some(argv) = &scrub.command {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| Error::config("the scrub command is empty"))?;
        target.recheck(&ServerIdentity).await?;
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .current_dir(base)
            .env("DATABASE_URL", url.expose_secret())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let out = async {
            staging_core::process::GroupChild::spawn(&mut cmd)?
                .wait_with_output()
                .await
        }
        .await
        .map_err(|source| Error::Io {
            context: format!("running the scrub command `{program}`"),
            source,
        })?;
        if !out.status.success() {
            return Err(Error::Failed {
                message: format!(
                    "the scrub command `{}` failed ({}): {}",
                    argv.join(" "),
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        return Ok(());
    }
    let client = staging_postgres::connect(url).await?;
    let now = staging_postgres::identity_of(&client).await?;
    target.confirm(&staging_core::DatabaseIdentity::Postgres(now))?;
    for file in &scrub.sql {
        let path = base.join(file);
        let sql = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            context: format!("reading scrub file {}", path.display()),
            source,
        })?;
        client
            .batch_execute(&format!("BEGIN;\n{sql}\n;COMMIT;"))
            .await
            .map_err(|e| Error::Failed {
                message: format!(
                    "scrub file {file} failed: {}",
                    staging_postgres::describe(&e)
                ),
            })?;
    }
    Ok(())
}

/// One refresh: copy, migrate, scrub.
#[derive(Debug)]
pub struct Refresh {
    /// The database (`main`).
    pub database: String,
    /// The environment copied from.
    pub source: String,
    /// The environment refreshed.
    pub target: String,
    /// How the data is copied.
    pub copy: CopyFrom,
    /// The scrub, when the spec has one.
    pub scrub: Option<Scrub>,
    /// Where scrub files are relative to (the spec's directory).
    pub base_dir: PathBuf,
}

impl Refresh {
    /// Copies, migrates with `migrate` (given the target's URL), scrubs, and reports. Never
    /// returns `Err`: a failure is in the report, with how far the run got.
    pub async fn run<F, Fut>(&self, migrate: F) -> RefreshReport
    where
        F: FnOnce(DatabaseTarget) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<String>>>,
    {
        let mut report = RefreshReport {
            database: self.database.clone(),
            source: self.source.clone(),
            target: self.target.clone(),
            method: match &self.copy {
                CopyFrom::Branch(b, _) => format!("branch reset ({})", b.describe()),
                CopyFrom::Dump { .. } => "pg_dump | pg_restore".to_owned(),
            },
            copied: false,
            migrations_applied: vec![],
            scrub_applied: false,
            scrub: self
                .scrub
                .as_ref()
                .map(|s| match &s.command {
                    Some(c) => vec![c.join(" ")],
                    None => s.sql.clone(),
                })
                .unwrap_or_default(),
            tables: vec![],
            error: None,
        };
        if let Err(e) = self.steps(&mut report, migrate).await {
            report.error = Some(
                if !report.copied || report.scrub.is_empty() || report.scrub_applied {
                    e.to_string()
                } else {
                    format!(
                        "{e}\nenvironment `{}` is FAILED: database `{}` may hold unscrubbed data copied from `{}`; nothing may use it until a refresh succeeds",
                        self.target, self.database, self.source
                    )
                },
            );
        }
        report
    }

    async fn steps<F, Fut>(&self, report: &mut RefreshReport, migrate: F) -> Result<()>
    where
        F: FnOnce(DatabaseTarget) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<String>>>,
    {
        let target = match &self.copy {
            CopyFrom::Branch(b, target) => {
                b.reset_from_parent().await?;
                report.copied = true;
                // The reset replaced the branch's database: it must still be none of the
                // other environments' databases (its parent's above all).
                target.reidentify(&ServerIdentity).await?
            }
            CopyFrom::Dump { source, target } => {
                dump_restore(source, target).await?;
                report.copied = true;
                target.clone()
            }
        };
        let target = &target;
        let url = target.url().clone();
        report.migrations_applied = migrate(target.clone()).await?;
        let Some(scrub) = &self.scrub else {
            return Ok(());
        };
        let tables = if scrub.tables.is_empty() {
            let mut t = vec![];
            for f in &scrub.sql {
                if let Ok(sql) = std::fs::read_to_string(self.base_dir.join(f)) {
                    for name in tables_touched(&sql) {
                        if !t.contains(&name) {
                            t.push(name);
                        }
                    }
                }
            }
            t
        } else {
            scrub.tables.clone()
        };
        let before = count_rows(&url, &tables).await;
        let result = run_scrub(scrub, &self.base_dir, target).await;
        let after = count_rows(&url, &tables).await;
        report.tables = tables
            .into_iter()
            .zip(before.into_iter().zip(after))
            .map(|(table, (before, after))| TableCounts {
                table,
                before,
                after,
            })
            .collect();
        result?;
        report.scrub_applied = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_a_scrub_touches_are_read_from_its_sql() {
        let sql = "-- scrub\nUPDATE users SET email = 'x';\ndelete from public.sessions where 1=1;\nTRUNCATE TABLE audit_log, other;\nUPDATE users SET name = NULL;";
        assert_eq!(
            tables_touched(sql),
            ["users", "public.sessions", "audit_log"]
        );
    }

    #[test]
    fn libpq_variables_carry_the_password_off_the_command_line() {
        let env = libpq_env(&SecretString::from(
            "postgres://u%40x:p%2Fw@db.example:6543/app?sslmode=require".to_owned(),
        ))
        .unwrap();
        assert!(env.contains(&("PGPASSWORD", "p/w".to_owned())));
        assert!(env.contains(&("PGUSER", "u@x".to_owned())));
        assert!(env.contains(&("PGPORT", "6543".to_owned())));
        assert!(env.contains(&("PGSSLMODE", "require".to_owned())));
    }
}

/// The `refresh` step: runs each database's [`Refresh`] (copy, the target's migrations,
/// scrub), one finding per database, with source, target, method, migrations, scrub and row
/// counts, so the evidence record says what the copy holds.
#[derive(Debug)]
pub struct RefreshStep {
    refreshes: Vec<Refresh>,
    migrations: Option<crate::EnvMigrations>,
}

impl RefreshStep {
    /// The step's name in reports.
    pub const NAME: &'static str = "refresh";

    /// A step over these refreshes; `migrations` are the target environment's.
    pub fn new(refreshes: Vec<Refresh>, migrations: Option<crate::EnvMigrations>) -> Self {
        RefreshStep {
            refreshes,
            migrations,
        }
    }
}

/// How a refresh reads in a finding and in evidence.
pub fn describe(r: &RefreshReport) -> String {
    let mut s = format!(
        "{} <- {} by {}; migrations applied: {}",
        r.target,
        r.source,
        r.method,
        if r.migrations_applied.is_empty() {
            "none".to_owned()
        } else {
            r.migrations_applied.join(", ")
        }
    );
    if r.scrub.is_empty() {
        s.push_str("; no scrub declared");
    } else {
        s.push_str(&format!(
            "; scrub {} ({})",
            if r.scrub_applied {
                "applied"
            } else {
                "NOT applied"
            },
            r.scrub.join(", ")
        ));
    }
    for t in &r.tables {
        let n = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "?".into());
        s.push_str(&format!(
            "; {}: {} rows before, {} after",
            t.table,
            n(t.before),
            n(t.after)
        ));
    }
    s
}

#[async_trait::async_trait]
impl staging_core::pipeline::Step for RefreshStep {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn run(
        &self,
        _ctx: &mut staging_core::pipeline::RunContext,
    ) -> Result<staging_core::pipeline::StepReport> {
        use staging_core::pipeline::{Finding, StepReport};
        let mut findings = vec![];
        for r in &self.refreshes {
            let migrations = self.migrations.clone();
            let database = r.database.clone();
            let report = r
                .run(|target| async move {
                    let Some(m) = migrations else {
                        return Ok(vec![]);
                    };
                    let has = m
                        .databases()
                        .iter()
                        .any(|(name, _, _)| *name == database.as_str());
                    if !has {
                        return Ok(vec![]);
                    }
                    m.apply_to(&target).await
                })
                .await;
            let name = format!("database {}", r.database);
            findings.push(match &report.error {
                None => Finding::ok(name, describe(&report)),
                Some(e) => Finding::failed(name, format!("{e}\n{}", describe(&report))),
            });
        }
        // Counted from what happened: a database that failed was not refreshed.
        let refreshed = findings.iter().filter(|f| f.ok).count();
        let summary = if refreshed == findings.len() {
            format!("{refreshed} database(s) refreshed")
        } else {
            format!("{refreshed} of {} database(s) refreshed", findings.len())
        };
        Ok(StepReport::from_findings(Self::NAME, summary, findings))
    }
}
