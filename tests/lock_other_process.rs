//! A second process opening a database that another holds gets `Error::Locked`.

use capsuledb::{Database, Error};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

const CHILD_ENV: &str = "CAPSULEDB_LOCK_CHILD_PATH";

/// Runs only as the child: holds the database open until its stdin closes.
#[test]
fn child_holds_lock() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let _db = Database::open(&path).unwrap();
    println!("LOCKED");
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

#[test]
fn second_process_gets_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.db");
    drop(Database::open(&path).unwrap());
    let before = std::fs::read(&path).unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_holds_lock",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "child exited early");
        if line.contains("LOCKED") {
            break;
        }
    }
    match Database::open(&path) {
        Err(Error::Locked { path: p }) => assert_eq!(p, path),
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("opened a database another process holds"),
    }
    assert_eq!(before, std::fs::read(&path).unwrap());
    drop(child.stdin.take()); // let the child finish
    assert!(child.wait().unwrap().success());
    // Once the child is gone the file opens again.
    Database::open(&path).unwrap();
}
