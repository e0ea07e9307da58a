//! Fingerprints: how values are shown and compared without being printed.
//!
//! Two keys, for two jobs:
//! - **Comparison** (`differs_from`, `same_as`, `diff`, `sync`) uses HMAC-SHA256 under a
//!   random 256-bit key drawn from the OS for each [`Fingerprinter`]. The tags are never
//!   shown, and a tag from one run means nothing in another, so a tag that leaks (a core
//!   dump, a debug log) cannot be used to test guesses of the value later.
//! - **Display** (the `fingerprint` column) must be stable, so that two runs, two machines
//!   or two people can say "same value" by comparing a few characters. It is HMAC-SHA256
//!   truncated to 48 bits under a *stable* key: the `STAGING_FINGERPRINT_KEY` environment
//!   variable when set (a team secret: then fingerprints cannot be used to test guesses at
//!   all), else a key derived from the project's name. Without a team key, anyone with the
//!   spec could confirm a guess of a *low-entropy* value from its fingerprint — which is
//!   why short and guessable secrets are also rule violations — but a real key (128 bits
//!   and more) stays out of reach; 48 bits reveal nothing about it.

use hmac::{Hmac, Mac};
use rand::TryRngCore;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;

/// The environment variable holding a team key for display fingerprints.
pub const FINGERPRINT_KEY_ENV: &str = "STAGING_FINGERPRINT_KEY";

/// How many bytes of the display HMAC are shown (12 hex characters).
const DISPLAY_BYTES: usize = 6;

type HmacSha256 = Hmac<Sha256>;

/// Makes display fingerprints and comparison tags.
pub struct Fingerprinter {
    display_key: SecretBox<Vec<u8>>,
    compare_key: SecretBox<[u8; 32]>,
    team_key: bool,
}

impl std::fmt::Debug for Fingerprinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fingerprinter")
            .field("team_key", &self.team_key)
            .finish_non_exhaustive()
    }
}

/// A comparison tag: HMAC-SHA256 of a value under the run's random key. Equal tags from the
/// same [`Fingerprinter`] mean equal values. Shows nothing in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Tag([u8; 32]);

impl std::fmt::Debug for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tag(..)")
    }
}

impl Fingerprinter {
    /// Fingerprints for `project`, with the display key from [`FINGERPRINT_KEY_ENV`] when
    /// set.
    pub fn for_project(project: &str) -> Self {
        let team = std::env::var(FINGERPRINT_KEY_ENV)
            .ok()
            .filter(|k| !k.is_empty())
            .map(SecretString::from);
        Self::new(project, team.as_ref())
    }

    /// Fingerprints for `project`, with an explicit team key (or the project-derived key).
    pub fn new(project: &str, team_key: Option<&SecretString>) -> Self {
        let display_key = match team_key {
            Some(k) => k.expose_secret().as_bytes().to_vec(),
            None => format!("staging-fingerprint-v1:{project}").into_bytes(),
        };
        let mut compare = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut compare)
            .expect("the OS random number generator failed");
        Fingerprinter {
            display_key: SecretBox::new(Box::new(display_key)),
            compare_key: SecretBox::new(Box::new(compare)),
            team_key: team_key.is_some(),
        }
    }

    /// Whether display fingerprints are keyed by a team key rather than the project name.
    pub fn has_team_key(&self) -> bool {
        self.team_key
    }

    /// The short, stable fingerprint shown in tables: `fp:` and 12 hex characters.
    pub fn display(&self, value: &SecretString) -> String {
        let mut mac = HmacSha256::new_from_slice(self.display_key.expose_secret())
            .expect("HMAC takes any key length");
        mac.update(value.expose_secret().as_bytes());
        let out = mac.finalize().into_bytes();
        format!("fp:{}", hex::encode(&out[..DISPLAY_BYTES]))
    }

    /// The comparison tag of a value under this fingerprinter's random key.
    pub fn tag(&self, value: &SecretString) -> Tag {
        let mut mac = HmacSha256::new_from_slice(self.compare_key.expose_secret())
            .expect("HMAC takes any key length");
        mac.update(value.expose_secret().as_bytes());
        Tag(mac.finalize().into_bytes().into())
    }

    /// Whether two values are equal, decided by their tags.
    pub fn same(&self, a: &SecretString, b: &SecretString) -> bool {
        self.tag(a) == self.tag(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> SecretString {
        SecretString::from(v.to_owned())
    }

    #[test]
    fn display_fingerprints_are_stable_per_project_and_differ_between_projects() {
        let a = Fingerprinter::new("shop", None);
        let b = Fingerprinter::new("shop", None);
        let c = Fingerprinter::new("blog", None);
        assert_eq!(a.display(&s("value")), b.display(&s("value")));
        assert_ne!(a.display(&s("value")), c.display(&s("value")));
        assert_eq!(a.display(&s("value")).len(), 3 + 12);
    }

    #[test]
    fn comparison_tags_differ_between_fingerprinters_but_compare_within_one() {
        let a = Fingerprinter::new("shop", None);
        let b = Fingerprinter::new("shop", None);
        assert_ne!(a.tag(&s("value")), b.tag(&s("value")));
        assert!(a.same(&s("value"), &s("value")));
        assert!(!a.same(&s("value"), &s("value\n")));
    }

    #[test]
    fn a_team_key_changes_the_display_fingerprint() {
        let key = s("team-key");
        assert_ne!(
            Fingerprinter::new("shop", Some(&key)).display(&s("v")),
            Fingerprinter::new("shop", None).display(&s("v"))
        );
    }
}
