//! Reading a child process's output: lossily, line by line, redacted, until it ends.

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::Redactor;

/// The longest line kept whole; of a longer line, only its first MAX_LINE_BYTES are kept
/// (through [`Redactor::redact_head`]) and the rest, up to the next newline, is read and
/// dropped.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Read `stream` to its end, one line at a time, and hand each line to `each` with invalid
/// UTF-8 replaced by U+FFFD, without its line ending, and redacted by `redactor`.
///
/// It never stops on bad bytes and never stops reading before the end of the stream (only a
/// read error ends it early), so a child process that prints binary garbage neither loses
/// its later lines nor finds its pipe closed under it. The lines of a multi-line secret are
/// registered forms of their own (see [`super::forms`]), so a line-by-line stream is
/// covered as well as the whole value.
pub async fn for_each_line_lossy(
    stream: impl AsyncRead + Unpin,
    redactor: &Redactor,
    mut each: impl FnMut(String),
) {
    let mut reader = BufReader::new(stream);
    let mut buf: Vec<u8> = Vec::with_capacity(256);
    let mut overlong = false;
    loop {
        // Read up to the next newline, but hold at most MAX_LINE_BYTES of it.
        let (done, used, found_newline) = match reader.fill_buf().await {
            Ok([]) => (true, 0, false),
            Ok(chunk) => match chunk.iter().position(|b| *b == b'\n') {
                Some(at) => {
                    if !overlong {
                        take_up_to(&mut buf, &chunk[..at]);
                    }
                    (false, at + 1, true)
                }
                None => {
                    if !overlong {
                        take_up_to(&mut buf, chunk);
                    }
                    (false, chunk.len(), false)
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => (true, 0, false),
        };
        reader.consume(used);
        if !found_newline && !done && buf.len() >= MAX_LINE_BYTES && !overlong {
            // Hand over what we hold now (redacted, then cut); drop the rest of the line.
            overlong = true;
            each(line_of(&buf, redactor, true));
            buf.clear();
        }
        if found_newline || (done && !buf.is_empty()) {
            if !overlong {
                each(line_of(&buf, redactor, false));
            }
            buf.clear();
            overlong = false;
        }
        if done {
            return;
        }
    }
}

fn take_up_to(buf: &mut Vec<u8>, bytes: &[u8]) {
    let room = MAX_LINE_BYTES.saturating_sub(buf.len());
    buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

fn line_of(bytes: &[u8], redactor: &Redactor, cut: bool) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end_matches('\r');
    if cut {
        format!(
            "{}{} [line longer than {MAX_LINE_BYTES} bytes cut]",
            redactor.redact_head(text),
            super::CUT_MARK
        )
    } else {
        redactor.redact(text).into_owned()
    }
}
