//! A component's log file, written by a thread of its own.
//!
//! Instances log from tokio's worker threads, and a write to a file can
//! block (a slow disk, a full one, a network volume): done there, under a
//! lock shared by every instance of the component, one stalled write would
//! stall every request of the component, and the tokio workers with them.
//! So lines go into a bounded queue and one thread per file writes them in
//! order. When the queue is full the line is not waited for: it is counted,
//! and the file says how many lines it lost as soon as the writer catches up.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use anyhow::Context as _;

/// Lines waiting for the writer, per file, before new ones are dropped.
const QUEUE_LINES: usize = 4096;

enum Job {
    Line(String),
    /// Answered once every line queued before it is written.
    #[cfg_attr(not(test), allow(dead_code))]
    Flush(SyncSender<()>),
}

/// The sending side; the writer thread ends when it is dropped, after
/// writing what was queued.
pub struct LogFile {
    path: PathBuf,
    jobs: SyncSender<Job>,
    dropped: Arc<AtomicU64>,
}

impl LogFile {
    /// Creates the folder and opens (or creates) the file for appending,
    /// so that a bad path fails the deploy rather than every line.
    pub fn open(component: &str, path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| {
                format!("creating log directory {} for {component:?}", dir.display())
            })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening log file {} for {component:?}", path.display()))?;
        let (jobs, queue) = sync_channel(QUEUE_LINES);
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            component: component.to_owned(),
            path: path.to_owned(),
            file,
            dropped: dropped.clone(),
        };
        std::thread::Builder::new()
            .name(format!("log-{component}"))
            .spawn(move || writer.run(queue))
            .context("starting the log writer thread")?;
        Ok(Self {
            path: path.to_owned(),
            jobs,
            dropped,
        })
    }

    /// Queues one whole line (with its `\n`); never blocks.
    pub fn write(&self, line: String) {
        match self.jobs.try_send(Job::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            // The writer died (it cannot, short of a panic): nothing to do
            // but say so.
            Err(TrySendError::Disconnected(_)) => {
                tracing::error!(file = %self.path.display(), "log writer thread is gone");
            }
        }
    }

    /// Waits until every line queued so far is written.
    #[cfg(test)]
    pub fn flush(&self) {
        let (done, wait) = sync_channel(1);
        self.jobs.send(Job::Flush(done)).unwrap();
        wait.recv().unwrap();
    }
}

struct Writer {
    component: String,
    path: PathBuf,
    file: File,
    dropped: Arc<AtomicU64>,
}

impl Writer {
    fn run(mut self, queue: Receiver<Job>) {
        for job in queue {
            match job {
                // One write per line: with O_APPEND even two hosts writing
                // one file never interleave within a line.
                Job::Line(line) => self.append(line.as_bytes()),
                Job::Flush(done) => {
                    let _ = done.send(());
                }
            }
            let dropped = self.dropped.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                let note = format!(
                    "{now} WARN corral {dropped} log lines dropped: the file was not keeping up\n"
                );
                self.append(note.as_bytes());
            }
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        if let Err(e) = self.file.write_all(bytes) {
            tracing::error!(
                component = self.component,
                file = %self.path.display(),
                "cannot write log line: {e}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_lines_and_the_file_says_how_many() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/app.log");
        let file = LogFile::open("c", &path).unwrap();
        // Hold the writer: it blocks handing over this flush until we take it.
        let (done, release) = sync_channel(0);
        file.jobs.send(Job::Flush(done)).unwrap();
        for i in 0..QUEUE_LINES + 10 {
            file.write(format!("line {i}\n"));
        }
        release.recv().unwrap();
        file.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        // The writer may take the held flush off the queue before or after
        // the first line went in: 10 or 11 lines find it full.
        let written = text.lines().filter(|l| l.starts_with("line ")).count();
        let notes: Vec<u64> = text
            .lines()
            .filter_map(|l| {
                l.split_once("WARN corral ")?
                    .1
                    .strip_suffix(" log lines dropped: the file was not keeping up")
            })
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0] >= 10, "{notes:?}");
        assert_eq!(written as u64 + notes[0], (QUEUE_LINES + 10) as u64);
    }

    #[test]
    fn a_bad_path_fails_at_open() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), "").unwrap();
        let error = LogFile::open("c", &dir.path().join("file/app.log"))
            .err()
            .unwrap();
        assert!(
            format!("{error:#}").contains("creating log directory"),
            "{error:#}"
        );
    }
}
