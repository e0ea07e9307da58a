//! `staging migrate status|apply --env ENV`: every database of the spec, for one environment.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde::Serialize;
use staging_core::database_target::{DatabaseTarget, issue_database_targets};
use staging_core::isolation::EnvValues;
use staging_core::spec::{Database, LoadedSpec, Migrations};
use staging_core::{
    DynMigration, Error, ErrorClass, Migration, MigrationEntry, MigrationPlan, MigrationReport,
    MigrationState, MigrationStatus, Redactor, Result,
};
use staging_postgres::ServerIdentity;

use crate::command::{CommandMigrator, OutputSink, destructive_reason, list_versions};
use crate::db::resolve_sqlite_path;
use crate::guard::{StaticUrls, UrlLookup, ahead_of_source, missing_on_source, refusal};
use crate::native::SqlMigrator;

/// How to migrate.
#[derive(Debug, Clone, Default)]
pub struct MigrateOptions {
    /// Plan only; change nothing.
    pub dry_run: bool,
    /// The escape hatch: apply even though applied migrations were modified or are missing.
    pub allow_drift: bool,
    /// How long to wait for another runner's lock (default 10 minutes).
    pub lock_timeout: Option<Duration>,
}

/// The migrations of every database of the spec in one environment.
#[derive(Clone)]
pub struct EnvMigrations {
    spec: Arc<LoadedSpec>,
    environment: String,
    vars: BTreeMap<String, SecretString>,
    /// Why a variable has no value, when reading it failed, and whether its source could
    /// not be reached (a database branch's API that did not answer): the URL's error
    /// blames that, not the spec.
    unreadable: BTreeMap<String, (String, bool)>,
    options: MigrateOptions,
    urls: Arc<dyn UrlLookup>,
    redactor: Redactor,
    sink: Option<OutputSink>,
}

impl std::fmt::Debug for EnvMigrations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvMigrations")
            .field("environment", &self.environment)
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .field("options", &self.options)
            .field("urls", &self.urls)
            .finish_non_exhaustive()
    }
}

/// The status of one database.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseStatus {
    /// The database (`[databases.NAME]`).
    pub database: String,
    /// The runner (`sql:db/migrations on postgres`, `command: alembic upgrade head`).
    pub runner: String,
    /// Its migrations, when they could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<MigrationStatus>,
    /// Why they could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `staging migrate status --env ENV`.
#[derive(Debug, Clone, Serialize)]
pub struct EnvStatusReport {
    /// The environment.
    pub environment: String,
    /// Whether every database could be read and none has drift.
    pub ok: bool,
    /// One entry per database with migrations.
    pub databases: Vec<DatabaseStatus>,
}

/// What happened to one database.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseOutcome {
    /// The database.
    pub database: String,
    /// The runner.
    pub runner: String,
    /// Whether it went well.
    pub ok: bool,
    /// What would be applied (dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<MigrationPlan>,
    /// What was applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<MigrationReport>,
    /// What became of the seed command, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    /// What went wrong (redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The class of the error, for the exit code.
    #[serde(skip)]
    pub error_class: Option<ErrorClass>,
}

/// `staging migrate apply --env ENV [--dry-run]`.
#[derive(Debug, Clone, Serialize)]
pub struct EnvApplyReport {
    /// The environment.
    pub environment: String,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Whether every database went well.
    pub ok: bool,
    /// One entry per database with migrations, in spec order; after a failure the rest are
    /// not attempted and are absent.
    pub databases: Vec<DatabaseOutcome>,
}

impl EnvApplyReport {
    /// 0, or the exit code of the worst failure.
    pub fn exit_code(&self) -> u8 {
        self.databases
            .iter()
            .filter(|d| !d.ok)
            .map(|d| d.error_class.unwrap_or(ErrorClass::Failed).exit_code())
            .max()
            .unwrap_or(0)
    }
}

impl EnvMigrations {
    /// The databases of `spec` in `environment`, whose URLs are in `vars` (the environment's
    /// resolved variables).
    pub fn new(
        spec: Arc<LoadedSpec>,
        environment: &str,
        vars: BTreeMap<String, SecretString>,
    ) -> Result<Self> {
        spec.spec.environment(environment)?;
        Ok(EnvMigrations {
            spec,
            environment: environment.to_owned(),
            vars,
            unreadable: BTreeMap::new(),
            options: MigrateOptions::default(),
            urls: Arc::new(StaticUrls::new()),
            redactor: Redactor::global().clone(),
            sink: None,
        })
    }

    /// Why variables without a value could not be read (`ResolvedVars::errors` of the
    /// secrets crate), and which of them because their source could not be reached
    /// (`ResolvedVars::unreachable`): a database whose URL is one of those fails naming
    /// the source (exit 3), not "has no value" (a spec error).
    pub fn with_unreadable(
        mut self,
        errors: BTreeMap<String, String>,
        unreachable: &std::collections::BTreeSet<String>,
    ) -> Self {
        self.unreadable = errors
            .into_iter()
            .map(|(var, why)| {
                let cannot_reach = unreachable.contains(&var);
                (var, (why, cannot_reach))
            })
            .collect();
        self
    }

    /// Set the options.
    pub fn with_options(mut self, options: MigrateOptions) -> Self {
        self.options = options;
        self
    }

    /// Where the source environment's URL comes from, for the staging-before-production rule.
    pub fn with_url_lookup(mut self, urls: Arc<dyn UrlLookup>) -> Self {
        self.urls = urls;
        self
    }

    /// The redactor command output passes through (default: the global one).
    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    /// Where command runners' output lines go, besides `tracing`.
    pub fn on_output(mut self, sink: OutputSink) -> Self {
        self.sink = Some(sink);
        self
    }

    /// The databases that have migrations, in spec order.
    pub fn databases(&self) -> Vec<(&str, &Database, &Migrations)> {
        self.spec
            .spec
            .databases
            .iter()
            .filter_map(|(name, db)| db.migrations.as_ref().map(|m| (name.as_str(), db, m)))
            .collect()
    }

    fn url(&self, database: &str, db: &Database) -> Result<SecretString> {
        if !self.vars.contains_key(&db.url_var)
            && let Some((why, true)) = self.unreadable.get(&db.url_var)
        {
            return Err(Error::Provider {
                provider: "secrets".to_owned(),
                source: format!(
                    "`{}` of environment `{}` could not be read, so database `{database}` cannot be reached: {why}",
                    db.url_var, self.environment
                )
                .into(),
                retryable: false,
            });
        }
        let url = self.vars.get(&db.url_var).ok_or_else(|| {
            let why = self
                .unreadable
                .get(&db.url_var)
                .map(|(why, _)| format!(" ({why})"))
                .unwrap_or_default();
            self.spec.error_at(
                &format!("databases.{database}.url_var"),
                format!("`{}` has no value in environment `{}`{why}, so database `{database}` cannot be reached", db.url_var, self.environment),
            )
        })?;
        Ok(resolve_sqlite_path(url, &self.spec.base_dir()))
    }

    /// The runner of `database` against `url`.
    pub fn runner_for(&self, database: &str, url: SecretString) -> Result<DynMigration> {
        let db = self
            .spec
            .spec
            .databases
            .get(database)
            .ok_or_else(|| Error::not_found(format!("database `{database}` in the spec")))?;
        let m = db.migrations.as_ref().ok_or_else(|| {
            self.spec.error_at(
                &format!("databases.{database}"),
                format!("database `{database}` has no migrations"),
            )
        })?;
        let at = |e: Error| match e {
            Error::ConfigInvalid {
                location: None,
                message,
            } => self
                .spec
                .error_at(&format!("databases.{database}.migrations"), message),
            other => other,
        };
        if let Some(dir) = &m.dir {
            let mut r = SqlMigrator::new(url, self.spec.resolve_path(dir))
                .map_err(at)?
                .allow_drift(self.options.allow_drift || m.allow_drift);
            if let Some(t) = &m.version_table {
                r = r.with_table(t).map_err(at)?;
            }
            if let Some(t) = self.options.lock_timeout {
                r = r.lock_timeout(t);
            }
            return Ok(Arc::new(r));
        }
        let argv = m.command.clone().unwrap_or_default();
        Ok(Arc::new(
            self.command(argv, url, m.version_table.as_deref())
                .map_err(at)?,
        ))
    }

    fn command(
        &self,
        argv: Vec<String>,
        url: SecretString,
        version_table: Option<&str>,
    ) -> Result<CommandMigrator> {
        let mut c = CommandMigrator::new(argv, url, self.spec.base_dir(), self.redactor.clone())?;
        if let Some(t) = version_table {
            c = c.with_version_table(t)?;
        }
        if let Some(sink) = &self.sink {
            c = c.on_output(sink.clone());
        }
        Ok(c)
    }

    /// The status of every database.
    pub async fn status(&self) -> EnvStatusReport {
        let mut databases = vec![];
        for (name, db, _) in self.databases() {
            let result = async {
                let runner = self.runner_for(name, self.url(name, db)?)?;
                let described = runner.describe();
                Ok::<_, Error>((described, runner.status().await))
            }
            .await;
            let (runner, status) = match result {
                Ok((r, s)) => (r, s),
                Err(e) => (String::new(), Err(e)),
            };
            let (status, error) = match status {
                Ok(s) => (Some(s), None),
                Err(e) => (
                    None,
                    Some(self.redactor.redact(&e.to_string()).into_owned()),
                ),
            };
            databases.push(DatabaseStatus {
                database: name.to_owned(),
                runner,
                status,
                error,
            });
        }
        let ok = databases
            .iter()
            .all(|d| d.error.is_none() && d.status.as_ref().is_some_and(|s| !s.has_drift()));
        EnvStatusReport {
            environment: self.environment.clone(),
            ok,
            databases,
        }
    }

    /// Apply (or plan, on a dry run) every database in spec order.
    ///
    /// Check, then act: first every database is planned and, on a protected environment,
    /// checked against the environment that promotes to it (staging has these versions; the
    /// command is allowed here) — only reads, nothing runs against any database. Only when
    /// every database passed is anything applied, in spec order, stopping at the first
    /// failure. A refusal is reported for the database it concerns; the databases after it
    /// are absent (not attempted).
    pub async fn apply(&self) -> EnvApplyReport {
        let mut databases = vec![];
        let mut checked = vec![];
        for (name, db, m) in self.databases() {
            let mut outcome = DatabaseOutcome::new(name);
            let checked_one = async {
                let target = self.target(name, db).await?;
                self.check_one(name, db, m, target, &mut outcome).await
            }
            .await;
            match checked_one {
                Ok(c) => checked.push((outcome, c)),
                Err(e) => {
                    self.fail(&mut outcome, &e);
                    databases.push(outcome);
                    return self.apply_report(databases);
                }
            }
        }
        for (mut outcome, c) in checked {
            if let Err(e) = self.apply_checked(c, &mut outcome).await {
                self.fail(&mut outcome, &e);
                databases.push(outcome);
                break;
            }
            databases.push(outcome);
        }
        self.apply_report(databases)
    }

    /// Run every database's declared `reset` command (`manage.py flush --no-input`,
    /// `rails db:reset`): refused on a protected environment, whatever it is called, before
    /// any runs; the databases that declare none are not listed.
    pub async fn reset(&self) -> EnvApplyReport {
        let env = match self.spec.spec.environment(&self.environment) {
            Ok(env) => env,
            Err(e) => {
                let mut outcome = DatabaseOutcome::new("");
                self.fail(&mut outcome, &e);
                return self.apply_report(vec![outcome]);
            }
        };
        let resets: Vec<(&str, &Database, &Vec<String>)> = self
            .spec
            .spec
            .databases
            .iter()
            .filter_map(|(name, db)| db.reset.as_ref().map(|r| (name.as_str(), db, r)))
            .collect();
        let mut databases = vec![];
        // Check, then act: every database's target before any reset runs.
        let mut targets = vec![];
        for (name, db, argv) in &resets {
            let result = async {
                if env.protected {
                    return Err(Error::failed(format!(
                        "refusing to run the reset command `{}` of database `{name}` on protected environment `{}`: \
                         a command declared as `reset` never runs there, whatever it is called",
                        argv.join(" "),
                        self.environment
                    )));
                }
                self.target(name, db).await
            }
            .await;
            match result {
                Ok(t) => targets.push(t),
                Err(e) => {
                    let mut outcome = DatabaseOutcome::new(name);
                    outcome.runner = format!("reset: {}", argv.join(" "));
                    self.fail(&mut outcome, &e);
                    databases.push(outcome);
                    return self.apply_report(databases);
                }
            }
        }
        for ((name, _, argv), target) in resets.into_iter().zip(targets) {
            let mut outcome = DatabaseOutcome::new(name);
            outcome.runner = format!("reset: {}", argv.join(" "));
            let result = async {
                if self.options.dry_run {
                    return Ok(());
                }
                self.run_declared("reset", argv, &target).await
            }
            .await;
            let failed = result.is_err();
            if let Err(e) = result {
                self.fail(&mut outcome, &e);
            }
            databases.push(outcome);
            if failed {
                break;
            }
        }
        self.apply_report(databases)
    }

    fn fail(&self, outcome: &mut DatabaseOutcome, e: &Error) {
        outcome.ok = false;
        outcome.error = Some(self.redactor.redact(&e.to_string()).into_owned());
        outcome.error_class = Some(e.class());
    }

    fn apply_report(&self, databases: Vec<DatabaseOutcome>) -> EnvApplyReport {
        EnvApplyReport {
            environment: self.environment.clone(),
            dry_run: self.options.dry_run,
            ok: databases.iter().all(|d| d.ok),
            databases,
        }
    }

    /// Plan one database and, on a protected environment, run every check that can refuse
    /// it. Reads only: nothing is executed against the database here.
    async fn check_one(
        &self,
        name: &str,
        db: &Database,
        m: &Migrations,
        target: DatabaseTarget,
        outcome: &mut DatabaseOutcome,
    ) -> Result<Checked> {
        let env = self.spec.spec.environment(&self.environment)?;
        let runner = self.runner_for(name, target.url().clone())?;
        outcome.runner = runner.describe();
        let mut plan = runner.plan().await?;
        let mut source_versions = None;
        if env.protected {
            if let Some(argv) = &m.command
                && let Some(why) = destructive_reason(argv)
            {
                return Err(Error::failed(format!(
                    "refusing to run the migration command of `{name}` on protected environment `{}`: {why}; \
                     declare such a command as the database's `seed` or `reset`, which never run on a protected environment",
                    self.environment
                )));
            }
            let source = self.spec.spec.promoted_from(&self.environment).ok_or_else(|| {
                Error::failed(format!(
                    "refusing to migrate protected environment `{}`: no environment promotes to it, so there is no \
                     staging database to check first (set `promotes_to = \"{}\"` on the staging environment)",
                    self.environment, self.environment
                ))
            })?;
            if m.command.is_some() && (m.version_table.is_none() || m.versions_command.is_none()) {
                return Err(Error::failed(format!(
                    "refusing to migrate protected environment `{}` (database `{name}`): a migration command can be \
                     checked against `{source}` before it runs only with `version_table` (where the tool keeps its \
                     versions) and `versions_command` (what prints the versions this checkout brings a database to, \
                     e.g. `[\"alembic\", \"heads\"]`) under `databases.{name}.migrations`",
                    self.environment
                )));
            }
            let source_url = self.urls.lookup(source, &db.url_var).await?;
            let source_runner = self.runner_for(
                name,
                resolve_sqlite_path(&source_url, &self.spec.base_dir()),
            )?;
            if m.dir.is_some() {
                let missing = missing_on_source(&plan, &source_runner.status().await?);
                if !missing.is_empty() {
                    return Err(refusal(&self.environment, source, name, &missing));
                }
            } else {
                let unreadable = |which: &str, e: Error| {
                    Error::failed(format!(
                        "refusing to migrate protected environment `{}` (database `{name}`): cannot read the version \
                         table of `{which}` to check that `{source}` was migrated first: {e}",
                        self.environment
                    ))
                };
                let target = versions(
                    &runner
                        .status()
                        .await
                        .map_err(|e| unreadable(&self.environment, e))?,
                );
                let source_v = versions(
                    &source_runner
                        .status()
                        .await
                        .map_err(|e| unreadable(source, e))?,
                );
                let argv = m.versions_command.as_deref().unwrap_or_default();
                let code = list_versions(argv, &self.spec.base_dir(), &self.redactor).await?;
                let missing = ahead_of_source(&code, &source_v);
                if !missing.is_empty() {
                    return Err(refusal(&self.environment, source, name, &missing));
                }
                // Production may hold versions staging no longer lists (alembic keeps only the
                // current head): what matters is what this run brings it to.
                plan = MigrationPlan {
                    to_apply: code
                        .iter()
                        .filter(|v| !target.contains(v))
                        .map(|v| MigrationEntry {
                            version: v.clone(),
                            name: String::new(),
                            state: MigrationState::Pending,
                        })
                        .collect(),
                };
                source_versions = Some(SourceCheck {
                    source: source.to_owned(),
                    source_versions: source_v,
                    target_before: target,
                });
            }
        }
        Ok(Checked {
            db: db.clone(),
            target,
            protected: env.protected,
            runner,
            plan,
            source_versions,
        })
    }

    /// Apply one database that passed [`EnvMigrations::check_one`] (on a dry run, report its
    /// plan), then its seed on an unprotected environment.
    async fn apply_checked(&self, c: Checked, outcome: &mut DatabaseOutcome) -> Result<()> {
        if self.options.dry_run {
            outcome.plan = Some(c.plan);
            outcome.seed =
                c.db.seed
                    .as_ref()
                    .map(|s| self.seed_note(s, c.protected, true));
            return Ok(());
        }
        // The database may have changed since it was checked (DNS, a failover): read again.
        c.target.recheck(&ServerIdentity).await?;
        let report = c.runner.apply().await?;
        outcome.report = Some(report);
        // A second guard: the tool applied only what the source environment has.
        if let Some(check) = c.source_versions {
            let source = check.source;
            let after = versions(&c.runner.status().await?);
            let new = ahead_of_source(&after, &check.target_before);
            let ahead = ahead_of_source(&new, &check.source_versions);
            if !ahead.is_empty() {
                return Err(Error::failed(format!(
                    "`{}` applied versions to protected environment `{}` that `{source}` does not have: {}",
                    outcome.runner,
                    self.environment,
                    ahead.join(", ")
                )));
            }
        }
        if let Some(seed) = &c.db.seed {
            outcome.seed = Some(self.seed_note(seed, c.protected, false));
            if !c.protected {
                self.run_declared("seed", seed, &c.target).await?;
            }
        }
        Ok(())
    }

    /// The write target of database `name`: its identity read from its server and compared
    /// with every other environment's databases that can be read (their URLs from the
    /// [`UrlLookup`]), refused when one is the same database.
    async fn target(&self, name: &str, db: &Database) -> Result<DatabaseTarget> {
        let url = self.url(name, db)?;
        let targets = issue_database_targets(
            &self.spec,
            &self.environment,
            vec![(name.to_owned(), url)],
            &OtherValues(self.urls.as_ref()),
            &ServerIdentity,
        )
        .await?;
        let target = targets.get(name)?.clone();
        tracing::info!(database = name, target = %target.describe(), "database identified");
        Ok(target)
    }

    /// Apply the migrations of `target`'s database (what `staging refresh` runs on the copy):
    /// the names of the migrations applied.
    pub async fn apply_to(&self, target: &DatabaseTarget) -> Result<Vec<String>> {
        if target.environment() != self.environment {
            return Err(Error::config(format!(
                "database `{}` was checked for `{}`, not `{}`",
                target.database(),
                target.environment(),
                self.environment
            )));
        }
        target.recheck(&ServerIdentity).await?;
        let applied = self
            .runner_for(target.database(), target.url().clone())?
            .apply()
            .await?;
        Ok(applied
            .applied
            .iter()
            .map(|a| format!("{}_{}", a.version, a.name))
            .collect())
    }

    /// Run a declared `seed` or `reset` command against `target`'s database.
    async fn run_declared(
        &self,
        kind: &str,
        argv: &[String],
        target: &DatabaseTarget,
    ) -> Result<()> {
        target.recheck(&ServerIdentity).await?;
        let url = target.url().clone();
        let run = self.command(argv.to_vec(), url, None)?.run().await?;
        if run.exit_code != Some(0) {
            let tail: Vec<&str> = run.tail.iter().map(|l| l.line.as_str()).collect();
            return Err(Error::failed(format!(
                "{kind} command `{}` failed with exit code {:?}; its last output:\n{}",
                run.command,
                run.exit_code,
                tail.join("\n")
            )));
        }
        Ok(())
    }

    fn seed_note(&self, seed: &[String], protected: bool, dry_run: bool) -> String {
        let cmd = seed.join(" ");
        match (protected, dry_run) {
            (true, _) => format!(
                "refused: seed command `{cmd}` never runs on protected environment `{}`",
                self.environment
            ),
            (false, true) => format!("would run `{cmd}`"),
            (false, false) => format!("ran `{cmd}`"),
        }
    }
}

/// A database that passed every check, ready to apply.
struct Checked {
    db: Database,
    target: DatabaseTarget,
    protected: bool,
    runner: DynMigration,
    plan: MigrationPlan,
    /// On a protected environment with a command runner: what the check after the command
    /// compares against.
    source_versions: Option<SourceCheck>,
}

/// The versions of the source environment and of the target before the command ran.
struct SourceCheck {
    source: String,
    source_versions: Vec<String>,
    target_before: Vec<String>,
}

impl DatabaseOutcome {
    fn new(database: &str) -> Self {
        DatabaseOutcome {
            database: database.to_owned(),
            runner: String::new(),
            ok: true,
            plan: None,
            report: None,
            seed: None,
            error: None,
            error_class: None,
        }
    }
}

/// Another environment's values through the [`UrlLookup`], for the identity comparison.
#[derive(Debug)]
struct OtherValues<'a>(&'a dyn UrlLookup);

#[async_trait::async_trait]
impl EnvValues for OtherValues<'_> {
    async fn values(&self, environment: &str) -> Result<BTreeMap<String, SecretString>> {
        self.0.values(environment).await
    }
}

fn versions(status: &MigrationStatus) -> Vec<String> {
    status.entries.iter().map(|e| e.version.clone()).collect()
}
