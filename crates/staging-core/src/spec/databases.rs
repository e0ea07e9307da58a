//! `[databases.NAME]`: databases and their migrations.

use schemars::JsonSchema;
use serde::Deserialize;

/// One database.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// The variable (in `[vars]`) that holds its URL in each environment.
    pub url_var: String,
    /// Its migrations, if the tool manages them.
    #[serde(default)]
    pub migrations: Option<Migrations>,
    /// A command of kind *seed*: it loads seed or fixture data (`["rails", "db:seed"]`,
    /// `["python", "manage.py", "loaddata", "demo.json"]`), run with the target's
    /// `DATABASE_URL` after the migrations. It never runs on a protected environment: there
    /// it is refused and reported, whatever the command is called.
    #[serde(default)]
    pub seed: Option<Vec<String>>,
    /// A command of kind *reset*: it empties, truncates, flushes, drops or recreates the
    /// database (`["python", "manage.py", "flush", "--no-input"]`, `["rails", "db:reset"]`,
    /// `["prisma", "migrate", "reset", "--force"]`). Run only by `staging migrate reset`, with
    /// the target's `DATABASE_URL`, and refused on a protected environment whatever it is
    /// called. Never part of `up` or `promote`.
    #[serde(default)]
    pub reset: Option<Vec<String>>,
    /// The environments this database is deliberately shared with (`["production"]`, one
    /// hosted database for every environment). Without it, two environments whose URLs
    /// name the same host, port and database are refused before any write; with it, its
    /// migrations and seed are writes to those environments too, refused from an
    /// environment that is not protected when one of them is (give that environment a
    /// branch of the database instead).
    #[serde(default)]
    pub shared_with: Vec<String>,
    /// Where this database lives when it is a branch of another database
    /// (`{ neon = { project_id, branch, parent } }`, `{ supabase = { project_ref, branch } }`).
    /// The branch's connection URL is then the database's URL for the environments it names
    /// (`environments`, default: every environment that is not protected): migrations, probes
    /// and `staging refresh` use it, and it is never printed.
    #[serde(default)]
    pub branch: Option<BranchSpec>,
    /// What `staging refresh` runs after copying the source's data and migrating, to replace
    /// personal data before anything reads the copy.
    #[serde(default)]
    pub scrub: Option<Scrub>,
}

/// A database that is a branch of another, per provider.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum BranchSpec {
    /// A Neon branch (API v2, `NEON_API_KEY`).
    Neon(NeonBranch),
    /// A Supabase branch (Management API v1, `SUPABASE_ACCESS_TOKEN`).
    Supabase(SupabaseBranch),
}

impl BranchSpec {
    /// The environments whose database is this branch, when given.
    pub fn environments(&self) -> &[String] {
        match self {
            BranchSpec::Neon(n) => &n.environments,
            BranchSpec::Supabase(s) => &s.environments,
        }
    }

    /// Whether environment `env` (protected or not) uses this branch.
    pub fn applies_to(&self, env: &str, protected: bool) -> bool {
        let named = self.environments();
        if named.is_empty() {
            !protected
        } else {
            named.iter().any(|e| e == env)
        }
    }
}

/// `branch = { neon = { ... } }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NeonBranch {
    /// The Neon project id (`late-pine-123456`).
    pub project_id: String,
    /// The branch's name (`staging`).
    pub branch: String,
    /// The name of the branch it is forked from and reset to (`main`, production).
    pub parent: String,
    /// The database on the branch (default: the project's only database).
    #[serde(default)]
    pub database: Option<String>,
    /// The role to connect as (default: the project's owner role).
    #[serde(default)]
    pub role: Option<String>,
    /// Keep the branch's previous state under this name when resetting (undo).
    #[serde(default)]
    pub preserve_under_name: Option<String>,
    /// The environments whose database is this branch (default: every unprotected one).
    #[serde(default)]
    pub environments: Vec<String>,
}

/// `branch = { supabase = { ... } }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SupabaseBranch {
    /// The parent project's reference (`abcdefghijklmnopqrst`).
    pub project_ref: String,
    /// The branch's name (`staging`).
    pub branch: String,
    /// The git branch the Supabase branch follows (default: `branch`).
    #[serde(default)]
    pub git_branch: Option<String>,
    /// The database on the branch's Postgres (default: `postgres`, the one Supabase's own
    /// services use).
    #[serde(default)]
    pub database: Option<String>,
    /// The environments whose database is this branch (default: every unprotected one).
    #[serde(default)]
    pub environments: Vec<String>,
}

/// `scrub = { sql = ["scrub/users.sql"] }` or `scrub = { command = [...] }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scrub {
    /// SQL files (relative to the spec) run in order, each in one transaction.
    #[serde(default)]
    pub sql: Vec<String>,
    /// A command run with the target's `DATABASE_URL`.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// The tables the scrub touches, whose row counts are recorded before and after (default:
    /// the tables named after `UPDATE`, `DELETE FROM`, `TRUNCATE` in the SQL files).
    #[serde(default)]
    pub tables: Vec<String>,
    /// Checks run on the copy after the scrub, each a failure of the refresh when any row
    /// matches (`[{ table = "users", column = "email", pattern = "@(?!example\\.invalid)" }]`):
    /// the personal data the scrub must have replaced. Reported as table.column and a count,
    /// never the values.
    #[serde(default)]
    pub verify: Vec<ScrubVerify>,
    /// E-mail domains the built-in scan of text columns does not report (`["yourcompany.com"]`:
    /// addresses that are not anybody's personal data). Reserved domains (`example.com`,
    /// `*.example`, `*.invalid`, `*.test`, `*.localhost`) are never reported.
    #[serde(default)]
    pub allow_domains: Vec<String>,
}

/// One `scrub.verify` check: no row of `table` may have a `column` matching `pattern`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScrubVerify {
    /// The table (`users`, or `schema.table`).
    pub table: String,
    /// The column.
    pub column: String,
    /// A Postgres regular expression (`~`, case-sensitive) no value of the column may match
    /// after the scrub (`'@'` for "no e-mail address is left", `'[0-9]{7,}'` for phone numbers).
    pub pattern: String,
}

/// How a database is migrated: a directory of SQL files for the native runner, or a command.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Migrations {
    /// A directory of versioned SQL files (relative to the spec), for the native runner:
    /// `<version>_<name>.sql` (version a 14-digit UTC timestamp or an integer), applied in
    /// order of version, each in its own transaction unless the file has a
    /// `-- staging:no-transaction` line.
    #[serde(default)]
    pub dir: Option<String>,
    /// A command of kind *migrate*: it applies migrations (`["alembic", "upgrade", "head"]`),
    /// run with the target's `DATABASE_URL`. The only command of a database that runs against
    /// a protected environment (and there only after the staging-first check; one that looks
    /// like a seed, reset or flush is refused as well).
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// With `command`: a command that prints the versions this checkout's migrations bring a
    /// database to, one per line (the first word of each non-empty line counts), without
    /// touching a database: it runs without `DATABASE_URL`. `["alembic", "heads"]`;
    /// `["sh", "-c", "ls db/migrate | cut -d_ -f1"]` (rails). Needed to migrate a protected
    /// environment: each listed version must already be in the version table of the
    /// environment that promotes to it before the migration command runs.
    #[serde(default)]
    pub versions_command: Option<Vec<String>>,
    /// With `command`: the table where the tool keeps its versions (`alembic_version`,
    /// `schema_migrations`), so `status` and the staging-before-production rule can read it.
    /// With `dir`: the native runner's metadata table (default `staging_migrations`).
    #[serde(default)]
    pub version_table: Option<String>,
    /// Apply even when applied migrations were modified or are missing (the escape hatch;
    /// logged and reported). Prefer `--allow-drift` on the command line for a one-off.
    #[serde(default)]
    pub allow_drift: bool,
}
