//! Bank invariants under concurrency: transfers between accounts keep the total in
//! every snapshot any reader takes, and the final balances equal a replay of the
//! committed transfers in sequence order. At Serializable, withdrawals guarded by a
//! two-account check never overdraw the pair (no write skew).

mod history_support;

use capsuledb::rng::Rng;
use capsuledb::{Database, Durability, Error, Isolation, Transaction};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

const ACCOUNTS: usize = 10;
const INITIAL: i64 = 1000;
const TOTAL: i64 = INITIAL * ACCOUNTS as i64;
const WRITERS: usize = 8;
const TRANSFERS_PER_WRITER: usize = 1500;
const READERS: usize = 2;
/// A transfer that keeps conflicting this many times is a livelock, not bad luck.
const RETRIES_MAX: usize = 100_000;
const TABLE: &str = "bank";
const SEED: u64 = 0xba4c_0001;

fn account(i: usize) -> Vec<u8> {
    format!("acct{i:02}").into_bytes()
}

fn balance(tx: &Transaction<'_>, i: usize) -> i64 {
    let v = tx.get(TABLE, &account(i)).unwrap().expect("account exists");
    decode(&v)
}

fn decode(v: &[u8]) -> i64 {
    std::str::from_utf8(v).unwrap().parse().unwrap()
}

fn setup(dir: &tempfile::TempDir, initial: i64) -> Database {
    // Checkpoints every few hundred commits, racing the transfers (the defaults never
    // fold a workload this size, so every read came from the version store).
    let db = capsuledb::Options::new()
        .checkpoint_log_commits(300)
        .open(dir.path().join("bank.db"))
        .unwrap();
    let mut conn = db.connect();
    let mut tx = conn.begin().unwrap();
    tx.create_table(TABLE).unwrap();
    for i in 0..ACCOUNTS {
        tx.put(TABLE, &account(i), initial.to_string().as_bytes())
            .unwrap();
    }
    assert_eq!(tx.commit().unwrap().seq, 1);
    db
}

/// Sums all balances, by a scan or by point reads.
fn sum(tx: &Transaction<'_>, by_scan: bool) -> (i64, Vec<i64>) {
    let balances: Vec<i64> = if by_scan {
        tx.iter(TABLE)
            .unwrap()
            .map(|item| decode(&item.unwrap().1))
            .collect()
    } else {
        (0..ACCOUNTS).map(|i| balance(tx, i)).collect()
    };
    assert_eq!(balances.len(), ACCOUNTS, "an account went missing");
    (balances.iter().sum(), balances)
}

/// One committed transfer and the balances it read.
#[derive(Clone, Copy, Debug)]
struct Transfer {
    seq: u64,
    from: usize,
    to: usize,
    amount: i64,
    from_before: i64,
    to_before: i64,
}

fn transfer_thread(
    db: Database,
    iso: Isolation,
    thread: usize,
    start: Arc<Barrier>,
    retries: Arc<AtomicUsize>,
) -> Vec<Transfer> {
    let mut rng = Rng::new(SEED ^ (thread as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut conn = db.connect();
    let mut done = Vec::new();
    start.wait();
    for _ in 0..TRANSFERS_PER_WRITER {
        let from = rng.below(ACCOUNTS as u64) as usize;
        let to = (from + 1 + rng.below(ACCOUNTS as u64 - 1) as usize) % ACCOUNTS;
        let amount = 1 + rng.below(200) as i64;
        let mut attempts = 0;
        loop {
            attempts += 1;
            assert!(
                attempts <= RETRIES_MAX,
                "transfer retried {RETRIES_MAX} times"
            );
            let mut tx = conn.begin_with(iso).unwrap();
            let from_before = balance(&tx, from);
            let to_before = balance(&tx, to);
            if from_before < amount {
                // Insufficient funds: nothing to do.
                break;
            }
            tx.put(
                TABLE,
                &account(from),
                (from_before - amount).to_string().as_bytes(),
            )
            .unwrap();
            tx.put(
                TABLE,
                &account(to),
                (to_before + amount).to_string().as_bytes(),
            )
            .unwrap();
            match tx.commit_with(Durability::Applied) {
                Ok(info) => {
                    done.push(Transfer {
                        seq: info.seq,
                        from,
                        to,
                        amount,
                        from_before,
                        to_before,
                    });
                    break;
                }
                Err(e) if e.is_retryable() => {
                    retries.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => panic!("transfer failed: {e}"),
            }
        }
    }
    done
}

/// Sums balances until the writers are done; every sum must be the total.
fn reader_thread(db: Database, iso: Isolation, thread: usize, stop: Arc<AtomicBool>) -> (u64, u64) {
    let mut rng = Rng::new(SEED ^ 0xfeed ^ thread as u64);
    let mut conn = db.connect();
    let (mut sums, mut aborted) = (0u64, 0u64);
    while !stop.load(Ordering::Relaxed) || sums < 50 {
        let by_scan = rng.chance(1, 2);
        if rng.chance(1, 2) {
            let tx = conn.begin_read().unwrap();
            let (total, balances) = sum(&tx, by_scan);
            assert_eq!(
                total,
                TOTAL,
                "begin_read saw {balances:?} at {}",
                tx.snapshot_seq()
            );
        } else {
            let tx = conn.begin_with(iso).unwrap();
            let (total, balances) = sum(&tx, by_scan);
            let snapshot = tx.snapshot_seq();
            assert_eq!(
                total, TOTAL,
                "{iso:?} reader saw {balances:?} at {snapshot}"
            );
            match tx.commit() {
                Ok(info) => assert_eq!(info.seq, snapshot, "a reader got a new sequence"),
                Err(Error::Conflict { .. }) => aborted += 1,
                Err(e) => panic!("reader commit failed: {e}"),
            }
        }
        sums += 1;
    }
    (sums, aborted)
}

fn run_bank(iso: Isolation) {
    let dir = tempfile::tempdir().unwrap();
    let db = setup(&dir, INITIAL);
    let start = Arc::new(Barrier::new(WRITERS));
    let stop = Arc::new(AtomicBool::new(false));
    let retries = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..READERS)
        .map(|t| {
            let (db, stop) = (db.clone(), Arc::clone(&stop));
            std::thread::spawn(move || reader_thread(db, iso, t, stop))
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let (db, start, retries) = (db.clone(), Arc::clone(&start), Arc::clone(&retries));
            std::thread::spawn(move || transfer_thread(db, iso, t, start, retries))
        })
        .collect();
    let mut transfers: Vec<Transfer> = history_support::join_all(writers, "transfer")
        .into_iter()
        .flatten()
        .collect();
    stop.store(true, Ordering::Relaxed);
    let (mut sums, mut reader_aborts) = (0, 0);
    for (s, a) in history_support::join_all(readers, "reader") {
        sums += s;
        reader_aborts += a;
    }

    // Replay in sequence order: each transfer read exactly the balances the replay
    // holds just before it (first-committer-wins makes them the latest ones).
    transfers.sort_by_key(|t| t.seq);
    let tip = db.stats().tip_seq;
    let seqs: Vec<u64> = transfers.iter().map(|t| t.seq).collect();
    assert_eq!(
        seqs,
        (2..=tip).collect::<Vec<u64>>(),
        "committed transfers are not exactly the sequences after setup"
    );
    let mut model = [INITIAL; ACCOUNTS];
    for t in &transfers {
        assert_eq!(
            (model[t.from], model[t.to]),
            (t.from_before, t.to_before),
            "transfer {t:?} read balances that were not the latest before its commit"
        );
        model[t.from] -= t.amount;
        model[t.to] += t.amount;
        assert!(model[t.from] >= 0, "overdraft at {t:?}");
    }
    let mut conn = db.connect();
    let tx = conn.begin_read().unwrap();
    let (total, balances) = sum(&tx, true);
    assert_eq!(total, TOTAL);
    assert_eq!(
        balances,
        model.to_vec(),
        "final balances differ from the replay"
    );
    println!(
        "{iso:?}: {} transfers committed, {} retries; {sums} sums read, {reader_aborts} reader aborts",
        transfers.len(),
        retries.load(Ordering::Relaxed)
    );
}

#[test]
fn serializable_transfers_keep_the_total() {
    run_bank(Isolation::Serializable);
}

#[test]
fn snapshot_transfers_keep_the_total() {
    run_bank(Isolation::Snapshot);
}

/// Accounts come in pairs (2i, 2i+1) that may go negative one at a time but never
/// together: a withdrawal reads both and debits one only if the pair covers it. Under
/// snapshot isolation two such withdrawals can both pass the check (write skew); at
/// Serializable one of them must abort.
#[test]
fn serializable_prevents_write_skew_overdraft() {
    const PAIRS: usize = ACCOUNTS / 2;
    const START: i64 = 100;
    const WITHDRAWALS_PER_WRITER: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let db = setup(&dir, START);
    let start = Arc::new(Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let (db, start) = (db.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                let mut rng = Rng::new(SEED ^ 0x5ca1e ^ t as u64);
                let mut conn = db.connect();
                let mut debits = [0i64; ACCOUNTS];
                // Each committed change: (seq, account, delta).
                let mut log = Vec::new();
                start.wait();
                for _ in 0..WITHDRAWALS_PER_WRITER {
                    let pair = rng.below(PAIRS as u64) as usize;
                    let side = rng.below(2) as usize;
                    let amount = 1 + rng.below(40) as i64;
                    // Deposits now and then keep the pairs from draining for good.
                    let deposit = rng.chance(1, 4);
                    for attempt in 1.. {
                        assert!(attempt <= RETRIES_MAX, "withdrawal livelocked");
                        let mut tx = conn.begin().unwrap();
                        let a = balance(&tx, 2 * pair);
                        let b = balance(&tx, 2 * pair + 1);
                        let delta = if deposit { amount } else { -amount };
                        if a + b + delta < 0 {
                            break;
                        }
                        let target = 2 * pair + side;
                        let old = if side == 0 { a } else { b };
                        tx.put(
                            TABLE,
                            &account(target),
                            (old + delta).to_string().as_bytes(),
                        )
                        .unwrap();
                        if rng.chance(1, 3) {
                            std::thread::yield_now();
                        }
                        match tx.commit_with(Durability::Applied) {
                            Ok(info) => {
                                debits[target] -= delta;
                                log.push((info.seq, target, delta));
                                break;
                            }
                            Err(e) if e.is_retryable() => {}
                            Err(e) => panic!("withdrawal failed: {e}"),
                        }
                    }
                }
                (debits, log)
            })
        })
        .collect();
    let mut debits = [0i64; ACCOUNTS];
    let mut log = Vec::new();
    for (w, l) in history_support::join_all(writers, "withdrawal") {
        for (d, t) in debits.iter_mut().zip(w) {
            *d += t;
        }
        log.extend(l);
    }
    // Every pair stays non-negative after every commit, in commit order: checked on the
    // final state only, a write skew that overdrew a pair could be healed by a later
    // deposit and pass.
    log.sort_unstable();
    let mut replayed = [START; ACCOUNTS];
    for &(seq, target, delta) in &log {
        replayed[target] += delta;
        let pair = target / 2;
        assert!(
            replayed[2 * pair] + replayed[2 * pair + 1] >= 0,
            "pair {pair} overdrawn by write skew at commit {seq}"
        );
    }
    let mut conn = db.connect();
    let tx = conn.begin_read().unwrap();
    let (_, balances) = sum(&tx, false);
    let model: Vec<i64> = debits.iter().map(|d| START - d).collect();
    assert_eq!(
        balances, model,
        "final balances differ from the committed withdrawals"
    );
    for pair in 0..PAIRS {
        assert!(
            balances[2 * pair] + balances[2 * pair + 1] >= 0,
            "pair {pair} overdrawn by write skew: {balances:?}"
        );
    }
    let stats = db.stats();
    println!(
        "write skew guard: {} commits, {} write conflicts, {} SSI refusals",
        stats.tip_seq, stats.write_conflicts, stats.ssi_conflicts
    );
    // The workload put SSI to work (hundreds of refusals a run): without any, the
    // absence of an overdraft would prove nothing of it.
    assert!(stats.ssi_conflicts > 0, "no withdrawal was refused by SSI");
}
