//! A set of table ids kept as disjoint ranges: the store's dead tables.
//!
//! Table ids are given in increasing order and a dead table is never alive again, so
//! the dead ids of a database that creates and drops tables (or clears one, which gives
//! it a new id each time) run together: a hash set of them grew by one entry per drop
//! for the life of the process, the ranges grow only with the live (and the skipped)
//! ids between them.

use crate::types::TableId;
use std::collections::BTreeMap;

/// Disjoint, non-adjacent ranges of ids: first id to last id, both included.
#[derive(Debug, Default)]
pub struct IdRanges {
    ranges: BTreeMap<TableId, TableId>,
}

impl IdRanges {
    /// Whether `id` is in the set.
    pub fn contains(&self, id: TableId) -> bool {
        self.ranges
            .range(..=id)
            .next_back()
            .is_some_and(|(_, &last)| id <= last)
    }

    /// Adds `id`; `false` if it was in the set already.
    pub fn insert(&mut self, id: TableId) -> bool {
        if self.contains(id) {
            return false;
        }
        let mut first = id;
        let mut last = id;
        // The range ending just before `id` takes it in.
        if let Some((&start, &end)) = self.ranges.range(..id).next_back()
            && end.checked_add(1) == Some(id)
        {
            first = start;
        }
        // The range starting just after `id` joins it.
        if let Some(next) = id.checked_add(1)
            && let Some(end) = self.ranges.remove(&next)
        {
            last = end;
        }
        self.ranges.insert(first, last);
        true
    }

    /// How many ranges the set holds.
    #[cfg(test)]
    pub fn ranges(&self) -> usize {
        self.ranges.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn ids_dropped_in_turn_are_one_range() {
        let mut s = IdRanges::default();
        // Table 1 lives; table 2 is cleared again and again (3, 4, ... its new ids).
        for id in 2..10_000 {
            assert!(s.insert(id));
        }
        assert!(!s.insert(5));
        assert_eq!(s.ranges(), 1);
        assert!(!s.contains(1) && s.contains(2) && s.contains(9_999));
        assert!(!s.contains(10_000));
        assert!(s.insert(TableId::MAX) && s.contains(TableId::MAX));
        assert!(s.insert(0) && s.contains(0) && !s.contains(1));
    }

    proptest! {
        /// The same answers as a hash set, and never two ranges that touch.
        #[test]
        fn behaves_as_a_set(ids in proptest::collection::vec(0u64..64, 0..200)) {
            let mut s = IdRanges::default();
            let mut model = HashSet::new();
            for id in ids {
                prop_assert_eq!(s.insert(id), model.insert(id));
                for probe in 0..66 {
                    prop_assert_eq!(s.contains(probe), model.contains(&probe));
                }
            }
            let mut prev: Option<TableId> = None;
            for (&first, &last) in &s.ranges {
                prop_assert!(first <= last);
                if let Some(p) = prev {
                    prop_assert!(first > p + 1, "ranges touch");
                }
                prev = Some(last);
            }
        }
    }
}
