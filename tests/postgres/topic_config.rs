//! The topics the agent creates: the event store is kept forever, `[kafka.topic_config]` and
//! `[event_store.topic_config]` reach the brokers, and with several partitions a key lands on
//! the partition Java's default partitioner (murmur2) picks, so Java producers writing the same
//! keys and consumers relying on it agree with the agent.

use crate::common;

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

use common::agent::{read_topic, Agent};
use common::pgcase::PgCase;
use common::stack_env;

const WAIT: Duration = Duration::from_secs(90);
const PARTITIONS: i32 = 6;
const ROWS: usize = 200;
/// `[kafka.partitions_by_topic]` for the event store, over `topic_partitions`.
const STORE_PARTITIONS: i32 = 3;

/// Kafka's `Utils.murmur2`, which Java's default partitioner hashes a record's key bytes with.
fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let rest = chunks.remainder();
    if rest.len() == 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Java's default partitioner gives a keyed record.
fn java_partition(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions
}

#[test]
fn murmur2_matches_kafkas_own_test_vectors() {
    // From Kafka's UtilsTest.testMurmur2.
    assert_eq!(murmur2(b"21"), -973_932_308);
    assert_eq!(murmur2(b"foobar"), -790_332_482);
    assert_eq!(murmur2(b"a-little-bit-long-string"), -985_981_536);
    assert_eq!(murmur2(b"a-little-bit-longer-string"), -1_486_304_829);
    assert_eq!(
        murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
        -58_897_971
    );
    assert_eq!(murmur2(b"abc"), 479_470_107);
}

async fn topic_configs(topic: &str) -> impl Fn(&str) -> Option<String> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", stack_env("KAFKA_BOOTSTRAP"))
        .create()
        .unwrap();
    let found = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await
        .unwrap();
    let cfg = found.into_iter().next().unwrap().unwrap();
    move |name: &str| cfg.get(name).and_then(|e| e.value.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_get_their_configs_and_keys_land_on_the_partition_javas_partitioner_picks() {
    let PgCase {
        db: _db,
        admin: _admin,
        name,
        mut cfg,
        cleanup: _cleanup,
    } = PgCase::new(
        "topiccfg",
        &format!(
            "CREATE TABLE t (id int PRIMARY KEY, v text);
             INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, {ROWS}) g;
             CREATE PUBLICATION cdc_pub FOR TABLE t;"
        ),
        "",
    )
    .await;
    cfg.extra_kafka_toml = format!(
        "topic_partitions = {PARTITIONS}\n[kafka.partitions_by_topic]\n\
         '{name}\\.events' = {STORE_PARTITIONS}\n\
         [kafka.topic_config]\n\"cleanup.policy\" = \"compact\"\n\
         [event_store.topic_config]\n\"max.message.bytes\" = \"2000000\"\n"
    );
    let agent = Agent::start(&cfg);
    let topic = format!("{name}.public.t");
    let records = tokio::task::block_in_place(|| read_topic(&topic, WAIT, |r| r.len() >= ROWS));
    assert_eq!(records.len(), ROWS, "log:\n{}", agent.log());

    let table = topic_configs(&topic).await;
    assert_eq!(table("cleanup.policy").as_deref(), Some("compact"));
    let store = topic_configs(&cfg.event_store_topic).await;
    assert_eq!(store("retention.ms").as_deref(), Some("-1"), "kept forever");
    assert_eq!(
        store("retention.bytes").as_deref(),
        Some("-1"),
        "kept forever"
    );
    assert_eq!(store("max.message.bytes").as_deref(), Some("2000000"));

    let mut used = std::collections::BTreeSet::new();
    for r in &records {
        let key = r.key.as_deref().expect("keyed record");
        assert_eq!(
            r.partition,
            java_partition(key, PARTITIONS),
            "record at offset {} of partition {}",
            r.offset,
            r.partition
        );
        used.insert(r.partition);
    }
    assert_eq!(
        used.len(),
        PARTITIONS as usize,
        "keys spread over every partition"
    );
    let consumer = common::kafka::consumer("partitions", &[]);
    let count = |t: &str| {
        common::kafka::partitions(&consumer, t, WAIT)
            .map(|p| p.len())
            .unwrap_or_default()
    };
    assert_eq!(count(&cfg.event_store_topic), STORE_PARTITIONS as usize);
    assert_eq!(count(&topic), PARTITIONS as usize);
}
