//! The spec loader on 20,000+ mutated specs, generated deterministically from the examples'
//! specs: byte flips, truncations, interpolation edge cases (`${`, `$${`, nested defaults),
//! escapes and `'''` strings before multi-byte characters, deep nesting, invalid UTF-8 and
//! huge durations. No input may make the loader panic, and every error must carry a
//! `file:line:col` that lies inside the file.
//!
//! The stable counterpart of the `cargo fuzz` target in `fuzz/` (nightly only): it runs in
//! every `cargo test`, in bounded time (a fixed number of cases, no corpus on disk). The
//! reproducers of bugs found so far are the `regression_*` tests below.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

use staging_core::Error;
use staging_core::spec::{LoadOptions, LoadedSpec};

const SEEDS: &[&str] = &[
    include_str!("../../../examples/demo/staging.toml"),
    include_str!("../../../examples/aws/staging.toml"),
    include_str!("../../../examples/render/staging.toml"),
    include_str!("../../../examples/netlify/staging.toml"),
    include_str!("../../../examples/secrets-check/staging.toml"),
];

const PROVIDERS: &[&str] = &["local", "render", "aws", "netlify"];

/// How many mutated specs the run loads (on top of the crafted ones).
const CASES: usize = 20_000;

fn env(name: &str) -> Option<String> {
    match name {
        "HOME" => Some("/home/fuzz".into()),
        "DEMO_PORT" => Some("8080".into()),
        "SNEAKY" => Some("${vars.API_TOKEN}".into()),
        "UNICODE" => Some("é€😀".into()),
        _ => None,
    }
}

/// Pieces inserted into specs: interpolation edge cases, escapes and quotes before
/// multi-byte characters, invalid UTF-8, structure characters, huge durations.
const SNIPPETS: &[&[u8]] = &[
    b"${",
    b"$${",
    b"$$${",
    b"}",
    b"${}",
    b"${A:-${B}}",
    b"${A:-${B:-${C:-d}}}",
    b"${HOME:-${vars.X}}",
    b"${vars.X:-${HOME}}",
    b"${RX:-^a{2}$}",
    b"${RX:-{",
    b"${vars.",
    b"${commit",
    b"${commit:-",
    b"${services.web.url}",
    b"${capture.x}",
    b"${SNEAKY}",
    b"${UNICODE}",
    b"${a b}",
    b"\\\"\xc3\xa9${",
    b"\\u00e9${",
    b"\\U0001F600${x",
    b"\\t\xe2\x82\xac${",
    b"\\\n  \xc3\xa9${",
    b"\\",
    b"\"",
    b"'",
    b"'''",
    b"\"\"\"",
    b"\n",
    b"\r\n",
    b"=",
    b"[",
    b"]",
    b"{",
    b"[[probes]]\n",
    b"[environments.x]\npromotes_to = \"staging\"\n",
    b"a.b.c.d = 1\n",
    b"\"307445734561825861m\"",
    b"\"500000000000y\"",
    b"\"18446744073709551616\"",
    b"99999999999999999999999",
    b"\xff",
    b"\xc3",
    b"\xe2\x82",
    b"\xf0\x9f\x98",
    b"\xf0\x9f\x98\x80",
    b"\xc3\xa9",
    b"\x00",
];

/// Whole lines that put a `${` problem after escapes and multi-byte characters, in every
/// kind of TOML string.
const LINES: &[&str] = &[
    "x = \"\\\"é${\"",
    "x = \"\\u00e9\\u00e9 ${ nope\"",
    "x = '''\né${'''",
    "x = '''é\né ${a b}'''",
    "x = \"\"\"\né\\\n   é ${\"\"\"",
    "x = \"\"\"\\\"é\n${A:-${B}\"\"\"",
    "x = 'é${'",
    "x = \"é€😀${}\"",
    "x = \"\\\\${UNDEFINED_X}é\"",
    "timeout = \"307445734561825861m\"",
    "stop_timeout = \"307445734561825861m\"",
    "deploy_timeout = \"99999999999999d\"",
    "promotes_to = \"staging\"",
];

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn insert(s: &mut Vec<u8>, at: usize, piece: &[u8]) {
    let at = at.min(s.len());
    s.splice(at..at, piece.iter().copied());
}

fn line_starts(s: &[u8]) -> Vec<usize> {
    std::iter::once(0)
        .chain(
            s.iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect()
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut s = seed.to_vec();
    for _ in 0..1 + rng.below(3) {
        let len = s.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                s[i] = rng.next() as u8;
            }
            1 => s.truncate(rng.below(len + 1)),
            2 => {
                let piece = SNIPPETS[rng.below(SNIPPETS.len())];
                insert(&mut s, rng.below(len + 1), piece);
            }
            3 => {
                // Inside a string: right after a random quote.
                let quotes: Vec<usize> = (0..len)
                    .filter(|&i| s[i] == b'"' || s[i] == b'\'')
                    .collect();
                if !quotes.is_empty() {
                    let at = quotes[rng.below(quotes.len())] + 1;
                    let piece = SNIPPETS[rng.below(SNIPPETS.len())];
                    insert(&mut s, at, piece);
                }
            }
            4 => {
                // Replace a line's value with a crafted one, keeping its key.
                let starts = line_starts(&s);
                let start = starts[rng.below(starts.len())];
                let end = s[start..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(s.len(), |p| start + p);
                let line = LINES[rng.below(LINES.len())];
                let replacement = match s[start..end].iter().position(|b| *b == b'=') {
                    Some(eq) if rng.below(2) == 0 => {
                        let value = line.split_once('=').map_or(line, |(_, v)| v);
                        [&s[start..start + eq + 1], value.as_bytes()].concat()
                    }
                    _ => line.as_bytes().to_vec(),
                };
                s.splice(start..end, replacement);
            }
            5 if len > 0 => {
                let a = rng.below(len);
                let b = (a + rng.below(64)).min(len);
                s.drain(a..b);
            }
            6 => {
                let starts = line_starts(&s);
                let start = starts[rng.below(starts.len())];
                let end = s[start..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(s.len(), |p| start + p + 1);
                let line = s[start..end].to_vec();
                insert(&mut s, rng.below(len + 1), &line);
            }
            7 => {
                // A multi-byte character, then a `${` problem, in the same string.
                let quotes: Vec<usize> = (0..len).filter(|&i| s[i] == b'"').collect();
                if !quotes.is_empty() {
                    let at = quotes[rng.below(quotes.len())] + 1;
                    insert(&mut s, at, "\\\"é€😀${".as_bytes());
                }
            }
            _ => {
                let piece = SNIPPETS[rng.below(SNIPPETS.len())];
                s.extend_from_slice(piece);
            }
        }
    }
    s
}

/// Specs built to hit limits: deep nesting of every kind, long default chains.
fn crafted() -> Vec<Vec<u8>> {
    let base = SEEDS[0];
    let mut out = vec![];
    for depth in [10, 100, 127, 128, 129, 200, 1_000, 5_000] {
        let dotted = vec!["a"; depth].join(".");
        out.push(format!("{base}\n{dotted} = 1\n").into_bytes());
        out.push(format!("{base}\n[{dotted}]\nx = 1\n").into_bytes());
        out.push(format!("{base}\nx = {}1{}\n", "[".repeat(depth), "]".repeat(depth)).into_bytes());
        out.push(
            format!(
                "{base}\nx = {}1{}\n",
                "{a = ".repeat(depth),
                "}".repeat(depth)
            )
            .into_bytes(),
        );
        out.push(
            format!(
                "{base}\n[project.x]\ny = \"{}z{}\"\n",
                "${A:-".repeat(depth),
                "}".repeat(depth)
            )
            .into_bytes(),
        );
    }
    for line in LINES {
        out.push(format!("{base}\n[extra]\n{line}\n").into_bytes());
        out.push(format!("{line}\n{base}").into_bytes());
    }
    for cut in 0..base.len() {
        if cut % 7 == 0 {
            out.push(base.as_bytes()[..cut].to_vec());
        }
    }
    out.push(vec![0xff; 64]);
    out.push(b"\xef\xbb\xbf[project]\nname = \"x\"\n".to_vec());
    out
}

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// What is wrong with the loader's answer to `bytes`, if anything.
fn judge(bytes: &[u8]) -> Option<String> {
    let options = LoadOptions {
        env: &env,
        known_providers: PROVIDERS,
        instance: None,
    };
    let result = catch_unwind(AssertUnwindSafe(|| {
        LoadedSpec::parse_bytes("staging.toml", bytes.to_vec(), options)
    }));
    match result {
        Err(_) => Some(format!(
            "panicked: {}",
            LAST_PANIC.lock().unwrap().take().unwrap_or_default()
        )),
        Ok(Ok(_)) => None,
        Ok(Err(Error::ConfigInvalid { location, message })) => {
            check_location(bytes, location.as_deref()).map(|why| format!("{why}: {message}"))
        }
        Ok(Err(other)) => Some(format!("not a config error: {other}")),
    }
}

/// `staging.toml:LINE:COL` with LINE and COL inside the file.
fn check_location(bytes: &[u8], location: Option<&str>) -> Option<String> {
    let Some(loc) = location else {
        return Some("no location".into());
    };
    let Some(rest) = loc.strip_prefix("staging.toml:") else {
        return Some(format!("location `{loc}` has no line:col"));
    };
    let Some((line, col)) = rest.split_once(':') else {
        return Some(format!("location `{loc}` has no column"));
    };
    let (Ok(line), Ok(col)) = (line.parse::<usize>(), col.parse::<usize>()) else {
        return Some(format!("location `{loc}` is not line:col"));
    };
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.split('\n').collect();
    if line == 0 || line > lines.len() {
        return Some(format!(
            "line {line} of `{loc}` is outside the file ({} lines)",
            lines.len()
        ));
    }
    let width = lines[line - 1].chars().count();
    if col == 0 || col > width + 1 {
        return Some(format!(
            "column {col} of `{loc}` is outside line {line} ({width} characters)"
        ));
    }
    None
}

fn run(cases: impl IntoIterator<Item = Vec<u8>>) -> (usize, Vec<String>) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        *LAST_PANIC.lock().unwrap() = Some(info.to_string());
    }));
    let mut count = 0;
    let mut failures = vec![];
    for case in cases {
        count += 1;
        if let Some(why) = judge(&case) {
            if failures.len() < 10 {
                failures.push(format!(
                    "{why}\n--- input ---\n{}",
                    String::from_utf8_lossy(&case)
                ));
            } else {
                failures.push(why);
            }
        }
    }
    std::panic::set_hook(previous);
    (count, failures)
}

#[test]
fn twenty_thousand_mutated_specs_load_without_a_panic_and_every_error_has_a_place() {
    let mut rng = Rng(0x5EED_0F5E_C500);
    let started = std::time::Instant::now();
    let mutated = (0..CASES).map(|i| mutate(&mut rng, SEEDS[i % SEEDS.len()].as_bytes()));
    let (count, failures) = run(mutated.chain(crafted()));
    assert!(count > CASES, "{count}");
    assert!(
        failures.is_empty(),
        "{} of {count} specs failed (in {:?}); the first:\n{}",
        failures.len(),
        started.elapsed(),
        failures
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n=====\n")
    );
}

#[test]
fn the_examples_load() {
    for seed in SEEDS {
        assert_eq!(judge(seed.as_bytes()), None);
        let options = LoadOptions {
            env: &env,
            known_providers: PROVIDERS,
            instance: None,
        };
        LoadedSpec::parse_bytes("staging.toml", seed.as_bytes().to_vec(), options).unwrap();
    }
}

fn error_of(text: &[u8]) -> (String, String) {
    let options = LoadOptions {
        env: &env,
        known_providers: PROVIDERS,
        instance: None,
    };
    match LoadedSpec::parse_bytes("staging.toml", text.to_vec(), options) {
        Err(Error::ConfigInvalid { location, message }) => (location.unwrap_or_default(), message),
        other => panic!("expected a config error, got {other:?}"),
    }
}

const MINIMAL: &str = "[project]\nname = \"x\"\n[environments.staging]\nprovider = \"local\"\n";

#[test]
fn regression_a_reference_error_after_an_escape_and_a_multi_byte_character_is_at_its_column() {
    // Used to panic: a byte offset in the decoded string was used as one in the file.
    let (at, message) = error_of(format!("{MINIMAL}[vars.X]\nvalue = \"\\\"é${{\"\n").as_bytes());
    assert_eq!(at, "staging.toml:6:13", "{message}");
    let (at, _) =
        error_of(format!("{MINIMAL}[vars.X]\nvalue = \"\\u00e9é ${{a b}}\"\n").as_bytes());
    assert_eq!(at, "staging.toml:6:18");
}

#[test]
fn regression_a_reference_error_in_a_multi_line_string_is_at_its_line_and_column() {
    let (at, _) = error_of(format!("{MINIMAL}[vars.X]\nvalue = '''\néé ${{'''\n").as_bytes());
    assert_eq!(at, "staging.toml:7:4");
    let (at, _) = error_of(
        format!("{MINIMAL}[vars.X]\nvalue = \"\"\"\né\\\n   é ${{NOPE_NOT_SET}}\"\"\"\n")
            .as_bytes(),
    );
    assert_eq!(at, "staging.toml:8:6");
}

#[test]
fn regression_a_huge_duration_is_an_error_at_its_value() {
    let (at, message) =
        error_of(format!("{MINIMAL}deploy_timeout = \"307445734561825861m\"\n").as_bytes());
    assert_eq!(at, "staging.toml:5:18");
    assert!(message.contains("too long"), "{message}");
}

#[test]
fn invalid_utf8_is_reported_at_the_first_bad_byte() {
    let (at, message) = error_of(b"[project]\nname = \"ab\xffc\"\n");
    assert_eq!(at, "staging.toml:2:11");
    assert!(message.contains("not UTF-8"), "{message}");
}

#[test]
fn dotted_keys_past_the_recursion_limit_have_a_location() {
    let dotted = vec!["a"; 5_000].join(".");
    let (at, message) = error_of(format!("{MINIMAL}{dotted} = 1\n").as_bytes());
    assert!(at.starts_with("staging.toml:5:"), "{at}: {message}");
}
