//! The ordered-index contract (`keyvalue-index`), run on both backends by
//! the list in `mod.rs`: order by `(score, member bytes)`, exact pages
//! under ties and concurrent changes, counts, `apply`, isolation, limits,
//! and a model check against a `BTreeSet` under random operations.

use std::collections::{BTreeMap, BTreeSet};

use super::Kind;
use crate::capabilities::keyvalue::backend::KeyValueStore;
use crate::capabilities::keyvalue::index::{Changes, Position, RangePage, RangeQuery};
use crate::capabilities::keyvalue::validate::MAX_SCORE;

fn query(descending: bool, limit: u32) -> RangeQuery {
    RangeQuery {
        min: None,
        max: None,
        descending,
        after: None,
        limit,
    }
}

/// Every entry of the range, page by page; fails on an empty page that
/// is not the last, and on a listing that does not end.
async fn walk(store: &KeyValueStore, index: &str, mut q: RangeQuery) -> Vec<(String, i64)> {
    let mut all = Vec::new();
    for _ in 0..10_000 {
        let page = store.index_range("b", index, q.clone()).await.unwrap();
        assert!(page.entries.len() <= q.limit as usize);
        match page.next {
            Some(next) => {
                assert!(!page.entries.is_empty(), "a page before the last is empty");
                assert_eq!(
                    Some(&(next.member.clone(), next.score)),
                    page.entries.last(),
                    "next names the last entry"
                );
                all.extend(page.entries);
                q.after = Some(next);
            }
            None => {
                all.extend(page.entries);
                return all;
            }
        }
    }
    panic!("the listing does not end");
}

fn entries(list: &[(&str, i64)]) -> Vec<(String, i64)> {
    list.iter().map(|(m, s)| (m.to_string(), *s)).collect()
}

/// `(score, member bytes)` order, both ways, bounds inclusive.
pub(super) async fn index_orders_by_score_then_member_bytes(store: KeyValueStore, _: Kind) {
    let added = entries(&[
        ("b", 5),
        ("a", 5),
        ("z", 5),
        ("é", 5), // 0xC3: after "z" in bytes
        ("neg", -7),
        ("big", MAX_SCORE),
        ("small", -MAX_SCORE),
        ("mid", 0),
        ("Z", 5), // 0x5A: before "a"
    ]);
    store.index_add("b", "i", added.clone()).await.unwrap();
    let ascending = entries(&[
        ("small", -MAX_SCORE),
        ("neg", -7),
        ("mid", 0),
        ("Z", 5),
        ("a", 5),
        ("b", 5),
        ("z", 5),
        ("é", 5),
        ("big", MAX_SCORE),
    ]);
    let page = store
        .index_range("b", "i", query(false, 100))
        .await
        .unwrap();
    assert_eq!(
        page,
        RangePage {
            entries: ascending.clone(),
            next: None
        }
    );
    let mut descending = ascending.clone();
    descending.reverse();
    let page = store.index_range("b", "i", query(true, 100)).await.unwrap();
    assert_eq!(page.entries, descending);

    let bounded = RangeQuery {
        min: Some(0),
        max: Some(5),
        ..query(false, 100)
    };
    let page = store.index_range("b", "i", bounded.clone()).await.unwrap();
    assert_eq!(
        page.entries,
        ascending[2..8].to_vec(),
        "bounds are inclusive"
    );
    let page = store
        .index_range(
            "b",
            "i",
            RangeQuery {
                descending: true,
                ..bounded
            },
        )
        .await
        .unwrap();
    let mut expected = ascending[2..8].to_vec();
    expected.reverse();
    assert_eq!(page.entries, expected);
    // A page of exactly what is left says nothing is left.
    let page = store.index_range("b", "i", query(false, 9)).await.unwrap();
    assert_eq!((page.entries.len(), page.next), (9, None));
    let page = store.index_range("b", "i", query(false, 8)).await.unwrap();
    assert_eq!(
        page.next,
        Some(Position {
            score: 5,
            member: "é".into()
        })
    );
    // Paging by 2 in both directions gives the same lists.
    assert_eq!(walk(&store, "i", query(false, 2)).await, ascending);
    assert_eq!(walk(&store, "i", query(true, 2)).await, descending);
    // Walking down from the very start of a range: nothing is left.
    let from_start = RangeQuery {
        min: Some(-7),
        after: Some(Position {
            score: -7,
            member: String::new(),
        }),
        ..query(true, 10)
    };
    let page = store.index_range("b", "i", from_start).await.unwrap();
    assert_eq!(page, RangePage::default());
    // An index nobody wrote is empty.
    let page = store
        .index_range("b", "nothing", query(true, 10))
        .await
        .unwrap();
    assert_eq!(page, RangePage::default());
    assert_eq!(
        store.index_count("b", "nothing", None, None).await.unwrap(),
        0
    );
}

/// Thousands of entries with one score: pages are exact (logarithmic on
/// Redis), and a cursor whose entry is gone, or made up, still works.
pub(super) async fn index_pages_are_exact_under_ties(store: KeyValueStore, _: Kind) {
    let mut all: Vec<(String, i64)> = (0..1500).map(|i| (format!("m{i:05}"), 42)).collect();
    all.extend((0..20).map(|i| (format!("low{i}"), 41)));
    all.extend((0..20).map(|i| (format!("high{i}"), 43)));
    for chunk in all.chunks(1000) {
        store.index_add("b", "ties", chunk.to_vec()).await.unwrap();
    }
    let mut sorted = all.clone();
    sorted.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    assert_eq!(walk(&store, "ties", query(false, 7)).await, sorted);
    let mut reversed = sorted.clone();
    reversed.reverse();
    assert_eq!(walk(&store, "ties", query(true, 13)).await, reversed);

    // The cursor's own entry removed between pages: the next page starts
    // where it would have.
    let first = store
        .index_range("b", "ties", query(true, 30))
        .await
        .unwrap();
    let cursor = first.next.clone().unwrap();
    store
        .index_remove("b", "ties", vec![cursor.member.clone()])
        .await
        .unwrap();
    let second = store
        .index_range(
            "b",
            "ties",
            RangeQuery {
                after: Some(cursor),
                ..query(true, 5)
            },
        )
        .await
        .unwrap();
    assert_eq!(second.entries, reversed[30..35].to_vec());
    // A made-up position: a score with an empty member sits before every
    // member of that score.
    let made_up = |descending| RangeQuery {
        after: Some(Position {
            score: 42,
            member: String::new(),
        }),
        ..query(descending, 3)
    };
    let up = store
        .index_range("b", "ties", made_up(false))
        .await
        .unwrap();
    assert_eq!(
        up.entries,
        entries(&[("m00000", 42), ("m00001", 42), ("m00002", 42)])
    );
    let down = store.index_range("b", "ties", made_up(true)).await.unwrap();
    assert_eq!(
        down.entries,
        entries(&[("low9", 41), ("low8", 41), ("low7", 41)]),
        "bytes: low9 > low19"
    );
    // Between two members of the tie.
    let between = RangeQuery {
        after: Some(Position {
            score: 42,
            member: "m00100x".into(),
        }),
        ..query(false, 2)
    };
    let page = store.index_range("b", "ties", between).await.unwrap();
    assert_eq!(page.entries, entries(&[("m00101", 42), ("m00102", 42)]));
}

/// Adding again moves a member; removing what is absent is no error;
/// counts (whole, bounded, several at once) and scores follow.
pub(super) async fn index_moves_removes_and_counts(store: KeyValueStore, _: Kind) {
    let list: Vec<(String, i64)> = (0..100).map(|i| (format!("e{i}"), i * 10)).collect();
    store.index_add("b", "i", list).await.unwrap();
    assert_eq!(store.index_count("b", "i", None, None).await.unwrap(), 100);
    assert_eq!(
        store
            .index_count("b", "i", Some(100), Some(190))
            .await
            .unwrap(),
        10
    );
    assert_eq!(
        store.index_count("b", "i", Some(95), None).await.unwrap(),
        90
    );
    assert_eq!(
        store.index_count("b", "i", Some(5), Some(4)).await.unwrap(),
        0
    );
    assert_eq!(store.index_score("b", "i", "e7").await.unwrap(), Some(70));
    assert_eq!(store.index_score("b", "i", "nope").await.unwrap(), None);

    // e7 moves to the end, e8 given twice ends at its last score.
    store
        .index_add("b", "i", entries(&[("e7", 5000), ("e8", 1), ("e8", -3)]))
        .await
        .unwrap();
    assert_eq!(store.index_count("b", "i", None, None).await.unwrap(), 100);
    assert_eq!(store.index_score("b", "i", "e7").await.unwrap(), Some(5000));
    assert_eq!(store.index_score("b", "i", "e8").await.unwrap(), Some(-3));
    let top = store.index_range("b", "i", query(true, 1)).await.unwrap();
    assert_eq!(top.entries, entries(&[("e7", 5000)]));
    let bottom = store.index_range("b", "i", query(false, 1)).await.unwrap();
    assert_eq!(bottom.entries, entries(&[("e8", -3)]));
    // Adding at the same score again changes nothing.
    store
        .index_add("b", "i", entries(&[("e9", 90)]))
        .await
        .unwrap();
    assert_eq!(store.index_count("b", "i", None, None).await.unwrap(), 100);

    store
        .index_remove("b", "i", vec!["e0".into(), "e1".into(), "absent".into()])
        .await
        .unwrap();
    assert_eq!(store.index_count("b", "i", None, None).await.unwrap(), 98);
    assert_eq!(store.index_score("b", "i", "e0").await.unwrap(), None);
    let counts = store
        .index_count_ranges(
            "b",
            "i",
            vec![
                (None, Some(0)),
                (Some(0), Some(99)),
                (Some(100), Some(199)),
                (Some(10), Some(0)),
                (Some(4000), None),
            ],
        )
        .await
        .unwrap();
    // e8 at -3; e2..e9 minus e7 and e8 in 0..99: e2..e6, e9; e10..e19.
    assert_eq!(counts, vec![1, 6, 10, 0, 1]);
    // Emptied, an index counts 0 and lists nothing.
    let rest: Vec<String> = walk(&store, "i", query(false, 1000))
        .await
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    store.index_remove("b", "i", rest).await.unwrap();
    assert_eq!(store.index_count("b", "i", None, None).await.unwrap(), 0);
    assert_eq!(walk(&store, "i", query(true, 10)).await, vec![]);
}

/// `apply` writes values and index entries together, in order: sets,
/// deletes, adds, removes.
pub(super) async fn index_apply_writes_values_and_entries(store: KeyValueStore, _: Kind) {
    store
        .set("b", "old", b"x".to_vec(), Some(60_000))
        .await
        .unwrap();
    store
        .index_add("b", "by-time", entries(&[("old", 1)]))
        .await
        .unwrap();
    let changes = Changes {
        set: vec![
            ("r:1".into(), b"one".to_vec()),
            ("r:2".into(), b"two".to_vec()),
            ("old".into(), b"y".to_vec()),
        ],
        delete: vec!["r:2".into(), "absent".into()],
        add: vec![
            ("by-time".into(), "1".into(), 100),
            ("by-time".into(), "2".into(), 200),
            ("service:a".into(), "1".into(), 100),
            ("by-time".into(), "3".into(), 300),
        ],
        remove: vec![
            ("by-time".into(), "2".into()),
            ("by-time".into(), "old".into()),
            ("service:none".into(), "x".into()),
        ],
    };
    store.index_apply("b", changes).await.unwrap();
    assert_eq!(store.get("b", "r:1").await.unwrap(), Some(b"one".to_vec()));
    assert_eq!(
        store.get("b", "r:2").await.unwrap(),
        None,
        "set, then deleted"
    );
    assert_eq!(store.get("b", "old").await.unwrap(), Some(b"y".to_vec()));
    assert_eq!(
        store.ttl("b", "old").await.unwrap(),
        None,
        "a set clears the ttl"
    );
    assert_eq!(
        walk(&store, "by-time", query(false, 10)).await,
        entries(&[("1", 100), ("3", 300)]),
        "added, then removed"
    );
    assert_eq!(
        walk(&store, "service:a", query(false, 10)).await,
        entries(&[("1", 100)])
    );
    // A bad change anywhere: nothing at all is written.
    let bad = Changes {
        set: vec![("r:9".into(), b"nine".to_vec())],
        add: vec![
            ("by-time".into(), "9".into(), 900),
            ("by-time".into(), String::new(), 1),
        ],
        ..Changes::default()
    };
    let err = store.index_apply("b", bad).await.unwrap_err();
    assert!(err.0.contains("member is empty"), "{err}");
    assert_eq!(store.get("b", "r:9").await.unwrap(), None);
    assert_eq!(store.index_score("b", "by-time", "9").await.unwrap(), None);
    store.index_apply("b", Changes::default()).await.unwrap();
}

/// An index is in its bucket, apart from the bucket's keys and from other
/// buckets' indexes.
pub(super) async fn indexes_are_isolated(store: KeyValueStore, _: Kind) {
    store.set("b", "k", b"value".to_vec(), None).await.unwrap();
    store
        .index_add("b", "k", entries(&[("m", 1)]))
        .await
        .unwrap();
    store
        .index_add("other", "k", entries(&[("n", 2)]))
        .await
        .unwrap();
    // "one" + index vs "o" + index "ne...": no aliasing.
    store
        .index_add("one", "x", entries(&[("p", 3)]))
        .await
        .unwrap();
    store
        .index_add("o", "ne#x", entries(&[("q", 4)]))
        .await
        .unwrap();
    assert_eq!(store.get("b", "k").await.unwrap(), Some(b"value".to_vec()));
    assert_eq!(
        walk(&store, "k", query(false, 10)).await,
        entries(&[("m", 1)])
    );
    let other = store
        .index_range("other", "k", query(false, 10))
        .await
        .unwrap();
    assert_eq!(other.entries, entries(&[("n", 2)]));
    let one = store
        .index_range("one", "x", query(false, 10))
        .await
        .unwrap();
    assert_eq!(one.entries, entries(&[("p", 3)]));
    assert_eq!(store.list_keys("b", None).await.unwrap().keys, vec!["k"]);
    assert!(store.list_keys("one", None).await.unwrap().keys.is_empty());
    store.delete("b", "k").await.unwrap();
    assert_eq!(store.index_count("b", "k", None, None).await.unwrap(), 1);
}

/// Every bound is enforced before anything is written.
pub(super) async fn index_limits_are_enforced(store: KeyValueStore, _: Kind) {
    let err = |r: Result<(), crate::capabilities::keyvalue::backend::Failure>| r.unwrap_err().0;
    let e = err(store.index_add("b", "", entries(&[("m", 1)])).await);
    assert!(e.contains("index name is empty"), "{e}");
    let e = err(store.index_add("b", &"i".repeat(257), vec![]).await);
    assert!(e.contains("limit is 256"), "{e}");
    let e = err(store
        .index_add("b", "i", entries(&[("m", MAX_SCORE + 1)]))
        .await);
    assert!(e.contains("2^53"), "{e}");
    let too_many: Vec<(String, i64)> = (0..1001).map(|i| (format!("m{i}"), i)).collect();
    let e = err(store.index_add("b", "i", too_many).await);
    assert!(e.contains("1001 entries"), "{e}");
    let e = err(store.index_remove("b", "i", vec!["x".repeat(1025)]).await);
    assert!(e.contains("member is 1025"), "{e}");
    assert_eq!(store.index_count("b", "i", None, None).await.unwrap(), 0);
    let e = store
        .index_range("b", "i", query(false, 1001))
        .await
        .unwrap_err();
    assert!(e.0.contains("1 to 1000"), "{e}");
    let ranges = vec![(None, None); 1001];
    let e = store
        .index_count_ranges("b", "i", ranges)
        .await
        .unwrap_err();
    assert!(e.0.contains("1001 ranges"), "{e}");
}

/// Random adds, moves and removes against a `BTreeSet` model; after each
/// round, bounded pages from a random cursor in both directions must match.
pub(super) async fn index_matches_a_model_under_random_changes(store: KeyValueStore, _: Kind) {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut scores: BTreeMap<String, i64> = BTreeMap::new();
    for round in 0..12 {
        let mut adds = Vec::new();
        for _ in 0..60 {
            // Few scores and a small member space: many ties and moves.
            let member = format!("m{}", next(150));
            adds.push((member, next(12) as i64 - 4));
        }
        let removes: Vec<String> = (0..15).map(|_| format!("m{}", next(150))).collect();
        store
            .index_apply(
                "b",
                Changes {
                    add: adds
                        .iter()
                        .map(|(m, s)| ("r".into(), m.clone(), *s))
                        .collect(),
                    remove: removes.iter().map(|m| ("r".into(), m.clone())).collect(),
                    ..Changes::default()
                },
            )
            .await
            .unwrap();
        for (m, s) in adds {
            scores.insert(m, s);
        }
        for m in removes {
            scores.remove(&m);
        }
        let model: BTreeSet<(i64, String)> = scores.iter().map(|(m, s)| (*s, m.clone())).collect();
        for _ in 0..6 {
            let min = next(14) as i64 - 5;
            let max = min + next(8) as i64 - 1;
            let descending = next(2) == 1;
            let after = (next(3) > 0).then(|| Position {
                score: next(16) as i64 - 6,
                member: format!("m{}", next(160)),
            });
            let q = RangeQuery {
                min: Some(min),
                max: Some(max),
                descending,
                after: after.clone(),
                limit: 1 + next(9) as u32,
            };
            let in_range = model.iter().filter(|(s, _)| (min..=max).contains(s));
            let expected: Vec<(String, i64)> = if descending {
                in_range
                    .rev()
                    .filter(|e| {
                        after
                            .as_ref()
                            .is_none_or(|p| **e < (p.score, p.member.clone()))
                    })
                    .map(|(s, m)| (m.clone(), *s))
                    .collect()
            } else {
                in_range
                    .filter(|e| {
                        after
                            .as_ref()
                            .is_none_or(|p| **e > (p.score, p.member.clone()))
                    })
                    .map(|(s, m)| (m.clone(), *s))
                    .collect()
            };
            assert_eq!(
                walk(&store, "r", q.clone()).await,
                expected,
                "round {round}: {q:?}"
            );
            let counted = store
                .index_count("b", "r", Some(min), Some(max))
                .await
                .unwrap();
            let in_model = model
                .iter()
                .filter(|(s, _)| (min..=max).contains(s))
                .count();
            assert_eq!(counted, in_model as u64);
        }
        let total = store.index_count("b", "r", None, None).await.unwrap();
        assert_eq!(total, model.len() as u64);
    }
}
