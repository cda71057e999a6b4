//! A component's standard error, turned into its log lines.
//!
//! Inherited as is, a guest's stderr would write straight into the host's
//! own output: unprefixed (nobody can tell which component wrote it),
//! unbounded (one request could fill the disk or a log pipeline) and raw (a
//! guest could print lines that look like the host's). Instead, each line
//! goes through the component's [`LogSink`] at `WARN` with the context
//! `stderr`: tagged with the component, escaped, and bounded per request
//! ([`MAX_BYTES_PER_INSTANCE`]); past the bound the rest is counted and
//! reported in one line when the instance ends. Nothing blocks: the guest is
//! never slowed down by a slow terminal.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

use super::sink::{Level, LogSink};

/// Bytes of stderr one instance may write; the rest is dropped and counted.
pub const MAX_BYTES_PER_INSTANCE: usize = 64 * 1024;
/// A line longer than this is written in pieces of this size.
pub const MAX_LINE_BYTES: usize = 4 * 1024;
/// What one `write` may be handed (wasi's `check-write`).
const WRITE_PERMIT: usize = 64 * 1024;

/// One instance's stderr. Made for every instance, so it only holds the
/// sink: the line state is made the first time the guest opens the stream
/// (most never do), and every stream opened after shares it, with one
/// budget and one partial line.
pub struct ComponentStderr {
    sink: Arc<LogSink>,
    stream: OnceLock<Stream>,
}

impl ComponentStderr {
    pub fn new(sink: Arc<LogSink>) -> Self {
        Self {
            sink,
            stream: OnceLock::new(),
        }
    }

    fn stream(&self) -> Stream {
        self.stream
            .get_or_init(|| Stream {
                lines: Arc::new(Mutex::new(Lines {
                    sink: self.sink.clone(),
                    partial: Vec::new(),
                    written: 0,
                    dropped: 0,
                })),
            })
            .clone()
    }
}

/// A stream the guest writes to; all of an instance's share its lines.
#[derive(Clone)]
struct Stream {
    lines: Arc<Mutex<Lines>>,
}

impl Stream {
    fn push(&self, bytes: &[u8]) {
        self.lines.lock().push(bytes);
    }
}

struct Lines {
    sink: Arc<LogSink>,
    partial: Vec<u8>,
    written: usize,
    dropped: usize,
}

impl Lines {
    fn push(&mut self, bytes: &[u8]) {
        let room = MAX_BYTES_PER_INSTANCE.saturating_sub(self.written);
        let (kept, over) = bytes.split_at(bytes.len().min(room));
        self.written += kept.len();
        self.dropped += over.len();
        for piece in kept.split_inclusive(|b| *b == b'\n') {
            match piece.strip_suffix(b"\n") {
                Some(line) => {
                    self.append(line);
                    self.emit();
                }
                None => self.append(piece),
            }
        }
    }

    fn append(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let take = bytes.len().min(MAX_LINE_BYTES - self.partial.len());
            self.partial.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.partial.len() == MAX_LINE_BYTES {
                self.emit();
            }
        }
    }

    fn emit(&mut self) {
        let line = String::from_utf8_lossy(&self.partial);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        self.sink.write(Level::Warn, "stderr", line);
        self.partial.clear();
    }
}

impl Drop for Lines {
    /// The instance is gone: what is left of a line, and how much was cut.
    fn drop(&mut self) {
        if !self.partial.is_empty() {
            self.emit();
        }
        if self.dropped > 0 {
            self.sink.write(
                Level::Warn,
                "stderr",
                &format!(
                    "{} more bytes of stderr dropped (at most {MAX_BYTES_PER_INSTANCE} per instance)",
                    self.dropped
                ),
            );
        }
    }
}

impl IsTerminal for ComponentStderr {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for ComponentStderr {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.stream())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.stream())
    }
}

#[async_trait::async_trait]
impl OutputStream for Stream {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    /// Always ready: what exceeds the budget is dropped, never waited on.
    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(WRITE_PERMIT)
    }
}

#[async_trait::async_trait]
impl Pollable for Stream {
    async fn ready(&mut self) {}
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(path: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| l.split_once(" WARN stderr ").unwrap().1.to_owned())
            .collect()
    }

    /// A sink writing to a fresh file, and an instance's stderr on it.
    fn setup() -> (
        tempfile::TempDir,
        std::path::PathBuf,
        Arc<LogSink>,
        ComponentStderr,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let sink = Arc::new(LogSink::open("c", Some(&path)).unwrap());
        let stderr = ComponentStderr::new(sink.clone());
        (dir, path, sink, stderr)
    }

    #[test]
    fn lines_are_split_joined_and_escaped() {
        let (_dir, path, sink, stderr) = setup();
        let mut stream = stderr.p2_stream();
        stream
            .write(Bytes::from_static(b"panicked at src/lib.rs:3\r\nfir"))
            .unwrap();
        stream
            .write(Bytes::from_static(b"st\nforged \x1b[2J"))
            .unwrap();
        drop((stream, stderr));
        sink.flush();
        assert_eq!(
            lines_of(&path),
            ["panicked at src/lib.rs:3", "first", "forged \\u{1b}[2J"]
        );
    }

    #[test]
    fn an_instance_writes_at_most_its_budget() {
        let (_dir, path, sink, stderr) = setup();
        // Two streams of the same instance share the budget.
        let (mut a, mut b) = (stderr.p2_stream(), stderr.p2_stream());
        let line = Bytes::from(
            vec![b'x'; 1023]
                .into_iter()
                .chain([b'\n'])
                .collect::<Vec<_>>(),
        );
        for _ in 0..100 {
            a.write(line.clone()).unwrap();
            b.write(line.clone()).unwrap();
        }
        drop((a, b, stderr));
        sink.flush();
        let lines = lines_of(&path);
        assert_eq!(lines.len(), MAX_BYTES_PER_INSTANCE / 1024 + 1);
        assert_eq!(
            lines.last().unwrap(),
            &format!(
                "{} more bytes of stderr dropped (at most {MAX_BYTES_PER_INSTANCE} per instance)",
                200 * 1024 - MAX_BYTES_PER_INSTANCE
            )
        );
    }

    #[test]
    fn a_line_without_end_is_cut_into_pieces() {
        let (_dir, path, sink, stderr) = setup();
        let mut stream = stderr.p2_stream();
        stream
            .write(Bytes::from(vec![b'y'; MAX_LINE_BYTES * 2 + 10]))
            .unwrap();
        drop((stream, stderr));
        sink.flush();
        let lengths: Vec<usize> = lines_of(&path).iter().map(String::len).collect();
        assert_eq!(lengths, [MAX_LINE_BYTES, MAX_LINE_BYTES, 10]);
    }
}
