//! The acknowledgements of one consumer channel, coalesced.
//!
//! Every `basic.ack` is work for the broker's queue process, the one
//! process that also takes the queue's publishes: on a busy queue, acking
//! each delivery on its own slows the publishers down. `basic.ack` with
//! `multiple` acknowledges every delivery of the channel up to a tag in one
//! frame, so settled deliveries are acknowledged in runs:
//!
//! - a delivery is *outstanding* from the moment it arrives until its
//!   handler's outcome is carried out;
//! - a delivery settled with an ack is *ready*; the ready deliveries below
//!   the lowest outstanding one are acknowledged with one `multiple` ack on
//!   the highest of them (never covering an outstanding one);
//! - a ready delivery stuck behind a slow outstanding one for longer than
//!   [`LINGER`] is acknowledged on its own, so a slow handler does not keep
//!   the others' prefetch slots;
//! - a delivery given back (`nack` + requeue) is sent before any ack that
//!   could cover it.
//!
//! One task sends every frame of the channel, in the order decided under
//! the lock, so a `multiple` ack never reaches the broker before a single
//! ack or nack it would cover. An ack that is never sent (the channel died
//! first) only means the broker delivers that message again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use lapin::Acker;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long a ready delivery may wait for a lower outstanding one before it
/// is acknowledged on its own.
pub const LINGER: Duration = Duration::from_millis(50);

/// How long one frame may take to be handed to the connection. On a
/// connection that died under it, lapin can keep a frame queued forever;
/// the sender must not wait with it.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// The coalescing state and its sender task, for one channel.
pub struct Acks {
    shared: Arc<Shared>,
    sender: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    state: Mutex<Window<Acker>>,
    wake: Notify,
}

impl Acks {
    pub fn start(queue: String) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(Window::default()),
            wake: Notify::new(),
        });
        let sender = tokio::spawn(send_loop(shared.clone(), queue));
        Self {
            shared,
            sender: Mutex::new(Some(sender)),
        }
    }

    /// Delivery `tag` arrived (call in delivery order, before handing it on).
    pub fn delivered(&self, tag: u64) {
        self.shared.lock().outstanding.insert(tag);
    }

    /// Delivery `tag` is done: acknowledge it (soon, maybe with others).
    pub fn ack(&self, tag: u64, acker: Acker) {
        self.shared.lock().ready(tag, acker, Instant::now());
        self.shared.wake.notify_one();
    }

    /// Delivery `tag` goes back to the queue (`nack` + requeue).
    pub fn give_back(&self, tag: u64, acker: Acker) {
        self.shared.lock().give_back(tag, acker);
        self.shared.wake.notify_one();
    }

    /// Sends what is still to send (every ready delivery, each on its own
    /// where it cannot be coalesced) and stops the sender. Call before
    /// closing the channel.
    pub async fn finish(&self) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_one();
        let sender = self.sender.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(sender) = sender {
            let _ = sender.await;
        }
    }
}

impl Drop for Acks {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.lock().unwrap_or_else(|e| e.into_inner()).take() {
            sender.abort();
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Window<Acker>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn send_loop(shared: Arc<Shared>, queue: String) {
    loop {
        let (plan, closing) = {
            let mut window = shared.lock();
            let closing = window.closing;
            (window.plan(Instant::now(), closing), closing)
        };
        let failed = send(plan).await;
        if let Some(error) = failed {
            tracing::debug!(%queue, "acknowledging failed ({error}); the broker delivers those messages again");
        }
        if closing {
            return;
        }
        let wait = shared.lock().next_deadline();
        match wait {
            Some(at) => {
                tokio::select! {
                    () = shared.wake.notified() => {}
                    () = tokio::time::sleep_until(at) => {}
                }
            }
            None => shared.wake.notified().await,
        }
    }
}

/// Sends `plan`'s frames in order: nacks, the run, then the singles.
async fn send(plan: Plan<Acker>) -> Option<String> {
    let mut failed = None;
    let mut note = |result: Result<lapin::Result<bool>, tokio::time::error::Elapsed>| {
        let problem = match result {
            Ok(Ok(_)) => return,
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no hand-off within {FRAME_TIMEOUT:?}"),
        };
        failed.get_or_insert(problem);
    };
    for acker in plan.nacks {
        let requeue = BasicNackOptions {
            multiple: false,
            requeue: true,
        };
        note(tokio::time::timeout(FRAME_TIMEOUT, acker.nack(requeue)).await);
    }
    if let Some(run) = plan.run {
        let options = BasicAckOptions {
            multiple: run.covers > 1,
        };
        note(tokio::time::timeout(FRAME_TIMEOUT, run.highest.ack(options)).await);
    }
    let singles = plan
        .singles
        .iter()
        .map(|acker| tokio::time::timeout(FRAME_TIMEOUT, acker.ack(BasicAckOptions::default())));
    for result in join_all(singles).await {
        note(result);
    }
    failed
}

/// The bookkeeping, apart from lapin so that it can be tested alone. `A`
/// is what acknowledges one delivery (lapin's `Acker`).
struct Window<A> {
    /// Delivered, not settled yet.
    outstanding: BTreeSet<u64>,
    /// Settled with an ack, not acknowledged yet, with since when.
    ready: BTreeMap<u64, (A, Instant)>,
    /// Given back, not sent yet.
    nacks: Vec<A>,
    closing: bool,
}

impl<A> Default for Window<A> {
    fn default() -> Self {
        Self {
            outstanding: BTreeSet::new(),
            ready: BTreeMap::new(),
            nacks: Vec::new(),
            closing: false,
        }
    }
}

/// Frames to send, in this order.
struct Plan<A> {
    nacks: Vec<A>,
    /// One ack for `covers` ready deliveries: `multiple` on the highest.
    run: Option<Run<A>>,
    /// Acks for one delivery each.
    singles: Vec<A>,
}

struct Run<A> {
    highest: A,
    covers: usize,
}

impl<A> Window<A> {
    fn ready(&mut self, tag: u64, acker: A, now: Instant) {
        self.outstanding.remove(&tag);
        self.ready.insert(tag, (acker, now));
    }

    fn give_back(&mut self, tag: u64, acker: A) {
        self.outstanding.remove(&tag);
        self.nacks.push(acker);
    }

    /// What to send now: the pending nacks; one ack for every ready
    /// delivery below the lowest outstanding one; and a single ack for each
    /// other ready delivery that has waited [`LINGER`] (every one, when
    /// `all`).
    fn plan(&mut self, now: Instant, all: bool) -> Plan<A> {
        let nacks = std::mem::take(&mut self.nacks);
        let lowest = self.outstanding.first().copied().unwrap_or(u64::MAX);
        let above = self.ready.split_off(&lowest);
        let below = std::mem::replace(&mut self.ready, above);
        let covers = below.len();
        let run = below
            .into_values()
            .last()
            .map(|(highest, _)| Run { highest, covers });
        let singles = self
            .ready
            .extract_if(.., |_, (_, since)| {
                all || now.duration_since(*since) >= LINGER
            })
            .map(|(_, (acker, _))| acker)
            .collect();
        Plan {
            nacks,
            run,
            singles,
        }
    }

    /// When the oldest ready delivery has waited [`LINGER`].
    fn next_deadline(&self) -> Option<Instant> {
        self.ready.values().map(|(_, since)| *since + LINGER).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plans as tags: (nacked, run (highest, covers), singles).
    fn plan(
        w: &mut Window<u64>,
        now: Instant,
        all: bool,
    ) -> (Vec<u64>, Option<(u64, usize)>, Vec<u64>) {
        let p = w.plan(now, all);
        (p.nacks, p.run.map(|r| (r.highest, r.covers)), p.singles)
    }

    fn window(delivered: impl IntoIterator<Item = u64>) -> Window<u64> {
        let mut w = Window::default();
        w.outstanding.extend(delivered);
        w
    }

    #[test]
    fn settled_runs_below_the_lowest_outstanding_go_in_one_ack() {
        let now = Instant::now();
        let mut w = window(1..=6);
        for tag in [2, 3, 1] {
            w.ready(tag, tag, now);
        }
        w.ready(5, 5, now);
        // 1-3 are a run; 5 waits for 4.
        assert_eq!(plan(&mut w, now, false), (vec![], Some((3, 3)), vec![]));
        assert_eq!(plan(&mut w, now, false), (vec![], None, vec![]));
        w.ready(4, 4, now);
        assert_eq!(plan(&mut w, now, false), (vec![], Some((5, 2)), vec![]));
        w.ready(6, 6, now);
        assert_eq!(plan(&mut w, now, false), (vec![], Some((6, 1)), vec![]));
        assert!(w.outstanding.is_empty() && w.ready.is_empty());
    }

    #[test]
    fn a_slow_delivery_holds_the_others_back_only_for_the_linger() {
        let start = Instant::now();
        let mut w = window(1..=3);
        w.ready(2, 2, start);
        w.ready(3, 3, start + Duration::from_millis(30));
        assert_eq!(w.next_deadline(), Some(start + LINGER));
        assert_eq!(plan(&mut w, start + LINGER, false), (vec![], None, vec![2]));
        assert_eq!(
            plan(&mut w, start + Duration::from_millis(30) + LINGER, false),
            (vec![], None, vec![3])
        );
        assert_eq!(w.next_deadline(), None);
        // 1 still outstanding: nothing may cover it.
        assert_eq!(w.outstanding.iter().copied().collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn given_back_deliveries_are_sent_first_and_unblock_the_run() {
        let now = Instant::now();
        let mut w = window(1..=3);
        w.ready(2, 2, now);
        w.ready(3, 3, now);
        w.give_back(1, 1);
        assert_eq!(plan(&mut w, now, false), (vec![1], Some((3, 2)), vec![]));
    }

    #[test]
    fn finishing_sends_every_ready_delivery() {
        let now = Instant::now();
        let mut w = window(1..=4);
        w.ready(2, 2, now);
        w.ready(4, 4, now);
        assert_eq!(plan(&mut w, now, true), (vec![], None, vec![2, 4]));
    }
}
