//! The scenarios, each run on both backends (see `both!`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::{
    BATCH_LOG, BULK_LOG, Backend, DEAD_LOG, PROBE_LOG, assert_nothing_comes_back, lines, publish,
    publish_to_exchange, start, wait_lines,
};
use crate::common::*;

/// The message id of a probe's log line (`... id=<id> attempt=...`).
fn id_of(line: &str) -> &str {
    let rest = &line[line.find("id=").expect("the line names its message id") + 3..];
    rest.split(' ').next().unwrap()
}

fn ok(reply: &Reply) {
    assert_eq!(
        reply.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
}

pub async fn handles_and_acks_in_order(b: &Backend) {
    let host = start(b);
    ok(&publish(&host, "work", "a", "ack", 5).await);
    let handled = wait_lines(&host, PROBE_LOG, "handled queue=work id=a-", 5).await;
    for (i, line) in handled.iter().enumerate() {
        assert!(
            line.contains(&format!("id=a-{i} attempt=1 body=ack -> ack")),
            "{line}"
        );
    }
    assert_eq!(lines(&host, PROBE_LOG, "handled queue=work id=a-").len(), 5);
    // Acknowledged: none comes back.
    assert_nothing_comes_back(b, host, "work", "id=a-").await;
}

pub async fn retries_then_dead_letters(b: &Backend) {
    let host = start(b);
    ok(&publish(&host, "work", "r", "retry", 1).await);
    let dead = wait_lines(&host, DEAD_LOG, "handled queue=work.dead id=r ", 1).await;
    assert!(dead[0].contains("attempt=3"), "{}", dead[0]);
    assert!(
        dead[0].contains("reason=gave up after 3 attempts"),
        "{}",
        dead[0]
    );
    let tries = lines(&host, PROBE_LOG, "handled queue=work id=r ");
    assert_eq!(tries.len(), 3, "{tries:#?}");
    for (i, line) in tries.iter().enumerate() {
        assert!(
            line.contains(&format!("attempt={} body=retry -> retry", i + 1)),
            "{line}"
        );
    }
}

pub async fn rejects_go_to_the_dead_letter_queue_at_once(b: &Backend) {
    let host = start(b);
    ok(&publish(&host, "work", "x", "reject:bad input", 1).await);
    let dead = wait_lines(&host, DEAD_LOG, "handled queue=work.dead id=x ", 1).await;
    assert!(dead[0].contains("attempt=1"), "{}", dead[0]);
    assert!(
        dead[0].contains("reason=rejected: bad input"),
        "{}",
        dead[0]
    );
    assert_eq!(lines(&host, PROBE_LOG, "handled queue=work id=x ").len(), 1);
}

pub async fn traps_are_retried_then_dead_lettered(b: &Backend) {
    let host = start(b);
    ok(&publish(&host, "work", "t", "trap", 1).await);
    let dead = wait_lines(&host, DEAD_LOG, "handled queue=work.dead id=t ", 1).await;
    assert!(
        dead[0].contains("reason=gave up after 3 attempts"),
        "{}",
        dead[0]
    );
    assert!(dead[0].contains("trapped"), "{}", dead[0]);
    let started = lines(&host, PROBE_LOG, "started queue=work id=t ");
    assert_eq!(started.len(), 3, "{started:#?}");
    assert!(
        host.output().contains("component_trap"),
        "the trap is logged"
    );
}

pub async fn a_retry_can_succeed(b: &Backend) {
    let host = start(b);
    ok(&publish(&host, "work", "u", "retry-until:3", 1).await);
    let tries = wait_lines(&host, PROBE_LOG, "handled queue=work id=u ", 3).await;
    assert!(
        tries[0].contains("attempt=1 body=retry-until:3 -> retry"),
        "{}",
        tries[0]
    );
    assert!(
        tries[1].contains("attempt=2 body=retry-until:3 -> retry"),
        "{}",
        tries[1]
    );
    assert!(
        tries[2].contains("attempt=3 body=retry-until:3 -> ack"),
        "{}",
        tries[2]
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(lines(&host, DEAD_LOG, "id=u ").is_empty());
}

pub async fn publishing_needs_a_grant(b: &Backend) {
    let host = start(b);
    let reply = publish(&host, "secret", "g", "ack", 1).await;
    let json = assert_error(&reply, 403, "not_granted");
    assert!(json.to_string().contains("secret"), "{json}");
}

/// Publishing to an exchange from a component: a topic key reaches the
/// consumer of every matching queue; a key no binding matches is refused
/// (`rejected`, unroutable), never dropped; an exchange outside the grant
/// is `not_granted`, declared or not.
pub async fn exchange_publishing_routes_and_needs_a_grant(b: &Backend) {
    let host = start(b);
    ok(&publish_to_exchange(&host, "events", "work.created", "e1", "ack").await);
    wait_lines(&host, PROBE_LOG, "handled queue=work id=e1 attempt=1", 1).await;
    ok(&publish_to_exchange(&host, "events", "work.bulk", "e2", "ack").await);
    wait_lines(&host, PROBE_LOG, "handled queue=work id=e2 attempt=1", 1).await;
    wait_lines(&host, BULK_LOG, "handled queue=bulk id=e2 attempt=1", 1).await;

    let reply = publish_to_exchange(&host, "events", "order.x", "e3", "ack").await;
    let json = assert_error(&reply, 502, "rejected");
    assert!(json.to_string().contains("unroutable"), "{json}");
    for exchange in ["private", "undeclared"] {
        let reply = publish_to_exchange(&host, exchange, "", "e4", "ack").await;
        let json = assert_error(&reply, 403, "not_granted");
        assert!(json.to_string().contains(exchange), "{json}");
    }
    // e1 went to `work` only, and nothing else arrived anywhere.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(lines(&host, BULK_LOG, "id=e1 ").is_empty());
    assert!(lines(&host, PROBE_LOG, "id=e3 ").is_empty());
    assert!(lines(&host, BULK_LOG, "id=e4 ").is_empty());
}

/// SIGTERM while a message is being handled: it finishes and is acked, the
/// rest stays queued, and the next host handles the rest (and only it).
pub async fn graceful_stop_finishes_in_flight_and_leaves_the_rest(b: &Backend) {
    let mut first = start(b);
    ok(&publish(&first, "work", "s", "slow:1500", 3).await);
    wait_lines(&first, PROBE_LOG, "started queue=work id=s-0 ", 1).await;
    first.signal(libc::SIGTERM);
    let status = first
        .wait_exit(Duration::from_secs(20))
        .expect("stops in time");
    assert!(status.success(), "{status:?}\n{}", first.output());
    let handled = lines(&first, PROBE_LOG, "handled queue=work id=s-");
    assert_eq!(handled.len(), 1, "only the in-flight one: {handled:#?}");
    assert!(handled[0].contains("id=s-0 attempt=1"), "{}", handled[0]);
    assert!(lines(&first, PROBE_LOG, "started queue=work id=s-1").is_empty());

    let second = start(b);
    let rest = wait_lines(&second, PROBE_LOG, "handled queue=work id=s-", 2).await;
    assert!(rest[0].contains("id=s-1 attempt=1"), "{}", rest[0]);
    assert!(rest[1].contains("id=s-2 attempt=1"), "{}", rest[1]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        lines(&second, PROBE_LOG, "id=s-0").is_empty(),
        "the acked message is not handled again"
    );
}

/// SIGKILL while a message is being handled: the next host gets it again.
pub async fn a_killed_host_gets_its_message_again(b: &Backend) {
    let mut first = start(b);
    ok(&publish(&first, "work", "k", "slow:3000", 1).await);
    wait_lines(&first, PROBE_LOG, "started queue=work id=k ", 1).await;
    first.signal(libc::SIGKILL);
    first.wait_exit(Duration::from_secs(10)).expect("killed");
    assert!(lines(&first, PROBE_LOG, "handled").is_empty());

    let second = start(b);
    let again = wait_lines(&second, PROBE_LOG, "handled queue=work id=k ", 1).await;
    assert!(
        again[0].contains("attempt=1 body=slow:3000 -> ack"),
        "{}",
        again[0]
    );
}

/// Messages per second through the whole path: HTTP publish (batches of
/// 100) → broker → queue trigger (concurrency 4) → wasm handler → ack.
pub async fn throughput(b: &Backend) {
    let host = start(b);
    let n = 1000;
    let started = Instant::now();
    for batch in 0..n / 100 {
        ok(&publish(&host, "bulk", &format!("p{batch}"), "ack", 100).await);
    }
    let published = started.elapsed();
    let expected: HashSet<String> = (0..n / 100)
        .flat_map(|b| (0..100).map(move |i| format!("p{b}-{i}")))
        .collect();
    // Every message, each once: a line count alone would take a message
    // handled twice for one that was lost.
    let deadline = Instant::now() + super::WAIT;
    loop {
        let handled = lines(&host, BULK_LOG, "handled queue=bulk");
        let ids: HashSet<String> = handled.iter().map(|l| id_of(l).to_owned()).collect();
        if ids.is_superset(&expected) {
            assert_eq!(ids, expected, "unexpected messages handled");
            assert_eq!(handled.len(), n, "some messages were handled twice");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} messages handled after {:?}",
            ids.intersection(&expected).count(),
            super::WAIT
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all = started.elapsed();
    eprintln!(
        "{n} messages: published in {published:?} ({:.0}/s), all handled in {all:?} ({:.0}/s)",
        n as f64 / published.as_secs_f64(),
        n as f64 / all.as_secs_f64()
    );
}

/// The host's RabbitMQ connection is cut three times while messages are
/// published over HTTP and consumed: every message is handled.
pub async fn connection_drops_lose_nothing(b: &Backend) {
    let host = start(b);
    let n_batches = 30;
    let mut retried = 0;
    let mut cuts = 0;
    for batch in 0..n_batches {
        if batch % 10 == 5 {
            cuts += b.proxy().cut();
        }
        loop {
            let reply = publish(&host, "bulk", &format!("c{batch}"), "ack", 10).await;
            match reply.status {
                200 => break,
                // `unavailable`: not confirmed in time; publish again.
                503 => retried += 1,
                other => panic!("{other}: {:?}", String::from_utf8_lossy(&reply.body)),
            }
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(cuts >= 3, "{cuts} connections cut");
    let expected: HashSet<String> = (0..n_batches)
        .flat_map(|b| (0..10).map(move |i| format!("id=c{b}-{i} ")))
        .collect();
    let deadline = Instant::now() + super::WAIT;
    loop {
        let log = std::fs::read_to_string(host.path(BULK_LOG)).unwrap_or_default();
        let missing: Vec<&String> = expected
            .iter()
            .filter(|id| !log.contains(id.as_str()))
            .collect();
        if missing.is_empty() {
            let handled = log
                .lines()
                .filter(|l| l.contains("handled queue=bulk"))
                .count();
            eprintln!(
                "{} messages, {cuts} connections cut: {} handled twice, {retried} publishes retried",
                expected.len(),
                handled - expected.len()
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} messages never handled, e.g. {:?}\n{}",
            missing.len(),
            &missing[..missing.len().min(5)],
            host.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `batch-probe` gets many messages per call, each exactly once, and never
/// more than `batch_size`.
pub async fn batches_carry_many_messages_per_call(b: &Backend) {
    let host = start(b);
    ok(&publish(&host, "batched", "m", "ack", 50).await);
    let handled = wait_lines(&host, BATCH_LOG, "handled queue=batched id=m-", 50).await;
    let ids: HashSet<&str> = handled
        .iter()
        .map(|l| l.split(" id=").nth(1).unwrap().split(' ').next().unwrap())
        .collect();
    assert_eq!(ids.len(), 50, "each message once: {handled:#?}");
    assert!(
        handled
            .iter()
            .all(|l| l.contains("attempt=1 body=ack -> ack"))
    );
    let sizes: Vec<usize> = lines(&host, BATCH_LOG, "batch size=")
        .iter()
        .map(|l| {
            let size = l.split("batch size=").nth(1).unwrap();
            size.split(' ').next().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), 50, "{sizes:?}");
    assert!(
        sizes.iter().all(|&n| n <= 20),
        "batch_size is a cap: {sizes:?}"
    );
    assert!(
        sizes.len() < 50,
        "50 messages published at once share calls: {sizes:?}"
    );
    assert_eq!(
        lines(&host, BATCH_LOG, "handled queue=batched id=m-").len(),
        50
    );
    // Acknowledged: none comes back.
    assert_nothing_comes_back(b, host, "batched", "id=m-").await;
}

/// In one batch, a rejected message is dead-lettered alone while the others
/// are acked; a trapping call or one that answers too few dispositions
/// retries every message it had, then dead-letters what keeps failing.
pub async fn a_batch_settles_each_message_by_its_own_answer(b: &Backend) {
    let host = start(b);
    ok(&publish(&host, "batched", "x", "reject:bad input", 1).await);
    ok(&publish(&host, "batched", "a", "ack", 3).await);
    let dead = wait_lines(&host, DEAD_LOG, "handled queue=batched.dead id=x ", 1).await;
    assert!(dead[0].contains("attempt=1"), "{}", dead[0]);
    assert!(
        dead[0].contains("reason=rejected: bad input"),
        "{}",
        dead[0]
    );
    wait_lines(&host, BATCH_LOG, "handled queue=batched id=a-", 3).await;

    ok(&publish(&host, "batched", "t", "trap", 1).await);
    let dead = wait_lines(&host, DEAD_LOG, "handled queue=batched.dead id=t ", 1).await;
    assert!(
        dead[0].contains("reason=gave up after 3 attempts"),
        "{}",
        dead[0]
    );
    assert!(dead[0].contains("trapped"), "{}", dead[0]);
    assert_eq!(
        lines(&host, BATCH_LOG, "handled queue=batched id=t ").len(),
        3
    );

    ok(&publish(&host, "batched", "s", "short", 1).await);
    let dead = wait_lines(&host, DEAD_LOG, "handled queue=batched.dead id=s ", 1).await;
    assert!(
        dead[0].contains("handle-batch returned 0 dispositions for 1 deliveries"),
        "{}",
        dead[0]
    );
    // Every message settled once: the acked ones never came back.
    assert_eq!(
        lines(&host, BATCH_LOG, "handled queue=batched id=a-").len(),
        3
    );
    assert_eq!(
        lines(&host, DEAD_LOG, "handled queue=batched.dead").len(),
        3
    );
    assert_nothing_comes_back(b, host, "batched", "id=a-").await;
}
