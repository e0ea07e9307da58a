//! `staging doctor`: for a failed run, each failure with its likely cause and remedy.
//!
//! A small table of patterns learnt from operators' runbooks. Each matches on the step and
//! on words of the failure's text (name, message, expected, observed, the step's summary),
//! lower-cased, so that rewording a message elsewhere loses at most one pattern's match
//! rather than breaking the command. A failure no pattern knows still gets a line: the
//! step's generic cause and remedy.

use serde::Serialize;
use staging_core::pipeline::{Evidence, RunReport};

/// One known failure pattern.
struct Pattern {
    /// A stable id (`signing_key_missing`).
    id: &'static str,
    /// The steps it applies to (empty: any).
    steps: &'static [&'static str],
    /// Each of these must appear in the text.
    all: &'static [&'static str],
    /// At least one of these must appear (empty: no condition).
    any: &'static [&'static str],
    /// The likely cause; `{name}` is the finding's name.
    cause: &'static str,
    /// What to do; `{name}` is the finding's name, `{env}` the environment.
    remedy: &'static str,
}

const PATTERNS: &[Pattern] = &[
    Pattern {
        id: "signing_key_missing",
        steps: &["secrets"],
        all: &["signing key"],
        any: &["no value", "missing"],
        cause: "{name} is not set: the app generates a new key each restart and logs everyone out",
        remedy: "set it once (`staging secrets rotate {name} --env {env}` generates a strong one), then rotate deliberately",
    },
    Pattern {
        id: "placeholder",
        steps: &["secrets"],
        all: &["placeholder"],
        any: &[],
        cause: "{name} still holds a placeholder (`PLACEHOLDER-REPLACE-ME`, `changeme`...): whatever uses it fails, or accepts anything",
        remedy: "set the real value in {env}'s secret store",
    },
    Pattern {
        id: "trailing_whitespace",
        steps: &["secrets"],
        all: &[],
        any: &["whitespace", "newline"],
        cause: "{name} has a trailing newline or surrounding spaces, usually from `echo` or a paste: the other side refuses the key",
        remedy: "set it again without it (`printf %s \"$VALUE\"`, not `echo`)",
    },
    Pattern {
        id: "seed_flag_on",
        steps: &["secrets", "wait", "migrate"],
        all: &[],
        any: &[
            "one-time flag",
            "reseed",
            "seed flag",
            "run_production_seed",
        ],
        cause: "a one-time seed flag ({name}) is left on: every boot reseeds, the health check times out and the platform restarts the service in a loop",
        remedy: "set it to false once the first seed ran; seed from a one-off job, not at boot",
    },
    Pattern {
        id: "shared_with_production",
        steps: &["secrets"],
        all: &[],
        any: &["has the same", "must differ", "same value as"],
        cause: "{name} has the same value as in the environment it must differ from: a leak of staging exposes production",
        remedy: "give {env} its own value (`staging secrets rotate {name} --env {env}`)",
    },
    Pattern {
        id: "signing_key_weak",
        steps: &["secrets"],
        all: &[],
        any: &["min_length", "shorter than", "bits of estimated entropy"],
        cause: "{name} is too short or too guessable: tokens it signs can be forged offline, and some frameworks refuse it and fall back to a random key per start (everyone logged out at each restart)",
        remedy: "replace it with a generated key (`staging secrets rotate {name} --env {env}`), once; every session signed with the old one ends",
    },
    Pattern {
        id: "secret_source_unreadable",
        steps: &["secrets"],
        all: &[],
        any: &[
            "unreadable",
            "cannot read",
            "not signed in",
            "command failed",
        ],
        cause: "the secret store behind {name} could not be read (a missing file, a CLI like `op` not signed in, no permission)",
        remedy: "check the source with `staging secrets check --env {env}` and the store's own login",
    },
    Pattern {
        id: "required_missing",
        steps: &["secrets"],
        all: &[],
        any: &["missing", "required but has no value"],
        cause: "{name} is required and has no value in {env}: the service would start without it",
        remedy: "set it in {env}'s secret store (`staging secrets check --env {env}` shows where it is looked for)",
    },
    Pattern {
        id: "live_commit_mismatch",
        steps: &["verify"],
        all: &[],
        any: &["live commit", "another commit", "cached"],
        cause: "{name} serves another commit than the one deployed: the platform served a cached image or build cache, or auto-deploys another branch",
        remedy: "clear the build cache and redeploy the commit; check the image tag is the commit (not `latest`) and that auto-deploy follows the right branch",
    },
    Pattern {
        id: "replaced_during_smoke",
        steps: &["reverify"],
        all: &[],
        any: &["another deploy replaced", "no longer live"],
        cause: "another deploy replaced {name}'s during smoke (another pipeline without the lease, a deploy from the dashboard, or the platform's auto-deploy on push), so the probes may have run against another commit",
        remedy: "find who started the deploy now live (named above); turn off the platform's auto-deploy for this environment and let every pipeline go through `staging` (its lease serializes them), then run again",
    },
    Pattern {
        id: "health_reports_other_commit",
        steps: &["smoke"],
        all: &["commit"],
        any: &["$.commit", "version"],
        cause: "the health endpoint reports another commit: an old instance or a cached image answers",
        remedy: "check that the deploy replaced every instance and the image was rebuilt for this commit (clear the build cache)",
    },
    Pattern {
        id: "deploy_timeout",
        steps: &["wait"],
        all: &[],
        any: &["timed out", "not live within", "timeout"],
        cause: "{name} never became healthy within the deploy timeout: the health check path answers non-2xx, the app listens on another port or on 127.0.0.1, or it is slow or crashing at boot",
        remedy: "check `health_path` answers 2xx, that the app binds 0.0.0.0:$PORT, and read the boot logs shown above; raise `deploy_timeout` only if boot is just slow",
    },
    Pattern {
        id: "deploy_failed",
        steps: &["wait", "deploy"],
        all: &[],
        any: &["build failed", "deploy failed", "exited", "crash"],
        cause: "the deploy of {name} failed: a build error or the process exiting at start",
        remedy: "read the build and boot logs (the last lines are shown above); reproduce with the same commit locally",
    },
    Pattern {
        id: "migrations_missing_on_staging",
        steps: &["migrate"],
        all: &[],
        any: &[
            "not applied on",
            "already has versions",
            "was migrated first",
        ],
        cause: "migrations would reach the protected environment before the environment that promotes to it ran them",
        remedy: "apply them to staging first (`staging migrate apply --env staging`), run staging, then promote",
    },
    Pattern {
        id: "transaction_aborted",
        steps: &["migrate"],
        all: &[],
        any: &["current transaction is aborted", "transaction is aborted"],
        cause: "an earlier statement of the migration failed (a TRUNCATE on a referenced table, a lock) and aborted the whole transaction; the reported statement is not the culprit",
        remedy: "find the first error in the migration's output, fix that statement (TRUNCATE ... CASCADE, or split the migration), then apply again",
    },
    Pattern {
        id: "migration_modified",
        steps: &["migrate"],
        all: &[],
        any: &["modified", "checksum"],
        cause: "an applied migration file was edited afterwards: the database no longer matches the files",
        remedy: "restore the file as applied and add a new migration for the change",
    },
    Pattern {
        id: "redis_eviction_policy",
        steps: &["smoke"],
        all: &["maxmemory-policy"],
        any: &[],
        cause: "Redis may evict keys under memory pressure ({name}): queued jobs and sessions vanish silently",
        remedy: "set `maxmemory-policy noeviction` (Render Key Value setting, ElastiCache parameter group, or `CONFIG SET`)",
    },
    Pattern {
        id: "tls_expiry",
        steps: &["smoke"],
        all: &[],
        any: &["expired", "days left"],
        cause: "the certificate of {name} expired or expires soon: renewal is not happening (a removed DNS validation record, a manual certificate)",
        remedy: "renew it; for ACM or the platform's certificates restore the DNS validation CNAME so renewal is automatic",
    },
    Pattern {
        id: "tls_wrong_host",
        steps: &["smoke"],
        all: &[],
        any: &[
            "not valid for",
            "hostname",
            "unknown ca",
            "unknownissuer",
            "self-signed",
        ],
        cause: "the certificate served for {name} is not valid for the host (or not from a trusted CA): the custom domain is not attached to the service yet",
        remedy: "attach the custom domain on the platform and wait for its certificate to be issued",
    },
    Pattern {
        id: "ses_sandbox",
        steps: &["smoke"],
        all: &[],
        any: &["sandbox", "production access"],
        cause: "SES is still in the sandbox: mail goes only to verified addresses",
        remedy: "request production access for SES in this region",
    },
    Pattern {
        id: "ses_identity_unverified",
        steps: &["smoke"],
        all: &[],
        any: &["not verified", "verification", "dkim"],
        cause: "the sending identity is not verified: SES refuses mail from it",
        remedy: "verify the domain (publish the DKIM records) in this region",
    },
    Pattern {
        id: "dns_not_pointing",
        steps: &["smoke"],
        all: &["dns"],
        any: &[],
        cause: "the DNS record of {name} does not point at the platform",
        remedy: "set the record the platform asks for (a CNAME to its host); allow for the TTL to pass",
    },
    Pattern {
        id: "connection_refused",
        steps: &[],
        all: &[],
        any: &["connection refused", "could not connect", "cannot connect"],
        cause: "nothing answers at the address: the service is down, on another port, or a firewall blocks the runner",
        remedy: "check the URL and port, that the service is up, and that the network allows this runner",
    },
    Pattern {
        id: "credentials_refused",
        steps: &[],
        all: &[],
        any: &[
            "authentication failed",
            "unauthorized",
            "permission denied",
            "forbidden",
        ],
        cause: "credentials are missing, expired or lack permission",
        remedy: "check the API key or role for this environment (and its scope)",
    },
    Pattern {
        id: "database_probe",
        steps: &["smoke"],
        all: &["postgres"],
        any: &[],
        cause: "the database round trip failed: a wrong DATABASE_URL, SSL mode, or the database is not reachable from where the probe runs",
        remedy: "check the URL (`sslmode=require` on hosted Postgres) and network access",
    },
];

/// The cause and remedy of a step when no pattern matched.
fn generic(step: &str) -> (&'static str, &'static str) {
    match step {
        "validate" => (
            "the spec or the provider settings are invalid",
            "run `staging validate` and fix what it points at",
        ),
        "secrets" => (
            "a variable breaks a rule",
            "run `staging secrets check --env {env}` for each variable's problem",
        ),
        "migrate" => (
            "a migration could not be applied",
            "run `staging migrate status --env {env}` and read the migration's output",
        ),
        "deploy" => (
            "the provider refused or failed the deploy",
            "check the provider's dashboard and credentials for this service",
        ),
        "wait" => (
            "the deploy did not become live",
            "read the boot logs shown with the failure",
        ),
        "verify" => (
            "a service serves another commit",
            "redeploy the commit and check the platform's build cache",
        ),
        "reverify" => (
            "another deploy replaced the one verified before smoke",
            "find who deployed meanwhile, and run again once the environment is yours",
        ),
        "lock" => (
            "the run's lease was released by force",
            "run the commit again",
        ),
        "smoke" => (
            "a smoke probe failed",
            "compare expected and observed; run `staging smoke --env {env}` again once fixed",
        ),
        "evidence" => (
            "the evidence could not be recorded",
            "check the evidence store (directory permissions, or the Postgres URL)",
        ),
        _ => ("the step failed", "read the step's output above"),
    }
}

/// One failure with its likely cause and remedy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosed {
    /// The step (`secrets`).
    pub step: String,
    /// What failed (`JWT_SECRET`, `web`, `health`), or the step.
    pub subject: String,
    /// What the run said (redacted, as recorded).
    pub failure: String,
    /// The pattern that matched (`signing_key_missing`), or `generic`.
    pub pattern: String,
    /// The likely cause.
    pub cause: String,
    /// What to do.
    pub remedy: String,
}

/// The result of `staging doctor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    /// The environment of the run.
    pub environment: String,
    /// The commit of the run.
    pub commit: String,
    /// Whether the run passed (then there is nothing to diagnose).
    pub ok: bool,
    /// One entry per failure, in step order.
    pub failures: Vec<Diagnosed>,
}

/// Diagnose a run as it just finished.
pub fn diagnose_report(report: &RunReport) -> Diagnosis {
    let steps: Vec<serde_json::Value> = report
        .steps
        .iter()
        .map(|s| serde_json::to_value(s).unwrap_or_default())
        .collect();
    diagnose_steps(&report.environment, &report.commit, &steps)
}

/// Diagnose a recorded run (`staging doctor` on the latest evidence, or an id).
pub fn diagnose_evidence(evidence: &Evidence) -> Diagnosis {
    diagnose_steps(&evidence.environment, &evidence.commit, &evidence.steps)
}

fn text(v: &serde_json::Value, key: &str) -> String {
    v.get(key)
        .and_then(|x| x.as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Diagnose step reports as JSON (the shape of `StepReport`: `step`, `status`, `summary`,
/// `findings[]` with `name`, `ok`, `message`, `expected`, `observed`).
pub fn diagnose_steps(environment: &str, commit: &str, steps: &[serde_json::Value]) -> Diagnosis {
    let mut failures = vec![];
    for step in steps {
        let status = text(step, "status");
        if matches!(status.as_str(), "passed" | "skipped" | "") {
            continue;
        }
        let name = text(step, "step");
        let summary = text(step, "summary");
        let failed: Vec<&serde_json::Value> = step
            .get("findings")
            .and_then(|f| f.as_array())
            .map(|f| {
                f.iter()
                    .filter(|x| x.get("ok").and_then(|o| o.as_bool()) == Some(false))
                    .collect()
            })
            .unwrap_or_default();
        if failed.is_empty() {
            failures.push(diagnose_one(environment, &name, &name, &summary, &summary));
            continue;
        }
        for f in failed {
            let subject = text(f, "name");
            let mut failure = text(f, "message");
            let (expected, observed) = (text(f, "expected"), text(f, "observed"));
            if !expected.is_empty() || !observed.is_empty() {
                failure.push_str(&format!(" (expected {expected}, observed {observed})"));
            }
            let context = format!("{subject} {failure} {summary}");
            failures.push(diagnose_one(
                environment,
                &name,
                &subject,
                &failure,
                &context,
            ));
        }
    }
    Diagnosis {
        environment: environment.to_owned(),
        commit: commit.to_owned(),
        ok: failures.is_empty(),
        failures,
    }
}

fn diagnose_one(
    environment: &str,
    step: &str,
    subject: &str,
    failure: &str,
    context: &str,
) -> Diagnosed {
    let haystack = format!("{failure} {context}").to_lowercase();
    let found = PATTERNS.iter().find(|p| {
        (p.steps.is_empty() || p.steps.contains(&step))
            && p.all.iter().all(|w| haystack.contains(w))
            && (p.any.is_empty() || p.any.iter().any(|w| haystack.contains(w)))
    });
    let (pattern, cause, remedy) = match found {
        Some(p) => (p.id, p.cause, p.remedy),
        None => {
            let (c, r) = generic(step);
            ("generic", c, r)
        }
    };
    let fill = |s: &str| s.replace("{name}", subject).replace("{env}", environment);
    Diagnosed {
        step: step.to_owned(),
        subject: subject.to_owned(),
        failure: failure.to_owned(),
        pattern: pattern.to_owned(),
        cause: fill(cause),
        remedy: fill(remedy),
    }
}
