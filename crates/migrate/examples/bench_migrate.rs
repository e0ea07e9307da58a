//! Benchmark: 1,000 small migrations on Postgres, applied by the native runner and by
//! `sqlx migrate run` on the same files in the same run; then `status` over 1,000 applied.
//!
//! ```text
//! cargo run --release -p staging-migrate --example bench_migrate -- \
//!     [--url postgres://postgres@127.0.0.1:5432/test] [--count 1000] [--sqlx PATH] \
//!     [--workload tables|columns|both]
//! ```
//!
//! Two workloads of small migrations, because the server's own cost differs by an order of
//! magnitude between them:
//!
//! - `tables`: each migration creates a table with a primary key and a `text` column and
//!   inserts a row. The server builds two indexes per migration (the key's and the TOAST
//!   table's) and fsyncs each of them, whoever sends the SQL.
//! - `columns`: each migration adds a column to one of ten tables and inserts a row into a
//!   log table — schema changes that build no index.
//!
//! For each workload it also times the **floor**: the same statements, one migration per
//! transaction with its metadata row, sent by a bare connection with asynchronous commit.
//! No runner that keeps one transaction per migration can make the server do less.
//! Each runner gets a fresh schema of its own (dropped afterwards). Without `--sqlx` (or
//! when the binary is absent) the comparison is skipped with a note. Prefer
//! `scripts/bench-migrate.sh`.

use std::path::Path;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use staging_core::Migration;
use staging_migrate::native::SqlMigrator;

struct Args {
    url: String,
    count: usize,
    sqlx: Option<String>,
    workloads: Vec<Workload>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    Tables,
    Columns,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Tables => "tables",
            Workload::Columns => "columns",
        }
    }

    /// The SQL of migration `i`.
    fn sql(self, i: usize) -> String {
        match self {
            Workload::Tables => format!(
                "CREATE TABLE bench_{i} (id bigint PRIMARY KEY, name text NOT NULL);\nINSERT INTO bench_{i} VALUES (1, 'm{i}');\n"
            ),
            Workload::Columns if i == 0 => {
                let mut sql = String::from(
                    "CREATE TABLE bench_log (id bigint PRIMARY KEY, note text NOT NULL);\n",
                );
                for t in 0..10 {
                    sql.push_str(&format!(
                        "CREATE TABLE bench_cols_{t} (id bigint PRIMARY KEY, label text);\n"
                    ));
                }
                sql
            }
            Workload::Columns => format!(
                "ALTER TABLE bench_cols_{t} ADD COLUMN c_{i} text;\nINSERT INTO bench_log VALUES ({i}, 'm{i}');\n",
                t = i % 10
            ),
        }
    }

    /// The tables migration `i` creates, to drop afterwards.
    fn tables(self, count: usize) -> Vec<String> {
        match self {
            Workload::Tables => (0..count).map(|i| format!("bench_{i}")).collect(),
            Workload::Columns => std::iter::once("bench_log".to_owned())
                .chain((0..10).map(|t| format!("bench_cols_{t}")))
                .collect(),
        }
    }
}

fn args() -> Args {
    let mut a = Args {
        url: "postgres://postgres@127.0.0.1:5432/test".into(),
        count: 1000,
        sqlx: None,
        workloads: vec![Workload::Tables, Workload::Columns],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = value(),
            "--count" => a.count = value().parse().expect("--count N"),
            "--sqlx" => a.sqlx = Some(value()),
            "--workload" => {
                a.workloads = match value().as_str() {
                    "tables" => vec![Workload::Tables],
                    "columns" => vec![Workload::Columns],
                    "both" => vec![Workload::Tables, Workload::Columns],
                    other => panic!("--workload tables|columns|both, not {other}"),
                }
            }
            other => panic!("unknown argument {other}"),
        }
    }
    if a.workloads.contains(&Workload::Columns) {
        assert!(
            a.count <= 10 * 1500,
            "--count: the columns workload adds count/10 columns to each of ten tables (Postgres allows 1,600)"
        );
    }
    a
}

fn schema_url(base: &str, schema: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

async fn exec(url: &str, sql: &str) {
    let c = staging_postgres::connect(&SecretString::from(url.to_owned()))
        .await
        .expect("connect to Postgres");
    c.batch_execute(sql).await.expect("bench setup SQL");
}

fn generate(dir: &Path, workload: Workload, count: usize) {
    for i in 0..count {
        std::fs::write(dir.join(file_name(i)), workload.sql(i)).unwrap();
    }
}

fn file_name(i: usize) -> String {
    format!("{}_bench_{i}.sql", 20260101000000u64 + i as u64)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The floor: one bare connection, asynchronous commit, each migration in its own
/// transaction with its metadata row, one round trip per migration, a synchronous commit
/// at the end — what the server must do for any runner that keeps a transaction per file.
async fn floor(url: &str, workload: Workload, count: usize) -> Duration {
    let c = staging_postgres::connect(&SecretString::from(url.to_owned()))
        .await
        .expect("connect to Postgres");
    c.batch_execute(
        "CREATE TABLE floor_migrations (version bigint PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), duration_ms bigint NOT NULL)",
    )
    .await
    .unwrap();
    let started = Instant::now();
    c.batch_execute("SET synchronous_commit = off")
        .await
        .unwrap();
    for i in 0..count {
        c.batch_execute(&format!(
            "BEGIN;\n{}\nINSERT INTO floor_migrations (version, name, checksum, duration_ms) VALUES ({i}, 'bench_{i}', 'x', 0);\nCOMMIT;",
            workload.sql(i)
        ))
        .await
        .unwrap();
    }
    c.batch_execute("SET synchronous_commit = on; UPDATE floor_migrations SET duration_ms = 1 WHERE version = 0")
        .await
        .unwrap();
    started.elapsed()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = args();
    println!(
        "{} migrations per workload, Postgres at {}",
        a.count,
        staging_core::redact::mask_url_credentials(&a.url)
    );
    let sqlx_bin = a.sqlx.clone().filter(|p| {
        std::process::Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if sqlx_bin.is_none() {
        println!(
            "sqlx migrate run: skipped (sqlx-cli not found{}; run scripts/bench-migrate.sh --install-sqlx)",
            a.sqlx
                .as_ref()
                .map(|p| format!(" at {p}"))
                .unwrap_or_default()
        );
    }
    for (n, &workload) in a.workloads.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), workload, a.count);
        let tag = format!("{}_{}", workload.name(), std::process::id());
        let schemas = [
            format!("bench_ours_{tag}"),
            format!("bench_floor_{tag}"),
            format!("bench_sqlx_{tag}"),
        ];
        exec(
            &a.url,
            &schemas
                .iter()
                .map(|s| format!("CREATE SCHEMA {s};"))
                .collect::<String>(),
        )
        .await;
        println!("\nworkload `{}`:", workload.name());

        let ours_url = schema_url(&a.url, &schemas[0]);
        let runner = SqlMigrator::new(SecretString::from(ours_url), dir.path()).unwrap();
        let t = Instant::now();
        let report = runner.apply().await.expect("native apply");
        let ours = t.elapsed();
        assert_eq!(report.applied.len(), a.count);
        println!("  staging-migrate apply: {:>9.1} ms", ms(ours));

        let bare = floor(&schema_url(&a.url, &schemas[1]), workload, a.count).await;
        println!(
            "  floor (bare client):   {:>9.1} ms   staging-migrate / floor: {:.2}x",
            ms(bare),
            ours.as_secs_f64() / bare.as_secs_f64()
        );

        if let Some(bin) = &sqlx_bin {
            let sqlx_url = schema_url(&a.url, &schemas[2]);
            let t = Instant::now();
            let out = std::process::Command::new(bin)
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
                "  sqlx migrate run:      {:>9.1} ms (a process of its own, start-up included)",
                ms(theirs)
            );
            println!(
                "  ratio staging-migrate / sqlx: {:.2}x (target <= 0.5x); floor / sqlx: {:.2}x",
                ours.as_secs_f64() / theirs.as_secs_f64(),
                bare.as_secs_f64() / theirs.as_secs_f64()
            );
        }

        if n == 0 {
            status(&runner, a.count).await;
        }
        for schema in &schemas {
            drop_schema(&a.url, schema, &workload.tables(a.count)).await;
        }
    }
}

/// `status` over everything applied: seven runs, the median, and where the time goes.
async fn status(runner: &SqlMigrator, count: usize) {
    let mut samples = vec![];
    for _ in 0..7 {
        let t = Instant::now();
        let status = runner.status().await.expect("status");
        samples.push(t.elapsed());
        assert_eq!(status.entries.len(), count);
    }
    samples.sort();
    let t = Instant::now();
    runner.files().expect("files");
    let files_ms = ms(t.elapsed());
    let t = Instant::now();
    runner.history().await.expect("history");
    let db_ms = ms(t.elapsed());
    println!(
        "  status over {count} applied: median {:.1} ms (min {:.1}, max {:.1}; target <= 100 ms); of which reading + hashing the files {:.1} ms, connecting + reading the table {:.1} ms",
        ms(samples[samples.len() / 2]),
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
        files_ms,
        db_ms
    );
}

/// Drop a schema's tables a hundred at a time (one `DROP SCHEMA … CASCADE` over thousands
/// of tables would need more locks than one transaction may hold), then the schema.
async fn drop_schema(url: &str, schema: &str, tables: &[String]) {
    for chunk in tables.chunks(100) {
        let names: Vec<String> = chunk.iter().map(|t| format!("{schema}.{t}")).collect();
        exec(url, &format!("DROP TABLE IF EXISTS {}", names.join(", "))).await;
    }
    exec(url, &format!("DROP SCHEMA {schema} CASCADE")).await;
}
