//! Benchmark: 1,000 small migrations on Postgres, applied by the native runner and by
//! `sqlx migrate run` on the same files in the same run; then `status` over 1,000 applied.
//!
//! ```text
//! cargo run --release -p staging-migrate --example bench_migrate -- \
//!     [--url postgres://postgres@127.0.0.1:5432/test] [--count 1000] [--sqlx PATH]
//! ```
//! Each runner gets a fresh schema of its own (dropped afterwards). Without `--sqlx` (or
//! when the binary is absent) the comparison is skipped with a note. Prefer
//! `scripts/bench-migrate.sh`.

use std::path::Path;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use staging_core::Migration;
use staging_migrate::native::SqlMigrator;

struct Args {
    url: String,
    count: usize,
    sqlx: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        url: "postgres://postgres@127.0.0.1:5432/test".into(),
        count: 1000,
        sqlx: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = value(),
            "--count" => a.count = value().parse().expect("--count N"),
            "--sqlx" => a.sqlx = Some(value()),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn schema_url(base: &str, schema: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

async fn exec(url: &str, sql: String) {
    let mut c = PgConnection::connect(url)
        .await
        .expect("connect to Postgres");
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut c)
        .await
        .expect("bench setup SQL");
}

fn generate(dir: &Path, count: usize) {
    for i in 0..count {
        let version = 20260101000000u64 + i as u64;
        let sql = format!(
            "CREATE TABLE bench_{i} (id bigint PRIMARY KEY, name text NOT NULL);\nINSERT INTO bench_{i} VALUES (1, 'm{i}');\n"
        );
        std::fs::write(dir.join(format!("{version}_bench_{i}.sql")), sql).unwrap();
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = args();
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), a.count);
    let tag = std::process::id();
    let ours_schema = format!("bench_ours_{tag}");
    let sqlx_schema = format!("bench_sqlx_{tag}");
    exec(
        &a.url,
        format!("CREATE SCHEMA {ours_schema}; CREATE SCHEMA {sqlx_schema};"),
    )
    .await;

    println!(
        "{} migrations, Postgres at {}",
        a.count,
        staging_core::redact::mask_url_credentials(&a.url)
    );

    let ours_url = schema_url(&a.url, &ours_schema);
    let runner = SqlMigrator::new(SecretString::from(ours_url), dir.path()).unwrap();
    let t = Instant::now();
    let report = runner.apply().await.expect("native apply");
    let ours = t.elapsed();
    assert_eq!(report.applied.len(), a.count);
    println!("staging-migrate apply: {:>9.1} ms", ms(ours));

    let mut samples = vec![];
    for _ in 0..7 {
        let t = Instant::now();
        let status = runner.status().await.expect("status");
        samples.push(t.elapsed());
        assert_eq!(status.entries.len(), a.count);
    }
    samples.sort();
    let t = Instant::now();
    runner.files().expect("files");
    let files_ms = ms(t.elapsed());
    let t = Instant::now();
    runner.history().await.expect("history");
    let db_ms = ms(t.elapsed());
    println!(
        "staging-migrate status over {} applied: median {:.1} ms (min {:.1}, max {:.1}); of which reading + hashing the files {:.1} ms, connecting + reading the table {:.1} ms",
        a.count,
        ms(samples[samples.len() / 2]),
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
        files_ms,
        db_ms
    );

    let sqlx_bin = a.sqlx.clone().filter(|p| {
        std::process::Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    match sqlx_bin {
        None => println!(
            "sqlx migrate run:      skipped (sqlx-cli not found{}; run scripts/bench-migrate.sh --install-sqlx)",
            a.sqlx.map(|p| format!(" at {p}")).unwrap_or_default()
        ),
        Some(bin) => {
            let sqlx_url = schema_url(&a.url, &sqlx_schema);
            let t = Instant::now();
            let out = std::process::Command::new(&bin)
                .args(["migrate", "run", "--source"])
                .arg(dir.path())
                .args(["--database-url", &sqlx_url])
                .output()
                .expect("run sqlx");
            let theirs = t.elapsed();
            assert!(
                out.status.success(),
                "sqlx migrate run failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            println!(
                "sqlx migrate run:      {:>9.1} ms (a process of its own, start-up included)",
                ms(theirs)
            );
            println!(
                "ratio (ours / sqlx):   {:.2}x (target <= 0.5x)",
                ours.as_secs_f64() / theirs.as_secs_f64()
            );
        }
    }
    for schema in [&ours_schema, &sqlx_schema] {
        drop_schema(&a.url, schema, a.count).await;
    }
}

/// Drop a schema of `count` tables a hundred at a time: one `DROP SCHEMA … CASCADE` would
/// need more locks than one transaction may hold.
async fn drop_schema(url: &str, schema: &str, count: usize) {
    for chunk in (0..count).collect::<Vec<_>>().chunks(100) {
        let tables: Vec<String> = chunk
            .iter()
            .map(|i| format!("{schema}.bench_{i}"))
            .collect();
        exec(url, format!("DROP TABLE IF EXISTS {}", tables.join(", "))).await;
    }
    exec(url, format!("DROP SCHEMA {schema} CASCADE")).await;
}
