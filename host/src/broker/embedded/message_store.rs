//! The embedded queue's file (redb) and its single writer.
//!
//! Tables:
//! * `messages`: `(queue, seq) → record`: every message not yet
//!   acknowledged, ready or in flight. `seq` grows across the whole file, so
//!   a range scan over one queue yields its messages in arrival order;
//! * `delayed`: `(due ms, seq) → (queue, record)`: retries waiting for
//!   their time; the delay task moves due ones to the end of their queue;
//! * `meta`: the next `seq`.
//!
//! Which messages are in flight is *not* stored: after a restart every
//! message in `messages` is ready again, which is exactly the redelivery a
//! host crash calls for.
//!
//! All writes go through one thread that groups whatever is waiting into a
//! single transaction (group commit): concurrent publishers share the cost
//! of one sync instead of paying one each. A commit with a publish in it is
//! synced before anyone hears back; one with only settles is synced within
//! [`LAZY_SYNC`] (see `write_loop`).

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, mpsc};

use parking_lot::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use redb::{Database, Durability, ReadableDatabase as _, ReadableTable as _, TableDefinition};
use tokio::sync::{Notify, oneshot};

use super::claims::Queues;
use super::record::{Record, decode_routed, encode_routed};

const MESSAGES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("messages");
const DELAYED: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("delayed");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const NEXT_SEQ: &str = "next_seq";
/// Most writes folded into one transaction.
const MAX_GROUP: usize = 1024;
/// Longest a settle stays unsynced when nothing else is written.
const LAZY_SYNC: Duration = Duration::from_millis(100);

/// One change to the file.
pub enum Write {
    /// Appends the same records to each of `queues` (one queue for a
    /// plain publish, every matching bound queue for an exchange), in one
    /// transaction: all copies are stored or none.
    Append {
        queues: Vec<String>,
        records: Vec<Record>,
    },
    /// Removes a delivered message and stores what follows it, atomically.
    Settle { queue: String, seq: u64, next: Next },
    /// Moves every delayed message due by `now_ms` to the end of its queue.
    Promote { now_ms: u64 },
    /// Makes every earlier write durable (settles are synced lazily).
    Sync,
}

/// What replaces a settled message.
pub enum Next {
    Nothing,
    /// A retry, delivered again at `due_ms`.
    Delay {
        due_ms: u64,
        record: Record,
    },
    /// A copy in another queue (the dead-letter queue).
    Move {
        queue: String,
        record: Record,
    },
}

/// Why a write to the queue file did not happen.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    #[error("the queue file is closed")]
    Closed,
    #[error("the queue writer stopped")]
    WriterStopped,
    /// redb's error, as text: one failed commit answers every job in it.
    #[error("writing the queue file failed: {0}")]
    Failed(String),
}

struct Job {
    write: Write,
    done: oneshot::Sender<Result<Option<u64>, WriteError>>,
}

pub struct MessageStore {
    db: Arc<Database>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    pub queues: Arc<Queues>,
    /// Poked when a retry is delayed, so the delay task re-plans.
    pub delay_wake: Arc<Notify>,
}

impl MessageStore {
    /// Opens (or creates) `dir/queue.redb`. Fails if another process has
    /// it open.
    pub fn open(dir: &Path) -> anyhow::Result<Arc<Self>> {
        std::fs::create_dir_all(dir)?;
        let file = dir.join("queue.redb");
        let db = Database::create(&file)
            .map_err(|e| anyhow::anyhow!("opening the queue file {}: {e}", file.display()))?;
        let txn = db.begin_write()?;
        let next_seq = {
            txn.open_table(MESSAGES)?;
            txn.open_table(DELAYED)?;
            let meta = txn.open_table(META)?;
            meta.get(NEXT_SEQ)?.map(|v| v.value()).unwrap_or(1)
        };
        txn.commit()?;
        let db = Arc::new(db);
        let queues = Arc::new(Queues::default());
        let delay_wake = Arc::new(Notify::new());
        let (jobs, rx) = mpsc::channel();
        let writer = {
            let (db, queues, delay_wake) = (db.clone(), queues.clone(), delay_wake.clone());
            std::thread::Builder::new()
                .name("corral-queue-writer".into())
                .spawn(move || write_loop(&db, &rx, next_seq, &queues, &delay_wake))?
        };
        Ok(Arc::new(Self {
            db,
            jobs: Mutex::new(Some(jobs)),
            writer: Mutex::new(Some(writer)),
            queues,
            delay_wake,
        }))
    }

    /// Applies `write` durably. For `Promote`, returns the next due time.
    pub async fn write(&self, write: Write) -> Result<Option<u64>, WriteError> {
        let (done, result) = oneshot::channel();
        let sent = match self.jobs.lock().as_ref() {
            Some(jobs) => jobs.send(Job { write, done }).is_ok(),
            None => false,
        };
        if !sent {
            return Err(WriteError::Closed);
        }
        result.await.unwrap_or(Err(WriteError::WriterStopped))
    }

    /// The first message of `queue` from `seq` on that `skip` does not
    /// exclude. Blocking: call off the async threads.
    pub fn first_from(
        &self,
        queue: &str,
        seq: u64,
        skip: &HashSet<u64>,
    ) -> anyhow::Result<Option<(u64, Vec<u8>)>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(MESSAGES)?;
        for entry in table.range((queue, seq)..=(queue, u64::MAX))? {
            let (key, value) = entry?;
            let seq = key.value().1;
            if !skip.contains(&seq) {
                return Ok(Some((seq, value.value().to_vec())));
            }
        }
        Ok(None)
    }

    /// How many messages `queue` holds (ready or in flight), for tests and
    /// the admin view.
    pub fn depth(&self, queue: &str) -> anyhow::Result<usize> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(MESSAGES)?;
        Ok(table.range((queue, 0)..=(queue, u64::MAX))?.count())
    }
}

impl Drop for MessageStore {
    /// Stops the writer (after the writes already queued) and closes the
    /// file, so that it can be opened again in this process.
    fn drop(&mut self) {
        self.jobs.lock().take();
        if let Some(writer) = self.writer.lock().take() {
            let _ = writer.join();
        }
    }
}

fn write_loop(
    db: &Database,
    jobs: &mpsc::Receiver<Job>,
    mut next_seq: u64,
    queues: &Queues,
    delay_wake: &Notify,
) {
    // Whether the last commits were not synced yet (settles only).
    let mut unsynced = false;
    loop {
        let first = if unsynced {
            match jobs.recv_timeout(LAZY_SYNC) {
                Ok(job) => job,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    unsynced = !sync(db);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match jobs.recv() {
                Ok(job) => job,
                Err(_) => break,
            }
        };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let mut touched = HashSet::new();
        let mut delayed = false;
        let writes: Vec<&Write> = group.iter().map(|job| &job.write).collect();
        // A publisher is told its message is stored: appends are synced
        // before the answer. Settles and promotions move messages
        // atomically (the old copy goes in the same transaction as the new
        // one is written), so losing one in a crash only means delivering
        // a message again: they are synced lazily, within `LAZY_SYNC` or
        // with the next append, which is what makes acking cheap.
        let durable = writes
            .iter()
            .any(|w| matches!(w, Write::Append { .. } | Write::Sync));
        let result = commit(
            db,
            &writes,
            durable,
            &mut next_seq,
            &mut touched,
            &mut delayed,
        );
        match result {
            Ok(results) => {
                unsynced = !durable;
                for (job, result) in group.into_iter().zip(results) {
                    let _ = job.done.send(Ok(result));
                }
                for queue in &touched {
                    queues.wake(queue);
                }
                if delayed {
                    delay_wake.notify_one();
                }
            }
            Err(error) => {
                tracing::error!("writing the queue file failed: {error}");
                for job in group {
                    let _ = job.done.send(Err(WriteError::Failed(error.to_string())));
                }
            }
        }
    }
    if unsynced {
        sync(db);
    }
}

/// Makes every earlier commit durable (an empty synced commit); `true` on
/// success.
fn sync(db: &Database) -> bool {
    let synced = (|| -> Result<(), redb::Error> { Ok(db.begin_write()?.commit()?) })();
    if let Err(error) = &synced {
        tracing::error!("syncing the queue file failed: {error}");
    }
    synced.is_ok()
}

/// Applies `writes` in one transaction; returns each write's result.
fn commit(
    db: &Database,
    writes: &[&Write],
    durable: bool,
    next_seq: &mut u64,
    touched: &mut HashSet<String>,
    delayed: &mut bool,
) -> Result<Vec<Option<u64>>, redb::Error> {
    let mut txn = db.begin_write()?;
    if !durable {
        txn.set_durability(Durability::None)?;
    }
    let mut counter = *next_seq;
    let mut results = Vec::with_capacity(writes.len());
    {
        let mut messages = txn.open_table(MESSAGES)?;
        let mut delay = txn.open_table(DELAYED)?;
        let mut take = || {
            counter += 1;
            counter - 1
        };
        for write in writes {
            let mut result = None;
            match write {
                Write::Append { queues, records } => {
                    for queue in queues {
                        for record in records {
                            messages
                                .insert((queue.as_str(), take()), record.encode().as_slice())?;
                        }
                        touched.insert(queue.clone());
                    }
                }
                Write::Settle { queue, seq, next } => {
                    messages.remove((queue.as_str(), *seq))?;
                    match next {
                        Next::Nothing => {}
                        Next::Delay { due_ms, record } => {
                            delay.insert(
                                (*due_ms, take()),
                                encode_routed(queue, record).as_slice(),
                            )?;
                            *delayed = true;
                        }
                        Next::Move { queue, record } => {
                            messages
                                .insert((queue.as_str(), take()), record.encode().as_slice())?;
                            touched.insert(queue.clone());
                        }
                    }
                }
                Write::Sync => {}
                Write::Promote { now_ms } => {
                    let due: Vec<((u64, u64), Vec<u8>)> = delay
                        .range(..=(*now_ms, u64::MAX))?
                        .map(|e| e.map(|(k, v)| (k.value(), v.value().to_vec())))
                        .collect::<Result<_, _>>()?;
                    for (key, value) in due {
                        delay.remove(key)?;
                        match decode_routed(&value) {
                            Ok((queue, record)) => {
                                messages
                                    .insert((queue.as_str(), take()), record.encode().as_slice())?;
                                touched.insert(queue);
                            }
                            Err(error) => tracing::error!("dropping a delayed message: {error}"),
                        }
                    }
                    result = delay.first()?.map(|(k, _)| k.value().0);
                }
            }
            results.push(result);
        }
    }
    let mut meta = txn.open_table(META)?;
    meta.insert(NEXT_SEQ, counter)?;
    drop(meta);
    txn.commit()?;
    *next_seq = counter;
    Ok(results)
}
