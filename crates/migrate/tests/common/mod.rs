//! Shared helpers: a uniquely named Postgres schema per test, migration directories.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use secrecy::SecretString;

/// The test server (trust auth); override with `STAGING_TEST_PG_URL`.
pub fn pg_base_url() -> String {
    std::env::var("STAGING_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A schema of its own for one test, dropped when the value is dropped. Its URL sets
/// `search_path` to the schema, so the runner's tables land there and tests run in parallel.
pub struct PgSchema {
    pub name: String,
    /// A database of its own (named like the schema) rather than the test server's `test`:
    /// what two environments need, since one database is one identity.
    pub own_database: bool,
}

impl PgSchema {
    pub async fn new(tag: &str) -> PgSchema {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "mig_{tag}_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let c = staging_postgres::connect(&SecretString::from(pg_base_url()))
            .await
            .expect("postgres at 127.0.0.1:5432 (see STAGING_TEST_PG_URL)");
        c.batch_execute(&format!("CREATE SCHEMA \"{name}\""))
            .await
            .unwrap();
        PgSchema {
            name,
            own_database: false,
        }
    }

    /// A schema in a database of its own (another environment's database, not the test's).
    pub async fn new_database(tag: &str) -> PgSchema {
        let mut s = PgSchema::new(tag).await;
        let c = staging_postgres::connect(&SecretString::from(pg_base_url()))
            .await
            .unwrap();
        c.batch_execute(&format!("CREATE DATABASE \"{}\"", s.name))
            .await
            .unwrap();
        s.own_database = true;
        s.connect_base()
            .await
            .batch_execute(&format!("CREATE SCHEMA \"{}\"", s.name))
            .await
            .unwrap();
        s
    }

    fn base(&self) -> String {
        let base = pg_base_url();
        if !self.own_database {
            return base;
        }
        let (head, tail) = base
            .split_once('?')
            .map_or((base.as_str(), None), |(h, t)| (h, Some(t)));
        let cut = head.rfind('/').unwrap_or(head.len());
        let mut url = format!("{}/{}", &head[..cut], self.name);
        if let Some(t) = tail {
            url.push('?');
            url.push_str(t);
        }
        url
    }

    async fn connect_base(&self) -> staging_postgres::Client {
        staging_postgres::connect(&SecretString::from(self.base()))
            .await
            .unwrap()
    }

    /// The URL of the schema, optionally with a (trust-ignored) password in it.
    pub fn url_with_password(&self, password: Option<&str>) -> String {
        let base = self.base();
        let base = match password {
            Some(p) => base.replacen("postgres@", &format!("postgres:{p}@"), 1),
            None => base,
        };
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}options=-c%20search_path%3D{}", self.name)
    }

    pub fn url(&self) -> SecretString {
        SecretString::from(self.url_with_password(None))
    }

    /// A session of its own in the schema.
    pub async fn connect(&self) -> staging_postgres::Client {
        staging_postgres::connect(&self.url()).await.unwrap()
    }

    pub async fn scalar_i64(&self, sql: &str) -> i64 {
        self.connect()
            .await
            .query_one(sql, &[])
            .await
            .unwrap()
            .get(0)
    }

    pub async fn table_exists(&self, table: &str) -> bool {
        self.scalar_i64(&format!(
            "SELECT count(*) FROM pg_tables WHERE schemaname = '{}' AND tablename = '{table}'",
            self.name
        ))
        .await
            == 1
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let name = self.name.clone();
        let own_database = self.own_database;
        // Drop may run inside a runtime; do the async cleanup on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(c) = staging_postgres::connect(&SecretString::from(pg_base_url())).await {
                    let _ = c
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                        .await;
                    if own_database {
                        let _ = c
                            .batch_execute(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await;
                    }
                }
            });
        })
        .join();
    }
}

/// Write `files` (name, contents) into `dir`.
pub fn write(dir: &Path, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, sql) in files {
        std::fs::write(dir.join(name), sql).unwrap();
    }
}

/// A SQLite URL for a file in `dir`.
pub fn sqlite_url(dir: &Path, name: &str) -> SecretString {
    SecretString::from(format!("sqlite://{}", dir.join(name).display()))
}
