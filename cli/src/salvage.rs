//! Damaged files: describing the damage for `info` (which, like `check`, opens read-only
//! and reads up to the damage), and `salvage`, which copies every commit that can be
//! recovered into a new database.

use crate::error::{CliError, CliResult, naming_output};
use capsuledb::{LogDamage, Options};
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
        format!(
            "beyond the damage  commits {} to {} were durable and cannot be read",
            d.seq, d.durable_seq
        ),
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
    if !input.exists() {
        return Err(CliError::msg(format!(
            "{}: no such database file",
            input.display()
        )));
    }
    if output.exists() {
        return Err(CliError::msg(format!(
            "{}: already exists; salvage writes a new file",
            output.display()
        )));
    }
    let src = Options::new().read_only(true).open(input)?;
    let info = src.info()?;
    let stats = src.stats();
    let mut conn = src.connect();
    let tx = conn.begin_read()?;
    let tables = tx.tables()?;
    let mut total = 0u64;
    for t in &tables {
        total += tx.len(t)?;
    }
    // Written under a temporary name beside OUT and renamed into place once checked: a
    // failed salvage (a full disk, say) leaves no partial file that looks complete.
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "salvage".into());
    let temp = output.with_file_name(format!(".{name}.salvage-{}", std::process::id()));
    let guard = RemoveOnDrop(Some(temp.clone()));
    let copied = write_copy(&tx, &tables, &temp, info.page_size, total)
        .map_err(|e| naming_output(output, e))?;
    drop(tx);
    std::fs::rename(&temp, output).map_err(|e| {
        CliError::io(
            format!("rename the salvaged file to {}", output.display()),
            e,
        )
    })?;
    guard.disarm();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "salvaged {} tables, {copied} keys: the state after commit {} of {}",
        tables.len(),
        stats.visible_seq,
        input.display()
    )?;
    writeln!(
        out,
        "wrote {} (checked: ok); history before that state is not copied",
        output.display()
    )?;
    match &info.log_damage {
        None => writeln!(
            out,
            "lost: nothing (the log holds no damage below its durable commits)"
        )?,
        Some(d) => {
            writeln!(
                out,
                "lost: commits {} to {} (durable, unreadable past damage at page {}: {})",
                d.seq, d.durable_seq, d.page, d.what
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
    Ok(())
}

/// Removes a file when dropped, unless disarmed: the temporary output of a salvage that
/// failed part way.
struct RemoveOnDrop(Option<std::path::PathBuf>);

impl RemoveOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Writes `tables` as `tx` reads them into a new database at `temp` (pages of
/// `page_size`), with a progress bar over `total` keys, and checks it; returns the keys
/// copied.
fn write_copy(
    tx: &capsuledb::Transaction<'_>,
    tables: &[String],
    temp: &Path,
    page_size: u32,
    total: u64,
) -> CliResult<u64> {
    let dst = Options::new().page_size(page_size).open(temp)?;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:30.cyan/blue}] {pos}/{len} keys {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix("salvage");
    let mut out_conn = dst.connect();
    let mut copied = 0u64;
    for table in tables {
        bar.set_message(table.clone());
        let mut w = out_conn.begin()?;
        w.create_table(table)?;
        let (mut keys, mut bytes) = (0usize, 0usize);
        for item in tx.iter(table)? {
            let (k, v) = item?;
            w.put(table, &k, &v)?;
            keys += 1;
            bytes += k.len() + v.len();
            copied += 1;
            if keys >= SALVAGE_BATCH_KEYS || bytes >= SALVAGE_BATCH_BYTES {
                w.commit()?;
                bar.set_position(copied);
                w = out_conn.begin()?;
                (keys, bytes) = (0, 0);
            }
        }
        w.commit()?;
        bar.set_position(copied);
    }
    bar.finish_and_clear();
    drop(out_conn);
    let report = dst.check_integrity()?;
    if !report.is_ok() {
        return Err(CliError::msg(format!(
            "the salvaged database fails its check: {}",
            report.problems.join("; ")
        )));
    }
    dst.close()?;
    Ok(copied)
}
