//! Consuming an embedded queue: claims up to `prefetch` messages at a time
//! and settles each in one transaction with whatever replaces it.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::claims::QueueState;
use super::message_store::{MessageStore, Next, Write};
use super::record::Record;
use crate::broker::{
    DEAD_REASON_HEADER, DEAD_SOURCE_HEADER, Delivery, Message, Outcome, Settle, Subscribe,
    Subscription,
};
use crate::shutdown::Shutdown;

/// Pause after failing to read the file, before trying again.
const READ_RETRY: Duration = Duration::from_secs(1);

/// `queue` and `dead_letter` in `spec` are the stored (prefixed) names.
pub fn start(store: Arc<MessageStore>, spec: Subscribe, logical: String) -> Subscription {
    // Room for everything the prefetch lets out, so that a batch trigger
    // finds what has arrived without waiting on this task.
    let (deliveries, rx) = mpsc::channel(spec.prefetch.max(1).into());
    let (stop, stop_rx) = crate::shutdown::channel();
    let task = tokio::spawn(async move {
        run(store.clone(), spec, logical, deliveries, stop_rx).await;
        // The subscription closes once its deliveries are settled: make
        // their (lazily synced) settlements durable before the host exits.
        if let Err(error) = store.write(Write::Sync).await {
            tracing::error!("syncing the queue file: {error}");
        }
    });
    Subscription::new(rx, stop, task)
}

async fn run(
    store: Arc<MessageStore>,
    spec: Subscribe,
    logical: String,
    deliveries: mpsc::Sender<Delivery>,
    mut stop: Shutdown,
) {
    let state = store.queues.get(&spec.queue);
    let permits = Arc::new(Semaphore::new(spec.prefetch.into()));
    loop {
        let permit = tokio::select! {
            () = stop.wait() => return,
            permit = permits.clone().acquire_owned() => permit.expect("never closed"),
        };
        let (seq, record) = loop {
            // Registered before looking, so that a message stored between
            // the look and the wait still wakes us.
            let ready = state.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            let claimed = {
                let (store, state, queue) = (store.clone(), state.clone(), spec.queue.clone());
                tokio::task::spawn_blocking(move || state.claim(&store, &queue)).await
            };
            match claimed {
                Ok(Ok(Some(claimed))) => break claimed,
                Ok(Ok(None)) => {
                    tokio::select! {
                        () = stop.wait() => return,
                        () = ready => {}
                    }
                }
                Ok(Err(error)) => {
                    tracing::error!(queue = %logical, "reading the queue file: {error}");
                    tokio::select! {
                        () = stop.wait() => return,
                        () = tokio::time::sleep(READ_RETRY) => {}
                    }
                }
                Err(join) => {
                    tracing::error!(queue = %logical, "claiming a message panicked: {join}");
                    return;
                }
            }
        };
        let settler = EmbeddedSettle {
            store: store.clone(),
            state: state.clone(),
            queue: spec.queue.clone(),
            logical: logical.clone(),
            dead_letter: spec.dead_letter.clone(),
            seq,
            settled: false,
            _permit: permit,
        };
        let delivery = Delivery::new(
            logical.clone(),
            record.message,
            record.attempt,
            Box::new(settler),
        );
        tokio::select! {
            // A delivery dropped here is released (see `Drop` below).
            () = stop.wait() => return,
            sent = deliveries.send(delivery) => if sent.is_err() { return },
        }
    }
}

struct EmbeddedSettle {
    store: Arc<MessageStore>,
    state: Arc<QueueState>,
    /// Stored name of the queue and of its dead-letter queue.
    queue: String,
    logical: String,
    dead_letter: String,
    seq: u64,
    settled: bool,
    /// Holds one of the subscription's `prefetch` slots until settled.
    _permit: OwnedSemaphorePermit,
}

impl Settle for EmbeddedSettle {
    fn settle(
        mut self: Box<Self>,
        mut message: Message,
        attempt: u32,
        outcome: Outcome,
    ) -> BoxFuture<'static, anyhow::Result<()>> {
        Box::pin(async move {
            let next = match outcome {
                Outcome::Ack => Next::Nothing,
                Outcome::Retry(delay) => Next::Delay {
                    due_ms: now_ms() + delay.as_millis() as u64,
                    record: Record {
                        message,
                        attempt: attempt + 1,
                    },
                },
                Outcome::Postpone(delay) => Next::Delay {
                    due_ms: now_ms() + delay.as_millis() as u64,
                    record: Record { message, attempt },
                },
                Outcome::DeadLetter(reason) => {
                    set_header(&mut message.headers, DEAD_REASON_HEADER, reason);
                    set_header(
                        &mut message.headers,
                        DEAD_SOURCE_HEADER,
                        self.logical.clone(),
                    );
                    Next::Move {
                        queue: self.dead_letter.clone(),
                        record: Record { message, attempt },
                    }
                }
            };
            let write = Write::Settle {
                queue: self.queue.clone(),
                seq: self.seq,
                next,
            };
            let written = self.store.write(write).await;
            self.settled = true;
            match written {
                Ok(_) => {
                    self.state.settled(self.seq);
                    Ok(())
                }
                Err(error) => {
                    self.state.release(self.seq);
                    anyhow::bail!("{error}; the message stays in the queue")
                }
            }
        })
    }
}

impl Drop for EmbeddedSettle {
    fn drop(&mut self) {
        if !self.settled {
            self.state.release(self.seq);
        }
    }
}

fn set_header(headers: &mut Vec<(String, String)>, name: &str, value: String) {
    headers.retain(|(n, _)| n != name);
    headers.push((name.to_owned(), value));
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}
