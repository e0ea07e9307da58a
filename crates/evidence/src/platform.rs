//! Drift against the platform: what each environment's provider actually holds — each
//! service's variables (where the provider can read them, compared by keyed fingerprint,
//! never shown) and live commit — next to what the spec declares.
//!
//! The spec can say two environments share a value (`same_as`) or must not (`differs_from`)
//! while the platform holds something else: someone changed it in the dashboard. `staging
//! diff` reports both sides and says where each value came from (`spec` or `platform`);
//! [`PlatformRulesStep`] fails `up` on the environment being changed, before anything is
//! deployed, when what it is about to set breaks a rule against what the other
//! environment's platform holds.
//!
//! Reads only. An environment whose provider cannot be built here (its credentials are not
//! in this CI job) or cannot read variables is noted, not an error: isolation means a
//! staging job often cannot read production. A provider that answers but does not know a
//! service of that environment (an unknown project) fails [`PlatformRulesStep`]: the rules
//! against it could not be checked.

use std::collections::BTreeMap;

use async_trait::async_trait;
use secrecy::SecretString;
use serde::Serialize;
use staging_core::pipeline::{Finding, RunContext, Step, StepReport, service_receives};
use staging_core::spec::LoadedSpec;
use staging_core::{Capability, ProviderRegistry, Redactor};
use staging_secrets::Fingerprinter;

use crate::drift::BrokenRule;

/// What one service holds on the platform in one environment.
#[derive(Debug, Clone, Serialize)]
pub struct PlatformService {
    /// The platform id the service resolved to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The commit it serves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_commit: Option<String>,
    /// Its variables, when the provider could read them (never serialized).
    #[serde(skip)]
    pub vars: Option<BTreeMap<String, SecretString>>,
    /// Why something could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What one environment's provider holds for the spec's services.
#[derive(Debug, Clone, Serialize)]
pub struct PlatformSide {
    /// The environment.
    pub environment: String,
    /// Why nothing could be read (no credentials here, unknown provider).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
    /// Each service of the spec.
    pub services: BTreeMap<String, PlatformService>,
}

impl PlatformSide {
    /// The value the platform holds for `var` on `service`, when read.
    pub fn value(&self, service: &str, var: &str) -> Option<&SecretString> {
        self.services.get(service)?.vars.as_ref()?.get(var)
    }

    /// Whether the platform's variables of `service` were read.
    pub fn read_vars(&self, service: &str) -> bool {
        self.services.get(service).is_some_and(|s| s.vars.is_some())
    }
}

/// Read what `environment`'s provider holds for every service of the spec: platform id,
/// live commit, variables (where the provider can read them). Reads only; every secret
/// value read is registered with the redactor.
pub async fn read_platform(
    spec: &LoadedSpec,
    environment: &str,
    registry: &ProviderRegistry,
) -> PlatformSide {
    let mut side = PlatformSide {
        environment: environment.to_owned(),
        unreadable: None,
        services: BTreeMap::new(),
    };
    let provider = registry.factory_for(spec, environment).and_then(|f| {
        f.check(spec, environment)?;
        f.build(spec, environment)
    });
    let provider = match provider {
        Ok(p) => p,
        Err(e) => {
            side.unreadable = Some(format!("cannot read `{environment}`'s provider: {e}"));
            return side;
        }
    };
    let read_env = provider.capabilities().has(Capability::ReadEnv);
    for name in spec.spec.services.keys() {
        let mut svc = PlatformService {
            id: None,
            live_commit: None,
            vars: None,
            note: None,
        };
        match provider.locate(environment, name).await {
            Ok(handle) => {
                svc.id = Some(handle.id.clone());
                match provider.live_state(&handle).await {
                    Ok(state) => svc.live_commit = state.live_commit().map(str::to_owned),
                    Err(e) => svc.note = Some(format!("live state: {e}")),
                }
                if read_env {
                    match provider.env_vars(&handle).await {
                        Ok(vars) => {
                            // A value read from a platform is treated as a secret in output.
                            for v in vars.values() {
                                Redactor::global().register(v);
                            }
                            svc.vars = Some(vars);
                        }
                        Err(e) => svc.note = Some(format!("variables: {e}")),
                    }
                } else {
                    svc.note = Some(format!("{} cannot read variables", provider.name()));
                }
            }
            Err(e) => svc.note = Some(format!("not found: {e}")),
        }
        side.services.insert(name.clone(), svc);
    }
    side
}

/// Where a compared value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueSide {
    /// What the spec resolves (the value the next deploy sets).
    Spec,
    /// What the provider holds now.
    Platform,
}

/// One variable of one service, compared across two environments on the platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformVarDiff {
    /// The service.
    pub service: String,
    /// The variable.
    pub var: String,
    /// Its fingerprint in the first environment, and where it came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a: Option<String>,
    /// Where the first value came from.
    pub a_from: ValueSide,
    /// Its fingerprint in the second environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b: Option<String>,
    /// Where the second value came from.
    pub b_from: ValueSide,
    /// Whether the two are equal, when both are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equal: Option<bool>,
    /// `same` or `differ` when a rule between the two says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<&'static str>,
}

/// The pair rule of `var` between `a` and `b`, if any: `same` or `differ`.
fn pair_rule(spec: &LoadedSpec, var: &str, a: &str, b: &str) -> Option<&'static str> {
    let rules = &spec.spec.vars.get(var)?.rules;
    let names = |o: &Option<String>| o.as_deref().is_some_and(|o| o == a || o == b);
    if names(&rules.same_as) {
        Some("same")
    } else if names(&rules.differs_from) {
        Some("differ")
    } else {
        None
    }
}

/// One side's value of `var` on `service`: the platform's when it was read (and holds it),
/// else the spec's.
fn value_of<'a>(
    side: &'a PlatformSide,
    spec_values: &'a BTreeMap<String, SecretString>,
    service: &str,
    var: &str,
) -> (Option<&'a SecretString>, ValueSide) {
    if side.read_vars(service) {
        (side.value(service, var), ValueSide::Platform)
    } else {
        (spec_values.get(var), ValueSide::Spec)
    }
}

/// Compare every declared variable of every service across two environments' platforms
/// (each side the platform's value where it was read, else the spec's), and judge the pair
/// rules on what the platforms hold. Only rows where at least one side is the platform are
/// returned: the spec-only comparison is [`crate::diff_environments`]'s.
pub fn compare_platforms(
    spec: &LoadedSpec,
    a: (&PlatformSide, &BTreeMap<String, SecretString>),
    b: (&PlatformSide, &BTreeMap<String, SecretString>),
    fingerprints: &Fingerprinter,
) -> (Vec<PlatformVarDiff>, Vec<BrokenRule>) {
    let (mut rows, mut broken) = (vec![], vec![]);
    for service in spec.spec.services.keys() {
        for var in spec.spec.vars.keys() {
            if !service_receives(spec, var, service) {
                continue;
            }
            let (va, a_from) = value_of(a.0, a.1, service, var);
            let (vb, b_from) = value_of(b.0, b.1, service, var);
            if a_from == ValueSide::Spec && b_from == ValueSide::Spec {
                continue;
            }
            let equal = match (va, vb) {
                (Some(x), Some(y)) => Some(fingerprints.same(x, y)),
                _ => None,
            };
            let expected = pair_rule(spec, var, &a.0.environment, &b.0.environment);
            let row = PlatformVarDiff {
                service: service.clone(),
                var: var.clone(),
                a: va.map(|v| fingerprints.display(v)),
                a_from,
                b: vb.map(|v| fingerprints.display(v)),
                b_from,
                equal,
                expected,
            };
            if let Some(rule) = broken_rule(&row, &a.0.environment, &b.0.environment) {
                broken.push(rule);
            }
            rows.push(row);
        }
    }
    (rows, broken)
}

impl std::fmt::Display for ValueSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(side_word(*self))
    }
}

fn side_word(s: ValueSide) -> &'static str {
    match s {
        ValueSide::Spec => "spec",
        ValueSide::Platform => "platform",
    }
}

fn broken_rule(row: &PlatformVarDiff, a: &str, b: &str) -> Option<BrokenRule> {
    let fp = |f: &Option<String>| f.clone().unwrap_or_else(|| "?".into());
    let (rule, message) = match (row.expected, row.equal) {
        (Some("same"), Some(false)) => (
            "same_as",
            format!(
                "`{}` of service {} differs between {a} ({}, from the {}) and {b} ({}, from the {}), but the rules say they must match",
                row.var,
                row.service,
                fp(&row.a),
                side_word(row.a_from),
                fp(&row.b),
                side_word(row.b_from)
            ),
        ),
        (Some("differ"), Some(true)) => (
            "differs_from",
            format!(
                "`{}` of service {} has the same value in {a} (from the {}) and {b} (from the {}) ({}), but the rules say they must differ",
                row.var,
                row.service,
                side_word(row.a_from),
                side_word(row.b_from),
                fp(&row.a)
            ),
        ),
        _ => return None,
    };
    Some(BrokenRule {
        subject: format!("{} (service {}, on the platform)", row.var, row.service),
        rule: rule.to_owned(),
        message,
    })
}

/// Before anything is deployed: the values this run is about to set (the spec's, in
/// [`RunContext::vars`]) against what each other environment named by a `same_as` /
/// `differs_from` rule holds on its platform. A broken rule fails the step, so the deploy
/// does not run; an environment whose provider cannot be built here (no credentials in this
/// job) is noted; one whose provider answers but does not know a service (an unknown
/// project) fails the step: its rules could not be checked.
#[derive(Debug, Clone)]
pub struct PlatformRulesStep {
    registry: ProviderRegistry,
}

impl PlatformRulesStep {
    /// The step, reading other environments' providers from `registry`.
    pub fn new(registry: ProviderRegistry) -> Self {
        PlatformRulesStep { registry }
    }

    /// The step's name.
    pub const NAME: &'static str = "drift";
}

#[async_trait]
impl Step for PlatformRulesStep {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn run(&self, ctx: &mut RunContext) -> staging_core::Result<StepReport> {
        let spec = ctx.spec.clone();
        let me = ctx.environment.clone();
        let mut others: Vec<String> = spec
            .spec
            .vars
            .values()
            .flat_map(|v| [v.rules.same_as.clone(), v.rules.differs_from.clone()])
            .flatten()
            .filter(|o| *o != me && spec.spec.environments.contains_key(o))
            .collect();
        others.sort();
        others.dedup();
        if others.is_empty() {
            return Ok(StepReport::skipped(
                Self::NAME,
                "no variable has a rule against another environment",
            ));
        }
        let fingerprints = Fingerprinter::for_project(&spec.spec.project.name);
        let mine = PlatformSide {
            environment: me.clone(),
            unreadable: None,
            services: BTreeMap::new(),
        };
        let mut findings = vec![];
        for other in others {
            let theirs = read_platform(&spec, &other, &self.registry).await;
            if let Some(why) = &theirs.unreadable {
                findings.push(Finding::skipped(
                    format!("{other} (platform)"),
                    &ctx.redactor.redact(why),
                ));
                continue;
            }
            let (rows, broken) = compare_platforms(
                &spec,
                (&mine, &ctx.vars),
                (&theirs, &BTreeMap::new()),
                &fingerprints,
            );
            for b in &broken {
                findings.push(Finding::failed(
                    &b.subject,
                    format!("{}: {}", b.rule, ctx.redactor.redact(&b.message)),
                ));
            }
            let checked = rows.iter().filter(|r| r.expected.is_some()).count();
            // Its provider was reached, yet a service was not found there (an unknown
            // project, a wrong id): the rules against it were not checked, which is no pass.
            let unfound: Vec<(&String, &PlatformService)> = theirs
                .services
                .iter()
                .filter(|(_, s)| s.id.is_none())
                .collect();
            for (service, s) in &unfound {
                findings.push(Finding::failed(
                    format!("{other} {service} (platform)"),
                    format!(
                        "could not read {other}'s platform, so its rules were not checked: {}",
                        ctx.redactor
                            .redact(s.note.as_deref().unwrap_or("not found"))
                    ),
                ));
            }
            if broken.is_empty() && unfound.is_empty() {
                findings.push(Finding::ok(
                    format!("{other} (platform)"),
                    format!("{checked} rule(s) against what {other}'s platform holds hold"),
                ));
            }
            for (service, s) in &theirs.services {
                if s.id.is_none() {
                    continue;
                }
                if let Some(note) = &s.note {
                    findings.push(Finding::skipped(
                        format!("{other} {service} (platform)"),
                        &ctx.redactor.redact(note),
                    ));
                }
            }
        }
        let failed = findings.iter().filter(|f| !f.ok).count();
        let summary = if failed == 0 {
            "no rule is broken against what the other environments' platforms hold".to_owned()
        } else if findings
            .iter()
            .any(|f| !f.ok && f.message.starts_with("could not read"))
        {
            format!(
                "{failed} check(s) failed: another environment's platform could not be read, its rules are unchecked: nothing was deployed"
            )
        } else {
            format!(
                "{failed} rule(s) broken against another environment's platform: nothing was deployed"
            )
        };
        Ok(StepReport::from_findings(Self::NAME, summary, findings))
    }
}
