//! One redactor that every output passes through.
//!
//! Every secret value read during a run is registered here; stdout, stderr, logs, reports,
//! evidence files, error messages and child-process output are passed through
//! [`Redactor::redact`] before they leave the process.
//!
//! A registered value is masked in every form it takes on the way out (see [`forms`]):
//! raw, JSON-string-escaped, percent- and form-encoded, base64 (standard and URL-safe,
//! padded or not, and at each alignment inside a larger blob), and line by line for a
//! multi-line value. All forms of all values go into one Aho-Corasick automaton, so the
//! cost of redaction grows with the length of the text, not with the number of secrets.
//! Every match is found, overlapping ones included, and the union of their spans is
//! masked: where two secrets (or two forms) overlap in the text, neither keeps a visible
//! tail, which a leftmost-first or leftmost-longest scan would leave. Independently of registration, the values of `Authorization`,
//! `Proxy-Authorization`, `Cookie` and `Set-Cookie` headers and the passwords inside URLs
//! (`postgres://user:pass@host`) are always masked.
//!
//! Text is shortened for reports only by [`Redactor::shorten`], which redacts the whole
//! text first: a secret that straddles the cut is masked whole, never leaked by its prefix.

pub mod forms;
mod lines;

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;
use secrecy::{ExposeSecret, SecretString};

pub use lines::{MAX_LINE_BYTES, for_each_line_lossy};

/// What a redacted value is replaced with.
pub const MASK: &str = "[REDACTED]";

/// Values (and forms of values) shorter than this are not masked by substring in free text:
/// masking every `true`, `prod` or `8080` in the output would hide everything and protect
/// nothing. Such a value is still masked where a structured document holds it as a whole
/// field ([`Redactor::redact_json`]); `secrets check` refuses it for a declared secret as
/// "too short to be a secret" ([`maskable`]).
pub const MIN_REDACTED_LEN: usize = 8;

/// Words that are never masked by substring however long: booleans, environment and
/// protocol names, common settings. A secret equal to one is refused by `secrets check`.
const COMMON_WORDS: &[&str] = &[
    "true",
    "false",
    "yes",
    "no",
    "on",
    "off",
    "null",
    "none",
    "nil",
    "undefined",
    "enabled",
    "disabled",
    "production",
    "prod",
    "staging",
    "development",
    "develop",
    "preview",
    "localhost",
    "http",
    "https",
    "default",
    "password",
    "debug",
    "info",
    "warning",
];

/// Whether `value` can be masked by substring in free text: at least [`MIN_REDACTED_LEN`]
/// characters once trimmed, not a number, not a common word (`COMMON_WORDS`: booleans,
/// environment names, schemes and the like). What the `too_short` secret rule asks of a
/// declared secret.
pub fn maskable(value: &str) -> bool {
    let v = value.trim();
    if v.chars().count() < MIN_REDACTED_LEN {
        return false;
    }
    let number = v
        .trim_start_matches(['-', '+'])
        .chars()
        .all(|c| c.is_ascii_digit() || c == '.' || c == '_' || c == ',');
    !number && !COMMON_WORDS.iter().any(|w| v.eq_ignore_ascii_case(w))
}

/// The mark [`Redactor::shorten`] puts where it cut.
pub const CUT_MARK: &str = "…";

/// A set of secret values to mask in text. Cheap to clone; clones share the set.
#[derive(Clone, Default)]
pub struct Redactor {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// How many values were registered (not forms).
    values: usize,
    /// Every registered form, distinct.
    forms: Vec<SecretString>,
    /// A keyed hash of each form, to find duplicates without comparing with every form.
    hashes: std::collections::HashSet<u64>,
    /// Registered values too short or common to mask by substring ([`maskable`]): masked
    /// only where a structured document holds one as a whole field.
    whole_only: Vec<SecretString>,
    hasher: std::collections::hash_map::RandomState,
    /// The automaton over `forms`, built on the first redaction after a change that does
    /// not fit in `naive_left`.
    matcher: Option<Arc<AhoCorasick>>,
    /// While `matcher` is stale: how much more searching form by form (bytes of text times
    /// forms) may be done before building it pays off. A run registers values one at a
    /// time with short log lines in between; rebuilding the automaton for each of those
    /// lines would cost a build per registration (ski rental: spend about one build's cost
    /// on the naive search, then build).
    naive_left: AtomicUsize,
}

/// Bytes of text times registered forms searched form by form after a registration before
/// the automaton is built: about the cost of one build (docs/benchmarks.md).
const NAIVE_BUDGET: usize = 4 * 1024 * 1024;

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("Redactor")
            .field("registered", &inner.values)
            .field("forms", &inner.forms.len())
            .finish()
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

/// The value of a credential header, written as a header line or a `name=value` pair
/// (`Authorization: …`, `set-cookie=…`: the value is a quoted string or the rest of the
/// line) or as a quoted key with a quoted value (`"cookie": "…"`, `'Authorization': '…'`).
/// An unquoted name must not follow a quote, a letter, a digit or `-`: `== "cookie": all
/// steps passed` is a quoted word, not a key (a key's value is quoted), and `x-cookie: …`
/// another header. `cookie:session` (no space after the colon) is how a capture names a
/// cookie, not a header, and is left alone.
fn credential_headers() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        const NAMES: &str = "proxy-authorization|authorization|set-cookie|cookie";
        Regex::new(&format!(
            r#"(?im)["'](?:{NAMES})["'][ \t]*(?:=>|:|=)[ \t]*(?P<quoted>"(?:[^"\\\r\n]|\\.)*"|'(?:[^'\\\r\n]|\\.)*')|(?:^|[^"'\w-])(?:{NAMES})(?:[ \t]*:[ \t]+|[ \t]*=[ \t]*)(?P<value>"(?:[^"\\\r\n]|\\.)*"|'[^'\r\n]*'|[^\r\n]*)"#
        ))
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

    /// Register a secret value in every form it can take on the way out (see [`forms`]):
    /// raw, trimmed, without surrounding quotes, JSON-escaped, percent- and form-encoded,
    /// base64, and each line of a multi-line value.
    ///
    /// A value that is not [`maskable`] (shorter than [`MIN_REDACTED_LEN`], a number, a
    /// common word) is kept for whole fields of structured output only.
    ///
    /// Whether a value is a secret is not decided here: callers hold a value
    /// [`crate::secretness`] decided is one, or call [`Redactor::register_if_secret`].
    pub fn register(&self, value: &SecretString) {
        let raw = value.expose_secret();
        if !maskable(raw) {
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                return;
            }
            let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
            if !inner
                .whole_only
                .iter()
                .any(|v| v.expose_secret() == trimmed)
            {
                inner
                    .whole_only
                    .push(SecretString::from(trimmed.to_owned()));
            }
            return;
        }
        let forms = forms::forms_of(raw);
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.values += 1;
        let mut changed = false;
        for form in forms {
            if form.chars().count() < MIN_REDACTED_LEN {
                continue;
            }
            let hash = std::hash::BuildHasher::hash_one(&inner.hasher, &form);
            // On a hash hit, compare for real (a collision must not drop a form).
            if !inner.hashes.insert(hash) && inner.forms.iter().any(|v| v.expose_secret() == form) {
                continue;
            }
            inner.forms.push(SecretString::from(form));
            changed = true;
        }
        if changed {
            inner.matcher = None;
            inner.naive_left = AtomicUsize::new(NAIVE_BUDGET);
        }
    }

    /// Register `value` when [`crate::secretness::is_secret`] says a value of `origin` is a
    /// secret; returns whether it was one. How every caller outside tests registers.
    pub fn register_if_secret(
        &self,
        origin: crate::secretness::Origin<'_>,
        value: &SecretString,
    ) -> bool {
        let secret = crate::secretness::is_secret(origin);
        if secret {
            self.register(value);
        }
        secret
    }

    /// `value` with every string in it (object keys included) redacted as [`Redactor::redact`]
    /// redacts text, and every string value that is a whole registered value masked even
    /// when it is too short to mask inside text. Structured output is redacted so, before it is
    /// serialized: the document stays valid whatever a secret or a credential header
    /// holds, which rewriting the serialized text cannot promise.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::String(s) => {
                if let Some(masked) = self.redact_field(s) {
                    *s = masked;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(map) => {
                // Keys are redacted as text only: a short secret equal to a key (`commit`)
                // must not rename the document's own fields.
                let changed_keys: Vec<(String, String)> = map
                    .keys()
                    .filter_map(|k| match self.redact(k) {
                        Cow::Owned(m) => Some((k.clone(), m)),
                        Cow::Borrowed(_) => None,
                    })
                    .collect();
                for (old, new) in changed_keys {
                    if let Some(v) = map.remove(&old) {
                        map.insert(new, v);
                    }
                }
                map.values_mut().for_each(|v| self.redact_json(v));
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// `value` serialized to JSON and redacted by value ([`Redactor::redact_json`]).
    pub fn redacted_json<T: serde::Serialize + ?Sized>(&self, value: &T) -> serde_json::Value {
        let mut json = serde_json::to_value(value)
            .unwrap_or_else(|e| serde_json::Value::String(format!("cannot serialize: {e}")));
        self.redact_json(&mut json);
        json
    }

    /// The redacted text of one structured field, when redaction changes it.
    fn redact_field(&self, field: &str) -> Option<String> {
        let whole = {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            let trimmed = field.trim();
            !trimmed.is_empty()
                && inner
                    .whole_only
                    .iter()
                    .any(|v| v.expose_secret() == trimmed)
        };
        if whole {
            return Some(MASK.to_owned());
        }
        match self.redact(field) {
            Cow::Owned(s) => Some(s),
            Cow::Borrowed(_) => None,
        }
    }

    /// How many values are registered.
    pub fn len(&self) -> usize {
        self.inner.read().map(|v| v.values).unwrap_or(0)
    }

    /// How many forms of the registered values are masked.
    pub fn forms(&self) -> usize {
        self.inner.read().map(|v| v.forms.len()).unwrap_or(0)
    }

    /// Whether no value is registered.
    pub fn is_empty(&self) -> bool {
        self.forms() == 0
    }

    fn matcher(&self) -> Option<Arc<AhoCorasick>> {
        {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            if inner.forms.is_empty() {
                return None;
            }
            if let Some(m) = &inner.matcher {
                return Some(m.clone());
            }
        }
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if inner.matcher.is_none() && !inner.forms.is_empty() {
            // The default (a contiguous NFA at this size): a DFA scans 10 MB ~2x faster
            // but takes ~5x longer to build (docs/benchmarks.md). Standard semantics: the
            // only kind that reports overlapping matches.
            let built = AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build(inner.forms.iter().map(|f| f.expose_secret().as_bytes()))
                .expect("patterns of a bounded count and size always build");
            inner.matcher = Some(Arc::new(built));
        }
        inner.matcher.clone()
    }

    /// Where `text` holds a registered form: with the automaton, or, while it is stale and
    /// the budget lasts, form by form (the same spans either way).
    fn spans(&self, text: &str) -> Vec<(usize, usize)> {
        {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            if inner.forms.is_empty() {
                return vec![];
            }
            if let Some(m) = &inner.matcher {
                return masked_spans(m, text);
            }
            let cost = text.len().saturating_mul(inner.forms.len());
            let spent =
                inner
                    .naive_left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                        left.checked_sub(cost)
                    });
            if spent.is_ok() {
                return naive_spans(&inner.forms, text);
            }
        }
        match self.matcher() {
            Some(m) => masked_spans(&m, text),
            None => vec![],
        }
    }

    /// `text` with every form of every registered value, every credential header value and
    /// every URL password masked.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = self.redact_forms(text);
        if let Cow::Owned(s) = mask_credential_headers(&out) {
            out = Cow::Owned(s);
        }
        if let Cow::Owned(s) = mask_url_credentials(&out) {
            out = Cow::Owned(s);
        }
        out
    }

    /// `text` with every form of every registered value masked, and nothing else: what a
    /// serialized document (XML, HTML, JSON) may be passed through once more after its
    /// fields were redacted, since [`MASK`] holds no markup and no JSON syntax. The
    /// credential-header and URL-password patterns of [`Redactor::redact`] read to the end
    /// of a line, which in a document would eat its closing syntax; they apply to fields.
    pub fn redact_forms<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let spans = self.spans(text);
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut replaced = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end) in spans {
            replaced.push_str(&text[at..start]);
            replaced.push_str(MASK);
            at = end;
        }
        replaced.push_str(&text[at..]);
        Cow::Owned(replaced)
    }

    /// At most `max_chars` characters of `text` for a report, redacted as a whole *before*
    /// it is cut (a secret across the cut is masked whole), marked with [`CUT_MARK`] when
    /// cut. The one function that shortens text anywhere in the toolkit.
    pub fn shorten(&self, text: &str, max_chars: usize) -> String {
        let redacted = self.redact(text);
        let mut chars = redacted.char_indices();
        match chars.nth(max_chars) {
            None => redacted.into_owned(),
            Some((at, _)) => {
                let mut cut = redacted[..at].to_owned();
                // A cut through the mask itself would look like a different word.
                if let Some(start) = partial_mask_at_end(&cut) {
                    cut.truncate(start);
                }
                cut.push_str(CUT_MARK);
                cut
            }
        }
    }
}

impl Redactor {
    /// The redacted text of `head`, the beginning of a longer text whose rest is not read:
    /// whatever at its end could be the start of a secret that goes on past it is dropped
    /// too (as many bytes as the longest registered form). For streams cut by size.
    pub fn redact_head(&self, head: &str) -> String {
        let redacted = self.redact(head);
        let longest = {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            inner
                .forms
                .iter()
                .map(|f| f.expose_secret().len())
                .max()
                .unwrap_or(0)
        };
        // A few bytes more: a character cut at the end became one U+FFFD.
        let mut keep = redacted.len().saturating_sub(longest + 4);
        while !redacted.is_char_boundary(keep) {
            keep -= 1;
        }
        redacted[..keep].to_owned()
    }
}

/// The spans of `text` to mask: the union of every match of every form, overlapping ones
/// included, in order and disjoint (adjacent spans become one). A UTF-8 form matches UTF-8
/// text only on character boundaries; the spans are widened to them anyway, so that slicing
/// can never panic.
fn masked_spans(matcher: &AhoCorasick, text: &str) -> Vec<(usize, usize)> {
    let spans = matcher
        .find_overlapping_iter(text)
        .map(|m| (m.start(), m.end()))
        .collect();
    union_of(text, spans)
}

/// The same spans as [`masked_spans`], found by searching for each form on its own, every
/// occurrence, overlapping ones included.
fn naive_spans(forms: &[SecretString], text: &str) -> Vec<(usize, usize)> {
    let mut spans = vec![];
    for form in forms {
        let form = form.expose_secret();
        if form.len() > text.len() {
            continue;
        }
        let mut from = 0;
        while let Some(found) = text[from..].find(form) {
            let start = from + found;
            spans.push((start, start + form.len()));
            from = start + text[start..].chars().next().map_or(1, char::len_utf8);
        }
    }
    union_of(text, spans)
}

fn union_of(text: &str, mut spans: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    for (start, end) in &mut spans {
        while !text.is_char_boundary(*start) {
            *start -= 1;
        }
        while !text.is_char_boundary(*end) {
            *end += 1;
        }
    }
    if spans.len() > 1 {
        spans.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
        for (start, end) in spans {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        spans = merged;
    }
    spans
}

/// Where a prefix of [`MASK`] (but not all of it) ends `text`.
fn partial_mask_at_end(text: &str) -> Option<usize> {
    (1..MASK.len())
        .rev()
        .find(|n| text.ends_with(&MASK[..*n]))
        .map(|n| text.len() - n)
}

/// Mask the password of credentials inside URLs only (for text that has no registered values).
pub fn mask_url_credentials(text: &str) -> Cow<'_, str> {
    if !url_credentials().is_match(text) {
        return Cow::Borrowed(text);
    }
    url_credentials().replace_all(text, "${scheme}${user}:[REDACTED]@")
}

/// Mask the values of `Authorization`, `Proxy-Authorization`, `Cookie` and `Set-Cookie`
/// headers, however they are written (`Name: value`, `"name": "value"`, `name=value`).
pub fn mask_credential_headers(text: &str) -> Cow<'_, str> {
    // The regex starts with a character class, which defeats its own literal prefilter: a
    // case-insensitive scan for the names first keeps text that names no such header cheap.
    static NAMES: OnceLock<Regex> = OnceLock::new();
    let names = NAMES.get_or_init(|| Regex::new("(?i)authorization|cookie").expect("static regex"));
    if !names.is_match(text) {
        return Cow::Borrowed(text);
    }
    let re = credential_headers();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for c in re.captures_iter(text) {
        let Some(value) = c.name("quoted").or_else(|| c.name("value")) else {
            continue;
        };
        let v = value.as_str();
        let masked = if v.starts_with('"') {
            format!("\"{MASK}\"")
        } else if v.starts_with('\'') {
            format!("'{MASK}'")
        } else if v.trim().is_empty() {
            continue;
        } else {
            MASK.to_owned()
        };
        out.push_str(&text[at..value.start()]);
        out.push_str(&masked);
        at = value.end();
    }
    if at == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests;
