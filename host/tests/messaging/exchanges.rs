//! Publishing to exchanges, written once and run on both backends (see
//! `both!` in `main.rs`; the exchanges are in `fixture::exchanges`), plus
//! what only RabbitMQ can suffer: a bound queue deleted behind the host's
//! back.

use std::time::Duration;

use corral::broker::{Outcome, PublishError};

use crate::fixture::{Fixture, message, next, nothing};
use crate::rabbit::rabbitmq_url;

const WAIT: Duration = Duration::from_secs(10);

/// Consumes `queue` and checks that it holds exactly `ids`, in order.
async fn expect_ids(f: &Fixture, queue: &str, ids: &[&str]) {
    let mut sub = f.subscribe(queue, 8);
    for id in ids {
        let d = next(&mut sub, WAIT).await;
        assert_eq!(d.message.message_id.as_deref(), Some(*id), "in {queue}");
        assert_eq!(d.queue, queue);
        assert_eq!(d.attempt, 1);
        d.settle(Outcome::Ack).await.unwrap();
    }
    nothing(&mut sub, Duration::from_millis(300)).await;
    sub.close().await;
}

fn assert_unroutable(result: Result<(), PublishError>, exchange: &str, key: &str) {
    match result {
        Err(PublishError::Unroutable {
            exchange: e,
            routing_key: k,
        }) => assert_eq!((e.as_str(), k.as_str()), (exchange, key)),
        other => panic!("{exchange}/{key:?}: expected unroutable, got {other:?}"),
    }
}

/// A topic exchange stores a copy in every queue whose pattern matches
/// (`user.created` reaches both `user.*` and `user.created`), batches keep
/// their order, and a key nothing matches is an error that stores nothing.
pub async fn topic_routes_to_every_matching_queue(f: &Fixture) {
    f.publish_to("events", "user.created", vec![message("created", "t1")])
        .await
        .unwrap();
    f.publish_to("events", "user.deleted", vec![message("deleted", "t2")])
        .await
        .unwrap();
    let batch = vec![message("b0", "t3"), message("b1", "t4")];
    f.publish_to("events", "user.created", batch).await.unwrap();
    let nobody = vec![message("nobody", "x1")];
    assert_unroutable(
        f.publish_to("events", "order.x", nobody).await,
        "events",
        "order.x",
    );
    // `*` is exactly one word.
    let too_short = vec![message("nobody", "x2")];
    assert_unroutable(
        f.publish_to("events", "user", too_short).await,
        "events",
        "user",
    );
    let too_long = vec![message("nobody", "x3")];
    let result = f.publish_to("events", "user.created.late", too_long).await;
    assert_unroutable(result, "events", "user.created.late");

    expect_ids(f, "audit", &["t1", "t2", "t3", "t4"]).await;
    expect_ids(f, "mail", &["t1", "t3", "t4"]).await;
}

/// A fanout exchange reaches every bound queue, whatever the key.
pub async fn fanout_reaches_every_bound_queue(f: &Fixture) {
    f.publish_to("everyone", "", vec![message("hello", "f1")])
        .await
        .unwrap();
    f.publish_to("everyone", "ignored.key", vec![message("again", "f2")])
        .await
        .unwrap();
    expect_ids(f, "fan-a", &["f1", "f2"]).await;
    expect_ids(f, "fan-b", &["f1", "f2"]).await;
}

/// A direct exchange compares whole keys: no patterns, no prefixes.
pub async fn direct_matches_whole_keys(f: &Fixture) {
    f.publish_to("exact", "a", vec![message("for a", "d1")])
        .await
        .unwrap();
    f.publish_to("exact", "b", vec![message("for b", "d2")])
        .await
        .unwrap();
    let result = f.publish_to("exact", "a.b", vec![message("x", "d3")]).await;
    assert_unroutable(result, "exact", "a.b");
    let result = f.publish_to("exact", "*", vec![message("x", "d4")]).await;
    assert_unroutable(result, "exact", "*");
    expect_ids(f, "direct-a", &["d1"]).await;
    expect_ids(f, "direct-b", &["d2"]).await;
}

/// An exchange the configuration does not declare, or an oversized key, is
/// `invalid` (the capability's grant check normally stops the first).
pub async fn undeclared_exchanges_and_long_keys_are_invalid(f: &Fixture) {
    let result = f.publish_to("nope", "k", vec![message("x", "n1")]).await;
    assert!(
        matches!(result, Err(PublishError::Invalid(_))),
        "{result:?}"
    );
    let key = "k".repeat(256);
    let result = f.publish_to("exact", &key, vec![message("x", "n2")]).await;
    assert!(
        matches!(result, Err(PublishError::Invalid(_))),
        "{result:?}"
    );
}

/// RabbitMQ only: a bound queue deleted by hand takes its bindings along,
/// and the exchange returns the next message. The host then declares the
/// queue and the bindings again and delivers it, instead of calling a
/// routable key unroutable.
pub async fn amqp_a_deleted_bound_queue_is_declared_again(f: &Fixture) {
    f.publish_to("events", "user.created", vec![message("first", "q1")])
        .await
        .unwrap();
    let connection = lapin::Connection::connect(&rabbitmq_url(), Default::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    for queue in ["audit", "mail"] {
        channel
            .queue_delete(
                format!("{}{queue}", f.prefix).as_str().into(),
                Default::default(),
            )
            .await
            .unwrap();
    }
    let _ = connection.close(200, "OK".into()).await;
    f.publish_to("events", "user.created", vec![message("second", "q2")])
        .await
        .unwrap();
    expect_ids(f, "audit", &["q2"]).await;
    expect_ids(f, "mail", &["q2"]).await;
}
