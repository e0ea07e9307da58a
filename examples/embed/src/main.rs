//! Embedding `staging`: run `up` on a spec (default: the repository's demo spec), print the
//! typed report, then `promote` the same commit — with nothing but the facade's public API.
//!
//! ```text
//! cargo run -p staging-embed-example [-- SPEC [COMMIT [up|promote|all]]]
//! ```
//!
//! Exits 0 when every run it made passed, 1 when one failed or the gate refused, 2 or 3
//! for an error (as `staging` does: `staging::Error::class`).

use std::path::PathBuf;
use std::process::ExitCode;

use staging::{PromoteOptions, Promotion, Staging};

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let spec = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../demo/staging.toml"));
    let commit = args.next();
    let what = args.next().unwrap_or_else(|| "all".to_owned());
    match run(spec, commit.as_deref(), &what).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.class().exit_code())
        }
    }
}

async fn run(spec: PathBuf, commit: Option<&str>, what: &str) -> staging::Result<u8> {
    let session = Staging::builder()
        .providers(staging::providers())
        .spec_file(spec)
        .build()?;
    // A full 40-hex id, as evidence records and the gate compares.
    let commit = session.resolve_commit(commit)?;
    if what == "up" || what == "all" {
        let run = session.up("staging", &commit).await?;
        println!("{}", to_json(&run.report));
        if !run.report.ok {
            return Ok(run.report.exit_code());
        }
    }
    if what == "promote" || what == "all" {
        match session
            .promote("production", &commit, PromoteOptions::default())
            .await?
        {
            Promotion::Ran(run) => {
                println!("{}", to_json(&run.report));
                return Ok(run.report.exit_code());
            }
            Promotion::Refused(gate) => {
                eprintln!(
                    "promotion of {commit} from `{}` to `{}` refused: {:?}",
                    gate.from, gate.to, gate.decision
                );
                return Ok(gate.decision.exit_code());
            }
        }
    }
    Ok(0)
}

fn to_json(report: &staging::RunReport) -> String {
    serde_json::to_string_pretty(report).unwrap_or_default()
}
