//! A real process crash: a child process commits `Durable` (and, on one thread, `Written`)
//! transactions from several
//! threads into a real file and reports each acknowledged commit on stdout; the parent
//! kills it with SIGKILL at a seeded moment, reopens the file and finds every
//! acknowledged commit, whole. Some rounds kill the child soon after it starts, while it
//! may still be recovering. The rounds append to one file, so recovery replays an
//! ever longer history of killed runs.

mod crash_support;

use capsuledb::rng::Rng;
use capsuledb::{Database, Durability, Error};
use crash_support::{KillTiming, Killed, child_args, keys_under, kill_child, rounds, say};
use std::collections::BTreeMap;
use std::time::Duration;

const TABLE: &str = "t";
const WRITER_THREADS: u32 = 4;
/// Rounds in the normal run, and per file in a long run (`CAPSULEDB_KILL_ROUNDS=N` runs
/// N rounds, a fresh file every `ROUNDS` of them, so each reopen stays cheap).
const ROUNDS: u32 = 24;
const SEED: u64 = 0xC4A5_0001;
/// Kill the child 20..200 ms after it reports ready (seeded), or in some rounds at most
/// 30 ms after the spawn.
const TIMING: KillTiming = KillTiming {
    min_ms: 20,
    max_ms: 200,
    early_max_ms: 30,
};

/// The two keys commit `counter` of thread `thread` in round `round` writes.
fn keys(round: u32, thread: u32, counter: u64) -> [Vec<u8>; 2] {
    [
        format!("r{round:03}/w{thread}/{counter:08}/a").into_bytes(),
        format!("r{round:03}/w{thread}/{counter:08}/b").into_bytes(),
    ]
}

fn value(round: u32, thread: u32, counter: u64, which: usize) -> Vec<u8> {
    format!("value {round} {thread} {counter} {which};")
        .repeat((counter % 29 + 1) as usize * (which + 1))
        .into_bytes()
}

/// The last writer asks for `Written`, which also survives a process crash; the others
/// for `Durable`.
fn durability_of(thread: u32) -> Durability {
    if thread == WRITER_THREADS - 1 {
        Durability::Written
    } else {
        Durability::Durable
    }
}

/// Runs only as the child: opens the database, reports `READY`, then commits until killed.
#[test]
fn child_commits_until_killed() {
    let Some((path, round)) = child_args() else {
        return;
    };
    let db = Database::open(&path).unwrap();
    {
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        if !tx.table_exists(TABLE).unwrap() {
            tx.create_table(TABLE).unwrap();
            tx.commit().unwrap();
        }
    }
    say("READY");
    let threads: Vec<_> = (0..WRITER_THREADS)
        .map(|thread| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut c = db.connect();
                // Bounded so a child the parent forgot cannot run forever.
                for counter in 0..1_000_000u64 {
                    loop {
                        let mut tx = c.begin().unwrap();
                        for (which, k) in keys(round, thread, counter).iter().enumerate() {
                            tx.put(TABLE, k, &value(round, thread, counter, which))
                                .unwrap();
                        }
                        match tx.commit_with(durability_of(thread)) {
                            Ok(info) => {
                                say(&format!("ACK {thread} {counter} {}", info.seq));
                                break;
                            }
                            Err(e) if e.is_retryable() => continue,
                            Err(e) => {
                                say(&format!("ERR {thread} {counter} {e}"));
                                return;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// What the parent learnt about one round.
#[derive(Default)]
struct RoundLog {
    /// Per thread, the acknowledged counters (each thread acknowledges 0, 1, 2, ...).
    acked: BTreeMap<u32, Vec<u64>>,
    seqs: Vec<u64>,
}

/// Runs one child for `kill_after` after it is ready (after it is spawned when `early`),
/// kills it, and returns what it acknowledged (every complete line it wrote, read to the
/// end of the pipe).
fn run_child(path: &std::path::Path, round: u32, kill_after: Duration, early: bool) -> RoundLog {
    let Killed { lines, stderr } = kill_child(
        "child_commits_until_killed",
        path,
        round,
        (kill_after, early),
        &|_| true,
    );
    let mut log = RoundLog::default();
    for l in &lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        match f.as_slice() {
            ["ACK", thread, counter, seq] => {
                log.acked
                    .entry(thread.parse().unwrap())
                    .or_default()
                    .push(counter.parse().unwrap());
                log.seqs.push(seq.parse().unwrap());
            }
            [first, ..] if *first == "ERR" => {
                panic!("round {round}: the child's commit failed: {l}; stderr {stderr}")
            }
            _ => {} // the test harness's own output
        }
    }
    for (thread, counters) in &log.acked {
        let want: Vec<u64> = (0..counters.len() as u64).collect();
        assert_eq!(
            counters, &want,
            "round {round}: thread {thread} acknowledged out of order"
        );
    }
    log
}

/// Checks one round's commits in the reopened database: every acknowledged commit is
/// there whole; of the unacknowledged ones only each thread's one in-flight commit may
/// be, and then whole too. Returns (acknowledged, in-flight commits that survived).
/// Checks one round's commits; returns how many were acknowledged, and the threads whose
/// in-flight commit was recovered whole (a later open must recover exactly those: a
/// commit an open found and served never vanishes).
fn check_round(db: &Database, round: u32, log: &RoundLog) -> (u64, Vec<u32>) {
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    let mut acked = 0;
    let mut in_flight = Vec::new();
    for thread in 0..WRITER_THREADS {
        let n = log.acked.get(&thread).map_or(0, Vec::len) as u64;
        for counter in 0..n + 2 {
            let got: Vec<Option<Vec<u8>>> = keys(round, thread, counter)
                .iter()
                .map(|k| tx.get(TABLE, k).unwrap())
                .collect();
            let whole: Vec<Option<Vec<u8>>> = (0..2)
                .map(|which| Some(value(round, thread, counter, which)))
                .collect();
            if counter < n {
                assert_eq!(
                    got, whole,
                    "round {round}: acknowledged commit {counter} of thread {thread}"
                );
                acked += 1;
            } else if counter == n && got == whole {
                in_flight.push(thread);
            } else {
                assert_eq!(
                    got,
                    vec![None, None],
                    "round {round}: commit {counter} of thread {thread} (after {n} \
                     acknowledged) is partial, wrong, or was never started"
                );
            }
        }
    }
    // Nothing else of this round: the scan finds only the keys checked above.
    let prefix = format!("r{round:03}/");
    let found = keys_under(&tx, TABLE, prefix.as_bytes());
    assert_eq!(
        found,
        2 * (acked + in_flight.len() as u64),
        "round {round}: stray keys"
    );
    (acked, in_flight)
}

#[test]
fn acknowledged_commits_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let rounds = rounds(ROUNDS);
    let mut path = dir.path().join("crash.db");
    let mut rng = Rng::new(SEED);
    let mut logs: Vec<(RoundLog, Vec<u32>)> = Vec::new();
    let mut total_acked = 0;
    let mut total_in_flight = 0;
    let mut parent_commits = 0u64;
    let mut early_rounds = 0;
    // The commits of this file found so far: the table's creation, every round's
    // acknowledged and recovered in-flight commits, the parent's.
    let mut file_commits = 0u64;
    for round in 0..rounds {
        if round > 0 && round % ROUNDS == 0 {
            let db = Database::open(&path).unwrap();
            for (r, (l, first)) in logs.iter().enumerate() {
                let again = check_round(&db, (round - ROUNDS) + r as u32, l).1;
                assert_eq!(&again, first, "round {r}'s in-flight commits changed");
            }
            drop(db);
            path = dir.path().join(format!("crash-{round}.db"));
            logs.clear();
            file_commits = 0;
        }
        let first_of_file = round - round % ROUNDS;
        // Round 0 creates the file; a kill during creation is another matter.
        let (kill_after, early) = TIMING.next(&mut rng, round == first_of_file);
        early_rounds += u32::from(early);
        let log = run_child(&path, round, kill_after, early);
        let db = Database::open(&path).unwrap_or_else(|e| {
            panic!("round {round}: reopen after SIGKILL failed: {e}");
        });
        // Every round so far, not only the last: recovery replays all of them.
        for (r, (l, first)) in logs.iter().enumerate() {
            let again = check_round(&db, first_of_file + r as u32, l).1;
            assert_eq!(
                &again, first,
                "round {round}: round {r}'s in-flight commits changed across a reopen"
            );
        }
        let (acked, in_flight) = check_round(&db, round, &log);
        // Every sequence up to the recovered tip is one of those commits: a lost
        // in-flight commit below a recovered one of another thread leaves a sequence
        // nothing accounts for (the acknowledged commits alone cannot show it).
        file_commits += u64::from(round == first_of_file) + acked + in_flight.len() as u64;
        assert_eq!(
            db.stats().tip_seq,
            file_commits,
            "round {round}: the recovered tip is not the commits found: not a prefix"
        );
        let max_acked_seq = log.seqs.iter().copied().max().unwrap_or(0);
        assert!(
            db.stats().tip_seq >= max_acked_seq,
            "round {round}: recovered tip {} below acknowledged seq {max_acked_seq}",
            db.stats().tip_seq
        );
        total_acked += acked;
        total_in_flight += in_flight.len() as u64;
        // The recovered database takes a new commit, which the next reopen must find.
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        tx.put(TABLE, format!("parent/{round:03}").as_bytes(), b"after")
            .unwrap();
        let seq = tx.commit().unwrap().seq;
        assert!(seq > max_acked_seq);
        parent_commits += 1;
        file_commits += 1;
        let tx = c.begin_read().unwrap();
        for r in first_of_file..=round {
            assert_eq!(
                tx.get(TABLE, format!("parent/{r:03}").as_bytes()).unwrap(),
                Some(b"after".to_vec()),
                "round {round}: the parent's commit of round {r}"
            );
        }
        drop(tx);
        drop(c);
        drop(db); // release the lock for the next child
        logs.push((log, in_flight));
    }
    let db = Database::open(&path).unwrap();
    let first_of_file = (rounds.max(1) - 1) / ROUNDS * ROUNDS;
    for (r, (l, first)) in logs.iter().enumerate() {
        let again = check_round(&db, first_of_file + r as u32, l).1;
        assert_eq!(&again, first, "round {r}'s in-flight commits changed");
    }
    println!(
        "{rounds} SIGKILL rounds ({early_rounds} killed early): {total_acked} acknowledged commits all recovered, \
         {total_in_flight} in-flight commits recovered whole, {parent_commits} parent commits, \
         {} commits replayed at the last open",
        db.stats().recovered_commits
    );
    assert!(total_acked > 0, "the children never committed");
    match db.close() {
        Ok(()) | Err(Error::Closed) => {}
        Err(e) => panic!("close: {e}"),
    }
}
