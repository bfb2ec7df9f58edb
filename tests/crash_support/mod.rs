//! Shared by the SIGKILL tests (`crash_process*.rs`): a child process is this same test
//! binary running one `#[test]` that reports on stdout; the parent kills it with SIGKILL
//! at a seeded moment and keeps every whole line it wrote.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The child must be ready (database open) within this long.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Stdout lines of the child's threads must not interleave.
static OUT: Mutex<()> = Mutex::new(());

/// Writes one whole line to stdout (the child's report to the parent).
pub fn say(line: &str) {
    let _guard = OUT.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// What a killed child said.
pub struct Killed {
    /// Every whole line it wrote, in order (a line cut short by the kill is dropped).
    pub lines: Vec<String>,
    /// Its standard error.
    pub stderr: String,
}

/// The child's database file and round, passed in the environment.
const CHILD_PATH_ENV: &str = "CAPSULEDB_CRASH_CHILD_PATH";
const CHILD_ROUND_ENV: &str = "CAPSULEDB_CRASH_CHILD_ROUND";

/// In the child test: the database file and round [`kill_child`] gave it; `None` when
/// the test runs as an ordinary test (it then returns at once).
pub fn child_args() -> Option<(String, u32)> {
    let path = std::env::var(CHILD_PATH_ENV).ok()?;
    let round = std::env::var(CHILD_ROUND_ENV).ok()?.parse().ok()?;
    Some((path, round))
}

/// How long a child may take, after `READY`, to have written what the parent's
/// `started` asks for (a guard against a hang, not a measure).
pub const STARTED_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the test `child_test` of this binary as a child on the database at `path` in
/// `round` ([`child_args`]), lets it run `kill_after` after it prints `READY` and its
/// lines so far satisfy `started` (after it is spawned when `early`), kills it with
/// SIGKILL and returns what it wrote.
pub fn kill_child(
    child_test: &str,
    path: &std::path::Path,
    round: u32,
    (kill_after, early): (Duration, bool),
    started: &dyn Fn(&[String]) -> bool,
) -> Killed {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", child_test, "--nocapture", "--test-threads=1"])
        .env(CHILD_PATH_ENV, path)
        .env(CHILD_ROUND_ENV, round.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        // A line cut short by the kill has no newline: it was never a whole report.
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            if line.ends_with('\n') && tx.send(line.trim_end().to_string()).is_err() {
                break;
            }
            line.clear();
        }
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut s);
        s
    });
    let mut lines = Vec::new();
    if !early {
        let ready_deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = ready_deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                // The harness prints "test <name> ... " before it.
                Ok(l) if l.ends_with("READY") => break,
                Ok(l) => lines.push(l),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "round {round}: child never became ready; stdout (last lines) {:?}, \
                         stderr {}",
                        &lines[lines.len().saturating_sub(10)..],
                        err_reader.join().unwrap()
                    );
                }
            }
        }
        // The seeded wait counts from when the child has done what the parent needs
        // to have seen (on a loaded machine its threads may start late).
        let started_deadline = Instant::now() + STARTED_TIMEOUT;
        while !started(&lines) {
            let left = started_deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) => lines.push(l),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "round {round}: the child never got started; stdout (last lines) \
                         {:?}, stderr {}",
                        &lines[lines.len().saturating_sub(10)..],
                        err_reader.join().unwrap()
                    );
                }
            }
        }
    }
    // Early: a seeded moment counted from the spawn, possibly while the child is still
    // opening (recovering and scrubbing the tail of) the database.
    let deadline = Instant::now() + kill_after;
    while let Ok(l) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        lines.push(l);
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    // Everything the child wrote before it died is still in the pipe.
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    let stderr = err_reader.join().unwrap();
    // Killed, not dead of its own: a child that panicked (an engine error unwrapped, a
    // worker thread's assertion) or exited with an error must fail the round, not
    // pass as killed.
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(9),
        "round {round}: the child ended with {status} instead of being killed; stderr {stderr}"
    );
    assert!(
        !stderr.contains("panicked at"),
        "round {round}: a thread of the child panicked before the kill; stderr {stderr}"
    );
    Killed { lines, stderr }
}

/// Rounds to run: `CAPSULEDB_KILL_ROUNDS` when set, else `default`.
pub fn rounds(default: u32) -> u32 {
    std::env::var("CAPSULEDB_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// When to kill the next child.
pub struct KillTiming {
    /// After the child is ready: at least this many milliseconds…
    pub min_ms: u64,
    /// …and at most this many.
    pub max_ms: u64,
    /// In about one round in four (never the round that creates a file), the kill comes
    /// at most this many milliseconds after the spawn, ready or not.
    pub early_max_ms: u64,
}

impl KillTiming {
    /// The next round's kill: how long to wait, and whether it counts from the spawn.
    pub fn next(&self, rng: &mut capsuledb::rng::Rng, creates_file: bool) -> (Duration, bool) {
        let after_ready = self.min_ms + rng.below(self.max_ms - self.min_ms + 1);
        let early = !creates_file && rng.chance(1, 4);
        if early {
            (
                Duration::from_millis(rng.below(self.early_max_ms + 1)),
                true,
            )
        } else {
            (Duration::from_millis(after_ready), false)
        }
    }
}

/// Keys of `table` that start with `prefix`, as `tx` sees them.
pub fn keys_under(tx: &capsuledb::Transaction<'_>, table: &str, prefix: &[u8]) -> u64 {
    tx.range(table, prefix..)
        .unwrap()
        .map(|r| r.unwrap().0)
        .take_while(|k| k.starts_with(prefix))
        .count() as u64
}
