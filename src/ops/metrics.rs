//! Prometheus metrics (`/metrics`), every name prefixed `cdc_agent_`; the table of names and
//! meanings is docs/operations.md.
//!
//! ```text
//!  Metrics (one per process: the registry and every metric family)
//!    ├─ SourceMetrics (one per source: handles with the `source` label resolved)
//!    │    └─ TableMetrics (one per table: one counter per op, resolved once at set_table)
//!    └─ RegistryMetrics (schema-registry requests and errors)
//! ```
//!
//! The hot path never formats a label or looks a series up: handles are resolved once (per
//! source, per table) and each event costs a few relaxed atomic adds. Values that are cheaper
//! to read than to maintain (lag seconds, RSS, per-source state) are filled in at scrape time
//! by [`crate::ops::status::Health::refresh_metrics`].
//!
//! Built on `prometheus-client` rather than the `metrics` facade with its Prometheus exporter:
//! that exporter keeps every histogram sample in memory until the next scrape or upkeep, which
//! at tens of thousands of produced records per second is memory we do not want to spend,
//! whereas a `prometheus-client` histogram is a fixed array of atomic buckets. An explicit
//! registry (no global recorder) also keeps tests and several agents in one process apart.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::event::Op;

/// Content type of the text [`Metrics::render`] produces.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Smallest bucket of the produce-latency histogram, in seconds (1 ms); buckets double from
/// there up to ~33 s, which covers a broker that is retrying a record.
const LATENCY_FIRST_BUCKET_S: f64 = 0.001;
/// Number of produce-latency buckets.
const LATENCY_BUCKETS: u16 = 16;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabels {
    source: String,
    table: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    source: String,
    table: String,
    op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeadLetterLabels {
    source: String,
    table: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TxnLabels {
    source: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    source: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegistryLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegistryErrorLabels {
    operation: &'static str,
    kind: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;
type FloatCounter = Counter<f64, AtomicU64>;

/// Every metric of the process and the registry that renders them.
pub struct Metrics {
    registry: Registry,
    events: Family<EventLabels, Counter>,
    event_bytes: Family<TableLabels, Counter>,
    dead_letters: Family<DeadLetterLabels, Counter>,
    produce_latency: Family<SourceLabels, Histogram>,
    in_flight: Family<SourceLabels, Gauge>,
    acked_records: Family<SourceLabels, Counter>,
    kafka_wait: Family<SourceLabels, FloatCounter>,
    kafka_transactions: Family<TxnLabels, Counter>,
    txn_duration: Family<SourceLabels, Histogram>,
    txn_records: Family<SourceLabels, Histogram>,
    lag_bytes: Family<SourceLabels, Gauge>,
    lag_seconds: Family<SourceLabels, FloatGauge>,
    snapshot_rows: Family<SourceLabels, Counter>,
    snapshot_progress: Family<SourceLabels, FloatGauge>,
    source_state: Family<StateLabels, Gauge>,
    source_ready: Family<SourceLabels, Gauge>,
    source_retries: Family<SourceLabels, Counter>,
    registry_requests: Family<RegistryLabels, Counter>,
    registry_errors: Family<RegistryErrorLabels, Counter>,
    pub(crate) rss: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Transaction durations: 10 ms to about 11 minutes (the transaction timeout is 15).
fn txn_duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 17))
}

/// Records per transaction: 1 to about 1M.
fn txn_records_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 4.0, 11))
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(
        LATENCY_FIRST_BUCKET_S,
        2.0,
        LATENCY_BUCKETS,
    ))
}

impl Metrics {
    /// A registry with every `cdc_agent_*` metric registered (and no series yet).
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("cdc_agent");
        let m = Metrics {
            registry: Registry::default(),
            events: Family::default(),
            event_bytes: Family::default(),
            dead_letters: Family::default(),
            produce_latency: Family::new_with_constructor(latency_histogram),
            in_flight: Family::default(),
            acked_records: Family::default(),
            kafka_wait: Family::default(),
            kafka_transactions: Family::default(),
            txn_duration: Family::new_with_constructor(txn_duration_histogram),
            txn_records: Family::new_with_constructor(txn_records_histogram),
            lag_bytes: Family::default(),
            lag_seconds: Family::default(),
            snapshot_rows: Family::default(),
            snapshot_progress: Family::default(),
            source_state: Family::default(),
            source_ready: Family::default(),
            source_retries: Family::default(),
            registry_requests: Family::default(),
            registry_errors: Family::default(),
            rss: Gauge::default(),
        };
        registry.register(
            "events",
            "Change events published to table topics, by source, table and op (c, u, d, r, t)",
            m.events.clone(),
        );
        registry.register_with_unit(
            "event",
            "Encoded key and value bytes of the events published to table topics",
            Unit::Bytes,
            m.event_bytes.clone(),
        );
        registry.register(
            "dead_letter_records",
            "Events sent to the dead-letter topic instead of their table topic, by source, \
             table and reason (too_large, schema_rejected)",
            m.dead_letters.clone(),
        );
        registry.register_with_unit(
            "produce_latency",
            "Time from handing a record to the Kafka producer to the broker's acknowledgement (one record in 64 sampled)",
            Unit::Seconds,
            m.produce_latency.clone(),
        );
        registry.register(
            "in_flight_records",
            "Records handed to Kafka and not yet acknowledged (bounded by the sink)",
            m.in_flight.clone(),
        );
        registry.register(
            "kafka_acked_records",
            "Records Kafka acknowledged (every kind: table, tombstone, ledger, offsets)",
            m.acked_records.clone(),
        );
        registry.register_with_unit(
            "kafka_wait",
            "Time the source's pipeline stood waiting on Kafka: for room in the in-flight bound, \
             for deliveries before a commit, for the previous commit. Backpressure: a share of \
             wall time near 1 means Kafka sets the pace",
            Unit::Seconds,
            m.kafka_wait.clone(),
        );
        registry.register(
            "kafka_transactions",
            "Kafka transactions ended, by outcome (committed, aborted); exactly-once only",
            m.kafka_transactions.clone(),
        );
        registry.register_with_unit(
            "kafka_transaction_duration",
            "How long committed Kafka transactions were open: first record sent to commit \
             acknowledged (read_committed readers of their topics wait that long at most)",
            Unit::Seconds,
            m.txn_duration.clone(),
        );
        registry.register(
            "kafka_transaction_records",
            "Records per committed Kafka transaction",
            m.txn_records.clone(),
        );
        registry.register_with_unit(
            "source_lag",
            "Source log (PostgreSQL WAL, MySQL binlog) bytes between the server's end and the \
             position Kafka acknowledged; absent when the source cannot tell",
            Unit::Bytes,
            m.lag_bytes.clone(),
        );
        registry.register_with_unit(
            "source_lag",
            "Age of the oldest committed source change not yet acknowledged by Kafka \
             (MySQL: seconds behind the source); 0 when caught up",
            Unit::Seconds,
            m.lag_seconds.clone(),
        );
        registry.register(
            "snapshot_rows",
            "Rows read by the initial snapshot",
            m.snapshot_rows.clone(),
        );
        registry.register(
            "snapshot_progress_ratio",
            "Initial snapshot progress, 0 to 1 (rows read / estimated rows)",
            m.snapshot_progress.clone(),
        );
        registry.register(
            "source_state",
            "1 for the state each source is in, 0 for the others",
            m.source_state.clone(),
        );
        registry.register(
            "source_ready",
            "1 when the source is streaming with its lag under http.ready_max_lag_seconds",
            m.source_ready.clone(),
        );
        registry.register(
            "source_retries",
            "Transient source failures retried (database, Kafka or registry unavailable)",
            m.source_retries.clone(),
        );
        registry.register(
            "registry_requests",
            "HTTP requests to the schema registry, by operation",
            m.registry_requests.clone(),
        );
        registry.register(
            "registry_errors",
            "Failed schema-registry requests, by operation and kind (unavailable, \
             incompatible, refused)",
            m.registry_errors.clone(),
        );
        registry.register_with_unit(
            "process_resident_memory",
            "Resident set size of the agent process",
            Unit::Bytes,
            m.rss.clone(),
        );
        Arc::new(Metrics { registry, ..m })
    }

    /// Handles of one source, its label resolved once.
    pub fn source(self: &Arc<Self>, source: &str) -> SourceMetrics {
        let l = SourceLabels {
            source: source.to_string(),
        };
        let txn = |outcome| {
            self.kafka_transactions.get_or_create_owned(&TxnLabels {
                source: source.to_string(),
                outcome,
            })
        };
        SourceMetrics {
            source: source.to_string(),
            metrics: Some(self.clone()),
            in_flight: self.in_flight.get_or_create_owned(&l),
            acked_records: self.acked_records.get_or_create_owned(&l),
            kafka_wait: self.kafka_wait.get_or_create_owned(&l),
            produce_latency: self.produce_latency.get_or_create_owned(&l),
            txn_committed: txn("committed"),
            txn_duration: self.txn_duration.get_or_create_owned(&l),
            txn_records: self.txn_records.get_or_create_owned(&l),
            txn_aborted: txn("aborted"),
            snapshot_rows: self.snapshot_rows.get_or_create_owned(&l),
            snapshot_progress: self.snapshot_progress.get_or_create_owned(&l),
            retries: self.source_retries.get_or_create_owned(&l),
        }
    }

    /// Handles of the schema-registry client.
    pub fn registry(&self) -> RegistryMetrics {
        let req = |operation| {
            self.registry_requests
                .get_or_create_owned(&RegistryLabels { operation })
        };
        let err = |operation, kind| {
            self.registry_errors
                .get_or_create_owned(&RegistryErrorLabels { operation, kind })
        };
        RegistryMetrics {
            register: req("register"),
            lookup: req("schema_by_id"),
            register_unavailable: err("register", "unavailable"),
            register_incompatible: err("register", "incompatible"),
            register_refused: err("register", "refused"),
            lookup_unavailable: err("schema_by_id", "unavailable"),
            lookup_refused: err("schema_by_id", "refused"),
        }
    }

    pub(crate) fn set_source_state(&self, source: &str, current: &'static str, ready: bool) {
        for state in super::state::STATE_NAMES {
            self.source_state
                .get_or_create(&StateLabels {
                    source: source.to_string(),
                    state,
                })
                .set(i64::from(state == current));
        }
        self.source_ready
            .get_or_create(&SourceLabels {
                source: source.to_string(),
            })
            .set(i64::from(ready));
    }

    pub(crate) fn set_lag(&self, source: &str, bytes: Option<u64>, seconds: f64) {
        let l = SourceLabels {
            source: source.to_string(),
        };
        match bytes {
            Some(b) => {
                self.lag_bytes
                    .get_or_create(&l)
                    .set(i64::try_from(b).unwrap_or(i64::MAX));
            }
            None => {
                self.lag_bytes.remove(&l);
            }
        }
        self.lag_seconds.get_or_create(&l).set(seconds);
    }

    /// The OpenMetrics text exposition of every metric (see [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// One source's metric handles. Cheap to clone; [`SourceMetrics::detached`] gives handles
/// that count into nothing (tools and unit tests).
#[derive(Clone, Debug)]
pub struct SourceMetrics {
    source: String,
    metrics: Option<Arc<Metrics>>,
    pub(crate) in_flight: Gauge,
    pub(crate) acked_records: Counter,
    /// Seconds the pipeline waited on Kafka.
    pub(crate) kafka_wait: FloatCounter,
    pub(crate) produce_latency: Histogram,
    pub(crate) txn_committed: Counter,
    pub(crate) txn_aborted: Counter,
    pub(crate) txn_duration: Histogram,
    pub(crate) txn_records: Histogram,
    pub(crate) snapshot_rows: Counter,
    pub(crate) snapshot_progress: FloatGauge,
    pub(crate) retries: Counter,
}

impl SourceMetrics {
    /// Handles registered nowhere.
    pub fn detached() -> Self {
        Self {
            source: String::new(),
            metrics: None,
            in_flight: Gauge::default(),
            acked_records: Counter::default(),
            kafka_wait: FloatCounter::default(),
            produce_latency: latency_histogram(),
            txn_committed: Counter::default(),
            txn_aborted: Counter::default(),
            txn_duration: txn_duration_histogram(),
            txn_records: txn_records_histogram(),
            snapshot_rows: Counter::default(),
            snapshot_progress: FloatGauge::default(),
            retries: Counter::default(),
        }
    }

    /// Handles of one table (`schema.table`), resolved once when the table is first seen.
    pub fn table(&self, table: &str) -> TableMetrics {
        let Some(m) = &self.metrics else {
            return TableMetrics::detached();
        };
        let ev = |op: Op| {
            m.events.get_or_create_owned(&EventLabels {
                source: self.source.clone(),
                table: table.to_string(),
                op: op.code(),
            })
        };
        TableMetrics {
            events: [
                ev(Op::Create),
                ev(Op::Update),
                ev(Op::Delete),
                ev(Op::Read),
                ev(Op::Truncate),
            ],
            bytes: m.event_bytes.get_or_create_owned(&TableLabels {
                source: self.source.clone(),
                table: table.to_string(),
            }),
            dead_letters: [DeadReason::TooLarge, DeadReason::SchemaRejected].map(|r| {
                m.dead_letters.get_or_create_owned(&DeadLetterLabels {
                    source: self.source.clone(),
                    table: table.to_string(),
                    reason: r.label(),
                })
            }),
        }
    }
}

/// Why an event went to the dead-letter topic (the metric's `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadReason {
    /// A record larger than its topic takes.
    TooLarge,
    /// The registry rejected the table's schema.
    SchemaRejected,
}

impl DeadReason {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            DeadReason::TooLarge => "too_large",
            DeadReason::SchemaRejected => "schema_rejected",
        }
    }
}

/// One table's counters: one per op, and the bytes.
#[derive(Clone, Debug)]
pub struct TableMetrics {
    events: [Counter; 5],
    bytes: Counter,
    /// By [`DeadReason`]: too large, schema rejected.
    dead_letters: [Counter; 2],
}

impl TableMetrics {
    /// Counters registered nowhere.
    pub fn detached() -> Self {
        Self {
            events: Default::default(),
            bytes: Counter::default(),
            dead_letters: Default::default(),
        }
    }

    /// Counts one event sent to the dead-letter topic.
    pub fn dead_letter(&self, reason: DeadReason) {
        let i = match reason {
            DeadReason::TooLarge => 0,
            DeadReason::SchemaRejected => 1,
        };
        self.dead_letters[i].inc();
    }

    /// Counts one published event of `bytes` encoded key and value bytes.
    #[inline]
    pub fn event(&self, op: Op, bytes: usize) {
        let i = match op {
            Op::Create => 0,
            Op::Update => 1,
            Op::Delete => 2,
            Op::Read => 3,
            Op::Truncate => 4,
        };
        self.events[i].inc();
        self.bytes.inc_by(bytes as u64);
    }
}

/// Schema-registry request and error counters.
#[derive(Clone, Debug, Default)]
pub struct RegistryMetrics {
    pub(crate) register: Counter,
    pub(crate) lookup: Counter,
    pub(crate) register_unavailable: Counter,
    pub(crate) register_incompatible: Counter,
    pub(crate) register_refused: Counter,
    pub(crate) lookup_unavailable: Counter,
    pub(crate) lookup_refused: Counter,
}

/// Resident set size of this process in bytes, from `/proc/self/status` (Linux); `None`
/// elsewhere.
pub fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_counters_render_with_source_table_and_op_labels() {
        let m = Metrics::new();
        let t = m.source("pg-demo").table("public.orders");
        t.event(Op::Create, 100);
        t.event(Op::Create, 50);
        t.event(Op::Delete, 10);
        let text = m.render();
        assert!(
            text.contains(
                "cdc_agent_events_total{source=\"pg-demo\",table=\"public.orders\",op=\"c\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "cdc_agent_event_bytes_total{source=\"pg-demo\",table=\"public.orders\"} 160"
            ),
            "{text}"
        );
    }

    #[test]
    fn dead_letters_render_by_source_table_and_reason() {
        let m = Metrics::new();
        let t = m.source("pg-demo").table("public.big");
        t.dead_letter(DeadReason::TooLarge);
        t.dead_letter(DeadReason::TooLarge);
        t.dead_letter(DeadReason::SchemaRejected);
        let text = m.render();
        for (reason, n) in [("too_large", 2), ("schema_rejected", 1)] {
            let line = format!(
                "cdc_agent_dead_letter_records_total{{source=\"pg-demo\",table=\"public.big\",\
                 reason=\"{reason}\"}} {n}"
            );
            assert!(text.contains(&line), "{line} in\n{text}");
        }
    }

    #[test]
    fn detached_handles_count_into_nothing() {
        let s = SourceMetrics::detached();
        s.table("public.t").event(Op::Update, 1);
        s.in_flight.set(3);
        assert_eq!(s.in_flight.get(), 3);
    }

    #[test]
    fn every_metric_is_documented_and_every_documented_metric_exists() {
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md"),
        )
        .unwrap();
        let documented: std::collections::BTreeSet<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| `cdc_agent_"))
            .filter_map(|l| l.split('`').next())
            .collect();
        assert_eq!(documented.len(), 20, "{documented:?}");
        let health = crate::ops::status::Health::new(Metrics::new());
        let s = health.register("s");
        s.metrics().table("public.t").event(Op::Create, 1);
        s.set_lag(Some(1), None);
        let _ = health.metrics().registry();
        health.refresh_metrics(std::time::Duration::from_secs(1));
        let text = health.metrics().render();
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE cdc_agent_"))
            .filter_map(|l| l.split(' ').next())
            .collect();
        for f in &families {
            assert!(
                documented.contains(f) || documented.contains(format!("{f}_total").as_str()),
                "cdc_agent_{f} is not in docs/operations.md"
            );
        }
        for d in &documented {
            assert!(
                families
                    .iter()
                    .any(|f| f == d || format!("{f}_total") == *d),
                "docs/operations.md lists cdc_agent_{d}, which is not exported"
            );
        }
    }

    #[test]
    fn resident_memory_is_read_on_linux() {
        assert!(resident_memory_bytes().is_some_and(|b| b > 0));
    }
}
