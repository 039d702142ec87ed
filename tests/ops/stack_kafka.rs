//! The stack's Kafka is real and usable by the agent's libraries: rdkafka's idempotent,
//! transactional producer commits, and a read_committed consumer sees the records.

use crate::common;

use std::time::Duration;

use common::{stack_env, unique_name};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Message};

fn client_config() -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", stack_env("KAFKA_BOOTSTRAP"));
    c
}

#[tokio::test]
async fn a_committed_transaction_is_read_back_by_a_read_committed_consumer() {
    let topic = unique_name("stack_kafka");
    let admin: AdminClient<DefaultClientContext> = client_config().create().unwrap();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let res = admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &opts,
        )
        .await
        .unwrap();
    res[0].as_ref().expect("topic created");

    let producer: FutureProducer = client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("transactional.id", &topic)
        .create()
        .unwrap();
    producer
        .init_transactions(Duration::from_secs(30))
        .expect("transactions work on the single-node broker");
    producer.begin_transaction().unwrap();
    for i in 0..3 {
        let payload = format!("value-{i}");
        let key = format!("key-{i}");
        producer
            .send(
                FutureRecord::to(&topic).key(&key).payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer
        .commit_transaction(Duration::from_secs(30))
        .expect("the transaction commits");

    let consumer: StreamConsumer = client_config()
        .set("group.id", &topic)
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while seen.len() < 3 {
            let msg = consumer.recv().await.unwrap();
            seen.push(String::from_utf8(msg.payload().unwrap().to_vec()).unwrap());
        }
    })
    .await
    .expect("three committed records within 60s");
    assert_eq!(seen, ["value-0", "value-1", "value-2"]);

    let _ = admin.delete_topics(&[&topic], &opts).await;
}
