//! The write boundary: every write to a platform goes through a target that only the
//! isolation check of the run can issue.
//!
//! A [`Provider`](crate::Provider)'s mutating methods (deploy, set or delete variables,
//! rollback, cancel) take a [`WriteTarget`], environment preparation an
//! [`EnvironmentTarget`], a [`Provisioner`](crate::Provisioner)'s `create` a
//! [`CreationTarget`]. None of them can be built outside this crate: their fields are
//! private and the only way to get one is to ask the [`WriteBoundary`] of the run, which
//! [`crate::isolation::check_before_write`] returns after it has resolved, through the
//! run's own credentials, what every other environment's services are on the platform.
//! A write without a target does not compile; a target whose [`Identity`] another
//! environment also owns is refused before the request (exit 2, naming both environments
//! and the identity), unless the spec declares the sharing (`shared_with`).
//!
//! The boundary is asked again right before each write ([`WriteBoundary::target`]), so a
//! service created earlier in the same run, or located only by the deploy step, is compared
//! like any other: by the identity its provider's `locate` read from the platform
//! ([`crate::ServiceHandle::identity`]), never by the spelling of a name.

use std::fmt;
use std::ops::Deref;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::provider::ServiceHandle;
use crate::provision::Creation;

/// What a service is on its platform, at the granularity the platform's writes land on:
/// Render (workspace, service id), Railway (service id, environment id), Netlify (site id,
/// deploy context), Vercel (project id, target), ECS (cluster ARN, service name), local
/// (port). Filled by each provider's `locate` from what the platform answered. Two
/// identities name the same target when their kind and parts are equal
/// ([`Identity::same_target`]); the platform name only serves "will be created" checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// What it is (`render service`, `railway service instance`).
    pub kind: String,
    /// The identifying parts as the platform gives them, in order
    /// (`[("service", "svc-1"), ("environment", "env-2")]`). Empty: unknown, and never
    /// writable.
    pub parts: Vec<(String, String)>,
    /// Where its name is unique on the platform (a Render workspace, a Railway project), when
    /// the provider knows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its name on the platform, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Identity {
    /// An identity of `kind` made of these parts.
    pub fn new<K: Into<String>, V: Into<String>>(
        kind: impl Into<String>,
        parts: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Identity {
            kind: kind.into(),
            parts: parts
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            namespace: None,
            name: None,
        }
    }

    /// The same identity with the platform's name for it, unique within `namespace` (a
    /// workspace or project id) when given.
    pub fn named(mut self, namespace: Option<String>, name: impl Into<String>) -> Self {
        self.namespace = namespace;
        self.name = Some(name.into());
        self
    }

    /// Whether `self` and `other` are one write target: same kind, same parts.
    pub fn same_target(&self, other: &Identity) -> bool {
        !self.parts.is_empty() && self.kind == other.kind && self.parts == other.parts
    }

    /// Whether a resource of `kind` named `name` in `namespace` would be this one's name
    /// twice: equal names, in the same namespace (or one of the two unknown).
    fn name_taken(&self, namespace: Option<&str>, name: &str) -> bool {
        self.name.as_deref() == Some(name)
            && match (self.namespace.as_deref(), namespace) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        for (k, v) in &self.parts {
            write!(f, " {k}={v}")?;
        }
        if self.parts.is_empty() {
            f.write_str(" (no identity)")?;
        }
        Ok(())
    }
}

/// One service of another environment, as the run's credentials resolved it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Owned {
    pub(crate) environment: String,
    pub(crate) service: String,
    pub(crate) identity: Identity,
    /// Whether the other environment is protected.
    pub(crate) protected: bool,
}

/// The result of the isolation check of one run: what every other environment of the same
/// provider owns on the platform, as the run's own credentials resolved it. The one issuer
/// of [`WriteTarget`], [`EnvironmentTarget`] and [`CreationTarget`]; built only by
/// [`crate::isolation::check_before_write`].
#[derive(Debug, Clone)]
pub struct WriteBoundary {
    environment: String,
    protected: bool,
    others: Vec<Owned>,
    /// Per service of the spec: the environments it is declared shared with.
    shared: std::collections::BTreeMap<String, Vec<String>>,
    /// Whether platform identities were resolved at all: a boundary of a command that
    /// writes no platform service (`migrate apply`) issues nothing.
    resolved: bool,
    /// Whether the environment is ephemeral (`ephemeral = true`): only then are deletions
    /// issued ([`WriteBoundary::deletion`]).
    ephemeral: bool,
}

impl WriteBoundary {
    pub(crate) fn new(
        environment: impl Into<String>,
        protected: bool,
        others: Vec<Owned>,
        shared: std::collections::BTreeMap<String, Vec<String>>,
    ) -> Self {
        WriteBoundary {
            environment: environment.into(),
            protected,
            others,
            shared,
            resolved: true,
            ephemeral: false,
        }
    }

    /// The same boundary, for an environment that is ephemeral or not (as the spec says).
    pub(crate) fn with_ephemeral(mut self, ephemeral: bool) -> Self {
        self.ephemeral = ephemeral;
        self
    }

    /// A boundary that issues nothing (no platform identity was resolved).
    pub(crate) fn closed(environment: impl Into<String>) -> Self {
        WriteBoundary {
            resolved: false,
            ..WriteBoundary::new(environment, true, vec![], Default::default())
        }
    }

    fn open(&self) -> Result<()> {
        if self.resolved {
            Ok(())
        } else {
            Err(Error::config(format!(
                "the isolation check of `{}` resolved no platform identity (it was run for databases only): no platform write is allowed",
                self.environment
            )))
        }
    }

    /// The environment this boundary was checked for.
    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// The other environments' services it compares with (environment, service, identity),
    /// for reports.
    pub fn compared(&self) -> impl Iterator<Item = (&str, &str, &Identity)> {
        self.others
            .iter()
            .map(|o| (o.environment.as_str(), o.service.as_str(), &o.identity))
    }

    /// The environment's own preparation (Railway's copy of a missing environment).
    pub fn environment_target(&self) -> Result<EnvironmentTarget> {
        self.open()?;
        Ok(EnvironmentTarget {
            environment: self.environment.clone(),
        })
    }

    /// Issues the target for a write to `handle`, or refuses (exit 2) when another
    /// environment owns its identity and the spec does not declare the sharing (or declares
    /// it with a protected environment from one that is not). Refuses too a handle of another
    /// environment and one whose provider gave no identity.
    pub fn target(&self, handle: ServiceHandle) -> Result<WriteTarget> {
        self.open()?;
        if handle.environment != self.environment {
            return Err(Error::config(format!(
                "service `{}` of environment `{}` cannot be written by a run of `{}`: refused before any write",
                handle.name, handle.environment, self.environment
            )));
        }
        if handle.identity.parts.is_empty() {
            return Err(Error::config(format!(
                "service `{}` of environment `{}` (id {}) has no platform identity, so it cannot be compared with the other environments: refused before any write",
                handle.name, self.environment, handle.id
            )));
        }
        for other in &self.others {
            if !other.identity.same_target(&handle.identity) {
                continue;
            }
            if self.declared_shared(&handle.name, other) {
                continue;
            }
            let env = &self.environment;
            return Err(Error::config(format!(
                "service `{}` of environment `{env}` is {} on the platform, which is also service `{}` of {}environment `{}`: refused before any write (two environments, one write target). Give `{env}` a service of its own{}",
                handle.name,
                handle.identity,
                other.service,
                if other.protected { "protected " } else { "" },
                other.environment,
                if other.protected && !self.protected {
                    String::new()
                } else {
                    format!(
                        ", or, if sharing is deliberate, say so with `shared_with = [\"{}\"]`",
                        other.environment
                    )
                }
            )));
        }
        Ok(WriteTarget { handle })
    }

    /// Issues the target for creating `creation`, or refuses (exit 2) when another
    /// environment already owns a resource of that name in the same namespace ("will be
    /// created" is an identity too). The id it gets is compared like any other when it is
    /// next written ([`WriteBoundary::target`]).
    pub fn creation(&self, creation: &Creation) -> Result<CreationTarget> {
        self.open()?;
        // Only a creation with a name among services (a namespace) can take one; a
        // datastore, a domain or a site's branch deploy says none.
        for other in &self.others {
            let Some(namespace) = creation.namespace.as_deref() else {
                break;
            };
            if other.identity.name_taken(Some(namespace), &creation.name) {
                let env = &self.environment;
                return Err(Error::config(format!(
                    "environment `{env}` would create {}, but `{}` is already service `{}` of {}environment `{}` ({}): refused before any write. Give `{env}`'s resource a name of its own",
                    creation.describe(),
                    creation.name,
                    other.service,
                    if other.protected { "protected " } else { "" },
                    other.environment,
                    other.identity
                )));
            }
        }
        Ok(CreationTarget {
            creation: creation.clone(),
        })
    }

    /// Issues the target for deleting what an instance's ledger recorded as `created`, found
    /// on the platform as `found` ([`crate::teardown::Teardown::find`]), or says why not:
    /// the one place a deletion is decided. Refused (exit 2): an environment that is not
    /// ephemeral or is protected; a resource that is not what the ledger recorded
    /// ([`crate::teardown::judge`]: another id, a name reused by hand, a creation whose
    /// answer never came and that the platform dates elsewhere, the platform's marking of
    /// another owner); a resource whose id or name (in its namespace) another environment
    /// owns. `Ok(None)`: the platform holds nothing under it any more.
    pub fn deletion(
        &self,
        created: &crate::teardown::Created,
        found: Option<crate::teardown::Found>,
    ) -> Result<Option<crate::teardown::DeletionTarget>> {
        use crate::teardown::{DeletionTarget, Judgement, judge};
        self.open()?;
        let env = &self.environment;
        if !self.ephemeral || self.protected {
            return Err(Error::config(format!(
                "environment `{env}` is {}: nothing of it is ever deleted ({} not deleted)",
                if self.protected {
                    "protected"
                } else {
                    "not ephemeral (`ephemeral = true`)"
                },
                created.describe()
            )));
        }
        let found = match judge(created, found) {
            Judgement::Gone => return Ok(None),
            Judgement::Refused(why) => {
                return Err(Error::config(format!("refused, nothing deleted: {why}")));
            }
            Judgement::Ours(found) => found,
        };
        for other in &self.others {
            let id_is_theirs = other.identity.parts.iter().any(|(_, v)| *v == found.id);
            let name_is_theirs = created.namespace.is_some()
                && other
                    .identity
                    .name_taken(created.namespace.as_deref(), &found.name);
            if id_is_theirs || name_is_theirs {
                return Err(Error::config(format!(
                    "refused, nothing deleted: {} is `{}` ({}), which is service `{}` of {}environment `{}` ({})",
                    created.describe(),
                    found.name,
                    found.id,
                    other.service,
                    if other.protected { "protected " } else { "" },
                    other.environment,
                    other.identity
                )));
            }
        }
        Ok(Some(DeletionTarget {
            created: created.clone(),
            found,
        }))
    }

    /// Whether service `service` of the run may write what `other` also owns: the sharing
    /// is declared on either side, and it is not a write from an unprotected environment to
    /// a protected one.
    fn declared_shared(&self, service: &str, other: &Owned) -> bool {
        let declares = |service: &str, environment: &str| {
            self.shared
                .get(service)
                .is_some_and(|s| s.iter().any(|e| e == environment))
        };
        let declared =
            declares(service, &other.environment) || declares(&other.service, &self.environment);
        declared && (!other.protected || self.protected)
    }
}

/// A service the run may write: issued by [`WriteBoundary::target`] after its identity was
/// compared with every other environment's. What every mutating [`crate::Provider`] method
/// takes; reads through it as the [`ServiceHandle`] it wraps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriteTarget {
    handle: ServiceHandle,
}

impl WriteTarget {
    /// The located service.
    pub fn handle(&self) -> &ServiceHandle {
        &self.handle
    }

    /// A target issued without any check, for provider conformance and lifecycle tests
    /// only (feature `testkit`): production code never has this function.
    #[cfg(feature = "testkit")]
    pub fn unchecked_for_tests(handle: ServiceHandle) -> Self {
        WriteTarget { handle }
    }
}

impl Deref for WriteTarget {
    type Target = ServiceHandle;
    fn deref(&self) -> &ServiceHandle {
        &self.handle
    }
}

/// The run's own environment, for [`crate::EnvironmentSetup::prepare_environment`]: issued by
/// [`WriteBoundary::environment_target`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentTarget {
    environment: String,
}

impl EnvironmentTarget {
    /// The environment's name in the spec.
    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// A target issued without any check, for tests only (feature `testkit`).
    #[cfg(feature = "testkit")]
    pub fn unchecked_for_tests(environment: impl Into<String>) -> Self {
        EnvironmentTarget {
            environment: environment.into(),
        }
    }
}

/// One creation the run may make: issued by [`WriteBoundary::creation`]; what
/// [`crate::Provisioner::create`] takes. Reads as the [`Creation`] it wraps.
#[derive(Debug, Clone)]
pub struct CreationTarget {
    creation: Creation,
}

impl CreationTarget {
    /// A target issued without any check, for tests only (feature `testkit`).
    #[cfg(feature = "testkit")]
    pub fn unchecked_for_tests(creation: Creation) -> Self {
        CreationTarget { creation }
    }
}

impl Deref for CreationTarget {
    type Target = Creation;
    fn deref(&self) -> &Creation {
        &self.creation
    }
}

/// A boundary of `environment` whose other environments own `others` (each handle's
/// environment, protected when `protected` says so), as the isolation check would have
/// resolved them: for providers' tests of their identities (feature `testkit`).
#[cfg(feature = "testkit")]
pub fn boundary_against_for_tests(
    environment: impl Into<String>,
    others: &[ServiceHandle],
    protected: bool,
) -> WriteBoundary {
    let others = others
        .iter()
        .map(|h| Owned {
            environment: h.environment.clone(),
            service: h.name.clone(),
            identity: h.identity.clone(),
            protected,
        })
        .collect();
    WriteBoundary::new(environment, false, others, Default::default())
}

/// A boundary with nothing to compare against, for tests whose spec has one environment
/// (feature `testkit`).
#[cfg(feature = "testkit")]
pub fn unchecked_boundary_for_tests(environment: impl Into<String>) -> WriteBoundary {
    WriteBoundary::new(environment, false, vec![], Default::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(env: &str, parts: &[(&str, &str)]) -> ServiceHandle {
        ServiceHandle {
            name: "web".into(),
            environment: env.into(),
            id: parts.last().map(|p| p.1.to_owned()).unwrap_or_default(),
            identity: Identity::new("railway service instance", parts.iter().copied()),
        }
    }

    fn created(id: Option<&str>, name: &str, namespace: Option<&str>) -> crate::teardown::Created {
        crate::teardown::Created {
            kind: "render web service".into(),
            name: name.into(),
            owner: "service api".into(),
            namespace: namespace.map(str::to_owned),
            by: crate::teardown::CreatedBy::Provider,
            id: id.map(str::to_owned),
            requested_at: 1_000_000,
            deleted_at: None,
        }
    }

    fn found(id: &str, name: &str, created_at: Option<u64>) -> crate::teardown::Found {
        crate::teardown::Found {
            id: id.into(),
            name: name.into(),
            created_at,
            marked_ours: None,
        }
    }

    #[test]
    fn a_deletion_is_issued_only_in_an_ephemeral_unprotected_environment_for_what_the_ledger_recorded()
     {
        let eph = boundary(true).with_ephemeral(true);
        let c = created(Some("srv-9"), "api-pr-7", Some("proj"));
        // The recorded resource: issued.
        let t = eph
            .deletion(&c, Some(found("srv-9", "api-pr-7", None)))
            .unwrap()
            .unwrap();
        assert_eq!(t.id(), "srv-9");
        // Gone: nothing to delete, no target.
        assert!(eph.deletion(&c, None).unwrap().is_none());
        // Made again by hand under the recorded name: another id.
        let e = eph
            .deletion(&c, Some(found("srv-10", "api-pr-7", None)))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("recorded id `srv-9`") && e.contains("srv-10"),
            "{e}"
        );
        // The same boundary, not ephemeral (staging) or protected: nothing, ever.
        let e = boundary(true)
            .deletion(&c, Some(found("srv-9", "api-pr-7", None)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not ephemeral"), "{e}");
        let mut protected = boundary(true).with_ephemeral(true);
        protected.protected = true;
        assert!(
            protected
                .deletion(&c, Some(found("srv-9", "api-pr-7", None)))
                .is_err()
        );
    }

    #[test]
    fn a_deletion_of_what_another_environment_owns_is_refused_by_id_or_by_name() {
        let eph = boundary(true).with_ephemeral(true);
        // A ledger that (wrongly) recorded production's service id.
        let c = created(Some("svc-1"), "api-pr-7", Some("proj"));
        let e = eph
            .deletion(&c, Some(found("svc-1", "api-pr-7", None)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("protected environment `production`"), "{e}");
        // Production's name in the same namespace.
        let c = created(Some("svc-77"), "api", Some("proj"));
        let e = eph
            .deletion(&c, Some(found("svc-77", "api", None)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`production`"), "{e}");
    }

    #[test]
    fn an_interrupted_creation_is_deleted_only_when_the_platform_dates_it_to_the_request() {
        let eph = boundary(false).with_ephemeral(true);
        let c = created(None, "api-pr-7", Some("proj"));
        assert!(
            eph.deletion(&c, Some(found("srv-1", "api-pr-7", Some(1_000_030))))
                .unwrap()
                .is_some()
        );
        for when in [Some(1_000_000 - 3600), Some(1_000_000 + 3600), None] {
            let e = eph
                .deletion(&c, Some(found("srv-1", "api-pr-7", when)))
                .unwrap_err()
                .to_string();
            assert!(e.contains("stopped before the platform answered"), "{e}");
        }
        let mut theirs = found("srv-1", "api-pr-7", Some(1_000_030));
        theirs.marked_ours = Some(false);
        assert!(eph.deletion(&c, Some(theirs)).is_err());
    }

    fn boundary(protected_other: bool) -> WriteBoundary {
        WriteBoundary::new(
            "staging",
            false,
            vec![Owned {
                environment: "production".into(),
                service: "web".into(),
                identity: Identity::new(
                    "railway service instance",
                    [("service", "svc-1"), ("environment", "env-prod")],
                )
                .named(Some("proj".into()), "api"),
                protected: protected_other,
            }],
            Default::default(),
        )
    }

    #[test]
    fn a_target_another_environment_owns_is_refused_naming_both_and_the_identity() {
        let err = boundary(true)
            .target(handle(
                "staging",
                &[("service", "svc-1"), ("environment", "env-prod")],
            ))
            .unwrap_err();
        let text = err.to_string();
        assert_eq!(err.class(), crate::ErrorClass::Usage);
        assert!(
            text.contains("environment `staging`")
                && text.contains("protected environment `production`")
                && text.contains("service=svc-1 environment=env-prod"),
            "{text}"
        );
    }

    #[test]
    fn one_service_in_two_environments_is_two_targets() {
        let t = boundary(true)
            .target(handle(
                "staging",
                &[("service", "svc-1"), ("environment", "env-stg")],
            ))
            .unwrap();
        assert_eq!(t.id, "env-stg");
    }

    #[test]
    fn a_handle_without_identity_or_of_another_environment_is_never_writable() {
        let b = boundary(false);
        assert!(b.target(handle("staging", &[])).is_err());
        assert!(
            b.target(handle(
                "production",
                &[("service", "svc-9"), ("environment", "env-x")]
            ))
            .is_err()
        );
    }

    #[test]
    fn a_creation_named_like_another_environment_s_resource_in_its_namespace_is_refused() {
        let b = boundary(true);
        let c = |name: &str, ns: Option<&str>| Creation {
            kind: "railway service".into(),
            name: name.into(),
            owner: "service worker".into(),
            namespace: ns.map(str::to_owned),
            like: None,
            settings: Default::default(),
            request: serde_json::Value::Null,
        };
        let err = b.creation(&c("api", Some("proj"))).unwrap_err().to_string();
        assert!(
            err.contains("`production`") && err.contains("`api`"),
            "{err}"
        );
        assert!(b.creation(&c("api", Some("other-project"))).is_ok());
        assert!(b.creation(&c("api-staging", Some("proj"))).is_ok());
        // A creation without a namespace (a datastore, a domain) has no service name to take.
        assert!(b.creation(&c("api", None)).is_ok());
    }

    #[test]
    fn declared_sharing_holds_except_from_unprotected_into_protected() {
        let mut b = boundary(false);
        b.shared.insert("web".into(), vec!["production".into()]);
        let h = handle(
            "staging",
            &[("service", "svc-1"), ("environment", "env-prod")],
        );
        assert!(b.target(h.clone()).is_ok());
        let mut b = boundary(true);
        b.shared.insert("web".into(), vec!["production".into()]);
        assert!(b.target(h).is_err());
    }
}
