//! `staging migrate status|apply --env ENV`: every database of the spec, for one environment.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde::Serialize;
use staging_core::spec::{Database, LoadedSpec, Migrations};
use staging_core::{
    DynMigration, Error, ErrorClass, Migration, MigrationPlan, MigrationReport, MigrationStatus,
    Redactor, Result,
};

use crate::command::{CommandMigrator, OutputSink, destructive_reason};
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
            options: MigrateOptions::default(),
            urls: Arc::new(StaticUrls::new()),
            redactor: Redactor::global().clone(),
            sink: None,
        })
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
        let url = self.vars.get(&db.url_var).ok_or_else(|| {
            self.spec.error_at(
                &format!("databases.{database}.url_var"),
                format!("`{}` has no value in environment `{}`, so database `{database}` cannot be reached", db.url_var, self.environment),
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

    /// Apply (or plan, on a dry run) every database in spec order; stops at the first failure.
    pub async fn apply(&self) -> EnvApplyReport {
        let mut databases = vec![];
        for (name, db, m) in self.databases() {
            let mut outcome = DatabaseOutcome {
                database: name.to_owned(),
                runner: String::new(),
                ok: true,
                plan: None,
                report: None,
                seed: None,
                error: None,
                error_class: None,
            };
            if let Err(e) = self.apply_one(name, db, m, &mut outcome).await {
                outcome.ok = false;
                outcome.error = Some(self.redactor.redact(&e.to_string()).into_owned());
                outcome.error_class = Some(e.class());
            }
            let stop = !outcome.ok;
            databases.push(outcome);
            if stop {
                break;
            }
        }
        let ok = databases.iter().all(|d| d.ok);
        EnvApplyReport {
            environment: self.environment.clone(),
            dry_run: self.options.dry_run,
            ok,
            databases,
        }
    }

    async fn apply_one(
        &self,
        name: &str,
        db: &Database,
        m: &Migrations,
        outcome: &mut DatabaseOutcome,
    ) -> Result<()> {
        let env = self.spec.spec.environment(&self.environment)?;
        let runner = self.runner_for(name, self.url(name, db)?)?;
        outcome.runner = runner.describe();
        let plan = runner.plan().await?;
        // Staging before production.
        let mut source_versions = None;
        if env.protected {
            if let Some(argv) = &m.command
                && let Some(why) = destructive_reason(argv)
            {
                return Err(Error::failed(format!(
                    "refusing to run the migration command of `{name}` on protected environment `{}`: {why}",
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
                let (target, source_v) = match (
                    m.version_table.as_ref(),
                    runner.status().await,
                    source_runner.status().await,
                ) {
                    (Some(_), Ok(t), Ok(s)) => (versions(&t), versions(&s)),
                    _ => {
                        return Err(Error::failed(format!(
                            "refusing to migrate protected environment `{}` (database `{name}`): the command runner needs \
                             a readable `version_table` to check that `{source}` was migrated first",
                            self.environment
                        )));
                    }
                };
                if source_v.is_empty() {
                    return Err(refusal(
                        &self.environment,
                        source,
                        name,
                        &["(its version table is empty)".to_owned()],
                    ));
                }
                let ahead = ahead_of_source(&target, &source_v);
                if !ahead.is_empty() {
                    return Err(Error::failed(format!(
                        "refusing to migrate protected environment `{}` (database `{name}`): it already has versions \
                         `{source}` does not: {}",
                        self.environment,
                        ahead.join(", ")
                    )));
                }
                source_versions = Some(source_v);
            }
        }
        if self.options.dry_run {
            outcome.plan = Some(plan);
            outcome.seed = db
                .seed
                .as_ref()
                .map(|s| self.seed_note(s, env.protected, true));
            return Ok(());
        }
        let report = runner.apply().await?;
        outcome.report = Some(report);
        if let Some(source_v) = source_versions {
            let after = versions(&runner.status().await?);
            let ahead = ahead_of_source(&after, &source_v);
            if !ahead.is_empty() {
                return Err(Error::failed(format!(
                    "`{}` applied versions to protected environment `{}` that `{}` does not have: {}",
                    outcome.runner,
                    self.environment,
                    self.spec
                        .spec
                        .promoted_from(&self.environment)
                        .unwrap_or_default(),
                    ahead.join(", ")
                )));
            }
        }
        if let Some(seed) = &db.seed {
            outcome.seed = Some(self.seed_note(seed, env.protected, false));
            if !env.protected {
                let run = self
                    .command(seed.clone(), self.url(name, db)?, None)?
                    .run()
                    .await?;
                if run.exit_code != Some(0) {
                    let tail: Vec<&str> = run.tail.iter().map(|l| l.line.as_str()).collect();
                    return Err(Error::failed(format!(
                        "seed command `{}` failed with exit code {:?}; its last output:\n{}",
                        run.command,
                        run.exit_code,
                        tail.join("\n")
                    )));
                }
            }
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

fn versions(status: &MigrationStatus) -> Vec<String> {
    status.entries.iter().map(|e| e.version.clone()).collect()
}
