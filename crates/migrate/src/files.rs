//! The migration directory: file names, versions, checksums, the no-transaction marker.
//!
//! A migration is `<version>_<name>.sql`, where `<version>` is a 14-digit UTC timestamp
//! (`20260122103000`) or any positive integer (`1`, `0002`), and `<name>` is letters, digits,
//! `_` and `-`. Its optional reverse is `<version>_<name>.down.sql`. Files are applied in
//! numeric order of version. Any other `.sql` file in the directory is an error rather than
//! silently skipped: a misnamed migration that never runs is worse than a refusal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use staging_core::{Error, Result};

/// The comment line that makes a migration run outside a transaction (for statements such as
/// `CREATE INDEX CONCURRENTLY` or SQLite's `VACUUM`).
pub const NO_TRANSACTION_MARKER: &str = "-- staging:no-transaction";

/// One migration file of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationFile {
    /// Its version, the number before the first `_`.
    pub version: i64,
    /// The version exactly as written in the file name (keeps leading zeros).
    pub version_text: String,
    /// Its name, between the version and `.sql`.
    pub name: String,
    /// Where it is.
    pub path: PathBuf,
    /// Its contents.
    pub sql: String,
    /// SHA-256 of its bytes, hex.
    pub checksum: String,
    /// Whether it carries [`NO_TRANSACTION_MARKER`].
    pub no_transaction: bool,
    /// Its `.down.sql` companion, when there is one.
    pub down: Option<PathBuf>,
}

impl MigrationFile {
    /// The file name (`20260122103000_add_checks.sql`), as messages show it.
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// What a file name says, when it follows the scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedName {
    /// The version.
    pub version: i64,
    /// The version as written.
    pub version_text: String,
    /// The name.
    pub name: String,
    /// Whether it is a `.down.sql`.
    pub down: bool,
}

/// Parse `<version>_<name>.sql` or `<version>_<name>.down.sql`; `Err` says what is wrong
/// with a `.sql` name, `Ok(None)` is a file that is not SQL at all.
pub fn parse_file_name(file_name: &str) -> std::result::Result<Option<ParsedName>, String> {
    let Some(stem) = file_name.strip_suffix(".sql") else {
        return Ok(None);
    };
    let (stem, down) = match stem.strip_suffix(".down") {
        Some(s) => (s, true),
        None => (stem, false),
    };
    let expected = "expected `<version>_<name>.sql` (e.g. `20260122103000_add_checks.sql`), where the version is digits and the name is letters, digits, `_` or `-`";
    let Some((version_text, name)) = stem.split_once('_') else {
        return Err(format!(
            "`{file_name}`: no `_` after the version; {expected}"
        ));
    };
    if version_text.is_empty() || !version_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{file_name}`: the version `{version_text}` is not a number; {expected}"
        ));
    }
    let version: i64 = version_text.parse().map_err(|_| {
        format!("`{file_name}`: the version `{version_text}` is too large (at most 18 digits)")
    })?;
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "`{file_name}`: the name `{name}` is empty or has characters other than letters, digits, `_`, `-`; {expected}"
        ));
    }
    Ok(Some(ParsedName {
        version,
        version_text: version_text.to_owned(),
        name: name.to_owned(),
        down,
    }))
}

/// Every migration of `dir`, in order of version.
pub fn load_dir(dir: &Path) -> Result<Vec<MigrationFile>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::io(
            format!("cannot read the migrations directory {}", dir.display()),
            e,
        )
    })?;
    let mut ups: BTreeMap<i64, MigrationFile> = BTreeMap::new();
    let mut downs: BTreeMap<i64, (String, PathBuf)> = BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?;
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let parsed = match parse_file_name(&file_name) {
            Ok(Some(p)) => p,
            Ok(None) => continue,
            Err(message) => return Err(Error::config_at(path.display().to_string(), message)),
        };
        if parsed.down {
            downs.insert(parsed.version, (parsed.name, path));
            continue;
        }
        let bytes = std::fs::read(&path)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        let checksum = hex::encode(Sha256::digest(&bytes));
        let sql = String::from_utf8(bytes).map_err(|_| {
            Error::config_at(path.display().to_string(), "a migration must be UTF-8 text")
        })?;
        let no_transaction = sql.lines().any(|l| l.trim() == NO_TRANSACTION_MARKER);
        if let Some(other) = ups.get(&parsed.version) {
            return Err(Error::config_at(
                path.display().to_string(),
                format!(
                    "version {} is used twice: `{}` and `{file_name}`",
                    parsed.version,
                    other.file_name()
                ),
            ));
        }
        ups.insert(
            parsed.version,
            MigrationFile {
                version: parsed.version,
                version_text: parsed.version_text,
                name: parsed.name,
                path,
                sql,
                checksum,
                no_transaction,
                down: None,
            },
        );
    }
    for (version, (name, path)) in downs {
        match ups.get_mut(&version) {
            Some(up) if up.name == name => up.down = Some(path),
            _ => {
                return Err(Error::config_at(
                    path.display().to_string(),
                    format!(
                        "`{}` has no matching `{version}_{name}.sql`",
                        path.file_name().unwrap_or_default().to_string_lossy()
                    ),
                ));
            }
        }
    }
    Ok(ups.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_and_integer_versions_parse() {
        let p = parse_file_name("20260122103000_add_checks.sql")
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.version, p.name.as_str(), p.down),
            (20260122103000, "add_checks", false)
        );
        let p = parse_file_name("0002_users-table.down.sql")
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.version, p.version_text.as_str(), p.down),
            (2, "0002", true)
        );
    }

    #[test]
    fn misnamed_sql_files_are_errors_and_other_files_are_ignored() {
        assert!(parse_file_name("README.md").unwrap().is_none());
        for bad in [
            "add.sql",
            "v1_add.sql",
            "1_.sql",
            "1_a b.sql",
            "99999999999999999999_x.sql",
        ] {
            assert!(parse_file_name(bad).is_err(), "{bad}");
        }
    }
}
