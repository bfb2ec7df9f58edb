//! Damaged files: describing the damage for `info` (which, like `check`, opens read-only
//! and reads up to the damage), and `salvage`, which copies every commit that can be
//! recovered into a new database.

use crate::error::{CliError, CliResult, naming_output};
use capsuledb::{LogDamage, Options, SalvageLoss};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::Path;

/// Keys copied per transaction by `salvage` (bounded well below the transaction limits).
const SALVAGE_BATCH_KEYS: usize = 4096;
/// Bytes copied per transaction by `salvage`.
const SALVAGE_BATCH_BYTES: usize = 8 << 20;

/// Lines describing damage to the log, for `info` and `salvage`.
pub fn damage_lines(d: &LogDamage) -> Vec<String> {
    let mut lines = vec![
        format!(
            "LOG DAMAGE         commit {} at page {}: {}",
            d.seq, d.page, d.what
        ),
        format!("beyond the damage  {} and cannot be read", d.lost()),
    ];
    lines.push(match d.later_markers {
        Some((lo, hi, n)) => format!(
            "                   {n} marker records of commits {lo} to {hi} remain past it, unreadable across the damage"
        ),
        None => "                   no marker record of a later commit remains past it".into(),
    });
    lines.push(
        "                   opened read-only at the last commit before the damage; `capsuledb salvage IN OUT` copies it"
            .into(),
    );
    lines
}

/// `salvage IN OUT`: writes a new database OUT holding the state of every commit of IN
/// that can be recovered, checks it, and says which commits were lost and why. IN is
/// opened read-only and never modified.
pub fn salvage(input: &Path, output: &Path) -> CliResult<()> {
    crate::data::must_exist(input)?;
    // Not `exists()`, which follows a symbolic link: a dangling one passed, the whole
    // salvage ran, and placing the copy failed as if OUT had been made meanwhile.
    if output.symlink_metadata().is_ok() {
        return Err(CliError::msg(format!(
            "{}: already exists; salvage writes a new file",
            output.display()
        )));
    }
    // Interrupted, the copy being written (`.OUT.salvage-<pid>-…`) is removed;
    // installed before the open starts any thread.
    let (dir, prefix) = crate::backup::temp_prefix(output, "salvage");
    crate::interrupt::clean_up_on_signal(move || crate::backup::remove_with_prefix(&dir, &prefix));
    let src = Options::new().read_only(true).open(input)?;
    // One read transaction for the list of tables, the count and every table's copy:
    // one committed state, even of a file a writer still commits to.
    let mut conn = src.connect();
    let snapshot = conn.begin_read()?;
    let info = src.info()?;
    // A damaged catalog page is passed over too: the names on it are lost (and where
    // their tables lie), every other table is copied.
    // The list reads the names alone: a name whose entry names no table (a crafted
    // value) is met by looking each up, and the catalog is then salvaged, that name
    // lost (it stopped the whole salvage when its copy began).
    let (tables, catalog_losses) = match snapshot.tables() {
        Ok(tables)
            if tables
                .iter()
                .all(|t| snapshot.table_exists(t).is_ok_and(|e| e)) =>
        {
            (tables, Vec::new())
        }
        Err(e) if !e.is_corruption() => return Err(e.into()),
        _ => {
            let (tables, report) = snapshot.salvage_tables()?;
            (tables, report.losses)
        }
    };
    // The tables whose names were lost are found by their keys and copied under names
    // of their own, none a copied table has.
    let (unnamed, unsearched) = if catalog_losses.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let (ids, report) =
            crate::data::with_spinner("looking for tables whose names were lost", || {
                snapshot.salvage_unnamed_tables()
            })?;
        (ids, report.losses)
    };
    let mut sources: Vec<(String, Source)> = tables
        .iter()
        .map(|t| (t.clone(), Source::Named(t.clone())))
        .collect();
    for &id in &unnamed {
        let mut name = format!("lost-table-{id}");
        while tables.contains(&name) {
            name.push('_');
        }
        sources.push((name, Source::Id(id)));
    }
    // Counting reads the tables whole: with a damaged page it fails, and the progress
    // bar counts without a total.
    let total: Option<u64> = crate::data::with_spinner("counting the keys to copy", || {
        let named: Option<u64> = tables.iter().map(|t| snapshot.len(t).ok()).sum();
        // A table whose name is lost cannot be counted without being read.
        named.filter(|_| unnamed.is_empty())
    });
    // Written under a temporary name beside OUT and renamed into place once checked: a
    // failed salvage (a full disk, say) leaves no partial file that looks complete.
    // Unique: never a name another salvage (another process with this pid, in another
    // container on a shared volume) is writing.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let temp = crate::backup::temp_path(output, "salvage", &nanos.to_string());
    if temp.symlink_metadata().is_ok() {
        return Err(CliError::msg(format!(
            "{}: exists; another salvage may be writing it",
            temp.display()
        )));
    }
    let guard = RemoveOnDrop(Some(temp.clone()));
    let (copied, losses) = write_copy(&snapshot, &sources, &temp, info.page_size, total)
        .map_err(|e| naming_output(output, e))?;
    let seq = snapshot.snapshot_seq();
    drop(snapshot);
    // Linked, OUT is reported with what was lost, signals held off: one arriving
    // between the link and the report would have left a complete OUT with none of its
    // losses said.
    crate::interrupt::finishing(move || -> Result<(), CliError> {
        link_no_replace(&temp, output).map_err(placing_error(
            output,
            "the salvage",
            "salvage writes a new file",
            format!("link the salvaged file to {}", output.display()),
        ))?;
        drop(guard);
        // The new name reaches the disk before OUT is reported written. A failed sync
        // is said after the report: OUT is in place, and what it lacks is said once.
        let synced = sync_dir_of(output);
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "salvaged {} tables, {copied} keys: the state after commit {} of {}",
            sources.len(),
            seq,
            input.display()
        )?;
        writeln!(
            out,
            "wrote {} (checked: ok); history before that state is not copied",
            output.display()
        )?;
        // Where a loss ends, or `open` for a loss to the end.
        let until = |loss: &SalvageLoss, open: &str| {
            loss.until
                .as_deref()
                .map_or_else(|| open.to_string(), |k| format!("up to {}", show_key(k)))
        };
        for loss in &catalog_losses {
            let one = loss.until.as_deref().and_then(|u| u.strip_suffix(&[0]));
            if one == Some(&loss.from[..]) {
                writeln!(
                    out,
                    "lost: the name {} (catalog page {}: {}); its table is copied as found below",
                    show_key(&loss.from),
                    loss.page,
                    loss.what
                )?;
                continue;
            }
            writeln!(
                out,
                "lost: the names of the tables named from {} {} (damaged catalog page {}: {}); a table created there since the last checkpoint comes from the log and was copied, the others as found below when their keys can be read",
                show_key(&loss.from),
                until(loss, "to the last name"),
                loss.page,
                loss.what
            )?;
        }
        for (name, source) in &sources {
            if let Source::Id(id) = source {
                writeln!(
                    out,
                    "found: a table whose name was lost (its id is {id}), copied as {name}"
                )?;
            }
        }
        let id = |bytes: &[u8]| <[u8; 8]>::try_from(bytes).map_or(0, u64::from_be_bytes);
        for loss in &unsearched {
            // Not a range of ids: what makes the tables found uncertain.
            if loss.from.is_empty() {
                writeln!(out, "lost: {} (damaged tree page {})", loss.what, loss.page)?;
                continue;
            }
            let from = id(&loss.from);
            let ids = match loss.until.as_deref().map(id) {
                Some(past) if past == from.saturating_add(1) => format!("id {from}"),
                Some(past) if past > from => format!("ids {from} to {}", past - 1),
                // (A crafted separator can end a loss at or below where it starts.)
                _ => format!("ids from {from}"),
            };
            writeln!(
                out,
                "lost: any table of {ids} whose name was lost and whose keys all lie on damaged tree page {} ({}): not found",
                loss.page, loss.what
            )?;
        }
        for (table, loss) in &losses {
            let until = until(loss, "to the end of the table");
            writeln!(
                out,
                "lost: table {}, keys from {} {until} (damaged tree page {}: {}); their later versions, from the log, were copied",
                crate::data::show_name(table),
                show_key(&loss.from),
                loss.page,
                loss.what
            )?;
        }
        if let Some(what) = &info.header_damage {
            writeln!(
                out,
                "lost: possibly a newer state than the one copied: {what}"
            )?;
        }
        match &info.log_damage {
            None if losses.is_empty()
                && catalog_losses.is_empty()
                && info.header_damage.is_none() =>
            {
                writeln!(
                    out,
                    "lost: nothing (the log holds no damage below its durable commits)"
                )?
            }
            None => writeln!(
                out,
                "      the log holds no damage below its durable commits"
            )?,
            Some(d) => {
                writeln!(
                    out,
                    "lost: {}, unreadable past damage at page {}: {}",
                    d.lost(),
                    d.page,
                    d.what
                )?;
                if let Some((lo, hi, n)) = d.later_markers {
                    writeln!(
                        out,
                        "      {n} marker records of commits {lo} to {hi} remain in {} past the damage; they cannot be applied without commit {}",
                        input.display(),
                        d.seq
                    )?;
                }
            }
        }
        out.flush()?;
        synced.map_err(|e| {
            CliError::msg(format!(
                "the salvage is in place at {} (reported above), but its directory could not \
                 be synced ({e}): a power cut may lose the name",
                output.display()
            ))
        })
    })
}

/// Removes a file when dropped: the temporary output of a salvage (linked into place
/// once checked, or left by a failure part way).
pub(crate) struct RemoveOnDrop(pub(crate) Option<std::path::PathBuf>);

/// Syncs the directory `path` lies in: a name just given there reaches the disk.
/// The file at `path` is already in place: a directory that cannot be synced at all
/// (one this user may not read, or on a file system without directory syncs: EINVAL,
/// EOPNOTSUPP) is said on stderr, and the command goes on to report what it wrote, as
/// the library's own open does; any other failure is an error.
pub(crate) fn sync_dir_of(path: &Path) -> CliResult<()> {
    let dir = crate::backup::dir_of(path);
    match std::fs::File::open(&dir).and_then(|d| d.sync_all()) {
        Err(e) if capsuledb::storage::dir_sync_unsupported(&e) => {
            // Not `eprintln!`: a closed stderr would panic before the report.
            let _ = writeln!(
                std::io::stderr(),
                "capsuledb: warning: the directory {} cannot be synced ({e}): a power cut may \
                 lose the name {}",
                dir.display(),
                path.display()
            );
            Ok(())
        }
        r => r.map_err(|e| CliError::io(format!("sync the directory {}", dir.display()), e)),
    }
}

/// The error of placing a new file at `target` ([`link_no_replace`], or the copy it is
/// made from): a file made there while the command (`running`) ran is said so, with
/// what the command does (`writes`); any other failure is an I/O error of `op`.
pub(crate) fn placing_error(
    target: &Path,
    running: &str,
    writes: &str,
    op: String,
) -> impl Fn(std::io::Error) -> CliError {
    move |e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            CliError::msg(format!(
                "{}: made while {running} ran; {writes}",
                target.display()
            ))
        } else {
            CliError::io(op.clone(), e)
        }
    }
}

/// Gives `temp`'s file the name `output` without replacing a file there: a link, not a
/// rename (it fails with `AlreadyExists` if `output` was made meanwhile); on a file
/// system without hard links (vfat, exFAT, some network mounts), a rename after looking
/// once more that `output` is still free. `temp` keeps its name after a link.
pub(crate) fn link_no_replace(temp: &Path, output: &Path) -> std::io::Result<()> {
    match std::fs::hard_link(temp, output) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            if output.symlink_metadata().is_ok() {
                Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists))
            } else {
                std::fs::rename(temp, output)
            }
        }
        other => other,
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A key for the report: as text when it is printable, else in hex.
fn show_key(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(text) if !text.chars().any(char::is_control) => format!("{text:?}"),
        _ => format!("0x{}", crate::codec::to_hex(key)),
    }
}

/// Where a table of the copy comes from.
enum Source {
    /// The table of this name.
    Named(String),
    /// The table of this id, whose name is lost.
    Id(u64),
}

/// Writes what can be read of `tables` (each under its name in the copy) in the snapshot `src` into a new database at `temp` (pages of
/// `page_size`), with a progress bar over `total` keys (when known), and checks it;
/// returns the keys copied and what could not be read, by table.
fn write_copy(
    src: &capsuledb::Transaction<'_>,
    tables: &[(String, Source)],
    temp: &Path,
    page_size: u32,
    total: Option<u64>,
) -> CliResult<(u64, Vec<(String, SalvageLoss)>)> {
    let dst = Options::new().page_size(page_size).open(temp)?;
    let bar = match total {
        Some(total) => ProgressBar::new(total),
        None => ProgressBar::no_length(),
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:30.cyan/blue}] {pos}/{len} keys {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix("salvage");
    let mut copied = 0u64;
    let mut losses = Vec::new();
    for (table, source) in tables {
        bar.set_message(table.clone());
        let mut conn = dst.connect();
        let mut tx = conn.begin()?;
        tx.create_table(table)?;
        tx.commit()?;
        let mut batch: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut bytes = 0usize;
        let mut flush = |batch: &mut Vec<(Vec<u8>, Vec<u8>)>| -> capsuledb::Result<()> {
            let mut w = conn.begin()?;
            for (k, v) in batch.drain(..) {
                w.put(table, &k, &v)?;
            }
            w.commit()?;
            Ok(())
        };
        let each = |k: &[u8], v: &[u8]| {
            batch.push((k.to_vec(), v.to_vec()));
            bytes += k.len() + v.len();
            copied += 1;
            if batch.len() >= SALVAGE_BATCH_KEYS || bytes >= SALVAGE_BATCH_BYTES {
                flush(&mut batch)?;
                bytes = 0;
                bar.set_position(copied);
            }
            Ok(())
        };
        let report = match source {
            Source::Named(name) => src.salvage_table(name, each)?,
            Source::Id(id) => src.salvage_table_id(*id, each)?,
        };
        flush(&mut batch)?;
        bar.set_position(copied);
        losses.extend(report.losses.into_iter().map(|l| (table.clone(), l)));
    }
    bar.finish_and_clear();
    let report =
        crate::data::with_spinner("checking the salvaged database", || dst.check_integrity())?;
    if !report.is_ok() {
        return Err(CliError::msg(format!(
            "the salvaged database fails its check: {}",
            report.problems.join("; ")
        )));
    }
    dst.close()?;
    Ok((copied, losses))
}
