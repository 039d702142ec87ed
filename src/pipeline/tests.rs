//! The pipeline's delivery rules against the in-memory sink and a scripted source: group
//! commit, crash and restart, partial-transaction resume, drain on stop, fencing.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ChangeStream, Pipeline};
use crate::checkpoint::Checkpoint;
use crate::config::SchemaRegistryConfig;
use crate::encode::avro::ConnectorKind;
use crate::error::SourceError;
use crate::ops::status::SourceStatus;
use crate::publish::{PublishConfig, Publisher};
use crate::registry::Registry;
use crate::shutdown::{self, Shutdown, Trigger};
use crate::sink::memory::{Broker, MemorySink};
use crate::sink::{OutRecord, Sink, SinkError, TxnBounds};

const TOPIC: &str = "rows";
const OFFSETS: &str = "test.offsets";

/// The scripted database: source transactions of rows, and the position the database was
/// told is durable (a replication slot's confirmed position: what a restart replays from).
#[derive(Default)]
struct Db {
    txs: Vec<Vec<String>>,
    confirmed: usize,
}

/// The fake source's checkpoint: as PostgreSQL's, the newest fully committed source
/// transaction and how much of an open one Kafka holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Pos {
    last_tx: Option<usize>,
    partial: Option<(usize, usize)>,
}

enum Item {
    Begin(usize),
    Row(usize, usize),
    Commit(usize),
}

/// A source replaying `Db` from its confirmed position, skipping what the checkpoint says
/// Kafka already holds. When it has read everything it triggers shutdown, as an operator
/// would once the backlog is through.
struct Fake {
    db: Arc<Mutex<Db>>,
    items: VecDeque<Item>,
    resume: Pos,
    /// Index of the open transaction and rows of it seen.
    open: Option<(usize, usize)>,
    committed: Option<usize>,
    durable: usize,
    stop: Option<Trigger>,
    /// Fail the n-th report (a crash between the Kafka commit and telling the database).
    fail_report: Option<usize>,
    reports: usize,
}

impl Fake {
    fn new(db: &Arc<Mutex<Db>>, resume: Pos, stop: Trigger) -> Self {
        let d = db.lock().unwrap();
        let mut items = VecDeque::new();
        for (i, tx) in d.txs.iter().enumerate().skip(d.confirmed) {
            items.push_back(Item::Begin(i));
            for r in 0..tx.len() {
                items.push_back(Item::Row(i, r));
            }
            items.push_back(Item::Commit(i));
        }
        let durable = d.confirmed;
        drop(d);
        Self {
            db: db.clone(),
            items,
            resume,
            open: None,
            committed: None,
            durable,
            stop: Some(stop),
            fail_report: None,
            reports: 0,
        }
    }
}

impl ChangeStream for Fake {
    type Position = usize;
    type Checkpoint = Pos;
    type Item = Item;

    async fn recv(&mut self) -> Result<Item, SourceError> {
        match self.items.pop_front() {
            Some(item) => Ok(item),
            None => {
                if let Some(t) = self.stop.take() {
                    t.trigger();
                }
                std::future::pending().await
            }
        }
    }

    async fn handle<S: Sink<Position = usize>>(
        &mut self,
        item: Item,
        out: &mut Pipeline<S>,
        _stop: &mut Shutdown,
    ) -> Result<(), SourceError> {
        match item {
            Item::Begin(i) => self.open = Some((i, 0)),
            Item::Row(i, r) => {
                let seen = self.open.as_mut().map(|(_, n)| {
                    *n += 1;
                    *n
                });
                let skip = self.resume.last_tx.is_some_and(|l| i <= l)
                    || self
                        .resume
                        .partial
                        .is_some_and(|(t, n)| t == i && seen <= Some(n));
                if !skip {
                    let value = self.db.lock().unwrap().txs[i][r].clone();
                    out.send(OutRecord {
                        topic: TOPIC,
                        key: None,
                        value: Some(value.as_bytes()),
                        headers: &[],
                    })
                    .await?;
                }
            }
            Item::Commit(i) => {
                self.open = None;
                self.committed = Some(i);
                // The position after transaction i: a restart replays from there. With nothing
                // waiting to become durable (a replayed transaction Kafka already holds) it is
                // durable at once, as PostgreSQL's keepalive handling makes it.
                if out.settled() {
                    self.durable(i + 1);
                } else {
                    out.mark(i + 1, None).await?;
                }
            }
        }
        Ok(())
    }

    fn checkpoint(&self) -> Checkpoint<Pos> {
        Checkpoint {
            snapshot_done: true,
            position: None,
            source: Pos {
                last_tx: self.committed.or(self.resume.last_tx),
                partial: self.open.filter(|(_, n)| *n > 0),
            },
            snapshot: Default::default(),
            transaction: None,
        }
    }

    fn checkpoint_at(&self, _acked: &usize) -> Option<Checkpoint<Pos>> {
        None
    }

    fn durable(&mut self, position: usize) {
        self.durable = self.durable.max(position);
    }

    async fn report(&mut self) -> Result<(), SourceError> {
        self.reports += 1;
        if self.fail_report == Some(self.reports) {
            return Err(SourceError::transient("connection lost (injected)".into()));
        }
        self.db.lock().unwrap().confirmed = self.durable;
        Ok(())
    }

    async fn delete_outbox(
        &mut self,
        _deletes: &crate::outbox::OutboxDeletes,
    ) -> Result<(), SourceError> {
        Ok(())
    }

    fn between_transactions(&self) -> bool {
        self.open.is_none()
    }

    fn stopped(&self) {}
}

fn db(txs: usize, rows: usize) -> Arc<Mutex<Db>> {
    Arc::new(Mutex::new(Db {
        txs: (0..txs)
            .map(|t| (0..rows).map(|r| format!("{t}.{r}")).collect())
            .collect(),
        confirmed: 0,
    }))
}

fn pipeline(broker: &Arc<Mutex<Broker>>, bounds: Option<TxnBounds>) -> Pipeline<MemorySink<usize>> {
    let registry = Registry::new(&SchemaRegistryConfig {
        url: "http://127.0.0.1:9".into(),
        username: None,
        password: None,
        password_file: None,
        ca_file: None,
    })
    .expect("registry client");
    let publish = PublishConfig {
        source: "test".into(),
        topic_prefix: "test".into(),
        event_store_topic: None,
        event_store_headers: true,
        tombstones: true,
        connector: ConnectorKind::Postgres,
        unavailable_value_placeholder: String::new(),
        topic_routes: Default::default(),
        dead_letter_topic: None,
        table_topic_config: Vec::new(),
        event_store_topic_config: Vec::new(),
        selection: Default::default(),
        transaction_topic: None,
        heartbeat_topic: None,
        outbox: None,
        json: None,
    };
    Pipeline::with_sink(
        Publisher::new(
            publish,
            MemorySink::new(broker, bounds.is_some()),
            Arc::new(registry),
        ),
        OFFSETS.into(),
        "test",
        bounds,
        &SourceStatus::detached("test"),
    )
}

fn bounds(records: usize) -> Option<TxnBounds> {
    Some(TxnBounds {
        max_records: records,
        max_age: Duration::from_secs(60),
    })
}

/// Runs one incarnation of the source: loads the newest checkpoint, streams until the
/// source has read everything (or fails), as a restarted agent would.
async fn run_once(
    broker: &Arc<Mutex<Broker>>,
    db: &Arc<Mutex<Db>>,
    txn_bounds: Option<TxnBounds>,
    fail_report: Option<usize>,
) -> Result<(), SourceError> {
    let mut p = pipeline(broker, txn_bounds);
    p.init_transactions().await?;
    let resume = latest_checkpoint(broker).unwrap_or_default();
    let (trigger, mut stop) = shutdown::channel();
    let mut fake = Fake::new(db, resume, trigger);
    fake.fail_report = fail_report;
    p.stream(&mut fake, &mut stop).await
}

fn latest_checkpoint(broker: &Arc<Mutex<Broker>>) -> Option<Pos> {
    let b = broker.lock().unwrap();
    b.log.iter().rev().find(|r| r.topic == OFFSETS).map(|r| {
        serde_json::from_slice::<Checkpoint<Pos>>(r.value.as_deref().unwrap())
            .unwrap()
            .source
    })
}

fn rows(broker: &Arc<Mutex<Broker>>) -> Vec<String> {
    let b = broker.lock().unwrap();
    b.log
        .iter()
        .filter(|r| r.topic == TOPIC)
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect()
}

fn every_row(db: &Arc<Mutex<Db>>) -> Vec<String> {
    db.lock().unwrap().txs.iter().flatten().cloned().collect()
}

#[tokio::test]
async fn kafka_transactions_close_at_the_record_bound_and_end_with_their_checkpoint() {
    let (broker, db) = (Broker::shared(), db(5, 5));
    run_once(&broker, &db, bounds(4), None).await.unwrap();
    assert_eq!(rows(&broker), every_row(&db));
    let b = broker.lock().unwrap();
    assert!(b.transactions.len() >= 25 / 4, "{:?}", b.transactions);
    // The bound is checked before each record: a transaction holds at most the bound plus
    // its checkpoint.
    assert!(
        b.transactions.iter().all(|&n| n <= 4 + 1),
        "{:?}",
        b.transactions
    );
    let mut at = 0;
    for &n in &b.transactions {
        at += n;
        assert_eq!(
            b.log[at - 1].topic,
            OFFSETS,
            "a transaction ends with its checkpoint"
        );
    }
    drop(b);
    assert_eq!(
        db.lock().unwrap().confirmed,
        5,
        "the database was told everything is durable"
    );
}

#[tokio::test]
async fn a_crash_between_the_kafka_commit_and_the_database_acknowledgement_duplicates_nothing() {
    let (broker, db) = (Broker::shared(), db(4, 3));
    // The first commit succeeds, then telling the database fails: it keeps its old position
    // and the restart replays everything from there.
    let err = run_once(&broker, &db, bounds(1000), Some(1))
        .await
        .unwrap_err();
    assert!(err.is_transient());
    assert_eq!(
        db.lock().unwrap().confirmed,
        0,
        "the database was never told"
    );
    assert!(
        !rows(&broker).is_empty(),
        "the first Kafka transaction committed"
    );
    run_once(&broker, &db, bounds(1000), None).await.unwrap();
    assert_eq!(rows(&broker), every_row(&db), "lost or duplicated rows");
    assert_eq!(db.lock().unwrap().confirmed, 4);
}

#[tokio::test]
async fn a_restart_inside_a_partly_committed_source_transaction_skips_exactly_its_committed_rows() {
    // One source transaction of 10 rows over Kafka transactions of at most 3 records: the
    // crash comes after the second commit, mid-transaction.
    let (broker, db) = (Broker::shared(), db(1, 10));
    let err = run_once(&broker, &db, bounds(3), Some(2))
        .await
        .unwrap_err();
    assert!(err.is_transient());
    let partial = latest_checkpoint(&broker).unwrap().partial;
    assert!(
        matches!(partial, Some((0, n)) if n > 0 && n < 10),
        "the checkpoint says how much of the open transaction is in: {partial:?}"
    );
    run_once(&broker, &db, bounds(3), None).await.unwrap();
    assert_eq!(rows(&broker), every_row(&db), "lost or duplicated rows");
}

#[tokio::test]
async fn stop_drains_everything_read_and_acknowledges_the_final_position() {
    for txn in [None, bounds(50_000)] {
        let (broker, db) = (Broker::shared(), db(3, 4));
        run_once(&broker, &db, txn, None).await.unwrap();
        assert_eq!(
            rows(&broker),
            every_row(&db),
            "exactly-once: {}",
            txn.is_some()
        );
        assert_eq!(
            db.lock().unwrap().confirmed,
            3,
            "exactly-once: {}",
            txn.is_some()
        );
    }
}

#[tokio::test]
async fn a_fenced_producer_stops_without_writing() {
    let (broker, db) = (Broker::shared(), db(2, 2));
    let mut zombie = pipeline(&broker, bounds(100));
    zombie.init_transactions().await.unwrap();
    // Another agent takes over the source: its registration fences the first one.
    let mut successor = pipeline(&broker, bounds(100));
    successor.init_transactions().await.unwrap();
    let (trigger, mut stop) = shutdown::channel();
    let mut fake = Fake::new(&db, Pos::default(), trigger);
    let err = zombie.stream(&mut fake, &mut stop).await.unwrap_err();
    assert!(matches!(err, SourceError::Fenced(_)), "{err}");
    assert!(
        rows(&broker).is_empty(),
        "a fenced producer's records became visible"
    );
    assert_eq!(db.lock().unwrap().confirmed, 0);
}

#[tokio::test]
async fn an_aborted_commit_is_retried_from_the_last_durable_position() {
    let (broker, db) = (Broker::shared(), db(3, 3));
    broker.lock().unwrap().fail_commits = 1;
    let err = run_once(&broker, &db, bounds(4), None).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(rows(&broker).is_empty());
    run_once(&broker, &db, bounds(4), None).await.unwrap();
    assert_eq!(rows(&broker), every_row(&db));
}

#[test]
fn the_sink_error_of_a_fenced_commit_is_not_transient() {
    assert!(!SinkError::Fenced("x".into()).is_transient());
}
