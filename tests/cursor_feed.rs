//! Cursor scans resumed across transactions, `clear_table`, `len`, commit
//! subscription and `wait_for`.

use capsuledb::storage::SimStorage;
use capsuledb::{Database, Durability, Options, Received};
use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

fn db() -> Database {
    Options::new()
        .random_seed(4)
        .open_storage(Arc::new(SimStorage::new()))
        .unwrap()
}

fn fill(db: &Database, n: u32) {
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    for i in 0..n {
        tx.put("t", &i.to_be_bytes(), &i.to_le_bytes()).unwrap();
    }
    tx.commit().unwrap();
}

fn page_through(
    db: &Database,
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    size: usize,
    reverse: bool,
) -> Vec<u32> {
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    let mut c = db.connect();
    let mut pages = 0;
    loop {
        let tx = c.begin_read().unwrap();
        let page = tx
            .page(
                "t",
                (lo.clone(), hi.clone()),
                after.as_deref(),
                size,
                reverse,
            )
            .unwrap();
        assert!(page.entries.len() <= size);
        pages += 1;
        for (k, v) in &page.entries {
            let i = u32::from_be_bytes(k.as_slice().try_into().unwrap());
            assert_eq!(v, &i.to_le_bytes());
            out.push(i);
        }
        match page.next {
            Some(k) => {
                assert_eq!(Some(&k), page.entries.last().map(|e| &e.0));
                after = Some(k);
            }
            None => break,
        }
        assert!(pages < 10_000);
    }
    out
}

#[test]
fn pages_resume_across_transactions_both_ways() {
    let db = db();
    fill(&db, 1000);
    db.checkpoint().unwrap();
    // Some keys in the store over the tree, some deleted.
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    for i in (0..1000u32).step_by(7) {
        tx.delete("t", &i.to_be_bytes()).unwrap();
    }
    tx.commit().unwrap();
    let want: Vec<u32> = (0..1000).filter(|i| i % 7 != 0).collect();
    for size in [1, 3, 64, 500, 2000] {
        assert_eq!(
            page_through(&db, Bound::Unbounded, Bound::Unbounded, size, false),
            want
        );
        let mut rev = want.clone();
        rev.reverse();
        assert_eq!(
            page_through(&db, Bound::Unbounded, Bound::Unbounded, size, true),
            rev
        );
    }
    let lo = Bound::Included(100u32.to_be_bytes().to_vec());
    let hi = Bound::Excluded(200u32.to_be_bytes().to_vec());
    let sub: Vec<u32> = want
        .iter()
        .copied()
        .filter(|i| (100..200).contains(i))
        .collect();
    assert_eq!(page_through(&db, lo.clone(), hi.clone(), 9, false), sub);
    let mut rsub = sub.clone();
    rsub.reverse();
    assert_eq!(page_through(&db, lo, hi, 9, true), rsub);
}

#[test]
fn a_continuation_survives_concurrent_changes() {
    let db = db();
    fill(&db, 100);
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    let page = tx.page::<&[u8], _>("t", .., None, 10, false).unwrap();
    drop(tx);
    let after = page.next.unwrap();
    // Keys before the continuation change; the next page starts after it regardless.
    let mut w = db.connect();
    let mut tx = w.begin().unwrap();
    tx.delete("t", &3u32.to_be_bytes()).unwrap();
    tx.delete("t", &10u32.to_be_bytes()).unwrap();
    tx.put("t", &9u32.to_be_bytes(), b"new").unwrap();
    tx.commit().unwrap();
    let tx = c.begin_read().unwrap();
    let page = tx
        .page::<&[u8], _>("t", .., Some(&after), 3, false)
        .unwrap();
    let keys: Vec<u32> = page
        .entries
        .iter()
        .map(|(k, _)| u32::from_be_bytes(k.as_slice().try_into().unwrap()))
        .collect();
    assert_eq!(keys, vec![11, 12, 13]);
}

#[test]
fn fixed_batches_read_the_same() {
    let db = db();
    fill(&db, 3000);
    db.checkpoint().unwrap();
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    for n in [1, 7, 512, 10_000] {
        let keys: Vec<Vec<u8>> = tx
            .iter("t")
            .unwrap()
            .with_batch_size(n)
            .map(|r| r.map(|(k, _)| k))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(keys.len(), 3000);
    }
}

#[test]
fn clear_table_empties_in_one_commit_and_keeps_the_table() {
    let db = db();
    fill(&db, 5000);
    db.checkpoint().unwrap();
    let mut c = db.connect();
    let reader = db.connect();
    let mut reader = reader;
    let old = reader.begin_read().unwrap();
    let mut tx = c.begin().unwrap();
    tx.clear_table("t").unwrap();
    assert_eq!(tx.len("t").unwrap(), 0);
    tx.put("t", b"after", b"1").unwrap();
    tx.commit().unwrap();
    assert_eq!(
        old.len("t").unwrap(),
        5000,
        "an older snapshot still sees the data"
    );
    drop(old);
    let tx = c.begin_read().unwrap();
    assert_eq!(tx.len("t").unwrap(), 1);
    assert_eq!(tx.tables().unwrap(), vec!["t".to_string()]);
    drop(tx);
    db.collect_garbage().unwrap();
    db.checkpoint().unwrap();
    db.checkpoint().unwrap();
    let r = db.check_integrity().unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(
        r.tree_keys, 2,
        "the old data is gone: catalog entry and one key"
    );
    let mut tx = c.begin().unwrap();
    assert!(matches!(
        tx.clear_table("missing"),
        Err(capsuledb::Error::TableNotFound { .. })
    ));
}

#[test]
fn subscribers_see_every_durable_commit_in_order() {
    let db = db();
    fill(&db, 1);
    let sub = db.subscribe();
    let threads = 6;
    let per = 150;
    std::thread::scope(|s| {
        for t in 0..threads {
            let db = &db;
            s.spawn(move || {
                let mut c = db.connect();
                for i in 0..per {
                    let mut tx = c.begin().unwrap();
                    tx.put("t", &[t as u8, (i % 256) as u8, (i / 256) as u8], b"x")
                        .unwrap();
                    let level = if i % 3 == 0 {
                        Durability::Applied
                    } else {
                        Durability::Durable
                    };
                    tx.commit_with(level).unwrap();
                }
            });
        }
    });
    let tip = db.stats().tip_seq;
    db.wait_for(tip, Durability::Durable).unwrap();
    let mut seqs = Vec::new();
    // A guard against a hang: the loop ends at the tip's event.
    while let Some(r) = sub.recv_timeout(Duration::from_secs(60)) {
        match r {
            Received::Commit(e) => {
                assert_eq!(&e.tables[..], &["t".to_string()]);
                seqs.push(e.seq);
                if e.seq == tip {
                    break;
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(seqs.len(), threads * per, "no gaps");
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "in order");
    assert!(seqs.iter().all(|&s| s <= db.stats().durable_seq));
}

#[test]
fn a_slow_subscriber_lags_and_never_blocks_committers() {
    let db = db();
    fill(&db, 1);
    let slow = db.subscribe_with_capacity(8);
    let mut c = db.connect();
    for i in 0..100u32 {
        let mut tx = c.begin().unwrap();
        tx.put("t", &i.to_be_bytes(), b"v").unwrap();
        tx.commit().unwrap();
    }
    assert_eq!(slow.recv(), Received::Lagged { missed: 92 });
    let rest: Vec<u64> = std::iter::from_fn(|| match slow.try_recv() {
        Some(Received::Commit(e)) => Some(e.seq),
        _ => None,
    })
    .collect();
    assert_eq!(rest.len(), 8);
    assert_eq!(*rest.last().unwrap(), db.stats().tip_seq);
    let closer = db.clone();
    closer.close().unwrap();
    assert_eq!(slow.recv(), Received::Closed);
}

#[test]
fn subscription_reports_created_and_dropped_tables() {
    let db = db();
    let sub = db.subscribe();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("a").unwrap();
    tx.create_table("b").unwrap();
    tx.put("a", b"k", b"v").unwrap();
    let s1 = tx.commit().unwrap().seq;
    let mut tx = c.begin().unwrap();
    tx.drop_table("b").unwrap();
    let s2 = tx.commit().unwrap().seq;
    // A transaction that writes nothing takes no sequence and sends nothing.
    c.begin().unwrap().commit().unwrap();
    let got: Vec<(u64, BTreeSet<String>)> = std::iter::from_fn(|| match sub.try_recv() {
        Some(Received::Commit(e)) => Some((e.seq, e.tables.iter().cloned().collect())),
        _ => None,
    })
    .collect();
    assert_eq!(
        got,
        vec![
            (s1, ["a", "b"].map(String::from).into()),
            (s2, ["b"].map(String::from).into())
        ]
    );
}

#[test]
fn wait_for_blocks_until_the_level() {
    let db = db();
    fill(&db, 1);
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.put("t", b"k", b"v").unwrap();
    let seq = tx.commit_with(Durability::Applied).unwrap().seq;
    db.wait_for(seq, Durability::Durable).unwrap();
    assert!(db.stats().durable_seq >= seq);
}

/// A subscription taken after `close` (on another handle of the database) says at once
/// that no event will come; before, its `recv` waited until the engine was dropped.
#[test]
fn a_subscription_after_close_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let db = capsuledb::Database::open(dir.path().join("c.db")).unwrap();
    let other = db.clone();
    db.close().unwrap();
    let sub = other.subscribe();
    assert!(matches!(
        sub.recv_timeout(Duration::from_secs(60)),
        Some(Received::Closed)
    ));
}

/// The first subscriber, arriving while another thread commits without pause: every
/// commit event after the ones it is told it missed names the table the commit wrote
/// (a commit whose tables were read before the subscription, and sequenced after it,
/// was published naming none).
#[test]
fn the_first_subscriber_sees_the_tables_of_every_commit_it_receives() {
    for round in 0..40u32 {
        let db = db();
        fill(&db, 1);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (db, stop) = (db.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut c = db.connect();
                let mut i = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let mut tx = c.begin().unwrap();
                    tx.put("t", &i.to_be_bytes(), b"v").unwrap();
                    tx.commit_with(Durability::Applied).unwrap();
                    i += 1;
                }
            })
        };
        // Let the writer run a little first (a different moment each round).
        for _ in 0..round * 500 {
            std::hint::spin_loop();
        }
        let sub = db.subscribe_with_capacity(1 << 16);
        let mut events = 0;
        while events < 200 {
            match sub.recv_timeout(Duration::from_secs(10)) {
                Some(Received::Commit(e)) => {
                    assert_eq!(&e.tables[..], ["t".to_string()], "round {round}: {e:?}");
                    events += 1;
                }
                Some(Received::Lagged { .. }) => {}
                other => panic!("round {round}: {other:?}"),
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
    }
}

/// Large `Applied` commits beside one-key `Durable` ones: a `Durable` group made the
/// large commit durable while its committer still applied it, and the feed published
/// it before it was visible (a subscriber reading on the event did not find it). Every
/// event now comes once its commit is visible.
#[test]
fn a_subscriber_is_told_of_a_commit_only_once_it_is_visible() {
    let db = db();
    fill(&db, 1);
    let sub = db.subscribe();
    // Takes each event while the commits run, and reads at once.
    let checker = {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut c = db.connect();
            let mut seen = 0;
            while seen < 420 {
                match sub.recv_timeout(Duration::from_secs(120)) {
                    Some(Received::Commit(e)) => {
                        // Visibility only rises: a commit not visible once its event is
                        // taken was published before it was visible.
                        let visible = c.begin_read().unwrap().snapshot_seq();
                        assert!(visible >= e.seq, "event {} before visible {visible}", e.seq);
                        seen += 1;
                    }
                    other => panic!("{other:?}"),
                }
            }
            seen
        })
    };
    let large = {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut c = db.connect();
            for round in 0..20u32 {
                let mut tx = c.begin().unwrap();
                for i in 0..20_000u32 {
                    tx.put("t", &(round * 20_000 + i).to_be_bytes(), b"v")
                        .unwrap();
                }
                tx.commit_with(Durability::Applied).unwrap();
            }
        })
    };
    let small = {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut c = db.connect();
            for i in 0..400u32 {
                let mut tx = c.begin().unwrap();
                tx.put("t", b"small", &i.to_be_bytes()).unwrap();
                tx.commit_with(Durability::Durable).unwrap();
            }
        })
    };
    large.join().unwrap();
    small.join().unwrap();
    db.wait_for(db.stats().tip_seq, Durability::Durable)
        .unwrap();
    assert_eq!(checker.join().unwrap(), 420);
}

/// Commits racing `close`: every one acknowledged is told to a subscriber taken before,
/// as an event or inside a lag, before `Closed`. A commit that passed the open check
/// before the close began used to be admitted after the close's drain, made durable by
/// its own committer, acknowledged, and told to no one.
#[test]
fn every_commit_acknowledged_while_closing_is_told() {
    for round in 0..60u64 {
        let db = db();
        fill(&db, 1);
        let sub = db.subscribe_with_capacity(1 << 20);
        let writers: Vec<_> = (0..4u32)
            .map(|w| {
                let db = db.clone();
                std::thread::spawn(move || {
                    let mut c = db.connect();
                    let mut acked = Vec::new();
                    for i in 0u32.. {
                        let Ok(mut tx) = c.begin() else { break };
                        tx.put("t", &[w.to_be_bytes(), i.to_be_bytes()].concat(), b"v")
                            .unwrap();
                        // Large enough that the capsule's write gives the close time
                        // to drain between the open check and the admission.
                        tx.put("t", &w.to_le_bytes(), &vec![7u8; 64 << 10]).unwrap();
                        match tx.commit_with(Durability::Applied) {
                            Ok(info) => acked.push(info.seq),
                            Err(capsuledb::Error::Closed) => break,
                            Err(e) => panic!("round {round}: {e}"),
                        }
                    }
                    acked
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(1 + round % 7));
        db.close().unwrap();
        let acked: BTreeSet<u64> = writers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        let (mut told, mut missed) = (BTreeSet::new(), 0u64);
        loop {
            match sub.recv_timeout(Duration::from_secs(60)) {
                Some(Received::Commit(e)) => {
                    told.insert(e.seq);
                }
                Some(Received::Lagged { missed: n }) => missed += n,
                Some(Received::Closed) => break,
                Some(other) => panic!("round {round}: {other:?}"),
                None => panic!("round {round}: the subscription was never closed"),
            }
        }
        let untold = acked.difference(&told).count() as u64;
        assert!(
            untold <= missed,
            "round {round}: {untold} acknowledged commits told neither as events nor as a \
             lag ({missed}); acknowledged up to {:?}, told up to {:?}",
            acked.last(),
            told.last()
        );
    }
}
