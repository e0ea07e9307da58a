//! `staging import`: turn a platform's own config file into a spec skeleton.

use std::path::PathBuf;

use clap::Args;
use staging_core::{Error, Result};

use crate::output::Output;

/// Options of `import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// A Render Blueprint (`render.yaml`), a `netlify.toml`, a Railway `railway.json` /
    /// `railway.toml`, or a `vercel.json`.
    path: PathBuf,
    /// Write the spec here instead of standard output (refuses to overwrite).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

pub(crate) async fn run(args: &ImportArgs, out: Output) -> Result<u8> {
    let text = std::fs::read_to_string(&args.path)
        .map_err(|e| Error::io(format!("cannot read {}", args.path.display()), e))?;
    let name = args
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    // The project is named after the directory the file is in, unless the file names it.
    let project = std::path::absolute(&args.path)
        .ok()
        .and_then(|p| {
            p.parent()
                .and_then(|d| d.file_name())
                .and_then(|n| n.to_str())
                .map(str::to_owned)
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "app".to_owned());
    let is_blueprint = name.ends_with(".yaml") || name.ends_with(".yml");
    let origin = is_blueprint
        .then(|| {
            std::path::absolute(&args.path)
                .ok()
                .and_then(|p| p.parent().map(std::path::Path::to_path_buf))
        })
        .flatten()
        .as_deref()
        .and_then(checkout_origin);
    let spec = staging::import_config(name, &text, &project, origin.as_deref())
        .map_err(|e| match e {
            Error::ConfigInvalid {
                location: None,
                message,
            } => Error::config_at(args.path.display().to_string(), message),
            e => e,
        })?
        .ok_or_else(|| {
            Error::config(format!(
                "{}: expected {}",
                args.path.display(),
                staging::IMPORTABLE
            ))
        })?;
    match &args.output {
        Some(path) => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(|e| {
                    Error::io(
                        format!("cannot create {} (it is never overwritten)", path.display()),
                        e,
                    )
                })?;
            std::io::Write::write_all(&mut file, spec.as_bytes())
                .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
            if !out.json {
                out.note(&format!(
                    "wrote {}; check it with `staging validate -f {}`",
                    path.display(),
                    path.display()
                ));
            }
        }
        None if !out.json => out.line(spec.trim_end()),
        None => {}
    }
    if out.json {
        out.json(&serde_json::json!({
            "source": args.path.display().to_string(),
            "written_to": args.output.as_ref().map(|p| p.display().to_string()),
            "spec": spec,
        }));
    }
    Ok(0)
}

/// The `origin` of the git checkout at `dir` as a repository URL Render builds from
/// (`git@github.com:org/app.git` becomes `https://github.com/org/app`); `None` outside a
/// checkout, without an `origin`, or with a URL that holds a credential.
fn checkout_origin(dir: &std::path::Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["remote", "get-url", "origin"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    repository_url(String::from_utf8(out.stdout).ok()?.trim())
}

/// A git remote URL as the https address of its repository.
fn repository_url(remote: &str) -> Option<String> {
    let rest = if let Some(r) = remote.strip_prefix("git@") {
        // scp-like: git@github.com:org/app.git
        let (host, path) = r.split_once(':')?;
        format!("{host}/{path}")
    } else {
        let url = url::Url::parse(remote).ok()?;
        // A token in the remote URL must never reach the spec (ssh's `git@` is no secret).
        if url.password().is_some() || (url.scheme() != "ssh" && !url.username().is_empty()) {
            return None;
        }
        format!("{}{}", url.host_str()?, url.path())
    };
    let rest = rest.trim_end_matches('/');
    let rest = rest.strip_suffix(".git").unwrap_or(rest);
    (rest.contains('/') && !rest.contains(char::is_whitespace)).then(|| format!("https://{rest}"))
}

#[cfg(test)]
mod tests {
    use super::repository_url;

    #[test]
    fn a_remote_becomes_the_https_address_of_its_repository() {
        for (remote, want) in [
            (
                "git@github.com:org/app.git",
                Some("https://github.com/org/app"),
            ),
            (
                "https://github.com/org/app.git",
                Some("https://github.com/org/app"),
            ),
            (
                "https://github.com/org/app",
                Some("https://github.com/org/app"),
            ),
            (
                "ssh://git@gitlab.com/org/app.git",
                Some("https://gitlab.com/org/app"),
            ),
            (
                "https://x-access-token:ghs_canary@github.com/org/app.git",
                None,
            ),
            ("https://ghs_canary@github.com/org/app.git", None),
            ("/srv/git/app.git", None),
            ("", None),
        ] {
            assert_eq!(repository_url(remote).as_deref(), want, "{remote}");
        }
    }
}
