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
        "staging up --env staging\n  staging up --env staging --junit reports/up.xml --html reports/up.html\n  staging up --env staging --wait-lock 10m   # wait for another run's lease instead of exit 3\n  staging up --keep-running        # local: keep the stack up for `staging smoke`\n  staging up --env preview --instance pr-42   # an instance of an ephemeral environment",
    ),
    (
        "status",
        "staging status --env staging\n  staging status --json",
    ),
    (
        "down",
        "staging down --env preview --instance pr-42 --dry-run\n  staging down --env preview --instance pr-42   # deletes only what the instance's ledger recorded",
    ),
    (
        "list",
        "staging list\n  staging list --env preview --all --json",
    ),
    (
        "gc",
        "staging gc --env preview          # lists the expired instances, deletes nothing\n  staging gc --env preview --yes    # tears them down (CI)",
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

/// The environment variables `staging` reads, for the man page's ENVIRONMENT section.
const ENVIRONMENT: &[(&str, &str)] = &[
    ("STAGING_FILE", "The spec file, as -f gives it."),
    ("STAGING_ENV", "The environment, as --env gives it."),
    (
        "RUST_LOG",
        "Log filter; wins over -v. Targets are crate names (staging_core=debug).",
    ),
    (
        "NO_COLOR, CLICOLOR_FORCE",
        "Colour off, or on when not a terminal.",
    ),
    (
        "GITHUB_STEP_SUMMARY, GITHUB_OUTPUT",
        "Set by GitHub Actions: up, promote and smoke append a Markdown summary and write the step outputs ok, exit_code, evidence_id, commit, environment, url-SERVICE on every exit path.",
    ),
    (
        "STAGING_FINGERPRINT_KEY",
        "The key of display fingerprints, so fingerprints compare across machines.",
    ),
    (
        "RENDER_API_KEY",
        "Render's API key (RENDER_API_URL: another API address).",
    ),
    ("NETLIFY_AUTH_TOKEN", "Netlify's personal access token."),
    (
        "RAILWAY_API_TOKEN, RAILWAY_TOKEN",
        "Railway's account or project token.",
    ),
    ("VERCEL_TOKEN", "Vercel's access token."),
    ("NEON_API_KEY", "Neon's API key, for database branches."),
    (
        "SUPABASE_ACCESS_TOKEN",
        "Supabase's access token, for database branches.",
    ),
    (
        "AWS_PROFILE, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION",
        "The standard AWS credential chain (profiles, SSO, roles) for ECS, Secrets Manager, SES, ACM, Route53.",
    ),
];

/// Text for roff: backslashes and hyphens escaped, a leading `.` or `'` neutralised.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// Every subcommand path (`up`, `evidence list`) with its summary, depth first.
fn command_list(cmd: &Command, prefix: &str, out: &mut Vec<(String, String)>) {
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let path = format!("{prefix}{}", sub.get_name());
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        out.push((path.clone(), about));
        command_list(sub, &format!("{path} "), out);
    }
}

/// The man page `staging(1)` (roff), on `out`: name, synopsis, description, options, every
/// command with its summary (in this page: nothing refers to pages that do not exist), the
/// exit status, the environment variables read, examples, version.
pub(crate) fn man(cmd: Command, out: &mut dyn Write) -> Result<()> {
    let err = |e| Error::io("cannot write the man page", e);
    let page = clap_mangen::Man::new(cmd.clone());
    page.render_title(out).map_err(err)?;
    page.render_name_section(out).map_err(err)?;
    page.render_synopsis_section(out).map_err(err)?;
    page.render_description_section(out).map_err(err)?;
    page.render_options_section(out).map_err(err)?;
    let mut text = String::from(".SH COMMANDS\n");
    let mut commands = vec![];
    command_list(&cmd, "", &mut commands);
    for (path, about) in &commands {
        text.push_str(&format!(
            ".TP\n\\fBstaging {}\\fR\n{}\n",
            roff(path),
            roff(about)
        ));
    }
    text.push_str(
        ".PP\nEach command's options: \\fBstaging COMMAND \\-\\-help\\fR.\n.SH \"EXIT STATUS\"\n.nf\n",
    );
    let after = cmd
        .get_after_help()
        .map(|a| a.to_string())
        .unwrap_or_default();
    for line in after.lines().skip_while(|l| l.trim() == "Exit codes:") {
        text.push_str(&roff(line));
        text.push('\n');
    }
    text.push_str(".fi\n.SH ENVIRONMENT\n");
    for (name, what) in ENVIRONMENT {
        text.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", roff(name), roff(what)));
    }
    text.push_str(".SH EXAMPLES\n");
    for (path, examples) in EXAMPLES
        .iter()
        .filter(|(p, _)| ["validate", "up", "promote", "plan", "smoke", "import"].contains(p))
    {
        text.push_str(&format!(".SS {}\n.nf\n", roff(path)));
        for line in examples.lines() {
            text.push_str(&roff(line));
            text.push('\n');
        }
        text.push_str(".fi\n");
    }
    out.write_all(text.as_bytes()).map_err(err)?;
    page.render_version_section(out).map_err(err)?;
    out.flush().map_err(err)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_man_page_names_no_page_that_does_not_exist_and_has_environment_and_examples() {
        let mut page = vec![];
        man(crate::cli_command(), &mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        // Only this page is referred to: no `staging\-up(1)` that nothing produces.
        assert!(!page.replace("staging(1)", "").contains("(1)"), "{page}");
        for section in [
            ".SH COMMANDS",
            ".SH \"EXIT STATUS\"",
            ".SH ENVIRONMENT",
            ".SH EXAMPLES",
        ] {
            assert!(page.contains(section), "no {section}: {page}");
        }
        for said in [
            "staging evidence list",
            "RENDER_API_KEY",
            "GITHUB_OUTPUT",
            "130",
        ] {
            assert!(page.contains(said), "no {said}: {page}");
        }
        // A summary that starts with a dot cannot become a roff request.
        assert_eq!(roff(".x-y"), "\\&.x\\-y");
    }

    #[test]
    fn every_subcommand_has_examples() {
        let mut missing = vec![];
        without_examples(&crate::Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "no examples for: {missing:?}");
    }
}
