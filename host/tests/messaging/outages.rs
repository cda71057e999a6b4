//! What only one backend can suffer: RabbitMQ connections dropping (cut at
//! the proxy while publishing and consuming), and the embedded queue's
//! host restarting with messages in flight.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use corral::broker::{Outcome, PublishError};

use crate::fixture::{Fixture, message, next, nothing};

const WAIT: Duration = Duration::from_secs(20);

/// Publishes `n` messages from 8 concurrent publishers while the
/// connection is cut three times under them (publishes and acks in
/// flight), and consumes them all: every id arrives at least once.
/// Returns (duplicates, publishes that said `unavailable`, cuts).
pub async fn nothing_lost_across_connection_drops(f: &Fixture, n: usize) -> (usize, usize, usize) {
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let mut sub = f.subscribe("drops", 16);
    let consumer = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Some(d) = sub.next().await {
                let id = d.message.message_id.clone().unwrap();
                // An ack may fail when the cut hits it: the broker then
                // delivers the message again, which is what we count.
                let _ = d.settle(Outcome::Ack).await;
                let mut seen = seen.lock().unwrap();
                *seen.entry(id).or_default() += 1;
                if seen.len() == n {
                    break;
                }
            }
            sub.close().await;
        })
    };
    let publishers = 8;
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let broker = f.broker().clone();
        tasks.push(tokio::spawn(async move {
            let mut unavailable = 0;
            for i in (p..n).step_by(publishers) {
                let m = message(&format!("{i}"), &format!("d{i}"));
                // A publish that says `unavailable` may or may not be
                // stored; the component's answer is to publish again
                // (same id).
                loop {
                    match broker.publish("drops", vec![m.clone()]).await {
                        Ok(()) => break,
                        Err(PublishError::Unavailable(_)) => unavailable += 1,
                        Err(other) => panic!("publish {i}: {other}"),
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            unavailable
        }));
    }
    let mut cuts = 0;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        cuts += f.proxy().cut();
    }
    let mut unavailable = 0;
    for task in tasks {
        unavailable += task.await.unwrap();
    }
    tokio::time::timeout(WAIT, consumer)
        .await
        .unwrap_or_else(|_| {
            let seen = seen.lock().unwrap();
            let missing: Vec<usize> = (0..n)
                .filter(|i| !seen.contains_key(&format!("d{i}")))
                .collect();
            panic!(
                "{} of {n} messages never arrived: {missing:?}",
                missing.len()
            )
        })
        .unwrap();
    let seen = seen.lock().unwrap();
    let duplicates = seen.values().map(|c| c - 1).sum();
    (duplicates, unavailable, cuts)
}

/// While no connection can be made, a publish waits `confirm_timeout` and
/// says `unavailable`; once the broker is back, publishing works again
/// without any intervention.
pub async fn publish_waits_for_the_broker_then_gives_up(f: &Fixture, confirm_timeout: Duration) {
    f.publish("outage", vec![message("before", "o0")])
        .await
        .unwrap();
    f.proxy().refuse(true);
    f.proxy().cut();
    let started = Instant::now();
    let result = f.publish("outage", vec![message("during", "o1")]).await;
    let waited = started.elapsed();
    assert!(
        matches!(result, Err(PublishError::Unavailable(_))),
        "{result:?}"
    );
    assert!(
        waited >= confirm_timeout - Duration::from_millis(100),
        "gave up after {waited:?}"
    );
    assert!(
        waited < confirm_timeout + Duration::from_secs(2),
        "gave up after {waited:?}"
    );

    // A publish that starts during the outage and sees the broker come back
    // within its timeout succeeds.
    let broker = f.broker().clone();
    let pending = tokio::spawn(async move {
        broker
            .publish("outage", vec![message("waiting", "o2")])
            .await
    });
    tokio::time::sleep(confirm_timeout / 3).await;
    f.proxy().refuse(false);
    pending.await.unwrap().unwrap();

    let mut sub = f.subscribe("outage", 4);
    for id in ["o0", "o2"] {
        let d = next(&mut sub, WAIT).await;
        assert_eq!(d.message.message_id.as_deref(), Some(id));
        d.settle(Outcome::Ack).await.unwrap();
    }
    nothing(&mut sub, Duration::from_millis(300)).await;
    sub.close().await;
}

/// The embedded queue across a restart: acked messages stay gone, claimed
/// but unsettled ones come back (in order), and a scheduled retry still
/// happens.
pub async fn embedded_queue_survives_a_restart(f: &mut Fixture) {
    let batch = (1..=5)
        .map(|i| message(&format!("{i}"), &format!("s{i}")))
        .collect();
    f.publish("restart", batch).await.unwrap();
    let mut sub = f.subscribe("restart", 10);
    let d1 = next(&mut sub, WAIT).await;
    let d2 = next(&mut sub, WAIT).await;
    let d3 = next(&mut sub, WAIT).await;
    d1.settle(Outcome::Ack).await.unwrap();
    d2.settle(Outcome::Retry(Duration::from_millis(600)))
        .await
        .unwrap();
    // d3 is in flight when the "host dies": nothing about it was written,
    // just as after a crash (the e2e tests kill a real host).
    sub.close().await;
    drop(d3);

    f.reopen().await;
    let mut sub = f.subscribe("restart", 10);
    let mut order = Vec::new();
    for _ in 0..4 {
        let d = next(&mut sub, WAIT).await;
        order.push((d.message.message_id.clone().unwrap(), d.attempt));
        d.settle(Outcome::Ack).await.unwrap();
    }
    assert_eq!(
        order,
        [
            ("s3".into(), 1),
            ("s4".into(), 1),
            ("s5".into(), 1),
            ("s2".to_string(), 2)
        ],
        "unsettled first (in order), the retry after its delay"
    );
    nothing(&mut sub, Duration::from_millis(300)).await;
    sub.close().await;
}
