//! The PII guard that ends a refresh: the spec's `scrub.verify` checks, and a built-in scan of
//! every text column for e-mail addresses and phone numbers. Both report `table.column` and a
//! count, never a value: what they find is the personal data nobody may see.

use serde::Serialize;
use staging_core::spec::{Scrub, ScrubVerify};
use staging_core::{Error, Result};

/// E-mail addresses: `local@domain.tld`.
const EMAIL: &str = r"[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+\.)+[A-Za-z]{2,}";

/// The domain of the first e-mail address in a value (the pattern's first group).
const EMAIL_DOMAIN: &str = r"[A-Za-z0-9._%+-]+@((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})";

/// Domains reserved for documentation and tests (RFC 2606, RFC 6761): never anybody's address.
const RESERVED_DOMAINS: &str = r"(^|\.)(example\.(com|org|net)|example|invalid|test|localhost)$";

/// Phone numbers: `+` and 8 to 15 digits (E.164, spaces, dots or dashes allowed between
/// groups), or the North American 3-3-4 form. Dates (`2026-01-01`), versions and ids do not
/// match.
const PHONE: &str = r"(^|[^0-9A-Za-z])(\+[1-9]([ .-]?[0-9]){7,14}|\(?[0-9]{3}\)?[ .-][0-9]{3}[ .-][0-9]{4})($|[^0-9A-Za-z])";

/// One finding: a column where values look like (or, for `verify`, match) personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PiiFinding {
    /// The table (`users`, `audit.log`).
    pub table: String,
    /// The column.
    pub column: String,
    /// What was found: `e-mail address`, `phone number` or `scrub.verify pattern`.
    pub kind: String,
    /// How many rows.
    pub rows: i64,
    /// Whether the spec declared the check (`scrub.verify`): such a finding always fails.
    pub declared: bool,
}

impl PiiFinding {
    /// `users.email: 3 rows with an e-mail address`.
    pub fn describe(&self) -> String {
        format!(
            "{}.{}: {} row(s) with {}",
            self.table,
            self.column,
            self.rows,
            match (self.declared, self.kind.as_str()) {
                (true, _) => "a value matching its scrub.verify pattern",
                (false, "e-mail address") => "an e-mail address",
                (false, _) => "a phone number",
            }
        )
    }
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn quote_table(t: &str) -> String {
    t.split('.').map(quote_ident).collect::<Vec<_>>().join(".")
}

/// Runs the spec's `scrub.verify` checks and the built-in scan on `client`'s database.
pub async fn scan(
    client: &staging_postgres::Client,
    scrub: Option<&Scrub>,
) -> Result<Vec<PiiFinding>> {
    let mut out = vec![];
    let verify: &[ScrubVerify] = scrub.map(|s| s.verify.as_slice()).unwrap_or_default();
    for v in verify {
        let sql = format!(
            "SELECT count(*) FROM {} WHERE ({})::text ~ $1",
            quote_table(&v.table),
            quote_ident(&v.column)
        );
        let n: i64 = client
            .query_one(&sql, &[&v.pattern])
            .await
            .map_err(|e| Error::Failed {
                message: format!(
                    "scrub.verify on {}.{} could not run: {}",
                    v.table,
                    v.column,
                    staging_postgres::describe(&e)
                ),
            })?
            .get(0);
        if n > 0 {
            out.push(PiiFinding {
                table: v.table.clone(),
                column: v.column.clone(),
                kind: "scrub.verify pattern".into(),
                rows: n,
                declared: true,
            });
        }
    }
    let allowed: Vec<String> = scrub
        .map(|s| {
            s.allow_domains
                .iter()
                .map(|d| d.to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    let columns = client
        .query(
            "SELECT n.nspname, c.relname, a.attname
               FROM pg_attribute a
               JOIN pg_class c ON c.oid = a.attrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
                AND a.attnum > 0 AND NOT a.attisdropped
                AND a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype)
                AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
              ORDER BY 1, 2, a.attnum",
            &[],
        )
        .await
        .map_err(|e| Error::Failed {
            message: format!(
                "the PII scan could not list text columns: {}",
                staging_postgres::describe(&e)
            ),
        })?;
    for row in columns {
        let (schema, table, column): (String, String, String) =
            (row.get(0), row.get(1), row.get(2));
        let name = if schema == "public" {
            table.clone()
        } else {
            format!("{schema}.{table}")
        };
        let sql = format!(
            "SELECT count(*) FILTER (WHERE v ~ $1 AND NOT lower(substring(v from $2)) ~ $3
                                     AND NOT lower(substring(v from $2)) = ANY($4)),
                    count(*) FILTER (WHERE v ~ $5)
               FROM (SELECT {col}::text AS v FROM {sch}.{tab}) s",
            col = quote_ident(&column),
            sch = quote_ident(&schema),
            tab = quote_ident(&table),
        );
        let counts = client
            .query_one(
                &sql,
                &[&EMAIL, &EMAIL_DOMAIN, &RESERVED_DOMAINS, &allowed, &PHONE],
            )
            .await
            .map_err(|e| Error::Failed {
                message: format!(
                    "the PII scan could not read {name}.{column}: {}",
                    staging_postgres::describe(&e)
                ),
            })?;
        for (i, kind) in [(0, "e-mail address"), (1, "phone number")] {
            let n: i64 = counts.get(i);
            if n > 0 {
                out.push(PiiFinding {
                    table: name.clone(),
                    column: column.clone(),
                    kind: kind.into(),
                    rows: n,
                    declared: false,
                });
            }
        }
    }
    Ok(out)
}
