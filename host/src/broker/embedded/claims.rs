//! Which messages of each embedded queue are in flight, in memory only.
//!
//! A consumer *claims* the first ready message of its queue; it stays in
//! the file until settled. Consumers of one queue share its claims, so two
//! components consuming the same queue compete for messages instead of
//! both getting each. A claim given up without a settlement (a crashed
//! handler task, a settle that could not be written) makes the message
//! ready again at once; a host restart forgets every claim, making every
//! unsettled message ready again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;

use tokio::sync::Notify;

use super::message_store::MessageStore;
use super::record::Record;

/// The claim state of every queue that has had a consumer.
#[derive(Default)]
pub struct Queues {
    queues: Mutex<HashMap<String, Arc<QueueState>>>,
}

impl Queues {
    pub fn get(&self, queue: &str) -> Arc<QueueState> {
        self.queues
            .lock()
            .entry(queue.to_owned())
            .or_default()
            .clone()
    }

    /// Wakes the consumers of `queue`: it has new messages.
    pub fn wake(&self, queue: &str) {
        if let Some(state) = self.queues.lock().get(queue) {
            state.ready.notify_waiters();
        }
    }
}

#[derive(Default)]
pub struct QueueState {
    /// Notified when the queue may have a message to claim.
    pub ready: Notify,
    claims: Mutex<Claims>,
}

#[derive(Default)]
struct Claims {
    /// Every message below this seq is claimed (or gone): scans start here.
    cursor: u64,
    in_flight: HashSet<u64>,
}

impl QueueState {
    /// Claims the first ready message of `queue`. Blocking (reads the
    /// file). A record that cannot be decoded stays claimed, so that it is
    /// not handed out in a loop; it comes back after a restart.
    pub fn claim(
        &self,
        store: &MessageStore,
        queue: &str,
    ) -> anyhow::Result<Option<(u64, Record)>> {
        let mut claims = self.claims.lock();
        loop {
            let Some((seq, bytes)) = store.first_from(queue, claims.cursor, &claims.in_flight)?
            else {
                return Ok(None);
            };
            claims.in_flight.insert(seq);
            claims.cursor = seq + 1;
            match Record::decode(&bytes) {
                Ok(record) => return Ok(Some((seq, record))),
                Err(error) => tracing::error!(queue, seq, "skipping a stored message: {error}"),
            }
        }
    }

    /// The message was settled (it is gone from the file).
    pub fn settled(&self, seq: u64) {
        self.claims.lock().in_flight.remove(&seq);
    }

    /// The claim was given up: the message is ready again, before any
    /// message that arrived after it.
    pub fn release(&self, seq: u64) {
        {
            let mut claims = self.claims.lock();
            claims.in_flight.remove(&seq);
            claims.cursor = claims.cursor.min(seq);
        }
        self.ready.notify_waiters();
    }
}
