//! Secrets Manager as a `SecretStore`, against moto.

mod common;

use secrecy::{ExposeSecret, SecretString};
use staging_core::SecretStore;
use staging_core::spec::Rules;
use staging_provider_aws::SecretsManagerStore;

#[tokio::test]
async fn put_get_and_list_by_prefix() {
    let prefix = format!("{}/", common::unique("staging"));
    let store = SecretsManagerStore::new(common::ctx().await, &prefix);
    assert!(store.writable());
    assert_eq!(store.describe(), format!("aws-secretsmanager:{prefix}"));
    assert!(
        store.get("JWT_SECRET").await.unwrap().is_none(),
        "a missing secret is None, not an error"
    );

    store
        .put(
            "JWT_SECRET",
            &SecretString::from("first-value-0123456789".to_owned()),
        )
        .await
        .unwrap();
    store
        .put(
            "JWT_SECRET",
            &SecretString::from("second-value-0123456789".to_owned()),
        )
        .await
        .unwrap();
    store
        .put("STRIPE_KEY", &SecretString::from("sk_test_abc".to_owned()))
        .await
        .unwrap();
    store
        .put(
            "DATABASE_URL",
            &SecretString::from("postgres://u:p@h/db".to_owned()),
        )
        .await
        .unwrap();

    let got = store.get("JWT_SECRET").await.unwrap().expect("present");
    assert_eq!(
        got.expose_secret(),
        "second-value-0123456789",
        "put adds a new current version"
    );
    assert_eq!(
        store.list(None).await.unwrap(),
        vec!["DATABASE_URL", "JWT_SECRET", "STRIPE_KEY"]
    );
    assert_eq!(store.list(Some("J")).await.unwrap(), vec!["JWT_SECRET"]);

    // Another prefix's secrets stay out of this store.
    let other = SecretsManagerStore::new(
        common::ctx().await,
        format!("{}/", common::unique("production")),
    );
    assert!(other.list(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_placeholder_stored_in_secrets_manager_is_caught_by_the_secret_rules() {
    let prefix = format!("{}/", common::unique("placeholder"));
    let store = SecretsManagerStore::new(common::ctx().await, &prefix);
    store
        .put(
            "SECRET_KEY_BASE",
            &SecretString::from("PLACEHOLDER-REPLACE-ME".to_owned()),
        )
        .await
        .unwrap();
    let value = store.get("SECRET_KEY_BASE").await.unwrap().unwrap();
    let kind = staging_secrets::rules::placeholder_kind(value.expose_secret(), &Rules::default());
    assert!(
        kind.is_some(),
        "the placeholder read from Secrets Manager is flagged"
    );
}

#[tokio::test]
async fn the_store_never_shows_a_value_in_debug_or_errors() {
    let canary = "canary-9f3a1c-do-not-print";
    let store = SecretsManagerStore::new(
        common::ctx().await,
        format!("{}/", common::unique("canary")),
    );
    store
        .put("TOKEN", &SecretString::from(canary.to_owned()))
        .await
        .unwrap();
    let value = store.get("TOKEN").await.unwrap().unwrap();
    assert!(!format!("{store:?} {value:?}").contains(canary));
    // An error of the store (moto refuses an empty name) does not echo the value either.
    let err = SecretsManagerStore::new(common::ctx().await, "")
        .put("", &SecretString::from(canary.to_owned()))
        .await;
    if let Err(e) = err {
        assert!(!e.to_string().contains(canary), "{e}");
        assert!(!format!("{e:?}").contains(canary), "{e:?}");
    }
}
