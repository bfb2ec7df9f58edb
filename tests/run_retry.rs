//! `Connection::run`: retries on conflict until the commit, stops at the policy's bound,
//! hands the closure's own errors back, and a panic inside it commits nothing.

use capsuledb::{Database, Durability, Error, Isolation, RetryPolicy};
use std::sync::Arc;

fn open() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("run.db")).unwrap();
    db.connect().run(|tx| tx.create_table("t")).unwrap();
    (dir, db)
}

fn read_u64(v: Option<Vec<u8>>) -> u64 {
    v.map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap()))
}

#[test]
fn contended_counter_from_16_threads_ends_exact() {
    let (_dir, db) = open();
    const THREADS: u64 = 16;
    const INCREMENTS: u64 = 40;
    let barrier = Arc::new(std::sync::Barrier::new(THREADS as usize));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let db = db.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let mut conn = db.connect();
                barrier.wait();
                let mut attempts = 0u64;
                for _ in 0..INCREMENTS {
                    conn.run(|tx| {
                        attempts += 1;
                        let n = read_u64(tx.get("t", b"counter")?);
                        tx.put("t", b"counter", &(n + 1).to_le_bytes())
                    })
                    .unwrap();
                }
                attempts
            })
        })
        .collect();
    let attempts: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let total = db
        .connect()
        .read(|tx| tx.get("t", b"counter"))
        .map(read_u64)
        .unwrap();
    assert_eq!(total, THREADS * INCREMENTS);
    assert!(attempts >= total);
}

#[test]
fn a_closure_that_always_conflicts_stops_at_the_attempt_bound() {
    let (_dir, db) = open();
    let mut conn = db.connect();
    let mut other = db.connect();
    let policy = RetryPolicy::default().max_attempts(5);
    let mut runs = 0;
    let result = conn.run_with(
        Isolation::Serializable,
        Durability::Applied,
        &policy,
        |tx| {
            runs += 1;
            tx.get("t", b"k")?;
            // Another connection commits the same key after this snapshot: every
            // attempt loses first-committer-wins.
            other.run(|o| o.put("t", b"k", b"other"))?;
            tx.put("t", b"k", b"mine")
        },
    );
    match result {
        Err(Error::RetriesExhausted { attempts, last, .. }) => {
            assert_eq!(attempts, 5);
            assert!(matches!(*last, Error::Conflict { ref table, .. } if table == "t"));
        }
        other => panic!("expected RetriesExhausted, got {other:?}"),
    }
    assert_eq!(runs, 5);
    let value = db.connect().read(|tx| tx.get("t", b"k")).unwrap();
    assert_eq!(value.as_deref(), Some(&b"other"[..]));
    let message = conn
        .run_with(
            Isolation::Serializable,
            Durability::Applied,
            &policy,
            |tx| {
                other.run(|o| o.put("t", b"k", b"again"))?;
                tx.put("t", b"k", b"mine")
            },
        )
        .err()
        .map(|e| e.to_string());
    // A write without a read still loses first-committer-wins to the other commit.
    assert!(message.is_some_and(|m| m.contains("gave up after 5 attempts")));
}

#[test]
fn a_zero_time_bound_allows_one_attempt() {
    let (_dir, db) = open();
    let mut conn = db.connect();
    let mut other = db.connect();
    let policy = RetryPolicy::default().max_elapsed(std::time::Duration::ZERO);
    let result = conn.run_with(Isolation::Snapshot, Durability::Applied, &policy, |tx| {
        tx.get("t", b"k")?;
        other.run(|o| o.put("t", b"k", b"other"))?;
        tx.put("t", b"k", b"mine")
    });
    assert!(matches!(
        result,
        Err(Error::RetriesExhausted { attempts: 1, .. })
    ));
}

/// The wait for the conflicting commit to become visible counts against the time
/// bound: a `Durable` commit held in its sync kept the retry waiting past the bound,
/// and the next attempt then began (and committed) anyway.
#[test]
fn no_attempt_begins_once_the_wait_for_the_conflict_spent_the_time_bound() {
    use capsuledb::Options;
    use capsuledb::storage::SimStorage;
    let sim = SimStorage::new();
    let db = Options::new().open_storage(Arc::new(sim.clone())).unwrap();
    db.connect().run(|tx| tx.create_table("t")).unwrap();
    let gate = sim.hold_nth_sync(1);
    let other = {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut c = db.connect();
            let mut tx = c.begin().unwrap();
            tx.put("t", b"k", b"other").unwrap();
            tx.commit_with(Durability::Durable).unwrap();
        })
    };
    gate.wait_held();
    // The sync is released 400 ms after the first attempt began (counted from then, so
    // a main thread descheduled before it cannot find the other commit visible).
    let (began, began_rx) = std::sync::mpsc::channel::<()>();
    let releaser = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            let _ = began_rx.recv();
            std::thread::sleep(std::time::Duration::from_millis(400));
            gate.release();
        })
    };
    let policy = RetryPolicy::default().max_elapsed(std::time::Duration::from_millis(50));
    let mut conn = db.connect();
    let result = conn.run_with(Isolation::Snapshot, Durability::Applied, &policy, |tx| {
        let _ = began.send(());
        tx.get("t", b"k")?;
        tx.put("t", b"k", b"mine")
    });
    drop(began);
    releaser.join().unwrap();
    other.join().unwrap();
    assert!(
        matches!(result, Err(Error::RetriesExhausted { attempts: 1, .. })),
        "{result:?}"
    );
    let mut c = db.connect();
    let v = c.read(|tx| tx.get("t", b"k")).unwrap();
    assert_eq!(v.as_deref(), Some(&b"other"[..]));
}

#[derive(Debug)]
enum AppError {
    Db(Error),
    Insufficient { balance: u64 },
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Db(e)
    }
}

#[test]
fn a_user_error_rolls_back_and_comes_back_typed() {
    let (_dir, db) = open();
    let mut conn = db.connect();
    conn.run(|tx| tx.put("t", b"balance", &10u64.to_le_bytes()))
        .unwrap();
    let mut runs = 0;
    let result: Result<(), AppError> = conn.run(|tx| {
        runs += 1;
        let balance = read_u64(tx.get("t", b"balance")?);
        tx.put("t", b"balance", &0u64.to_le_bytes())?;
        tx.put("t", b"audit", b"withdrew 20")?;
        if balance < 20 {
            return Err(AppError::Insufficient { balance });
        }
        Ok(())
    });
    assert!(matches!(
        result,
        Err(AppError::Insufficient { balance: 10 })
    ));
    assert_eq!(runs, 1, "a user error is not retried");
    let (balance, audit) = conn
        .read(|tx| Ok::<_, Error>((tx.get("t", b"balance")?, tx.get("t", b"audit")?)))
        .unwrap();
    assert_eq!(read_u64(balance), 10);
    assert_eq!(audit, None);
    // capsuledb's own errors arrive as the closure's error type too.
    let missing: Result<(), AppError> = conn.run(|tx| Ok(tx.put("nope", b"k", b"v")?));
    assert!(matches!(
        missing,
        Err(AppError::Db(Error::TableNotFound { .. }))
    ));
}

#[test]
fn a_panic_inside_the_closure_leaves_nothing_half_done() {
    let (_dir, db) = open();
    let mut conn = db.connect();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        conn.run(|tx| {
            tx.put("t", b"a", b"1")?;
            tx.create_table("half")?;
            tx.put("half", b"b", b"2")?;
            if tx.get("t", b"a")?.is_some() {
                panic!("the application's bug");
            }
            Ok::<_, Error>(())
        })
    }));
    assert!(outcome.is_err());
    // Nothing of it is visible, and the connection and database work on.
    let (a, tables) = conn
        .read(|tx| Ok::<_, Error>((tx.get("t", b"a")?, tx.tables()?)))
        .unwrap();
    assert_eq!(a, None);
    assert_eq!(tables, ["t"]);
    conn.run(|tx| tx.put("t", b"a", b"after")).unwrap();
    assert!(db.check_integrity().unwrap().is_ok());
    let after = db.connect().read(|tx| tx.get("t", b"a")).unwrap();
    assert_eq!(after.as_deref(), Some(&b"after"[..]));
}

#[test]
fn read_runs_on_a_snapshot_and_refuses_writes() {
    let (_dir, db) = open();
    let mut conn = db.connect();
    conn.run(|tx| tx.put("t", b"k", b"v")).unwrap();
    let got = conn.read(|tx| tx.get("t", b"k")).unwrap();
    assert_eq!(got.as_deref(), Some(&b"v"[..]));
    let refused = conn.read(|tx| {
        tx.count::<&[u8], _>("t", ..)
            .map(|n| (n, tx.is_read_only()))
    });
    assert_eq!(refused.unwrap(), (1, true));
}
