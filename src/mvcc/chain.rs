//! One key's versions in the store, oldest first. Most keys hold one version (a load, a
//! key written once since the last fold), so that one is held in the map's entry itself:
//! a chain of one costs no allocation of its own, and a read, a fold or a removal of it
//! one cache miss less. A key written again gets a `Vec`, kept until its chain leaves the
//! store.

use super::Version;

/// A key's versions, oldest first (strictly increasing `seq`). Reads see a slice.
#[derive(Debug)]
pub(super) enum Chain {
    /// The only version.
    One(Version),
    /// Any number of versions (none only while the chain is being emptied).
    Many(Vec<Version>),
}

impl Chain {
    /// A chain of one version.
    pub(super) fn new(v: Version) -> Chain {
        Chain::One(v)
    }

    /// Inserts `v` at `at` (as `Vec::insert`).
    pub(super) fn insert(&mut self, at: usize, v: Version) {
        match self {
            Chain::Many(list) => list.insert(at.min(list.len()), v),
            Chain::One(_) => {
                let Chain::One(old) = std::mem::replace(self, Chain::Many(Vec::new())) else {
                    return;
                };
                let list = if at == 0 { vec![v, old] } else { vec![old, v] };
                *self = Chain::Many(list);
            }
        }
    }

    /// Drops the oldest `cut` versions. A chain that grew past one keeps its `Vec`
    /// even when one version is left: a key updated again and again (each commit adds a
    /// version, a prune drops the one before) would otherwise allocate and free it at
    /// every commit, under the table's lock.
    pub(super) fn drop_front(&mut self, cut: usize) {
        if cut == 0 {
            return;
        }
        match self {
            Chain::One(_) => *self = Chain::Many(Vec::new()),
            Chain::Many(list) => {
                list.drain(..cut.min(list.len()));
                // A chain that grew long under a long-lived snapshot gives the room back
                // once pruned (the store's byte count, which the budget watches, counts
                // versions, not room), keeping some for the next versions.
                if list.capacity() > CHAIN_SPARE_MAX && list.capacity() > 4 * list.len() {
                    list.shrink_to(CHAIN_SPARE_MAX.max(2 * list.len()));
                }
            }
        }
    }
}

/// Room for versions a chain keeps past the ones it holds, at most, once pruned.
const CHAIN_SPARE_MAX: usize = 16;

impl std::ops::Deref for Chain {
    type Target = [Version];

    fn deref(&self) -> &[Version] {
        match self {
            Chain::One(v) => std::slice::from_ref(v),
            Chain::Many(list) => list,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(seq: u64) -> Version {
        Version { seq, value: None }
    }

    fn seqs(c: &Chain) -> Vec<u64> {
        c.iter().map(|v| v.seq).collect()
    }

    /// A chain pruned after growing long (a snapshot held the horizon back) gives its
    /// room back: the store's byte count, which the budget watches, never counted it.
    #[test]
    fn a_long_chain_gives_its_room_back_once_pruned() {
        let mut c = Chain::new(v(0));
        for s in 1..100_000 {
            c.insert(s as usize, v(s));
        }
        c.drop_front(99_998);
        assert_eq!(seqs(&c), vec![99_998, 99_999]);
        let Chain::Many(list) = &c else {
            panic!("a chain of two")
        };
        assert!(list.capacity() <= CHAIN_SPARE_MAX, "{}", list.capacity());
    }

    #[test]
    fn a_chain_goes_from_one_to_many_and_keeps_its_order() {
        let mut c = Chain::new(v(5));
        assert!(matches!(c, Chain::One(_)));
        assert_eq!(seqs(&c), [5]);
        c.insert(1, v(7));
        c.insert(0, v(3));
        c.insert(2, v(6));
        assert_eq!(seqs(&c), [3, 5, 6, 7]);
        c.drop_front(0);
        assert_eq!(seqs(&c), [3, 5, 6, 7]);
        c.drop_front(2);
        assert_eq!(seqs(&c), [6, 7]);
        c.drop_front(1);
        assert!(matches!(c, Chain::Many(_)), "a grown chain keeps its Vec");
        assert_eq!(seqs(&c), [7]);
        c.insert(0, v(1));
        assert_eq!(seqs(&c), [1, 7]);
        c.drop_front(2);
        assert!(c.is_empty());
        let mut one = Chain::new(v(9));
        one.drop_front(1);
        assert!(one.is_empty());
    }
}
