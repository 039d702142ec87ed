//! An in-memory [`Sink`] for unit tests of the pipeline: a "broker" shared between sinks
//! (so it survives a simulated crash and restart) that keeps what read_committed readers
//! would see, transactions with fencing by epoch, and injectable commit failures.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{OutRecord, Sink, SinkError};
use crate::ops::status::SourceStatus;

/// One record as the broker keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Topic.
    pub topic: String,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value (`None`: tombstone).
    pub value: Option<Vec<u8>>,
}

/// What the broker holds.
#[derive(Debug, Default)]
pub struct Broker {
    /// Records visible to read_committed readers, in order.
    pub log: Vec<Stored>,
    /// Sizes of the committed transactions, in order.
    pub transactions: Vec<usize>,
    /// The transactional id's epoch: a sink whose epoch is older is fenced.
    pub epoch: u64,
    /// Fail this many of the next commits with an abort.
    pub fail_commits: usize,
}

impl Broker {
    /// A broker shared by the sinks of a test.
    pub fn shared() -> Arc<Mutex<Broker>> {
        Arc::new(Mutex::new(Broker::default()))
    }
}

enum Entry<P> {
    Record,
    Mark(P),
}

/// A sink writing into a [`Broker`]; acknowledgements are immediate.
pub struct MemorySink<P> {
    broker: Arc<Mutex<Broker>>,
    transactional: bool,
    epoch: u64,
    open: Option<(Vec<Stored>, Instant)>,
    pending: Option<P>,
    unacked: VecDeque<Entry<P>>,
    acked: Option<P>,
    topics: HashSet<String>,
}

impl<P> MemorySink<P> {
    /// A sink on `broker`, transactional (exactly-once) or not.
    pub fn new(broker: &Arc<Mutex<Broker>>, transactional: bool) -> Self {
        Self {
            broker: broker.clone(),
            transactional,
            epoch: 0,
            open: None,
            pending: None,
            unacked: VecDeque::new(),
            acked: None,
            topics: HashSet::new(),
        }
    }

    fn broker(&self) -> std::sync::MutexGuard<'_, Broker> {
        self.broker.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<P: Clone + Send> Sink for MemorySink<P> {
    type Position = P;

    fn set_status(&mut self, _status: SourceStatus) {}

    async fn ensure_topic(&mut self, topic: &str, _c: &[(&str, &str)]) -> Result<(), SinkError> {
        self.topics.insert(topic.to_string());
        Ok(())
    }

    async fn init_transactions(&mut self) -> Result<(), SinkError> {
        if self.transactional {
            let mut b = self.broker();
            b.epoch += 1;
            let epoch = b.epoch;
            drop(b);
            self.epoch = epoch;
        }
        Ok(())
    }

    async fn send(&mut self, rec: OutRecord<'_>) -> Result<(), SinkError> {
        let stored = Stored {
            topic: rec.topic.to_string(),
            key: rec.key.map(<[u8]>::to_vec),
            value: rec.value.map(<[u8]>::to_vec),
        };
        if self.transactional {
            self.open
                .get_or_insert_with(|| (Vec::new(), Instant::now()))
                .0
                .push(stored);
        } else {
            self.broker().log.push(stored);
            self.unacked.push_back(Entry::Record);
        }
        Ok(())
    }

    fn mark(&mut self, position: P) {
        if self.transactional {
            self.pending = Some(position);
        } else {
            self.unacked.push_back(Entry::Mark(position));
        }
    }

    fn acked(&mut self) -> Result<Option<P>, SinkError> {
        while let Some(e) = self.unacked.pop_front() {
            if let Entry::Mark(p) = e {
                self.acked = Some(p);
            }
        }
        Ok(self.acked.clone())
    }

    async fn progress(&mut self) -> Result<Option<P>, SinkError> {
        self.acked()
    }

    fn in_flight(&self) -> usize {
        self.unacked.len()
    }

    fn txn_open(&self) -> bool {
        self.open.is_some()
    }

    fn txn_records(&self) -> usize {
        self.open.as_ref().map_or(0, |(r, _)| r.len())
    }

    fn txn_age(&self) -> Duration {
        self.open
            .as_ref()
            .map_or(Duration::ZERO, |(_, t)| t.elapsed())
    }

    fn commit_running(&mut self) -> Result<bool, SinkError> {
        Ok(false)
    }

    async fn commit(&mut self) -> Result<Option<P>, SinkError> {
        let Some((records, _)) = self.open.take() else {
            return self.acked();
        };
        let position = self.pending.take();
        let mut b = self.broker.lock().unwrap_or_else(|p| p.into_inner());
        if b.epoch != self.epoch {
            return Err(SinkError::Fenced(format!(
                "epoch {} is older than the broker's {}",
                self.epoch, b.epoch
            )));
        }
        if b.fail_commits > 0 {
            b.fail_commits -= 1;
            return Err(SinkError::Aborted(
                "commit transaction: injected failure".into(),
            ));
        }
        b.transactions.push(records.len());
        b.log.extend(records);
        drop(b);
        if position.is_some() {
            self.acked = position;
        }
        Ok(self.acked.clone())
    }

    async fn drain(&mut self) -> Result<Option<P>, SinkError> {
        if self.transactional {
            self.commit().await
        } else {
            self.acked()
        }
    }
}
