//! `capsuledb backup FILE OUT`: a consistent, compacted copy of a database, with a
//! progress bar, checked after it is written.

use crate::error::{CliError, CliResult, naming_output};
use capsuledb::{BackupOptions, Options};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::Write;
use std::path::Path;

/// Copies `file` to `out` (replacing `out` only with `force`), then reopens the copy
/// and checks it.
pub fn backup(file: &Path, out: &Path, force: bool) -> CliResult<()> {
    crate::data::must_exist(file)?;
    match out.symlink_metadata() {
        Ok(m) if !m.is_file() => {
            // `--force` replaces a regular file only: never a device, a pipe, a socket,
            // a directory or a symlink's target.
            return Err(CliError::msg(format!(
                "{} exists and is not a regular file",
                out.display()
            )));
        }
        Ok(_) if !force => {
            return Err(CliError::msg(format!(
                "{} exists; pass --force to replace it",
                out.display()
            )));
        }
        _ => {}
    }
    // Interrupted, the copy being written (`.OUT.backup-<pid>-…` beside OUT, named by
    // the library) is removed; installed before the open starts any thread.
    let (dir, prefix) = temp_prefix(out, "backup");
    // Once the copy is in place (and has replaced OUT, with --force), an interruption
    // during its second check says so instead of exiting without a word.
    let placed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let placed_seen = std::sync::Arc::clone(&placed);
    let out_shown = out.display().to_string();
    crate::interrupt::clean_up_on_signal(move || {
        if placed_seen.load(std::sync::atomic::Ordering::Acquire) {
            return Some(format!(
                "nothing: the backup {out_shown} was already in place; its second check did not finish"
            ));
        }
        remove_with_prefix(&dir, &prefix)
    });
    // Read-only: the source file is never written, whatever state it is in.
    let db = Options::new().read_only(true).open(file)?;
    // A damaged log's readable state is an earlier one: a backup of it would look like a
    // good copy of the database. `salvage` is the command for such a file.
    crate::data::refuse_damage(&db, file)?;
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "backup [{bar:30.cyan/blue}] {pos}/{len} keys, {msg} ({elapsed})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    // Ticking on its own: the library counts every key before its first report, and
    // compacts and checks the copy after its last, each a while on a large database.
    bar.set_message("counting keys");
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    // From just before the copy is renamed into place until the backup returns, a
    // signal waits: its cleanup then knows whether OUT was replaced.
    let placing = std::cell::RefCell::new(None);
    let options = BackupOptions::new()
        .overwrite(force)
        .progress(|p| {
            bar.set_length(p.keys_total);
            bar.set_position(p.keys_done);
            if p.tables_done == p.tables_total && p.keys_done == p.keys_total {
                bar.set_message("compacting and checking the copy".to_string());
            } else {
                bar.set_message(format!("{}/{} tables", p.tables_done, p.tables_total));
            }
        })
        .before_placing(|| *placing.borrow_mut() = Some(crate::interrupt::hold_off()));
    let report = db.backup_to_with(out, options);
    // A failed sync of the directory comes after the copy took the name OUT.
    let in_place = match &report {
        Ok(_) => true,
        Err(capsuledb::Error::Io { op, .. }) => *op == capsuledb::BACKUP_DIR_SYNC_OP,
        Err(_) => false,
    };
    if in_place {
        placed.store(true, std::sync::atomic::Ordering::Release);
    }
    drop(placing.take());
    bar.finish_and_clear();
    // Errors the library met writing the copy or placing it name OUT; others are the
    // source's (its file read, a live reader's move to a newer state).
    let report = report.map_err(|e| match &e {
        capsuledb::Error::Io { op, source } if *op == capsuledb::BACKUP_DIR_SYNC_OP => {
            CliError::msg(format!(
                "the backup is in place at {} (it replaced any file there), but its \
                 directory could not be synced ({source}): a power cut may lose the name",
                out.display()
            ))
        }
        capsuledb::Error::Io { op, .. } if capsuledb::BACKUP_OUTPUT_OPS.contains(op) => {
            naming_output(out, e.into())
        }
        _ => e.into(),
    })?;
    let named = |e: capsuledb::Error| naming_output(out, e.into());
    db.close()?;
    // Checked read-only: a read-write open would write to the new backup (a header).
    let copy = Options::new().read_only(true).open(out).map_err(named)?;
    let check = crate::data::with_spinner("checking the backup again, read-only", || {
        copy.check_integrity()
    })
    .map_err(named)?;
    drop(copy);
    // A signal from here on would report a second check that did finish.
    let printed = crate::interrupt::finishing(|| -> std::io::Result<()> {
        let mut stdout = std::io::stdout().lock();
        writeln!(
            stdout,
            "{}: {} tables, {} keys ({} bytes of keys and values) as of commit {}; {} bytes; check {}",
            out.display(),
            report.tables,
            report.keys,
            report.bytes,
            report.seq,
            report.file_len,
            if check.is_ok() { "ok" } else { "FAILED" }
        )?;
        for problem in &check.problems {
            writeln!(stdout, "problem: {problem}")?;
        }
        stdout.flush()
    });
    // The verdict first: a failed check is an error even when stdout is gone (a closed
    // pipe, which `main` treats as success, would otherwise hide it).
    if !check.is_ok() {
        return Err(CliError::msg(format!(
            "the copy failed its integrity check; it is left at {} (do not rely on it)",
            out.display()
        )));
    }
    printed?;
    Ok(())
}

/// The directory `out` lies in (`.` for a bare name).
pub fn dir_of(out: &Path) -> std::path::PathBuf {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    }
}

/// The directory of `out` and the start of the names this process gives the temporary
/// copies it writes there for `what` (`.OUT.what-<pid>-`).
pub fn temp_prefix(out: &Path, what: &str) -> (std::path::PathBuf, String) {
    let start = temp_path(out, what, "");
    let name = start.file_name().map(|n| n.to_string_lossy().into_owned());
    (dir_of(out), name.unwrap_or_default())
}

/// The path of a temporary file beside `out` for `what`, `.STEM.what-<pid>-<unique>`,
/// built from the name's bytes (the stem cut as the library cuts a backup's): within
/// the 255 bytes a name may have, whatever the name. [`temp_prefix`] gives its start.
pub fn temp_path(out: &Path, what: &str, unique: &str) -> std::path::PathBuf {
    let mut name = std::ffi::OsString::from(".");
    match out.file_name() {
        Some(n) => name.push(capsuledb::temporary_name_stem(n)),
        None => name.push(what),
    }
    name.push(format!(".{what}-{}-{unique}", std::process::id()));
    dir_of(out).join(name)
}

/// Removes the files of `dir` whose names start with `prefix`; says which, if any.
pub fn remove_with_prefix(dir: &Path, prefix: &str) -> Option<String> {
    let removed: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .map(|e| e.path().display().to_string())
        .collect();
    (!removed.is_empty()).then(|| removed.join(", "))
}
