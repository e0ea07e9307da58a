//! `AwsFactory::build` uses the standard aws-config chain, so `AWS_ENDPOINT_URL` and the
//! usual credential variables point it at moto. The environment is only ever set on a child
//! process (this same test binary, re-run), so no test races on the process environment.

mod common;

use std::process::Command;

use staging_core::ProviderFactory;
use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_provider_aws::AwsFactory;

const CHILD: &str = "STAGING_AWS_FACTORY_CHILD";

#[test]
fn the_factory_reads_endpoint_and_credentials_from_the_standard_chain() {
    if std::env::var(CHILD).is_ok() {
        return child();
    }
    let moto = &common::moto().url;
    let cluster = common::unique("chain");
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_factory_reads_endpoint_and_credentials_from_the_standard_chain",
            "--nocapture",
        ])
        .env(CHILD, &cluster)
        .env("AWS_ENDPOINT_URL", moto)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .status()
        .unwrap();
    assert!(status.success(), "the child run failed");
}

fn child() {
    let cluster = std::env::var(CHILD).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let spec = format!(
            "[project]\nname = \"p\"\n\n[environments.staging]\nprovider = \"aws\"\nsettings = {{ cluster = \"{cluster}\" }}\n\n[services.web]\n"
        );
        let spec = LoadedSpec::parse("staging.toml", spec, LoadOptions::new(&["aws"])).unwrap();
        let provider = AwsFactory.build(&spec, "staging").unwrap();
        // Nothing exists yet: moto answers that the cluster is unknown, which proves the
        // request reached it signed with the chain's credentials.
        let err = provider.locate("staging", "web").await.unwrap_err();
        assert!(matches!(err, staging_core::Error::NotFound { .. }), "{err:?}");
    });
}
