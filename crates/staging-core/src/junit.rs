//! What every JUnit XML report of the toolkit shares, so that each validates against the
//! `junit-10.xsd` schema of the Jenkins xUnit plugin (the dialect pytest writes and most CI
//! test-report readers accept): the host name, and the one attribute the XML library
//! writes that the schema refuses.
//!
//! The reports themselves are built with `quick-junit` (in `staging-evidence` for runs and
//! `staging-smoke` for probe reports); each passes its XML through [`junit10`] and sets
//! [`hostname`] and a timestamp on its `<testsuite>`s and a `time` on every `<testcase>`.

/// The name of this host, for `<testsuite hostname="...">`: `/proc/sys/kernel/hostname`,
/// else `$HOSTNAME`, else `localhost`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// `xml` (a report `quick-junit` wrote) made valid against `junit-10.xsd`: the root
/// `<testsuites>` may carry `name`, `time`, `tests`, `failures` and `errors` only, so its
/// `skipped` (always written by the library) is removed. The counts stay on each
/// `<testsuite>`, where the schema has them. Attribute values are escaped, so no `>` or `"`
/// inside one can be mistaken for the end of the tag or of a value.
pub fn junit10(xml: &str) -> String {
    let Some(start) = xml.find("<testsuites") else {
        return xml.to_owned();
    };
    let Some(len) = xml[start..].find('>') else {
        return xml.to_owned();
    };
    let tag = &xml[start..start + len];
    let Some(attr) = tag.find(" skipped=\"") else {
        return xml.to_owned();
    };
    let value_start = attr + " skipped=\"".len();
    let Some(value_len) = tag[value_start..].find('"') else {
        return xml.to_owned();
    };
    let cut_from = start + attr;
    let cut_to = start + value_start + value_len + 1;
    format!("{}{}", &xml[..cut_from], &xml[cut_to..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_loses_skipped_and_suites_keep_it() {
        let xml = "<?xml version=\"1.0\"?>\n<testsuites name=\"a skipped=&quot;1&quot;\" tests=\"2\" skipped=\"1\" failures=\"0\" errors=\"0\">\n<testsuite name=\"s\" tests=\"2\" skipped=\"1\" errors=\"0\" failures=\"0\"/>\n</testsuites>\n";
        let out = junit10(xml);
        assert!(out.contains(
            "<testsuites name=\"a skipped=&quot;1&quot;\" tests=\"2\" failures=\"0\" errors=\"0\">"
        ));
        assert!(out.contains("<testsuite name=\"s\" tests=\"2\" skipped=\"1\""));
    }

    #[test]
    fn a_document_without_a_root_skipped_is_unchanged() {
        let xml = "<testsuites tests=\"0\"></testsuites>";
        assert_eq!(junit10(xml), xml);
    }

    #[test]
    fn the_host_has_a_name() {
        assert!(!hostname().is_empty());
    }
}
