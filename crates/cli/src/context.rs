//! The session every command works on: the `staging` facade over the spec `-f` names (else
//! the one found from the current directory), with every provider of this build registered
//! once, in the facade.

use staging::Staging;
use staging_core::Result;

use crate::Global;

/// The session over the spec of this invocation, showing progress as `global` prints.
pub(crate) fn session(global: &Global) -> Result<Staging> {
    Staging::builder()
        .providers(staging::providers())
        .spec_file_or_discover(global.file.clone())
        .instance(global.instance.clone())
        .progress(crate::progress::for_output(global.output()))
        .build()
}
