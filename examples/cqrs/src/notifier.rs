//! Business logic on events: when an order's status becomes `shipped`, publish a notification
//! record (JSON, keyed by order id) to a topic, for a mailer or a push service to pick up.
//!
//! Exactly once, with Kafka's consume-transform-produce pattern: the notifications of a
//! batch of consumed records and the consumer group's next offsets are committed in one Kafka
//! transaction (`send_offsets_to_transaction`). Either both happen or neither, so a crash or
//! restart anywhere re-reads from the last committed batch and never publishes a notification
//! twice to a `read_committed` reader. The orders topic is read `read_committed` too: the
//! agent publishes in transactions, and an aborted one must not notify anyone.
//!
//! On any error the loop returns it and the process exits: the open transaction is aborted
//! by the broker (or fenced by the next start with the same `transactional.id`), and the next
//! start resumes from the committed offsets. A supervisor (systemd, Kubernetes) restarts it.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use anyhow::{bail, Context};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::avro::AvroDecoder;

/// Upper bound of the records one transaction covers.
const MAX_BATCH: usize = 500;
/// How long a batch waits for more records after its first before it is committed.
const LINGER: Duration = Duration::from_millis(100);
/// Deadline of the blocking transaction calls.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the notifier reads and writes.
#[derive(Debug, Clone)]
pub struct Config {
    /// Kafka's `bootstrap.servers`.
    pub bootstrap_servers: String,
    /// The Confluent-compatible registry API the agent registers its schemas in.
    pub registry_url: String,
    /// The table topic of `orders` (`<topic_prefix>.public.orders`).
    pub orders_topic: String,
    /// Where notifications go.
    pub notifications_topic: String,
    /// The consumer group; its offsets are committed inside the transactions.
    pub group_id: String,
    /// The producer's `transactional.id`: one per running instance, stable across restarts
    /// so that a restarted instance fences its predecessor.
    pub transactional_id: String,
}

/// The notification published for a shipped order (the record's value, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// What happened: `order_shipped`.
    pub kind: String,
    /// The order.
    pub order_id: i32,
    /// Who to tell.
    pub customer_id: i32,
    /// When the shipping was committed in the write database (ms since the epoch).
    pub shipped_at_ms: i64,
}

/// The part of a Debezium change event of `orders` this consumer needs; serde ignores the
/// other fields, so new columns in the source do not break it.
#[derive(Debug, Deserialize)]
pub struct OrderChange {
    /// `c` create, `u` update, `d` delete, `r` snapshot read, `t` truncate.
    pub op: String,
    /// The row before the change (updates need `REPLICA IDENTITY FULL` on the table).
    pub before: Option<OrderRow>,
    /// The row after the change.
    pub after: Option<OrderRow>,
    /// Where and when the change happened.
    pub source: Source,
}

/// The columns of an `orders` row the notifier reads.
#[derive(Debug, Deserialize)]
pub struct OrderRow {
    /// The order's id.
    pub id: i32,
    /// Its customer.
    pub customer_id: i32,
    /// Its status.
    pub status: String,
}

/// The envelope's `source` block, of which only the commit time is used.
#[derive(Debug, Deserialize)]
pub struct Source {
    /// Commit time in the source database (ms since the epoch).
    pub ts_ms: i64,
}

/// The business rule: an order created as `shipped`, or updated from another status to
/// `shipped`, is notified once. Snapshot reads (`r`) are history, not news, and are skipped.
pub fn notification_for(change: &OrderChange) -> anyhow::Result<Option<Notification>> {
    let Some(after) = &change.after else {
        return Ok(None);
    };
    let newly_shipped = match change.op.as_str() {
        "c" => after.status == "shipped",
        "u" => {
            // Without the old row, "became shipped" cannot be told from "was already shipped
            // and changed otherwise"; refuse rather than notify twice.
            let Some(before) = &change.before else {
                bail!(
                    "an update of order {} carries no `before` row; fix: \
                     ALTER TABLE orders REPLICA IDENTITY FULL",
                    after.id
                );
            };
            before.status != "shipped" && after.status == "shipped"
        }
        _ => false,
    };
    Ok(newly_shipped.then(|| Notification {
        kind: "order_shipped".to_string(),
        order_id: after.id,
        customer_id: after.customer_id,
        shipped_at_ms: change.source.ts_ms,
    }))
}

/// Runs the notifier until `shutdown` completes (between two transactions) or an error.
pub async fn run(config: &Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.bootstrap_servers)
        .set("group.id", &config.group_id)
        .set("isolation.level", "read_committed")
        // Offsets are committed only inside the producer's transactions.
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .context("creating the Kafka consumer")?;
    consumer
        .subscribe(&[&config.orders_topic])
        .context("subscribing to the orders topic")?;
    ensure_topic(&config.bootstrap_servers, &config.notifications_topic).await?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &config.bootstrap_servers)
        .set("transactional.id", &config.transactional_id)
        .create()
        .context("creating the Kafka producer")?;
    // Blocking librdkafka calls; block_in_place keeps the runtime's other tasks running.
    tokio::task::block_in_place(|| producer.init_transactions(TRANSACTION_TIMEOUT))
        .context("initialising transactions (is the broker reachable?)")?;
    tracing::info!(topic = %config.orders_topic, group = %config.group_id, "notifier started");

    let mut decoder = AvroDecoder::new(&config.registry_url);
    tokio::pin!(shutdown);
    loop {
        let first = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            message = consumer.recv() => message,
        };
        let first = match first {
            Ok(message) => message.detach(),
            // The agent creates the topic with its first event: until then, wait.
            Err(KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                tracing::debug!(topic = %config.orders_topic, "orders topic not there yet");
                continue;
            }
            Err(e) => return Err(e).context("reading the orders topic"),
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout(LINGER, consumer.recv()).await {
                Ok(message) => batch.push(message.context("reading the orders topic")?.detach()),
                Err(_) => break,
            }
        }
        let sent = publish_batch(config, &consumer, &producer, &mut decoder, &batch).await?;
        tracing::info!(
            records = batch.len(),
            notifications = sent,
            "batch committed"
        );
    }
}

/// Creates `topic` (one partition, the brokers' default replication) unless it exists: brokers
/// usually refuse to create topics on first use (`auto.create.topics.enable=false`).
async fn ensure_topic(bootstrap_servers: &str, topic: &str) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .create()
        .context("creating the Kafka admin client")?;
    let new_topic = NewTopic::new(topic, 1, TopicReplication::Fixed(-1));
    let results = admin
        .create_topics([&new_topic], &AdminOptions::new())
        .await
        .with_context(|| format!("creating topic {topic}"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => bail!("creating topic {topic}: {code}"),
        }
    }
    Ok(())
}

/// Decides the notifications of `batch`, then publishes them and the batch's offsets in one
/// transaction. Returns how many notifications it published.
async fn publish_batch(
    config: &Config,
    consumer: &StreamConsumer,
    producer: &FutureProducer,
    decoder: &mut AvroDecoder,
    batch: &[OwnedMessage],
) -> anyhow::Result<usize> {
    let mut notifications = Vec::new();
    for message in batch {
        // A tombstone (null value) follows each delete, for compaction only.
        let Some(payload) = message.payload() else {
            continue;
        };
        let value = decoder
            .decode(payload)
            .await
            .with_context(|| format!("record {}/{}", message.partition(), message.offset()))?;
        let change: OrderChange = apache_avro::from_value(&value).with_context(|| {
            format!(
                "record {}/{} as an order change",
                message.partition(),
                message.offset()
            )
        })?;
        notifications.extend(notification_for(&change)?);
    }

    tokio::task::block_in_place(|| producer.begin_transaction())?;
    let mut deliveries = Vec::new();
    for n in &notifications {
        let key = n.order_id.to_string();
        let value = serde_json::to_string(n)?;
        let record = FutureRecord::to(&config.notifications_topic)
            .key(&key)
            .payload(&value);
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e)?);
    }
    for delivery in deliveries {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return Err(e).context("publishing a notification"),
            Err(_) => bail!("the producer dropped a notification before its delivery report"),
        }
    }
    let metadata = consumer
        .group_metadata()
        .context("the consumer has no group metadata")?;
    let offsets = next_offsets(batch)?;
    tokio::task::block_in_place(|| {
        producer.send_offsets_to_transaction(&offsets, &metadata, TRANSACTION_TIMEOUT)?;
        producer.commit_transaction(TRANSACTION_TIMEOUT)
    })
    .context("committing the transaction")?;
    Ok(notifications.len())
}

/// The offsets to resume from after `batch`: per partition, one past its last record.
fn next_offsets(batch: &[OwnedMessage]) -> anyhow::Result<TopicPartitionList> {
    let mut next: HashMap<(&str, i32), i64> = HashMap::new();
    for m in batch {
        let offset = next.entry((m.topic(), m.partition())).or_default();
        *offset = (*offset).max(m.offset() + 1);
    }
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in next {
        list.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str) -> Option<OrderRow> {
        Some(OrderRow {
            id: 7,
            customer_id: 3,
            status: status.to_string(),
        })
    }

    fn change(op: &str, before: Option<OrderRow>, after: Option<OrderRow>) -> OrderChange {
        OrderChange {
            op: op.to_string(),
            before,
            after,
            source: Source { ts_ms: 1_000 },
        }
    }

    #[test]
    fn an_update_to_shipped_notifies_with_the_order_and_its_customer() {
        let n = notification_for(&change("u", row("paid"), row("shipped")))
            .unwrap()
            .unwrap();
        assert_eq!(
            n,
            Notification {
                kind: "order_shipped".into(),
                order_id: 7,
                customer_id: 3,
                shipped_at_ms: 1_000
            }
        );
    }

    #[test]
    fn an_order_created_as_shipped_notifies() {
        assert!(notification_for(&change("c", None, row("shipped")))
            .unwrap()
            .is_some());
    }

    #[test]
    fn a_shipped_order_saved_again_does_not_notify_again() {
        assert!(
            notification_for(&change("u", row("shipped"), row("shipped")))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn snapshot_reads_deletes_and_other_statuses_do_not_notify() {
        for c in [
            change("r", None, row("shipped")),
            change("d", row("shipped"), None),
            change("u", row("new"), row("paid")),
        ] {
            assert!(notification_for(&c).unwrap().is_none(), "{c:?}");
        }
    }

    #[test]
    fn an_update_without_the_old_row_is_refused_with_the_fix() {
        let err = notification_for(&change("u", None, row("shipped"))).unwrap_err();
        assert!(err.to_string().contains("REPLICA IDENTITY FULL"), "{err}");
    }
}
