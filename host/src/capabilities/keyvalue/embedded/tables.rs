//! The embedded store's on-disk layout and the transactions over it (see
//! the parent module for the layout and why it is so).

use std::path::Path;
use std::time::Duration;

use redb::{Database, Durability, ReadableDatabase as _, ReadableTable, TableDefinition};

use crate::capabilities::keyvalue::backend::{BackendRange, Failure};

pub type EntryKey<'a> = (&'a str, u64, &'a str);
pub const ENTRIES: TableDefinition<EntryKey, &[u8]> = TableDefinition::new("entries");
pub const EXPIRIES: TableDefinition<(u64, &str, &str), ()> = TableDefinition::new("expiries");
/// `(bucket, index, score, member)`: the order of every index.
pub type IndexKey<'a> = (&'a str, &'a str, i64, &'a str);
pub const INDEX_ENTRIES: TableDefinition<IndexKey, ()> = TableDefinition::new("index_entries");
/// `(bucket, index, member)` -> score: where a member is, to move or
/// remove it.
pub const INDEX_MEMBERS: TableDefinition<(&str, &str, &str), i64> =
    TableDefinition::new("index_members");
/// `(bucket, index)` -> how many members: an index's size without
/// counting it.
pub const INDEX_SIZES: TableDefinition<(&str, &str), u64> = TableDefinition::new("index_sizes");

/// Opens (or creates) the file and its tables, so that read transactions
/// always find them. redb locks the file: a second host on the same state
/// directory gets an error here instead of corrupting it.
pub fn open(path: &Path) -> Result<Database, Failure> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let db = Database::create(path).map_err(fail)?;
    let txn = db.begin_write().map_err(fail)?;
    txn.open_table(ENTRIES).map_err(fail)?;
    txn.open_table(EXPIRIES).map_err(fail)?;
    txn.open_table(INDEX_ENTRIES).map_err(fail)?;
    txn.open_table(INDEX_MEMBERS).map_err(fail)?;
    txn.open_table(INDEX_SIZES).map_err(fail)?;
    txn.commit().map_err(fail)?;
    Ok(db)
}

/// Removes every entry expired at `now`; returns how many.
pub fn sweep(db: &Database, now: u64) -> Result<usize, Failure> {
    const BATCH: usize = 1000;
    let mut removed = 0;
    // Look first with a read transaction: most sweeps find nothing, and an
    // empty write transaction would still cost a commit (an fsync).
    let first_due = {
        let txn = db.begin_read().map_err(fail)?;
        let expiries = txn.open_table(EXPIRIES).map_err(fail)?;
        expiries.first().map_err(fail)?.map(|(k, _)| k.value().0)
    };
    if first_due.is_none_or(|at| at > now) {
        return Ok(0);
    }
    loop {
        let txn = db.begin_write().map_err(fail)?;
        let count = {
            let mut entries = txn.open_table(ENTRIES).map_err(fail)?;
            let mut expiries = txn.open_table(EXPIRIES).map_err(fail)?;
            let due: Vec<(u64, String, String)> = expiries
                .range(..(now + 1, "", ""))
                .map_err(fail)?
                .take(BATCH)
                .map(|row| {
                    let (k, _) = row.map_err(fail)?;
                    let (at, bucket, key) = k.value();
                    Ok((at, bucket.to_owned(), key.to_owned()))
                })
                .collect::<Result<_, Failure>>()?;
            for (at, bucket, key) in &due {
                expiries
                    .remove((*at, bucket.as_str(), key.as_str()))
                    .map_err(fail)?;
                let id = (bucket.as_str(), hash(key), key.as_str());
                let current = entries.get(id).map_err(fail)?.map(|v| decode(v.value()).0);
                if current == Some(*at) {
                    entries.remove(id).map_err(fail)?;
                }
            }
            due.len()
        };
        txn.commit().map_err(fail)?;
        removed += count;
        if count < BATCH {
            return Ok(removed);
        }
    }
}

pub fn fail(e: impl std::fmt::Display) -> Failure {
    Failure(format!("embedded store: {e}"))
}

/// FNV-1a: stable across builds and platforms, which the on-disk order needs.
pub fn hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

pub fn encode(expires_at: u64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + value.len());
    out.extend_from_slice(&expires_at.to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// `(expires_at, value)` of a stored entry.
pub fn decode(stored: &[u8]) -> (u64, &[u8]) {
    let (at, value) = stored.split_at(8.min(stored.len()));
    let mut bytes = [0; 8];
    bytes[..at.len()].copy_from_slice(at);
    (u64::from_be_bytes(bytes), value)
}

pub fn expiry(now: u64, ttl: Option<Duration>) -> u64 {
    ttl.map_or(0, |ttl| now + ttl.as_millis() as u64)
}

pub fn live(expires_at: u64, now: u64) -> bool {
    expires_at == 0 || expires_at > now
}

/// What `key` holds at `now`.
pub fn read<T: ReadableTable<EntryKey<'static>, &'static [u8]>>(
    table: &T,
    bucket: &str,
    key: &str,
    now: u64,
) -> Result<Lookup, Failure> {
    let Some(stored) = table.get((bucket, hash(key), key)).map_err(fail)? else {
        return Ok(Lookup::Absent);
    };
    let (at, value) = decode(stored.value());
    Ok(if live(at, now) {
        Lookup::Live(at, value.to_vec())
    } else {
        Lookup::Expired
    })
}

pub enum Lookup {
    Absent,
    Expired,
    Live(u64, Vec<u8>),
}

/// One write transaction over every table.
pub struct Write<'t> {
    pub entries: redb::Table<'t, EntryKey<'static>, &'static [u8]>,
    pub expiries: redb::Table<'t, (u64, &'static str, &'static str), ()>,
    pub index: redb::Table<'t, IndexKey<'static>, ()>,
    pub members: redb::Table<'t, (&'static str, &'static str, &'static str), i64>,
    pub sizes: redb::Table<'t, (&'static str, &'static str), u64>,
}

impl Write<'_> {
    pub fn put(
        &mut self,
        bucket: &str,
        key: &str,
        value: &[u8],
        expires_at: u64,
    ) -> Result<(), Failure> {
        let old = self
            .entries
            .insert(
                (bucket, hash(key), key),
                encode(expires_at, value).as_slice(),
            )
            .map_err(fail)?
            .map(|v| decode(v.value()).0);
        self.unindex(bucket, key, old)?;
        if expires_at != 0 {
            self.expiries
                .insert((expires_at, bucket, key), ())
                .map_err(fail)?;
        }
        Ok(())
    }

    pub fn remove(&mut self, bucket: &str, key: &str) -> Result<(), Failure> {
        let old = self
            .entries
            .remove((bucket, hash(key), key))
            .map_err(fail)?
            .map(|v| decode(v.value()).0);
        self.unindex(bucket, key, old)
    }

    /// Adds `member` to `index` at `score`, or moves it there.
    pub fn index_add(
        &mut self,
        bucket: &str,
        index: &str,
        member: &str,
        score: i64,
    ) -> Result<(), Failure> {
        let old = self
            .members
            .insert((bucket, index, member), score)
            .map_err(fail)?
            .map(|v| v.value());
        match old {
            Some(old) if old == score => return Ok(()),
            Some(old) => {
                self.index
                    .remove((bucket, index, old, member))
                    .map_err(fail)?;
            }
            None => self.resize(bucket, index, 1)?,
        }
        self.index
            .insert((bucket, index, score, member), ())
            .map_err(fail)?;
        Ok(())
    }

    pub fn index_remove(&mut self, bucket: &str, index: &str, member: &str) -> Result<(), Failure> {
        let old = self
            .members
            .remove((bucket, index, member))
            .map_err(fail)?
            .map(|v| v.value());
        if let Some(old) = old {
            self.index
                .remove((bucket, index, old, member))
                .map_err(fail)?;
            self.resize(bucket, index, -1)?;
        }
        Ok(())
    }

    /// Adds `delta` to the size of `index` (an empty index has no row).
    fn resize(&mut self, bucket: &str, index: &str, delta: i64) -> Result<(), Failure> {
        let size = self
            .sizes
            .get((bucket, index))
            .map_err(fail)?
            .map_or(0, |v| v.value());
        match size.saturating_add_signed(delta) {
            0 => self.sizes.remove((bucket, index)).map_err(fail)?,
            n => self.sizes.insert((bucket, index), n).map_err(fail)?,
        };
        Ok(())
    }

    fn unindex(&mut self, bucket: &str, key: &str, old: Option<u64>) -> Result<(), Failure> {
        if let Some(at @ 1..) = old {
            self.expiries.remove((at, bucket, key)).map_err(fail)?;
        }
        Ok(())
    }
}

/// Runs `f` in a write transaction and commits it.
pub fn write<T>(
    db: &Database,
    durable: bool,
    f: impl FnOnce(&mut Write<'_>) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let mut txn = db.begin_write().map_err(fail)?;
    if !durable {
        txn.set_durability(Durability::None).map_err(fail)?;
    }
    let result = {
        let mut w = Write {
            entries: txn.open_table(ENTRIES).map_err(fail)?,
            expiries: txn.open_table(EXPIRIES).map_err(fail)?,
            index: txn.open_table(INDEX_ENTRIES).map_err(fail)?,
            members: txn.open_table(INDEX_MEMBERS).map_err(fail)?,
            sizes: txn.open_table(INDEX_SIZES).map_err(fail)?,
        };
        f(&mut w)?
    };
    txn.commit().map_err(fail)?;
    Ok(result)
}

/// Reads `keys`, purging the expired ones it meets (without fsync: should
/// the purge be lost in a crash, the entry is still expired and the sweep
/// removes it).
pub fn read_many(
    db: &Database,
    bucket: &str,
    keys: &[String],
    now: u64,
) -> Result<Vec<Lookup>, Failure> {
    let txn = db.begin_read().map_err(fail)?;
    let table = txn.open_table(ENTRIES).map_err(fail)?;
    let found: Vec<Lookup> = keys
        .iter()
        .map(|k| read(&table, bucket, k, now))
        .collect::<Result<_, _>>()?;
    drop((table, txn));
    let expired: Vec<&String> = keys
        .iter()
        .zip(&found)
        .filter_map(|(k, l)| matches!(l, Lookup::Expired).then_some(k))
        .collect();
    if !expired.is_empty() {
        write(db, false, |w| {
            for key in expired {
                // Re-checked inside the write: it may have been set since.
                if matches!(read(&w.entries, bucket, key, now)?, Lookup::Expired) {
                    w.remove(bucket, key)?;
                }
            }
            Ok(())
        })?;
    }
    Ok(found)
}

pub fn read_one(
    db: &Database,
    bucket: &str,
    key: &str,
    now: u64,
) -> Result<Option<(u64, Vec<u8>)>, Failure> {
    let found = read_many(db, bucket, &[key.to_owned()], now)?;
    Ok(match found.into_iter().next() {
        Some(Lookup::Live(at, value)) => Some((at, value)),
        _ => None,
    })
}

/// Up to `range.limit` entries of `index` (see `Backend::index_range`).
pub fn index_range(
    db: &Database,
    bucket: &str,
    index: &str,
    range: &BackendRange,
) -> Result<Vec<(String, i64)>, Failure> {
    use std::ops::Bound::{Excluded, Included};
    let txn = db.begin_read().map_err(fail)?;
    let table = txn.open_table(INDEX_ENTRIES).map_err(fail)?;
    // Scores are within +-2^53, so `max + 1` cannot overflow; the empty
    // member sorts before every other.
    let start = Included((bucket, index, range.min, ""));
    let end = Excluded((bucket, index, range.max + 1, ""));
    let cursor = range
        .after
        .as_ref()
        .map(|p| Excluded((bucket, index, p.score, p.member.as_str())));
    // Walking down from `(min, "")`, the very start: nothing is left (and
    // a range from a key to itself, excluded, is not one redb takes).
    if range.descending
        && range
            .after
            .as_ref()
            .is_some_and(|p| p.score == range.min && p.member.is_empty())
    {
        return Ok(Vec::new());
    }
    let rows = if range.descending {
        table
            .range((start, cursor.unwrap_or(end)))
            .map_err(fail)?
            .rev()
            .take(range.limit)
            .collect::<Vec<_>>()
    } else {
        table
            .range((cursor.unwrap_or(start), end))
            .map_err(fail)?
            .take(range.limit)
            .collect::<Vec<_>>()
    };
    rows.into_iter()
        .map(|row| {
            let (key, _) = row.map_err(fail)?;
            let (_, _, score, member) = key.value();
            Ok((member.to_owned(), score))
        })
        .collect()
}

/// How many entries of `index` fall in each inclusive range. The whole
/// score range is the index's kept size; any other is counted.
pub fn index_count(
    db: &Database,
    bucket: &str,
    index: &str,
    ranges: &[(i64, i64)],
    whole: (i64, i64),
) -> Result<Vec<u64>, Failure> {
    let txn = db.begin_read().map_err(fail)?;
    let table = txn.open_table(INDEX_ENTRIES).map_err(fail)?;
    let sizes = txn.open_table(INDEX_SIZES).map_err(fail)?;
    ranges
        .iter()
        .map(|&(min, max)| {
            if (min, max) == whole {
                return Ok(sizes
                    .get((bucket, index))
                    .map_err(fail)?
                    .map_or(0, |v| v.value()));
            }
            let mut counted = 0;
            for row in table
                .range((bucket, index, min, "")..(bucket, index, max + 1, ""))
                .map_err(fail)?
            {
                row.map_err(fail)?;
                counted += 1;
            }
            Ok(counted)
        })
        .collect()
}

pub fn index_score(
    db: &Database,
    bucket: &str,
    index: &str,
    member: &str,
) -> Result<Option<i64>, Failure> {
    let txn = db.begin_read().map_err(fail)?;
    let table = txn.open_table(INDEX_MEMBERS).map_err(fail)?;
    Ok(table
        .get((bucket, index, member))
        .map_err(fail)?
        .map(|v| v.value()))
}
