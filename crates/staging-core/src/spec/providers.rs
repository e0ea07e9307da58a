//! A service on another provider than its environment's (`[services.web] provider =
//! "netlify"`), and the narrowed spec each provider's factory reads.
//!
//! An environment names one `provider`; a service may name its own, which it runs on in
//! every environment. That provider's settings for an environment — what `settings` is for
//! the environment's own provider — are `[environments.ENV.provider_settings.PROVIDER]`.
//! No provider factory learns about this: each is handed a *narrowed* spec
//! ([`LoadedSpec::for_provider`]) in which every service is its own and every environment
//! runs on it, so every factory keeps reading `environment_settings`,
//! `service_settings` and `creations_asked` as it always did, with errors at their place.

use std::collections::BTreeSet;

use super::LoadedSpec;
use crate::error::Result;

impl LoadedSpec {
    /// The provider service `service` runs on in `environment`: its own `provider`, else the
    /// environment's. `None` when either is not declared.
    pub fn service_provider(&self, service: &str, environment: &str) -> Option<&str> {
        let s = self.spec.services.get(service)?;
        match &s.provider {
            Some(p) => Some(p.as_str()),
            None => Some(self.spec.environments.get(environment)?.provider.as_str()),
        }
    }

    /// The providers `environment`'s services run on: the environment's own first (also
    /// when no service is on it: its datastores and secret store are its), then each other
    /// one a service names, by name.
    pub fn providers_used(&self, environment: &str) -> Result<Vec<String>> {
        let own = self.spec.environment(environment)?.provider.clone();
        let others: BTreeSet<&str> = self
            .spec
            .services
            .values()
            .filter_map(|s| s.provider.as_deref())
            .filter(|p| *p != own)
            .collect();
        Ok(std::iter::once(own.clone())
            .chain(others.into_iter().map(str::to_owned))
            .collect())
    }

    /// Whether every service of `environment` runs on the environment's own provider (the
    /// spec needs no narrowing there).
    pub fn single_provider(&self, environment: &str) -> Result<bool> {
        Ok(self.providers_used(environment)?.len() == 1)
    }

    /// The spec as the factory of `provider` reads it for `environment`: only the services
    /// that run on `provider` there; every environment on `provider`, its `settings` being
    /// what it has for `provider` (its own `settings` when `provider` is its own, else its
    /// `provider_settings.PROVIDER`, else none), with the places of their keys kept, so an
    /// error still points at the key as written; the datastores only when `provider` is
    /// `environment`'s own (datastores belong to the environment's provider).
    pub fn for_provider(&self, environment: &str, provider: &str) -> LoadedSpec {
        let mut out = self.clone();
        let own = self
            .spec
            .environments
            .get(environment)
            .map(|e| e.provider.clone())
            .unwrap_or_default();
        out.spec.services.retain(|_, s| match &s.provider {
            Some(p) => p == provider,
            None => own == provider,
        });
        if own != provider {
            out.spec.datastores.clear();
        }
        for (name, env) in out.spec.environments.iter_mut() {
            if env.provider == provider {
                continue;
            }
            let key = format!("environments.{name}.settings");
            let from = format!("environments.{name}.provider_settings.{provider}");
            env.settings = env
                .provider_settings
                .get(provider)
                .cloned()
                .unwrap_or_default();
            env.provider = provider.to_owned();
            match self.settings.get(&from) {
                Some(tree) => out.settings.insert(key.clone(), tree.clone()),
                None => out.settings.remove(&key),
            };
            match self.spans.get(&from) {
                Some(span) => out.spans.insert(key, span.clone()),
                None => out.spans.remove(&key),
            };
        }
        out
    }

    /// The rules of `provider` on services and `provider_settings` on environments, each
    /// refused at its place: a service's provider is known; a `provider_settings.X` table
    /// names a provider some service runs on that is not the environment's own.
    pub(super) fn check_service_providers(&self, known_providers: &[&str]) -> Result<()> {
        for (svc, s) in &self.spec.services {
            if let Some(p) = &s.provider
                && !known_providers.contains(&p.as_str())
            {
                return Err(self.error_at(
                    &format!("services.{svc}.provider"),
                    format!(
                        "unknown provider `{p}` for service `{svc}`; expected one of: {}",
                        known_providers.join(", ")
                    ),
                ));
            }
        }
        let named: BTreeSet<&str> = self
            .spec
            .services
            .values()
            .filter_map(|s| s.provider.as_deref())
            .collect();
        for (env, e) in &self.spec.environments {
            for p in e.provider_settings.keys() {
                let at = format!("environments.{env}.provider_settings.{p}");
                if *p == e.provider {
                    return Err(self.error_at(
                        &at,
                        format!(
                            "`{p}` is the provider of `{env}` itself: its settings go in `[environments.{env}.settings]`"
                        ),
                    ));
                }
                if !named.contains(p.as_str()) {
                    return Err(self.error_at(
                        &at,
                        format!(
                            "settings for provider `{p}`, but no service runs on it (give a service `provider = \"{p}\"`, or remove this table){}",
                            if named.is_empty() {
                                String::new()
                            } else {
                                format!(
                                    "; services run on: {}",
                                    named.iter().copied().collect::<Vec<_>>().join(", ")
                                )
                            }
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}
