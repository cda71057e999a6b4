//! The behaviour every backend must have, written once and run against
//! each (see `both!` in `main.rs`).

use std::time::{Duration, Instant};

use corral::broker::Outcome;
use corral::broker::{DEAD_REASON_HEADER, DEAD_SOURCE_HEADER};

use crate::fixture::{Fixture, message, next, nothing};

const WAIT: Duration = Duration::from_secs(10);

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Single and batch publishes arrive in order, intact, and once acked they
/// are gone for good.
pub async fn publish_consume_ack(f: &Fixture) {
    for i in 0..10 {
        f.publish(
            "basic",
            vec![message(&format!("body {i}"), &format!("m{i}"))],
        )
        .await
        .unwrap();
    }
    let batch = (10..20)
        .map(|i| message(&format!("body {i}"), &format!("m{i}")))
        .collect();
    f.publish("basic", batch).await.unwrap();
    let mut without_id = message("no id", "");
    without_id.message_id = None;
    f.publish("basic", vec![without_id]).await.unwrap();

    let mut sub = f.subscribe("basic", 8);
    for i in 0..20 {
        let d = next(&mut sub, WAIT).await;
        assert_eq!(
            d.message.message_id.as_deref(),
            Some(format!("m{i}").as_str()),
            "order"
        );
        assert_eq!(d.message.body, format!("body {i}").into_bytes());
        assert_eq!(d.message.content_type.as_deref(), Some("text/plain"));
        assert_eq!(header(&d.message.headers, "origin"), Some("test"));
        assert_eq!(d.attempt, 1);
        assert_eq!(d.queue, "basic");
        d.settle(Outcome::Ack).await.unwrap();
    }
    let d = next(&mut sub, WAIT).await;
    let generated = d.message.message_id.clone().expect("an id is always set");
    assert!(generated.len() >= 16, "{generated}");
    d.settle(Outcome::Ack).await.unwrap();
    nothing(&mut sub, Duration::from_millis(300)).await;
    sub.close().await;

    let mut again = f.subscribe("basic", 8);
    nothing(&mut again, Duration::from_millis(500)).await;
    again.close().await;
}

/// A retried message comes back after its delay with attempt + 1; the last
/// attempt dead-letters it, reason attached, payload untouched.
pub async fn retry_then_dead_letter(f: &Fixture) {
    f.publish("retry", vec![message("flaky", "r1")])
        .await
        .unwrap();
    let mut sub = f.subscribe("retry", 4);
    let mut last = Instant::now();
    for attempt in 1..=3 {
        let d = next(&mut sub, WAIT).await;
        assert_eq!(d.attempt, attempt);
        assert_eq!(d.message.message_id.as_deref(), Some("r1"));
        assert_eq!(
            header(&d.message.headers, "origin"),
            Some("test"),
            "headers survive retries"
        );
        if attempt > 1 {
            let waited = last.elapsed();
            assert!(
                waited >= Duration::from_millis(180),
                "retried after {waited:?}"
            );
        }
        last = Instant::now();
        let outcome = if attempt < 3 {
            Outcome::Retry(Duration::from_millis(200))
        } else {
            Outcome::DeadLetter("gave up after 3 attempts".into())
        };
        d.settle(outcome).await.unwrap();
    }
    nothing(&mut sub, Duration::from_millis(500)).await;
    sub.close().await;

    let mut dead = f.subscribe("retry.dead", 4);
    let d = next(&mut dead, WAIT).await;
    assert_eq!(d.message.body, b"flaky");
    assert_eq!(d.message.message_id.as_deref(), Some("r1"));
    assert_eq!(d.attempt, 3);
    assert_eq!(
        header(&d.message.headers, DEAD_REASON_HEADER),
        Some("gave up after 3 attempts")
    );
    assert_eq!(
        header(&d.message.headers, DEAD_SOURCE_HEADER),
        Some("retry")
    );
    d.settle(Outcome::Ack).await.unwrap();
    dead.close().await;
}

/// A rejected message goes straight to the dead-letter queue.
pub async fn reject_dead_letters_directly(f: &Fixture) {
    f.publish(
        "poison",
        vec![message("garbage", "p1"), message("fine", "p2")],
    )
    .await
    .unwrap();
    let mut sub = f.subscribe("poison", 4);
    let d = next(&mut sub, WAIT).await;
    assert_eq!(d.message.message_id.as_deref(), Some("p1"));
    d.settle(Outcome::DeadLetter("rejected: malformed".into()))
        .await
        .unwrap();
    let d = next(&mut sub, WAIT).await;
    assert_eq!(d.message.message_id.as_deref(), Some("p2"));
    d.settle(Outcome::Ack).await.unwrap();
    sub.close().await;

    let mut dead = f.subscribe("poison.dead", 4);
    let d = next(&mut dead, WAIT).await;
    assert_eq!(d.message.message_id.as_deref(), Some("p1"));
    assert_eq!(d.attempt, 1);
    assert_eq!(
        header(&d.message.headers, DEAD_REASON_HEADER),
        Some("rejected: malformed")
    );
    d.settle(Outcome::Ack).await.unwrap();
    nothing(&mut dead, Duration::from_millis(300)).await;
    dead.close().await;
}

/// Deliveries dropped without an outcome, or held when the subscription
/// closes, are delivered again.
pub async fn unsettled_deliveries_come_back(f: &Fixture) {
    let batch = (1..=3).map(|i| message("x", &format!("u{i}"))).collect();
    f.publish("unsettled", batch).await.unwrap();
    let mut sub = f.subscribe("unsettled", 10);
    let first = next(&mut sub, WAIT).await;
    let second = next(&mut sub, WAIT).await;
    let third = next(&mut sub, WAIT).await;
    second.settle(Outcome::Ack).await.unwrap();
    drop(first);
    let again = next(&mut sub, WAIT).await;
    assert_eq!(again.message.message_id.as_deref(), Some("u1"));
    assert_eq!(again.attempt, 1, "a redelivery is not a retry");
    // Closing with deliveries unsettled hands them back too.
    sub.close().await;
    drop((again, third));
    let mut sub = f.subscribe("unsettled", 10);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let d = next(&mut sub, WAIT).await;
        ids.push(d.message.message_id.clone().unwrap());
        d.settle(Outcome::Ack).await.unwrap();
    }
    ids.sort();
    assert_eq!(ids, ["u1", "u3"]);
    nothing(&mut sub, Duration::from_millis(300)).await;
    sub.close().await;
}

/// Rough throughput: `n` messages published by 16 concurrent publishers,
/// then consumed and acked with prefetch 64. Returns (published/s, consumed/s).
pub async fn throughput(f: &Fixture, n: usize) -> (f64, f64) {
    let started = Instant::now();
    let publishers = 16;
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let broker = f.broker().clone();
        tasks.push(tokio::spawn(async move {
            for i in (p..n).step_by(publishers) {
                broker
                    .publish("bulk", vec![message("payload", &format!("b{i}"))])
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let published = n as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut sub = f.subscribe("bulk", 64);
    let mut acks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let d = next(&mut sub, WAIT).await;
        acks.spawn(d.settle(Outcome::Ack));
    }
    while let Some(done) = acks.join_next().await {
        done.unwrap().unwrap();
    }
    let consumed = n as f64 / started.elapsed().as_secs_f64();
    sub.close().await;
    (published, consumed)
}
