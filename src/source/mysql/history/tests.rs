//! Unit tests of the schema history logic: which definitions hold at a position, what counts
//! as damage, and that records survive their JSON encoding.

use super::*;
use crate::source::mysql::ddl;

const TOPIC: &str = "shop.schema-history";

fn pos(file: u64, p: u64) -> BinlogPosition {
    BinlogPosition {
        file: format!("mariadb-bin.{file:06}"),
        pos: p,
    }
}

fn base_catalog() -> Catalog {
    let mut c = Catalog {
        server_charset: Some("utf8mb4".into()),
        ..Catalog::default()
    };
    c.databases.insert("shop".into(), "utf8mb4".into());
    ddl::apply(
        &mut c,
        Some("shop"),
        "CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(5))",
    )
    .unwrap();
    c
}

fn columns(c: &Catalog, t: &str) -> Vec<String> {
    c.get("shop", t)
        .map(|d| d.columns.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default()
}

/// Snapshot at 1:100, then an ALTER at 1:500 and a RENAME at 2:50.
fn history() -> (SchemaHistory, Vec<HistoryRecord>) {
    let mut h = SchemaHistory::empty("shop");
    let mut cat = base_catalog();
    let mut recs = h.record_snapshot(pos(1, 100), Some("0-1-5".into()), &cat);
    for (p, sql) in [
        (pos(1, 500), "ALTER TABLE t ADD b INT"),
        (pos(2, 50), "RENAME TABLE t TO t2"),
    ] {
        let out = ddl::apply(&mut cat, Some("shop"), sql).unwrap();
        recs.push(h.record(
            p,
            None,
            Some(sql.into()),
            Some("shop".into()),
            &cat,
            &out,
            false,
        ));
    }
    (h, recs)
}

/// The history as another process would load it from the topic.
fn reload(recs: &[HistoryRecord]) -> SchemaHistory {
    let h = SchemaHistory::empty("shop");
    let values: Vec<(String, Vec<u8>)> = recs
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("offset {i}"), h.encode(r).1))
        .collect();
    SchemaHistory::from_values(
        "shop",
        values.iter().map(|(a, v)| (a.clone(), Some(v.as_slice()))),
    )
}

#[test]
fn the_catalog_at_a_position_has_the_definitions_written_before_it() {
    let (h, _) = history();
    assert!(
        h.catalog_at(&pos(1, 99)).tables.is_empty(),
        "before the snapshot nothing is known"
    );
    assert_eq!(columns(&h.catalog_at(&pos(1, 100)), "t"), ["id", "a"]);
    // The ALTER's own position still decodes with the old definition: its event is the change.
    assert_eq!(columns(&h.catalog_at(&pos(1, 500)), "t"), ["id", "a"]);
    assert_eq!(columns(&h.catalog_at(&pos(1, 501)), "t"), ["id", "a", "b"]);
    let late = h.catalog_at(&pos(2, 51));
    assert!(late.get("shop", "t").is_none());
    assert_eq!(columns(&late, "t2"), ["id", "a", "b"]);
    assert_eq!(
        late.databases.get("shop").map(String::as_str),
        Some("utf8mb4")
    );
    assert_eq!(late.server_charset.as_deref(), Some("utf8mb4"));
}

#[test]
fn records_survive_their_json_encoding() {
    let (h, recs) = history();
    let (key, value) = h.encode(&recs[1]);
    assert_eq!(key, b"shop");
    let back: HistoryRecord = serde_json::from_slice(&value).unwrap();
    assert_eq!(back, recs[1]);
    let loaded = reload(&recs);
    assert_eq!(loaded.records(), h.records());
    assert_eq!(loaded.last_seq(), Some(3));
    loaded.verify(Some(3), TOPIC).unwrap();
    for p in [pos(1, 100), pos(1, 501), pos(3, 1)] {
        assert_eq!(loaded.catalog_at(&p), h.catalog_at(&p));
    }
}

#[test]
fn sequence_numbers_continue_after_a_reload_and_after_a_rebuild() {
    let (_, recs) = history();
    let mut loaded = reload(&recs);
    let cat = loaded.catalog_at(&pos(3, 1));
    let out = DdlOutcome::Changed {
        tables: vec![("shop".into(), "t2".into())],
        dropped: vec![],
    };
    let r = loaded.record(
        pos(3, 10),
        None,
        Some("ALTER …".into()),
        None,
        &cat,
        &out,
        false,
    );
    assert_eq!(r.seq, 4);
    let mut rebuilt = SchemaHistory::empty("shop");
    rebuilt.continue_after(9);
    let parts = rebuilt.record_snapshot(pos(4, 4), None, &cat);
    assert_eq!(parts[0].seq, 10);
    rebuilt.verify(Some(9), TOPIC).unwrap();
}

#[test]
fn a_replayed_ddl_is_recognised_by_its_position() {
    let (h, _) = history();
    assert!(h.contains(&pos(1, 500)));
    assert!(h.contains(&pos(2, 50)));
    assert!(!h.contains(&pos(1, 100)), "a snapshot is not a DDL record");
    assert!(!h.contains(&pos(1, 501)));
}

#[test]
fn a_new_snapshot_starts_a_new_epoch() {
    let (mut h, _) = history();
    let mut fresh = Catalog::default();
    ddl::apply(&mut fresh, Some("shop"), "CREATE TABLE n (x INT)").unwrap();
    h.record_snapshot(pos(5, 4), None, &fresh);
    let at = h.catalog_at(&pos(5, 4));
    assert_eq!(at.tables.len(), 1);
    assert_eq!(columns(&at, "n"), ["x"]);
    // An older position still decodes with the old epoch.
    assert_eq!(columns(&h.catalog_at(&pos(1, 501)), "t"), ["id", "a", "b"]);
    h.verify(None, TOPIC).unwrap();
}

#[test]
fn a_large_catalog_is_split_into_several_snapshot_records() {
    let mut cat = Catalog::default();
    for i in 0..400 {
        let cols: Vec<String> = (0..40)
            .map(|c| format!("column_number_{c} VARCHAR(20)"))
            .collect();
        ddl::apply(
            &mut cat,
            Some("shop"),
            &format!("CREATE TABLE t{i} ({})", cols.join(", ")),
        )
        .unwrap();
    }
    let mut h = SchemaHistory::empty("shop");
    let parts = h.record_snapshot(pos(1, 4), None, &cat);
    assert!(parts.len() > 1, "{} part(s)", parts.len());
    for p in &parts {
        assert!(
            h.encode(p).1.len() < 1_000_000,
            "{} bytes",
            h.encode(p).1.len()
        );
    }
    assert!(parts.iter().skip(1).all(|p| p.continues && p.snapshot));
    let loaded = reload(&parts);
    loaded.verify(Some(parts.len() as u64), TOPIC).unwrap();
    assert_eq!(loaded.catalog_at(&pos(1, 4)).tables, cat.tables);
}

#[test]
fn an_empty_history_is_fine_until_a_checkpoint_says_records_were_committed() {
    let h = SchemaHistory::empty("shop");
    h.verify(None, TOPIC).unwrap();
    h.verify(Some(0), TOPIC).unwrap();
    let e = h.verify(Some(4), TOPIC).unwrap_err();
    assert!(
        matches!(e, HistoryError::Missing { expected: 4, .. }),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains(TOPIC) && msg.contains("schema_history_recovery"),
        "{msg}"
    );
    assert!(msg.contains("snapshot"), "{msg}");
}

#[test]
fn fewer_records_than_the_checkpoint_says_are_a_truncation() {
    let (_, recs) = history();
    let loaded = reload(&recs[..2]);
    let e = loaded.verify(Some(3), TOPIC).unwrap_err();
    assert_eq!(
        e,
        HistoryError::Truncated {
            topic: TOPIC.into(),
            have: 2,
            expected: 3
        }
    );
    // More records than the checkpoint knows (at-least-once) are fine.
    reload(&recs).verify(Some(2), TOPIC).unwrap();
}

#[test]
fn a_missing_record_in_the_middle_or_at_the_start_is_a_gap() {
    let (_, recs) = history();
    let e = reload(&[recs[0].clone(), recs[2].clone()])
        .verify(Some(3), TOPIC)
        .unwrap_err();
    assert!(
        matches!(
            e,
            HistoryError::Gap {
                after: 1,
                missing: 2,
                found: 3,
                ..
            }
        ),
        "{e}"
    );
    let e = reload(&recs[1..]).verify(Some(3), TOPIC).unwrap_err();
    assert!(matches!(e, HistoryError::Gap { after: 0, .. }), "{e}");
}

#[test]
fn unreadable_or_foreign_records_are_damage() {
    let (h, recs) = history();
    let good: Vec<Vec<u8>> = recs.iter().map(|r| h.encode(r).1).collect();
    let load = |vals: Vec<Option<Vec<u8>>>| {
        SchemaHistory::from_values(
            "shop",
            vals.iter()
                .enumerate()
                .map(|(i, v)| (format!("offset {i}"), v.as_deref())),
        )
    };
    let e = load(vec![Some(good[0].clone()), Some(b"{not json".to_vec())])
        .verify(None, TOPIC)
        .unwrap_err();
    assert!(
        matches!(&e, HistoryError::Damaged { detail, .. } if detail.contains("offset 1")),
        "{e}"
    );
    let e = load(vec![Some(good[0].clone()), None])
        .verify(None, TOPIC)
        .unwrap_err();
    assert!(matches!(e, HistoryError::Damaged { .. }), "{e}");
    let mut other = recs[1].clone();
    other.source = "billing".into();
    let e = load(vec![
        Some(good[0].clone()),
        Some(serde_json::to_vec(&other).unwrap()),
    ])
    .verify(None, TOPIC)
    .unwrap_err();
    assert!(
        matches!(e, HistoryError::Foreign { what: "source", .. }),
        "{e}"
    );
}

#[test]
fn a_duplicate_record_is_harmless_but_a_different_one_under_the_same_number_is_not() {
    let (h, recs) = history();
    let mut vals: Vec<Vec<u8>> = recs.iter().map(|r| h.encode(r).1).collect();
    vals.insert(2, vals[1].clone());
    let dup = SchemaHistory::from_values(
        "shop",
        vals.iter().map(|v| (String::new(), Some(v.as_slice()))),
    );
    dup.verify(Some(3), TOPIC).unwrap();
    assert_eq!(dup.records().len(), 3);
    let mut changed = recs[1].clone();
    changed.ddl = Some("ALTER TABLE t ADD c INT".into());
    vals[2] = serde_json::to_vec(&changed).unwrap();
    let e = SchemaHistory::from_values(
        "shop",
        vals.iter().map(|v| (String::new(), Some(v.as_slice()))),
    )
    .verify(Some(3), TOPIC)
    .unwrap_err();
    assert!(matches!(e, HistoryError::Damaged { .. }), "{e}");
}

#[test]
fn positions_going_back_without_a_snapshot_are_damage() {
    let (_, mut recs) = history();
    recs[2].position = pos(1, 10);
    let e = reload(&recs).verify(Some(3), TOPIC).unwrap_err();
    assert!(matches!(e, HistoryError::Damaged { .. }), "{e}");
}

#[test]
fn records_of_another_server_are_refused() {
    let mut h = SchemaHistory::empty("shop");
    h.set_server(Some("11".into()));
    h.record_snapshot(pos(1, 4), None, &base_catalog());
    h.verify_server("11", None, TOPIC).unwrap();
    let e = h.verify_server("12", None, TOPIC).unwrap_err();
    assert!(
        matches!(e, HistoryError::Foreign { what: "server", .. }),
        "{e}"
    );
}

#[test]
fn damage_before_a_new_snapshot_does_not_block_the_new_epoch() {
    let (h, recs) = history();
    let mut vals: Vec<Option<Vec<u8>>> = recs.iter().map(|r| Some(h.encode(r).1)).collect();
    vals.push(Some(b"garbage".to_vec()));
    let old = SchemaHistory::from_values(
        "shop",
        vals.iter()
            .enumerate()
            .map(|(i, v)| (format!("offset {i}"), v.as_deref())),
    );
    assert!(old.verify(Some(3), TOPIC).is_err());
    // The operator re-snapshots: the new epoch follows the damaged record.
    let mut again = old.clone();
    let snap = again.record_snapshot(pos(9, 4), None, &base_catalog());
    assert_eq!(snap[0].seq, 4);
    vals.extend(snap.iter().map(|r| Some(again.encode(r).1)));
    let reloaded = SchemaHistory::from_values(
        "shop",
        vals.iter()
            .enumerate()
            .map(|(i, v)| (format!("offset {i}"), v.as_deref())),
    );
    reloaded.verify(Some(4), TOPIC).unwrap();
    // The old epoch is still damaged for a checkpoint that points into it.
    assert!(reloaded.verify(Some(3), TOPIC).is_err());
}

#[test]
fn after_a_failover_each_server_reads_only_its_own_epochs() {
    let mut h = SchemaHistory::empty("shop");
    h.set_server(Some("1".into()));
    let mut cat = base_catalog();
    let mut recs = h.record_snapshot(pos(7, 100), None, &cat);
    let out = ddl::apply(&mut cat, Some("shop"), "ALTER TABLE t ADD b INT").unwrap();
    recs.push(h.record(pos(7, 500), None, None, None, &cat, &out, false));
    // Failover: the new server's epoch starts with the catalog at the resume point; its file
    // numbers are lower than the old server's, which must not matter.
    h.set_server(Some("2".into()));
    let replica = |p| BinlogPosition {
        file: "replica-bin.000001".into(),
        pos: p,
    };
    recs.extend(h.record_snapshot(replica(4), None, &cat));
    let out = ddl::apply(&mut cat, Some("shop"), "ALTER TABLE t ADD c INT").unwrap();
    recs.push(h.record(replica(900), None, None, None, &cat, &out, false));
    let last = recs.last().unwrap().seq;

    let mut loaded = reload(&recs);
    loaded.verify(Some(last), TOPIC).unwrap();
    loaded.set_server(Some("2".into()));
    loaded.verify_server("2", Some(last), TOPIC).unwrap();
    assert_eq!(
        columns(&loaded.catalog_at(&replica(800)), "t"),
        ["id", "a", "b"]
    );
    assert_eq!(
        columns(&loaded.catalog_at(&replica(901)), "t"),
        ["id", "a", "b", "c"]
    );
    assert!(loaded.contains(&replica(900)));
    // The old server's positions still select the old server's definitions.
    loaded.set_server(Some("1".into()));
    assert_eq!(columns(&loaded.catalog_at(&pos(7, 400)), "t"), ["id", "a"]);
    assert_eq!(
        columns(&loaded.catalog_at(&pos(9, 1)), "t"),
        ["id", "a", "b"]
    );
    assert!(!loaded.contains(&replica(900)));
    // A checkpoint in the new server's epoch is not one of the old server's.
    let e = loaded.verify_server("1", Some(last), TOPIC).unwrap_err();
    assert!(
        matches!(e, HistoryError::Foreign { what: "server", .. }),
        "{e}"
    );
    loaded.verify_server("1", Some(2), TOPIC).unwrap();
}
