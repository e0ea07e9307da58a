//! The cost of redaction: 100 secrets registered in all their forms, 10 MB of output.
//!
//! `cargo run --release -p staging-core --example bench_redact` prints the registration
//! time, the number of forms, and the time and throughput of redacting 10 MB that holds
//! no secret, and 10 MB in which a registered form appears every ~4 KB.

use std::time::Instant;

use secrecy::SecretString;
use staging_core::Redactor;

/// A small deterministic generator, so that every run measures the same text.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn pick(&mut self, from: &[u8]) -> u8 {
        from[(self.next() as usize) % from.len()]
    }
}

const SECRET_CHARS: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 \"\\&<>%+-_/=";
const LOG_WORDS: &[&str] = &[
    "GET",
    "/api/v1/orders",
    "200",
    "in",
    "12ms",
    "user=42",
    "INFO",
    "request",
    "completed",
    "worker",
    "started",
    "queue=default",
    "{\"level\":\"debug\",",
    "\"msg\":\"cache",
    "miss\"}",
];

fn main() {
    let mut rng = Lcg(0x5eed);
    let secrets: Vec<String> = (0..100)
        .map(|i| {
            let len = 24 + (rng.next() as usize % 40);
            let mut s: String = (0..len).map(|_| rng.pick(SECRET_CHARS) as char).collect();
            if i % 10 == 0 {
                s.push_str("\nsecond-line-of-a-multi-line-value-");
                s.push_str(&i.to_string());
            }
            s
        })
        .collect();

    let redactor = Redactor::new();
    // Compile the static regexes first: they are not what is measured.
    redactor.redact("authorization: x postgres://a:b@c");
    let started = Instant::now();
    for s in &secrets {
        redactor.register(&SecretString::from(s.clone()));
    }
    let registration = started.elapsed();

    const SIZE: usize = 10 * 1024 * 1024;
    let mut clean = String::with_capacity(SIZE + 128);
    while clean.len() < SIZE {
        let w = LOG_WORDS[rng.next() as usize % LOG_WORDS.len()];
        clean.push_str(w);
        clean.push(if rng.next().is_multiple_of(12) {
            '\n'
        } else {
            ' '
        });
    }
    let mut dirty = String::with_capacity(SIZE + 128);
    let mut since = 0;
    for line in clean.lines() {
        dirty.push_str(line);
        dirty.push('\n');
        since += line.len();
        if since > 4096 {
            let s = &secrets[rng.next() as usize % secrets.len()];
            dirty.push_str("token=");
            dirty.push_str(s.lines().next().unwrap_or(s));
            dirty.push('\n');
            since = 0;
        }
    }

    // Short lines are searched form by form until that would cost more than a build; the
    // first long text builds the automaton.
    let started = Instant::now();
    redactor.redact("a short line is searched form by form");
    let short = started.elapsed();
    let started = Instant::now();
    redactor.redact(&clean);
    let first = started.elapsed();
    println!(
        "registered 100 secrets as {} forms in {:.1} ms; a short line before the automaton exists: {:.3} ms; the first 10 MB redaction (builds it): {:.1} ms",
        redactor.forms(),
        registration.as_secs_f64() * 1e3,
        short.as_secs_f64() * 1e3,
        first.as_secs_f64() * 1e3
    );
    for (name, f) in [
        (
            "URL credentials alone",
            staging_core::redact::mask_url_credentials as fn(&str) -> std::borrow::Cow<'_, str>,
        ),
        (
            "credential headers alone",
            staging_core::redact::mask_credential_headers,
        ),
    ] {
        let started = Instant::now();
        let _ = f(&clean);
        println!("{name}: {:.1} ms", started.elapsed().as_secs_f64() * 1e3);
    }
    // How a run registers: one value at a time, with log lines redacted in between (each
    // registration makes the automaton stale).
    let one_by_one = Redactor::new();
    let started = Instant::now();
    for s in &secrets {
        one_by_one.register(&SecretString::from(s.clone()));
        one_by_one.redact("resolved one more variable");
    }
    println!(
        "registering the 100 one at a time, redacting a line after each: {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    for (name, text) in [("no secret", &clean), ("a secret every ~4 KB", &dirty)] {
        let mut best = f64::MAX;
        let mut masked = 0;
        for _ in 0..5 {
            let started = Instant::now();
            let out = redactor.redact(text);
            best = best.min(started.elapsed().as_secs_f64());
            masked = out.matches(staging_core::redact::MASK).count();
        }
        println!(
            "{name}: {:.1} MB in {:.1} ms ({:.0} MB/s), {masked} masked",
            text.len() as f64 / 1e6,
            best * 1e3,
            text.len() as f64 / 1e6 / best
        );
    }
}
