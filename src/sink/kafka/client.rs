//! Client configuration shared by every Kafka client of the agent (producer, admin,
//! checkpoint and history loaders, ledger tools, `tail`), the producer's own settings, and the
//! client context that turns refused logins into a definite error.

use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientConfig;

use super::error::SinkError;
use crate::config::KafkaConfig;

/// librdkafka's send queue cap in KiB. Its default (1 GiB) would defeat the memory goal.
const QUEUE_MAX_KBYTES: &str = "65536";
/// librdkafka's send queue cap in messages; above [`super::DEFAULT_MAX_IN_FLIGHT`] with room
/// for the event-store mirror of each record.
const QUEUE_MAX_MESSAGES: &str = "200000";
/// How long librdkafka retries one record before reporting it failed.
const MESSAGE_TIMEOUT_MS: &str = "120000";
/// `linger.ms` at least-once: records wait up to 5 ms to share a request, which keeps
/// requests large under load; nothing waits on the last batch except its own latency.
const LINGER_MS: &str = "5";
/// `linger.ms` exactly-once. Every commit first waits for all its records' acknowledgements,
/// and with a longer linger that wait starts with the last batch of each partition idling out
/// its linger while the source is not read. Measured at 10k rows/s (bench/RESULTS.md,
/// session 4): p50/p99 commit→visible 12–13 / 26–34 ms with 1 ms against 18–19 / 45–60 ms
/// with 5 ms, and the same backlog throughput (transactions of up to 50,000 records fill
/// whole batches); 0 ms sent many tiny requests and was slower on both counts.
const TXN_LINGER_MS: &str = "1";
/// Transaction timeout: the broker aborts a transaction open longer than this, which also
/// bounds how long a snapshot (one transaction in exactly-once mode) may take. Brokers cap it
/// at `transaction.max.timeout.ms` (15 minutes by default).
const TRANSACTION_TIMEOUT_MS: &str = "900000";

/// The producer's settings: an idempotent producer (acks=all) configured for bounded memory
/// and Java-compatible partitioning, transactional when `transactional` is set (the
/// `transactional.id` itself is set per producer of the ring). The operator's
/// `[kafka.properties]` win over ours.
///
/// The returned config holds secrets: never log it.
pub fn producer_config(cfg: &KafkaConfig, client_id: &str, transactional: bool) -> ClientConfig {
    let mut c = base_client_config(cfg);
    c.set("client.id", client_id)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", &cfg.compression)
        .set(
            "linger.ms",
            if transactional {
                TXN_LINGER_MS
            } else {
                LINGER_MS
            },
        )
        .set("batch.size", "1000000")
        // Keys land in the partition Java clients (and Debezium) would choose.
        .set("partitioner", "murmur2_random")
        .set("queue.buffering.max.kbytes", QUEUE_MAX_KBYTES)
        .set("queue.buffering.max.messages", QUEUE_MAX_MESSAGES)
        .set("message.timeout.ms", MESSAGE_TIMEOUT_MS)
        // The agent creates its topics itself, with their settings (the offsets topic is
        // compacted). librdkafka's producer default (true) lets a broker with
        // auto.create.topics.enable recreate a deleted topic with the cluster's defaults on the
        // next record, and the deletion would pass unseen.
        .set("allow.auto.create.topics", "false");
    if transactional {
        c.set("transaction.timeout.ms", TRANSACTION_TIMEOUT_MS);
    }
    // Operator properties win over ours (they were set first; set them again).
    for (k, v) in &cfg.properties {
        c.set(k, v.expose());
    }
    c
}

/// The librdkafka settings every client of ours shares (producer, admin, checkpoint loader,
/// ledger tools, tail): bootstrap servers, the `[kafka]` security keys, then the operator's
/// `[kafka.properties]`, which win.
///
/// The returned config holds secrets: never log it (rdkafka's `Debug` prints every value).
pub fn base_client_config(cfg: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.bootstrap_servers);
    c.set("security.protocol", cfg.security_protocol.as_str());
    if let Some(m) = cfg.sasl_mechanism {
        c.set("sasl.mechanism", m.as_str());
    }
    if let Some(u) = &cfg.sasl_username {
        c.set("sasl.username", u);
    }
    if let Some(p) = &cfg.sasl_password {
        c.set("sasl.password", p.expose());
    }
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
    if let Some(p) = &cfg.ssl_ca_location {
        c.set("ssl.ca.location", path(p));
    }
    if let Some(p) = &cfg.ssl_certificate_location {
        c.set("ssl.certificate.location", path(p));
    }
    if let Some(p) = &cfg.ssl_key_location {
        c.set("ssl.key.location", path(p));
    }
    if let Some(p) = &cfg.ssl_key_password {
        c.set("ssl.key.password", p.expose());
    }
    for (k, v) in &cfg.properties {
        c.set(k, v.expose());
    }
    c
}

/// How long one metadata request of [`KafkaSink::reach_brokers`] may take before the
/// client's error callback is consulted again.
const REACH_ATTEMPT: Duration = Duration::from_secs(1);

/// librdkafka client context of the sink's clients: logs client errors through `tracing`
/// and remembers the ones only an operator can fix (authentication, TLS certificates).
#[derive(Clone, Default)]
pub struct AgentContext {
    refused: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl AgentContext {
    /// The first authentication or certificate failure librdkafka reported, if any.
    pub fn refused(&self) -> Option<String> {
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Waits until the brokers answer a metadata request from `client`, for at most `timeout`. A
/// login the brokers refuse is a definite [`SinkError::Auth`] at once, instead of requests that
/// time out (librdkafka reports it only through its error callback and keeps retrying).
/// Blocking: call it from `spawn_blocking` (or `block_in_place`) in async code.
pub fn reach<C: ClientContext>(
    client: &rdkafka::client::Client<C>,
    context: &AgentContext,
    timeout: Duration,
) -> Result<(), SinkError> {
    let started = std::time::Instant::now();
    loop {
        let answer = client.fetch_metadata(None, REACH_ATTEMPT).map(drop);
        if let Some(why) = context.refused() {
            return Err(SinkError::Auth(why));
        }
        match answer {
            Ok(()) => return Ok(()),
            Err(e) if started.elapsed() >= timeout => {
                return Err(SinkError::Client(format!("brokers unreachable: {e}")))
            }
            Err(_) => {}
        }
    }
}

impl ClientContext for AgentContext {
    fn error(&self, error: KafkaError, reason: &str) {
        let definite = match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::Authentication) => true,
            Some(RDKafkaErrorCode::SSL) => crate::net::tls::is_certificate_failure(reason),
            _ => false,
        };
        if definite {
            tracing::error!(error = %error, reason, "kafka refused the connection");
            self.refused
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert_with(|| reason.to_string());
        } else {
            tracing::warn!(error = %error, reason, "kafka client error");
        }
    }
}
