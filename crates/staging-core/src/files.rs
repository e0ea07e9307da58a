//! Files that are whole or absent, and reads that only take what they expect.
//!
//! A record written with [`write_new`] or [`write_atomic`] goes to a temporary file next to
//! its place (`.NAME.PID.N.tmp`), is flushed to disk, and only then takes its name; the
//! directory is flushed too. A full disk or a crash leaves at most a temporary file, which
//! readers skip ([`is_temporary`]), never a half or empty record under the real name.
//!
//! [`read_regular`] reads a file only when it is a regular file (not a FIFO that would block
//! the read forever, not a device such as `/dev/zero` that never ends), optionally only when
//! it resolves to a place inside a given directory, and never more than a cap.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::limits::format_size;

/// Whether `name` is one of the temporary files this module writes (`.NAME.PID.N.tmp`).
pub fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

/// Write `bytes` to `path`, replacing what is there, so that `path` holds either the old
/// content or the new one, whole.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with(path, Place::Replace, &mut |f| f.write_all(bytes))
}

/// Write `bytes` to `path` only if nothing is there ([`io::ErrorKind::AlreadyExists`]
/// otherwise), so that `path` is either absent or whole: the choice of name is atomic too.
pub fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with(path, Place::New, &mut |f| f.write_all(bytes))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Replace,
    New,
}

fn temporary_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

/// The one writing path; `fill` writes the content (a test injects a failing one).
fn write_with(
    path: &Path,
    place: Place,
    fill: &mut dyn FnMut(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temporary_path(path);
    let result = (|| -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        fill(&mut f)?;
        f.sync_all()?;
        drop(f);
        match place {
            Place::Replace => std::fs::rename(&tmp, path)?,
            // A hard link fails when the name is taken, where a rename would replace it.
            Place::New => std::fs::hard_link(&tmp, path)?,
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&tmp);
    result?;
    sync_dir(path)
}

/// Flush the directory holding `path`, so that the new name survives a crash.
fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// What kind of file `t` is, for a refusal.
fn kind_of(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

fn refuse(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Read `path` whole, refusing (quickly, with an [`io::ErrorKind::InvalidData`] error
/// that says why) anything that is not a regular file, anything larger than `cap` bytes,
/// and, when `inside` is given, a file that resolves (through symbolic links) to a place
/// outside that directory.
pub fn read_regular(path: &Path, inside: Option<&Path>, cap: u64) -> io::Result<Vec<u8>> {
    if let Some(dir) = inside {
        let dir = dir.canonicalize()?;
        let real = path.canonicalize()?;
        if !real.starts_with(&dir) {
            return Err(refuse(format!(
                "is a link to {}, outside {}",
                real.display(),
                dir.display()
            )));
        }
    }
    let meta = std::fs::metadata(path)?;
    if !meta.file_type().is_file() {
        return Err(refuse(format!(
            "is {}, not a regular file",
            kind_of(meta.file_type())
        )));
    }
    // Non-blocking: should the file be swapped for a FIFO after the check, opening it does
    // not wait for a writer; the type is checked again on what was opened.
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.file_type().is_file() {
        return Err(refuse(format!(
            "is {}, not a regular file",
            kind_of(meta.file_type())
        )));
    }
    if meta.len() > cap {
        return Err(refuse(format!(
            "is larger than {} ({} bytes)",
            format_size(cap),
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    (&mut f).take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(refuse(format!("is larger than {}", format_size(cap))));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_failed_write_leaves_neither_the_record_nor_a_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staging-1.json");
        let mut calls = 0;
        let e = write_with(&path, Place::New, &mut |f| {
            calls += 1;
            f.write_all(b"{\"half\":")?;
            Err(io::Error::from_raw_os_error(libc::ENOSPC))
        })
        .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(calls, 1);
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
        // The next write of the same name succeeds and is whole.
        write_new(&path, b"{\"whole\":true}").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"whole\":true}");
        assert_eq!(names(dir.path()), ["staging-1.json"]);
    }

    #[test]
    fn write_new_never_replaces_and_write_atomic_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_new(&path, b"first").unwrap();
        let e = write_new(&path, b"second").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        write_atomic(&path, b"third").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"third");
        assert_eq!(names(dir.path()), ["a.json"]);
        assert!(is_temporary(".a.json.12.0.tmp"));
        assert!(!is_temporary("a.json"));
    }

    #[test]
    fn reads_refuse_fifos_devices_links_out_and_oversized_files_quickly() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("evidence");
        std::fs::create_dir(&root).unwrap();
        let fifo = root.join("fifo.json");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let zero = root.join("zero.json");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let outside = dir.path().join("outside.json");
        std::fs::write(&outside, b"{}").unwrap();
        let link_out = root.join("out.json");
        std::os::unix::fs::symlink(&outside, &link_out).unwrap();
        let big = root.join("big.json");
        std::fs::write(&big, vec![b' '; 2048]).unwrap();
        let fine = root.join("fine.json");
        std::fs::write(&fine, b"{}").unwrap();
        let link_in = root.join("in.json");
        std::os::unix::fs::symlink(&fine, &link_in).unwrap();

        let started = std::time::Instant::now();
        let says = |p: &Path, inside: Option<&Path>| {
            read_regular(p, inside, 1024).unwrap_err().to_string()
        };
        assert!(says(&fifo, Some(&root)).contains("is a FIFO"));
        assert!(says(&fifo, None).contains("is a FIFO"));
        assert!(says(&zero, None).contains("is a device"));
        assert!(says(&link_out, Some(&root)).contains("outside"));
        assert!(says(&big, Some(&root)).contains("larger than 1 KiB"));
        assert!(says(&root, None).contains("a directory"));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(read_regular(&link_in, Some(&root), 1024).unwrap(), b"{}");
        assert_eq!(read_regular(&outside, None, 1024).unwrap(), b"{}");
    }
}
