//! Templates at load: a spec string is parsed once; process variables are filled in as
//! literal text; `$${` is a literal `${`; nested defaults work or fail at load; a pipeline
//! reference where none is taken is an error at its place; the effective-spec hash follows
//! the values, not the bytes.

use staging_core::Error;
use staging_core::spec::template::Part;
use staging_core::spec::{LoadOptions, LoadedSpec, Template};

const PROVIDERS: &[&str] = &["local"];

fn env(name: &str) -> Option<String> {
    match name {
        "SNEAKY" => Some("${vars.TOKEN}".into()),
        "DOLLARS" => Some("$${commit} $$".into()),
        "RX" => Some(".*".into()),
        "HOST" => Some("example.test".into()),
        _ => None,
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn load_with(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<LoadedSpec, Error> {
    LoadedSpec::parse(
        "staging.toml",
        text.to_owned(),
        LoadOptions {
            env,
            known_providers: PROVIDERS,
            instance: None,
        },
    )
}

fn spec_with(probe_url: &str) -> String {
    format!(
        r#"[project]
name = "t"

[environments.staging]
provider = "local"

[services.web]
settings = {{ command = ["x"] }}

[vars.TOKEN]
secret = true

[[probes]]
name = "p"
http = {{ url = "{probe_url}" }}
"#
    )
}

fn url_of(spec: &LoadedSpec) -> Template {
    spec.spec.probes[0].http.as_ref().unwrap().url.clone()
}

fn pipeline(name: &str) -> Option<String> {
    match name {
        "services.web.url" => Some("http://127.0.0.1:9".into()),
        "vars.TOKEN" => Some("s3cr3t-canary".into()),
        "commit" => Some("abc".into()),
        _ => None,
    }
}

#[test]
fn an_env_value_that_looks_like_a_reference_is_literal_text() {
    let spec = load_with(&spec_with("${services.web.url}/x?t=${SNEAKY}"), &env).unwrap();
    let url = url_of(&spec).render(&pipeline).unwrap();
    assert_eq!(url, "http://127.0.0.1:9/x?t=${vars.TOKEN}");
    assert!(!url.contains("canary"));
    // Also when the whole string is the env value (no pipeline reference at all).
    let spec = load_with(&spec_with("${SNEAKY}"), &env).unwrap();
    assert_eq!(url_of(&spec).as_literal().unwrap(), "${vars.TOKEN}");
    assert_eq!(url_of(&spec).render(&pipeline).unwrap(), "${vars.TOKEN}");
    // `$$` in an env value is not an escape either.
    let spec = load_with(&spec_with("${DOLLARS}"), &env).unwrap();
    assert_eq!(url_of(&spec).render(&pipeline).unwrap(), "$${commit} $$");
}

#[test]
fn double_dollar_is_a_literal_dollar_brace_after_rendering_too() {
    let spec = load_with(
        &spec_with("${services.web.url}/$${commit}/${commit}"),
        &no_env,
    )
    .unwrap();
    assert_eq!(
        url_of(&spec).render(&pipeline).unwrap(),
        "http://127.0.0.1:9/${commit}/abc"
    );
    let spec = load_with(&spec_with("$${vars.TOKEN}"), &no_env).unwrap();
    assert_eq!(url_of(&spec).render(&pipeline).unwrap(), "${vars.TOKEN}");
}

#[test]
fn nested_defaults_resolve_at_load_or_at_run_time() {
    let spec = load_with(&spec_with("${UNSET:-${HOST}}"), &env).unwrap();
    assert_eq!(url_of(&spec).as_literal().unwrap(), "example.test");
    let spec = load_with(&spec_with("${UNSET:-${commit}}"), &env).unwrap();
    assert_eq!(url_of(&spec).render(&pipeline).unwrap(), "abc");
    let spec = load_with(&spec_with("${vars.NOPE_X:-${HOST}}"), &env);
    assert!(spec.is_err(), "`vars.NOPE_X` is not declared");
    let spec = load_with(&spec_with("${capture.x:-${UNSET:-d}}"), &env).unwrap();
    let url = url_of(&spec);
    match url.parts() {
        [Part::Ref(r)] => assert_eq!(r.default.as_ref().unwrap().as_literal().unwrap(), "d"),
        other => panic!("{other:?}"),
    }
    assert_eq!(url.render(&pipeline).unwrap(), "d");
}

#[test]
fn a_nested_default_that_cannot_resolve_is_a_load_error_at_the_inner_reference() {
    let text = spec_with("${UNSET:-${ALSO_UNSET}}");
    let e = load_with(&text, &env).unwrap_err().to_string();
    let line = text.lines().position(|l| l.contains("ALSO_UNSET")).unwrap() + 1;
    let col = text
        .lines()
        .nth(line - 1)
        .unwrap()
        .find("${ALSO_UNSET}")
        .unwrap()
        + 1;
    assert!(
        e.starts_with(&format!(
            "staging.toml:{line}:{col}: undefined variable `${{ALSO_UNSET}}`"
        )),
        "{e}"
    );

    let e = load_with(&spec_with("${A:-${B}"), &env)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not closed"), "{e}");
    assert!(!e.contains("stray"), "{e}");
}

#[test]
fn braces_in_a_default_balance() {
    let text = spec_with("x").replace(
        "http = { url = \"x\" }",
        "http = { url = \"x\", expect = { body_regex = \"${NO_RX:-^a{2}$}\" } }",
    );
    let spec = load_with(&text, &env).unwrap();
    let re = spec.spec.probes[0]
        .http
        .as_ref()
        .unwrap()
        .expect
        .body_regex
        .clone()
        .unwrap();
    assert_eq!(re.as_literal().unwrap(), "^a{2}$");
}

#[test]
fn a_pipeline_reference_in_a_field_that_takes_none_is_an_error_at_its_value() {
    let text = spec_with("x").replace("name = \"t\"", "name = \"t-${commit}\"");
    let e = load_with(&text, &env).unwrap_err().to_string();
    assert!(e.starts_with("staging.toml:2:8: "), "{e}");
    assert!(
        e.contains("takes no pipeline reference") && e.contains("`${commit}`"),
        "{e}"
    );
}

#[test]
fn the_effective_hash_follows_values_not_bytes() {
    let text = spec_with("${services.web.url}/").replace(
        "http = { url = \"${services.web.url}/\" }",
        "http = { url = \"${services.web.url}/\", expect = { body_regex = \"${RX:-^ok$}\" } }",
    );
    let strict = load_with(&text, &no_env).unwrap();
    let loose = load_with(&text, &env).unwrap();
    assert_eq!(strict.hash, loose.hash, "the same file");
    assert_ne!(
        strict.effective_hash, loose.effective_hash,
        "RX loosened the probe"
    );

    // Comments, layout and key order do not change the effective spec.
    let relaid = format!(
        "# a comment\n{}",
        text.replace("name = \"t\"", "name    =   't'")
    );
    let again = load_with(&relaid, &no_env).unwrap();
    assert_ne!(again.hash, strict.hash);
    assert_eq!(again.effective_hash, strict.effective_hash);

    // Writing the env value into the file gives the same effective spec as the env did.
    let written = load_with(&text.replace("${RX:-^ok$}", ".*"), &no_env).unwrap();
    assert_eq!(written.effective_hash, loose.effective_hash);
}
