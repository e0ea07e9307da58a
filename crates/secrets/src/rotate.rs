//! `staging secrets rotate NAME --env ENV`: a new value from the OS CSPRNG, written to the
//! store and the provider; only its fingerprint is shown.

use rand::rngs::OsRng;
use rand::{Rng, TryRngCore};
use secrecy::SecretString;
use serde::Serialize;
use staging_core::redact::Redactor;
use staging_core::spec::{Alphabet, LoadedSpec, Rules, ValueKind};
use staging_core::{DynProvider, Error, ProviderExt, Result, SecretBackends, WriteBoundary};

use crate::fingerprint::Fingerprinter;
use crate::resolve::{Origin, origin, undeclared};
use crate::rules::{Severity, check_value, minimums};

/// The length of a generated value when the rules give none (and `min_length` is smaller).
pub const DEFAULT_GENERATED_LENGTH: usize = 64;

/// The result of `staging secrets rotate`. Holds the new value's fingerprint, never the
/// value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RotateReport {
    /// The project.
    pub project: String,
    /// The environment.
    pub environment: String,
    /// The variable rotated.
    pub var: String,
    /// Fingerprint of the new value; `-` in a dry run (the value is generated when applied).
    pub fingerprint: String,
    /// Fingerprint of the value the store holds before the rotation (`None`: it has none).
    pub previous_fingerprint: Option<String>,
    /// Whether this only shows what would change: nothing was generated for use or written.
    pub dry_run: bool,
    /// The store the new value was written to.
    pub store: String,
    /// The services whose provider env var was set (in a dry run: would be set).
    pub provider_services: Vec<String>,
    /// Services whose provider env var could not be set (redacted reasons).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub provider_errors: Vec<String>,
    /// What the rotation breaks, and what to do next.
    pub warnings: Vec<String>,
    /// Whether the store and every provider write succeeded.
    pub ok: bool,
}

fn alphabet_chars(alphabet: Alphabet) -> &'static [u8] {
    match alphabet {
        Alphabet::Hex => b"0123456789abcdef",
        Alphabet::Alphanumeric => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        Alphabet::Base64url => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
    }
}

/// How many characters rotation generates for these rules.
pub fn generated_length(rules: &Rules) -> usize {
    let (min_length, _) = minimums(rules);
    rules
        .length
        .unwrap_or_else(|| min_length.unwrap_or(0).max(DEFAULT_GENERATED_LENGTH))
}

/// A new value for `rules` from the OS CSPRNG: `length` characters drawn uniformly from
/// `alphabet` (defaults: [`generated_length`], alphanumeric).
pub fn generate(rules: &Rules) -> Result<SecretString> {
    match rules.kind {
        None | Some(ValueKind::String) | Some(ValueKind::SigningKey) => {}
        Some(kind) => {
            return Err(Error::config(format!(
                "a {kind:?} value cannot be generated; only keys and strings can be rotated"
            )));
        }
    }
    let length = generated_length(rules);
    if length == 0 {
        return Err(Error::config("rules.length is 0: nothing to generate"));
    }
    let chars = alphabet_chars(rules.alphabet.unwrap_or(Alphabet::Alphanumeric));
    let mut rng = OsRng.unwrap_err();
    let value: String = (0..length)
        .map(|_| chars[rng.random_range(0..chars.len())] as char)
        .collect();
    Ok(SecretString::from(value))
}

/// Rotate `name` in `environment`: generate a value that passes its rules, write it to the
/// variable's store (which must be writable; a file store is rewritten under its lock, so
/// concurrent rotations of different keys both land) and, when `provider` is given, to the
/// env var of every service that receives it, each through a target of `boundary` (the
/// run's isolation check), all issued before the store is written.
pub async fn rotate(
    backends: &SecretBackends,
    spec: &LoadedSpec,
    environment: &str,
    name: &str,
    provider: Option<(&DynProvider, &WriteBoundary)>,
) -> Result<RotateReport> {
    rotate_with(
        backends,
        spec,
        environment,
        name,
        provider.map(|p| p.0),
        provider.map(|p| p.1),
        false,
    )
    .await
}

/// What [`rotate`] would change, by fingerprint: the store's current value's fingerprint,
/// the store and the services that would get a new value. Runs every check `rotate` runs
/// (a generated value must pass the rules) but writes nothing.
pub async fn rotate_dry_run(
    backends: &SecretBackends,
    spec: &LoadedSpec,
    environment: &str,
    name: &str,
    provider: Option<&DynProvider>,
) -> Result<RotateReport> {
    rotate_with(backends, spec, environment, name, provider, None, true).await
}

async fn rotate_with(
    backends: &SecretBackends,
    spec: &LoadedSpec,
    environment: &str,
    name: &str,
    provider: Option<&DynProvider>,
    boundary: Option<&WriteBoundary>,
    dry_run: bool,
) -> Result<RotateReport> {
    let var = spec
        .spec
        .vars
        .get(name)
        .ok_or_else(|| undeclared(spec, name))?;
    let env = spec.spec.environment(environment)?;
    let this = staging_core::secretness::Origin::Var {
        spec: &spec.spec,
        environment,
        name,
    };
    let secret = staging_core::secretness::is_secret(this);
    if !secret {
        return Err(Error::config(format!(
            "`{name}` is not a secret: its value is written in the spec, change it there"
        )));
    }
    if let Some(other) = var.rules.same_as.as_deref().filter(|o| *o != environment) {
        return Err(Error::config(format!(
            "`{name}` is declared equal to {other}'s value (`same_as`); rotating it in {environment} alone would break that — rotate it where both environments read it"
        )));
    }
    let location = match origin(backends, spec, environment, name, var)? {
        Origin::Store(loc) => loc,
        Origin::Plain(_) => {
            unreachable!("a secret never has a plain value; the spec loader refuses it")
        }
        Origin::Nowhere => {
            return Err(Error::config(format!(
                "`{name}` has no source in {environment} and the environment has no `secrets` store: there is nowhere to write a new value"
            )));
        }
    };
    if !location.store.writable() {
        return Err(Error::not_supported(
            location.description.clone(),
            format!(
                "writing `{name}` (rotate it in that store, then run `staging secrets sync --env {environment} --apply`)"
            ),
        ));
    }
    let (value, problems) = {
        let mut attempt = 0;
        loop {
            let value = generate(&var.rules)?;
            let problems: Vec<String> =
                check_value(name, var, &value, environment, env.protected, false, secret)
                    .into_iter()
                    .filter(|p| p.severity == Severity::Error)
                    .map(|p| p.message)
                    .collect();
            attempt += 1;
            if problems.is_empty() || attempt >= 5 {
                break (value, problems);
            }
        }
    };
    if !problems.is_empty() {
        return Err(Error::config(format!(
            "a generated value for `{name}` does not pass its own rules (check `length` and `alphabet` against the other rules): {}",
            problems.join("; ")
        )));
    }
    let fingerprints = Fingerprinter::for_project(&spec.spec.project.name);
    let previous = location.store.get(&location.key).await?;
    if let Some(previous) = &previous {
        Redactor::global().register_if_secret(this, previous);
    }
    let previous_fingerprint = previous.as_ref().map(|v| fingerprints.display(v));
    if dry_run {
        let receiving = spec
            .spec
            .services
            .keys()
            .filter(|s| var.services.as_ref().is_none_or(|v| v.contains(s)))
            .cloned()
            .collect();
        return Ok(RotateReport {
            project: spec.spec.project.name.clone(),
            environment: environment.to_owned(),
            var: name.to_owned(),
            fingerprint: "-".to_owned(),
            previous_fingerprint,
            dry_run: true,
            store: location.description,
            provider_services: if provider.is_some() {
                receiving
            } else {
                vec![]
            },
            provider_errors: vec![],
            warnings: vec![],
            ok: true,
        });
    }
    // Every service's write target before anything is written: a service another
    // environment owns refuses the rotation, not its second half.
    let mut targets = vec![];
    if let Some(provider) = provider {
        let boundary = boundary.ok_or_else(|| {
            Error::config(format!(
                "no isolation check ran for `{environment}`: the services' variables are not written"
            ))
        })?;
        for service in spec.spec.services.keys() {
            if var
                .services
                .as_ref()
                .is_some_and(|s| !s.iter().any(|s| s == service))
            {
                continue;
            }
            let target = match provider.locate(environment, service).await {
                Ok(handle) => Ok(boundary.target(handle)?),
                Err(e) => Err(e),
            };
            targets.push((service.clone(), target));
        }
    }
    Redactor::global().register_if_secret(this, &value);
    location.store.put(&location.key, &value).await?;

    let mut provider_services = vec![];
    let mut provider_errors = vec![];
    if let Some(provider) = provider {
        for (service, target) in targets {
            let result = match target {
                Ok(target) => provider.set_env_var(&target, name, &value).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => provider_services.push(service),
                Err(e) => {
                    provider_errors.push(format!("{service}: {}", crate::store::redact_error(&e)))
                }
            }
        }
    }

    let mut warnings = vec![];
    if var.rules.kind == Some(ValueKind::SigningKey) {
        warnings.push(format!(
            "every session and token signed with the old `{name}` is now invalid once services use the new one: users are logged out, password-reset and confirmation links and signed cookies stop working"
        ));
    } else {
        warnings.push(format!(
            "anything still holding the old `{name}` (other services, CI, clients, webhooks configured elsewhere) stops working until it gets the new value"
        ));
    }
    warnings.push(format!(
        "running services keep the old value until they restart: deploy {environment} (`staging up --env {environment}`) to use the new one"
    ));
    if provider.is_none() {
        warnings.push(format!(
            "the provider was not updated: run `staging secrets sync --env {environment} --apply`"
        ));
    }
    if !provider_errors.is_empty() {
        warnings.push(format!(
            "{} holds the new value but some services were not updated: run `staging secrets sync --env {environment} --apply`",
            location.description
        ));
    }
    Ok(RotateReport {
        project: spec.spec.project.name.clone(),
        environment: environment.to_owned(),
        var: name.to_owned(),
        fingerprint: fingerprints.display(&value),
        previous_fingerprint,
        dry_run: false,
        store: location.description,
        ok: provider_errors.is_empty(),
        provider_services,
        provider_errors,
        warnings,
    })
}
