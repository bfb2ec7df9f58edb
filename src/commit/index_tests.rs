//! Tests of the commit index (`super`).

use super::*;

fn writes(keys: &[&[u8]]) -> WriteSet {
    let mut w = WriteSet::new();
    let t = w.entry(1).or_default();
    for k in keys {
        t.insert(k, Some(&b"v"[..])).unwrap();
    }
    w
}

#[test]
fn an_unrecorded_admission_checks_first_committer_wins_and_records_nothing() {
    let mut index = CommitIndex::new(0);
    let w = writes(&[b"a"]);
    let a = index.admit(
        0,
        Prepared::new(Isolation::Snapshot, &w, ReadSet::default()),
    );
    assert_eq!(a.map(|a| a.seq), Ok(Some(1)));
    let records = index.record_count();
    // Concurrent with commit 1 (snapshot 0) and writing its key: refused.
    let big = writes(&[b"a", b"b", b"c"]);
    let refused = index
        .admit_unrecorded(0, Isolation::Serializable, &big, ReadSet::default())
        .expect_err("first committer wins");
    assert_eq!(
        (refused.key.as_slice(), refused.committed_seq),
        (&b"a"[..], 1)
    );
    // After it (snapshot 1): admitted at 2, and not recorded.
    let ok = index.admit_unrecorded(1, Isolation::Serializable, &big, ReadSet::default());
    assert_eq!(ok.map(|a| a.seq), Ok(Some(2)));
    assert_eq!(index.record_count(), records);
    assert_eq!(index.tip(), 2);
    assert_eq!(index.stats().write_conflicts, 1);
}

#[test]
fn an_unrecorded_serializable_admission_with_reads_runs_the_ssi_check() {
    let mut index = CommitIndex::new(0);
    // T1 (snapshot 0) reads x, writes y; commits first.
    let mut r1 = ReadSet::default();
    r1.points.insert((1, b"x".to_vec()));
    let w1 = writes(&[b"y"]);
    index
        .admit(0, Prepared::new(Isolation::Serializable, &w1, r1))
        .unwrap();
    // T2 (snapshot 0) reads y (written by T1 after T2's snapshot) and writes x
    // (read by T1): write skew, refused.
    let mut r2 = ReadSet::default();
    r2.points.insert((1, b"y".to_vec()));
    let w2 = writes(&[b"x"]);
    let refused = index
        .admit_unrecorded(0, Isolation::Serializable, &w2, r2)
        .expect_err("write skew");
    assert!(!refused.write_write);
}

#[test]
fn a_key_entries_keep_their_order_from_one_to_many_and_back() {
    let e = |ord| Entry {
        ord,
        cseq: ord + 10,
    };
    let mut list = Entries::default();
    assert!(list.is_empty() && list.front().is_none() && list.back().is_none());
    list.push_back(e(1));
    assert!(matches!(list, Entries::One(_)));
    assert_eq!((list.front(), list.back()), (Some(&e(1)), Some(&e(1))));
    list.push_back(e(2));
    list.push_back(e(3));
    let newest: Vec<u64> = list.newest_first().map(|x| x.ord).collect();
    assert_eq!(newest, [3, 2, 1]);
    list.pop_front();
    assert_eq!((list.front(), list.back()), (Some(&e(2)), Some(&e(3))));
    list.pop_front();
    list.pop_front();
    assert!(list.is_empty());
    list.push_back(e(4));
    assert_eq!(list.newest_first().map(|x| x.ord).collect::<Vec<_>>(), [4]);
    list.pop_front();
    assert!(list.is_empty() && list.newest_first().next().is_none());
}

#[test]
fn pruning_with_a_budget_forgets_keys_in_commit_order_and_keeps_validating() {
    let mut index = CommitIndex::new(0);
    // Commits 1..=4 of 3 keys each, then commit 5 of key "late".
    for i in 0..4u8 {
        let keys = [[b'k', i, 0], [b'k', i, 1], [b'k', i, 2]];
        let w = writes(&[&keys[0], &keys[1], &keys[2]]);
        index
            .admit(
                u64::from(i),
                Prepared::new(Isolation::Snapshot, &w, ReadSet::default()),
            )
            .unwrap();
    }
    let late = writes(&[b"late"]);
    index
        .admit(
            4,
            Prepared::new(Isolation::Snapshot, &late, ReadSet::default()),
        )
        .unwrap();
    assert_eq!(index.record_count(), 5);
    // A budget of one key forgets one key of the oldest commit, which stays.
    let k00 = writes(&[&[b'k', 0, 0]]);
    let k01 = writes(&[&[b'k', 0, 1]]);
    let concurrent = |index: &mut CommitIndex, w: &WriteSet| {
        index.admit_unrecorded(0, Isolation::Snapshot, w, ReadSet::default())
    };
    assert!(concurrent(&mut index, &k00).is_err());
    index.prune_some(4, 1);
    assert_eq!(index.record_count(), 5);
    assert!(
        concurrent(&mut index, &k00).is_ok(),
        "its first key is forgotten"
    );
    assert!(concurrent(&mut index, &k01).is_err(), "its second is not");
    // Two more: the rest of that commit.
    index.prune_some(4, 2);
    assert_eq!(index.record_count(), 4);
    assert!(concurrent(&mut index, &k01).is_ok());
    // A budget of 4 keys: the next commit (3 keys) and one key of the one after.
    index.prune_some(4, 4);
    assert_eq!(index.record_count(), 3);
    index.prune_some(4, 2);
    assert_eq!(index.record_count(), 2);
    // Nothing above the horizon goes, whatever the budget.
    index.prune_some(4, usize::MAX);
    assert_eq!(index.record_count(), 1, "commit 5 is above horizon 4");
    // What is kept still refuses a concurrent writer of its key.
    let refused = index
        .admit_unrecorded(4, Isolation::Snapshot, &late, ReadSet::default())
        .expect_err("first committer wins");
    assert_eq!(refused.committed_seq, 5);
    index.prune_some(5, usize::MAX);
    assert_eq!(index.record_count(), 0);
}
