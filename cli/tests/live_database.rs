//! The inspection commands on a database an application is writing: the application
//! (here, threads of the test process) holds the file open read-write and commits
//! while `capsuledb info`, `check`, `tables`, `get`, `get --at`, `scan` and `dump` run
//! as other processes (live readers, `format-spec/locking.md`).

mod common;

use capsuledb::{Durability, HistoryRetention, Options};
use common::{ok, run};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[test]
fn inspection_commands_work_while_an_application_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::db_in(&dir);
    // Every state stays readable, for `get --at`.
    let db = Options::new()
        .history_retention(HistoryRetention::Commits(u64::MAX / 2))
        .open(&path)
        .unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.put("t", b"fixed", b"1").unwrap();
    tx.commit().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut c = db.connect();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut tx = c.begin().unwrap();
                tx.put(
                    "t",
                    format!("k{:06}", i % 500).as_bytes(),
                    i.to_string().as_bytes(),
                )
                .unwrap();
                tx.put("t", b"counter", i.to_string().as_bytes()).unwrap();
                tx.commit_with(Durability::Written).unwrap();
                if i % 200 == 199 {
                    db.checkpoint().unwrap();
                }
                i += 1;
            }
        })
    };
    let file = common::s(&path);
    let seq_of = |info: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix("last commit seq"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    // The writer has committed before the commands look (a guard, not a measure).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while db.stats().tip_seq < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never committed"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let mut last = 0;
    for _ in 0..5 {
        let info = ok(&["info", &file]);
        let seq = seq_of(&info);
        assert!(seq >= last, "info went back: {seq} after {last}");
        last = seq;
        assert!(ok(&["check", &file]).starts_with("ok:"), "check");
        assert_eq!(ok(&["tables", &file]), "t\n");
        assert_eq!(ok(&["get", &file, "t", "fixed"]), "1\n");
        assert_eq!(ok(&["get", &file, "t", "fixed", "--at", "1"]), "1\n");
        let scan = ok(&["scan", &file, "t", "--from", "k", "--to", "l"]);
        assert!(scan.lines().count() <= 500, "{scan}");
        let dump = ok(&["dump", &file, "t"]);
        assert!(dump.lines().count() >= 2, "{dump}");
    }
    assert!(last > 1, "the commands saw the application's commits");
    // A second writer is still refused.
    let refused = run(&["put", &file, "t", "x", "y"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("locked"), "{}", refused.stderr);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    db.close().unwrap();
}
