//! An embedder compiles only the providers it asks for: with `providers-local` alone the
//! dependency tree holds no other provider crate and no AWS SDK.

use std::process::Command;

fn tree(features: &str) -> String {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--locked",
            "-p",
            "staging",
            "--no-default-features",
            "--features",
            features,
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The package names in a `cargo tree --prefix none` listing.
fn packages(tree: &str) -> Vec<&str> {
    tree.lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect()
}

#[test]
fn providers_local_alone_pulls_in_no_other_provider_and_no_aws_sdk() {
    let tree = tree("providers-local");
    let packages = packages(&tree);
    assert!(packages.contains(&"staging-provider-local"), "{tree}");
    let foreign: Vec<&&str> = packages
        .iter()
        .filter(|p| {
            (p.starts_with("staging-provider-") && **p != "staging-provider-local")
                || p.starts_with("aws-sdk-")
                || p.starts_with("aws-config")
                || p.starts_with("aws-smithy")
        })
        .collect();
    assert!(foreign.is_empty(), "{foreign:?} in\n{tree}");
}

#[test]
fn each_provider_feature_pulls_in_its_own_crate() {
    // The check above would pass on a tree that lost every provider: each feature brings
    // exactly its crate.
    for (feature, krate) in [
        ("providers-render", "staging-provider-render"),
        ("providers-netlify", "staging-provider-netlify"),
        ("providers-aws", "staging-provider-aws"),
    ] {
        let tree = tree(feature);
        let packages = packages(&tree);
        assert!(packages.contains(&krate), "{feature}: {tree}");
        assert!(
            !packages.contains(&"staging-provider-local"),
            "{feature} pulled in the local provider"
        );
    }
}
