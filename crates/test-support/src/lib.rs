//! # staging-test-support
//!
//! What the provider crates' tests share beyond the Prism runner of
//! `staging_core::stand_in`: the providers' published API descriptions checked a second
//! time, in-process ([`Contract`], [`CheckingProxy`]), so that a body whose schema Prism
//! could not compile — and therefore skipped without a word — still fails the test that
//! exchanged it. See the README for the repairs made to the published files.
#![deny(missing_docs)]

mod contract;
mod fault;
mod proxy;
mod relay;

pub use contract::{Contract, Verdict};
pub use fault::FaultProxy;
pub use proxy::{Checked, CheckingProxy, Share};
