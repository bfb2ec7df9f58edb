//! Online backup: [`Database::backup_to`] copies one snapshot into a fresh database file
//! while writers keep committing.
//!
//! The copy reads a `begin_read` snapshot (which never blocks a writer) and writes every
//! table into a new database through bulk transactions of bounded size, then folds them
//! into its tree, cuts the free tail, checks the new file's integrity and renames it
//! into place. The copy is thus compacted (every commit folded into the tree, no history, no
//! free pages at its end)
//! and holds exactly the snapshot's state. Until the rename the new file has a temporary
//! name beside the target, so a failed or interrupted backup never leaves a partial
//! file under the target's name.

use super::{Database, Options, Transaction};
use crate::engine::files::file_id_of;
use crate::error::{Error, Result};
use crate::types::{Durability, Isolation};
use std::path::{Path, PathBuf};

/// Most bytes of keys and values one bulk transaction of a backup writes.
const BACKUP_BATCH_BYTES_MAX: usize = 32 << 20;

/// Most keys one bulk transaction of a backup writes.
const BACKUP_BATCH_KEYS_MAX: u64 = 100_000;

/// Keys copied between two progress reports (a report also follows each table).
const PROGRESS_KEYS: u64 = 4096;

/// How far a backup has come, as given to the progress callback.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupProgress {
    /// Tables copied completely.
    pub tables_done: u64,
    /// Tables in the snapshot.
    pub tables_total: u64,
    /// Keys copied so far.
    pub keys_done: u64,
    /// Keys in the snapshot (counted before copying).
    pub keys_total: u64,
    /// Bytes of keys and values copied so far.
    pub bytes_done: u64,
}

/// What a finished backup reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupReport {
    /// The snapshot copied: every commit at or below this sequence, none after it.
    pub seq: u64,
    /// Tables copied.
    pub tables: u64,
    /// Keys copied.
    pub keys: u64,
    /// Bytes of keys and values copied.
    pub bytes: u64,
    /// The backup file's length.
    pub file_len: u64,
}

/// A backup's progress callback.
type ProgressFn<'p> = Box<dyn FnMut(&BackupProgress) + 'p>;

/// How [`Database::backup_to_with`] runs.
#[derive(Default)]
#[non_exhaustive]
pub struct BackupOptions<'p> {
    overwrite: bool,
    progress: Option<ProgressFn<'p>>,
    placing: Option<Box<dyn FnMut() + 'p>>,
}

impl std::fmt::Debug for BackupOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupOptions")
            .field("overwrite", &self.overwrite)
            .field("progress", &self.progress.is_some())
            .field("placing", &self.placing.is_some())
            .finish()
    }
}

impl<'p> BackupOptions<'p> {
    /// The defaults: refuse an existing target, no progress reports.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replace a file already at the target path (it is replaced only once the copy is
    /// complete and checked). A database another handle has open read-write there, in
    /// this process or another, is not replaced: the backup fails with
    /// [`Error::Locked`](crate::Error::Locked) (its writer's later commits would go to a
    /// file no name reaches).
    pub fn overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }

    /// Calls `progress` every few thousand keys and after each table.
    pub fn progress(mut self, progress: impl FnMut(&BackupProgress) + 'p) -> Self {
        self.progress = Some(Box::new(progress));
        self
    }

    /// Calls `placing` once the copy is complete, checked and durable, right before it
    /// is renamed to the target path (not at all when the backup fails before that). A
    /// program that handles signals can hold them off from here until the backup
    /// returns, so that an interruption never leaves it unsure whether the target was
    /// replaced.
    pub fn before_placing(mut self, placing: impl FnMut() + 'p) -> Self {
        self.placing = Some(Box::new(placing));
        self
    }
}

/// Removes the temporary file unless the backup got as far as renaming it.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Whether `a` and `b` name one file: the same device and inode (the same file under
/// two paths a canonical path does not unify, a bind mount or a case-folding directory,
/// is still one file). A path that names nothing is no file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (file_id_of(a), file_id_of(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

impl Database {
    /// Whether `path` names this database's own file: the open file's device and inode
    /// (the name it was opened by may since have been renamed, even to `path`), else its
    /// path.
    fn is_own_file(&self, path: &Path) -> bool {
        let target = file_id_of(path);
        (target.is_some() && self.open_file_id() == target)
            || self.path().is_some_and(|own| same_file(own, path))
    }
}

impl Database {
    /// Writes a consistent, compacted copy of the database as it is now to a new file at
    /// `path`, while other threads keep committing; refuses a `path` that exists
    /// ([`Error::InvalidPath`]). See [`Database::backup_to_with`].
    ///
    /// ```
    /// # fn main() -> capsuledb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = capsuledb::Database::open(dir.path().join("app.db"))?;
    /// # db.connect().run(|tx| { tx.create_table("t")?; tx.put("t", b"k", b"v") })?;
    /// let report = db.backup_to(dir.path().join("app.backup.db"))?;
    /// let copy = capsuledb::Database::open(dir.path().join("app.backup.db"))?;
    /// assert!(copy.check_integrity()?.is_ok());
    /// assert_eq!(report.keys, 1);
    /// # Ok(()) }
    /// ```
    pub fn backup_to(&self, path: impl AsRef<Path>) -> Result<BackupReport> {
        self.backup_to_with(path, BackupOptions::new())
    }

    /// [`Database::backup_to`] with options: overwriting an existing file, and a
    /// progress callback.
    ///
    /// The copy holds exactly the state of one read snapshot, taken when the backup
    /// starts ([`BackupReport::seq`]). Writers are never held up: like any long read
    /// snapshot, the backup keeps every version committed after its snapshot in memory
    /// until it ends (checkpoints cannot fold past it), so the version store grows with
    /// what writers commit meanwhile. The
    /// new file has the source's page size, all tables and keys folded into its tree, no history;
    /// it is checked with [`Database::check_integrity`] before it is renamed into place,
    /// and only once every commit it holds is durable in the source (the snapshot may
    /// hold commits acknowledged at [`crate::Durability::Applied`]; a backup never holds
    /// a commit the source could still lose). A live reader's backup
    /// ([`crate::Options::read_only`]) holds what the writer had written, which a crash
    /// of the writer's machine before its next sync could still take from the source.
    ///
    /// ```
    /// # fn main() -> capsuledb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = capsuledb::Database::open(dir.path().join("app.db"))?;
    /// use capsuledb::BackupOptions;
    /// let out = dir.path().join("copy.db");
    /// db.backup_to(&out)?;
    /// let mut reports = 0;
    /// let options = BackupOptions::new().overwrite(true).progress(|_| reports += 1);
    /// db.backup_to_with(&out, options)?;
    /// assert!(reports > 0);
    /// # Ok(()) }
    /// ```
    pub fn backup_to_with(
        &self,
        path: impl AsRef<Path>,
        mut options: BackupOptions<'_>,
    ) -> Result<BackupReport> {
        let path = path.as_ref();
        if self.is_own_file(path) {
            return Err(Error::InvalidPath {
                path: path.into(),
                reason: "it is the database being backed up",
            });
        }
        if !options.overwrite && path.symlink_metadata().is_ok() {
            return Err(Error::InvalidPath {
                path: path.into(),
                reason: "it exists (ask to overwrite it to replace it)",
            });
        }
        let name = path.file_name().ok_or_else(|| Error::InvalidPath {
            path: path.into(),
            reason: "it names no file",
        })?;
        // Unique to this backup: two backups to one path (threads of one process, or
        // processes with one pid in two containers on a shared volume) never share it.
        static BACKUPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(temporary_name_stem(name));
        temp_name.push(format!(
            ".backup-{}-{}-{:x}",
            std::process::id(),
            BACKUPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        ));
        let temp_path = path.with_file_name(temp_name);
        let mut temp = TempFile(Some(temp_path.clone()));

        let mut conn = self.connect();
        let snap = conn.begin_read()?;
        // A read-only handle past damage reads an earlier state than the file's (a
        // damaged log, or a header copy that may have held a newer state): a copy of it
        // would pass its check and hide what was lost. `capsuledb salvage` copies such a
        // file and says what was lost. The snapshot's own engine is asked: a live
        // reader's handle may have moved on to a newer one since.
        let info = snap.engine().info()?;
        if let Some(damage) = &info.log_damage {
            return Err(damage.to_error());
        }
        // A writer wrote the current header copy itself and reads its newest state: a
        // copy damaged at rest beside it hides nothing from it (and until a header write
        // replaces that copy, a read-write open would refuse the file: a backup is wanted).
        if info.read_only
            && let Some((page, what)) = snap.engine().header_damage()?
        {
            return Err(Error::corrupted(page, what));
        }
        let tables = snap.tables()?;
        let mut progress = BackupProgress {
            tables_total: tables.len() as u64,
            ..BackupProgress::default()
        };
        for table in &tables {
            progress.keys_total += snap.count::<&[u8], _>(table, ..)?;
        }
        if let Some(report) = options.progress.as_mut() {
            report(&progress);
        }
        // With the source's permissions, given whole once it is written (a file this
        // process cannot stat, or a database on a plugged-in storage, has the default
        // ones).
        let mut mode = None;
        if let Some(source) = self.path() {
            match crate::storage::create_like(&temp_path, source) {
                Ok(m) => mode = Some(m),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(Error::Io {
                        op: "create the backup's temporary file",
                        source: e,
                    });
                }
                Err(_) => {}
            }
        }
        let copy = Options::new()
            .page_size(self.engine().page_size)
            .open(&temp_path)
            .map_err(of_copy)?;
        copy_tables(&snap, &tables, &copy, &mut progress, &mut options)?;
        let seq = snap.snapshot_seq();
        drop(snap);
        copy.compact().map_err(of_copy)?;
        let check = copy.check_integrity().map_err(of_copy)?;
        if let Some(problem) = check.problems.first() {
            // The copy's fault (its disk, or a bug), not damage in this database: not a
            // `Corrupted`, which would name a page of the source.
            return Err(Error::Io {
                op: CHECK_OP,
                source: std::io::Error::other(format!(
                    "the copy failed its integrity check and was removed: {problem}"
                )),
            });
        }
        let file_len = copy.info().map_err(of_copy)?.file_len;
        copy.close().map_err(of_copy)?;
        if let Some(mode) = mode
            && let Err(e) = crate::storage::set_mode(&temp_path, mode)
        {
            log::warn!(
                "{}: the backup keeps its owner's write permission beside its source's ({mode:o}): {e}",
                path.display()
            );
        }
        // The snapshot may hold commits not yet durable here (`Applied`): a crash or a
        // failed sync would lose them from the source, not from the backup. (A live
        // reader sees what the writer has written and cannot tell when it is synced.)
        if !info.read_only {
            self.wait_for(seq, crate::Durability::Durable)?;
        }
        if let Some(placing) = options.placing.as_mut() {
            placing();
        }
        if options.overwrite {
            // Again just before: `path` may have been made this database's name while
            // the copy ran, and the rename would take the name from the live file.
            if self.is_own_file(path) {
                return Err(Error::InvalidPath {
                    path: path.into(),
                    reason: "it is the database being backed up",
                });
            }
            // Nor over a database another handle writes (its `flock`).
            crate::storage::rename_over_unlocked(&temp_path, path, RENAME_OP)?;
        } else {
            // Not over a file made at `path` while the copy ran: a link (or, on a file
            // system without links, a rename that does not replace) fails if the name
            // exists (a plain rename would replace it).
            crate::storage::rename_no_replace(&temp_path, path).map_err(|source| {
                if source.kind() == std::io::ErrorKind::AlreadyExists {
                    Error::InvalidPath {
                        path: path.into(),
                        reason: "it exists (ask to overwrite it to replace it)",
                    }
                } else {
                    Error::Io {
                        op: LINK_OP,
                        source,
                    }
                }
            })?;
        }
        temp.0 = None;
        // In place now: a directory that cannot be synced (one this process may not
        // read, say) is no reason to report the backup failed.
        crate::storage::sync_parent_if_possible(path, BACKUP_DIR_SYNC_OP)?;
        log::info!(
            "backup of seq {seq} to {}: {} tables, {} keys, {} bytes",
            path.display(),
            progress.tables_done,
            progress.keys_done,
            file_len
        );
        Ok(BackupReport {
            seq,
            tables: progress.tables_done,
            keys: progress.keys_done,
            bytes: progress.bytes_done,
            file_len,
        })
    }
}

/// An error met writing the copy, told apart from one of this database (whose messages
/// say "the database file" alike, a `Poisoned` telling to reopen it, a `Corrupted`
/// naming a page as if of it): [`Error::Io`] with the op [`BACKUP_COPY_OP`], the
/// original error's message after it, an I/O error's kind kept.
fn of_copy(e: Error) -> Error {
    let kind = match &e {
        Error::Io { source, .. } => source.kind(),
        _ => std::io::ErrorKind::Other,
    };
    let message = match e {
        Error::Io { op, source } => format!("{op}: {source}"),
        other => other.to_string(),
    };
    Error::Io {
        op: BACKUP_COPY_OP,
        source: std::io::Error::new(kind, message),
    }
}

/// The op of every I/O error a backup meets writing its copy (before it is placed).
pub const BACKUP_COPY_OP: &str = "write the backup copy";
const CHECK_OP: &str = "check the backup copy";
const RENAME_OP: &str = "rename the backup into place";
const LINK_OP: &str = "link the backup into place";
/// The op of the I/O error a backup meets syncing its directory once the copy is in
/// place: the backup is there (and, asked to overwrite, replaced the file), only its
/// name may not survive a power cut.
pub const BACKUP_DIR_SYNC_OP: &str = "sync the backup's directory";

/// The ops of the I/O errors a backup meets writing its copy or putting it in place:
/// an [`Error::Io`] with one of these concerns the target path, any other error the
/// database backed up.
pub const BACKUP_OUTPUT_OPS: [&str; 5] = [
    BACKUP_COPY_OP,
    CHECK_OP,
    RENAME_OP,
    LINK_OP,
    BACKUP_DIR_SYNC_OP,
];

/// Most bytes of the target's name a backup's temporary name keeps: with the rest of
/// it (a dot, `.backup-`, the process id, a count, a time) within the 255 bytes a
/// name may have, whatever the target's name.
pub const TEMP_STEM_MAX: usize = 160;

/// The target's name as a backup's temporary name (`.STEM.backup-<pid>-…`) gives it: at most
/// [`TEMP_STEM_MAX`] bytes, cut at a character's start when the name is UTF-8.
pub fn temporary_name_stem(name: &std::ffi::OsStr) -> std::ffi::OsString {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let bytes = name.as_bytes();
    let mut end = bytes.len().min(TEMP_STEM_MAX);
    if let Ok(text) = std::str::from_utf8(bytes) {
        while !text.is_char_boundary(end) {
            end -= 1;
        }
    }
    std::ffi::OsString::from_vec(bytes.get(..end).unwrap_or(bytes).to_vec())
}

/// Copies every table of the snapshot into `copy`, in bulk transactions.
fn copy_tables(
    snap: &Transaction<'_>,
    tables: &[String],
    copy: &Database,
    progress: &mut BackupProgress,
    options: &mut BackupOptions<'_>,
) -> Result<()> {
    let mut conn = copy.connect();
    for table in tables {
        let mut tx = conn.begin_with(Isolation::Snapshot).map_err(of_copy)?;
        tx.create_table(table).map_err(of_copy)?;
        let (mut batch_bytes, mut batch_keys) = (0usize, 0u64);
        let entries = snap
            .iter(table)?
            .with_batch_size(crate::mvcc::SCAN_BATCH_MAX);
        for entry in entries {
            let (key, value) = entry?;
            tx.put(table, &key, &value).map_err(of_copy)?;
            let len = key.len() + value.len();
            batch_bytes += len;
            batch_keys += 1;
            progress.keys_done += 1;
            progress.bytes_done += len as u64;
            if batch_bytes >= BACKUP_BATCH_BYTES_MAX || batch_keys >= BACKUP_BATCH_KEYS_MAX {
                tx.commit_with(Durability::Applied).map_err(of_copy)?;
                tx = conn.begin_with(Isolation::Snapshot).map_err(of_copy)?;
                (batch_bytes, batch_keys) = (0, 0);
            }
            if progress.keys_done.is_multiple_of(PROGRESS_KEYS)
                && let Some(report) = options.progress.as_mut()
            {
                report(progress);
            }
        }
        // Durable: every earlier batch becomes durable with it, so the checkpoint that
        // follows can fold them all.
        tx.commit_with(Durability::Durable).map_err(of_copy)?;
        progress.tables_done += 1;
        if let Some(report) = options.progress.as_mut() {
            report(progress);
        }
    }
    Ok(())
}
