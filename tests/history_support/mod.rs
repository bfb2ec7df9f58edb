//! Shared helpers for the concurrent history tests.

use std::thread::JoinHandle;
use std::time::Duration;

/// Joins worker threads, failing as soon as one of them panics.
///
/// A worker that panics inside the engine can leave the others blocked for good (for
/// instance waiting for a sequence that will never become visible), so joining them in
/// order could hang the test instead of failing it. Polling lets the test report the
/// panic; the stuck threads end with the test process.
pub fn join_all<T>(mut handles: Vec<JoinHandle<T>>, what: &str) -> Vec<T> {
    let mut results: Vec<Option<T>> = handles.iter().map(|_| None).collect();
    let mut pending: Vec<usize> = (0..handles.len()).collect();
    let mut slots: Vec<Option<JoinHandle<T>>> = handles.drain(..).map(Some).collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for i in pending {
            match slots[i].take_if(|h| h.is_finished()) {
                Some(h) => match h.join() {
                    Ok(v) => results[i] = Some(v),
                    Err(e) => {
                        let msg = e
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        panic!("{what} thread {i} panicked: {msg}");
                    }
                },
                None => still.push(i),
            }
        }
        pending = still;
        if !pending.is_empty() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    results.into_iter().map(|r| r.expect("joined")).collect()
}
