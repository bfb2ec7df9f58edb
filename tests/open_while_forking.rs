//! An open right after a close, while another thread of the process starts child
//! processes: a child holds the file's lock from its fork until its exec closes the
//! descriptor it inherited, and the open met `Locked` (about 4 tries in 10). It tries
//! again for a moment now.

use capsuledb::{Database, Error};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[test]
fn reopens_while_another_thread_starts_processes_are_never_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forking.db");
    Database::open(&path).unwrap().close().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let spawner = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut children = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if std::process::Command::new("true").status().is_ok() {
                    children += 1;
                }
            }
            children
        })
    };
    let mut locked = 0;
    for _ in 0..500 {
        match Database::open(&path) {
            Ok(db) => db.close().unwrap(),
            Err(Error::Locked { .. }) => locked += 1,
            Err(e) => panic!("{e}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let children = spawner.join().unwrap();
    assert!(children > 0, "no child process was started");
    assert_eq!(
        locked, 0,
        "{locked} of 500 opens met Locked ({children} children)"
    );
}
