//! Group commit: durable writes from many callers share one transaction and
//! one fsync.
//!
//! A redb commit with fsync costs about a millisecond however little it
//! writes, so one transaction per write capped the embedded store at a few
//! hundred writes a second, all of them waiting on the disk. Instead every
//! durable write is a job for one writer thread: it takes the first job
//! waiting, then every other job that queued up meanwhile (while the
//! previous fsync ran), applies them in order in one transaction, commits
//! once and only then answers each caller. Under no load a group is one job
//! and nothing waits longer than before; under load the fsync is shared.
//!
//! A job that fails must not take its neighbours' writes down with it, nor
//! leave half of its own: if applying any job fails, the whole transaction
//! is dropped (nothing written) and every job of the group runs again in its
//! own transaction, so each gets exactly the answer it would have got alone.
//! Jobs are therefore `FnMut` and must be safe to apply twice (they only
//! read their captured arguments).

use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use redb::Database;
use tokio::sync::oneshot;

use super::tables::{Write, write};
use crate::capabilities::keyvalue::backend::Failure;

/// Most jobs in one transaction: bounds how long the first caller of a big
/// group waits, and the transaction's size.
const MAX_GROUP: usize = 256;

/// A write waiting for its transaction.
trait Job: Send {
    /// Applies the write inside the group's transaction.
    fn apply(&mut self, w: &mut Write<'_>, now: u64) -> Result<(), Failure>;
    /// Answers the caller: `Ok` once the transaction committed.
    fn finish(self: Box<Self>, committed: Result<(), Failure>);
}

struct Pending<T, F> {
    write: F,
    value: Option<T>,
    reply: oneshot::Sender<Result<T, Failure>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnMut(&mut Write<'_>, u64) -> Result<T, Failure> + Send,
{
    fn apply(&mut self, w: &mut Write<'_>, now: u64) -> Result<(), Failure> {
        self.value = Some((self.write)(w, now)?);
        Ok(())
    }

    fn finish(self: Box<Self>, committed: Result<(), Failure>) {
        let Self { value, reply, .. } = *self;
        let answer = committed
            .and_then(|()| value.ok_or_else(|| Failure("the write was not applied".into())));
        let _ = reply.send(answer);
    }
}

/// The writer thread of one database. Dropping it lets the queued jobs
/// finish and waits for the thread, so the file is closed when it returns.
pub struct Committer {
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
}

impl Committer {
    pub fn start(db: Arc<Database>) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("kv-commit".into())
            .spawn(move || run(&db, &queue))?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Queues `write` and waits until it is durably committed (or failed).
    pub async fn submit<T, F>(&self, write: F) -> Result<T, Failure>
    where
        T: Send + 'static,
        F: FnMut(&mut Write<'_>, u64) -> Result<T, Failure> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            write,
            value: None,
            reply,
        });
        let gone = || Failure("the embedded store's writer has stopped".into());
        self.jobs
            .as_ref()
            .ok_or_else(gone)?
            .send(job)
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(db: &Database, queue: &mpsc::Receiver<Box<dyn Job>>) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        match commit(db, &mut group) {
            Ok(()) => group.into_iter().for_each(|job| job.finish(Ok(()))),
            Err(error) if group.len() == 1 => group
                .into_iter()
                .for_each(|job| job.finish(Err(error.clone()))),
            Err(_) => {
                for mut job in group {
                    let alone = commit(db, std::slice::from_mut(&mut job));
                    job.finish(alone);
                }
            }
        }
    }
}

/// Applies `jobs` in order in one durable transaction; on any failure
/// nothing is written.
fn commit(db: &Database, jobs: &mut [Box<dyn Job>]) -> Result<(), Failure> {
    write(db, true, |w| {
        let now = now_ms();
        jobs.iter_mut().try_for_each(|job| job.apply(w, now))
    })
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
