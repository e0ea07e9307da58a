// A provisioner is asked to create something that did not pass the boundary.
use staging_core::{Creation, DynProvisioner};

async fn create_anyway(provisioner: &DynProvisioner, creation: &Creation) {
    let _ = provisioner.create(creation).await;
}

fn main() {
    let _ = create_anyway;
}
