//! Feeds arbitrary bytes to the spec loader: it must return (a spec or an error), never
//! panic, and every error must carry a location.
#![no_main]

use libfuzzer_sys::fuzz_target;
use staging_core::Error;
use staging_core::spec::{LoadOptions, LoadedSpec};

fn env(name: &str) -> Option<String> {
    match name {
        "HOME" => Some("/home/fuzz".into()),
        "DEMO_PORT" => Some("8080".into()),
        // A value that looks like a pipeline reference: it must stay literal text.
        "SNEAKY" => Some("${vars.API_TOKEN}".into()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let options = LoadOptions {
        env: &env,
        known_providers: &["local", "render", "aws", "netlify"],
    };
    if let Err(Error::ConfigInvalid { location, message }) =
        LoadedSpec::parse_bytes("staging.toml", data.to_vec(), options)
    {
        assert!(location.is_some(), "an error without a location: {message}");
    }
});
