//! [`DomainName`]: a custom domain as a provider's settings name it, checked where it is
//! read (so a typo is an error at its place in the spec, not a failed API call later).

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A fully qualified domain name a service is served at (`www.example.com`): lowercase
/// letters, digits and hyphens in dot-separated labels of 1 to 63 characters, at least two
/// labels, no scheme, port, path or trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DomainName(String);

impl DomainName {
    /// The name, as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DomainName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<DomainName> for String {
    fn from(d: DomainName) -> String {
        d.0
    }
}

impl TryFrom<String> for DomainName {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        let bad = |why: &str| Err(format!("`{name}` is not a domain name: {why}"));
        if name.contains("://") || name.contains(['/', ':', '?', '#', ' ']) {
            return bad("write the host alone (no scheme, port, path or spaces)");
        }
        if name.ends_with('.') {
            return bad("leave out the trailing dot");
        }
        if name.len() > 253 {
            return bad("longer than 253 characters");
        }
        let labels: Vec<&str> = name.split('.').collect();
        if labels.len() < 2 {
            return bad("it needs at least two labels (`www.example.com`)");
        }
        for label in &labels {
            let ok_chars = label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if label.is_empty() || label.len() > 63 {
                return bad("each label is 1 to 63 characters");
            }
            if !ok_chars {
                return bad("use lowercase letters, digits and hyphens (punycode for others)");
            }
            if label.starts_with('-') || label.ends_with('-') {
                return bad("a label neither starts nor ends with a hyphen");
            }
        }
        Ok(DomainName(name))
    }
}

impl JsonSchema for DomainName {
    fn schema_name() -> Cow<'static, str> {
        "DomainName".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "hostname",
            "pattern": "^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
            "description": "A fully qualified domain name, lowercase, without scheme, port, path or trailing dot."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::DomainName;

    #[test]
    fn domain_names_are_hosts_alone_in_lowercase() {
        for ok in ["www.example.com", "example.com", "a-b.c0.example.co.uk"] {
            DomainName::try_from(ok.to_owned()).unwrap();
        }
        for (bad, why) in [
            ("https://www.example.com", "no scheme"),
            ("www.example.com/", "no scheme"),
            ("www.example.com.", "trailing dot"),
            ("localhost", "two labels"),
            ("WWW.example.com", "lowercase"),
            ("-a.example.com", "hyphen"),
            ("a..example.com", "1 to 63"),
            ("www.example.com:443", "no scheme"),
        ] {
            let err = DomainName::try_from(bad.to_owned()).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
