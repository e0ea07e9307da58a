//! Tearing an instance down on Render (issue 35): what the provisioner created, found again
//! and deleted, against the stateful fake behind `prism proxy --errors`, so every `DELETE`
//! and every answer is checked against Render's own API description.
//!
//! The round trip runs on a fake of its own (its whole state is compared before and after);
//! the other tests share one and use names of their own.

mod support;

use std::sync::{Arc, Mutex, OnceLock};

use serde_json::json;
use staging_core::pipeline::{Pipeline, RunContext, ValidateStep};
use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_core::teardown::{
    Created, CreatedBy, DeletionTarget, DynTeardown, InstanceRecord, Judgement, Ledger,
    LedgerStore, judge, now_secs,
};
use staging_core::{Error, ProviderFactory, ProviderRegistry, ProvisionStep, Result};
use staging_provider_render::RenderFactory;
use support::fake::{OWNER, Store};
use support::{API_KEY, Fake, Fault, Kind, StandIn, stand_in};

/// The round trip's own fake: nothing else touches it, so its digest is the test's alone.
fn own_stand_in() -> &'static StandIn {
    static OWN: OnceLock<StandIn> = OnceLock::new();
    OWN.get_or_init(support::own_stand_in)
}

fn shared_lookup(name: &str) -> Option<String> {
    match name {
        "RENDER_API_KEY" => Some(API_KEY.to_owned()),
        "RENDER_API_URL" => Some(stand_in().prism.url()),
        _ => None,
    }
}

fn own_lookup(name: &str) -> Option<String> {
    match name {
        "RENDER_API_KEY" => Some(API_KEY.to_owned()),
        "RENDER_API_URL" => Some(own_stand_in().prism.url()),
        _ => None,
    }
}

fn spec(text: &str) -> Arc<LoadedSpec> {
    Arc::new(
        LoadedSpec::parse(
            "staging.toml",
            text.to_owned(),
            LoadOptions::new(&["render"]),
        )
        .expect("spec"),
    )
}

/// An instance's resources: a web service with a custom domain, a worker, a Postgres and a
/// Key Value, each named after `prefix`.
fn instance_spec(prefix: &str) -> String {
    format!(
        r#"[project]
name = "shop"

[environments.preview]
provider = "render"
deploy_timeout = "1m"

[services.web]
create = true
settings = {{ service_name = "{prefix}-web", type = "web_service", runtime = "node", repo = "https://github.com/acme/shop", branch = "pr-7", build_command = "npm ci", start_command = "npm start", plan = "starter", region = "ohio", custom_domains = ["{prefix}.shop.example.com"] }}

[services.worker]
create = true
settings = {{ service_name = "{prefix}-worker", type = "background_worker", runtime = "node", repo = "https://github.com/acme/shop", branch = "pr-7", build_command = "npm ci", start_command = "node worker.js", plan = "starter" }}

[datastores.db]
create = true
settings = {{ kind = "postgres", name = "{prefix}-db", plan = "basic_256mb", version = "17" }}

[datastores.cache]
create = true
settings = {{ kind = "key_value", name = "{prefix}-kv", plan = "starter" }}
"#
    )
}

/// A ledger store in memory: what the evidence store keeps, for one test.
#[derive(Debug, Default)]
struct MemoryLedger(Mutex<Vec<InstanceRecord>>);

#[async_trait::async_trait]
impl LedgerStore for MemoryLedger {
    async fn load(&self, environment: &str, instance: &str) -> Result<Option<InstanceRecord>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|r| r.environment == environment && r.instance == instance)
            .cloned())
    }

    async fn save(&self, record: &InstanceRecord) -> Result<()> {
        self.0.lock().unwrap().push(record.clone());
        Ok(())
    }

    async fn list(&self, _environment: Option<&str>) -> Result<Vec<InstanceRecord>> {
        Ok(self.0.lock().unwrap().clone())
    }
}

/// `staging up`'s first steps for instance `pr-7` of `preview`, with its ledger: what the
/// ledger recorded.
async fn provision_instance(factory: RenderFactory, spec: Arc<LoadedSpec>) -> Vec<Created> {
    let registry = ProviderRegistry::new().register(factory);
    let pipeline = Pipeline::new()
        .step(ValidateStep::new(registry.clone()))
        .step(ProvisionStep::new(registry));
    let mut ctx = RunContext::new(spec, "preview", "c0ffee0123456789").unwrap();
    staging_core::testkit::assume_isolated(&mut ctx);
    let ledger = Ledger::open(
        Arc::new(MemoryLedger::default()),
        "preview",
        "pr-7",
        "c0ffee0123456789",
        None,
    )
    .await
    .unwrap();
    ctx.ledger = Some(ledger.clone());
    let report = pipeline.run(&mut ctx).await;
    assert!(report.ok, "{report:#?}");
    ledger.record().await.created
}

fn teardown(factory: &RenderFactory, spec: &LoadedSpec) -> DynTeardown {
    factory
        .teardown(spec, "preview")
        .unwrap()
        .expect("Render deletes what it creates")
}

/// `down`'s decision for one entry, as the write boundary takes it ([`judge`]), then the
/// deletion with the target it would issue.
async fn down_one(teardown: &DynTeardown, created: &Created) -> Judgement {
    let found = teardown.find(created).await.expect("find");
    let judgement = judge(created, found);
    if let Judgement::Ours(found) = &judgement {
        teardown
            .delete(&DeletionTarget::unchecked_for_tests(
                created.clone(),
                found.clone(),
            ))
            .await
            .expect("delete");
    }
    judgement
}

/// A ledger entry of the provider's, as an interrupted run leaves it (no id) or as an
/// answered one does.
fn entry(kind: &str, name: &str, owner: &str, id: Option<&str>) -> Created {
    Created {
        kind: kind.to_owned(),
        name: name.to_owned(),
        owner: owner.to_owned(),
        // A service's name is unique in its workspace; a datastore or a domain says none.
        namespace: (!["postgres", "key value", "custom domain"]
            .iter()
            .any(|k| kind.ends_with(k)))
        .then(|| OWNER.to_owned()),
        by: CreatedBy::Provider,
        id: id.map(str::to_owned),
        requested_at: now_secs(),
        deleted_at: None,
    }
}

fn deletes(fake: &Fake) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|r| r.starts_with("DELETE "))
        .collect()
}

#[tokio::test]
async fn everything_an_instance_created_is_deleted_in_reverse_order_and_the_platform_is_as_before()
{
    let stand_in = own_stand_in();
    let fake = &stand_in.fake;
    // What is there before the instance, and stays: staging's own service and database.
    let staging_web = fake.add_service("shop-web-staging", Kind::Web);
    let staging_db = fake.add_datastore(
        Store::Postgres,
        "shop-db-staging",
        json!({ "plan": "basic_256mb", "version": "17" }),
    );
    let before = fake.digest();
    let factory = RenderFactory::with_lookup(own_lookup);
    let spec = spec(&instance_spec("pr7"));

    let created = provision_instance(factory.clone(), spec.clone()).await;
    let kinds: Vec<&str> = created.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "render key value",
            "render postgres",
            "render web service",
            "render background worker",
            "render custom domain"
        ]
    );
    assert!(created.iter().all(|c| c.id.is_some()), "{created:#?}");
    let domain = created.last().unwrap();
    assert!(
        domain.id.as_deref().unwrap().starts_with("cdm-"),
        "a custom domain's own id is recorded, not its service's: {domain:?}"
    );
    assert_ne!(fake.digest(), before);

    let teardown = teardown(&factory, &spec);
    for c in created.iter().rev() {
        let judgement = down_one(&teardown, c).await;
        assert!(
            matches!(&judgement, Judgement::Ours(f) if Some(&f.id) == c.id.as_ref()),
            "{}: {judgement:?}",
            c.describe()
        );
    }
    assert_eq!(fake.digest(), before, "every stand-in state as before `up`");
    // One DELETE each, newest first, by the recorded ids; staging's resources untouched.
    let ids: Vec<&str> = created
        .iter()
        .rev()
        .map(|c| c.id.as_deref().unwrap())
        .collect();
    let sent = deletes(fake);
    assert_eq!(sent.len(), ids.len(), "{sent:#?}");
    for (request, id) in sent.iter().zip(&ids) {
        assert!(request.contains(id), "{request} should delete {id}");
    }
    assert!(
        !sent
            .iter()
            .any(|r| r.contains(&staging_web) || r.contains(&staging_db))
    );
    // The custom domain went by its service's path.
    let web_id = created[2].id.as_deref().unwrap();
    assert!(
        sent[0].starts_with(&format!(
            "DELETE /services/{web_id}/custom-domains/{}",
            ids[0]
        )),
        "{}",
        sent[0]
    );
    // A second `down` finds nothing and deletes nothing.
    for c in created.iter().rev() {
        assert_eq!(down_one(&teardown, c).await, Judgement::Gone);
    }
    assert_eq!(deletes(fake).len(), ids.len());
    stand_in.prism.assert_no_violations();
}

#[tokio::test]
async fn an_entry_whose_answer_never_came_is_found_by_name_and_deleted_when_created_within_the_window()
 {
    let fake = &stand_in().fake;
    let factory = RenderFactory::with_lookup(shared_lookup);
    let spec = spec(&instance_spec("interrupted"));
    let teardown = teardown(&factory, &spec);
    // The run stopped after Render created them and before it answered.
    let web = fake.add_service("interrupted-web", Kind::Web);
    let db = fake.add_datastore(
        Store::Postgres,
        "interrupted-db",
        json!({ "plan": "basic_256mb", "version": "17" }),
    );
    let web_entry = entry("render web service", "interrupted-web", "service web", None);
    let db_entry = entry("render postgres", "interrupted-db", "datastore db", None);

    let found = teardown.find(&web_entry).await.unwrap().expect("by name");
    assert_eq!(found.id, web);
    let at = found.created_at.expect("Render's createdAt");
    assert!(at.abs_diff(web_entry.requested_at) < 60, "{at}");
    assert_eq!(found.marked_ours, None, "Render keeps no tags on services");

    for (e, id) in [(&web_entry, &web), (&db_entry, &db)] {
        assert!(
            matches!(down_one(&teardown, e).await, Judgement::Ours(f) if f.id == *id),
            "{}",
            e.describe()
        );
    }
    assert!(fake.services_named("interrupted-web").is_empty());
    assert!(fake.datastores_named("interrupted-db").is_empty());
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn a_second_delete_of_the_same_resource_is_ok_and_finds_nothing_after() {
    let fake = &stand_in().fake;
    let factory = RenderFactory::with_lookup(shared_lookup);
    let spec = spec(&instance_spec("twice"));
    let teardown = teardown(&factory, &spec);
    let kv = fake.add_datastore(Store::KeyValue, "twice-kv", json!({ "plan": "starter" }));
    let e = entry("render key value", "twice-kv", "datastore cache", Some(&kv));
    let found = teardown.find(&e).await.unwrap().expect("there");
    let target = DeletionTarget::unchecked_for_tests(e.clone(), found);
    teardown.delete(&target).await.expect("first delete");
    teardown
        .delete(&target)
        .await
        .expect("a second delete of what is gone is success");
    let sent: Vec<String> = deletes(fake)
        .into_iter()
        .filter(|r| r.contains(&kv))
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        sent.iter()
            .all(|r| r.starts_with(&format!("DELETE /key-value/{kv}")))
    );
    assert_eq!(teardown.find(&e).await.unwrap(), None);
    assert_eq!(judge(&e, None), Judgement::Gone);
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn a_resource_made_again_by_hand_under_a_recorded_name_is_never_deleted() {
    let fake = &stand_in().fake;
    let factory = RenderFactory::with_lookup(shared_lookup);
    let spec = spec(&instance_spec("byhand"));
    let teardown = teardown(&factory, &spec);

    // Recorded with its id; deleted out of band and made again by hand under the name.
    let original = fake.add_service("byhand-web", Kind::Web);
    let recorded = entry(
        "render web service",
        "byhand-web",
        "service web",
        Some(&original),
    );
    let gone = teardown
        .find(&recorded)
        .await
        .unwrap()
        .expect("there at first");
    teardown
        .delete(&DeletionTarget::unchecked_for_tests(recorded.clone(), gone))
        .await
        .unwrap();
    let by_hand = fake.add_service("byhand-web", Kind::Web);
    assert_ne!(by_hand, original);
    // The fake is shared with the binary's other tests, which delete their own resources
    // meanwhile: what counts is every DELETE of this test's two ids.
    let ours = |fake: &Fake| {
        deletes(fake)
            .into_iter()
            .filter(|r| r.contains(&original) || r.contains(&by_hand))
            .count()
    };
    let deletes_before = ours(fake);
    // By its id the recorded one is gone: the one made by hand is not looked at.
    assert_eq!(teardown.find(&recorded).await.unwrap(), None);
    assert_eq!(down_one(&teardown, &recorded).await, Judgement::Gone);

    // An entry without an id (its run stopped) finds the one made by hand by name, hours
    // after the request: judge refuses it.
    let mut interrupted = entry("render web service", "byhand-web", "service web", None);
    interrupted.requested_at = now_secs() - 3 * 3600;
    let found = teardown.find(&interrupted).await.unwrap().expect("by name");
    assert_eq!(found.id, by_hand);
    match judge(&interrupted, Some(found.clone())) {
        Judgement::Refused(why) => assert!(why.contains(&by_hand), "{why}"),
        other => panic!("{other:?}"),
    }
    // And with another recorded id, whatever is found under the name is not it.
    let other_id = entry(
        "render web service",
        "byhand-web",
        "service web",
        Some(&original),
    );
    match judge(&other_id, Some(found)) {
        Judgement::Refused(why) => assert!(why.contains(&original) && why.contains(&by_hand)),
        other => panic!("{other:?}"),
    }
    assert_eq!(ours(fake), deletes_before, "zero DELETE requests");
    assert_eq!(fake.services_named("byhand-web"), [by_hand]);
}

#[tokio::test]
async fn a_read_that_fails_is_an_error_never_gone() {
    let fake = &stand_in().fake;
    let factory = RenderFactory::with_lookup(shared_lookup);
    let spec = spec(&instance_spec("failing"));
    let teardown = teardown(&factory, &spec);
    let web = fake.add_service("failing-web", Kind::Web);
    let by_name = entry("render web service", "failing-web", "service web", None);
    fake.inject("list /services failing-web", Fault::Status(500, None));
    let e = teardown.find(&by_name).await.unwrap_err();
    assert!(matches!(e, Error::Provider { .. }), "{e:?}");
    fake.inject("list /services failing-web", Fault::Status(401, None));
    let e = teardown.find(&by_name).await.unwrap_err();
    assert!(matches!(e, Error::Unauthenticated { .. }), "{e:?}");
    assert!(!e.to_string().contains(API_KEY));
    assert_eq!(fake.pending_faults("list /services failing-web"), 0);
    let by_id = entry(
        "render web service",
        "failing-web",
        "service web",
        Some(&web),
    );
    fake.inject(&web, Fault::Status(500, None));
    assert!(teardown.find(&by_id).await.is_err());
    fake.inject("list /postgres failing-db", Fault::Status(401, None));
    let db = entry("render postgres", "failing-db", "datastore db", None);
    assert!(teardown.find(&db).await.is_err());
    assert_eq!(fake.pending_faults("list /postgres failing-db"), 0);
    assert_eq!(fake.pending_faults(&web), 0);
    // Nothing was deleted, and the service is still found once Render answers again.
    assert!(deletes(fake).iter().all(|r| !r.contains(&web)));
    assert_eq!(teardown.find(&by_id).await.unwrap().unwrap().id, web);
}

#[tokio::test]
async fn two_resources_of_the_recorded_name_are_an_error_naming_both() {
    let fake = &stand_in().fake;
    let factory = RenderFactory::with_lookup(shared_lookup);
    let spec = spec(&instance_spec("dup"));
    let teardown = teardown(&factory, &spec);
    let a = fake.add_service("dup-worker", Kind::Worker);
    let b = fake.add_service("dup-worker", Kind::Worker);
    let e = entry(
        "render background worker",
        "dup-worker",
        "service worker",
        None,
    );
    let err = teardown.find(&e).await.unwrap_err().to_string();
    assert!(err.contains(&a) && err.contains(&b), "{err}");
    assert!(
        deletes(fake)
            .iter()
            .all(|r| !r.contains(&a) && !r.contains(&b))
    );
}

#[tokio::test]
async fn a_kind_render_never_creates_or_another_service_type_is_refused() {
    let fake = &stand_in().fake;
    let factory = RenderFactory::with_lookup(shared_lookup);
    let spec = spec(&instance_spec("kinds"));
    let teardown = teardown(&factory, &spec);
    let requests = fake.requests().len();
    let unknown = entry(
        "render redis",
        "kinds-redis",
        "datastore cache",
        Some("red-1"),
    );
    let err = teardown.find(&unknown).await.unwrap_err();
    assert!(err.to_string().contains("render redis"), "{err}");
    let target = DeletionTarget::unchecked_for_tests(
        unknown.clone(),
        staging_core::teardown::Found {
            id: "red-1".into(),
            name: "kinds-redis".into(),
            created_at: None,
            marked_ours: None,
        },
    );
    assert!(teardown.delete(&target).await.is_err());
    assert_eq!(
        fake.requests().len(),
        requests,
        "no request for an unknown kind"
    );

    // A static site recorded, a worker found: not the resource recorded.
    let worker = fake.add_service("kinds-site", Kind::Worker);
    let e = entry(
        "render static site",
        "kinds-site",
        "service site",
        Some(&worker),
    );
    let err = teardown.find(&e).await.unwrap_err().to_string();
    assert!(err.contains("background_worker"), "{err}");
}
