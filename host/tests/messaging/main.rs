//! The messaging backends against each other's contract: every case in
//! `cases` runs on the real RabbitMQ (127.0.0.1:5672, guest/guest, a random
//! queue prefix per test, queues deleted afterwards) and on the embedded
//! queue, and so does every case in `exchanges`; `outages` has what is
//! specific to each.

mod cases;
mod exchanges;
mod fixture;
mod outages;

use std::time::Duration;

use fixture::Fixture;
use rabbit::require_rabbitmq;
use test_support::{proxy, rabbit};

const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `cases::$case` (or `$module::$case`) once per backend.
macro_rules! both {
    ($case:ident) => {
        both!(cases, $case);
    };
    ($module:ident, $case:ident) => {
        mod $case {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn amqp() {
                require_rabbitmq();
                let f = Fixture::amqp(CONFIRM_TIMEOUT).await;
                $module::$case(&f).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                let f = Fixture::embedded().await;
                $module::$case(&f).await;
            }
        }
    };
}

both!(publish_consume_ack);
both!(retry_then_dead_letter);
both!(reject_dead_letters_directly);
both!(unsettled_deliveries_come_back);
both!(exchanges, topic_routes_to_every_matching_queue);
both!(exchanges, fanout_reaches_every_bound_queue);
both!(exchanges, direct_matches_whole_keys);
both!(exchanges, undeclared_exchanges_and_long_keys_are_invalid);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_a_deleted_bound_queue_is_declared_again() {
    require_rabbitmq();
    let f = Fixture::amqp(CONFIRM_TIMEOUT).await;
    exchanges::amqp_a_deleted_bound_queue_is_declared_again(&f).await;
}

mod throughput {
    use super::*;

    const N: usize = 2000;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn amqp() {
        require_rabbitmq();
        let f = Fixture::amqp(CONFIRM_TIMEOUT).await;
        let (published, consumed) = cases::throughput(&f, N).await;
        eprintln!("amqp: {N} messages, publish {published:.0}/s, consume+ack {consumed:.0}/s");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded() {
        let f = Fixture::embedded().await;
        let (published, consumed) = cases::throughput(&f, N).await;
        eprintln!("embedded: {N} messages, publish {published:.0}/s, consume+ack {consumed:.0}/s");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_nothing_lost_across_connection_drops() {
    require_rabbitmq();
    let f = Fixture::amqp(CONFIRM_TIMEOUT).await;
    let (duplicates, unavailable, cuts) =
        outages::nothing_lost_across_connection_drops(&f, 600).await;
    assert!(cuts >= 3, "{cuts} connections cut");
    eprintln!(
        "600 messages, {cuts} connections cut: {duplicates} delivered twice, {unavailable} publishes said unavailable"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_publish_waits_for_the_broker_then_gives_up() {
    require_rabbitmq();
    let timeout = Duration::from_millis(1500);
    let f = Fixture::amqp(timeout).await;
    outages::publish_waits_for_the_broker_then_gives_up(&f, timeout).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_queue_survives_a_restart() {
    let mut f = Fixture::embedded().await;
    outages::embedded_queue_survives_a_restart(&mut f).await;
}
