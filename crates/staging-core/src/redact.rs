//! One redactor that every output passes through.
//!
//! Every secret value read during a run is registered here; stdout, stderr, logs, reports,
//! evidence files, error messages and child-process output are passed through
//! [`Redactor::redact`] before they leave the process. Credentials inside URLs
//! (`postgres://user:pass@host`) are masked whether or not the URL was registered.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock, RwLock};

use regex::Regex;
use secrecy::{ExposeSecret, SecretString};

/// What a redacted value is replaced with.
pub const MASK: &str = "[REDACTED]";

/// Values shorter than this are not registered: masking every `1` or `on` in the output
/// would hide everything and protect nothing. The secret rules flag such short secrets.
pub const MIN_REDACTED_LEN: usize = 4;

/// A set of secret values to mask in text. Cheap to clone; clones share the set.
#[derive(Clone, Default)]
pub struct Redactor {
    values: Arc<RwLock<Vec<SecretString>>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.values.read().map(|v| v.len()).unwrap_or(0);
        f.debug_struct("Redactor").field("registered", &n).finish()
    }
}

fn url_credentials() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pass>[^@/\s]+)@",
        )
        .expect("static regex")
    })
}

impl Redactor {
    /// An empty redactor of its own (tests, embedding).
    pub fn new() -> Self {
        Redactor::default()
    }

    /// The process-wide redactor the CLI routes all output through.
    pub fn global() -> &'static Redactor {
        static GLOBAL: OnceLock<Redactor> = OnceLock::new();
        GLOBAL.get_or_init(Redactor::new)
    }

    /// Register a secret value, and its trimmed form when it has surrounding whitespace.
    pub fn register(&self, value: &SecretString) {
        let raw = value.expose_secret();
        let mut forms = vec![raw];
        let trimmed = raw.trim();
        if trimmed != raw {
            forms.push(trimmed);
        }
        let mut values = self.values.write().unwrap_or_else(|e| e.into_inner());
        for form in forms {
            if form.chars().count() >= MIN_REDACTED_LEN
                && !values.iter().any(|v| v.expose_secret() == form)
            {
                values.push(SecretString::from(form.to_owned()));
            }
        }
        // Longest first, so a value that contains another is masked whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.expose_secret().len()));
    }

    /// How many values are registered.
    pub fn len(&self) -> usize {
        self.values.read().map(|v| v.len()).unwrap_or(0)
    }

    /// Whether no value is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `text` with every registered value and every URL password masked.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        {
            let values = self.values.read().unwrap_or_else(|e| e.into_inner());
            for v in values.iter() {
                let v = v.expose_secret();
                if out.contains(v) {
                    out = Cow::Owned(out.replace(v, MASK));
                }
            }
        }
        if url_credentials().is_match(&out) {
            out = Cow::Owned(
                url_credentials()
                    .replace_all(&out, "${scheme}${user}:[REDACTED]@")
                    .into_owned(),
            );
        }
        out
    }
}

/// Mask the password of credentials inside URLs only (for text that has no registered values).
pub fn mask_url_credentials(text: &str) -> Cow<'_, str> {
    url_credentials().replace_all(text, "${scheme}${user}:[REDACTED]@")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_masked_everywhere_they_appear() {
        let r = Redactor::new();
        r.register(&SecretString::from("canary-7f3a9c".to_owned()));
        assert_eq!(
            r.redact("a canary-7f3a9c b canary-7f3a9c"),
            "a [REDACTED] b [REDACTED]"
        );
    }

    #[test]
    fn trimmed_form_of_a_value_with_a_trailing_newline_is_masked_too() {
        let r = Redactor::new();
        r.register(&SecretString::from("sk_live_abcdef\n".to_owned()));
        assert_eq!(r.redact("key=sk_live_abcdef;"), "key=[REDACTED];");
    }

    #[test]
    fn url_passwords_are_masked_without_registration() {
        let r = Redactor::new();
        assert_eq!(
            r.redact("connect postgres://app:hunter22@db:5432/x failed"),
            "connect postgres://app:[REDACTED]@db:5432/x failed"
        );
    }

    #[test]
    fn very_short_values_are_not_registered() {
        let r = Redactor::new();
        r.register(&SecretString::from("on".to_owned()));
        assert!(r.is_empty());
        assert_eq!(r.redact("turn on"), "turn on");
    }

    #[test]
    fn debug_shows_no_values() {
        let r = Redactor::new();
        r.register(&SecretString::from("canary-debug-1234".to_owned()));
        assert!(!format!("{r:?}").contains("canary"));
    }
}
