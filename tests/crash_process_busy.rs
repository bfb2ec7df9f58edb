//! A real process crash while the engine is busy with everything at once: a child process
//! opened with a small version-store budget and short checkpoint interval runs, on real
//! files, small inserting writers, an updater that rewrites the same keys in every
//! commit, a writer of large transactions (each over half the budget, so each goes
//! straight into the tree) that also deletes half of the previous one, and a thread that
//! checkpoints and compacts continuously; the idle watcher folds in the pauses; two
//! incrementers read and rewrite one counter (serializable: no two acknowledged
//! increments may see the same value). The
//! parent kills it with SIGKILL at a seeded moment and reopens the file: every
//! acknowledged commit is there whole, no key shows a state older than its last
//! acknowledged commit (an earlier state counts as lost data), at most each writer's
//! one in-flight commit is there too (whole), and the file passes `check_integrity()`.

mod crash_support;

use capsuledb::rng::Rng;
use capsuledb::{Database, Durability, Options, Transaction};
use crash_support::{KillTiming, Killed, child_args, keys_under, kill_child, rounds, say};
use std::collections::BTreeMap;
use std::time::Duration;

const TABLE: &str = "t";
/// Small inserting writers (two keys a commit).
const SMALL_WRITERS: u32 = 2;
/// Keys the updater rewrites in every commit.
const UPDATED_KEYS: u32 = 8;
/// Threads incrementing the round's counter.
const INCREMENTERS: u32 = 2;
/// Keys of one large transaction, and their value length: 6,000 × about 150 bytes,
/// over half of [`BUDGET`].
const LARGE_KEYS: u32 = 6_000;
const LARGE_VALUE: usize = 120;
/// The child's version-store budget: small, so the store fills and folds often.
const BUDGET: u64 = 1 << 20;
/// The child's checkpoint interval in commits.
const CHECKPOINT_COMMITS: u64 = 300;
/// Rounds in the normal run, and per file in a long run (`CAPSULEDB_KILL_ROUNDS=N`).
const ROUNDS: u32 = 12;
const SEED: u64 = 0xB05E_0002;
/// Kill the child 30..400 ms after it reports ready (seeded), or in some rounds at most
/// 60 ms after the spawn.
const TIMING: KillTiming = KillTiming {
    min_ms: 30,
    max_ms: 400,
    early_max_ms: 60,
};

fn options() -> Options {
    Options::new()
        .version_store_budget(BUDGET)
        .checkpoint_log_commits(CHECKPOINT_COMMITS)
}

fn small_keys(round: u32, thread: u32, counter: u64) -> [Vec<u8>; 2] {
    [
        format!("r{round:03}/s{thread}/{counter:08}/a").into_bytes(),
        format!("r{round:03}/s{thread}/{counter:08}/b").into_bytes(),
    ]
}

/// Mostly short values; every 17th commit's are about 8 KB (overflow pages).
fn small_value(round: u32, thread: u32, counter: u64, which: usize) -> Vec<u8> {
    let times = if counter % 17 == 5 {
        400
    } else {
        counter % 13 + 1
    };
    format!("small {round} {thread} {counter} {which};")
        .repeat(times as usize)
        .into_bytes()
}

fn updated_key(round: u32, k: u32) -> Vec<u8> {
    format!("r{round:03}/u/{k:02}").into_bytes()
}

/// What the updater's commit `counter` writes to key `k`.
fn updated_value(counter: u64, k: u32) -> Vec<u8> {
    format!("update {counter} of key {k};")
        .repeat((counter % 7 + 1) as usize)
        .into_bytes()
}

fn counter_key(round: u32) -> Vec<u8> {
    format!("r{round:03}/counter").into_bytes()
}

fn large_key(round: u32, batch: u64, i: u32) -> Vec<u8> {
    format!("r{round:03}/L/{batch:04}/{i:05}").into_bytes()
}

/// [`LARGE_VALUE`] bytes; every 500th key's 6,000 (an overflow extent in the tree).
fn large_value(round: u32, batch: u64, i: u32) -> Vec<u8> {
    let mut v = format!("large {round} {batch} {i};").into_bytes();
    v.resize(if i % 500 == 7 { 6_000 } else { LARGE_VALUE }, b'.');
    v
}

/// Commits `body` with `Durability::Durable`, retrying conflicts; returns the sequence
/// and what `body` returned in the attempt that committed.
fn commit_retrying(
    db: &Database,
    body: impl Fn(&mut Transaction<'_>) -> u64,
) -> Result<(u64, u64), String> {
    let mut c = db.connect();
    loop {
        let mut tx = c.begin().map_err(|e| e.to_string())?;
        let said = body(&mut tx);
        match tx.commit_with(Durability::Durable) {
            Ok(info) => return Ok((info.seq, said)),
            Err(e) if e.is_retryable() => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// One writer of the child: commits `body(counter)` for counter 0, 1, ... and reports
/// each acknowledgement as `ACK <name> <counter> <seq> <what body returned>`.
fn writer(
    db: Database,
    name: String,
    body: impl Fn(&mut Transaction<'_>, u64) -> u64 + Send + 'static,
) {
    // Bounded so a child the parent forgot cannot run forever.
    for counter in 0..1_000_000u64 {
        match commit_retrying(&db, |tx| body(tx, counter)) {
            Ok((seq, said)) => say(&format!("ACK {name} {counter} {seq} {said}")),
            Err(e) => {
                say(&format!("ERR {name} {counter} {e}"));
                return;
            }
        }
    }
}

/// Runs only as the child: opens the database, reports `READY`, then runs every writer
/// and the checkpointing thread until killed.
#[test]
fn busy_child_until_killed() {
    let Some((path, round)) = child_args() else {
        return;
    };
    let db = options().open(&path).unwrap();
    {
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        if !tx.table_exists(TABLE).unwrap() {
            tx.create_table(TABLE).unwrap();
            tx.commit().unwrap();
        }
    }
    say("READY");
    let mut threads = Vec::new();
    for thread in 0..SMALL_WRITERS {
        let db = db.clone();
        threads.push(std::thread::spawn(move || {
            writer(db, format!("s{thread}"), move |tx, counter| {
                for (which, k) in small_keys(round, thread, counter).iter().enumerate() {
                    tx.put(TABLE, k, &small_value(round, thread, counter, which))
                        .unwrap();
                }
                0
            })
        }));
    }
    let updater = db.clone();
    threads.push(std::thread::spawn(move || {
        writer(updater, "u".into(), move |tx, counter| {
            for k in 0..UPDATED_KEYS {
                tx.put(TABLE, &updated_key(round, k), &updated_value(counter, k))
                    .unwrap();
            }
            0
        })
    }));
    let large = db.clone();
    threads.push(std::thread::spawn(move || {
        writer(large, "L".into(), move |tx, batch| {
            for i in 0..LARGE_KEYS {
                tx.put(
                    TABLE,
                    &large_key(round, batch, i),
                    &large_value(round, batch, i),
                )
                .unwrap();
            }
            if batch > 0 {
                for i in (1..LARGE_KEYS).step_by(2) {
                    tx.delete(TABLE, &large_key(round, batch - 1, i)).unwrap();
                }
            }
            0
        })
    }));
    for thread in 0..INCREMENTERS {
        let db = db.clone();
        threads.push(std::thread::spawn(move || {
            writer(db, format!("c{thread}"), move |tx, _| {
                let key = counter_key(round);
                let now = tx
                    .get(TABLE, &key)
                    .unwrap()
                    .map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap()));
                tx.put(TABLE, &key, &(now + 1).to_le_bytes()).unwrap();
                now + 1
            })
        }));
    }
    let maintainer = db.clone();
    threads.push(std::thread::spawn(move || {
        for n in 0..1_000_000u64 {
            std::thread::sleep(Duration::from_millis(3));
            let done = if n % 8 == 7 {
                maintainer.compact().map(|_| ())
            } else {
                maintainer.checkpoint().map(|_| ())
            };
            if let Err(e) = done {
                say(&format!("ERR maintenance {n} {e}"));
                return;
            }
        }
    }));
    for t in threads {
        t.join().unwrap();
    }
}

/// What the parent learnt about one round: per writer, how many commits it acknowledged.
#[derive(Default)]
struct RoundLog {
    acked: BTreeMap<String, u64>,
    max_seq: u64,
    /// The counter values the incrementers' acknowledged commits wrote.
    increments: Vec<u64>,
}

/// Runs one round's child. In the round that `creates_file`, the seeded kill counts
/// from when every writer has had a commit acknowledged, so each writer's checks are
/// exercised whatever the machine's load (the large writer's first tree commit can
/// take longer than a short kill window on two busy cores).
fn run_child(
    path: &std::path::Path,
    round: u32,
    timing: (Duration, bool),
    creates_file: bool,
) -> RoundLog {
    let every_writer_acked = |lines: &[String]| {
        !creates_file
            || writer_names().all(|name| {
                let ack = format!("ACK {name} ");
                lines.iter().any(|l| l.starts_with(&ack))
            })
    };
    let Killed { lines, stderr } = kill_child(
        "busy_child_until_killed",
        path,
        round,
        timing,
        &every_writer_acked,
    );
    let mut log = RoundLog::default();
    for l in &lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        match f.as_slice() {
            ["ACK", name, counter, seq, said] => {
                if name.starts_with('c') {
                    log.increments.push(said.parse().unwrap());
                }
                let n = log.acked.entry(name.to_string()).or_default();
                assert_eq!(
                    counter.parse::<u64>().unwrap(),
                    *n,
                    "round {round}: {name} acknowledged out of order"
                );
                *n += 1;
                log.max_seq = log.max_seq.max(seq.parse().unwrap());
            }
            [first, ..] if *first == "ERR" => {
                panic!("round {round}: the child failed: {l}; stderr {stderr}")
            }
            _ => {} // the test harness's own output
        }
    }
    log
}

/// The names the child's writers report their acknowledgements under.
fn writer_names() -> impl Iterator<Item = String> {
    (0..SMALL_WRITERS)
        .map(|t| format!("s{t}"))
        .chain((0..INCREMENTERS).map(|t| format!("c{t}")))
        .chain(["u".to_string(), "L".to_string()])
}

/// Every key and value of `round`.
fn round_state(db: &Database, round: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    let prefix = format!("r{round:03}/");
    tx.range(TABLE, prefix.as_bytes()..)
        .unwrap()
        .map(|r| r.map(|(k, v)| (k, v.to_vec())).unwrap())
        .take_while(|(k, _)| k.starts_with(prefix.as_bytes()))
        .collect()
}

/// Checks one round in the reopened database and returns (acknowledged commits found,
/// in-flight commits found whole).
fn check_round(db: &Database, round: u32, log: &RoundLog) -> (u64, u64) {
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    let get = |k: &[u8]| tx.get(TABLE, k).unwrap();
    let acked_of = |name: &str| log.acked.get(name).copied().unwrap_or(0);
    let (mut acked, mut in_flight, mut keys) = (0u64, 0u64, 0u64);

    // Small writers: every acknowledged commit whole, the next one whole or absent.
    for thread in 0..SMALL_WRITERS {
        let n = acked_of(&format!("s{thread}"));
        for counter in 0..n + 2 {
            let got: Vec<Option<Vec<u8>>> = small_keys(round, thread, counter)
                .iter()
                .map(|k| get(k))
                .collect();
            let whole: Vec<Option<Vec<u8>>> = (0..2)
                .map(|which| Some(small_value(round, thread, counter, which)))
                .collect();
            if counter < n {
                assert_eq!(
                    got, whole,
                    "round {round}: acknowledged s{thread} {counter}"
                );
                acked += 1;
                keys += 2;
            } else if counter == n && got == whole {
                in_flight += 1;
                keys += 2;
            } else {
                assert_eq!(
                    got,
                    vec![None, None],
                    "round {round}: s{thread} {counter} (after {n} acknowledged) is partial \
                     or was never acknowledged"
                );
            }
        }
    }

    // The updater: every key holds the same commit's value, the last acknowledged one or
    // the one in flight; never an earlier one.
    let n = acked_of("u");
    let got: Vec<Option<Vec<u8>>> = (0..UPDATED_KEYS)
        .map(|k| get(&updated_key(round, k)))
        .collect();
    let state_of = |counter: u64| -> Vec<Option<Vec<u8>>> {
        (0..UPDATED_KEYS)
            .map(|k| Some(updated_value(counter, k)))
            .collect()
    };
    if got.iter().all(Option::is_none) {
        assert_eq!(
            n, 0,
            "round {round}: the updater's {n} acknowledged commits are lost"
        );
    } else {
        keys += u64::from(UPDATED_KEYS);
        if got == state_of(n) {
            in_flight += 1;
        } else {
            assert!(
                n > 0 && got == state_of(n - 1),
                "round {round}: the updated keys are not the state of the last acknowledged \
                 commit {} (or of the one in flight): {:?}",
                n as i64 - 1,
                got.iter()
                    .map(|v| v
                        .as_ref()
                        .map(|v| String::from_utf8_lossy(&v[..v.len().min(24)]).into_owned()))
                    .collect::<Vec<_>>()
            );
        }
        acked += n;
    }

    // The large writer: batch j is applied for j < n, and batch n may be (in flight).
    // An applied batch has its even keys; its odd keys until batch j + 1 is applied.
    let n = acked_of("L");
    let applied_n = get(&large_key(round, n, 0)).is_some();
    let applied = |j: u64| j < n || (j == n && applied_n);
    for batch in 0..n + 2 {
        for i in 0..LARGE_KEYS {
            let want = (applied(batch) && (i % 2 == 0 || !applied(batch + 1)))
                .then(|| large_value(round, batch, i));
            let got = get(&large_key(round, batch, i));
            assert!(
                got == want,
                "round {round}: large batch {batch} key {i} (acknowledged {n}, batch {n} \
                 applied: {applied_n}): found {}, expected {}",
                got.is_some(),
                want.is_some()
            );
            keys += u64::from(want.is_some());
        }
    }
    acked += n;
    in_flight += u64::from(applied_n);

    // The counter: acknowledged increments wrote distinct values (no lost update), and
    // it holds at least the largest, plus at most one in-flight increment a thread.
    let mut written = log.increments.clone();
    written.sort_unstable();
    let before = written.len();
    written.dedup();
    assert_eq!(
        written.len(),
        before,
        "round {round}: two acknowledged increments wrote the same value (a lost update)"
    );
    let top = written.last().copied().unwrap_or(0);
    let counter = get(&counter_key(round)).map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap()));
    assert!(
        counter >= top && counter <= top + u64::from(INCREMENTERS),
        "round {round}: the counter holds {counter}, the acknowledged increments reached {top}"
    );
    keys += u64::from(counter > 0);
    acked += before as u64;
    in_flight += counter - top;

    // Nothing else of this round.
    let prefix = format!("r{round:03}/");
    let found = keys_under(&tx, TABLE, prefix.as_bytes());
    assert_eq!(found, keys, "round {round}: stray keys");
    (acked, in_flight)
}

#[test]
fn acknowledged_commits_survive_sigkill_while_busy() {
    let dir = tempfile::tempdir().unwrap();
    let rounds = rounds(ROUNDS);
    let mut path = dir.path().join("busy.db");
    let mut rng = Rng::new(SEED);
    let mut logs: Vec<RoundLog> = Vec::new();
    let mut states: Vec<Vec<(Vec<u8>, Vec<u8>)>> = Vec::new();
    let (mut total_acked, mut total_in_flight, mut early_rounds) = (0, 0, 0);
    let mut per_writer: BTreeMap<String, u64> = BTreeMap::new();
    for round in 0..rounds {
        if round > 0 && round % ROUNDS == 0 {
            path = dir.path().join(format!("busy-{round}.db"));
            logs.clear();
            states.clear();
        }
        let first_of_file = round - round % ROUNDS;
        // Round 0 of a file creates it; a kill during creation is another test's matter.
        let (kill_after, early) = TIMING.next(&mut rng, round == first_of_file);
        early_rounds += u32::from(early);
        let log = run_child(&path, round, (kill_after, early), round == first_of_file);
        let db = options()
            .open(&path)
            .unwrap_or_else(|e| panic!("round {round}: reopen after SIGKILL failed: {e}"));
        assert!(
            db.stats().tip_seq >= log.max_seq,
            "round {round}: recovered tip {} below acknowledged seq {}",
            db.stats().tip_seq,
            log.max_seq
        );
        // Every round of this file, not only the last: recovery replays all of them.
        // An earlier round must read exactly as the reopen after its own kill found
        // it: a commit in flight there, found then and gone now, is an earlier state.
        for (r, (l, state)) in logs.iter().zip(&states).enumerate() {
            let r = first_of_file + r as u32;
            check_round(&db, r, l);
            assert!(
                round_state(&db, r) == *state,
                "round {round}: round {r} no longer reads as the reopen after its kill found it"
            );
        }
        let (acked, in_flight) = check_round(&db, round, &log);
        states.push(round_state(&db, round));
        total_acked += acked;
        total_in_flight += in_flight;
        let report = db.check_integrity().unwrap();
        assert!(
            report.problems.is_empty(),
            "round {round}: integrity problems after SIGKILL: {:?}",
            report.problems
        );
        drop(db); // release the lock for the next child
        for (name, n) in &log.acked {
            *per_writer.entry(name.clone()).or_default() += n;
        }
        logs.push(log);
    }
    println!(
        "{rounds} SIGKILL rounds of a busy engine ({early_rounds} killed early): \
         {total_acked} acknowledged commits all recovered, {total_in_flight} in-flight \
         commits recovered whole; acknowledged per writer: {per_writer:?}"
    );
    assert!(total_acked > 0, "the children never committed");
    // Each writer's checks above mean something only for commits it made: every one
    // must have had some acknowledged over the rounds (the large writer's tree commits,
    // the updater's, the incrementers' as much as the small writers').
    for name in writer_names() {
        assert!(
            per_writer.get(&name).is_some_and(|&n| n > 0),
            "writer {name} had no commit acknowledged in {rounds} rounds: its checks proved nothing"
        );
    }
}
