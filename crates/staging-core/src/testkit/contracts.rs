//! Where a provider's published API description is found, for every test in one place.
//!
//! The order is the repository's convention: `$STAGING_CONTRACTS_DIR` when it is set (and
//! then only there, so a wrong directory is noticed rather than papered over), else
//! `<workspace>/.tools/contracts/` (filled by `scripts/test-tools.sh`, from the registries
//! where the descriptions are published), else `../shared/contracts` beside the workspace.

use std::path::{Path, PathBuf};

/// The environment variable that names a directory of API descriptions.
pub const CONTRACTS_DIR_VAR: &str = "STAGING_CONTRACTS_DIR";

/// The workspace this crate is built in (`crates/staging-core/../..`).
fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = here.join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The directories searched for a contract, in order, with `$STAGING_CONTRACTS_DIR` (when
/// given) standing alone.
pub fn contract_dirs(contracts_dir_var: Option<&std::ffi::OsStr>) -> Vec<PathBuf> {
    match contracts_dir_var {
        Some(dir) if !dir.is_empty() => vec![PathBuf::from(dir)],
        _ => {
            let root = workspace_root();
            vec![
                root.join(".tools/contracts"),
                root.join("../shared/contracts"),
            ]
        }
    }
}

/// The path of the API description `file` (`"render-public-api.json"`,
/// `"netlify-swagger.json"`, `"railway-schema.json"`...).
///
/// # Panics
/// When no searched directory has the file: the message names the file, every directory
/// looked in, and the script that fills them, as a test failure should.
pub fn contract_path(file: &str) -> PathBuf {
    let var = std::env::var_os(CONTRACTS_DIR_VAR);
    let dirs = contract_dirs(var.as_deref());
    if let Some(found) = dirs.iter().map(|d| d.join(file)).find(|p| p.is_file()) {
        return found;
    }
    let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    let how = if var.is_some() {
        format!("{CONTRACTS_DIR_VAR} is set: put {file} there, or unset it")
    } else {
        "run `bash scripts/test-tools.sh` (it fetches or copies every contract into .tools/contracts)"
            .to_owned()
    };
    panic!(
        "the API description {file} is missing: looked in {}; {how}",
        looked.join(" and ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_stands_alone_and_the_default_prefers_the_tools_copy() {
        let dirs = contract_dirs(Some(std::ffi::OsStr::new("/somewhere/else")));
        assert_eq!(dirs, vec![PathBuf::from("/somewhere/else")]);
        let dirs = contract_dirs(None);
        assert!(dirs[0].ends_with(".tools/contracts"), "{dirs:?}");
        assert!(dirs[1].ends_with("shared/contracts"), "{dirs:?}");
        // An empty variable is as good as unset.
        assert_eq!(contract_dirs(Some(std::ffi::OsStr::new(""))), dirs);
    }

    #[test]
    #[should_panic(expected = "the API description no-such-contract.json is missing: looked in")]
    fn a_missing_contract_fails_naming_the_file_and_where_it_looked() {
        contract_path("no-such-contract.json");
    }
}
