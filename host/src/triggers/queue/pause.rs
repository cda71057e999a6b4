//! Pausing a queue while a backend its handler needs is down.
//!
//! When a handler answers `unavailable` (its key-value store, blob store or
//! broker could not be reached), taking more messages would only fail them
//! too, and counting those failures as attempts would dead-letter every
//! message consumed during the outage. So the message is postponed without
//! counting an attempt, and the trigger takes no new message until the
//! pause is over. Pauses double while the outage lasts (up to the queue's
//! `max_pause_ms`) and reset at the first answer that is not `unavailable`.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// The shortest pause, whatever the handler asks: an outage is not over in
/// less.
pub const MIN_PAUSE: Duration = Duration::from_millis(100);

pub struct Pause {
    max: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// No message is taken before this.
    until: Option<Instant>,
    /// The length of the current pause; zero when not paused.
    length: Duration,
}

/// What [`Pause::unavailable`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paused {
    /// How long the message is postponed, and the queue paused.
    pub delay: Duration,
    /// Whether this answer started or lengthened the pause (for the log:
    /// answers arriving during a pause only join it).
    pub escalated: bool,
}

impl Pause {
    pub fn new(max: Duration) -> Self {
        Self {
            max: max.max(MIN_PAUSE),
            state: Mutex::new(State::default()),
        }
    }

    /// A handler answered `unavailable`, asking for `hint`. The first
    /// answer pauses the queue for `hint`; one arriving after that pause
    /// ended (the outage goes on) doubles it; those arriving during the
    /// pause join it, so that a batch of concurrent failures is one step.
    pub fn unavailable(&self, hint: Duration) -> Paused {
        let now = Instant::now();
        let mut state = self.state.lock();
        let running = state.until.is_some_and(|until| until > now);
        if running {
            let left = state.until.unwrap() - now;
            return Paused {
                delay: left.max(MIN_PAUSE),
                escalated: false,
            };
        }
        let length = if state.length.is_zero() {
            hint
        } else {
            (state.length * 2).max(hint)
        }
        .clamp(MIN_PAUSE, self.max);
        state.length = length;
        state.until = Some(now + length);
        Paused {
            delay: length,
            escalated: true,
        }
    }

    /// A handler answered something else: its backends work again.
    /// Returns whether a pause was on.
    pub fn recovered(&self) -> bool {
        let mut state = self.state.lock();
        let was = !state.length.is_zero();
        *state = State::default();
        was
    }

    /// When taking messages may resume, if that is in the future.
    pub fn until(&self) -> Option<Instant> {
        self.state
            .lock()
            .until
            .filter(|until| *until > Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[tokio::test(start_paused = true)]
    async fn pauses_double_while_the_outage_lasts_and_reset_after() {
        let pause = Pause::new(MS(1000));
        assert_eq!(pause.until(), None);
        let first = pause.unavailable(MS(200));
        assert_eq!((first.delay, first.escalated), (MS(200), true));
        assert!(pause.until().is_some());
        // Others failing meanwhile join the pause that is on.
        tokio::time::advance(MS(50)).await;
        let joined = pause.unavailable(MS(200));
        assert_eq!((joined.delay, joined.escalated), (MS(150), false));
        // After it, the outage goes on: twice as long, up to the cap.
        let mut lengths = Vec::new();
        for _ in 0..4 {
            tokio::time::advance(MS(2000)).await;
            assert_eq!(pause.until(), None);
            lengths.push(pause.unavailable(MS(200)).delay);
        }
        assert_eq!(lengths, [MS(400), MS(800), MS(1000), MS(1000)]);
        // The backend is back: the next outage starts small again.
        assert!(pause.recovered());
        assert_eq!(pause.until(), None);
        assert!(!pause.recovered());
        assert_eq!(pause.unavailable(MS(10)).delay, MIN_PAUSE);
    }
}
