//! Undoing what an instance created on Netlify (issue 35): the site and the branch deploy the
//! provisioner made, found again and undone, against the stateful fake behind `prism proxy
//! --errors`, so every `DELETE`/`PATCH` and every answer is checked against Netlify's own
//! API description.

mod support;

use std::sync::OnceLock;
use std::time::Duration;

use staging_core::provision::Provisioner;
use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_core::teardown::{
    Created, CreatedBy, DeletionTarget, Judgement, Teardown, judge, now_secs,
};
use staging_core::{Error, Result};
use staging_provider_netlify::{NetlifyProvisioner, NetlifyTeardown};
use support::Stack;
use support::fake::Fault;

/// The round trip's own stand-in: its digest is that test's alone.
fn own() -> &'static Stack {
    static OWN: OnceLock<Stack> = OnceLock::new();
    OWN.get_or_init(support::own_stack)
}

/// An instance `pr-7` of `preview`, like `staging` (whose site is `staging_site`): its own
/// site `site_name` in `context`.
fn spec(staging_site: &str, site_name: &str, context: &str) -> LoadedSpec {
    let text = format!(
        r#"[project]
name = "shop"

[environments.staging]
provider = "netlify"
settings = {{ site_id = "{staging_site}", context = "production" }}

[environments.preview]
ephemeral = true
like = "staging"
settings = {{ site_name = "{site_name}", context = "{context}" }}

[services.web]
"#
    );
    LoadedSpec::parse(
        "staging.toml",
        text,
        LoadOptions::new(&["netlify"]).with_instance(Some("pr-7")),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn teardown(stack: &Stack) -> NetlifyTeardown {
    NetlifyTeardown::new(support::builder(&stack.proxy.url).build().unwrap())
}

/// Creates what the instance lacks through the real provisioner, each entry recorded as a
/// ledger would (requested, then answered with the id).
async fn provision(stack: &Stack, spec: &LoadedSpec) -> Vec<Created> {
    let p = NetlifyProvisioner::for_spec(
        spec,
        "preview",
        support::builder(&stack.proxy.url).build().unwrap(),
    )
    .unwrap()
    .with_confirm_wait(Duration::from_secs(5));
    let mut out = vec![];
    for c in p.missing().await.expect("missing") {
        let mut entry = Created::requested(&c, CreatedBy::Provider);
        let id = p
            .create(&staging_core::testkit::creation_target(&c))
            .await
            .expect("created");
        entry.id = Some(id);
        out.push(entry);
    }
    out
}

/// Finds, judges and (when it is ours) deletes one entry; the judgement.
async fn down_one(t: &NetlifyTeardown, created: &Created) -> Result<Judgement> {
    let found = t.find(created).await?;
    let judgement = judge(created, found);
    if let Judgement::Ours(found) = &judgement {
        t.delete(&DeletionTarget::unchecked_for_tests(
            created.clone(),
            found.clone(),
        ))
        .await?;
    }
    Ok(judgement)
}

#[tokio::test]
async fn the_instances_site_and_branch_deploy_are_undone_in_reverse_and_netlify_is_as_before() {
    let stack = own();
    let (staging_site, _) = stack.fake.add_site("shop");
    let before = stack.fake.digest();
    let spec = spec(&staging_site, "shop-pr-7", "branch:pr-7");
    let created = provision(stack, &spec).await;
    let kinds: Vec<(&str, &str)> = created
        .iter()
        .map(|c| (c.kind.as_str(), c.name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("netlify site", "shop-pr-7"),
            ("netlify branch deploy", "pr-7")
        ]
    );
    let site = stack.fake.site_id_named("shop-pr-7").expect("site created");
    assert_eq!(created[0].id.as_deref(), Some(site.as_str()));
    assert_eq!(
        created[1].id.as_deref(),
        Some(site.as_str()),
        "the branch's site"
    );
    assert_ne!(stack.fake.digest(), before);

    let t = teardown(stack);
    for c in created.iter().rev() {
        let j = down_one(&t, c).await.unwrap();
        assert!(matches!(j, Judgement::Ours(_)), "{}: {j:?}", c.describe());
    }
    // The branch was removed from the list (every other branch kept), then the site went.
    assert_eq!(stack.fake.deletes(), 1);
    assert_eq!(
        stack.fake.digest(),
        before,
        "Netlify is as before the instance"
    );
    // A second `down`: everything is gone, nothing is sent.
    for c in created.iter().rev() {
        assert_eq!(down_one(&t, c).await.unwrap(), Judgement::Gone);
    }
    assert_eq!(stack.fake.deletes(), 1);
    stack.proxy.assert_no_violations();
}

#[tokio::test]
async fn a_branch_deploy_on_an_existing_site_is_undone_keeping_every_other_branch() {
    let stack = support::stack();
    let (staging_site, _) = stack.fake.add_site("shop");
    let (site, name) = stack.fake.add_site("preview");
    stack.fake.with_site(&site, |s| {
        s.allowed_branches = vec!["main".into(), "develop".into()]
    });
    let spec = spec(&staging_site, &name, "branch:pr-7");
    let created = provision(stack, &spec).await;
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(
        stack.fake.with_site(&site, |s| s.allowed_branches.clone()),
        ["main", "develop", "pr-7"]
    );
    let j = down_one(&teardown(stack), &created[0]).await.unwrap();
    assert!(matches!(j, Judgement::Ours(_)), "{j:?}");
    assert_eq!(
        stack.fake.with_site(&site, |s| s.allowed_branches.clone()),
        ["main", "develop"]
    );
    assert!(stack.fake.has_site_named(&name), "the site itself is kept");
}

#[tokio::test]
async fn a_site_whose_answer_never_came_is_found_by_name_within_the_window_and_deleted() {
    let stack = support::stack();
    let (staging_site, _) = stack.fake.add_site("shop");
    let name = format!("{}-pr-7", stack.fake.add_site("x").1);
    let spec = spec(&staging_site, &name, "production");
    let mut created = provision(stack, &spec).await;
    assert_eq!(created.len(), 1);
    created[0].id = None; // the run stopped before Netlify answered
    let t = teardown(stack);
    let found = t.find(&created[0]).await.unwrap().expect("by name");
    let at = found.created_at.expect("Netlify's created_at");
    assert!(at.abs_diff(now_secs()) < 600, "{at}");
    assert!(matches!(
        down_one(&t, &created[0]).await.unwrap(),
        Judgement::Ours(_)
    ));
    assert!(!stack.fake.has_site_named(&name));
}

#[tokio::test]
async fn a_site_made_again_by_hand_under_a_recorded_name_is_refused() {
    // A stack of its own: the DELETE count below is this test's alone (the shared one's
    // other tests delete their sites meanwhile).
    let own = support::own_stack();
    let stack = &own;
    let (staging_site, _) = stack.fake.add_site("shop");
    let name = format!("{}-pr-7", stack.fake.add_site("y").1);
    let spec = spec(&staging_site, &name, "production");
    let created = provision(stack, &spec).await;
    // Deleted out of band, and made again by hand hours later under the same name.
    let original = created[0].id.clone().unwrap();
    stack
        .fake
        .state
        .lock()
        .unwrap()
        .sites
        .retain(|s| s.id != original);
    let (by_hand, _) = stack.fake.add_site("z");
    stack.fake.with_site(&by_hand, |s| {
        s.name = name.clone();
        s.created_at = "2020-01-01T00:00:00Z".into();
    });
    let deletes = stack.fake.deletes();
    let t = teardown(stack);
    // By its id the recorded site is gone: the one made by hand is not looked at.
    assert_eq!(down_one(&t, &created[0]).await.unwrap(), Judgement::Gone);
    // Asked by name (an entry whose answer never came, or the facade's second look), the
    // one made by hand is found, and refused: created years from the request / another id.
    let by_name = Created {
        id: None,
        ..created[0].clone()
    };
    let j = down_one(&t, &by_name).await.unwrap();
    assert!(
        matches!(&j, Judgement::Refused(why) if why.contains("not within")),
        "{j:?}"
    );
    let found = t.find(&by_name).await.unwrap();
    let j = judge(&created[0], found);
    assert!(
        matches!(&j, Judgement::Refused(why) if why.contains("made again by hand")),
        "{j:?}"
    );
    assert_eq!(stack.fake.deletes(), deletes, "no DELETE was sent");
    assert!(stack.fake.has_site_named(&name));
}

#[tokio::test]
async fn a_read_that_fails_is_an_error_never_gone() {
    let stack = support::stack();
    let (site, name) = stack.fake.add_site("failing");
    stack.fake.fail_next(&site, Fault::Refused(403));
    let entry = Created {
        kind: "netlify site".into(),
        name,
        owner: "service web".into(),
        namespace: Some("netlify".into()),
        by: CreatedBy::Provider,
        id: Some(site.clone()),
        requested_at: now_secs(),
        deleted_at: None,
    };
    let err = teardown(stack).find(&entry).await.unwrap_err();
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err:?}");
    // The site is still there: nothing was taken for gone.
    assert!(teardown(stack).find(&entry).await.unwrap().is_some());
}

#[tokio::test]
async fn a_kind_netlify_never_creates_is_refused_without_a_request() {
    let stack = support::stack();
    let entry = Created {
        kind: "netlify dns zone".into(),
        name: "x".into(),
        owner: "service web".into(),
        namespace: None,
        by: CreatedBy::Provider,
        id: Some("z".into()),
        requested_at: now_secs(),
        deleted_at: None,
    };
    let err = teardown(stack).find(&entry).await.unwrap_err().to_string();
    assert!(
        err.contains("not a kind of resource the Netlify provider creates"),
        "{err}"
    );
}
