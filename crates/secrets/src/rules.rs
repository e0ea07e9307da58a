//! The rules a value must satisfy, and the messages that say what is wrong and why it
//! matters. No message ever contains the value.

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use staging_core::spec::{LoadedSpec, Rules, ValueKind, Var};
use staging_core::{Result, SecretBackends};

use crate::fingerprint::Fingerprinter;
use crate::resolve::{Resolution, resolve_one};

/// A signing key's minimum length in characters, unless `min_length` says otherwise.
pub const SIGNING_KEY_MIN_LENGTH: usize = 32;

/// A signing key's minimum estimated entropy in bits, unless `min_entropy_bits` says
/// otherwise (a random 32-character hex key has exactly this).
pub const SIGNING_KEY_MIN_ENTROPY_BITS: f64 = 128.0;

/// How bad a violation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; does not fail the check (a comparison that could not be made).
    Warning,
    /// Fails the check.
    Error,
}

/// One rule a value breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The rule (`required`, `kind`, `min_length`, `too_short`, `min_entropy`, `placeholder`,
    /// `whitespace`, `quotes`, `differs_from`, `same_as`, `forbid`, `forbid_in_protected`, `source`).
    pub rule: &'static str,
    /// How bad it is.
    pub severity: Severity,
    /// What is wrong and why it matters. Never the value.
    pub message: String,
}

impl Violation {
    fn error(rule: &'static str, message: impl Into<String>) -> Self {
        Violation {
            rule,
            severity: Severity::Error,
            message: message.into(),
        }
    }

    fn warning(rule: &'static str, message: impl Into<String>) -> Self {
        Violation {
            rule,
            severity: Severity::Warning,
            message: message.into(),
        }
    }
}

/// Why a missing or weak signing key matters.
const SIGNING_KEY_WHY: &str = "many frameworks (Rails SECRET_KEY_BASE, Django SECRET_KEY, \
     express-session, JWT libraries) then generate a random key at every start, so every restart \
     or new instance invalidates all sessions and tokens and everyone is logged out";

/// The violation for a required variable with no value.
pub fn missing(name: &str, var: &Var, environment: &str, source: &str) -> Violation {
    let looked = if source == "none" {
        "it has no `value`, no `source`, and the environment has no `secrets` store".to_owned()
    } else {
        format!("looked in {source}")
    };
    if var.rules.kind == Some(ValueKind::SigningKey) {
        Violation::error(
            "required",
            format!(
                "`{name}` is a signing key with no value in {environment} ({looked}): {SIGNING_KEY_WHY}"
            ),
        )
    } else {
        Violation::error(
            "required",
            format!(
                "`{name}` is required but has no value in {environment} ({looked}); the service would start without it"
            ),
        )
    }
}

/// The rules that look at the value alone (and the environment it is in). `secret` is
/// what [`staging_core::secretness`] decided for the variable in `environment`.
pub fn check_value(
    name: &str,
    var: &Var,
    value: &SecretString,
    environment: &str,
    protected: bool,
    deferred: bool,
    secret: bool,
) -> Vec<Violation> {
    let raw = value.expose_secret();
    let rules = &var.rules;
    let mut out = vec![];

    // A secret redaction cannot mask in free text without hiding ordinary words (`true`,
    // `production`, `8080`) is refused, unless the rules say what length is enough.
    if secret
        && !deferred
        && !raw.trim().is_empty()
        && rules.min_length.is_none()
        && !staging_core::redact::maskable(raw)
    {
        out.push(Violation::error(
            "too_short",
            format!(
                "`{name}` is too short to be a secret ({} characters, or a common word or number): output cannot mask it without hiding the same word everywhere else; use a value of at least {} characters (`staging secrets rotate {name}`), or, if it is not a secret, give it a plain `value`; `rules.min_length` accepts a shorter one",
                raw.chars().count(),
                staging_core::redact::MIN_REDACTED_LEN
            ),
        ));
    }

    if let Some(kind) = placeholder_kind(raw, rules) {
        out.push(Violation::error(
            "placeholder",
            format!(
                "`{name}` is {kind}: a placeholder was never replaced by the real value, so whatever uses it will fail (or worse, accept anything)"
            ),
        ));
    }
    if !rules.allow_whitespace {
        // A PEM file ends with a newline by convention, and every PEM reader accepts it.
        let checked = if rules.kind == Some(ValueKind::Pem) {
            raw.trim_end_matches(['\n', '\r'])
        } else {
            raw
        };
        if let Some(what) = surrounding_whitespace(checked) {
            out.push(Violation::error(
                "whitespace",
                format!(
                    "`{name}` has {what}: the service sends it verbatim (in a header, as an HMAC key) and the other side refuses it; this usually comes from `echo` or a paste — set it again without it (a file's final newline counts: write it with `printf %s`), or set `allow_whitespace = true`"
                ),
            ));
        }
    }
    if let Some(quote) = surrounding_quotes(raw.trim()) {
        out.push(Violation::error(
            "quotes",
            format!(
                "`{name}` is wrapped in {quote}: the service receives the quote characters as part of the value and the other side refuses it; this usually comes from a paste or a value quoted twice (`KEY='\"…\"'` in a dotenv file) — set it again without them"
            ),
        ));
    }
    if let Some(kind) = rules.kind
        && !deferred
        && let Some(problem) = kind_problem(kind, raw.trim())
    {
        out.push(Violation::error("kind", format!("`{name}` {problem}")));
    }
    let (min_length, min_entropy) = minimums(rules);
    let is_key = rules.kind == Some(ValueKind::SigningKey);
    let len = raw.chars().count();
    if let Some(min) = min_length
        && len < min
        && !raw.is_empty()
    {
        let why = if is_key {
            format!(
                "a short signing key can be brute-forced from any token it signed, and some frameworks refuse it and fall back to a random one per start: {SIGNING_KEY_WHY}"
            )
        } else {
            "the rules ask for at least that".to_owned()
        };
        out.push(Violation::error(
            "min_length",
            format!("`{name}` is {len} characters long, shorter than {min}: {why}"),
        ));
    }
    if let Some(min) = min_entropy {
        let bits = estimate_entropy_bits(raw);
        if bits < min && !raw.is_empty() {
            out.push(Violation::error(
                "min_entropy",
                format!(
                    "`{name}` has about {bits:.0} bits of estimated entropy, below {min:.0}: a short, repetitive or hand-made key can be guessed offline; generate one with `staging secrets rotate {name}`"
                ),
            ));
        }
    }
    let applies_here =
        rules.forbid_in.is_empty() || rules.forbid_in.iter().any(|e| e == environment);
    if applies_here && let Some(i) = matches_any(raw, &rules.forbid) {
        let shown = if secret {
            format!("forbidden value #{}", i + 1)
        } else {
            format!("`{}`", rules.forbid[i])
        };
        out.push(Violation::error(
                "forbid",
                format!(
                    "`{name}` is {shown} in {environment}, which the rules forbid: a one-time flag left on runs again at every boot (a seed that reseeds on every restart until the health check times out into a restart loop)"
                ),
            ));
    }
    if protected && let Some(i) = matches_any(raw, &rules.forbid_in_protected) {
        let shown = if secret {
            format!("forbidden value #{}", i + 1)
        } else {
            format!("`{}`", rules.forbid_in_protected[i])
        };
        out.push(Violation::error(
                "forbid_in_protected",
                format!(
                    "`{name}` is {shown} in protected environment {environment}: a debug or development setting there shows stack traces, settings and sometimes secrets to anyone who triggers an error"
                ),
            ));
    }
    out
}

/// The rules that compare with another environment: `differs_from`, `same_as`. The other
/// value is read, compared by keyed tag, and dropped.
#[allow(clippy::too_many_arguments)]
pub async fn check_across_environments(
    backends: &SecretBackends,
    spec: &LoadedSpec,
    environment: &str,
    name: &str,
    var: &Var,
    value: &SecretString,
    fingerprints: &Fingerprinter,
    commit: Option<&str>,
) -> Result<Vec<Violation>> {
    let mut out = vec![];
    let is_key = var.rules.kind == Some(ValueKind::SigningKey);
    if let Some(other) = var
        .rules
        .differs_from
        .as_deref()
        .filter(|o| *o != environment)
    {
        match resolve_one(backends, spec, other, name, var, commit).await? {
            Resolution::Value { value: theirs, .. } => {
                if fingerprints.same(value, &theirs) {
                    let what = if is_key { "signing key" } else { "value" };
                    out.push(Violation::error(
                        "differs_from",
                        format!(
                            "`{name}` has the same {what} in {environment} as in {other}: anyone who can read {environment} (more people, looser access, debug logs) then holds {other}'s secret{}",
                            if is_key { format!(", and can sign sessions and tokens {other} accepts") } else { String::new() }
                        ),
                    ));
                }
            }
            Resolution::Absent { source } => out.push(Violation::warning(
                "differs_from",
                format!("`{name}` could not be compared with {other}: no value there ({source})"),
            )),
            Resolution::Failed { source, message } => out.push(Violation::warning(
                "differs_from",
                format!("`{name}` could not be compared with {other} ({source}): {message}"),
            )),
        }
    }
    if let Some(other) = var.rules.same_as.as_deref().filter(|o| *o != environment) {
        match resolve_one(backends, spec, other, name, var, commit).await? {
            Resolution::Value { value: theirs, .. } => {
                if !fingerprints.same(value, &theirs) {
                    out.push(Violation::error(
                        "same_as",
                        format!(
                            "`{name}` differs between {environment} and {other}, but is declared shared (`same_as = \"{other}\"`): {environment} would be tested against something {other} does not use"
                        ),
                    ));
                }
            }
            Resolution::Absent { source } => out.push(Violation::warning(
                "same_as",
                format!("`{name}` could not be compared with {other}: no value there ({source})"),
            )),
            Resolution::Failed { source, message } => out.push(Violation::warning(
                "same_as",
                format!("`{name}` could not be compared with {other} ({source}): {message}"),
            )),
        }
    }
    Ok(out)
}

/// The minimum length and entropy that apply: the rules', or a signing key's defaults.
pub fn minimums(rules: &Rules) -> (Option<usize>, Option<f64>) {
    let key = rules.kind == Some(ValueKind::SigningKey);
    (
        rules.min_length.or(key.then_some(SIGNING_KEY_MIN_LENGTH)),
        rules
            .min_entropy_bits
            .or(key.then_some(SIGNING_KEY_MIN_ENTROPY_BITS)),
    )
}

fn matches_any(raw: &str, list: &[String]) -> Option<usize> {
    let v = raw.trim();
    list.iter().position(|f| f.trim().eq_ignore_ascii_case(v))
}

/// Which placeholder `raw` looks like, described without repeating it.
pub fn placeholder_kind(raw: &str, rules: &Rules) -> Option<String> {
    let v = raw.trim().to_ascii_lowercase();
    for (i, pattern) in rules.placeholders.iter().enumerate() {
        if glob_match(&pattern.to_ascii_lowercase(), &v) {
            return Some(format!(
                "a configured placeholder (#{}: `{pattern}`)",
                i + 1
            ));
        }
    }
    if rules.allow_placeholders {
        return None;
    }
    let kind = if v.is_empty() {
        "empty"
    } else if v.starts_with("placeholder") {
        "a `PLACEHOLDER…` value"
    } else if v.starts_with("replace")
        && (v.ends_with("me") || v.contains("replace_me") || v.contains("replace-me"))
    {
        "a `REPLACE…ME` value"
    } else if matches!(
        v.as_str(),
        "changeme" | "change-me" | "change_me" | "change me" | "changeit"
    ) {
        "a `changeme` value"
    } else if matches!(v.as_str(), "todo" | "fixme" | "tbd")
        || v.starts_with("todo:")
        || v.starts_with("todo ")
    {
        "a `TODO` value"
    } else if v.chars().filter(|&c| c == 'x').count() >= 3
        && v.chars().all(|c| matches!(c, 'x' | '-' | '_' | '.'))
    {
        "an `xxx` value"
    } else if v.starts_with('<') && v.ends_with('>') {
        "a `<…>` value"
    } else if v.starts_with("your") && v.ends_with("here") && v.len() > 8 {
        "a `your-…-here` value"
    } else if matches!(
        v.as_str(),
        "secret" | "password" | "dummy" | "example" | "sample"
    ) {
        "a stand-in word (`secret`, `password`, `dummy`, `example`)"
    } else {
        return None;
    };
    Some(kind.to_owned())
}

/// `*` matches any run of characters; everything else literally.
fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first)
        || !text[first.len()..].ends_with(last)
        || text.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// Which quotes wrap the whole of `trimmed`, in words (`'"…"'` counts once, by its outer pair).
fn surrounding_quotes(trimmed: &str) -> Option<&'static str> {
    staging_core::redact::forms::unquoted(trimmed)?;
    Some(if trimmed.starts_with('"') {
        "double quotes (`\"…\"`)"
    } else {
        "single quotes (`'…'`)"
    })
}

/// What surrounding whitespace `raw` has, in words.
fn surrounding_whitespace(raw: &str) -> Option<String> {
    let trailing = &raw[raw.trim_end().len()..];
    let leading = &raw[..raw.len() - raw.trim_start().len()];
    if raw.trim().is_empty() {
        return None; // an empty or blank value is reported as a placeholder
    }
    let describe = |s: &str| {
        if s.contains('\n') || s.contains('\r') {
            "newline"
        } else if s.contains('\t') {
            "tab"
        } else {
            "space"
        }
    };
    match (leading.is_empty(), trailing.is_empty()) {
        (true, true) => None,
        (false, true) => Some(format!("a leading {}", describe(leading))),
        (true, false) => Some(format!("a trailing {}", describe(trailing))),
        (false, false) => Some(format!(
            "a leading {} and a trailing {}",
            describe(leading),
            describe(trailing)
        )),
    }
}

/// What is wrong with `v` (already trimmed) for its kind, in words; `None` when it fits.
fn kind_problem(kind: ValueKind, v: &str) -> Option<String> {
    match kind {
        ValueKind::String | ValueKind::SigningKey => None,
        ValueKind::Url => match url::Url::parse(v) {
            Ok(u) if !u.cannot_be_a_base() => None,
            Ok(_) => Some("is not a URL with a host (`scheme://host/...`)".to_owned()),
            Err(e) => Some(format!("is not an absolute URL ({e})")),
        },
        ValueKind::Integer => v
            .parse::<i64>()
            .is_err()
            .then(|| "is not an integer".to_owned()),
        ValueKind::Boolean => {
            let ok = ["true", "false", "1", "0", "yes", "no", "on", "off"]
                .iter()
                .any(|b| b.eq_ignore_ascii_case(v));
            (!ok).then(|| "is not a boolean (true/false, 1/0, yes/no, on/off)".to_owned())
        }
        ValueKind::Pem => pem_problem(v),
    }
}

fn pem_problem(v: &str) -> Option<String> {
    if v.contains("\\n") && !v.contains('\n') {
        return Some(
            "is a PEM block whose line breaks are written as the two characters `\\n`: most TLS and JWT libraries cannot read it; store real newlines (a file source, or a double-quoted dotenv value)".to_owned(),
        );
    }
    let Some(begin) = v.strip_prefix("-----BEGIN ") else {
        return Some("is not a PEM block (it must start with `-----BEGIN ...-----`)".to_owned());
    };
    let Some(label_end) = begin.find("-----") else {
        return Some("is not a PEM block (the BEGIN line is not closed by `-----`)".to_owned());
    };
    let label = &begin[..label_end];
    let end_line = format!("-----END {label}-----");
    let Some(body_end) = begin.find(&end_line) else {
        return Some(format!(
            "is a PEM block with no `-----END {label}-----` line"
        ));
    };
    let body = &begin[label_end + 5..body_end];
    let body: String = body
        .lines()
        .filter(|l| !l.contains(':'))
        .collect::<Vec<_>>()
        .concat();
    let body = body.trim();
    if body.is_empty() {
        return Some(format!("is a PEM block ({label}) with no content"));
    }
    if !body
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | ' ' | '\t' | '\r'))
    {
        return Some(format!(
            "is a PEM block ({label}) whose content is not base64"
        ));
    }
    None
}

/// An estimate of the entropy of `value` in bits, for catching short, repetitive and
/// hand-made keys (it is an estimate, not a proof of randomness):
/// - the character classes present give a pool (16 for hex, 26 per letter case, 10 digits,
///   33 ASCII symbols), and `log2(pool)` bits per character;
/// - a value that repeats a shorter run (`passwordpassword…`) counts only that run;
/// - when the character frequencies (Shannon entropy with the Miller–Madow correction) fall
///   well below what the pool allows (`aaaaaaab…`), the frequency estimate is used instead.
///
/// Frequencies alone would be too noisy on short keys: a truly random 32-character hex key
/// (128 bits) would often score well under 128.
pub fn estimate_entropy_bits(value: &str) -> f64 {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    if n == 0 {
        return 0.0;
    }
    let hex = chars.iter().all(|c| c.is_ascii_hexdigit())
        && (chars.iter().all(|c| !c.is_ascii_uppercase())
            || chars.iter().all(|c| !c.is_ascii_lowercase()));
    let pool = if hex {
        16.0
    } else {
        let mut pool = 0.0;
        if chars.iter().any(|c| c.is_ascii_lowercase()) {
            pool += 26.0;
        }
        if chars.iter().any(|c| c.is_ascii_uppercase()) {
            pool += 26.0;
        }
        if chars.iter().any(|c| c.is_ascii_digit()) {
            pool += 10.0;
        }
        if chars
            .iter()
            .any(|c| c.is_ascii() && !c.is_ascii_alphanumeric())
        {
            pool += 33.0;
        }
        if chars.iter().any(|c| !c.is_ascii()) {
            pool += 100.0;
        }
        pool
    };
    let mut counts = std::collections::HashMap::new();
    for c in &chars {
        *counts.entry(*c).or_insert(0usize) += 1;
    }
    let nf = n as f64;
    let shannon: f64 = counts
        .values()
        .map(|&k| {
            let p = k as f64 / nf;
            -p * p.log2()
        })
        .sum();
    let corrected = shannon + (counts.len() as f64 - 1.0) / (2.0 * nf * std::f64::consts::LN_2);
    let per_char = f64::log2(pool);
    let by_frequency = nf * corrected.min(per_char);
    let by_pool = period(&chars) as f64 * per_char;
    if by_frequency >= 0.7 * nf * per_char {
        by_pool
    } else {
        by_frequency.min(by_pool)
    }
}

/// The length of the shortest run that, repeated, makes up `chars` (at least twice);
/// the whole length when there is none.
fn period(chars: &[char]) -> usize {
    let n = chars.len();
    (1..=n / 2)
        .find(|&p| (p..n).all(|i| chars[i] == chars[i - p]))
        .unwrap_or(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_stars() {
        assert!(glob_match("sk_test_*", "sk_test_abc"));
        assert!(glob_match("*demo*", "my-demo-key"));
        assert!(!glob_match("sk_test_*", "sk_live_abc"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("a*a", "a"));
    }

    #[test]
    fn entropy_of_patterns_is_low_and_of_random_keys_high() {
        assert!(estimate_entropy_bits(&"a".repeat(64)) < 1.0);
        assert!(estimate_entropy_bits(&"password".repeat(4)) < 100.0);
        assert_eq!(
            estimate_entropy_bits("3f9a0c7e5b1d2f4a8c6e0b9d7f5a3c1e"),
            128.0
        );
        assert!(estimate_entropy_bits(&"ab".repeat(16)) < 10.0);
    }
}
