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
//! staging job often cannot read production.

use std::collections::BTreeMap;

use async_trait::async_trait;
use secrecy::SecretString;
use serde::Serialize;
use staging_core::pipeline::{Finding, RunContext, Step, StepReport, service_receives};
use staging_core::spec::LoadedSpec;
use staging_core::{Capability, ProviderExt, ProviderRegistry, Redactor, secretness};
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
/// live commit, variables (where the provider can read them). Reads only; every value
/// [`staging_core::secretness`] decides is a secret is registered with the redactor.
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
                            // Secret where the spec makes the variable one in that
                            // environment; a variable the spec declares plain, and the
                            // platform's own settings, are plain. Providers return no value
                            // the platform marks secret (Netlify `is_secret`, Vercel
                            // `sensitive`), so none read here is marked.
                            for (key, v) in &vars {
                                Redactor::global().register_if_secret(
                                    secretness::Origin::Platform {
                                        spec: &spec.spec,
                                        environment,
                                        name: key,
                                        marked_secret: false,
                                    },
                                    v,
                                );
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

/// One side's value of `var` on `service`: the platform's when it was read and holds it,
/// else the spec's (the value the next deploy sets; what `up`'s drift step compares too).
fn value_of<'a>(
    side: &'a PlatformSide,
    spec_values: &'a BTreeMap<String, SecretString>,
    service: &str,
    var: &str,
) -> (Option<&'a SecretString>, ValueSide) {
    match side.value(service, var) {
        Some(v) => (Some(v), ValueSide::Platform),
        None => (spec_values.get(var), ValueSide::Spec),
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

/// The `same_as` / `differs_from` rules of the values `environment` is about to hold
/// against what each other environment those rules name holds on its platform: what
/// `up`'s drift step ([`PlatformRulesStep`]) and `secrets sync --apply`
/// ([`sync_checked`]) both judge, so the two agree on the same data.
#[derive(Debug, Clone, Default)]
pub struct PlatformRules {
    /// The rules broken.
    pub broken: Vec<BrokenRule>,
    /// For each other environment read: how many rules were checked against it.
    pub checked: Vec<(String, usize)>,
    /// What could not be read (`(subject, why)`, redacted): an environment whose provider
    /// cannot be built here, a service not found.
    pub notes: Vec<(String, String)>,
    /// Services of another environment whose provider was reached but which it did not
    /// find (an unknown project, a wrong id) (`(subject, why)`, redacted): the rules against
    /// them were not checked, which is no pass.
    pub unread: Vec<(String, String)>,
}

/// Judge [`PlatformRules`] for `environment`, whose values are `values` (the spec's, as the
/// next deploy or sync sets them), reading the other environments' platforms through
/// `registry`. Reads only.
pub async fn check_against_platforms(
    spec: &LoadedSpec,
    environment: &str,
    values: &BTreeMap<String, SecretString>,
    registry: &ProviderRegistry,
) -> PlatformRules {
    let mut others: Vec<String> = spec
        .spec
        .vars
        .values()
        .flat_map(|v| [v.rules.same_as.clone(), v.rules.differs_from.clone()])
        .flatten()
        .filter(|o| *o != environment && spec.spec.environments.contains_key(o))
        .collect();
    others.sort();
    others.dedup();
    let fingerprints = Fingerprinter::for_project(&spec.spec.project.name);
    let mine = PlatformSide {
        environment: environment.to_owned(),
        unreadable: None,
        services: BTreeMap::new(),
    };
    let redact = |s: &str| Redactor::global().redact(s).into_owned();
    let mut out = PlatformRules::default();
    for other in others {
        let theirs = read_platform(spec, &other, registry).await;
        if let Some(why) = &theirs.unreadable {
            out.notes.push((format!("{other} (platform)"), redact(why)));
            continue;
        }
        let (rows, broken) = compare_platforms(
            spec,
            (&mine, values),
            (&theirs, &BTreeMap::new()),
            &fingerprints,
        );
        out.checked.push((
            other.clone(),
            rows.iter().filter(|r| r.expected.is_some()).count(),
        ));
        out.broken.extend(broken);
        for (service, s) in &theirs.services {
            if s.id.is_none() {
                out.unread.push((
                    format!("{other} {service} (platform)"),
                    format!(
                        "could not read {other}'s platform, so its rules were not checked: {}",
                        redact(s.note.as_deref().unwrap_or("not found"))
                    ),
                ));
                continue;
            }
            if let Some(note) = &s.note {
                out.notes
                    .push((format!("{other} {service} (platform)"), redact(note)));
            }
        }
    }
    out
}

/// `staging secrets sync`: [`staging_secrets::sync`], refusing `--apply` (unless violations
/// are allowed) when a value it would write breaks a `same_as` / `differs_from` rule
/// against what the other environment's platform holds (staging about to receive the
/// signing key production's platform holds): checked before the first write, nothing is
/// written, the plan is still shown.
pub async fn sync_checked(
    backends: &staging_core::SecretBackends,
    spec: &LoadedSpec,
    environment: &str,
    provider: &staging_core::DynProvider,
    options: staging_secrets::SyncOptions,
    registry: &ProviderRegistry,
    boundary: Option<&staging_core::WriteBoundary>,
) -> staging_core::Result<staging_secrets::SyncReport> {
    if options.apply && !options.allow_violations {
        let resolved = staging_secrets::resolve_vars(backends, spec, environment, None).await?;
        let rules = check_against_platforms(spec, environment, &resolved.values, registry).await;
        if !rules.broken.is_empty() {
            let plan = staging_secrets::SyncOptions {
                apply: false,
                ..options
            };
            let mut report =
                staging_secrets::sync(backends, spec, environment, provider, plan, None, boundary)
                    .await?;
            let why: Vec<String> = rules
                .broken
                .iter()
                .map(|b| format!("{}: {}", b.rule, b.message))
                .collect();
            report.refused = Some(
                Redactor::global()
                    .redact(&format!("{}; nothing was pushed", why.join("; ")))
                    .into_owned(),
            );
            report.ok = false;
            return Ok(report);
        }
    }
    staging_secrets::sync(
        backends,
        spec,
        environment,
        provider,
        options,
        None,
        boundary,
    )
    .await
}

/// Before anything is deployed: the values this run is about to set (the spec's, in
/// [`RunContext::vars`]) against what each other environment named by a `same_as` /
/// `differs_from` rule holds on its platform. A broken rule fails the step, so the deploy
/// does not run; an environment that cannot be read here is noted.
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
        let names_other = spec.spec.vars.values().any(|v| {
            [&v.rules.same_as, &v.rules.differs_from]
                .into_iter()
                .flatten()
                .any(|o| *o != ctx.environment && spec.spec.environments.contains_key(o))
        });
        if !names_other {
            return Ok(StepReport::skipped(
                Self::NAME,
                "no variable has a rule against another environment",
            ));
        }
        let rules =
            check_against_platforms(&spec, &ctx.environment, &ctx.vars, &self.registry).await;
        let mut findings = vec![];
        for b in &rules.broken {
            findings.push(Finding::failed(
                &b.subject,
                format!("{}: {}", b.rule, ctx.redactor.redact(&b.message)),
            ));
        }
        for (subject, why) in &rules.unread {
            findings.push(Finding::failed(subject, ctx.redactor.redact(why)));
        }
        if rules.broken.is_empty() && rules.unread.is_empty() {
            for (other, checked) in &rules.checked {
                findings.push(Finding::ok(
                    format!("{other} (platform)"),
                    format!("{checked} rule(s) against what {other}'s platform holds hold"),
                ));
            }
        }
        for (subject, why) in &rules.notes {
            findings.push(Finding::skipped(subject, &ctx.redactor.redact(why)));
        }
        let failed = findings.iter().filter(|f| !f.ok).count();
        let summary = if failed == 0 {
            "no rule is broken against what the other environments' platforms hold".to_owned()
        } else if !rules.unread.is_empty() {
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
