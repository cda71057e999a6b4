//! Ordered indexes in a bucket (`corral:platform/keyvalue-index`): named
//! sets of `(member, score)` entries kept in `(score, member)` order, read
//! a page at a time in either direction, like Redis sorted sets.
//!
//! ```ignore
//! let logs = corral_sdk::kv::open("logs")?;
//! logs.apply(
//!     &Changes::new()
//!         .set(format!("r:{id}"), record_json)
//!         .add("by-time", &id, timestamp_ms),
//! )?;
//! // Newest 50 of the last hour, then the next 50:
//! let page = logs.range("by-time", &Range::descending().between(hour_ago, now).limit(50))?;
//! let more = logs.range("by-time", &Range::descending().between(hour_ago, now).limit(50).after(page.next.unwrap()))?;
//! ```
//!
//! Scores are integers within +-(2^53 - 1); members and index names are
//! text (up to 1024 and 256 bytes). A page's `next` is where the following
//! page starts, exact even when many entries share a score; it is `None`
//! once nothing is left.

use crate::bindings::corral::platform::keyvalue_index as wit;

pub use wit::{Changes, Position, RangePage as Page};

use super::{Bucket, Error};

/// Which entries [`Bucket::range`] returns: everything, ascending, 100 at a
/// time, unless told otherwise.
#[derive(Debug, Clone)]
pub struct Range(wit::RangeQuery);

impl Default for Range {
    fn default() -> Self {
        Self::ascending()
    }
}

impl Range {
    /// Lowest `(score, member)` first.
    pub fn ascending() -> Self {
        Self(wit::RangeQuery {
            min: None,
            max: None,
            descending: false,
            after: None,
            limit: 100,
        })
    }

    /// Highest `(score, member)` first.
    pub fn descending() -> Self {
        Self(wit::RangeQuery {
            descending: true,
            ..Self::ascending().0
        })
    }

    /// Only scores in `[min, max]`.
    pub fn between(self, min: i64, max: i64) -> Self {
        self.min(Some(min)).max(Some(max))
    }

    pub fn min(mut self, min: Option<i64>) -> Self {
        self.0.min = min;
        self
    }

    pub fn max(mut self, max: Option<i64>) -> Self {
        self.0.max = max;
        self
    }

    /// At most `limit` entries (1 to 1000).
    pub fn limit(mut self, limit: u32) -> Self {
        self.0.limit = limit;
        self
    }

    /// Strictly after `position` in this range's direction: the `next` of
    /// the previous page.
    pub fn after(mut self, position: Position) -> Self {
        self.0.after = Some(position);
        self
    }

    /// [`Range::after`] when there is a position.
    pub fn after_opt(mut self, position: Option<Position>) -> Self {
        self.0.after = position;
        self
    }

    pub fn is_descending(&self) -> bool {
        self.0.descending
    }
}

impl Default for Changes {
    fn default() -> Self {
        Self::new()
    }
}

impl Position {
    /// The position as an opaque page cursor for a client (hex of
    /// `<score>.<member>`): what a service hands out as `next_cursor`.
    pub fn to_cursor(&self) -> String {
        format!("{}.{}", self.score, self.member)
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A cursor [`Position::to_cursor`] made; `None` for anything else
    /// (answer 400 naming `cursor`).
    pub fn from_cursor(text: &str) -> Option<Position> {
        if text.len() % 2 != 0 || text.len() > 2 * (21 + 1024) {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
            .collect();
        let text = String::from_utf8(bytes?).ok()?;
        let (score, member) = text.split_once('.')?;
        if member.is_empty() || member.len() > 1024 {
            return None;
        }
        Some(Position {
            score: score.parse().ok()?,
            member: member.to_owned(),
        })
    }
}

impl Changes {
    pub fn new() -> Self {
        Self {
            set: Vec::new(),
            delete: Vec::new(),
            add: Vec::new(),
            remove: Vec::new(),
        }
    }

    /// Sets `key` to `value` (without expiry).
    pub fn set(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.set.push((key.into(), value.into()));
        self
    }

    pub fn delete(mut self, key: impl Into<String>) -> Self {
        self.delete.push(key.into());
        self
    }

    /// Adds `member` to `index` at `score` (or moves it there).
    pub fn add(mut self, index: impl Into<String>, member: impl Into<String>, score: i64) -> Self {
        self.add.push((index.into(), member.into(), score));
        self
    }

    pub fn remove(mut self, index: impl Into<String>, member: impl Into<String>) -> Self {
        self.remove.push((index.into(), member.into()));
        self
    }

    /// Keys set or deleted (at most 1000 per `apply`).
    pub fn keys(&self) -> usize {
        self.set.len() + self.delete.len()
    }

    /// Index entries added or removed (at most 10000 per `apply`).
    pub fn index_changes(&self) -> usize {
        self.add.len() + self.remove.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys() == 0 && self.index_changes() == 0
    }
}

impl Bucket {
    /// Adds `(member, score)` entries to `index`; a member already there
    /// moves to its new score. At most 1000 entries.
    pub fn index_add(&self, index: &str, entries: &[(String, i64)]) -> Result<(), Error> {
        Ok(wit::add(&self.inner, index, entries)?)
    }

    /// Removes `members` from `index` (absent ones are no error).
    pub fn index_remove(&self, index: &str, members: &[String]) -> Result<(), Error> {
        Ok(wit::remove(&self.inner, index, members)?)
    }

    /// One page of `index`.
    pub fn range(&self, index: &str, range: &Range) -> Result<Page, Error> {
        Ok(wit::range(&self.inner, index, &range.0)?)
    }

    /// Entries of `index` with a score in `[min, max]` (`None`: unbounded).
    pub fn count(&self, index: &str, min: Option<i64>, max: Option<i64>) -> Result<u64, Error> {
        Ok(wit::count(&self.inner, index, min, max)?)
    }

    /// [`Bucket::count`] for each inclusive range, in one call (at most 1000).
    pub fn count_ranges(&self, index: &str, ranges: &[(i64, i64)]) -> Result<Vec<u64>, Error> {
        Ok(wit::count_ranges(&self.inner, index, ranges)?)
    }

    /// The score of `member` in `index`, if it is there.
    pub fn score(&self, index: &str, member: &str) -> Result<Option<i64>, Error> {
        Ok(wit::score(&self.inner, index, member)?)
    }

    /// Applies `changes` (values and index entries) together, in one call:
    /// sets, deletes, adds, removes. All or nothing on the embedded store;
    /// one `MULTI`/`EXEC` on Redis.
    pub fn apply(&self, changes: &Changes) -> Result<(), Error> {
        Ok(wit::apply(&self.inner, changes)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_others_are_refused() {
        let p = Position {
            score: -1_700_000_000_000,
            member: "01ARZ3NDEKTSV4RRFFQ69G5FAV".into(),
        };
        let cursor = p.to_cursor();
        assert!(cursor.bytes().all(|b| b.is_ascii_hexdigit()));
        let back = Position::from_cursor(&cursor).unwrap();
        assert_eq!((back.score, back.member), (p.score, p.member));
        for bad in ["", "zz", "abc", "2e78", &"31".repeat(2000)] {
            assert!(Position::from_cursor(bad).is_none(), "{bad}");
        }
    }
}
