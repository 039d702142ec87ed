//! Shared parts of the exactly-once tests: reading (id, v) changes back
//! read_committed, and counting lost, duplicated and out-of-order changes.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use apache_avro::types::Value as Avro;
use rdkafka::consumer::BaseConsumer;
use rdkafka::Message;

use super::agent::{field, unwrap_union, AvroDecoder};
use super::kafka;

pub fn int(v: &Avro) -> i64 {
    match unwrap_union(v) {
        Avro::Int(i) => i64::from(*i),
        Avro::Long(l) => *l,
        other => panic!("not an int: {other:?}"),
    }
}

/// (id, v, op) of every change event in `topic`, in offset order per partition, decoded through
/// the registry. Reads read_committed until every key of `final_state` reached its final
/// value, or `timeout` passes.
pub fn changes(
    topic: &str,
    final_state: &HashMap<i64, i64>,
    timeout: Duration,
) -> Vec<(i64, i64, char)> {
    let consumer = read_committed_from_start(topic, "eos-reader");
    let mut dec = AvroDecoder::new();
    let mut out = Vec::new();
    let mut reached = HashSet::new();
    let start = Instant::now();
    while reached.len() < final_state.len() && start.elapsed() < timeout {
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.unwrap();
        let Some(payload) = m.payload() else { continue };
        let v = dec.decode(payload);
        let after = unwrap_union(field(&v, "after"));
        if matches!(after, Avro::Null) {
            continue;
        }
        let op = match field(&v, "op") {
            Avro::String(s) => s.chars().next().unwrap_or('?'),
            _ => '?',
        };
        let (id, val) = (int(field(after, "id")), int(field(after, "v")));
        if final_state.get(&id) == Some(&val) {
            reached.insert(id);
        }
        out.push((id, val, op));
    }
    out
}

/// What [`tally`] counted: changes lost, seen twice, seen out of order, and keys that are not
/// in the table; events read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub lost: usize,
    pub dup: usize,
    pub out_of_order: usize,
    pub unexpected: usize,
    pub events: usize,
}

/// Checks the changes seen against the table's final state (`id → final v`, where every
/// update added 1 to v): per key the values seen must run without gap from where the key
/// entered the topic to its final value, each exactly once, in order. A key enters with a
/// snapshot read (`r`, any value), an insert (`c`, v = 0), or — snapshots run in chunks while
/// streaming (docs/snapshots.md) — an update streamed before the key's chunk was read, in
/// which case its snapshot read must follow — unless the update fell inside the chunk's
/// window, which drops the read: so a key that existed when the stream started may enter
/// with an update alone (the writers insert ids in increasing order, so those keys are the
/// ones below the first key whose insert was streamed). A snapshot read after other events of its key
/// repeats the key's current state: it must equal the value seen last (anything else is
/// out of order) and is not a duplicate change; a second read of a key is. Prints and asserts
/// lost = dup = out_of_order = 0.
pub fn check(name: &str, seen: &[(i64, i64, char)], final_state: &HashMap<i64, i64>) {
    let t = tally(seen, final_state);
    println!(
        "{name}: lost={} dup={} out_of_order={} unexpected_keys={} events={}",
        t.lost, t.dup, t.out_of_order, t.unexpected, t.events
    );
    assert_eq!(
        (t.lost, t.dup, t.out_of_order, t.unexpected),
        (0, 0, 0, 0),
        "{name}"
    );
}

/// The counts [`check`] asserts on, without asserting (at-least-once delivery may duplicate).
pub fn tally(seen: &[(i64, i64, char)], final_state: &HashMap<i64, i64>) -> Tally {
    let mut per_key: HashMap<i64, Vec<(i64, char)>> = HashMap::new();
    for (id, v, op) in seen {
        per_key.entry(*id).or_default().push((*v, *op));
    }
    let (mut lost, mut dup, mut out_of_order, mut unexpected) = (0usize, 0usize, 0usize, 0usize);
    // Keys below the first streamed insert existed when the stream started.
    let first_insert = per_key
        .iter()
        .filter(|(_, vs)| vs[0] == (0, 'c'))
        .map(|(id, _)| *id)
        .min();
    for (id, final_v) in final_state {
        let Some(vs) = per_key.get(id) else {
            lost += 1 + *final_v as usize;
            continue;
        };
        let (first, first_op) = vs[0];
        let existed = first_insert.is_some_and(|f| *id < f);
        let streamed_before_read =
            first_op == 'u' && (existed || vs.iter().any(|(_, op)| *op == 'r'));
        if first_op != 'r' && first != 0 && !streamed_before_read {
            lost += first as usize; // versions before the first seen never arrived
        }
        let mut distinct = HashSet::new();
        let mut prev = None;
        let mut read = false;
        for (v, op) in vs {
            if *op == 'r' {
                // One snapshot, one read per key: a second is a duplicate.
                if std::mem::replace(&mut read, true) {
                    dup += 1;
                    continue;
                }
                if prev.is_some() {
                    // The snapshot read of a key already streamed: the state it had then.
                    if prev != Some(*v) {
                        out_of_order += 1;
                    }
                    continue;
                }
            }
            if !distinct.insert(*v) {
                dup += 1;
            }
            if prev.is_some_and(|p| *v <= p) {
                out_of_order += 1;
            }
            prev = Some(*v);
        }
        for v in first..=*final_v {
            if !distinct.contains(&v) {
                lost += 1;
            }
        }
    }
    for id in per_key.keys() {
        if !final_state.contains_key(id) {
            unexpected += 1;
        }
    }
    Tally {
        lost,
        dup,
        out_of_order,
        unexpected,
        events: seen.len(),
    }
}

/// A read_committed consumer of the stack's Kafka assigned to every partition of `topic` from
/// the beginning (no group membership: nothing is committed).
pub fn read_committed_from_start(topic: &str, group_prefix: &str) -> BaseConsumer {
    let settings = [("fetch.wait.max.ms", "10")];
    kafka::from_start(topic, group_prefix, &settings, Duration::from_secs(10)).0
}

/// Reads the table topic and the event store back (each until it holds `final_state` or
/// `timeout` passes) and [`check`]s both: every change exactly once, in order, in both.
pub fn check_table_and_ledger(
    what: &str,
    table_topic: &str,
    ledger_topic: &str,
    final_state: &HashMap<i64, i64>,
    timeout: Duration,
) {
    let seen = changes(table_topic, final_state, timeout);
    check(&format!("table topic{what}"), &seen, final_state);
    let ledger = changes(ledger_topic, final_state, timeout);
    check(&format!("event store{what}"), &ledger, final_state);
}
