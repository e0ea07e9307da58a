// A provider crate builds the target itself, from a handle it located.
use staging_core::{ServiceHandle, WriteTarget};

fn forge(handle: ServiceHandle) -> WriteTarget {
    WriteTarget { handle }
}

fn main() {
    let _ = forge;
}
