//! Issue 27 on Netlify, through the binary, against Netlify's published API description
//! (`prism proxy --errors`) in front of the provider crate's fake. One site with a deploy
//! context per environment is safe (`standup_netlify.rs` stands staging up as the
//! `branch:staging` context of production's site); one site *and* one context named two
//! ways — by name in staging, by id in production — is one write target: refused before
//! any write, naming both environments and the site's context.

mod common;
#[path = "../../provider-netlify/tests/support/mod.rs"]
mod netlify;

use common::{run_staging, text};

const COMMIT: &str = "5555555aaaaaaaabbbbbbbbccccccccdddddddd5";

#[test]
fn staging_naming_production_s_site_and_context_by_another_spelling_writes_nothing() {
    let fake = &netlify::stack().fake;
    let (site, name) = fake.add_site("iso-ctx");
    fake.push(&site, "main", COMMIT);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        format!(
            r#"[project]
name = "iso"

[environments.staging]
provider = "netlify"
promotes_to = "production"
settings = {{ site_name = "{name}", context = "production", account_id = "acct-1" }}

[environments.production]
provider = "netlify"
protected = true
settings = {{ site_id = "{site}", context = "production", account_id = "acct-1" }}

[services.web]

[vars.API_URL]
value = "https://staging-api.example.com"
"#
        ),
    )
    .unwrap();
    let url = netlify::stack().proxy.url.clone();
    for args in [
        &["up", "--env", "staging", "--commit", COMMIT][..],
        &["secrets", "sync", "--env", "staging", "--apply"],
    ] {
        let out = run_staging(
            dir.path(),
            args,
            &[
                ("NETLIFY_AUTH_TOKEN", "test-token-canary-3141"),
                ("NETLIFY_API_URL", url.as_str()),
            ],
        );
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {all}");
        assert!(
            all.contains("environment `staging`")
                && all.contains("environment `production`")
                && all.contains(&format!("site={site} context=production")),
            "{all}"
        );
        let writes: Vec<String> = fake
            .calls(&site)
            .into_iter()
            .filter(|c| !c.starts_with("GET "))
            .collect();
        assert!(writes.is_empty(), "{args:?} wrote: {writes:?}");
    }
}
