//! The [`SecretStore`] trait: where secret values come from and go to.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::error::Result;

/// A place secret values are read from and written to: the process environment, a dotenv
/// file, a command such as `op read`, a provider's env vars, a cloud secret manager.
///
/// Values stay inside [`SecretString`] from the moment they are read until they are sent.
#[async_trait]
pub trait SecretStore: Debug + Send + Sync + 'static {
    /// A short description of the store for tables and messages (`env`, `dotenv:.env.staging`).
    /// Never contains a value.
    fn describe(&self) -> String;

    /// Whether [`SecretStore::put`] can work at all.
    fn writable(&self) -> bool;

    /// The value of `key`, or `None` when the store has no such key.
    async fn get(&self, key: &str) -> Result<Option<SecretString>>;

    /// Write `value` under `key` (a new version, where the store keeps versions).
    /// Read-only stores return [`crate::Error::NotSupported`].
    async fn put(&self, key: &str, value: &SecretString) -> Result<()>;

    /// The keys the store holds (beginning with `prefix` when given). Never values.
    async fn list(&self, prefix: Option<&str>) -> Result<Vec<String>>;
}

/// A secret store behind a pointer.
pub type DynSecretStore = Arc<dyn SecretStore>;

macro_rules! forward_secret_store {
    ($ty:ty) => {
        #[async_trait]
        impl<T: SecretStore + ?Sized> SecretStore for $ty {
            fn describe(&self) -> String {
                (**self).describe()
            }
            fn writable(&self) -> bool {
                (**self).writable()
            }
            async fn get(&self, key: &str) -> Result<Option<SecretString>> {
                (**self).get(key).await
            }
            async fn put(&self, key: &str, value: &SecretString) -> Result<()> {
                (**self).put(key, value).await
            }
            async fn list(&self, prefix: Option<&str>) -> Result<Vec<String>> {
                (**self).list(prefix).await
            }
        }
    };
}

forward_secret_store!(Arc<T>);
forward_secret_store!(Box<T>);
