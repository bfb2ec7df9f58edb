//! Many opens of one file in one process: 200 opens from 8 threads through different
//! spellings of the path share one engine, and opens racing the drop of the last handle
//! are never refused. An engine bug found here is fixed and its test kept:
//! `opening_while_the_last_handle_closes_never_reports_locked`.

mod misuse_support;

use capsuledb::{Database, Durability};
use misuse_support::{TABLE, assert_clean, create_table, scan};
use std::path::Path;
use std::sync::{Arc, Barrier};

#[test]
fn many_opens_of_one_path_share_one_engine() {
    const THREADS: u32 = 8;
    const OPENS_PER_THREAD: u32 = 25;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let first = Database::open(&path).unwrap();
    create_table(&first, TABLE);
    // Another spelling of the same file: a symbolic link and a `.` component.
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let dotted = dir.path().join(".").join("shared.db");

    let barrier = Arc::new(Barrier::new(THREADS as usize));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (path, link, dotted) = (path.clone(), link.clone(), dotted.clone());
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let mut handles = Vec::new();
                for i in 0..OPENS_PER_THREAD {
                    let p: &Path = match i % 3 {
                        0 => &path,
                        1 => &link,
                        _ => &dotted,
                    };
                    let db = Database::open(p).unwrap_or_else(|e| panic!("open {t}/{i}: {e}"));
                    let mut conn = db.connect();
                    let mut tx = conn.begin().unwrap();
                    tx.put(TABLE, format!("{t:02}/{i:02}").as_bytes(), b"v")
                        .unwrap();
                    let seq = tx.commit_with(Durability::Applied).unwrap().seq;
                    // The commit is visible through every handle opened so far.
                    for h in &handles {
                        let h: &Database = h;
                        let mut c = h.connect();
                        let tx = c.begin_read().unwrap();
                        assert!(tx.snapshot_seq() >= seq);
                        assert!(
                            tx.get(TABLE, format!("{t:02}/{i:02}").as_bytes())
                                .unwrap()
                                .is_some()
                        );
                    }
                    handles.push(db);
                }
                handles
            })
        })
        .collect();
    let handles: Vec<Database> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert_eq!(handles.len(), (THREADS * OPENS_PER_THREAD) as usize);
    // Every handle sees every commit, at the same tip.
    let tip = first.stats().tip_seq;
    for h in &handles {
        assert_eq!(h.stats().tip_seq, tip);
        assert_eq!(scan(h, TABLE).len(), (THREADS * OPENS_PER_THREAD) as usize);
    }
    drop(handles);
    drop(first);

    // With every handle gone the file is closed and opens afresh.
    let db = Database::open(&path).unwrap();
    assert_eq!(
        scan(&db, TABLE).len(),
        (THREADS * OPENS_PER_THREAD) as usize
    );
    assert_clean(&db, "reopened after 200 handles");
}

/// Two threads open the file, commit `Applied` (so the round's end has markers to write
/// and sync) and end the round with `end` (dropping or closing their handle), 100 times
/// each: one thread's open often lands while the other's round ends. Every open must
/// succeed (and every commit, unless `closes`: the other thread's close of a shared
/// engine answers its calls `Closed`, as documented), and the file be sound after.
fn churn(name: &str, closes: bool, end: fn(Database)) {
    const THREADS: usize = 2;
    const ROUNDS: u32 = 100;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    create_table(&Database::open(&path).unwrap(), TABLE);
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut refused = Vec::new();
                for i in 0..ROUNDS {
                    let db = match Database::open(&path) {
                        Ok(db) => db,
                        Err(e) => {
                            refused.push(format!("thread {t} round {i}: {e}"));
                            continue;
                        }
                    };
                    let committed = (|| -> capsuledb::Result<()> {
                        let mut conn = db.connect();
                        let mut tx = conn.begin()?;
                        for k in 0..20u32 {
                            tx.put(TABLE, format!("{t}/{i}/{k}").as_bytes(), &[7; 3000])?;
                        }
                        tx.commit_with(Durability::Applied)?;
                        Ok(())
                    })();
                    assert!(closes || committed.is_ok(), "{committed:?}");
                    end(db);
                }
                refused
            })
        })
        .collect();
    let refused: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("a worker panicked"))
        .collect();
    let db = Database::open(&path).unwrap();
    assert_clean(&db, "after the open/close churn");
    assert!(
        refused.is_empty(),
        "{} of {} opens refused, first: {}",
        refused.len(),
        THREADS * ROUNDS as usize,
        refused[0]
    );
}

/// An open landing while another thread drops the engine's last handle was refused
/// `Locked`.
#[test]
fn opening_while_the_last_handle_closes_never_reports_locked() {
    churn("churn.db", false, drop);
}

/// An open that lands while another thread's `close` runs (its handle still counted
/// until `close` returns) was answered `Closed`, an error an application takes as final,
/// where an open a moment later succeeded. It waits for the close now and opens the file
/// afresh.
#[test]
fn opening_while_another_thread_closes_never_reports_closed() {
    churn("closing.db", true, |db| {
        let _ = db.close();
    });
}
