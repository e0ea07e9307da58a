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
}

/// How a database is migrated: a directory of SQL files for the native runner, or a command.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Migrations {
    /// A directory of versioned SQL files (relative to the spec), for the native runner.
    #[serde(default)]
    pub dir: Option<String>,
    /// A command that applies migrations (`["alembic", "upgrade", "head"]`), run with the
    /// target's `DATABASE_URL`.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// The table where the command's tool keeps its version (`alembic_version`,
    /// `schema_migrations`), so `status` can read it.
    #[serde(default)]
    pub version_table: Option<String>,
}
