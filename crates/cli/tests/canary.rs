//! The canary suite: secrets with every awkward character, from every kind of source, sent
//! to a service that echoes them back in every encoding, and then every command a user runs.
//! No form of any canary may appear in what `staging` prints, in any file it writes, or in
//! its trace logs.
//!
//! The scanner decodes what it searches (JSON escapes, percent- and form-encoding, base64 at
//! every alignment) with decoders written here, independently of the redactor; every
//! canary contains the marker `cnry`, so a prefix left by a cut is found too. The scanner is
//! itself checked against the echo service's raw output, so that it cannot pass vacuously.

use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Output, Stdio};
use std::time::{Duration, Instant};

/// At both ends of every canary (and of each line of the multi-line one); found in any
/// decoded view of any output, it is a leak: a prefix left by a cut, a suffix left by a
/// partial match, or the whole.
const MARKER: &str = "cnry";

/// `(variable, value)`: a space, `"`, `\`, `&`, `<`, `>`, `%`, `+`, non-ASCII, multi-line.
const DOTENV_CANARIES: &[(&str, &str)] = &[
    ("CANARY_SPACE", "cnry-sp4ce two words 7f1a-cnry"),
    ("CANARY_QUOTE", "cnry-qu0te\"dq\"8b2c-cnry"),
    ("CANARY_BACKSLASH", "cnry-b\\sl4sh\\9c3d-cnry"),
    ("CANARY_AMP", "cnry-amp&amp=1&x0d4e-cnry"),
    ("CANARY_LT", "cnry-lt<tag1e5f-cnry"),
    ("CANARY_GT", "cnry-gt>tag2f6a-cnry"),
    ("CANARY_PERCENT", "cnry-pct%41%zz3a7b-cnry"),
    ("CANARY_PLUS", "cnry-plus+plus4b8c-cnry"),
    ("CANARY_UNICODE", "cnry-ünïcødé-€5c9d-cnry"),
    (
        "CANARY_PEM",
        "-----BEGIN PRIVATE KEY-----\nMIIEcnryPEMline1AAAAbbbbCCCCddddEEEEcnry\nMIIEcnryPEMline2ffffGGGGhhhhIIIIjjjjcnry\n-----END PRIVATE KEY-----",
    ),
];

/// Read from the process environment (`source = { env = ... }`).
const ENV_CANARY: (&str, &str) = ("CANARY_ENV", "cnry-env v&l<u>e \"6d0e\"-cnry");
const ENV_SOURCE: &str = "STAGING_TEST_CANARY_ENV_SOURCE";
/// Printed by a command (`source = { command = ["cat", ...] }`).
const COMMAND_CANARY: (&str, &str) = ("CANARY_CMD", "cnry-cmd 10%+ \\q/ ü 7e1f-cnry");

const COMMIT: &str = "c0ffee1234567890abcdef1234567890abcdef12";

fn all_canaries() -> Vec<(&'static str, &'static str)> {
    let mut all = DOTENV_CANARIES.to_vec();
    all.push(ENV_CANARY);
    all.push(COMMAND_CANARY);
    all
}

fn dotenv_quote(v: &str) -> String {
    let mut s = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '$' => s.push_str("\\$"),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Bodies are cut for reports at 100 (tables), 120 (observed), 160, 300 (evidence) and
/// 500 (command output) characters: one probe per cut puts a canary across it.
const CUTS: &[usize] = &[100, 120, 160, 300, 500];

/// A failing secret command's stderr is cut at 600 characters in its error message.
const STORE_STDERR_CUT: usize = 600;

fn spec() -> String {
    let mut s = String::from(
        r#"[project]
name = "canary"

[environments.staging]
provider = "local"
promotes_to = "production"
deploy_timeout = "60s"
secrets = { dotenv = "secrets.env" }

[environments.production]
provider = "local"
protected = true
deploy_timeout = "60s"
secrets = { dotenv = "secrets.env" }

[environments.qa]
provider = "local"
deploy_timeout = "60s"
secrets = { dotenv = "secrets.env" }

[environments.broken]
provider = "local"
deploy_timeout = "60s"
secrets = { dotenv = "secrets.env" }

[services.web]
health_path = "/up"
settings = { command = ["python3", "echo.py"], stop_timeout = "2s" }

"#,
    );
    for (name, _) in DOTENV_CANARIES {
        s.push_str(&format!("[vars.{name}]\nsecret = true\n\n"));
    }
    s.push_str(&format!(
        "[vars.{}]\nsecret = true\nsource = {{ env = \"{ENV_SOURCE}\" }}\n\n",
        ENV_CANARY.0
    ));
    s.push_str(&format!(
        "[vars.{}]\nsecret = true\nsource = {{ command = [\"cat\", \"cmd.secret\"] }}\n\n",
        COMMAND_CANARY.0
    ));
    // In `broken`, its command fails and prints the other canaries on stderr, one across
    // the cut of the error message. Sorted last, so the others are read before it.
    s.push_str(&format!(
        "[vars.ZZ_FAILING]\nsecret = true\nsource = {{ env = \"{ENV_SOURCE}\" }}\nsources.broken = {{ command = [\"python3\", \"echo.py\", \"fail\", \"{STORE_STDERR_CUT}\", \"cmd.secret\", \"pem.secret\"] }}\n\n"
    ));
    // Passing probes (staging, production): canaries sent in a query, headers, a form and a
    // JSON body, all echoed back.
    s.push_str(
        r#"[[probes]]
name = "echo-query"
environments = ["staging", "production"]
http = { url = "${services.web.url}/echo?at=7&q=${vars.CANARY_AMP}&p=${vars.CANARY_PLUS}&s=${vars.CANARY_SPACE}&lt=${vars.CANARY_LT}", headers = { Authorization = "Bearer ${vars.CANARY_QUOTE}", X-Canary = "${vars.CANARY_BACKSLASH}" }, expect = { status = 200 } }

[[probes]]
name = "echo-form"
environments = ["staging", "production"]
http = { url = "${services.web.url}/echo", method = "POST", form = { a = "${vars.CANARY_GT}", b = "${vars.CANARY_UNICODE}", pem = "${vars.CANARY_PEM}", pct = "${vars.CANARY_PERCENT}" }, expect = { status = 200 } }

[[probes]]
name = "echo-json"
environments = ["staging", "production"]
http = { url = "${services.web.url}/echo", method = "POST", json = { env = "${vars.CANARY_ENV}", cmd = "${vars.CANARY_CMD}", pem = "${vars.CANARY_PEM}", q = "${vars.CANARY_QUOTE}" }, expect = { status = 200 } }

"#,
    );
    // Failing probes (qa): their reports show the body, cut, with a canary across the cut.
    for cut in CUTS {
        s.push_str(&format!(
            r#"[[probes]]
name = "echo-cut-{cut}"
environments = ["qa"]
http = {{ url = "${{services.web.url}}/echo?at={cut}&q=${{vars.CANARY_AMP}}", headers = {{ Authorization = "Bearer ${{vars.CANARY_SPACE}}" }}, expect = {{ body_regex = "^never matches$" }} }}

"#
        ));
    }
    s.push_str(
        r#"[[probes]]
name = "echo-not-json"
environments = ["qa"]
http = { url = "${services.web.url}/echo?at=120", expect = { json = { "$.x" = "y" } } }

[[probes]]
name = "echo-command"
environments = ["qa"]
command = { run = ["python3", "echo.py", "print", "500", "${vars.CANARY_SPACE}", "${vars.CANARY_PEM}", "${vars.CANARY_UNICODE}", "${vars.CANARY_CMD}", "${vars.CANARY_ENV}"], stdout_regex = "^never matches$" }

[[probes]]
name = "echo-command-exit"
environments = ["qa"]
command = { run = ["python3", "echo.py", "print", "120", "${vars.CANARY_QUOTE}", "${vars.CANARY_PEM}"], exit_code = 3 }
"#,
    );
    s
}

fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("staging.toml"), spec()).unwrap();
    let mut env = String::new();
    for (name, value) in DOTENV_CANARIES {
        env.push_str(&format!("{name}={}\n", dotenv_quote(value)));
    }
    std::fs::write(dir.path().join("secrets.env"), env).unwrap();
    std::fs::write(dir.path().join("cmd.secret"), COMMAND_CANARY.1).unwrap();
    std::fs::write(dir.path().join("pem.secret"), DOTENV_CANARIES[9].1).unwrap();
    std::fs::create_dir(dir.path().join("home")).unwrap();
    std::fs::copy(fixture("echo.py"), dir.path().join("echo.py")).unwrap();
    dir
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The inputs the test wrote (they hold the canaries on purpose).
const INPUTS: &[&str] = &[
    "secrets.env",
    "cmd.secret",
    "pem.secret",
    "staging.toml",
    "echo.py",
];

fn staging_cmd(dir: &Path, args: &[&str]) -> StdCommand {
    let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin("staging"));
    cmd.args(args)
        .arg("-f")
        .arg(dir.join("staging.toml"))
        .current_dir(dir)
        .env(ENV_SOURCE, ENV_CANARY.1)
        // Whatever it might write under $HOME is scanned with the rest of the directory.
        .env("HOME", dir.join("home"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

/// Run `staging ARGS` (optionally with RUST_LOG=trace); its stdout and stderr as text.
fn run(dir: &Path, args: &[&str], trace: bool) -> (Option<i32>, String) {
    let mut cmd = staging_cmd(dir, args);
    if trace {
        cmd.env("RUST_LOG", "trace");
    }
    let out: Output = cmd.output().unwrap();
    let text = format!(
        "$ staging {}\n--- stdout\n{}\n--- stderr\n{}\n",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

// --- decoders, written independently of the redactor ---

fn json_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    let mut pending_high: Option<u32> = None;
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let Ok(unit) = u32::from_str_radix(&hex, 16) else {
                    out.push_str("\\u");
                    out.push_str(&hex);
                    continue;
                };
                if (0xD800..0xDC00).contains(&unit) {
                    pending_high = Some(unit);
                } else if let (Some(high), true) = (pending_high, (0xDC00..0xE000).contains(&unit))
                {
                    let c = 0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00);
                    out.extend(char::from_u32(c));
                    pending_high = None;
                } else {
                    out.extend(char::from_u32(unit));
                }
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn xml_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest[..rest.len().min(10)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%'
            && i + 2 < bytes.len()
            && let Ok(hex) = std::str::from_utf8(&bytes[i + 1..i + 3])
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if plus_is_space && b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn b64_value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    } as u32)
}

/// Every run of base64 characters in `s`, decoded from each of its first four offsets.
fn base64_views(s: &str) -> Vec<Vec<u8>> {
    let mut out = vec![];
    for run in s.split(|c: char| !c.is_ascii() || b64_value(c as u8).is_none()) {
        if run.len() < 6 {
            continue;
        }
        for offset in 0..4.min(run.len()) {
            let digits: Vec<u32> = run.as_bytes()[offset..]
                .iter()
                .filter_map(|b| b64_value(*b))
                .collect();
            let mut bytes = vec![];
            for group in digits.chunks(4) {
                let mut acc = 0u32;
                for (i, d) in group.iter().enumerate() {
                    acc |= d << (18 - 6 * i);
                }
                let n = match group.len() {
                    4 => 3,
                    3 => 2,
                    2 => 1,
                    _ => 0,
                };
                bytes.extend_from_slice(&acc.to_be_bytes()[1..1 + n]);
            }
            out.push(bytes);
        }
    }
    out
}

/// What in `text` reveals a canary, in words: the view in which the marker was found and
/// the text around it.
fn leaks(text: &str) -> Vec<String> {
    let xml = xml_unescape(text);
    let mut views: Vec<(&str, String)> = vec![
        ("raw", text.to_owned()),
        ("json-unescaped", json_unescape(text)),
        ("percent-decoded", percent_decode(text, false)),
        ("form-decoded", percent_decode(text, true)),
        (
            "json-then-form-decoded",
            percent_decode(&json_unescape(text), true),
        ),
        ("xml-unescaped", xml.clone()),
        ("xml-then-json-unescaped", json_unescape(&xml)),
        ("xml-then-percent-decoded", percent_decode(&xml, false)),
        ("xml-then-form-decoded", percent_decode(&xml, true)),
        (
            "xml-then-json-then-form-decoded",
            percent_decode(&json_unescape(&xml), true),
        ),
    ];
    let b64: Vec<u8> = base64_views(text)
        .into_iter()
        .flat_map(|mut b| {
            b.push(b'\n');
            b
        })
        .collect();
    views.push(("base64-decoded", String::from_utf8_lossy(&b64).into_owned()));
    let mut found = vec![];
    for (view, t) in views {
        if let Some(at) = t.find(MARKER) {
            let start = t.floor_char_boundary(at.saturating_sub(60));
            let end = t.ceil_char_boundary((at + 60).min(t.len()));
            found.push(format!("{view}: …{}…", &t[start..end]));
        }
    }
    found
}

fn assert_no_leak(what: &str, text: &str) {
    let found = leaks(text);
    assert!(
        found.is_empty(),
        "a canary leaked in {what}:\n{}\n\nfull text:\n{text}",
        found.join("\n")
    );
}

/// Every file under `dir` but the inputs, with its path.
fn written_files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !(d == dir
                && INPUTS
                    .iter()
                    .any(|i| p.file_name().is_some_and(|n| n == *i)))
            {
                let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
                out.push((p, text));
            }
        }
    }
    out
}

// --- the attack on the scanner ---

#[test]
fn the_scanner_finds_every_form_the_echo_service_prints() {
    let dir = workspace();
    let values: Vec<&str> = all_canaries().iter().map(|(_, v)| *v).collect();
    let out = StdCommand::new("python3")
        .arg(dir.path().join("echo.py"))
        .args(["print", "0"])
        .args(&values)
        .output()
        .unwrap();
    assert!(out.status.success());
    let payload = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = payload.lines().filter(|l| !l.is_empty()).collect();
    assert!(lines.len() > 100, "{payload}");
    for line in lines {
        if line.starts_with("-----") {
            continue; // the PEM armour lines carry no marker
        }
        assert!(!leaks(line).is_empty(), "the scanner misses {line:?}");
    }
    // XML-escaped, as a JUnit file writes them.
    assert!(!leaks("<system-out>cnry-lt&lt;tag1e5f</system-out>").is_empty());
    assert!(!leaks("q=c&#110;ry-amp").is_empty());
    // And a prefix left by a cut.
    assert!(!leaks("body \"....cnry-sp4…\"").is_empty());
}

// --- the suite ---

#[test]
fn no_form_of_any_canary_leaves_staging_through_any_command_output_or_file() {
    let dir = workspace();
    let d = dir.path();
    let mut transcript = String::new();
    let mut check = |(code, text): (Option<i32>, String), want: Option<i32>| {
        if let Some(want) = want {
            assert_eq!(code, Some(want), "{text}");
        }
        assert_no_leak(text.lines().next().unwrap_or(""), &text);
        transcript.push_str(&text);
    };

    check(
        run(
            d,
            &[
                "up", "--env", "staging", "--commit", COMMIT, "-vv", "--junit", "up.xml",
            ],
            true,
        ),
        Some(0),
    );
    check(
        run(
            d,
            &["up", "--env", "staging", "--commit", COMMIT, "--json"],
            false,
        ),
        Some(0),
    );
    check(
        run(
            d,
            &[
                "promote",
                "--to",
                "production",
                "--commit",
                COMMIT,
                "-vv",
                "--junit",
                "promote.xml",
            ],
            true,
        ),
        Some(0),
    );
    // qa: every failing probe shows a body (or command output) cut with a canary across it.
    check(
        run(
            d,
            &[
                "up", "--env", "qa", "--commit", COMMIT, "-vv", "--junit", "qa.xml",
            ],
            true,
        ),
        Some(1),
    );
    check(
        run(
            d,
            &["up", "--env", "qa", "--commit", COMMIT, "--json"],
            false,
        ),
        Some(1),
    );

    // `smoke` against the running qa stack.
    {
        let kept = KeptRunning::start(d, &["up", "--env", "qa", "--commit", COMMIT]);
        kept.wait_until_held();
        check(
            run(
                d,
                &[
                    "smoke",
                    "--env",
                    "qa",
                    "--commit",
                    COMMIT,
                    "-vv",
                    "--junit",
                    "smoke.xml",
                ],
                true,
            ),
            Some(1),
        );
        check(
            run(
                d,
                &["smoke", "--env", "qa", "--commit", COMMIT, "--json"],
                false,
            ),
            Some(1),
        );
        check(run(d, &["status", "--env", "qa", "-vv"], true), None);
        let (stdout, stderr) = kept.stop();
        assert_no_leak("`up --keep-running` stdout", &stdout);
        assert_no_leak("`up --keep-running` stderr", &stderr);
    }

    // A failing secret command whose stderr (the canaries, one across the cut) is quoted
    // in the error.
    check(
        run(d, &["secrets", "check", "--env", "broken", "-vv"], true),
        None,
    );
    check(
        run(
            d,
            &["up", "--env", "broken", "--commit", COMMIT, "--json"],
            false,
        ),
        None,
    );
    let broken = run(d, &["secrets", "check", "--env", "broken"], false);
    assert!(
        broken.1.contains("exit code 1") && broken.1.contains("…"),
        "the failing command's stderr is quoted, cut:\n{}",
        broken.1
    );
    check(broken, None);

    for env in ["staging", "qa"] {
        check(
            run(d, &["secrets", "check", "--env", env, "-vv"], true),
            None,
        );
        check(
            run(d, &["secrets", "check", "--env", env, "--json"], false),
            None,
        );
        check(run(d, &["doctor", "--env", env, "-vv"], true), None);
        check(run(d, &["doctor", "--env", env, "--json"], false), None);
    }
    check(
        run(d, &["secrets", "diff", "staging", "qa", "--json"], false),
        None,
    );
    check(
        run(d, &["secrets", "diff", "staging", "qa", "-vv"], true),
        None,
    );
    check(
        run(d, &["secrets", "sync", "--env", "qa", "-vv"], true),
        None,
    );
    check(
        run(
            d,
            &["secrets", "sync", "--env", "qa", "--apply", "--json"],
            true,
        ),
        None,
    );
    check(
        run(d, &["diff", "staging", "production", "-vv"], true),
        None,
    );
    check(run(d, &["diff", "staging", "qa", "--json"], false), None);

    let (_, listing) = run(d, &["evidence", "list", "--json"], false);
    let json_start = listing.find('{').unwrap();
    let json_end = listing.rfind('}').unwrap();
    let doc: serde_json::Value = serde_json::from_str(&listing[json_start..=json_end]).unwrap();
    let ids: Vec<String> = doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect();
    assert!(ids.len() >= 4, "{listing}");
    for id in &ids {
        check(run(d, &["evidence", "show", id, "-vv"], true), Some(0));
        check(run(d, &["evidence", "show", id, "--json"], false), Some(0));
    }

    if let Some(path) = std::env::var_os("STAGING_CANARY_TRANSCRIPT") {
        std::fs::write(path, &transcript).unwrap();
    }
    // The suite is not vacuous: the echoed secrets reached staging and were masked.
    assert!(
        transcript.contains("[REDACTED]"),
        "nothing was redacted: the canaries never came back"
    );
    for cut in CUTS {
        assert!(
            transcript.contains(&format!("echo-cut-{cut}")),
            "probe echo-cut-{cut} did not run"
        );
    }
    assert!(transcript.contains("body \""), "no body excerpt was shown");

    let files = written_files(d);
    for name in ["up.xml", "promote.xml", "qa.xml", "smoke.xml"] {
        assert!(
            files.iter().any(|(p, _)| p.ends_with(name)),
            "{name} was not written"
        );
    }
    assert!(
        files
            .iter()
            .any(|(p, _)| p.to_string_lossy().contains(".staging")),
        "no evidence or state file was written"
    );
    for (path, text) in files {
        assert_no_leak(&path.display().to_string(), &text);
    }
}

/// What the `Debug` of every value that handles the canaries shows: the spec, the resolved
/// values, the reports, the run context, the stores, the redactor. Runs in a child of this
/// test binary, which has the env-source canary in its environment (setting it in this
/// process would need `unsafe`).
#[test]
fn no_debug_output_of_the_values_that_hold_canaries_shows_any_form_of_them() {
    if std::env::var_os(ENV_SOURCE).is_none() {
        let dir = workspace();
        let out = StdCommand::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "no_debug_output_of_the_values_that_hold_canaries_shows_any_form_of_them",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV_SOURCE, ENV_CANARY.1)
            .env("STAGING_TEST_CANARY_DIR", dir.path())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "the child ran no test: {text}");
        assert!(
            text.contains("debug views checked: "),
            "the child checked nothing: {text}"
        );
        return;
    }
    let dir = PathBuf::from(std::env::var_os("STAGING_TEST_CANARY_DIR").unwrap());
    std::env::set_current_dir(&dir).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use staging_core::pipeline::{RunContext, Step};
        let spec = staging_core::spec::LoadedSpec::load(
            dir.join("staging.toml"),
            staging_core::spec::LoadOptions::new(&["local"]),
        )
        .unwrap();
        let mut views: Vec<(&str, String)> = vec![];
        let resolved = staging_secrets::resolve_vars(
            &staging_core::SecretBackends::none(),
            &spec,
            "staging",
            Some(COMMIT),
        )
        .await
        .unwrap();
        // Not vacuous: every canary was read, from each of the three kinds of source.
        for (name, _) in all_canaries() {
            assert!(
                resolved.values.contains_key(name),
                "{name} was not resolved: {resolved:?}"
            );
        }
        views.push(("ResolvedVars", format!("{resolved:?}")));
        views.push(("ResolvedVars (pretty)", format!("{resolved:#?}")));
        let report = staging_secrets::check(
            &staging_core::SecretBackends::none(),
            &spec,
            "staging",
            Some(COMMIT),
        )
        .await
        .unwrap();
        views.push(("CheckReport", format!("{report:#?}")));
        let broken = staging_secrets::check(
            &staging_core::SecretBackends::none(),
            &spec,
            "broken",
            Some(COMMIT),
        )
        .await;
        views.push(("check of broken", format!("{broken:#?}")));
        let diff = staging_secrets::diff(
            &staging_core::SecretBackends::none(),
            &spec,
            "staging",
            "qa",
            Some(COMMIT),
        )
        .await
        .unwrap();
        views.push(("DiffReport", format!("{diff:#?}")));
        let secrets = spec.spec.environments["staging"].secrets.clone().unwrap();
        let location = staging_secrets::locate(
            &staging_core::SecretBackends::none(),
            &spec,
            "staging",
            &secrets,
            "CANARY_PEM",
            true,
        )
        .unwrap();
        views.push(("Location", format!("{location:#?}")));
        let spec = std::sync::Arc::new(spec);
        let mut ctx = RunContext::new(spec.clone(), "staging", COMMIT).unwrap();
        let step = staging_secrets::SecretsStep.run(&mut ctx).await.unwrap();
        views.push(("StepReport", format!("{step:#?}")));
        views.push(("RunContext", format!("{ctx:?}")));
        views.push(("RunContext (pretty)", format!("{ctx:#?}")));
        views.push(("LoadedSpec", format!("{spec:#?}")));
        views.push((
            "Redactor",
            format!("{:?}", staging_core::Redactor::global()),
        ));
        for (what, text) in &views {
            assert_no_leak(what, text);
        }
        println!("debug views checked: {}", views.len());
    });
}

/// `staging up --keep-running`, its output collected as it comes.
struct KeptRunning {
    child: std::process::Child,
    stdout: std::sync::Arc<std::sync::Mutex<String>>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl KeptRunning {
    fn start(dir: &Path, args: &[&str]) -> Self {
        let mut child = staging_cmd(dir, args)
            .args(["--keep-running", "-vv"])
            .env("RUST_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut readers = vec![];
        let mut collect = |stream: Box<dyn std::io::Read + Send>| {
            let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
            let sink = text.clone();
            readers.push(std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 8192];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }));
            text
        };
        use std::io::Read;
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        KeptRunning {
            child,
            stdout,
            stderr,
            readers,
        }
    }

    fn wait_until_held(&self) {
        let started = Instant::now();
        while !self.stdout.lock().unwrap().contains("press Ctrl-C to stop") {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "`up --keep-running` never held the services:\n{}\n{}",
                self.stdout.lock().unwrap(),
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, wait (bounded), and what it printed.
    fn stop(mut self) -> (String, String) {
        self.terminate();
        (
            self.stdout.lock().unwrap().clone(),
            self.stderr.lock().unwrap().clone(),
        )
    }

    fn terminate(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let started = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() {
            if started.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("`up --keep-running` did not stop within 30s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The pipes are closed once it has exited: the readers end with what it printed last.
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for KeptRunning {
    fn drop(&mut self) {
        self.terminate();
    }
}
