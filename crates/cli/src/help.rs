//! Examples under each subcommand's `--help`, and the generated shell completions and man
//! page, all from the one clap command so they never disagree with the parser.

use std::io::Write;

use clap::Command;
use staging_core::{Error, Result};

/// Examples per subcommand path (`evidence list`), shown after its options in `--help`
/// and in the man page.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "validate",
        "staging validate\n  staging validate -f deploy/staging.toml --env production --json\n  staging validate --online        # also ask each provider whether it accepts the credentials",
    ),
    (
        "plan",
        "staging plan --env staging\n  staging plan --env staging --commit 4f9c2e1 --json",
    ),
    (
        "up",
        "staging up --env staging\n  staging up --env staging --junit reports/up.xml --html reports/up.html\n  staging up --env staging --wait-lock 10m   # wait for another run's lease instead of exit 3\n  staging up --keep-running        # local: keep the stack up for `staging smoke`",
    ),
    (
        "status",
        "staging status --env staging\n  staging status --json",
    ),
    (
        "promote",
        "staging promote --to production\n  staging promote --from staging --to production --max-age 2h --junit promote.xml",
    ),
    (
        "evidence",
        "staging evidence list --env staging\n  staging evidence show <ID> --json",
    ),
    (
        "evidence list",
        "staging evidence list\n  staging evidence list --env staging --commit 4f9c2e1",
    ),
    ("evidence show", "staging evidence show <ID>"),
    (
        "lock",
        "staging lock status --env staging\n  staging lock release --force --env staging",
    ),
    ("lock status", "staging lock status --env staging --json"),
    (
        "lock release",
        "staging lock release --force --env staging   # recorded in the evidence",
    ),
    (
        "diff",
        "staging diff staging production\n  staging diff staging production --json",
    ),
    ("doctor", "staging doctor --env staging"),
    (
        "smoke",
        "staging smoke --env staging\n  staging smoke --env staging --fail-fast --junit smoke.xml --html smoke.html",
    ),
    (
        "migrate",
        "staging migrate status --env staging\n  staging migrate apply --env staging --dry-run",
    ),
    (
        "migrate status",
        "staging migrate status --env staging --json",
    ),
    (
        "migrate apply",
        "staging migrate apply --env staging --dry-run\n  staging migrate apply --env staging",
    ),
    (
        "migrate reset",
        "staging migrate reset --env staging   # runs the database's declared `reset` command; refused on protected environments",
    ),
    (
        "rollback",
        "staging rollback --env production\n  staging rollback --env staging --service web --to dep-abc123 --json",
    ),
    (
        "refresh",
        "staging refresh --env staging                  # from the environment it promotes to, then migrations and scrub\n  staging refresh --env preview --from staging --json",
    ),
    (
        "logs",
        "staging logs --env staging --service web --lines 200\n  staging logs --env staging --service web --since 15m --follow",
    ),
    (
        "schema",
        "staging schema > staging.schema.json   # point editors at it with `#:schema ./staging.schema.json`",
    ),
    (
        "import",
        "staging import render.yaml -o staging.toml\n  staging import netlify.toml --json",
    ),
    (
        "secrets",
        "staging secrets check --env staging\n  staging secrets diff staging production",
    ),
    (
        "secrets check",
        "staging secrets check --env staging --json",
    ),
    ("secrets diff", "staging secrets diff staging production"),
    (
        "secrets sync",
        "staging secrets sync --env staging\n  staging secrets sync --env staging --apply",
    ),
    (
        "secrets rotate",
        "staging secrets rotate JWT_SECRET --env staging",
    ),
    (
        "completions",
        "staging completions bash > ~/.local/share/bash-completion/completions/staging\n  staging completions zsh > \"${fpath[1]}/_staging\"\n  staging completions fish > ~/.config/fish/completions/staging.fish\n  staging completions powershell >> $PROFILE\n  staging completions elvish >> ~/.config/elvish/rc.elv",
    ),
    (
        "man",
        "staging man > /usr/local/share/man/man1/staging.1 && man staging",
    ),
];

/// `cmd` with the examples of each of its subcommands (at any depth) under `--help`.
pub(crate) fn with_examples(cmd: Command) -> Command {
    add_examples(cmd, "")
}

fn add_examples(mut cmd: Command, prefix: &str) -> Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    for name in names {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix} {name}")
        };
        cmd = cmd.mut_subcommand(&name, |sub| {
            let sub = match EXAMPLES.iter().find(|(p, _)| *p == path) {
                Some((_, text)) => sub.after_help(format!(
                    "Examples:\n  {text}\n\nExit codes: 0 passed, 1 a check failed, 2 bad usage or spec, 3 could not proceed (see `staging --help`)."
                )),
                None => sub,
            };
            add_examples(sub, &path)
        });
    }
    cmd
}

/// The subcommand paths that have no examples (a test keeps this empty).
#[cfg(test)]
fn without_examples(cmd: &Command, prefix: &str, missing: &mut Vec<String>) {
    for sub in cmd.get_subcommands() {
        let path = format!("{prefix}{}", sub.get_name());
        if sub.get_name() != "help" && !EXAMPLES.iter().any(|(p, _)| *p == path) {
            missing.push(path.clone());
        }
        without_examples(sub, &format!("{path} "), missing);
    }
}

/// The completion script for `shell`, on `out`.
pub(crate) fn completions(
    mut cmd: Command,
    shell: clap_complete::Shell,
    out: &mut dyn Write,
) -> Result<()> {
    let name = cmd.get_name().to_owned();
    clap_complete::generate(shell, &mut cmd, name, out);
    out.flush()
        .map_err(|e| Error::io("cannot write the completion script", e))
}

/// The man page `staging(1)` (roff), on `out`: synopsis, options, every subcommand
/// with its summary, the exit codes, version.
pub(crate) fn man(cmd: Command, out: &mut dyn Write) -> Result<()> {
    clap_mangen::Man::new(cmd)
        .render(out)
        .map_err(|e| Error::io("cannot write the man page", e))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn every_subcommand_has_examples() {
        let mut missing = vec![];
        without_examples(&crate::Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "no examples for: {missing:?}");
    }
}
