//! `staging secrets diff A B`: which variables each environment has, whether their values
//! are equal (by keyed tag, never printed), and the rules either side breaks.

use serde::Serialize;
use staging_core::spec::LoadedSpec;
use staging_core::{Result, SecretBackends};

use crate::check::{CheckReport, check_resolved};
use crate::fingerprint::Fingerprinter;
use crate::resolve::resolve_vars;
use crate::rules::Violation;

/// One variable compared between two environments. Never holds a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffRow {
    /// The variable.
    pub name: String,
    /// Whether it is a secret (in either environment).
    pub secret: bool,
    /// Whether it has a value in the first environment.
    pub in_a: bool,
    /// Whether it has a value in the second environment.
    pub in_b: bool,
    /// Whether the two values are equal; `None` unless both have one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equal: Option<bool>,
    /// Fingerprint of the first environment's value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint_a: Option<String>,
    /// Fingerprint of the second environment's value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint_b: Option<String>,
    /// What the rules expect of the pair: `differ` or `same`, when declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<&'static str>,
    /// Rules the first environment's value breaks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems_a: Vec<Violation>,
    /// Rules the second environment's value breaks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems_b: Vec<Violation>,
}

/// The result of `staging secrets diff A B`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffReport {
    /// The project.
    pub project: String,
    /// The first environment.
    pub a: String,
    /// The second environment.
    pub b: String,
    /// Whether neither side breaks a rule.
    pub ok: bool,
    /// Variables with a value in `a` only.
    pub only_in_a: Vec<String>,
    /// Variables with a value in `b` only.
    pub only_in_b: Vec<String>,
    /// Every declared variable.
    pub vars: Vec<DiffRow>,
}

impl DiffReport {
    /// 0 when neither side breaks a rule, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        if self.ok { 0 } else { 1 }
    }
}

/// Compare the variables of environments `a` and `b`.
pub async fn diff(
    backends: &SecretBackends,
    spec: &LoadedSpec,
    a: &str,
    b: &str,
    commit: Option<&str>,
) -> Result<DiffReport> {
    let fingerprints = Fingerprinter::for_project(&spec.spec.project.name);
    let ra = resolve_vars(backends, spec, a, commit).await?;
    let rb = resolve_vars(backends, spec, b, commit).await?;
    let ca = check_resolved(backends, spec, &ra, &fingerprints, commit).await?;
    let cb = check_resolved(backends, spec, &rb, &fingerprints, commit).await?;
    let problems = |c: &CheckReport, name: &str| {
        c.vars
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.problems.clone())
            .unwrap_or_default()
    };
    let mut rows = vec![];
    let (mut only_in_a, mut only_in_b) = (vec![], vec![]);
    for (name, var) in &spec.spec.vars {
        let (va, vb) = (ra.values.get(name), rb.values.get(name));
        match (va.is_some(), vb.is_some()) {
            (true, false) => only_in_a.push(name.clone()),
            (false, true) => only_in_b.push(name.clone()),
            _ => {}
        }
        let expected = if var.rules.differs_from.as_deref() == Some(b)
            || var.rules.differs_from.as_deref() == Some(a)
        {
            Some("differ")
        } else if var.rules.same_as.as_deref() == Some(b) || var.rules.same_as.as_deref() == Some(a)
        {
            Some("same")
        } else {
            None
        };
        rows.push(DiffRow {
            name: name.clone(),
            secret: ra.is_secret(name) || rb.is_secret(name),
            in_a: va.is_some(),
            in_b: vb.is_some(),
            equal: va.zip(vb).map(|(x, y)| fingerprints.same(x, y)),
            fingerprint_a: va.map(|v| fingerprints.display(v)),
            fingerprint_b: vb.map(|v| fingerprints.display(v)),
            expected,
            problems_a: problems(&ca, name),
            problems_b: problems(&cb, name),
        });
    }
    Ok(DiffReport {
        project: spec.spec.project.name.clone(),
        a: a.to_owned(),
        b: b.to_owned(),
        ok: ca.ok && cb.ok,
        only_in_a,
        only_in_b,
        vars: rows,
    })
}
