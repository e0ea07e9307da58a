//! `staging refresh`: make an environment's database a fresh copy of another's, then migrate
//! it, then scrub personal data out of it, then check nothing personal is left, in that
//! order, and say what was done.
//!
//! The copy is a branch reset ([`DatabaseBranch::reset_from_parent`](staging_core::DatabaseBranch::reset_from_parent), Neon/Supabase) or, for
//! plain Postgres, `pg_dump` of the source replayed into the target by `psql` in ONE
//! transaction that first drops the target's schemas: staging is normally ahead of
//! production (the migration being tried), and `pg_restore --clean` over that diverged schema
//! fails on the objects that depend on production's. Either the whole copy lands or nothing
//! changed. The tools (`pg_dump`, `pg_restore`, `psql`) come from `PATH`, checked before
//! anything is written.
//!
//! What arrived is counted, per table: a copy that brings no rows from a non-empty source is
//! a failure, and a branch reset after which every table is empty (Supabase rebuilds a branch
//! from its migrations, without data) is reported as a data-less reset that runs the spec's
//! seed, never as a copy of the source. The scrub runs before the run reports success: a
//! scrub that fails leaves the report failed with the reason, so the CLI marks the
//! environment failed and nothing is told the copy is ready. Then the PII guard
//! ([`crate::pii`]) runs the spec's `scrub.verify` checks and scans text columns.

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

/// Row counts of one table of the copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyCounts {
    /// The table (`users`, `audit.log`).
    pub table: String,
    /// Rows in the source's dump (unknown for a branch reset: the provider copies).
    pub source: Option<i64>,
    /// Rows in the target before the copy (`None`: it had no such table).
    pub before: Option<i64>,
    /// Rows in the target right after the copy (before migrations and scrub).
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
    /// Whether the source's data reached the target (rows arrived).
    pub copied: bool,
    /// The copy was a reset that brought no data (every table empty after it, as Supabase
    /// documents for a branch reset): the spec's seed ran instead, and nothing of the source
    /// is in the target.
    pub data_less: bool,
    /// Row counts per table, before and after the copy.
    pub copy: Vec<CopyCounts>,
    /// The seed run after a data-less reset (`ran `...``), when the spec declares one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    /// Migrations applied to the copy.
    pub migrations_applied: Vec<String>,
    /// Whether the scrub ran to the end.
    pub scrub_applied: bool,
    /// What the scrub ran (files, or the command).
    pub scrub: Vec<String>,
    /// Row counts per table the scrub touches.
    pub tables: Vec<TableCounts>,
    /// What the PII guard found after the scrub (`scrub.verify` and the built-in scan).
    pub pii: Vec<crate::pii::PiiFinding>,
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

/// The programs a dump-and-restore needs.
#[derive(Debug, Clone)]
pub struct DumpTools {
    /// `pg_dump`: writes the source's dump.
    pub pg_dump: PathBuf,
    /// `pg_restore`: turns the dump into SQL (it connects to nothing).
    pub pg_restore: PathBuf,
    /// `psql`: replays that SQL into the target in one transaction.
    pub psql: PathBuf,
}

/// The programs a dump-and-restore needs, found on `PATH` before anything is written.
pub fn check_dump_tools() -> Result<DumpTools> {
    let find = |name: &str| -> Result<PathBuf> {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                Error::config(format!(
                    "`{name}` is not on PATH: refreshing a plain Postgres database copies it with pg_dump, pg_restore and psql; install the PostgreSQL client tools (e.g. `apt-get install postgresql-client`) in a version at least the server's"
                ))
            })
    };
    Ok(DumpTools {
        pg_dump: find("pg_dump")?,
        pg_restore: find("pg_restore")?,
        psql: find("psql")?,
    })
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

/// The bound on each tool of a copy (a dump, its replay).
pub const TOOL_BOUND: Duration = Duration::from_secs(3600);

/// Runs `program` (connected to `url`'s database when given, through libpq's variables),
/// in its own process group, bounded by [`TOOL_BOUND`].
async fn run_tool(
    program: &Path,
    args: &[&str],
    url: Option<&SecretString>,
    what: &str,
) -> Result<()> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_remove("PGSERVICE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
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
        "PGOPTIONS",
    ] {
        cmd.env_remove(var);
    }
    if let Some(url) = url {
        for (k, v) in libpq_env(url)? {
            cmd.env(k, v);
        }
    }
    // Its own process group, stopped whole when the refresh is (a signal, a timeout).
    let output = async {
        staging_core::process::GroupChild::spawn(&mut cmd)?
            .wait_with_output()
            .await
    };
    let out = tokio::time::timeout(TOOL_BOUND, output)
        .await
        .map_err(|_| Error::Timeout {
            what: what.to_owned(),
            after: TOOL_BOUND,
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

/// The first statements of the replay, in its transaction: every schema the connecting role
/// may drop goes (`DROP SCHEMA .. CASCADE`: staging's own tables, the migration being tried,
/// whatever depends on production's objects), then an empty `public` for the dump's objects.
/// Schemas of other roles stay; a dump object that collides with one fails the replay and
/// the transaction leaves the target as it was.
const DROP_SCHEMAS: &str = r#"SET client_min_messages = warning;
DO $staging_refresh$
DECLARE s name;
BEGIN
  FOR s IN SELECT n.nspname FROM pg_namespace n
            WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
              AND pg_has_role(current_user, n.nspowner, 'USAGE')
  LOOP
    EXECUTE format('DROP SCHEMA %I CASCADE', s);
  END LOOP;
  IF to_regnamespace('public') IS NULL THEN
    CREATE SCHEMA public;
    BEGIN
      IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pg_database_owner') THEN
        ALTER SCHEMA public OWNER TO pg_database_owner;
      END IF;
    EXCEPTION WHEN insufficient_privilege THEN NULL;
    END;
  END IF;
END
$staging_refresh$;
RESET client_min_messages;
"#;

/// The rows of each table in a plain-SQL dump: the lines of its `COPY .. FROM stdin` blocks.
fn rows_in_script(path: &Path) -> Result<Vec<(String, i64)>> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        context: "reading the dump's SQL".into(),
        source,
    })?;
    let mut out: Vec<(String, i64)> = vec![];
    let mut current: Option<usize> = None;
    for line in std::io::BufReader::new(file).split(b'\n') {
        let line = line.map_err(|source| Error::Io {
            context: "reading the dump's SQL".into(),
            source,
        })?;
        match current {
            Some(i) => {
                if line == b"\\." {
                    current = None;
                } else {
                    out[i].1 += 1;
                }
            }
            None => {
                if let Some(rest) = line.strip_prefix(b"COPY ")
                    && line.ends_with(b" FROM stdin;")
                {
                    let rest = String::from_utf8_lossy(rest);
                    let table = rest
                        .split_once(" (")
                        .map(|(t, _)| t)
                        .unwrap_or_else(|| rest.trim_end_matches(" FROM stdin;"))
                        .trim()
                        .to_owned();
                    out.push((table, 0));
                    current = Some(out.len() - 1);
                }
            }
        }
    }
    Ok(out)
}

/// A private directory for the dump (it holds the source's data), removed when dropped.
struct DumpDir(PathBuf);

impl DumpDir {
    fn new() -> Result<DumpDir> {
        let dir = std::env::temp_dir().join(format!(
            "staging-refresh-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        ));
        let mut b = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(&dir).map_err(|source| Error::Io {
            context: "creating a directory for the dump".into(),
            source,
        })?;
        Ok(DumpDir(dir))
    }
}

impl Drop for DumpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies `source` into `target`: `pg_dump --format=custom` of the source, turned into SQL by
/// `pg_restore --file`, replayed by `psql --single-transaction` after dropping the target's schemas in the
/// same transaction (so a target whose schema is ahead of the source's — the normal state
/// of staging — is replaced whole, and a failure leaves it as it was). The target's identity
/// is read again right before the replay. Returns the rows of each table in the dump
/// (`public.users`), for the counts the report compares with what arrived.
pub async fn dump_restore(
    source: &SecretString,
    target: &DatabaseTarget,
) -> Result<Vec<(String, i64)>> {
    let tools = check_dump_tools()?;
    let dir = DumpDir::new()?;
    let dump = dir.0.join("source.dump");
    let script = dir.0.join("source.sql");
    let drop = dir.0.join("drop-schemas.sql");
    let (dump_s, script_s, drop_s) = (
        dump.to_string_lossy().into_owned(),
        script.to_string_lossy().into_owned(),
        drop.to_string_lossy().into_owned(),
    );
    run_tool(
        &tools.pg_dump,
        &[
            "--format=custom",
            "--no-owner",
            "--no-acl",
            "--file",
            &dump_s,
        ],
        Some(source),
        "pg_dump of the source database",
    )
    .await?;
    run_tool(
        &tools.pg_restore,
        &["--no-owner", "--no-acl", "--file", &script_s, &dump_s],
        None,
        "pg_restore of the dump into SQL",
    )
    .await?;
    let rows = rows_in_script(&script)?;
    std::fs::write(&drop, DROP_SCHEMAS).map_err(|source| Error::Io {
        context: "writing the refresh's SQL".into(),
        source,
    })?;
    target.recheck(&ServerIdentity).await?;
    run_tool(
        &tools.psql,
        &[
            "--no-psqlrc",
            "--quiet",
            "--single-transaction",
            "--set=ON_ERROR_STOP=1",
            // The first line of an error, never the row it was copying (production's data).
            "--set=VERBOSITY=terse",
            "--file",
            &drop_s,
            "--file",
            &script_s,
        ],
        Some(target.url()),
        "replaying the dump into the target database (one transaction; nothing was changed)",
    )
    .await?;
    Ok(rows)
}

/// Every table of the database (`public` ones by their bare name) with its exact row count;
/// empty when the database cannot be read.
pub async fn count_all_tables(client: &staging_postgres::Client) -> Result<Vec<(String, i64)>> {
    let rows = client
        .query(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
                AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
              ORDER BY 1",
            &[],
        )
        .await
        .map_err(|e| Error::Failed {
            message: format!(
                "listing the tables of the copy failed: {}",
                staging_postgres::describe(&e)
            ),
        })?;
    let mut out = vec![];
    for r in rows {
        let t: String = r.get(0);
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM {t}"), &[])
            .await
            .map_err(|e| Error::Failed {
                message: format!(
                    "counting the rows of {t} failed: {}",
                    staging_postgres::describe(&e)
                ),
            })?
            .get(0);
        out.push((t, n));
    }
    Ok(out)
}

/// `public.users` reads `users`.
fn short_table(t: &str) -> String {
    t.strip_prefix("public.").unwrap_or(t).to_owned()
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
    /// The database's seed command, run when a reset brought no data.
    pub seed: Option<Vec<String>>,
    /// Fail on any finding of the built-in PII scan (`--strict`); the spec's `scrub.verify`
    /// checks fail the refresh either way.
    pub strict: bool,
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
            data_less: false,
            copy: vec![],
            seed: None,
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
            pii: vec![],
            error: None,
        };
        if let Err(e) = self.steps(&mut report, migrate).await {
            report.error = Some(if !report.copied || report.scrub_applied {
                e.to_string()
            } else {
                format!(
                    "{e}\nenvironment `{}` is FAILED: database `{}` may hold unscrubbed data copied from `{}`; nothing may use it until a refresh succeeds",
                    self.target, self.database, self.source
                )
            });
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
                let before = counts_of(target.url()).await;
                b.reset_from_parent().await?;
                // The reset replaced the branch's database: it must still be none of the
                // other environments' databases (its parent's above all).
                let target = target.reidentify(&ServerIdentity).await?;
                let client = staging_postgres::connect(target.url()).await?;
                let after = count_all_tables(&client).await?;
                report.copy = merge_counts(None, before, after);
                if report.copy.iter().any(|c| c.after.unwrap_or(0) > 0) {
                    report.copied = true;
                } else {
                    // Nothing of the source arrived: say so, and load the seed instead.
                    report.data_less = true;
                    if let Some(seed) = &self.seed {
                        run_seed(seed, &self.base_dir, &target).await?;
                        report.seed = Some(format!("ran `{}`", seed.join(" ")));
                    }
                }
                target
            }
            CopyFrom::Dump { source, target } => {
                let before = counts_of(target.url()).await;
                let in_dump = dump_restore(source, target).await?;
                let client = staging_postgres::connect(target.url()).await?;
                let after = count_all_tables(&client).await?;
                report.copy = merge_counts(Some(in_dump), before, after);
                let short: Vec<String> = report
                    .copy
                    .iter()
                    .filter(|c| c.source.is_some() && c.source != c.after)
                    .map(|c| {
                        format!(
                            "{}: {} in the dump, {} arrived",
                            c.table,
                            c.source.unwrap_or(0),
                            c.after
                                .map(|n| n.to_string())
                                .unwrap_or_else(|| "none".into())
                        )
                    })
                    .collect();
                let source_rows: i64 = report.copy.iter().filter_map(|c| c.source).sum();
                let arrived: i64 = report.copy.iter().filter_map(|c| c.after).sum();
                // What landed, landed (the replay is one transaction): say so either way.
                report.copied = arrived > 0;
                if source_rows > 0 && arrived == 0 {
                    return Err(Error::failed(format!(
                        "the copy brought no rows: `{}` has {source_rows} row(s), `{}` holds none after the restore",
                        self.source, self.target
                    )));
                }
                if !short.is_empty() {
                    return Err(Error::failed(format!(
                        "the copy is incomplete: {}",
                        short.join("; ")
                    )));
                }
                report.copied = true;
                target.clone()
            }
        };
        let target = &target;
        let url = target.url().clone();
        report.migrations_applied = migrate(target.clone()).await?;
        let Some(scrub) = &self.scrub else {
            return self.guard(report, target).await;
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
        self.guard(report, target).await
    }

    /// The PII guard on the scrubbed copy: the spec's `scrub.verify` findings fail the
    /// refresh; the built-in scan's fail it with `--strict`.
    async fn guard(&self, report: &mut RefreshReport, target: &DatabaseTarget) -> Result<()> {
        let client = staging_postgres::connect(target.url()).await?;
        let now = staging_postgres::identity_of(&client).await?;
        target.confirm(&staging_core::DatabaseIdentity::Postgres(now))?;
        report.pii = crate::pii::scan(&client, self.scrub.as_ref()).await?;
        let failing: Vec<String> = report
            .pii
            .iter()
            .filter(|f| f.declared || self.strict)
            .map(|f| f.describe())
            .collect();
        if !failing.is_empty() {
            report.scrub_applied = false;
            return Err(Error::failed(format!(
                "personal data is left after the scrub{}: {}",
                if self.strict { " (--strict)" } else { "" },
                failing.join("; ")
            )));
        }
        Ok(())
    }
}

/// Every table's rows at `url`, or none when it cannot be read (a database about to be
/// replaced may be empty or broken).
async fn counts_of(url: &SecretString) -> Vec<(String, i64)> {
    match staging_postgres::connect(url).await {
        Ok(c) => count_all_tables(&c).await.unwrap_or_default(),
        Err(_) => vec![],
    }
}

/// One row per table seen in the dump, before or after the copy.
fn merge_counts(
    source: Option<Vec<(String, i64)>>,
    before: Vec<(String, i64)>,
    after: Vec<(String, i64)>,
) -> Vec<CopyCounts> {
    let mut names: Vec<String> = vec![];
    for (t, _) in source.iter().flatten().chain(&after).chain(&before) {
        if !names.contains(t) {
            names.push(t.clone());
        }
    }
    let find = |v: &[(String, i64)], t: &str| v.iter().find(|(n, _)| n == t).map(|(_, n)| *n);
    names
        .into_iter()
        .map(|t| CopyCounts {
            // A table staging has and the dump has not is no part of the copy.
            source: source.as_ref().and_then(|s| find(s, &t)),
            before: find(&before, &t),
            after: find(&after, &t),
            table: short_table(&t),
        })
        .collect()
}

/// Runs the seed command with the target's `DATABASE_URL` (after a data-less reset).
async fn run_seed(argv: &[String], base: &Path, target: &DatabaseTarget) -> Result<()> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| Error::config("the seed command is empty"))?;
    target.recheck(&ServerIdentity).await?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(base)
        .env("DATABASE_URL", target.url().expose_secret())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = async {
        staging_core::process::GroupChild::spawn(&mut cmd)?
            .wait_with_output()
            .await
    };
    let out = tokio::time::timeout(TOOL_BOUND, out)
        .await
        .map_err(|_| Error::Timeout {
            what: format!("the seed command `{program}`"),
            after: TOOL_BOUND,
        })?
        .map_err(|source| Error::Io {
            context: format!("running the seed command `{program}`"),
            source,
        })?;
    if !out.status.success() {
        return Err(Error::failed(format!(
            "the seed command `{}` failed ({})",
            argv.join(" "),
            out.status
        )));
    }
    Ok(())
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
    state: Option<staging_core::data_state::DynDataStateLog>,
}

impl RefreshStep {
    /// The step's name in reports.
    pub const NAME: &'static str = "refresh";

    /// A step over these refreshes; `migrations` are the target environment's.
    pub fn new(refreshes: Vec<Refresh>, migrations: Option<crate::EnvMigrations>) -> Self {
        RefreshStep {
            refreshes,
            migrations,
            state: None,
        }
    }

    /// Record each database's data state in `log`: UNSCRUBBED before its copy starts
    /// (refused when that cannot be recorded), scrubbed only after its scrub and PII guard
    /// passed. A failed or interrupted refresh, and a copy without a scrub, leave the mark.
    pub fn with_state_log(mut self, log: staging_core::data_state::DynDataStateLog) -> Self {
        self.state = Some(log);
        self
    }
}

/// How a refresh reads in a finding and in evidence: `staging <- production by ...` only
/// when rows of the source arrived.
pub fn describe(r: &RefreshReport) -> String {
    let n = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    let mut s = if r.data_less {
        format!(
            "{}: data-less {} — no data of {} arrived (every table is empty after the reset); seed: {}",
            r.target,
            r.method,
            r.source,
            r.seed.as_deref().unwrap_or("none declared")
        )
    } else if r.copied {
        format!("{} <- {} by {}", r.target, r.source, r.method)
    } else {
        format!(
            "{}: NOT refreshed from {} ({}): no data of {} arrived",
            r.target, r.source, r.method, r.source
        )
    };
    s.push_str(&format!(
        "; migrations applied: {}",
        if r.migrations_applied.is_empty() {
            "none".to_owned()
        } else {
            r.migrations_applied.join(", ")
        }
    ));
    if !r.copy.is_empty() {
        let rows: Vec<String> = r
            .copy
            .iter()
            .map(|c| match c.source {
                Some(src) => format!(
                    "{} {} -> {} ({} in {})",
                    c.table,
                    n(c.before),
                    n(c.after),
                    src,
                    r.source
                ),
                None => format!("{} {} -> {}", c.table, n(c.before), n(c.after)),
            })
            .collect();
        s.push_str(&format!(
            "; rows before -> after the copy: {}",
            rows.join(", ")
        ));
    }
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
        s.push_str(&format!(
            "; {}: {} rows before, {} after",
            t.table,
            n(t.before),
            n(t.after)
        ));
    }
    if r.pii.is_empty() {
        if r.error.is_none() {
            s.push_str("; PII scan: nothing found");
        }
    } else {
        let found: Vec<String> = r.pii.iter().map(|f| f.describe()).collect();
        s.push_str(&format!("; PII scan: {}", found.join("; ")));
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
        use staging_core::data_state;
        for r in &self.refreshes {
            let name = format!("database {}", r.database);
            if let Some(log) = &self.state {
                let mark = data_state::unscrubbed(
                    &r.database,
                    &r.source,
                    &format!("`staging refresh` started copying it from `{}`", r.source),
                );
                if let Err(e) = log.record_state(&r.target, mark).await {
                    findings.push(Finding::failed(
                        name,
                        format!(
                            "not refreshed: its data state could not be recorded before the copy ({e}), and a copy that could be interrupted unmarked is never started"
                        ),
                    ));
                    continue;
                }
            }
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
            let mut finding = match &report.error {
                None => Finding::ok(name, describe(&report)),
                Some(e) => Finding::failed(name, format!("{e}\n{}", describe(&report))),
            };
            if let Some(log) = &self.state {
                let clean = report.ok() && (report.scrub_applied || !report.copied);
                if clean {
                    let how = if report.copied {
                        format!("refreshed from `{}`, scrub and PII guard passed", r.source)
                    } else {
                        "a data-less reset: nothing of the source arrived".to_owned()
                    };
                    if let Err(e) = log
                        .record_state(&r.target, data_state::scrubbed(&r.database, &how))
                        .await
                    {
                        finding.message.push_str(&format!(
                            "; it is still marked UNSCRUBBED: clearing the mark failed ({e})"
                        ));
                    }
                } else {
                    finding.message.push_str(&format!(
                        "; `{}` is marked as holding UNSCRUBBED data of `{}`: `up`, `smoke` and `promote` refuse until a refresh passes with its scrub",
                        r.target, r.source
                    ));
                }
            }
            findings.push(finding);
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
