//! The CLI names no provider: every provider is registered once, in the `staging` facade
//! (`staging::providers()`), and provider-specific behaviour (Vercel's staged promote, the
//! importers, branch stores) is contributed by the provider through the facade. This test
//! reads `crates/cli/src` for each registered provider's name in code — a string literal
//! `"vercel"`, a crate path `staging_provider_vercel`, a type `VercelFactory` — outside
//! comments and doc comments (help text may mention a platform), and fails on any.

use std::path::{Path, PathBuf};

/// Each place in `source` (a Rust file's text) where code names provider `name`:
/// `(line number, line)`. Comment lines and trailing comments are not code.
fn names_in_code(source: &str, name: &str) -> Vec<(usize, String)> {
    let capitalised = {
        let mut c = name.chars();
        c.next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    };
    let needles = [
        format!("\"{name}\""),
        format!("staging_provider_{name}"),
        format!("staging-provider-{name}"),
        format!("{capitalised}Factory"),
    ];
    source
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let trimmed = line.trim_start();
            if trimmed.starts_with("//") {
                return None;
            }
            // A trailing comment (`code // text`), when `//` is not inside a string (a URL).
            let code = match line.find(" // ") {
                Some(at) if line[..at].matches('"').count() % 2 == 0 => &line[..at],
                _ => line,
            };
            needles
                .iter()
                .any(|n| code.contains(n.as_str()))
                .then(|| (i + 1, line.to_owned()))
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_cli_source_names_no_registered_provider_in_code() {
    let names = staging::providers().names();
    assert!(
        names.len() >= 6,
        "the CLI registers every provider (providers-all): {names:?}"
    );
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    rust_files(&src, &mut files);
    assert!(!files.is_empty());
    let mut found = vec![];
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for name in &names {
            for (line, code) in names_in_code(&text, name) {
                found.push(format!(
                    "{}:{line}: names provider `{name}`: {}",
                    file.strip_prefix(&src).unwrap_or(file).display(),
                    code.trim()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "crates/cli/src names providers in code; move that into the facade or the provider:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_finds_a_provider_named_in_code_however_it_is_spelt() {
    // The attack: each way the pipeline used to name a provider, planted in code.
    for planted in [
        r#"if env.provider == "vercel" {"#,
        "pipeline.step(staging_provider_vercel::StagedPromoteStep)",
        "    .register(VercelFactory::new()) // registration",
        r#"let p = "render"; // a string, then a comment"#,
    ] {
        let name = if planted.contains("render") {
            "render"
        } else {
            "vercel"
        };
        assert_eq!(
            names_in_code(planted, name).len(),
            1,
            "not found in `{planted}`"
        );
    }
    // What is not code is not a finding: comments, doc comments, help text in them.
    for clean in [
        "/// Vercel's staged production flow (a \"vercel\" environment).",
        "//! `staging_provider_render` logs: RUST_LOG=staging_provider_render=debug",
        "let url = \"https://x\"; // the \"vercel\" default",
    ] {
        assert!(
            names_in_code(clean, "vercel").is_empty() && names_in_code(clean, "render").is_empty(),
            "a comment counted as code: `{clean}`"
        );
    }
}
