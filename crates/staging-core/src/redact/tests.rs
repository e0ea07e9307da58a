use super::*;

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

#[test]
fn registered_values_are_masked_everywhere_they_appear() {
    let r = Redactor::new();
    r.register(&secret("canary-7f3a9c"));
    assert_eq!(
        r.redact("a canary-7f3a9c b canary-7f3a9c"),
        "a [REDACTED] b [REDACTED]"
    );
}

#[test]
fn trimmed_form_of_a_value_with_a_trailing_newline_is_masked_too() {
    let r = Redactor::new();
    r.register(&secret("sk_live_abcdef\n"));
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
    r.register(&secret("on"));
    assert!(r.is_empty());
    assert_eq!(r.redact("turn on"), "turn on");
}

#[test]
fn debug_shows_no_values() {
    let r = Redactor::new();
    r.register(&secret("canary-debug-1234"));
    r.redact("x");
    let shown = format!("{r:?}");
    assert!(!shown.contains("canary"), "{shown}");
    assert!(!shown.contains("Y2FuYXJ5"), "{shown}");
}

#[test]
fn json_escaped_percent_encoded_and_base64_forms_are_masked() {
    let r = Redactor::new();
    r.register(&secret("sm\"tp pa&ss<é>"));
    for leaked in [
        r#"{"SMTP_PASSWORD": "sm\"tp pa&ss<é>"}"#,
        r#"{"SMTP_PASSWORD": "sm\"tp pa\u0026ss\u003cé\u003e"}"#,
        r#"{"SMTP_PASSWORD": "sm\"tp pa&ss<\u00e9>"}"#,
        "?p=sm%22tp%20pa%26ss%3C%C3%A9%3E&x=1",
        "p=sm%22tp+pa%26ss%3C%C3%A9%3E",
        "Basic c20idHAgcGEmc3M8w6k+",
    ] {
        let out = r.redact(leaked);
        assert!(out.contains(MASK), "{leaked} -> {out}");
        assert!(!out.contains("tp"), "{leaked} -> {out}");
    }
}

#[test]
fn a_value_inside_a_larger_base64_blob_is_masked_at_every_alignment() {
    use base64::Engine;
    let value = "jwt-a14062b40fed73fb56c4";
    let r = Redactor::new();
    r.register(&secret(value));
    for prefix in ["", "a", "ab", "abc"] {
        let blob = base64::engine::general_purpose::STANDARD
            .encode(format!("{{\"k\":\"{prefix}{value}\",\"more\":1}}"));
        let out = r.redact(&blob);
        assert!(out.contains(MASK), "prefix {prefix:?}: {out}");
    }
}

#[test]
fn each_line_of_a_multi_line_value_is_masked_on_its_own() {
    let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n";
    let r = Redactor::new();
    r.register(&secret(pem));
    assert_eq!(r.redact(pem), MASK);
    assert_eq!(
        r.redact("log: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
        "log: [REDACTED]"
    );
    assert_eq!(
        r.redact(&pem.replace('\n', "\r\n")).matches("MII").count(),
        0
    );
    assert!(!r.redact(&pem.replace('\n', "\\n")).contains("BKcwgg"));
}

#[test]
fn credential_headers_are_masked_without_registration() {
    let r = Redactor::new();
    for (text, gone) in [
        ("Authorization: Bearer abc.def.ghi", "abc.def"),
        ("proxy-authorization: Basic dXNlcjpwYXNz", "dXNlcjpw"),
        ("{\"cookie\": \"sid=s3ss10n; x=1\", \"ok\": 1}", "s3ss10n"),
        ("Set-Cookie: sid=s3ss10n; HttpOnly", "s3ss10n"),
        ("headers {\"authorization\": \"Bearer tok-123\"}", "tok-123"),
    ] {
        let out = r.redact(text);
        assert!(!out.contains(gone), "{text} -> {out}");
        assert!(out.contains(MASK), "{text} -> {out}");
    }
    let json = r.redact("{\"cookie\": \"sid=s3ss10n\", \"ok\": 1}");
    assert_eq!(json, "{\"cookie\": \"[REDACTED]\", \"ok\": 1}");
    assert_eq!(
        r.redact("{'Authorization': 'Bearer tok-456', 'x': 1}"),
        "{'Authorization': '[REDACTED]', 'x': 1}"
    );
    assert_eq!(
        r.redact("> GET /\n> Cookie: sid=abc\n> Accept: */*"),
        "> GET /\n> Cookie: [REDACTED]\n> Accept: */*"
    );
    // Prose that merely names the header keeps its words; so does a quoted word followed by
    // a colon (a key's value is quoted), another header, and a capture's `cookie:NAME`.
    for kept in [
        "authorization failed",
        "$.via == \"cookie\": all 3 steps passed in 4 ms",
        "x-cookie-policy: strict",
        "capture = { session = \"cookie:session\" }",
    ] {
        assert_eq!(r.redact(kept), kept);
    }
}

#[test]
fn shorten_redacts_the_whole_text_before_it_cuts() {
    let value = "jwt-a14062b40fed73fb56c4-9588be189eba56dcc26fbf0011223344";
    let r = Redactor::new();
    r.register(&secret(value));
    for before in 0..130 {
        let text = format!("{}{value}{}", "x".repeat(before), "y".repeat(200));
        for max in [40, 100, 120, 160, 300] {
            let out = r.shorten(&text, max);
            assert!(!out.contains("jwt-a"), "cut {max} at {before}: {out}");
            assert!(!out.contains("a14062"), "cut {max} at {before}: {out}");
            assert!(out.chars().count() <= max + 1, "{out}");
        }
    }
    assert_eq!(r.shorten("short", 120), "short");
    assert_eq!(r.shorten("abcdef", 3), "abc…");
}

#[test]
fn redact_head_drops_the_start_of_a_secret_cut_by_the_end_of_the_head() {
    let value = "canary-head-0123456789";
    let r = Redactor::new();
    r.register(&secret(value));
    let text = format!("{}{value}", "x".repeat(100));
    for cut in 100..text.len() {
        let head = r.redact_head(&text[..cut]);
        assert!(!head.contains("canary"), "{head}");
    }
}

#[tokio::test]
async fn child_output_is_read_lossily_to_the_end_and_redacted() {
    let r = Redactor::new();
    r.register(&secret("line-secret-42"));
    let input: &[u8] = b"ok \xff\xfe bad\r\nline-secret-42\nlast without newline";
    let mut lines = vec![];
    for_each_line_lossy(input, &r, |l| lines.push(l)).await;
    assert_eq!(
        lines,
        vec!["ok \u{fffd}\u{fffd} bad", MASK, "last without newline"]
    );
}

#[tokio::test]
async fn an_overlong_line_is_cut_after_redaction_and_reading_goes_on() {
    let r = Redactor::new();
    let value = "overlong-secret-value";
    r.register(&secret(value));
    let mut input = vec![b'a'; MAX_LINE_BYTES - 5];
    input.extend_from_slice(value.as_bytes());
    input.extend_from_slice(b"\nnext\n");
    let mut lines = vec![];
    for_each_line_lossy(&input[..], &r, |l| lines.push(l)).await;
    assert_eq!(lines.len(), 2);
    assert!(!lines[0].contains("overl"));
    assert_eq!(lines[1], "next");
}

#[test]
fn overlapping_secrets_are_masked_whole_with_no_tail_left() {
    let r = Redactor::new();
    r.register(&secret("tok-abcdefgh"));
    r.register(&secret("efgh-ijklmnop"));
    // Leftmost-longest would mask the first and leave `-ijklmnop` of the second.
    assert_eq!(r.redact("x tok-abcdefgh-ijklmnop y"), "x [REDACTED] y");
    // A shorter secret inside a longer one, and two adjacent ones, become one mask.
    r.register(&secret("inner-secret"));
    assert_eq!(
        r.redact("outer-inner-secret-end tok-abcdefghinner-secret"),
        "outer-[REDACTED]-end [REDACTED]"
    );
}

#[test]
fn searching_form_by_form_finds_the_same_spans_as_the_automaton() {
    let values = [
        "tok-abcdefgh",
        "efgh-ijklmnop",
        "sm\"tp pa&ss<é>",
        "-----BEGIN KEY-----\nMIIEvQIBADANBgkq\nabc\n-----END KEY-----",
        "aaaa",
        "ü-ü-ü-ü",
    ];
    let r = Redactor::new();
    for v in values {
        r.register(&secret(v));
    }
    let forms: Vec<String> = {
        let inner = r.inner.read().unwrap();
        inner
            .forms
            .iter()
            .map(|f| f.expose_secret().to_owned())
            .collect()
    };
    let matcher = r.matcher().unwrap();
    // A small deterministic generator: texts made of pieces of forms and filler, so that
    // forms overlap, repeat, abut and are cut.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..300 {
        let mut text = String::new();
        for _ in 0..(next() % 8) {
            match next() % 3 {
                0 => text.push_str(&forms[(next() as usize) % forms.len()]),
                1 => {
                    let f = &forms[(next() as usize) % forms.len()];
                    let cut = f.char_indices().nth((next() as usize) % f.chars().count());
                    text.push_str(&f[..cut.map_or(f.len(), |(i, _)| i)]);
                }
                _ => text.push_str(["aa", " ", "é", "ijkl", "\n"][(next() % 5) as usize]),
            }
        }
        let stored: Vec<SecretString> = forms.iter().map(|f| secret(f)).collect();
        assert_eq!(
            naive_spans(&stored, &text),
            masked_spans(&matcher, &text),
            "{text:?}"
        );
    }
}

#[test]
fn the_automaton_is_built_only_once_form_by_form_search_would_cost_more() {
    let r = Redactor::new();
    r.register(&secret("canary-lazy-0123456789"));
    for _ in 0..100 {
        assert_eq!(
            r.redact("a log line canary-lazy-0123456789"),
            "a log line [REDACTED]"
        );
    }
    assert!(
        r.inner.read().unwrap().matcher.is_none(),
        "built for short lines"
    );
    let long = format!("{}canary-lazy-0123456789", "x".repeat(NAIVE_BUDGET));
    assert!(r.redact(&long).ends_with("x[REDACTED]"));
    assert!(r.inner.read().unwrap().matcher.is_some(), "never built");
    // A new registration makes it stale again, and short lines are searched form by form.
    r.register(&secret("canary-later-9876543210"));
    assert!(r.inner.read().unwrap().matcher.is_none());
    assert_eq!(r.redact("canary-later-9876543210"), MASK);
}
