//! Ordered indexes (`corral:platform/keyvalue-index`): the types, and the
//! [`KeyValueStore`] calls that validate and bound them before a backend
//! sees them.
//!
//! An index is a set of `(member, score)` entries ordered by
//! `(score, member)`: Redis sorted sets, a redb table on the embedded
//! store. What the front settles so that both backends stay simple and
//! agree: names, members and scores are checked (scores within
//! +-[`MAX_SCORE`], what a Redis score holds exactly); absent bounds become
//! +-`MAX_SCORE`; an empty range, or a cursor past its end, is answered
//! without asking the backend; a cursor before the range's start is
//! dropped. A backend is asked for `limit + 1` entries, so that the page
//! knows whether anything is left ([`page_of`]).

use std::collections::HashSet;

use super::backend::{BackendRange, Failure, KeyValueStore, page_of};
use super::validate::{self, MAX_APPLY_BYTES, MAX_BATCH, MAX_INDEX_CHANGES, MAX_PAGE, MAX_SCORE};

/// A place in an index's `(score, member)` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub score: i64,
    pub member: String,
}

/// Which entries a range returns (the WIT's `range-query`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeQuery {
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub descending: bool,
    pub after: Option<Position>,
    pub limit: u32,
}

/// One page of a range: `(member, score)` entries, and where the next page
/// starts (`None` once nothing is left).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangePage {
    pub entries: Vec<(String, i64)>,
    pub next: Option<Position>,
}

/// Writes to values and indexes of one bucket, applied together in this
/// order: sets, deletes, adds, removes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub set: Vec<(String, Vec<u8>)>,
    pub delete: Vec<String>,
    /// `(index, member, score)`.
    pub add: Vec<(String, String, i64)>,
    /// `(index, member)`.
    pub remove: Vec<(String, String)>,
}

impl Changes {
    fn is_empty(&self) -> bool {
        self.set.is_empty()
            && self.delete.is_empty()
            && self.add.is_empty()
            && self.remove.is_empty()
    }

    /// Checks every name, key, member, score and the call's size.
    fn validate(&self) -> Result<(), Failure> {
        let keys = self.set.len() + self.delete.len();
        if keys > MAX_BATCH {
            return Err(Failure(format!(
                "apply sets and deletes {keys} keys; the limit is {MAX_BATCH}"
            )));
        }
        let changes = self.add.len() + self.remove.len();
        if changes > MAX_INDEX_CHANGES {
            return Err(Failure(format!(
                "apply makes {changes} index changes; the limit is {MAX_INDEX_CHANGES}"
            )));
        }
        let bytes: usize = self.set.iter().map(|(_, v)| v.len()).sum();
        if bytes > MAX_APPLY_BYTES {
            return Err(Failure(format!(
                "apply sets {bytes} bytes of values; the limit is {MAX_APPLY_BYTES}"
            )));
        }
        for (key, value) in &self.set {
            validate::key(key)?;
            validate::value(value)?;
        }
        self.delete.iter().try_for_each(|k| validate::key(k))?;
        // Index names repeat a lot in one call: check each once.
        let mut names = HashSet::new();
        for (index, member, score) in &self.add {
            if names.insert(index.as_str()) {
                validate::index_name(index)?;
            }
            validate::member(member)?;
            validate::score(*score)?;
        }
        for (index, member) in &self.remove {
            if names.insert(index.as_str()) {
                validate::index_name(index)?;
            }
            validate::member(member)?;
        }
        Ok(())
    }
}

/// A bound as the backends take it: absent is the end of the score range,
/// and a bound beyond it is the same as that end.
fn bound(value: Option<i64>, absent: i64) -> i64 {
    value.unwrap_or(absent).clamp(-MAX_SCORE, MAX_SCORE)
}

/// The backend's range for `query`, or `None` when nothing can match.
fn resolve(query: RangeQuery) -> Result<Option<BackendRange>, Failure> {
    let limit = query.limit as usize;
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Failure(format!(
            "limit {limit} is out of range; a page holds 1 to {MAX_PAGE} entries"
        )));
    }
    if let Some(after) = &query.after {
        // The member of a cursor may be anything a member may be, or empty
        // (a position before every member of its score).
        if !after.member.is_empty() {
            validate::member(&after.member)?;
        }
    }
    let (min, max) = (bound(query.min, -MAX_SCORE), bound(query.max, MAX_SCORE));
    if min > max {
        return Ok(None);
    }
    // Where the cursor lies against the range, in the walking direction:
    // before its start it changes nothing; past its end nothing is left.
    let after = match query.after {
        None => None,
        Some(p) if query.descending && p.score > max => None,
        Some(p) if !query.descending && p.score < min => None,
        Some(p) if query.descending && p.score < min => return Ok(None),
        Some(p) if !query.descending && p.score > max => return Ok(None),
        Some(p) => Some(p),
    };
    Ok(Some(BackendRange {
        min,
        max,
        descending: query.descending,
        after,
        limit: limit + 1,
    }))
}

impl KeyValueStore {
    /// Adds or moves `(member, score)` entries of `index`.
    pub async fn index_add(
        &self,
        bucket: &str,
        index: &str,
        entries: Vec<(String, i64)>,
    ) -> Result<(), Failure> {
        validate::index_name(index)?;
        validate::index_batch(entries.len(), "entries")?;
        let changes = Changes {
            add: entries
                .into_iter()
                .map(|(member, score)| (index.to_owned(), member, score))
                .collect(),
            ..Changes::default()
        };
        self.index_apply_checked("index add", bucket, changes).await
    }

    pub async fn index_remove(
        &self,
        bucket: &str,
        index: &str,
        members: Vec<String>,
    ) -> Result<(), Failure> {
        validate::index_name(index)?;
        validate::index_batch(members.len(), "members")?;
        let changes = Changes {
            remove: members
                .into_iter()
                .map(|member| (index.to_owned(), member))
                .collect(),
            ..Changes::default()
        };
        self.index_apply_checked("index remove", bucket, changes)
            .await
    }

    pub async fn index_apply(&self, bucket: &str, changes: Changes) -> Result<(), Failure> {
        self.index_apply_checked("apply", bucket, changes).await
    }

    async fn index_apply_checked(
        &self,
        what: &str,
        bucket: &str,
        changes: Changes,
    ) -> Result<(), Failure> {
        changes.validate()?;
        if changes.is_empty() {
            return Ok(());
        }
        self.run(what, self.backend().index_apply(bucket, changes))
            .await
    }

    pub async fn index_range(
        &self,
        bucket: &str,
        index: &str,
        query: RangeQuery,
    ) -> Result<RangePage, Failure> {
        validate::index_name(index)?;
        let Some(range) = resolve(query)? else {
            return Ok(RangePage::default());
        };
        let limit = range.limit - 1;
        let entries = self
            .run(
                "index range",
                self.backend().index_range(bucket, index, range),
            )
            .await?;
        Ok(page_of(entries, limit))
    }

    /// Entries of `index` with a score in `[min, max]` (`None`: unbounded).
    pub async fn index_count(
        &self,
        bucket: &str,
        index: &str,
        min: Option<i64>,
        max: Option<i64>,
    ) -> Result<u64, Failure> {
        let counts = self
            .index_count_ranges(bucket, index, vec![(min, max)])
            .await?;
        Ok(counts.into_iter().next().unwrap_or(0))
    }

    /// [`Self::index_count`] for each range; an empty range counts 0.
    pub async fn index_count_ranges(
        &self,
        bucket: &str,
        index: &str,
        ranges: Vec<(Option<i64>, Option<i64>)>,
    ) -> Result<Vec<u64>, Failure> {
        validate::index_name(index)?;
        if ranges.len() > MAX_PAGE {
            return Err(Failure(format!(
                "{} ranges in one call; the limit is {MAX_PAGE}",
                ranges.len()
            )));
        }
        let resolved: Vec<(i64, i64)> = ranges
            .into_iter()
            .map(|(min, max)| (bound(min, -MAX_SCORE), bound(max, MAX_SCORE)))
            .collect();
        // Only non-empty ranges reach the backend.
        let asked: Vec<(i64, i64)> = resolved.iter().copied().filter(|(a, b)| a <= b).collect();
        if asked.is_empty() {
            return Ok(vec![0; resolved.len()]);
        }
        let mut counts = self
            .run(
                "index count",
                self.backend().index_count(bucket, index, asked),
            )
            .await?
            .into_iter();
        Ok(resolved
            .iter()
            .map(|(a, b)| {
                if a <= b {
                    counts.next().unwrap_or(0)
                } else {
                    0
                }
            })
            .collect())
    }

    pub async fn index_score(
        &self,
        bucket: &str,
        index: &str,
        member: &str,
    ) -> Result<Option<i64>, Failure> {
        validate::index_name(index)?;
        validate::member(member)?;
        self.run(
            "index score",
            self.backend().index_score(bucket, index, member),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(
        min: Option<i64>,
        max: Option<i64>,
        descending: bool,
        after: Option<(i64, &str)>,
    ) -> RangeQuery {
        RangeQuery {
            min,
            max,
            descending,
            after: after.map(|(score, member)| Position {
                score,
                member: member.to_owned(),
            }),
            limit: 10,
        }
    }

    #[test]
    fn ranges_are_resolved_before_any_backend_sees_them() {
        let r = resolve(query(None, None, false, None)).unwrap().unwrap();
        assert_eq!((r.min, r.max, r.limit), (-MAX_SCORE, MAX_SCORE, 11));
        // Bounds beyond the score range are the ends of it.
        let r = resolve(query(Some(i64::MIN), Some(i64::MAX), true, None))
            .unwrap()
            .unwrap();
        assert_eq!((r.min, r.max), (-MAX_SCORE, MAX_SCORE));
        assert_eq!(resolve(query(Some(5), Some(4), false, None)).unwrap(), None);
        // A cursor before the start changes nothing; past the end: empty.
        let r = resolve(query(Some(10), Some(20), false, Some((3, "m"))))
            .unwrap()
            .unwrap();
        assert_eq!(r.after, None);
        assert_eq!(
            resolve(query(Some(10), Some(20), false, Some((21, "m")))).unwrap(),
            None
        );
        let r = resolve(query(Some(10), Some(20), true, Some((30, "m"))))
            .unwrap()
            .unwrap();
        assert_eq!(r.after, None);
        assert_eq!(
            resolve(query(Some(10), Some(20), true, Some((9, "m")))).unwrap(),
            None
        );
        let r = resolve(query(Some(10), Some(20), true, Some((10, ""))))
            .unwrap()
            .unwrap();
        assert_eq!(r.after.unwrap().score, 10);
        let mut q = query(None, None, false, None);
        q.limit = 0;
        assert!(resolve(q.clone()).unwrap_err().0.contains("1 to 1000"));
        q.limit = 1001;
        assert!(resolve(q).is_err());
    }

    #[test]
    fn changes_are_bounded() {
        let too_many = Changes {
            add: (0..10_001)
                .map(|i| ("i".into(), format!("m{i}"), i))
                .collect(),
            ..Changes::default()
        };
        assert!(
            too_many
                .validate()
                .unwrap_err()
                .0
                .contains("10001 index changes")
        );
        let bad_score = Changes {
            add: vec![("i".into(), "m".into(), MAX_SCORE + 1)],
            ..Changes::default()
        };
        assert!(bad_score.validate().unwrap_err().0.contains("out of range"));
        let keys = Changes {
            set: (0..600).map(|i| (format!("k{i}"), vec![])).collect(),
            delete: (0..401).map(|i| format!("d{i}")).collect(),
            ..Changes::default()
        };
        assert!(keys.validate().unwrap_err().0.contains("1001 keys"));
        let bytes = Changes {
            set: (0..3)
                .map(|i| (format!("k{i}"), vec![0; 12 << 20]))
                .collect(),
            ..Changes::default()
        };
        assert!(bytes.validate().unwrap_err().0.contains("bytes of values"));
    }
}
