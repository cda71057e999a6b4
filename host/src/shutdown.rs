//! One way to tell long-running tasks to stop: the listeners, the timer and
//! queue triggers, and the broker's consumer tasks all take a [`Shutdown`]
//! and finish what they hold once it fires.
//!
//! A `watch` channel underneath: every clone sees the signal, a task that
//! starts after it fired sees it at once, and the sender being dropped
//! counts as the signal (an owner that is gone cannot ask for more work).

use tokio::sync::watch;

/// Fires the signal for every [`Shutdown`] made from it.
#[derive(Debug)]
pub struct Trigger(watch::Sender<bool>);

/// Waits for the signal. Cheap to clone: one per task.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A new signal, not fired yet.
pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    /// Fires the signal; every waiter returns.
    pub fn fire(&self) {
        let _ = self.0.send(true);
    }

    /// Another receiver of this signal.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    /// Resolves once the signal fired (or its [`Trigger`] is gone).
    /// Cancel-safe and holds no borrow of the channel afterwards, so it can
    /// sit in a `select!` whose other branches await.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|fired| *fired).await;
    }

    /// Whether the signal has fired.
    pub fn fired(&self) -> bool {
        *self.0.borrow()
    }

    /// The signal as a future that owns its receiver, for APIs that take an
    /// `impl Future` (the listeners).
    pub async fn into_wait(mut self) {
        self.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_signal_and_late_waiters_return_at_once() {
        let (trigger, shutdown) = channel();
        let mut early = shutdown.clone();
        assert!(!early.fired());
        let waiting = tokio::spawn(async move { early.wait().await });
        trigger.fire();
        waiting.await.unwrap();
        let mut late = trigger.subscribe();
        assert!(late.fired());
        late.wait().await;
    }

    #[tokio::test]
    async fn a_dropped_trigger_counts_as_fired() {
        let (trigger, mut shutdown) = channel();
        drop(trigger);
        shutdown.wait().await;
    }
}
