//! Ctrl-C (SIGINT), SIGTERM or SIGHUP during `bench`, `backup` or `salvage`: what the
//! command was writing (the benchmark's temporary directory, a backup's or salvage's
//! temporary copy) is removed before the process exits, as it is after a finished or
//! failed run.
//!
//! The three signals are blocked in the calling thread before any other thread exists
//! (threads inherit the mask), and one thread waits for them with `sigwait`: the
//! removal then runs in an ordinary thread, not in a signal handler, where it would not
//! be safe.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set when a signal arrived: its thread is removing the directory and will end the
/// process.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Held by the signal thread from the signal on (through the cleanup and the exit),
/// and by the command while it puts its output in place and reports it
/// ([`finishing`]); `true` once the command has begun that.
static FINISHING: std::sync::Mutex<bool> = std::sync::Mutex::new(false);

/// Runs `f`, which puts the command's output in place and reports it, with signals
/// held off: one arriving before waits for nothing and ends the process as usual (the
/// output is not placed); one arriving during or after `f` is ignored, so what `f`
/// placed is never left unreported (a salvage's list of what it lost).
pub fn finishing<T>(f: impl FnOnce() -> T) -> T {
    let mut finishing = FINISHING.lock().unwrap_or_else(|p| p.into_inner());
    *finishing = true;
    f()
}

/// Holds signals off while the guard lives: one arriving meanwhile runs its cleanup
/// (and ends the process) once the guard is dropped, so the cleanup sees what the
/// command did under it (a backup's copy renamed into place, or not).
pub fn hold_off() -> std::sync::MutexGuard<'static, bool> {
    FINISHING.lock().unwrap_or_else(|p| p.into_inner())
}

/// When a signal arrived, waits for its thread to end the process (with 128 + the
/// signal's number, once the directory is gone), so that the benchmark's own ending (an
/// error from its files vanishing, or its summary) does not exit first with another
/// status or leave the directory half removed. Returns at once otherwise.
pub fn wait_if_interrupted() {
    while INTERRUPTED.load(Ordering::Acquire) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The signals that end a benchmark early.
fn signals() -> libc::sigset_t {
    // SAFETY: `sigemptyset` initialises the set it is given; `sigaddset` adds valid
    // signal numbers to an initialised set. Neither can fail for these arguments.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        set
    }
}

/// From now on, SIGINT, SIGTERM and SIGHUP run `cleanup` (which says what it removed,
/// if anything) and end the process with status 128 + the signal's number. Call it
/// before the command starts any thread (opening a database starts some). If the
/// signals cannot be blocked or the thread cannot start, nothing changes: they end the
/// process as before, leaving the files behind.
pub fn clean_up_on_signal(cleanup: impl FnOnce() -> Option<String> + Send + 'static) {
    let set = signals();
    // SAFETY: `set` is an initialised signal set; the old mask is not asked for.
    let blocked = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if blocked != 0 {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("capsuledb-signals".into())
        .spawn(move || {
            let mut sig: libc::c_int = 0;
            // SAFETY: `set` is initialised and `sig` is a valid place for the result.
            if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                return;
            }
            // Held to the exit: the command cannot begin placing its output now.
            let finishing = FINISHING.lock().unwrap_or_else(|p| p.into_inner());
            if *finishing {
                // The output is in place, or being placed and reported: let it finish.
                return;
            }
            INTERRUPTED.store(true, Ordering::Release);
            if let Some(what) = cleanup() {
                // Not `eprintln!`: it panics when stderr is gone (a closed pipe, a full
                // disk), and this thread must reach the exit, or the command waits for
                // it for ever (`wait_if_interrupted`) with the signals blocked.
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "\ncapsuledb: interrupted; removed {what}"
                );
            }
            std::process::exit(128 + sig);
        });
    if spawned.is_err() {
        // No thread to wait for them: let the signals act as before.
        // SAFETY: as above.
        unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    }
}

/// [`clean_up_on_signal`] removing the directory `dir` and everything in it, and, with
/// `also`, the files of a directory whose names start with a prefix
/// ([`crate::backup::remove_with_prefix`]).
pub fn remove_on_signal(dir: std::path::PathBuf, also: Option<(std::path::PathBuf, String)>) {
    clean_up_on_signal(move || {
        // Writers may still be creating files in it: a few tries.
        for _ in 0..5 {
            if std::fs::remove_dir_all(&dir).is_ok() || !dir.exists() {
                break;
            }
        }
        let mut removed = if dir.exists() {
            format!("nothing: {} could not be removed", dir.display())
        } else {
            dir.display().to_string()
        };
        if let Some(more) =
            also.and_then(|(d, prefix)| crate::backup::remove_with_prefix(&d, &prefix))
        {
            removed = format!("{removed}, {more}");
        }
        Some(removed)
    });
}
