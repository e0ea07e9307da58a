// A provider crate makes a boundary of its own, with nothing to compare against, to issue
// itself targets.
use staging_core::WriteBoundary;

fn forge() -> WriteBoundary {
    WriteBoundary::new("staging", false, vec![], Default::default())
}

fn main() {
    let _ = forge;
}
