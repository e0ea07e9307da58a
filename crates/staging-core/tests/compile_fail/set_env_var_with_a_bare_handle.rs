// A provider crate writes a variable to a service it located itself.
use staging_core::secrecy::SecretString;
use staging_core::{DynProvider, ProviderExt, ServiceHandle};

async fn write_anyway(provider: &DynProvider, located: &ServiceHandle) {
    let value = SecretString::from("v");
    let _ = provider.set_env_var(located, "KEY", &value).await;
    let _ = provider.rollback(located).await;
}

fn main() {
    let _ = write_anyway;
}
