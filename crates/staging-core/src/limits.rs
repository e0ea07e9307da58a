//! Bounds and caps shared by every crate: how long a network wait may take and how much a
//! peer may send, with the two helpers that apply them ([`within`], [`read_capped`]).
//!
//! A silent peer (a port that accepts and never answers) or an endless body must never hang
//! a run or grow its memory: every connect, handshake, query and body read is bounded in
//! time, and every body is read in chunks against a cap. The defaults live here so that
//! `docs/limits.md` can name each one next to the constant that holds it.

use std::future::Future;
use std::time::Duration;

use crate::Error;

/// Default cap on a probe's response body (`max_body` per probe).
pub const DEFAULT_MAX_BODY: u64 = 1024 * 1024;

/// Ceiling on any probe's `max_body`: a spec asking more (or 0) is refused when it is
/// validated, naming both, and a probe built in code is held to it.
pub const MAX_PROBE_BODY_CEILING: u64 = 64 * 1024 * 1024;

/// Cap on one answer of a provider's API (Render, Netlify): far above any real answer,
/// far below what would hurt.
pub const MAX_PROVIDER_BODY: u64 = 16 * 1024 * 1024;

/// Cap on one evidence record read back from a store.
pub const MAX_EVIDENCE_RECORD: u64 = 16 * 1024 * 1024;

/// Default bound on opening a network connection, handshakes included.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default bound on one request to a provider's API, from sending it to the last byte of
/// the answer.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Default bound on a pause between two reads of one answer (a peer that stalls mid-body).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// `bytes` for people: `1 MiB`, `512 KiB`, `300 bytes`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{} {unit}", bytes / size);
        }
    }
    for (unit, size) in UNITS {
        if bytes >= size {
            return format!("{:.1} {unit}", bytes as f64 / size as f64);
        }
    }
    format!("{bytes} bytes")
}

/// Run `fut`, giving up after `after` with [`Error::Timeout`] saying `what` was awaited
/// (name the host and the phase: "an answer from db.internal:5432 to the startup message").
pub async fn within<T>(
    after: Duration,
    what: impl FnOnce() -> String,
    fut: impl Future<Output = crate::Result<T>>,
) -> crate::Result<T> {
    match tokio::time::timeout(after, fut).await {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout {
            what: what(),
            after,
        }),
    }
}

/// Why [`read_capped`] stopped.
#[derive(Debug)]
pub enum CappedRead<E> {
    /// The peer sent more than the cap; nothing past the cap was kept.
    TooLarge {
        /// The cap, in bytes.
        cap: u64,
    },
    /// Reading a chunk failed.
    Read(E),
}

impl<E: std::fmt::Display> std::fmt::Display for CappedRead<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CappedRead::TooLarge { cap } => {
                write!(f, "the body is larger than {}", format_size(*cap))
            }
            CappedRead::Read(e) => e.fmt(f),
        }
    }
}

/// Read a body chunk by chunk (`next` yields the next chunk, `None` at the end), keeping at
/// most `cap` bytes: a peer that sends more fails with [`CappedRead::TooLarge`] as soon as
/// the cap is passed, so memory stays bounded whatever it sends.
///
/// ```
/// # async fn run() {
/// let mut chunks = vec![b"hello ".to_vec(), b"world".to_vec()].into_iter();
/// let body = staging_core::limits::read_capped(64, async || Ok::<_, std::io::Error>(chunks.next()))
///     .await
///     .unwrap();
/// assert_eq!(body, b"hello world");
/// # }
/// ```
pub async fn read_capped<B, E>(
    cap: u64,
    mut next: impl AsyncFnMut() -> Result<Option<B>, E>,
) -> Result<Vec<u8>, CappedRead<E>>
where
    B: AsRef<[u8]>,
{
    let mut body = Vec::new();
    while let Some(chunk) = next().await.map_err(CappedRead::Read)? {
        let chunk = chunk.as_ref();
        if body.len() as u64 + chunk.len() as u64 > cap {
            return Err(CappedRead::TooLarge { cap });
        }
        body.extend_from_slice(chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(format_size(1024 * 1024), "1 MiB");
        assert_eq!(format_size(16 * 1024 * 1024), "16 MiB");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(300), "300 bytes");
    }

    #[tokio::test]
    async fn a_body_past_the_cap_stops_at_the_first_chunk_over_it() {
        let mut served = 0u32;
        let r = read_capped(10_000, async || {
            served += 1;
            Ok::<_, std::io::Error>(Some([0u8; 4096]))
        })
        .await;
        assert!(matches!(r, Err(CappedRead::TooLarge { cap: 10_000 })));
        assert_eq!(served, 3, "reading stops as soon as the cap is passed");
        let text = CappedRead::<std::io::Error>::TooLarge { cap: 1 << 20 }.to_string();
        assert_eq!(text, "the body is larger than 1 MiB");
    }

    #[tokio::test]
    async fn a_body_of_exactly_the_cap_is_whole() {
        let mut chunks = vec![vec![1u8; 6], vec![2u8; 4]].into_iter();
        let body = read_capped(10, async || Ok::<_, std::io::Error>(chunks.next()))
            .await
            .unwrap();
        assert_eq!(body.len(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_wait_becomes_a_timeout_naming_what_was_awaited() {
        let e = within(
            Duration::from_secs(3),
            || "an answer from db.internal:5432 to the startup message".to_owned(),
            std::future::pending::<crate::Result<()>>(),
        )
        .await
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "timed out after 3s: an answer from db.internal:5432 to the startup message"
        );
        assert!(e.is_retryable());
    }
}
