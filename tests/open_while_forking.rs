//! An open right after a close, while another thread of the process starts child
//! processes: a child holds the file's lock from its fork until its exec closes the
//! descriptor it inherited, and the open met `Locked` (about 4 tries in 10). It tries
//! again for a moment now.

use capsuledb::{Database, Error};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[test]
fn reopens_while_another_thread_starts_processes_are_never_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forking.db");
    Database::open(&path).unwrap().close().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let children = Arc::new(AtomicU64::new(0));
    let spawner = {
        let (stop, children) = (Arc::clone(&stop), Arc::clone(&children));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if std::process::Command::new("true").status().is_ok() {
                    children.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    // At least 500 opens, and more until the other thread has started a few children
    // (on a loaded machine it may start late), for at most a minute (a machine that
    // cannot start `true` fails below).
    let (mut opens, mut locked) = (0u64, 0u64);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while opens < 500
        || (children.load(Ordering::Relaxed) < 3 && std::time::Instant::now() < deadline)
    {
        match Database::open(&path) {
            Ok(db) => db.close().unwrap(),
            Err(Error::Locked { .. }) => locked += 1,
            Err(e) => panic!("{e}"),
        }
        opens += 1;
    }
    stop.store(true, Ordering::Relaxed);
    spawner.join().unwrap();
    let children = children.load(Ordering::Relaxed);
    assert!(children > 0, "no child process was started");
    assert_eq!(
        locked, 0,
        "{locked} of {opens} opens met Locked ({children} children)"
    );
}
