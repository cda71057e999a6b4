//! What RabbitMQ alone allows the pipeline: the upload's messages (the same
//! bodies, persistent, publisher-confirmed, on one channel) published with
//! plain lapin into a fresh durable queue while a plain lapin consumer
//! (prefetch 400, on a second connection as corral's consumers are)
//! acknowledges each one as it arrives, timed until the last
//! is acknowledged. No component, no key-value, no S3: no pipeline over
//! this broker can do better than this figure on the same machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::{Value, json};

/// How long the broker took.
pub struct Floor {
    pub messages: usize,
    /// Until the last publish was confirmed.
    pub published: Duration,
    /// Until the last message was acknowledged.
    pub total: Duration,
}

/// Publishes one message per record of `file` to `queue` and consumes them
/// back.
pub async fn measure(url: &str, queue: &str, file: &[u8]) -> anyhow::Result<Floor> {
    let records: Vec<Value> = serde_json::from_slice(file)?;
    let bodies: Vec<Vec<u8>> = records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            serde_json::to_vec(&json!({ "batch": "floor", "index": index, "record": record }))
                .expect("serializable")
        })
        .collect();
    let connection = Connection::connect(url, ConnectionProperties::default()).await?;
    let control = connection.create_channel().await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    control
        .queue_declare(queue.into(), durable, FieldTable::default())
        .await?;

    // Like corral: the consumer on a connection of its own.
    let consumer_connection = Connection::connect(url, ConnectionProperties::default()).await?;
    let consumer_channel = consumer_connection.create_channel().await?;
    consumer_channel
        .basic_qos(400, BasicQosOptions::default())
        .await?;
    let mut consumer = consumer_channel
        .basic_consume(
            queue.into(),
            "floor".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let acked = Arc::new(AtomicUsize::new(0));
    let consuming = {
        let (acked, total) = (acked.clone(), bodies.len());
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                delivery.ack(BasicAckOptions::default()).await?;
                if acked.fetch_add(1, Ordering::Relaxed) + 1 == total {
                    break;
                }
            }
            anyhow::Ok(())
        })
    };

    let publisher = connection.create_channel().await?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let started = Instant::now();
    let mut confirms = Vec::with_capacity(bodies.len());
    for (index, body) in bodies.iter().enumerate() {
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(format!("floor:{index}").into());
        let options = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        confirms.push(
            publisher
                .basic_publish("".into(), queue.into(), options, body, properties)
                .await?,
        );
    }
    for confirm in confirms {
        confirm.await?;
    }
    let published = started.elapsed();
    tokio::time::timeout(Duration::from_secs(120), consuming).await???;
    let total = started.elapsed();
    control
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await?;
    let _ = connection.close(200, "OK".into()).await;
    let _ = consumer_connection.close(200, "OK".into()).await;
    let n = bodies.len();
    eprintln!(
        "  .. rabbitmq alone: {n} messages published, confirmed and acked in {:.2} s ({} msg/s; all confirmed after {:.2} s)",
        total.as_secs_f64(),
        (n as f64 / total.as_secs_f64()).round(),
        published.as_secs_f64()
    );
    Ok(Floor {
        messages: n,
        published,
        total,
    })
}
