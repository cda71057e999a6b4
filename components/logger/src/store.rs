//! How records are stored and found again, in one key-value bucket
//! (`logs` by default):
//!
//! * `r:<id>`: the record's JSON.
//! * ordered indexes (`keyvalue-index`), each entry scored by the record's
//!   timestamp in milliseconds: `by-time` holds every record, and
//!   `service:<service>`, `user:<user_id>`, `action:<action>`,
//!   `result:<result>` the records with that value. A record is added to
//!   all five in the same `apply` that stores it, and removed from them in
//!   the one that deletes it.
//! * `seen:<message id>` (expiring): a queue message being stored
//!   (`pending`, for a minute) or stored (`done`, for a day), so that a
//!   redelivery, even one racing the first delivery in another batch, is
//!   stored once.
//!
//! Every index entry's member is the same string: the record's id, a dot,
//! and eight hex digits of a 32-bit hash of each indexed field (service,
//! user, action, result). Ids are fixed-length and sort by time, so the
//! `(timestamp, member)` order of every index is the `(timestamp, id)`
//! order, and a position `(timestamp, id)` is a cursor valid in every
//! index. And a query with several filters walks only the most selective
//! index (the smallest), checking the other filters on the hashes in the
//! members it reads: no record is fetched until it matches (a hash
//! collision is caught by checking the fetched record's fields).
//!
//! A walk reads at most [`MAX_SCAN`] index entries per request; a query
//! whose matches are rarer than that returns fewer records than asked, with
//! a cursor to go on from.

use corral_sdk::kv::{self, Bucket, Changes, Position, Range};
use serde_json::Value;

use crate::id::{self, Id, fnv32};
use crate::record::Record;

pub const BY_TIME: &str = "by-time";

/// The filters, in the order of [`Record::fields`]: query parameter and
/// index name prefix.
pub const FILTERS: [(&str, &str); 4] = [
    ("service", "service:"),
    ("user_id", "user:"),
    ("action", "action:"),
    ("result", "result:"),
];
const RESULT: usize = 3;

/// Most index entries one query reads.
pub const MAX_SCAN: usize = 20_000;
/// Most index entries one stats request reads when it must walk.
pub const MAX_STATS_SCAN: usize = 200_000;
/// Most records written by one `apply` (1000 keys; 5000 index entries).
const WRITE_CHUNK: usize = 1000;
/// Records removed per `apply` by retention.
const EXPIRE_CHUNK: usize = 500;

pub fn record_key(id: &str) -> String {
    format!("r:{id}")
}

fn index_name(filter: usize, value: &str) -> String {
    format!("{}{value}", FILTERS[filter].1)
}

/// The member of `record` in every index.
pub fn member(record: &Record) -> String {
    let [a, b, c, d] = record.fields().map(fnv32);
    format!("{}.{a:08x}{b:08x}{c:08x}{d:08x}", record.id)
}

/// The id and the field hashes of a member.
fn parse_member(member: &str) -> Option<(&str, [u32; 4])> {
    let (id, hashes) = member.split_once('.')?;
    if id.len() != id::LEN || hashes.len() != 32 {
        return None;
    }
    let mut out = [0u32; 4];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u32::from_str_radix(hashes.get(i * 8..i * 8 + 8)?, 16).ok()?;
    }
    Some((id, out))
}

/// The values asked for, by filter; `None` where not filtered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(pub [Option<String>; 4]);

impl Filters {
    fn given(&self) -> impl Iterator<Item = (usize, &str)> {
        self.0
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_deref().map(|v| (i, v)))
    }

    /// Whether a record's fields match.
    fn matches(&self, fields: [&str; 4]) -> bool {
        self.given().all(|(i, v)| fields[i] == v)
    }
}

/// A place in the newest-first order of every index: `(timestamp, id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub at_ms: i64,
    pub id: String,
}

impl Cursor {
    /// Opaque text: hex of `<ms>.<id>`.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.at_ms, self.id)
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub fn decode(text: &str) -> Option<Self> {
        if text.len() % 2 != 0 || text.len() > 200 {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
            .collect();
        let text = String::from_utf8(bytes?).ok()?;
        let (ms, id) = text.split_once('.')?;
        Id::parse(id)?;
        Some(Self {
            at_ms: ms.parse().ok()?,
            id: id.to_owned(),
        })
    }

    /// The position just after this cursor's entry, walking down: the
    /// bare id sorts before `<id>.<hashes>`, so that entry is excluded
    /// and every older one included.
    fn position(&self) -> Position {
        Position {
            score: self.at_ms,
            member: self.id.clone(),
        }
    }
}

pub struct Query {
    pub filters: Filters,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub limit: u32,
    pub cursor: Option<Cursor>,
}

/// What a query found: stored JSON, newest first, and where to go on.
pub struct Found {
    pub records: Vec<Vec<u8>>,
    pub next: Option<Cursor>,
    /// Index entries read.
    pub scanned: usize,
}

pub struct Store {
    bucket: Bucket,
}

impl Store {
    pub fn open(name: &str) -> Result<Self, kv::Error> {
        Ok(Self {
            bucket: kv::open(name)?,
        })
    }

    /// Stores `records` and their index entries: one `apply` per thousand
    /// records, so up to a thousand are stored all or nothing (on Redis:
    /// in one MULTI/EXEC).
    pub fn write(&self, records: &[Record]) -> Result<(), kv::Error> {
        for chunk in records.chunks(WRITE_CHUNK) {
            let mut changes = Changes::new();
            for record in chunk {
                let member = member(record);
                changes = changes
                    .set(record_key(&record.id.to_string()), record.to_bytes())
                    .add(BY_TIME, member.clone(), record.at_ms);
                for (filter, value) in record.fields().into_iter().enumerate() {
                    changes = changes.add(index_name(filter, value), member.clone(), record.at_ms);
                }
            }
            self.bucket.apply(&changes)?;
        }
        Ok(())
    }

    pub fn get(&self, id: &str) -> Result<Option<Vec<u8>>, kv::Error> {
        self.bucket.get(&record_key(id))
    }

    /// Claims `message_ids` for storing: each is [`Claim::Ours`] (now
    /// marked pending for `pending`), [`Claim::Done`] (stored already: a
    /// redelivery) or [`Claim::Busy`] (another batch is storing it right
    /// now; should it crash, its claim expires after `pending`).
    pub fn claim(
        &self,
        message_ids: &[String],
        pending: std::time::Duration,
    ) -> Result<Vec<Claim>, kv::Error> {
        let entries: Vec<(String, Vec<u8>)> = message_ids
            .iter()
            .map(|m| (seen_key(m), PENDING.to_vec()))
            .collect();
        let ours = self.bucket.set_many_if_absent(&entries, Some(pending))?;
        let taken: Vec<String> = entries
            .iter()
            .zip(&ours)
            .filter(|(_, ours)| !**ours)
            .map(|((key, _), _)| key.clone())
            .collect();
        let mut states = if taken.is_empty() {
            Vec::new()
        } else {
            self.bucket.get_many(&taken)?
        }
        .into_iter();
        Ok(ours
            .into_iter()
            .map(|ours| match ours {
                true => Claim::Ours,
                // Gone meanwhile (expired): busy for now, ours next time.
                false => match states.next().flatten() {
                    Some(state) if state == DONE => Claim::Done,
                    _ => Claim::Busy,
                },
            })
            .collect())
    }

    /// Marks claimed messages stored, for `ttl`.
    pub fn finish(
        &self,
        message_ids: &[String],
        ttl: std::time::Duration,
    ) -> Result<(), kv::Error> {
        let entries: Vec<(String, Vec<u8>)> = message_ids
            .iter()
            .map(|m| (seen_key(m), DONE.to_vec()))
            .collect();
        self.bucket.set_many_with_ttl(&entries, ttl)
    }

    /// Gives claims back after a failed write, so that a retry can take them.
    pub fn release(&self, message_ids: &[String]) -> Result<(), kv::Error> {
        let keys: Vec<String> = message_ids.iter().map(|m| seen_key(m)).collect();
        self.bucket.delete_many(&keys)
    }

    /// The index to walk for `filters`: the smallest of theirs, `by-time`
    /// without any. `None` when a filtered value has no record at all.
    fn pick_index(&self, filters: &Filters) -> Result<Option<(usize, String)>, kv::Error> {
        let mut best: Option<(u64, usize, String)> = None;
        let given: Vec<(usize, &str)> = filters.given().collect();
        if given.is_empty() {
            return Ok(Some((usize::MAX, BY_TIME.to_owned())));
        }
        for (filter, value) in given.iter().copied() {
            let name = index_name(filter, value);
            let size = if given.len() == 1 {
                1
            } else {
                self.bucket.count(&name, None, None)?
            };
            if size == 0 {
                return Ok(None);
            }
            if best.as_ref().is_none_or(|(s, _, _)| size < *s) {
                best = Some((size, filter, name));
            }
        }
        Ok(best.map(|(_, filter, name)| (filter, name)))
    }

    /// Records matching `query`, newest first.
    pub fn query(&self, query: &Query) -> Result<Found, kv::Error> {
        let limit = query.limit as usize;
        let empty = Found {
            records: Vec::new(),
            next: None,
            scanned: 0,
        };
        let Some((walked, index)) = self.pick_index(&query.filters)? else {
            return Ok(empty);
        };
        let checks: Vec<(usize, u32)> = query
            .filters
            .given()
            .filter(|(i, _)| *i != walked)
            .map(|(i, v)| (i, fnv32(v)))
            .collect();
        let mut after = query.cursor.as_ref().map(Cursor::position);
        let mut matched: Vec<(String, i64)> = Vec::with_capacity(limit);
        let mut next = None;
        let mut scanned = 0;
        // Without checks a page is exactly what is needed; with them, pages
        // grow as the matches prove rare.
        let mut size = if checks.is_empty() {
            query.limit
        } else {
            (query.limit * 2).clamp(100, 1000)
        };
        'walk: loop {
            let range = Range::descending()
                .min(query.from)
                .max(query.to)
                .after_opt(after.take())
                .limit(size);
            let page = self.bucket.range(&index, &range)?;
            let count = page.entries.len();
            for (n, (member, score)) in page.entries.into_iter().enumerate() {
                scanned += 1;
                let Some((id, hashes)) = parse_member(&member) else {
                    continue;
                };
                if !checks.iter().all(|(i, h)| hashes[*i] == *h) {
                    continue;
                }
                let id = id.to_owned();
                matched.push((id.clone(), score));
                if matched.len() == limit {
                    let last_of_all = n + 1 == count && page.next.is_none();
                    if !last_of_all {
                        next = Some(Cursor { at_ms: score, id });
                    }
                    break 'walk;
                }
            }
            match page.next {
                None => break,
                Some(position) if scanned >= MAX_SCAN => {
                    // Rare matches: stop here and let the client go on.
                    next = parse_member(&position.member).map(|(id, _)| Cursor {
                        at_ms: position.score,
                        id: id.to_owned(),
                    });
                    break;
                }
                Some(position) => after = Some(position),
            }
            size = (size * 2).min(1000);
        }
        let keys: Vec<String> = matched.iter().map(|(id, _)| record_key(id)).collect();
        let mut records = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(1000) {
            for stored in self.bucket.get_many(chunk)?.into_iter().flatten() {
                // A hash collision, or an entry whose record is gone (being
                // expired): checked on the record itself.
                if checks.is_empty()
                    || fields_of(&stored)
                        .is_some_and(|f| query.filters.matches(f.each_ref().map(String::as_str)))
                {
                    records.push(stored);
                }
            }
        }
        Ok(Found {
            records,
            next,
            scanned,
        })
    }

    /// Records per bucket of time and result within `[from, to]`: buckets
    /// start at `from` rounded down to a multiple of `bucket_ms`. Counted
    /// by the index (`count-ranges`) when only `result` is filtered;
    /// otherwise by walking the smallest index, up to [`MAX_STATS_SCAN`]
    /// entries (`complete` is false when that was not enough).
    pub fn stats(
        &self,
        filters: &Filters,
        from: i64,
        to: i64,
        bucket_ms: i64,
    ) -> Result<Stats, kv::Error> {
        let first = from.div_euclid(bucket_ms) * bucket_ms;
        let buckets = ((to - first) / bucket_ms + 1) as usize;
        let ranges: Vec<(i64, i64)> = (0..buckets as i64)
            .map(|i| {
                let start = first + i * bucket_ms;
                (start.max(from), (start + bucket_ms - 1).min(to))
            })
            .collect();
        let mut stats = Stats {
            first,
            bucket_ms,
            counts: vec![[0, 0]; buckets],
            complete: true,
            scanned: 0,
        };
        let only_result = filters.given().all(|(i, _)| i == RESULT);
        if only_result {
            for (r, result) in crate::record::RESULTS.iter().enumerate() {
                if filters.0[RESULT]
                    .as_deref()
                    .is_some_and(|wanted| wanted != *result)
                {
                    continue;
                }
                let index = index_name(RESULT, result);
                let mut done = 0;
                for chunk in ranges.chunks(1000) {
                    for (n, count) in self
                        .bucket
                        .count_ranges(&index, chunk)?
                        .into_iter()
                        .enumerate()
                    {
                        stats.counts[done + n][r] = count;
                    }
                    done += chunk.len();
                }
            }
            return Ok(stats);
        }
        let Some((walked, index)) = self.pick_index(filters)? else {
            return Ok(stats);
        };
        let checks: Vec<(usize, u32)> = filters
            .given()
            .filter(|(i, _)| *i != walked)
            .map(|(i, v)| (i, fnv32(v)))
            .collect();
        let results = crate::record::RESULTS.map(fnv32);
        let mut after = None;
        loop {
            let range = Range::ascending()
                .between(from, to)
                .after_opt(after.take())
                .limit(1000);
            let page = self.bucket.range(&index, &range)?;
            for (member, score) in &page.entries {
                stats.scanned += 1;
                let Some((_, hashes)) = parse_member(member) else {
                    continue;
                };
                if !checks.iter().all(|(i, h)| hashes[*i] == *h) {
                    continue;
                }
                let Some(r) = results.iter().position(|h| *h == hashes[RESULT]) else {
                    continue;
                };
                let slot = ((score - first) / bucket_ms) as usize;
                if let Some(counts) = stats.counts.get_mut(slot) {
                    counts[r] += 1;
                }
            }
            match page.next {
                None => break,
                Some(_) if stats.scanned >= MAX_STATS_SCAN => {
                    stats.complete = false;
                    break;
                }
                next => after = next,
            }
        }
        Ok(stats)
    }

    /// Removes up to `max_chunks` x 500 records older than `cutoff_ms`
    /// (and their index entries); returns how many, and whether older
    /// ones are left.
    pub fn expire(&self, cutoff_ms: i64, max_chunks: usize) -> Result<(usize, bool), kv::Error> {
        let mut removed = 0;
        for _ in 0..max_chunks {
            let range = Range::ascending()
                .max(Some(cutoff_ms - 1))
                .limit(EXPIRE_CHUNK as u32);
            let page = self.bucket.range(BY_TIME, &range)?;
            if page.entries.is_empty() {
                return Ok((removed, false));
            }
            let keys: Vec<String> = page
                .entries
                .iter()
                .map(|(member, _)| record_key(member.split('.').next().unwrap_or(member)))
                .collect();
            let stored = self.bucket.get_many(&keys)?;
            let mut changes = Changes::new();
            for (((member, _), key), stored) in page.entries.iter().zip(keys).zip(stored) {
                changes = changes.delete(key).remove(BY_TIME, member.clone());
                // Without its record, only `by-time` can be known.
                if let Some(fields) = stored.as_deref().and_then(fields_of) {
                    for (filter, value) in fields.iter().enumerate() {
                        changes = changes.remove(index_name(filter, value), member.clone());
                    }
                }
            }
            self.bucket.apply(&changes)?;
            removed += page.entries.len();
            if page.next.is_none() {
                return Ok((removed, false));
            }
        }
        Ok((removed, true))
    }
}

/// Counts per time bucket: `counts[i]` is `[success, failure]` of the
/// bucket starting at `first + i * bucket_ms`.
/// Where a queue message stands (see [`Store::claim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    Ours,
    Done,
    Busy,
}

const PENDING: &[u8] = b"pending";
const DONE: &[u8] = b"done";

pub struct Stats {
    pub first: i64,
    pub bucket_ms: i64,
    pub counts: Vec<[u64; 2]>,
    pub complete: bool,
    pub scanned: usize,
}

fn seen_key(message_id: &str) -> String {
    // Keys are bounded; a long message id is known by its hash.
    if message_id.len() <= 200 {
        format!("seen:{message_id}")
    } else {
        format!(
            "seen:#{:016x}{:016x}",
            id::fnv64(message_id.as_bytes(), 0xcbf2_9ce4_8422_2325),
            id::fnv64(message_id.as_bytes(), 7)
        )
    }
}

/// The indexed fields of a stored record.
fn fields_of(stored: &[u8]) -> Option<[String; 4]> {
    let json: Value = serde_json::from_slice(stored).ok()?;
    let field = |name: &str| json.get(name)?.as_str().map(str::to_owned);
    Some([
        field("service")?,
        field("user_id")?,
        field("action")?,
        field("result")?,
    ])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::record::{IdSource, check};

    #[test]
    fn members_carry_the_id_and_the_field_hashes() {
        let record = check(
            json!({"service": "s", "user_id": "u", "action": "a", "result": "failure"}),
            1_700_000_000_000,
            IdSource::Random,
        )
        .unwrap();
        let m = member(&record);
        let (id, hashes) = parse_member(&m).unwrap();
        assert_eq!(id, record.id.to_string());
        assert_eq!(hashes, ["s", "u", "a", "failure"].map(fnv32));
        // The bare id sorts before every member of that id, after every
        // member of an older one.
        assert!(id < m.as_str());
        assert_eq!(parse_member("short.00"), None);
    }

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        let c = Cursor {
            at_ms: 1_700_000_000_000,
            id: Id::random(1_700_000_000_000).to_string(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for junk in ["", "zz", "abc", "31322e", &"0".repeat(400)] {
            assert_eq!(Cursor::decode(junk), None, "{junk}");
        }
    }
}
