//! The tests' one Kafka reader: a read_committed consumer of the stack's broker, assigned to
//! a topic's partitions (no group membership, so nothing is committed and tests running side
//! by side never share a group), polled into [`Record`]s.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use super::agent::Record;
use super::{stack_env, unique_name};

/// A read_committed consumer that commits nothing; `settings` adds or overrides client keys.
pub fn consumer(group_prefix: &str, settings: &[(&str, &str)]) -> BaseConsumer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", stack_env("KAFKA_BOOTSTRAP"))
        .set("group.id", unique_name(group_prefix))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed");
    for (key, value) in settings {
        config.set(*key, *value);
    }
    config.create().unwrap()
}

/// The partitions of `topic`, waiting up to `timeout` for it to exist (an agent creates its
/// topics when it first writes); `None` if it did not appear.
pub fn partitions(consumer: &BaseConsumer, topic: &str, timeout: Duration) -> Option<Vec<i32>> {
    let start = Instant::now();
    loop {
        if let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            if let Some(t) = md.topics().iter().find(|t| t.name() == topic) {
                if t.error().is_none() && !t.partitions().is_empty() {
                    return Some(t.partitions().iter().map(|p| p.id()).collect());
                }
            }
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Assigns `partitions` of `topic`, each read from `offset`.
pub fn assign(consumer: &BaseConsumer, topic: &str, partitions: &[i32], offset: Offset) {
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition_offset(topic, *p, offset).unwrap();
    }
    consumer.assign(&tpl).unwrap();
}

/// A consumer of every partition of `topic` from the beginning, once the topic exists
/// (panics naming the topic if it does not appear within `timeout`); and its partitions.
pub fn from_start(
    topic: &str,
    group_prefix: &str,
    settings: &[(&str, &str)],
    timeout: Duration,
) -> (BaseConsumer, Vec<i32>) {
    let consumer = consumer(group_prefix, settings);
    let partitions = partitions(&consumer, topic, timeout)
        .unwrap_or_else(|| panic!("topic {topic} did not appear within {timeout:?}"));
    assign(&consumer, topic, &partitions, Offset::Beginning);
    (consumer, partitions)
}

/// The next record within `wait`, if one came.
pub fn poll(consumer: &BaseConsumer, wait: Duration) -> Option<KafkaResult<Record>> {
    Some(consumer.poll(wait)?.map(|m| {
        let mut headers = HashMap::new();
        if let Some(h) = m.headers() {
            for hd in h.iter() {
                headers.insert(
                    hd.key.to_string(),
                    String::from_utf8_lossy(hd.value.unwrap_or_default()).into_owned(),
                );
            }
        }
        Record {
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            headers,
            partition: m.partition(),
            offset: m.offset(),
        }
    }))
}

/// Every byte Kafka holds under topics whose names start with `prefix`: per record, its
/// topic and its key, value and header bytes laid end to end. Read uncommitted, so records
/// of aborted transactions, which stay in the log, are searched too.
pub fn every_record_under(prefix: &str) -> Vec<(String, Vec<u8>)> {
    let consumer = consumer("leak-scan", &[("isolation.level", "read_uncommitted")]);
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    let mut out = Vec::new();
    for t in md.topics().iter().filter(|t| t.name().starts_with(prefix)) {
        for p in t.partitions() {
            let (low, high) = consumer
                .fetch_watermarks(t.name(), p.id(), Duration::from_secs(10))
                .unwrap();
            if high <= low {
                continue;
            }
            assign(&consumer, t.name(), &[p.id()], Offset::Offset(low));
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut next = low;
            while next < high {
                assert!(
                    Instant::now() < deadline,
                    "{}[{}]: read to {next} of {high} in 60 s",
                    t.name(),
                    p.id()
                );
                let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) else {
                    // Transaction markers take offsets but are no messages: the position
                    // passes them.
                    if let Ok(pos) = consumer.position() {
                        if let Some(Offset::Offset(o)) =
                            pos.find_partition(t.name(), p.id()).map(|e| e.offset())
                        {
                            next = next.max(o);
                        }
                    }
                    continue;
                };
                next = m.offset() + 1;
                let mut bytes = Vec::new();
                bytes.extend_from_slice(m.key().unwrap_or_default());
                bytes.extend_from_slice(m.payload().unwrap_or_default());
                if let Some(h) = m.headers() {
                    for hd in h.iter() {
                        bytes.extend_from_slice(hd.key.as_bytes());
                        bytes.extend_from_slice(hd.value.unwrap_or_default());
                    }
                }
                out.push((t.name().to_string(), bytes));
            }
        }
    }
    out
}
