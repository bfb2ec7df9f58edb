//! `capsuledb::raftlog`: the Raft log store against a model, across reopens, and across
//! power losses at every storage operation of a workload.
//!
//! - `model_*`: random appends, truncates, purges, hard-state saves and reopens checked
//!   after every step against a `Vec` model (bounds, every entry, the cache and the
//!   database answering alike), including refused calls that must write nothing.
//! - `crash_*`: the power goes out after the N-th storage operation, for every N, and
//!   the disk keeps a seeded subset of the unsynced writes; after the reopen the log,
//!   its purge record and its hard state are exactly the state after the acknowledged
//!   calls, or after those plus the one in flight: nothing acknowledged is lost, no call
//!   is half done (truncate and purge are all or nothing), the hard state is never torn.

mod raftlog_support;

use capsuledb::raftlog::{Entry, EntryId, HardState, RaftLog};
use capsuledb::rng::Rng;
use capsuledb::storage::SimStorage;
use capsuledb::{Database, Error};
use proptest::prelude::*;
use raftlog_support::open_sim;

/// What a log should hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Model {
    purged: Option<EntryId>,
    entries: Vec<Entry>,
    hard: HardState,
}

impl Model {
    fn last_id(&self) -> Option<EntryId> {
        self.entries.last().map(Entry::id).or(self.purged)
    }

    fn first_index(&self) -> u64 {
        match (self.entries.first(), self.purged) {
            (Some(e), _) => e.index,
            (None, Some(p)) => p.index + 1,
            (None, None) => 0,
        }
    }

    fn next_index(&self) -> u64 {
        self.last_id().map_or(1, |id| id.index + 1)
    }

    fn last_term(&self) -> u64 {
        self.last_id().map_or(0, |id| id.term)
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Append(es) => self.entries.extend(es.iter().cloned()),
            Op::Truncate(from) => self.entries.retain(|e| e.index < *from),
            Op::Purge(upto) => {
                let term = self
                    .entries
                    .iter()
                    .find(|e| e.index == *upto)
                    .map(|e| e.term)
                    .unwrap();
                self.apply(&Op::PurgeTo(EntryId { index: *upto, term }));
            }
            Op::PurgeTo(id) => {
                self.entries.retain(|e| e.index > id.index);
                self.purged = Some(*id);
            }
            Op::Hard(h) => self.hard = *h,
            Op::Checkpoint => {}
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Append(Vec<Entry>),
    Truncate(u64),
    Purge(u64),
    PurgeTo(EntryId),
    Hard(HardState),
    Checkpoint,
}

fn run(log: &RaftLog, op: &Op) -> capsuledb::Result<()> {
    match op {
        Op::Append(es) => log.append(es),
        Op::Truncate(from) => log.truncate(*from),
        Op::Purge(upto) => log.purge(*upto),
        Op::PurgeTo(id) => log.purge_to(*id),
        Op::Hard(h) => log.save_hard_state(h),
        Op::Checkpoint => log.database().checkpoint().map(|_| ()),
    }
}

fn payload(index: u64, term: u64, len: usize) -> Vec<u8> {
    let mut v = format!("{index}@{term}:").into_bytes();
    v.resize(len.max(v.len()), b'a' + (index % 26) as u8);
    v
}

/// A valid next operation for `model`, drawn from `rng`.
fn next_op(model: &Model, rng: &mut Rng) -> Op {
    let held = model.entries.len() as u64;
    match rng.below(12) {
        0..=5 => {
            let term = model.last_term() + u64::from(rng.chance(1, 4));
            let start = model.next_index();
            let n = 1 + rng.below(6);
            let big = rng.chance(1, 8);
            Op::Append(
                (start..start + n)
                    .map(|i| {
                        let len = if big { 5000 } else { rng.below(300) as usize };
                        Entry::new(i, term, payload(i, term, len))
                    })
                    .collect(),
            )
        }
        6 | 7 if held > 0 => {
            let first = model.first_index();
            Op::Truncate(first + rng.below(held + 1))
        }
        8 if held > 0 => Op::Purge(model.first_index() + rng.below(held)),
        9 if rng.chance(1, 3) => {
            let last = model.last_id().unwrap_or_default();
            Op::PurgeTo(EntryId {
                index: last.index + 1 + rng.below(3),
                term: last.term + rng.below(2),
            })
        }
        10 => Op::Hard(HardState {
            term: rng.below(50),
            vote: rng.chance(1, 2).then(|| rng.below(5)),
            commit: rng.below(1000),
        }),
        11 => Op::Checkpoint,
        _ => Op::Hard(HardState {
            term: rng.next_u64(),
            vote: None,
            commit: rng.next_u64(),
        }),
    }
}

/// What the log holds, read through the handle (bounds from memory, entries from both
/// the cache path and the database).
fn observe(log: &RaftLog) -> Model {
    let entries = log.entries_uncached(..).unwrap();
    assert_eq!(
        log.entries(..).unwrap(),
        entries,
        "cache and database agree"
    );
    let mut lent = Vec::new();
    log.for_each_entry(.., |index, term, data| {
        lent.push(Entry::new(index, term, data.to_vec()));
        Ok(())
    })
    .unwrap();
    assert_eq!(lent, entries, "lent and owned reads agree");
    let batch = log.entry_batch(..).unwrap();
    assert_eq!(batch.len(), entries.len());
    assert_eq!(batch.into_entries(), entries, "batch and owned reads agree");
    let observed = Model {
        purged: log.last_purged(),
        entries,
        hard: log.hard_state(),
    };
    assert_eq!(log.first_index(), observed.first_index(), "first_index");
    assert_eq!(log.last_entry_id(), observed.last_id(), "last_entry_id");
    assert_eq!(log.len(), observed.entries.len() as u64);
    observed
}

fn check_against(log: &RaftLog, model: &Model) {
    assert_eq!(&observe(log), model);
    for e in &model.entries {
        assert_eq!(log.entry(e.index).unwrap().as_ref(), Some(e));
    }
    let first = model.first_index();
    if first > 0 {
        assert_eq!(log.entry(first - 1).unwrap(), None);
    }
    assert_eq!(log.entry(model.next_index()).unwrap(), None);
    if let Some(p) = model.purged {
        assert_eq!(log.term(p.index).unwrap(), Some(p.term));
    }
    // Up to a byte budget: from a start, through the entry that brings them to it.
    for (start, budget) in [(first, 0), (first, 100), (first + 1, 1000), (0, usize::MAX)] {
        let mut want = Vec::new();
        let mut bytes = 0;
        for e in model.entries.iter().filter(|e| e.index >= start) {
            if bytes >= budget && !want.is_empty() {
                break;
            }
            bytes += e.data.len();
            want.push(e.clone());
        }
        assert_eq!(
            log.entries_within(start.., budget).unwrap(),
            want,
            "entries_within({start}.., {budget})"
        );
    }
}

/// Calls the log must refuse with `Error::LogOrder`, writing nothing.
fn refused_ops(model: &Model) -> Vec<Op> {
    let mut ops = Vec::new();
    if let Some(last) = model.last_id() {
        let next = last.index + 1;
        ops.push(Op::Append(vec![Entry::new(next + 1, last.term, vec![1])]));
        ops.push(Op::Append(vec![
            Entry::new(next, last.term, vec![1]),
            Entry::new(next + 2, last.term, vec![2]),
        ]));
        if last.term > 0 {
            ops.push(Op::Append(vec![Entry::new(next, last.term - 1, vec![1])]));
        }
        ops.push(Op::Purge(next + 5));
    }
    if let Some(p) = model.purged {
        ops.push(Op::Truncate(p.index));
        ops.push(Op::PurgeTo(EntryId {
            index: p.index,
            term: p.term + 1,
        }));
    }
    ops
}

/// The appends a crash test's log recovered, each a pair of entries (100 and 3000
/// bytes of the pair's number): asserts no pair is torn and the entries are exactly the
/// first pairs appended (`what` ends the message), and returns how many pairs there are.
fn recovered_pairs(log: &RaftLog, context: &str, what: &str) -> u64 {
    let got = log.entries_uncached(..).unwrap();
    assert_eq!(got.len() % 2, 0, "{context}: torn append");
    for (j, e) in got.iter().enumerate() {
        let i = j as u64 / 2;
        let len = if j % 2 == 0 { 100 } else { 3000 };
        assert_eq!(
            (e.index, e.data.clone()),
            (j as u64 + 1, vec![i as u8; len]),
            "{context}{what}"
        );
    }
    got.len() as u64 / 2
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn model_random_operations_and_reopens(seed: u64, steps in 10usize..60) {
        let sim = SimStorage::new();
        let mut db = open_sim(&sim).unwrap();
        let mut log = RaftLog::open(&db).unwrap();
        let mut model = Model::default();
        let mut rng = Rng::new(seed);
        for step in 0..steps {
            if rng.chance(1, 10) {
                drop(log);
                if rng.chance(1, 2) {
                    db.close().unwrap();
                    db = open_sim(&sim).unwrap();
                }
                log = RaftLog::open(&db).unwrap();
            } else {
                let op = next_op(&model, &mut rng);
                run(&log, &op).unwrap_or_else(|e| panic!("step {step}: {op:?}: {e}"));
                model.apply(&op);
            }
            for op in refused_ops(&model) {
                let got = run(&log, &op);
                prop_assert!(
                    matches!(got, Err(Error::LogOrder { .. })),
                    "step {}: {:?} gave {:?}", step, op, got
                );
            }
            check_against(&log, &model);
        }
    }
}

#[test]
fn a_new_log_starts_at_its_first_append() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("r.db")).unwrap();
    let log = RaftLog::open(&db).unwrap();
    assert_eq!((log.first_index(), log.last_index()), (0, None));
    log.append(&[Entry::new(1, 1, b"x".to_vec())]).unwrap();
    assert_eq!((log.first_index(), log.last_index()), (1, Some(1)));
    // Truncating everything returns to a log that never held anything.
    log.truncate(0).unwrap();
    assert_eq!((log.first_index(), log.last_index()), (0, None));
    log.append(&[Entry::new(0, 0, Vec::new())]).unwrap();
    assert_eq!(log.entry(0).unwrap(), Some(Entry::new(0, 0, Vec::new())));
}

#[test]
fn a_payload_over_the_limit_is_refused_naming_the_payloads_limit() {
    use capsuledb::raftlog::ENTRY_PAYLOAD_MAX;
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("r.db")).unwrap();
    let log = RaftLog::open(&db).unwrap();
    // The longest payload fits (its term makes the stored value exactly the limit).
    log.append(&[Entry::new(1, 1, vec![7; ENTRY_PAYLOAD_MAX])])
        .unwrap();
    assert_eq!(log.entry(1).unwrap().unwrap().data.len(), ENTRY_PAYLOAD_MAX);
    // One byte more is refused naming the payload and its own limit, nothing written.
    let err = log
        .append(&[Entry::new(2, 1, vec![7; ENTRY_PAYLOAD_MAX + 1])])
        .unwrap_err();
    assert!(
        matches!(err, Error::ValueTooLarge { len, max } if len == ENTRY_PAYLOAD_MAX + 1 && max == ENTRY_PAYLOAD_MAX),
        "{err:?}"
    );
    assert_eq!(log.last_index(), Some(1));
}

#[test]
fn lent_reads_follow_ranges_and_stop_at_the_first_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("lent.db")).unwrap();
    let log = RaftLog::open(&db).unwrap();
    let batch: Vec<Entry> = (1..=300)
        .map(|i| Entry::new(i, 2, payload(i, 2, 40)))
        .collect();
    log.append(&batch).unwrap();
    for checkpointed in [false, true] {
        if checkpointed {
            db.checkpoint().unwrap();
        }
        for (lo, hi) in [(1, 300), (17, 17), (250, 299), (299, 400)] {
            let mut seen = Vec::new();
            log.for_each_entry(lo..=hi, |index, term, data| {
                assert_eq!((term, data), (2, &payload(index, 2, 40)[..]));
                seen.push(index);
                Ok(())
            })
            .unwrap();
            assert_eq!(seen, (lo..=hi.min(300)).collect::<Vec<_>>(), "{lo}..={hi}");
            let batch = log.entry_batch(lo..=hi).unwrap();
            let owned = log.entries_uncached(lo..=hi).unwrap();
            assert_eq!(
                batch.iter().map(|e| e.to_entry()).collect::<Vec<_>>(),
                owned
            );
            assert_eq!(batch.iter().rev().count(), seen.len());
        }
        let mut calls = 0;
        let stopped = log.for_each_entry(.., |index, _, _| {
            calls += 1;
            if index == 5 {
                return Err(capsuledb::Error::ReadOnly);
            }
            Ok(())
        });
        assert!(matches!(stopped, Err(capsuledb::Error::ReadOnly)));
        assert_eq!(calls, 5);
    }
}

#[test]
fn concurrent_appenders_on_separate_logs() {
    let sim = SimStorage::new();
    let db = open_sim(&sim).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = RaftLog::open_named(&db, &format!("g{t}")).unwrap();
            std::thread::spawn(move || {
                for i in 0..50u64 {
                    let es: Vec<Entry> = (i * 4 + 1..=i * 4 + 4)
                        .map(|j| Entry::new(j, 1, payload(j, t, 40)))
                        .collect();
                    log.append(&es).unwrap();
                }
                log
            })
        })
        .collect();
    for (t, h) in threads.into_iter().enumerate() {
        let log = h.join().unwrap();
        let all = log.entries_uncached(..).unwrap();
        assert_eq!(all.len(), 200);
        assert!(
            all.iter()
                .zip(1..)
                .all(|(e, i)| e.index == i && e.data == payload(i, t as u64, 40))
        );
    }
}

// ---------------------------------------------------------------------------------
// Crashes.

/// A deterministic workload: each op with the model state after it.
fn crash_workload(seed: u64, ops: usize) -> Vec<(Op, Model)> {
    let mut rng = Rng::new(seed);
    let mut model = Model::default();
    let mut out = Vec::new();
    for _ in 0..ops {
        let op = next_op(&model, &mut rng);
        model.apply(&op);
        out.push((op, model.clone()));
    }
    out
}

/// Runs the ops until one fails; returns how many were acknowledged.
fn run_until_failure(db: &Database, work: &[(Op, Model)]) -> usize {
    let Ok(log) = RaftLog::open(db) else { return 0 };
    for (n, (op, _)) in work.iter().enumerate() {
        match run(&log, op) {
            Ok(()) => {}
            // A checkpoint failing loses nothing; the next commit finds out.
            Err(_) if matches!(op, Op::Checkpoint) => {}
            Err(e) => {
                assert!(
                    !matches!(e, Error::LogOrder { .. }),
                    "op {n} {op:?} refused: {e}"
                );
                return n;
            }
        }
    }
    work.len()
}

fn setup_sim() -> SimStorage {
    let sim = SimStorage::new();
    let db = open_sim(&sim).unwrap();
    drop(RaftLog::open(&db).unwrap());
    db.close().unwrap();
    sim
}

/// Reopens a crashed image and checks it holds the state after `acked` ops or after
/// `acked + 1` (the one in flight landed).
fn check_recovered(image: &SimStorage, work: &[(Op, Model)], acked: usize, context: &str) {
    let db = open_sim(image).unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
    let report = db.check_integrity().unwrap();
    assert!(report.is_ok(), "{context}: {:?}", report.problems);
    let log = RaftLog::open(&db).unwrap_or_else(|e| panic!("{context}: open log: {e}"));
    let got = observe(&log);
    let state = |n: usize| match n {
        0 => Model::default(),
        n => work[n - 1].1.clone(),
    };
    let acked_state = state(acked);
    let ok = got == acked_state || (acked < work.len() && got == state(acked + 1));
    assert!(
        ok,
        "{context}: {acked} ops acknowledged (next {:?});\n got {:?}\n want {:?}",
        work.get(acked).map(|w| &w.0),
        summary(&got),
        summary(&acked_state)
    );
    // The log goes on after the crash.
    let next = got.last_id().map_or(1, |id| id.index + 1);
    log.append(&[Entry::new(next, got.last_term(), b"after".to_vec())])
        .unwrap_or_else(|e| panic!("{context}: append after crash: {e}"));
}

fn summary(m: &Model) -> String {
    format!(
        "purged {:?}, entries {:?}, hard {:?}",
        m.purged,
        m.entries
            .iter()
            .map(|e| (e.index, e.term))
            .collect::<Vec<_>>(),
        m.hard
    )
}

#[test]
fn crash_at_every_io_point() {
    let work = crash_workload(5, 40);
    let sim = setup_sim();
    let base = sim.counts();
    let db = open_sim(&sim).unwrap();
    assert_eq!(run_until_failure(&db, &work), work.len());
    db.close().unwrap();
    let c = sim.counts();
    let total_ops = (c.writes + c.syncs + c.set_lens) - (base.writes + base.syncs + base.set_lens);
    let mut cases = 0;
    for n in 0..total_ops + 3 {
        let sim = setup_sim();
        let db = open_sim(&sim).unwrap();
        sim.power_off_after(n);
        let acked = run_until_failure(&db, &work);
        drop(db);
        for seed in 0..3 {
            let image = sim.fork();
            image.crash(n * 7 + seed);
            let context = format!("power off after {n} ops, crash seed {seed}");
            check_recovered(&image, &work, acked, &context);
            cases += 1;
        }
    }
    println!("raft log crash sweep: {total_ops} I/O points, {cases} crashes checked");
}

#[test]
fn crash_at_random_points_of_long_runs() {
    let mut rng = Rng::new(99);
    for round in 0..16 {
        let work = crash_workload(1000 + round, 150);
        let sim = setup_sim();
        let db = open_sim(&sim).unwrap();
        sim.power_off_after(50 + rng.below(1200));
        let acked = run_until_failure(&db, &work);
        drop(db);
        for seed in 0..3 {
            let image = sim.fork();
            image.crash(rng.next_u64());
            let context = format!("long run {round}, crash seed {seed}, {acked} acked");
            check_recovered(&image, &work, acked, &context);
        }
    }
}

/// The storage operations a run of `work` on two logs named `prefix0`, `prefix1` takes,
/// from their open to a clean close.
fn ops_of(prefix: &str, work: impl FnOnce(&[RaftLog]) -> Vec<(u64, u64)>) -> u64 {
    let sim = setup_sim();
    let base = sim.counts();
    let db = open_sim(&sim).unwrap();
    let logs: Vec<RaftLog> = (0..2)
        .map(|t| RaftLog::open_named(&db, &format!("{prefix}{t}")).unwrap())
        .collect();
    work(&logs);
    drop(logs);
    db.close().unwrap();
    let c = sim.counts();
    (c.writes + c.syncs + c.set_lens) - (base.writes + base.syncs + base.set_lens)
}

/// The concurrent appenders' workload: two logs appended from two threads and a
/// hard-state saver after each; each thread's acknowledged appends and saves.
fn concurrent_appenders(logs: &[RaftLog], appends: u64) -> Vec<(u64, u64)> {
    let handles: Vec<_> = logs
        .iter()
        .cloned()
        .map(|log| {
            std::thread::spawn(move || {
                let mut acked = 0;
                for i in 0..appends {
                    let es = [
                        Entry::new(i * 2 + 1, 1, vec![i as u8; 100]),
                        Entry::new(i * 2 + 2, 1, vec![i as u8; 3000]),
                    ];
                    if log.append(&es).is_err() {
                        break;
                    }
                    acked = i + 1;
                }
                let mut hard_acked = 0;
                for t in 1..=appends {
                    if log
                        .save_hard_state(&HardState {
                            term: t,
                            vote: Some(t),
                            commit: t * 2,
                        })
                        .is_err()
                    {
                        break;
                    }
                    hard_acked = t;
                }
                (acked, hard_acked)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Two logs appended from two threads (sharing group commits) and a hard-state saver
/// beside them: each log holds its acknowledged appends, plus at most the one in
/// flight; the hard state is the last acknowledged save or the one in flight.
#[test]
fn crash_with_concurrent_appenders() {
    let appends = 30u64;
    // The points cover the whole run (their number varies a little with how the two
    // threads share groups) and a few past its end: a fixed 400 left the last saves
    // uncut when the run took more.
    let total_ops = ops_of("c", |logs| concurrent_appenders(logs, appends));
    println!("concurrent appenders: {total_ops} I/O points, every third cut");
    for n in (0..total_ops + 40).step_by(3) {
        let sim = setup_sim();
        let db = open_sim(&sim).unwrap();
        let logs: Vec<RaftLog> = (0..2)
            .map(|t| RaftLog::open_named(&db, &format!("c{t}")).unwrap())
            .collect();
        sim.power_off_after(n);
        let acks = concurrent_appenders(&logs, appends);
        drop(logs);
        drop(db);
        for seed in 0..2 {
            let image = sim.fork();
            image.crash(n * 3 + seed);
            let db = open_sim(&image).unwrap();
            for (t, &(acked, hard_acked)) in acks.iter().enumerate() {
                let context = format!("power off after {n}, seed {seed}, log {t}");
                let log = RaftLog::open_named(&db, &format!("c{t}")).unwrap();
                let pairs = recovered_pairs(&log, &context, "");
                assert!(
                    pairs == acked || pairs == acked + 1,
                    "{context}: {pairs} appends recovered, {acked} acknowledged"
                );
                let h = log.hard_state();
                let expect = |t: u64| match t {
                    0 => HardState::default(),
                    t => HardState {
                        term: t,
                        vote: Some(t),
                        commit: t * 2,
                    },
                };
                assert!(
                    h == expect(hard_acked) || h == expect(hard_acked + 1),
                    "{context}: hard state {h:?}, {hard_acked} saves acknowledged"
                );
            }
        }
    }
}

/// The pipelined appenders' workload: two logs, each keeping up to `IN_FLIGHT`
/// appends in flight; each thread's appends submitted and reported durable.
fn pipelined_appenders(logs: &[RaftLog], appends: u64) -> Vec<(u64, u64)> {
    const IN_FLIGHT: usize = 4;
    let handles: Vec<_> = logs
        .iter()
        .cloned()
        .map(|log| {
            std::thread::spawn(move || {
                // (appends submitted, appends reported durable)
                let mut submitted = 0;
                let mut durable = 0;
                let mut tickets = std::collections::VecDeque::new();
                let mut failed = false;
                for i in 0..appends {
                    let es = [
                        Entry::new(i * 2 + 1, 1, vec![i as u8; 100]),
                        Entry::new(i * 2 + 2, 1, vec![i as u8; 3000]),
                    ];
                    match log.append_async(&es) {
                        Ok(ticket) => tickets.push_back(ticket.unwrap()),
                        Err(_) => {
                            failed = true;
                            break;
                        }
                    }
                    submitted = i + 1;
                    if tickets.len() >= IN_FLIGHT {
                        let oldest = tickets.pop_front().unwrap();
                        if oldest.wait().is_err() {
                            failed = true;
                            break;
                        }
                        durable += 1;
                    }
                }
                while !failed && let Some(t) = tickets.pop_front() {
                    if t.wait().is_err() {
                        break;
                    }
                    durable += 1;
                }
                (submitted, durable)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Two logs, each keeping up to four appends in flight ([`RaftLog::append_async`]) and
/// waiting on the oldest ticket before submitting more, with the power going out at
/// every third storage operation: each log recovers a prefix of what was appended,
/// holding every append whose ticket was waited on successfully, none torn.
#[test]
fn crash_with_pipelined_appends() {
    let appends = 24u64;
    // The points cover the whole run and a few past its end (see above).
    let total_ops = ops_of("p", |logs| pipelined_appenders(logs, appends));
    println!("pipelined appenders: {total_ops} I/O points, every third cut");
    for n in (0..total_ops + 40).step_by(3) {
        let sim = setup_sim();
        let db = open_sim(&sim).unwrap();
        let logs: Vec<RaftLog> = (0..2)
            .map(|t| RaftLog::open_named(&db, &format!("p{t}")).unwrap())
            .collect();
        sim.power_off_after(n);
        let acks = pipelined_appenders(&logs, appends);
        drop(logs);
        drop(db);
        for seed in 0..2 {
            let image = sim.fork();
            image.crash(n * 5 + seed);
            let db = open_sim(&image).unwrap();
            for (t, &(submitted, durable)) in acks.iter().enumerate() {
                let context = format!("power off after {n}, seed {seed}, log {t}");
                let log = RaftLog::open_named(&db, &format!("p{t}")).unwrap();
                let pairs = recovered_pairs(&log, &context, ": not a prefix of the appends");
                assert!(
                    durable <= pairs && pairs <= submitted,
                    "{context}: {pairs} appends recovered, {durable} reported durable, \
                     {submitted} submitted"
                );
                let last = (pairs > 0).then_some(pairs * 2);
                assert_eq!(log.last_index(), last, "{context}");
            }
        }
    }
}

/// Without a crash, every pipelined append is durable once its ticket (or a later
/// one) was waited on, and a reopen sees them all in order.
#[test]
fn pipelined_appends_survive_a_reopen() {
    let sim = setup_sim();
    let db = open_sim(&sim).unwrap();
    let log = RaftLog::open(&db).unwrap();
    let mut last = None;
    for i in 1..=40u64 {
        last = log
            .append_async(&[Entry::new(i, 1 + i / 10, vec![i as u8; 50])])
            .unwrap();
    }
    assert_eq!(log.append_async(&[]).unwrap().map(|t| t.seq()), None);
    let last = last.unwrap();
    assert_eq!(last.last(), EntryId { index: 40, term: 5 });
    last.wait().unwrap();
    // The crash image is taken before anything else could flush.
    let image = sim.fork();
    image.crash_losing_unsynced();
    drop(log);
    drop(db);
    let db = open_sim(&image).unwrap();
    let log = RaftLog::open(&db).unwrap();
    let got = log.entries_uncached(..).unwrap();
    assert_eq!(got.len(), 40);
    for (e, i) in got.iter().zip(1..) {
        assert_eq!(e, &Entry::new(i, 1 + i / 10, vec![i as u8; 50]));
    }
}
