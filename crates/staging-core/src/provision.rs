//! Standing an environment up from nothing: the [`Provisioner`] a provider offers
//! ([`crate::ProviderFactory::provisioner`]) finds which of the services and datastores the
//! spec asks to create (`create = ...`) are missing from an environment, and creates them.
//!
//! The contract every provisioner keeps:
//! - [`Provisioner::missing`] only reads. What it returns is what `staging plan` lists and
//!   what `staging up` creates, in order (datastores, then services, then what hangs on
//!   them such as custom domains), each with the settings it will be created with.
//! - [`Provisioner::create`] creates one of them and waits, bounded, until it is available.
//!   It never deletes or replaces anything, and never sends another environment's variable
//!   values (a definition copied with `like` is the resource's shape, not its secrets).
//! - A second run finds nothing missing and creates nothing.
//!
//! The pipeline runs it in [`ProvisionStep`], after the isolation check and before the
//! secrets step (which may read the connection strings of a datastore just created). A
//! protected environment creates only with `allow_create = true`; without it, the run is
//! refused offline ([`crate::spec::LoadedSpec::check_creation_allowed`]).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::pipeline::{Finding, RunContext, Step, StepReport};
use crate::registry::ProviderRegistry;

/// One resource an environment lacks, and how it would be created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Creation {
    /// What it is, in the platform's words (`render web service`, `render postgres`,
    /// `render key value`, `render custom domain`, `netlify branch deploy`).
    pub kind: String,
    /// Its name on the platform (`shop-web-staging`, `staging.shop.example.com`).
    pub name: String,
    /// What in the spec asks for it (`service web`, `datastore db`).
    pub owner: String,
    /// For a service (a Render service, a Netlify site): where its name must be unique on
    /// the platform (a Render workspace id; `netlify` for Netlify's global site names). The
    /// write boundary refuses the creation when another environment's service already has
    /// that name there ([`crate::WriteBoundary::creation`]). `None` for what has no name
    /// among services (a datastore, a custom domain, a site's branch deploy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The environment whose resource it copies, when `like` says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub like: Option<String>,
    /// The settings it is created with, as `plan` shows them (never a secret value).
    pub settings: BTreeMap<String, String>,
    /// The provider's own request for it (not shown; what [`Provisioner::create`] sends).
    #[serde(skip)]
    pub request: serde_json::Value,
}

impl Creation {
    /// `render postgres shop-db-staging (datastore db, like production)`, for reports.
    pub fn describe(&self) -> String {
        match &self.like {
            Some(like) => format!(
                "{} `{}` ({}, like {like})",
                self.kind, self.name, self.owner
            ),
            None => format!("{} `{}` ({})", self.kind, self.name, self.owner),
        }
    }
}

/// Creates what an environment lacks. See the module documentation for the contract.
#[async_trait]
pub trait Provisioner: Debug + Send + Sync {
    /// What is missing, in the order it must be created; reads only.
    async fn missing(&self) -> Result<Vec<Creation>>;

    /// Creates one resource [`Provisioner::missing`] returned; returns its platform id.
    /// Waiting until it is usable is [`Provisioner::ready`]'s (a resource that exists is
    /// counted as created even when it never becomes ready). The creation comes through the run's write
    /// boundary ([`crate::WriteBoundary::creation`]): a name another environment already has
    /// in the same namespace is refused before this is called.
    async fn create(&self, creation: &crate::boundary::CreationTarget) -> Result<String>;

    /// Waits, bounded, until everything the spec asks for that exists is ready to use (a
    /// datastore the platform reports available), and fails naming what is not. Run on
    /// every run after the creations — also when this run created nothing, because an
    /// earlier run may have stopped while a resource was still being created, and a
    /// resource that exists is not a resource that is ready. Reads only.
    async fn ready(&self) -> Result<()> {
        Ok(())
    }
}

/// A provisioner behind a pointer.
pub type DynProvisioner = Arc<dyn Provisioner>;

/// What [`plan`] found for one environment.
#[derive(Debug, Clone, Serialize)]
pub struct ProvisionPlan {
    /// The resources to create, in order.
    pub create: Vec<Creation>,
    /// Why nothing can be created here although the spec asks it, when so (a provider that
    /// creates nothing, such as AWS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_supported: Option<String>,
}

/// What `environment` is asked to create, and who can create it.
enum Asked {
    /// The spec asks nothing there.
    Nothing,
    /// The provider creates nothing: why, naming what must exist.
    NotSupported { provider: String, why: String },
    /// The provider's provisioner, and what the spec asks (for messages).
    By(DynProvisioner, crate::spec::CreationsAsked),
}

/// The one preparation of [`plan`] and [`ProvisionStep`]: refuses, before any request,
/// creation on a protected environment without `allow_create`, then finds what is asked
/// and the provider's provisioner.
fn asked(
    registry: &ProviderRegistry,
    spec: &crate::spec::LoadedSpec,
    environment: &str,
) -> Result<Asked> {
    spec.check_creation_allowed(environment)?;
    let asked = spec.creations_asked(environment);
    if asked.is_empty() {
        return Ok(Asked::Nothing);
    }
    let factory = registry.factory_for(spec, environment)?;
    Ok(match factory.provisioner(spec, environment)? {
        Some(p) => Asked::By(p, asked),
        // An ephemeral environment `like` another asks its provider to copy what it can
        // create; a provider that creates nothing (local processes, AWS) has nothing to copy.
        None if spec.explicit_creations(environment).is_empty() => Asked::Nothing,
        None => Asked::NotSupported {
            provider: factory.name().to_owned(),
            why: not_supported(factory.name(), &asked.describe()),
        },
    })
}

/// Offline, before a run's preflight asks the platform anything: refuses creation on a
/// protected environment without `allow_create`, and creation asked of a provider that
/// creates nothing (naming what must exist), as [`ProvisionStep`] would later.
pub fn refuse_offline(
    registry: &ProviderRegistry,
    spec: &crate::spec::LoadedSpec,
    environment: &str,
) -> Result<()> {
    match asked(registry, spec, environment)? {
        Asked::NotSupported { provider, why } => Err(Error::not_supported(provider, why)),
        Asked::Nothing | Asked::By(..) => Ok(()),
    }
}

/// What `staging up` would create in `environment`, read only: nothing when the spec asks
/// no creation there. Refuses, before any request, creation on a protected environment
/// without `allow_create`.
pub async fn plan(
    registry: &ProviderRegistry,
    spec: &crate::spec::LoadedSpec,
    environment: &str,
) -> Result<ProvisionPlan> {
    Ok(match asked(registry, spec, environment)? {
        Asked::Nothing => ProvisionPlan {
            create: vec![],
            not_supported: None,
        },
        Asked::NotSupported { why, .. } => ProvisionPlan {
            create: vec![],
            not_supported: Some(why),
        },
        Asked::By(p, _) => ProvisionPlan {
            create: p.missing().await?,
            not_supported: None,
        },
    })
}

fn not_supported(provider: &str, what: &str) -> String {
    format!(
        "{provider} creates nothing: {what} must already exist (create them with the platform's own tooling, e.g. Terraform or CloudFormation, and remove `create` from the spec)"
    )
}

/// Creates what the spec asks for and the environment lacks ([`Provisioner`]), and records
/// each creation in its report (and so in evidence). Skipped when the spec asks no creation
/// for the environment.
#[derive(Debug, Clone)]
pub struct ProvisionStep {
    registry: ProviderRegistry,
}

impl ProvisionStep {
    /// The step's name in reports.
    pub const NAME: &'static str = "provision";

    /// A provision step over the providers of `registry`.
    pub fn new(registry: ProviderRegistry) -> Self {
        ProvisionStep { registry }
    }
}

#[async_trait]
impl Step for ProvisionStep {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<StepReport> {
        let (provisioner, asked) = match asked(&self.registry, &ctx.spec, &ctx.environment)? {
            Asked::Nothing => {
                return Ok(StepReport::skipped(
                    Self::NAME,
                    format!(
                        "the spec asks nothing to be created in `{}`",
                        ctx.environment
                    ),
                ));
            }
            Asked::NotSupported { provider, why } => {
                return Err(Error::not_supported(provider, why));
            }
            Asked::By(p, asked) => (p, asked),
        };
        let missing = provisioner.missing().await?;
        // What exists must be ready before anything is created after it (a rerun after a
        // timeout finds a datastore still being created).
        if let Err(e) = provisioner.ready().await {
            let done = if missing.is_empty() {
                "nothing to create".to_owned()
            } else {
                format!(
                    "created 0 of {} (not attempted: {})",
                    missing.len(),
                    missing
                        .iter()
                        .map(Creation::describe)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Ok(not_ready(&ctx.environment, &done, vec![], e));
        }
        if missing.is_empty() {
            return Ok(StepReport::passed(
                Self::NAME,
                format!(
                    "nothing to create in `{}`: {} exist",
                    ctx.environment,
                    asked.describe()
                ),
            ));
        }
        // Every creation through the run's write boundary before the first is made: a name
        // another environment already has refuses the whole step, not its second half.
        let boundary = ctx.boundary()?;
        let cleared = missing
            .iter()
            .map(|c| boundary.creation(c))
            .collect::<Result<Vec<_>>>()?;
        let mut findings = vec![];
        for (creation, cleared) in missing.iter().zip(&cleared) {
            ctx.progress
                .message(Self::NAME, &format!("creating {}", creation.describe()));
            // An instance records the creation in its ledger before the request (a run
            // stopped mid-request leaves the entry for `down`), and its id after.
            let entry = match &ctx.ledger {
                Some(ledger) => Some(
                    ledger
                        .requested(creation, crate::teardown::CreatedBy::Provider)
                        .await?,
                ),
                None => None,
            };
            // Created and ready before the next one: what follows may depend on it, and a
            // resource that exists but never becomes ready still counts as created.
            let made = match provisioner.create(cleared).await {
                Ok(id) => {
                    if let (Some(ledger), Some(entry)) = (&ctx.ledger, entry) {
                        ledger.answered(entry, &id).await?;
                    }
                    findings.push(Finding::ok(
                        &creation.name,
                        format!("created {} as {id}", creation.describe()),
                    ));
                    provisioner.ready().await
                }
                Err(e) => {
                    findings.push(Finding::failed(
                        &creation.name,
                        format!("could not create {}: {e}", creation.describe()),
                    ));
                    Err(e)
                }
            };
            match made {
                Ok(()) => {}
                Err(e) => {
                    let created = findings.iter().filter(|f| f.ok).count();
                    let attempted = findings.len();
                    let left: Vec<String> = missing
                        .iter()
                        .skip(attempted)
                        .map(Creation::describe)
                        .collect();
                    let what = if created == attempted {
                        // Created, but not ready: it exists on the platform.
                        findings.push(Finding::failed("ready", e.to_string()));
                        format!("{} exists but is not ready ({e})", creation.describe())
                    } else {
                        format!("{} failed", creation.describe())
                    };
                    let mut report = StepReport::from_findings(
                        Self::NAME,
                        format!(
                            "created {} of {} in `{}`; {}{}; nothing was deleted, and the next run creates what is still missing",
                            created,
                            missing.len(),
                            ctx.environment,
                            what,
                            if left.is_empty() {
                                String::new()
                            } else {
                                format!("; not attempted: {}", left.join(", "))
                            }
                        ),
                        findings,
                    );
                    if e.class() != crate::ErrorClass::Failed {
                        report.status = crate::pipeline::StepStatus::Error;
                        report.error_class = Some(e.class());
                    }
                    return Ok(report);
                }
            }
        }
        Ok(StepReport::from_findings(
            Self::NAME,
            format!(
                "created {} in `{}`: {}",
                missing.len(),
                ctx.environment,
                missing
                    .iter()
                    .map(Creation::describe)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            findings,
        ))
    }
}

/// The report of a provision step whose resources exist but are not ready: what was done
/// (`done`), then the provisioner's reason, which names each resource and its state. Nothing
/// after it may run against a datastore still being created.
fn not_ready(environment: &str, done: &str, mut findings: Vec<Finding>, e: Error) -> StepReport {
    findings.push(Finding::failed("ready", e.to_string()));
    let mut report = StepReport::from_findings(
        ProvisionStep::NAME,
        format!(
            "{done} in `{environment}`, but not everything is ready: {e}; nothing was deleted, and the next run waits for it again"
        ),
        findings,
    );
    if e.class() != crate::ErrorClass::Failed {
        report.status = crate::pipeline::StepStatus::Error;
        report.error_class = Some(e.class());
    }
    report
}
