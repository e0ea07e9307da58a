//! The commit `staging --version` names: `STAGING_BUILD_COMMIT` when set (the release
//! workflow sets the tag's commit), else `git rev-parse HEAD` of the checkout being built,
//! else `unknown` (a build from the crates.io package has no checkout).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}

fn main() {
    println!("cargo:rerun-if-env-changed=STAGING_BUILD_COMMIT");
    let given = std::env::var("STAGING_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty());
    let commit = given.or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    // Built again when HEAD moves: HEAD itself (a checkout) and the branch it names (a
    // commit), in a worktree as in a plain clone.
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
    }
    if let (Some(common), Some(branch)) = (
        git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]),
        git(&["symbolic-ref", "-q", "HEAD"]),
    ) {
        println!("cargo:rerun-if-changed={common}/{branch}");
        println!("cargo:rerun-if-changed={common}/packed-refs");
    }
    println!(
        "cargo:rustc-env=STAGING_BUILD_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
}
