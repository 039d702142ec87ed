//! The counters of Debezium's `transaction` block, shared by every source's stream.

use std::collections::HashMap;

use crate::event::TableId;

/// Event counters of one open source transaction: `total_order` over all its events and
/// `data_collection_order` per table.
#[derive(Debug, Default)]
pub struct TxOrder {
    total: i64,
    per_table: HashMap<TableId, i64>,
}

impl TxOrder {
    /// Counts the next event of `table`; returns its `(total_order, data_collection_order)`,
    /// both starting at 1.
    pub fn next(&mut self, table: &TableId) -> (i64, i64) {
        self.total += 1;
        // No allocation per row: the table id is cloned once per transaction and table.
        let per = match self.per_table.get_mut(table) {
            Some(n) => {
                *n += 1;
                *n
            }
            None => {
                self.per_table.insert(table.clone(), 1);
                1
            }
        };
        (self.total, per)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_count_all_events_and_each_table_separately() {
        let (a, b) = (TableId::new("s", "a"), TableId::new("s", "b"));
        let mut o = TxOrder::default();
        assert_eq!(o.next(&a), (1, 1));
        assert_eq!(o.next(&b), (2, 1));
        assert_eq!(o.next(&a), (3, 2));
    }
}
