//! The CLI names no provider and assembles nothing: every provider is registered once, in
//! the `staging` facade (`staging::providers()`), provider-specific behaviour (Vercel's
//! staged promote, the importers, branch stores) is contributed by the provider through the
//! facade, and every pipeline and every provider is built by a `Staging` session. This test
//! reads `crates/cli/src` for each registered provider's name in code — a string literal
//! `"vercel"`, a crate path `staging_provider_vercel`, a type `VercelFactory` — and for
//! pipeline assembly and provider builds (`Pipeline::new`, `.step(`, `factory_for(`,
//! `.build(&spec, ..)`), outside comments and doc comments (help text may mention a
//! platform), and fails on any.

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

/// What only the facade does: assemble a pipeline, find a provider's factory, build a
/// provider (a `build` with arguments; the builders' `.build()` take none).
const ASSEMBLY: [&str; 6] = [
    "Pipeline::new",
    "Pipeline::default",
    ".step(",
    ".boxed_step(",
    "factory_for(",
    "ProviderFactory",
];

/// Each place in `source` where code assembles a pipeline or builds a provider.
fn assembly_in_code(source: &str) -> Vec<(usize, String)> {
    code_lines(source)
        .filter(|(_, code)| {
            ASSEMBLY.iter().any(|n| code.contains(n))
                || code
                    .match_indices(".build(")
                    .any(|(at, _)| !code[at + ".build(".len()..].trim_start().starts_with(')'))
        })
        .map(|(i, _)| (i, source.lines().nth(i - 1).unwrap_or_default().to_owned()))
        .collect()
}

/// The code of each line of `source` (1-based number): comment lines left out, a trailing
/// comment cut off.
fn code_lines(source: &str) -> impl Iterator<Item = (usize, &str)> {
    source.lines().enumerate().filter_map(|(i, line)| {
        if line.trim_start().starts_with("//") {
            return None;
        }
        let code = match line.find(" // ") {
            Some(at) if line[..at].matches('"').count() % 2 == 0 => &line[..at],
            _ => line,
        };
        Some((i + 1, code))
    })
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
fn the_cli_source_assembles_no_pipeline_and_builds_no_provider() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    rust_files(&src, &mut files);
    let mut found = vec![];
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (line, code) in assembly_in_code(&text) {
            found.push(format!(
                "{}:{line}: {}",
                file.strip_prefix(&src).unwrap_or(file).display(),
                code.trim()
            ));
        }
    }
    assert!(
        found.is_empty(),
        "crates/cli/src assembles a pipeline or builds a provider; make it a method of the `Staging` session:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_assembly_check_finds_each_way_a_command_used_to_build_its_own() {
    // The attack: what `rollback`, `logs` and `smoke` did before they called the facade.
    for planted in [
        "    let pipeline = Pipeline::new()",
        "        .step(ValidateStep::new(session.registry().clone()))",
        "let setup = Pipeline::default().step(LocateStep);",
        "    let factory = session.registry().clone().factory_for(&spec, &env)?;",
        "    let provider = factory.build(&spec, &env)?;",
        "let p = f.build( &spec, env)?; // a build, then a comment",
        "pipeline.boxed_step(extra)",
        "struct Mine; impl staging_core::ProviderFactory for Mine {}",
    ] {
        assert_eq!(
            assembly_in_code(planted).len(),
            1,
            "not found in `{planted}`"
        );
    }
    // Not assembly: a builder's `.build()`, comments, a word that only looks alike.
    for clean in [
        "        .build()",
        "    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build();",
        "// let pipeline = Pipeline::new().step(x);",
        "/// The session builds the pipeline (`Pipeline::new().step(..)`).",
        "out.show_step(report); // not .step( of a pipeline",
        "let s = args.probes.smoke_step();",
    ] {
        assert!(
            assembly_in_code(clean).is_empty(),
            "counted as assembly: `{clean}`"
        );
    }
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
