// A provider crate holding a located service tries to deploy to it directly.
use staging_core::{DeployRequest, DynProvider, ServiceHandle};

async fn deploy_anyway(provider: &DynProvider, located: &ServiceHandle) {
    let _ = provider
        .deploy(located, &DeployRequest::commit("0123456789abcdef"))
        .await;
}

fn main() {
    let _ = deploy_anyway;
}
