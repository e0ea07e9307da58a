//! What `staging` does with a spec it cannot use: a missing file, a directory, binary
//! garbage, a FIFO or device, an oversized file, invalid UTF-8, a `promotes_to` cycle, a huge
//! duration. Each is a usage error (exit 2) that says what and where, never a panic (exit
//! 101), a hang, or exit 3.

use std::path::Path;

use assert_cmd::Command;

const GOOD: &str = r#"[project]
name = "demo"

[environments.staging]
provider = "local"
promotes_to = "production"

[environments.production]
provider = "local"
protected = true

[services.web]
settings = { command = ["demo-app"] }
"#;

fn validate(path: &Path) -> (Option<i32>, String) {
    let out = Command::cargo_bin("staging")
        .unwrap()
        .arg("validate")
        .arg("-f")
        .arg(path)
        .env_remove("STAGING_ENV")
        .output()
        .unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn validate_bytes(bytes: &[u8]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("staging.toml");
    std::fs::write(&path, bytes).unwrap();
    validate(&path)
}

#[test]
fn a_missing_spec_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let (code, text) = validate(&path);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("nope.toml") && text.contains("cannot read spec"),
        "{text}"
    );
}

#[test]
fn a_directory_as_spec_exits_2_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = validate(dir.path());
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("directory"), "{text}");
}

#[test]
fn a_fifo_or_a_device_as_spec_exits_2_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("staging.toml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // Opening a FIFO with no writer would block: the loader must not open it.
    let (code, text) = validate(&fifo);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("not a regular file"), "{text}");

    let zero = dir.path().join("zero.toml");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let (code, text) = validate(&zero);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("not a regular file"), "{text}");
}

#[test]
fn an_oversized_spec_exits_2_saying_so() {
    let mut bytes = GOOD.as_bytes().to_vec();
    bytes.extend(std::iter::repeat_n(b'#', 9 << 20));
    let (code, text) = validate_bytes(&bytes);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("larger than"), "{text}");
}

#[test]
fn binary_garbage_exits_2_at_the_first_bad_byte() {
    let (code, text) = validate_bytes(&[0x7f, b'E', b'L', b'F', 0x02, 0x01, 0xff, 0xfe, 0, 0]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("staging.toml:1:7: "), "{text}");
    assert!(text.contains("not UTF-8"), "{text}");
}

#[test]
fn invalid_utf8_exits_2_at_its_line_and_column() {
    let mut bytes = GOOD.as_bytes().to_vec();
    let at = GOOD.find("demo-app").unwrap();
    bytes[at + 2] = 0xc3; // `de\xc3o-app`: a lead byte without its continuation
    let (code, text) = validate_bytes(&bytes);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("staging.toml:13:28: "), "{text}");
}

#[test]
fn a_promotes_to_cycle_exits_2_at_the_promotes_to() {
    let text = GOOD.replace(
        "protected = true",
        "protected = true\npromotes_to = \"staging\"",
    );
    let (code, out) = validate_bytes(text.as_bytes());
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("staging.toml:11:15: ") && out.contains("cycle"),
        "{out}"
    );
}

#[test]
fn a_huge_duration_exits_2_at_its_value_without_a_panic() {
    let text = GOOD.replace(
        "settings = { command = [\"demo-app\"] }",
        "settings = { command = [\"demo-app\"], stop_timeout = \"307445734561825861m\" }",
    );
    let (code, out) = validate_bytes(text.as_bytes());
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("too long"), "{out}");
    assert!(out.contains("staging.toml:13:53: "), "at the value: {out}");
}

#[test]
fn a_reference_error_after_an_escape_and_a_multi_byte_character_exits_2_at_its_column() {
    let text = GOOD.replace(
        "settings = { command = [\"demo-app\"] }",
        "settings = { command = [\"demo-app\", \"\\\"é${\"] }",
    );
    let (code, out) = validate_bytes(text.as_bytes());
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("staging.toml:13:41: "), "{out}");
}
