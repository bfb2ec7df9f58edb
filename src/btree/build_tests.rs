//! Tests of the copy-on-write rebuild (`super`): round trips against a model.

use super::*;
use crate::btree::{get, walk};
use crate::storage::{SimStorage, Storage};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

fn apply(
    sim: &SimStorage,
    pager: &Pager,
    root: u64,
    model: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    changes: Vec<Change>,
    dropped: Vec<[u8; 8]>,
) -> u64 {
    let file = sim.view().unwrap();
    let built = rebuild(sim, pager, &file, root, &changes, &dropped, u64::MAX).unwrap();
    for (k, v) in changes {
        match v {
            Some(v) => model.insert(k, v.to_vec()),
            None => model.remove(&k),
        };
    }
    model.retain(|k, _| !dropped_owner(&dropped, &TreeKey::whole(k)));
    pager.free(built.freed);
    built.root
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn rebuilt_trees_match_a_model(rounds in proptest::collection::vec(
        (proptest::collection::btree_map((0u64..3, proptest::collection::vec(0u8..8, 0..4)), proptest::option::of(0usize..3000), 0..120),
         proptest::option::of(0u64..3)),
        1..6)) {
        let sim = SimStorage::new();
        let pager = Pager::new(Arc::new(sim.clone()), 4096, 2, BTreeSet::new()).unwrap();
        let mut model = BTreeMap::new();
        let mut root = 0;
        for (round, (changes, drop)) in rounds.into_iter().enumerate() {
            let changes: Vec<Change> = changes
                .into_iter()
                .map(|((t, k), v)| (crate::btree::composite(t, &k), v.map(|len| Arc::from(vec![round as u8; len]))))
                .collect();
            let dropped: Vec<[u8; 8]> = drop.map(|t| t.to_be_bytes()).into_iter().collect();
            root = apply(&sim, &pager, root, &mut model, changes, dropped);
            let file = sim.view().unwrap();
            let mut pages = 0u64;
            let keys = walk(&file, 4096, root, |_, _, n| pages += n).unwrap();
            prop_assert_eq!(keys, model.len() as u64);
            for (k, v) in &model {
                prop_assert_eq!(get(&file, 4096, root, k, None).unwrap(), Some(&v[..]));
            }
            prop_assert_eq!(get(&file, 4096, root, b"\xff\xff\xff\xff\xff\xff\xff\xffnope", None).unwrap(), None);
        }
    }
}
