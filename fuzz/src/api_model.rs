//! The `api_model` harness: the input as a sequence of API operations ([`op`](super::op))
//! on simulated storage, checked against a `BTreeMap` model, with checkpoints,
//! compaction, reopens, crashes (process crash, power loss with torn writes, power loss
//! losing everything unsynced) and power cuts after a number of I/O operations.

use super::input::Input;
use super::model::{
    CrashImage, History, Key, MODEL_TABLES, Model, Table, check_view, crash_image, in_range,
    io_failure, read_state,
};
use super::op::{self, read_bound, read_key, read_value};
use capsuledb::storage::SimStorage;
use capsuledb::{
    Connection, Database, Durability, Error, Isolation, MAX_KEY_LEN, Options, Transaction,
};
use std::sync::Arc;

/// Operations run per input, at most (keeps every input fast).
const OPS_MAX: usize = 600;
/// Reopens and crashes per input, at most.
const SESSIONS_MAX: usize = 12;
/// `begin_read` snapshots held at once, at most.
const READERS_MAX: usize = 2;

/// Number of operation codes (op bytes are taken modulo this).
pub const OP_COUNT: u8 = op::COUNT;

/// How a session ended.
enum SessionEnd {
    /// The input is used up (or its op budget): close and stop. `power_cut`: a power
    /// cut was armed, so closing may fail.
    Done { power_cut: bool },
    /// Close cleanly, then reopen.
    Reopen { power_cut: bool },
    /// Reopen this crash image.
    Crash(CrashImage),
}

/// The open read-write transaction and the model of what it sees.
struct Open<'c> {
    tx: Transaction<'c>,
    view: Model,
    wrote: bool,
}

/// Interprets the input as API operations against a `BTreeMap` model on simulated
/// storage (see [`op`] for the encoding). The first byte chooses options: page size,
/// version-store budget and checkpoint interval (small ones make checkpoints run on
/// their own). After every crash the reopened database must hold exactly the state
/// after some commit at or after the last one whose acknowledgement must survive that
/// crash, and `check_integrity()` must be clean.
pub fn fuzz_api_model(data: &[u8]) {
    let mut input = Input::new(data);
    let config = input.u8();
    let options = Options::new()
        .random_seed(u64::from(config))
        .page_size(if config & 1 == 0 { 4096 } else { 8192 })
        .version_store_budget(match (config >> 1) & 3 {
            0 | 1 => 64 << 20,
            2 => 64 << 10,
            // The smallest budget the options take.
            _ => 16 << 10,
        })
        .checkpoint_log_commits(if config & 8 == 0 { 100_000 } else { 4 });
    let mut sim = SimStorage::new();
    let mut hist = History {
        states: vec![Model::new()],
        durable: 0,
        written: 0,
    };
    let mut ops_left = OPS_MAX;
    let mut context = "create".to_string();
    // One open more than sessions: the last session's crash or reopen is checked too.
    for session in 0..=SESSIONS_MAX {
        let db = options
            .open_storage(Arc::new(sim.clone()))
            .unwrap_or_else(|e| panic!("open after {context}: {e}"));
        let got = read_state(&db);
        let floor = hist.durable.min(hist.written);
        let Some(i) = (floor..hist.states.len())
            .rev()
            .find(|&i| hist.states[i] == got)
        else {
            panic!(
                "after {context} the database holds a state that is not a commit prefix at \
                 or after the last one that must survive (index {floor} of {}):\n  got {got:?}\n  \
                 latest {:?}\n  floor {:?}",
                hist.states.len(),
                hist.latest(),
                hist.states[floor],
            )
        };
        let report = db.check_integrity().expect("check_integrity");
        assert!(report.is_ok(), "after {context}: {:?}", report.problems);
        if session == SESSIONS_MAX {
            return;
        }
        hist = History {
            states: vec![hist.states.swap_remove(i)],
            durable: 0,
            written: 0,
        };
        let end = run_session(&db, &sim, &mut input, &mut hist, &mut ops_left);
        match end {
            SessionEnd::Crash(image) => {
                // Dropping the old engine drains into the old storage; the image is
                // already taken.
                drop(db);
                hist.durable = image.floor;
                hist.written = image.floor;
                context = image.what;
                sim = image.storage;
            }
            SessionEnd::Reopen { power_cut } | SessionEnd::Done { power_cut } => {
                let done = matches!(end, SessionEnd::Done { .. });
                match db.close() {
                    Ok(()) => {
                        // Closing wrote and synced every commit.
                        sim.crash_losing_unsynced();
                        let last = hist.states.len() - 1;
                        hist.durable = last;
                        hist.written = last;
                        context = "close and reopen".into();
                    }
                    Err(e) if power_cut => {
                        let image = crash_image(&sim, 1, 0, &hist);
                        context = format!("close failing after a power cut ({e})");
                        hist.durable = image.floor;
                        hist.written = image.floor;
                        sim = image.storage;
                    }
                    Err(e) => panic!("close failed: {e}"),
                }
                if done {
                    // One last reopen checks what the close left.
                    let db = options
                        .open_storage(Arc::new(sim.clone()))
                        .unwrap_or_else(|e| panic!("open after {context}: {e}"));
                    let got = read_state(&db);
                    let floor = hist.durable;
                    assert!(
                        hist.states[floor..].contains(&got),
                        "after {context}: got {got:?}, latest {:?}",
                        hist.latest()
                    );
                    let report = db.check_integrity().expect("check_integrity");
                    assert!(report.is_ok(), "after {context}: {:?}", report.problems);
                    return;
                }
            }
        }
    }
}

/// Runs operations until the input (or the op budget) ends or one ends the session.
fn run_session(
    db: &Database,
    sim: &SimStorage,
    input: &mut Input<'_>,
    hist: &mut History,
    ops_left: &mut usize,
) -> SessionEnd {
    let mut power_cut = false;
    // Each operation begins at most one transaction, each on its own connection, so a
    // transaction can outlive the loop iteration that began it.
    let mut conns: Vec<Connection> = (0..(*ops_left).min(input.data.len()) + 2)
        .map(|_| db.connect())
        .collect();
    let mut pool = conns.iter_mut();
    let mut open: Option<Open<'_>> = None;
    let mut readers: Vec<(Transaction<'_>, Model)> = Vec::new();
    // On an I/O error during a power cut: crash now (a failed commit may or may not
    // have reached the disk, so its state is a candidate, not a floor).
    macro_rules! fail {
        ($e:expr, $what:expr) => {{
            let e = $e;
            assert!(
                power_cut && io_failure(&e),
                "{} failed without a fault injected: {e}",
                $what
            );
            let seed = input.u64();
            return SessionEnd::Crash(crash_image(sim, 1, seed, hist));
        }};
    }
    while !input.is_empty() && *ops_left > 0 {
        *ops_left -= 1;
        let code = input.u8() % OP_COUNT;
        let needs_tx = matches!(
            code,
            op::CREATE | op::DROP | op::PUT | op::DELETE | op::GET | op::RANGE | op::CHECK_ALL
        );
        if code == op::BEGIN || (needs_tx && open.is_none()) {
            let iso = if code == op::BEGIN && input.u8() % 2 == 1 {
                Isolation::Snapshot
            } else {
                Isolation::Serializable
            };
            let Some(conn) = pool.next() else {
                return SessionEnd::Done { power_cut };
            };
            let tx = conn.begin_with(iso).expect("begin");
            assert_eq!(
                tx.snapshot_seq(),
                db.stats().tip_seq,
                "a new snapshot sees every commit"
            );
            open = Some(Open {
                tx,
                view: hist.latest().clone(),
                wrote: false,
            });
        }
        match code {
            op::BEGIN => {}
            op::CREATE | op::DROP => {
                let o = open.as_mut().expect("open");
                let name = MODEL_TABLES[usize::from(input.u8()) % MODEL_TABLES.len()];
                if code == op::CREATE {
                    let r = o.tx.create_table(name);
                    if o.view.contains_key(name) {
                        assert!(
                            matches!(&r, Err(Error::TableExists { .. })),
                            "create {name}: {r:?}"
                        );
                    } else {
                        r.unwrap_or_else(|e| panic!("create {name}: {e}"));
                        o.view.insert(name.to_string(), Table::new());
                        o.wrote = true;
                    }
                } else {
                    let r = o.tx.drop_table(name);
                    if o.view.remove(name).is_some() {
                        r.unwrap_or_else(|e| panic!("drop {name}: {e}"));
                        o.wrote = true;
                    } else {
                        assert!(
                            matches!(&r, Err(Error::TableNotFound { .. })),
                            "drop {name}: {r:?}"
                        );
                    }
                }
            }
            op::PUT | op::DELETE => {
                let o = open.as_mut().expect("open");
                let name = MODEL_TABLES[usize::from(input.u8()) % MODEL_TABLES.len()];
                let key = read_key(input);
                let value = (code == op::PUT).then(|| read_value(input));
                let r = match &value {
                    Some(v) => o.tx.put(name, &key, v),
                    None => o.tx.delete(name, &key),
                };
                match o.view.get_mut(name) {
                    _ if key.len() > MAX_KEY_LEN => {
                        assert!(
                            matches!(&r, Err(Error::KeyTooLarge { .. })),
                            "long key: {r:?}"
                        )
                    }
                    Some(table) => {
                        r.unwrap_or_else(|e| panic!("write to {name}: {e}"));
                        match value {
                            Some(v) => table.insert(key, v),
                            None => table.remove(&key),
                        };
                        o.wrote = true;
                    }
                    None => assert!(matches!(&r, Err(Error::TableNotFound { .. })), "{r:?}"),
                }
            }
            op::GET => {
                let o = open.as_ref().expect("open");
                let name = MODEL_TABLES[usize::from(input.u8()) % MODEL_TABLES.len()];
                let key = read_key(input);
                let r = o.tx.get(name, &key);
                let r2 = o.tx.get_ref(name, &key).map(|v| v.map(|v| v.to_vec()));
                match o.view.get(name) {
                    _ if key.len() > MAX_KEY_LEN => {
                        assert!(matches!(&r, Err(Error::KeyTooLarge { .. })), "{r:?}")
                    }
                    Some(table) => {
                        let want = table.get(&key).cloned();
                        assert_eq!(r.expect("get"), want, "get {name} {key:?}");
                        assert_eq!(r2.expect("get_ref"), want, "get_ref {name} {key:?}");
                    }
                    None => assert!(matches!(&r, Err(Error::TableNotFound { .. })), "{r:?}"),
                }
            }
            op::RANGE => {
                let o = open.as_ref().expect("open");
                let name = MODEL_TABLES[usize::from(input.u8()) % MODEL_TABLES.len()];
                let lo = read_bound(input);
                let hi = read_bound(input);
                let pattern = input.u8();
                let r = o.tx.range(name, (lo.clone(), hi.clone()));
                match o.view.get(name) {
                    Some(table) => {
                        let want: Vec<(Key, Vec<u8>)> = table
                            .iter()
                            .filter(|(k, _)| in_range(&lo, &hi, k))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        let mut it = r.expect("range");
                        let (mut front, mut back) = (Vec::new(), Vec::new());
                        // Both ends as the pattern's bits say (all ones: reverse only).
                        for step in 0..=want.len() {
                            let rev = pattern == 0xff || (pattern >> (step % 8)) & 1 == 1;
                            let item = if rev { it.next_back() } else { it.next() };
                            let Some(item) = item else { break };
                            let (k, v) = item.expect("range entry");
                            if rev {
                                back.push((k, v.to_vec()));
                            } else {
                                front.push((k, v.to_vec()));
                            }
                        }
                        assert!(it.next().is_none(), "range {lo:?}..{hi:?} yields too much");
                        back.reverse();
                        front.extend(back);
                        assert_eq!(
                            front, want,
                            "range {name} {lo:?}..{hi:?} pattern {pattern:#x}"
                        );
                    }
                    None => assert!(matches!(r, Err(Error::TableNotFound { .. }))),
                }
            }
            op::CHECK_ALL => {
                let o = open.as_ref().expect("open");
                check_view(&o.tx, &o.view);
            }
            op::COMMIT => {
                let level = match input.u8() % 3 {
                    0 => Durability::Applied,
                    1 => Durability::Written,
                    _ => Durability::Durable,
                };
                if let Some(o) = open.take() {
                    let snapshot = o.tx.snapshot_seq();
                    let tip = db.stats().tip_seq;
                    match o.tx.commit_with(level) {
                        Ok(info) => {
                            assert_eq!(info.durability, level);
                            if o.wrote {
                                assert_eq!(
                                    info.seq,
                                    tip + 1,
                                    "a writing commit takes the next seq"
                                );
                                hist.push(o.view, Some(level));
                            } else {
                                assert_eq!(info.seq, snapshot, "a commit without writes");
                                // It waited until the state it read (the latest: one
                                // transaction at a time) reached its level.
                                hist.reach(level);
                            }
                        }
                        Err(e) => {
                            if o.wrote {
                                hist.push(o.view, None);
                            }
                            fail!(e, "commit");
                        }
                    }
                }
            }
            op::ROLLBACK => {
                if let Some(o) = open.take() {
                    o.tx.rollback();
                }
            }
            op::CHECKPOINT => {
                if let Err(e) = db.checkpoint() {
                    fail!(e, "checkpoint");
                }
            }
            op::COMPACT => {
                if let Err(e) = db.compact() {
                    fail!(e, "compact");
                }
            }
            op::GC => match db.collect_garbage() {
                // Every queued commit's marker is written.
                Ok(()) => hist.reach(Durability::Written),
                Err(e) => fail!(e, "collect_garbage"),
            },
            op::CRASH => {
                let kind = input.u8();
                let seed = input.u64();
                return SessionEnd::Crash(crash_image(sim, kind, seed, hist));
            }
            op::REOPEN => return SessionEnd::Reopen { power_cut },
            op::INTEGRITY => {
                let report = db.check_integrity().expect("check_integrity");
                assert!(report.is_ok(), "{:?}", report.problems);
            }
            op::OPEN_READER => {
                let Some(conn) = pool.next() else {
                    return SessionEnd::Done { power_cut };
                };
                if readers.len() >= READERS_MAX {
                    readers.remove(0);
                }
                let tx = conn.begin_read().expect("begin_read");
                readers.push((tx, hist.latest().clone()));
            }
            op::CHECK_READER => {
                let i = usize::from(input.u8());
                if !readers.is_empty() {
                    let n = i % readers.len();
                    let (tx, model) = &readers[n];
                    check_view(tx, model);
                    assert!(matches!(
                        tx.get("t3", b""),
                        Err(Error::TableNotFound { .. })
                    ));
                }
            }
            op::POWER_CUT => {
                let n = u64::from(input.u8() % 64);
                sim.power_off_after(n);
                power_cut = true;
            }
            _ => unreachable!("op codes are taken modulo OP_COUNT"),
        }
    }
    SessionEnd::Done { power_cut }
}
