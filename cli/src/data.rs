//! The data subcommands: `info`, `check`, `compact`, `tables`, `get`, `put`, `delete`,
//! `scan`, `dump`.
//!
//! Read commands refuse a missing file instead of creating an empty database there
//! (`Database::open` creates); `put --create` creates the file and the table.

use crate::codec::{Encoding, to_hex};
use crate::error::{CliError, CliResult};
use capsuledb::{Database, Durability};
use std::io::{BufWriter, Write};
use std::ops::Bound;
use std::path::Path;

/// Fails unless `file` exists: "no such database file" when it does not, and the error
/// itself when it cannot be told (`Path::exists` says "no" for a file in a directory
/// that may not be searched, and the user was told the file was missing).
pub(crate) fn must_exist(file: &Path) -> CliResult<()> {
    match std::fs::metadata(file) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CliError::msg(format!(
            "{}: no such database file",
            file.display()
        ))),
        Err(e) => Err(CliError::io(format!("look at {}", file.display()), e)),
    }
}

/// Opens `file`, which must already exist and not be empty: the library makes an empty
/// file a new database, which a command that then fails (a missing table) would leave
/// behind. `put --create` makes one on purpose.
fn open_existing(file: &Path) -> CliResult<Database> {
    must_exist(file)?;
    if std::fs::metadata(file).is_ok_and(|m| m.is_file() && m.len() == 0) {
        return Err(CliError::msg(format!(
            "{}: the file is empty, not a database (`put --create` makes one)",
            file.display()
        )));
    }
    // The library also creates a database over a short file of zeros (what a crash
    // during creation leaves): a file that never held a database's header is not one
    // to these commands either.
    if short_and_blank(file) {
        return Err(CliError::msg(format!(
            "{}: the file holds no database header (what an interrupted creation leaves), not a database (`put --create` makes one)",
            file.display()
        )));
    }
    Ok(Database::open(file)?)
}

/// Whether `file` is what the library takes for an interrupted creation (and would
/// create a database over): at most 192 KiB (the longest file creation makes), its
/// header region all zeros, and nothing else but zeros or a log page's 32-byte header
/// (creation writes the first marker page's before either header copy). A database
/// whose two header copies were damaged is not such a file: the engine names its damage.
fn short_and_blank(file: &Path) -> bool {
    use capsuledb::format::{HEADER_REGION_LEN, LOG_PAGE_HEADER_LEN, PAGE_SIZE_MIN};
    let short = std::fs::metadata(file).is_ok_and(|m| m.is_file() && m.len() <= 196_608);
    let page_header_at = |i: usize| {
        i as u64 >= HEADER_REGION_LEN && i % (PAGE_SIZE_MIN as usize) < LOG_PAGE_HEADER_LEN
    };
    short
        && std::fs::read(file).is_ok_and(|b| {
            b.iter()
                .enumerate()
                .all(|(i, &x)| x == 0 || page_header_at(i))
        })
}

/// A table name as the listings print it: as it is, or quoted and escaped when it holds
/// a control character (a line break would read as two names).
pub(crate) fn show_name(name: &str) -> std::borrow::Cow<'_, str> {
    if name.chars().any(char::is_control) {
        format!("{name:?}").into()
    } else {
        name.into()
    }
}

/// Opens `file`, which must already exist, read-only: a live reader, so it works
/// while an application writes the file, and nothing in the file (the history window
/// included) changes. A read-only open of a file whose log is damaged stops at the
/// damage; `info` and `check` report it, the commands that read data call
/// [`refuse_damage`].
fn open_for_read(file: &Path) -> CliResult<Database> {
    must_exist(file)?;
    Ok(capsuledb::Options::new().read_only(true).open(file)?)
}

/// Fails when the log of `db` (opened read-only) is damaged: what could be read is an
/// earlier state than the file's durable one, and showing it as the database's content
/// would hide lost commits. `salvage` copies what can be recovered and says what was lost.
pub fn refuse_damage(db: &Database, file: &Path) -> CliResult<()> {
    let info = db.info()?;
    if let Some(what) = &info.header_damage {
        return Err(CliError::msg(format!(
            "{}: {what}, so the readable state may be an earlier one. `capsuledb check` \
             shows it; `capsuledb salvage {} OUT` copies what can be read",
            file.display(),
            file.display()
        )));
    }
    match info.log_damage {
        Some(d) => Err(CliError::msg(format!(
            "{}: the log is damaged at page {} (commit {}: {}); {} and cannot be read, so \
             the readable state is an earlier one. `capsuledb info` shows the damage; \
             `capsuledb salvage {} OUT` copies what can be recovered",
            file.display(),
            d.page,
            d.seq,
            d.what,
            d.lost(),
            file.display()
        ))),
        None => Ok(()),
    }
}

/// [`open_for_read`], refusing a damaged log ([`refuse_damage`]).
fn open_for_data(file: &Path) -> CliResult<Database> {
    let db = open_for_read(file)?;
    refuse_damage(&db, file)?;
    Ok(db)
}

/// A read transaction at `at`, or at the newest state.
fn begin_read<'a>(
    db: &'a Database,
    conn: &'a mut capsuledb::Connection,
    at: Option<u64>,
) -> CliResult<capsuledb::Transaction<'a>> {
    Ok(match at {
        Some(seq) => db.begin_read_at(seq)?,
        None => conn.begin_read()?,
    })
}

/// Shuts the database down, reporting a failure to flush.
fn close(db: Database) -> CliResult<()> {
    db.close()?;
    Ok(())
}

fn stdout() -> BufWriter<std::io::StdoutLock<'static>> {
    BufWriter::new(std::io::stdout().lock())
}

/// `info`: the header and the engine's counters, read-only (a missing file is an error).
pub fn info(file: &Path) -> CliResult<()> {
    // A read-only open reads up to damage and reports it (`log_damage`).
    let db = open_for_read(file)?;
    let i = db.info()?;
    let s = db.stats();
    let mut out = stdout();
    writeln!(out, "file               {}", file.display())?;
    writeln!(out, "format version     {}", i.format_version)?;
    writeln!(out, "page size          {} bytes", i.page_size)?;
    writeln!(out, "file size          {} bytes", i.file_len)?;
    writeln!(out, "pages              {}", i.page_count)?;
    writeln!(out, "checkpoint seq     {}", i.checkpoint_seq)?;
    writeln!(
        out,
        "header             copy {} (generation {})",
        if i.header_copy == 0 { "A" } else { "B" },
        i.header_generation
    )?;
    if let Some(what) = &i.header_damage {
        // The other copy may hold a newer state than the one shown.
        writeln!(
            out,
            "HEADER DAMAGE      {what}; the state shown may be an earlier one (capsuledb salvage IN OUT copies it)"
        )?;
    }
    writeln!(out, "database id        {:016x}", i.database_id)?;
    writeln!(out, "last commit seq    {}", s.visible_seq)?;
    writeln!(out, "durable seq        {}", s.durable_seq)?;
    let (oldest, newest) = db.history_window();
    writeln!(
        out,
        "history window     seqs {oldest} to {newest} (get/scan --at SEQ)"
    )?;
    writeln!(out, "recovered commits  {}", s.recovered_commits)?;
    writeln!(out, "durable bound      seq {}", i.log_durable_seq)?;
    writeln!(
        out,
        "repaired at open   {} log records",
        s.repaired_log_records
    )?;
    if let Some(d) = &i.log_damage {
        for line in crate::salvage::damage_lines(d) {
            writeln!(out, "{line}")?;
        }
    }
    writeln!(
        out,
        "versions in memory {} ({} bytes)",
        s.versions, s.version_bytes
    )?;
    writeln!(
        out,
        "log since checkpoint {} commits",
        s.tip_seq.saturating_sub(s.checkpoint_seq)
    )?;
    writeln!(
        out,
        "history index      {} keys, {} in {} bytes of memory",
        s.history_keys,
        if s.history_directory {
            "a directory (past reads need no tree descent)"
        } else {
            "a Bloom filter"
        },
        s.history_index_bytes
    )?;
    writeln!(out, "free pages         {}", s.free_pages)?;
    writeln!(out, "high-water page    {}", s.high_water_page)?;
    writeln!(
        out,
        "reader pins        {}",
        if i.older_generations_pinned {
            "a reader pins an older header generation: the writer keeps the pages it reaches out of reuse"
        } else {
            "none older than the current header generation"
        }
    )?;
    {
        let mut conn = db.connect();
        let tx = conn.begin_read()?;
        // Counting reads every table whole: counted first, under a spinner.
        let tables = tx.tables()?;
        let lens = with_spinner("counting the entries of every table", || {
            tables
                .iter()
                .map(|t| tx.len(t))
                .collect::<capsuledb::Result<Vec<u64>>>()
        })?;
        for (table, len) in tables.iter().zip(lens) {
            writeln!(
                out,
                "table              {} ({len} entries)",
                show_name(table)
            )?;
        }
    }
    out.flush()?;
    close(db)
}

/// Runs `f` under a spinner on stderr saying `what`, with the time it has taken (drawn
/// only when stderr is a terminal), for work that reports no progress of its own.
pub(crate) fn with_spinner<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    spinner.set_message(what.to_string());
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let out = f();
    spinner.finish_and_clear();
    out
}

/// `check`: `check_integrity()`, every problem on its own line; fails if any.
pub fn check(file: &Path) -> CliResult<()> {
    // Read-only: a check reports what a write open would repair, and changes nothing.
    let db = open_for_read(file)?;
    let r = with_spinner("checking every page", || db.check_integrity())?;
    let printed = (|| -> std::io::Result<()> {
        let mut out = stdout();
        for p in &r.problems {
            writeln!(out, "problem: {p}")?;
        }
        writeln!(
            out,
            "{}: {} tables, {} keys in {} tree pages, {} log commits in {} log pages, {} free pages, {} pages in all (the counts are the checkpointed tree's)",
            if r.is_ok() { "ok" } else { "DAMAGED" },
            r.tables,
            r.tree_keys,
            r.tree_pages,
            r.log_commits,
            r.log_pages,
            r.free_pages,
            r.page_count
        )?;
        out.flush()
    })();
    close(db)?;
    // The verdict decides the exit status even when the output could not be written
    // (`check ... | grep -q ok` must not pass a damaged file because the pipe closed).
    if r.is_ok() {
        Ok(printed?)
    } else {
        Err(CliError::msg(format!(
            "{} problems found",
            r.problems.len()
        )))
    }
}

/// `compact`: checkpoint and cut the free tail of the file.
pub fn compact(file: &Path) -> CliResult<()> {
    let db = open_existing(file)?;
    let before = db.info()?.file_len;
    let freed = with_spinner("checkpointing and moving pages down", || db.compact())?;
    let after = db.info()?.file_len;
    let mut out = stdout();
    writeln!(
        out,
        "compacted: {before} -> {after} bytes ({freed} bytes returned)"
    )?;
    out.flush()?;
    close(db)
}

/// `tables`: one table name per line, in byte order.
pub fn tables(file: &Path) -> CliResult<()> {
    let db = open_for_data(file)?;
    let names = {
        let mut conn = db.connect();
        let tx = conn.begin_read()?;
        tx.tables()?
    };
    let mut out = stdout();
    for name in names {
        writeln!(out, "{}", show_name(&name))?;
    }
    out.flush()?;
    close(db)
}

/// `get`: prints the value; a missing key is an error.
pub fn get(file: &Path, table: &str, key: &str, at: Option<u64>, enc: Encoding) -> CliResult<()> {
    let key = enc.decode("key", key)?;
    let db = open_for_data(file)?;
    let value = {
        let mut conn = db.connect();
        let tx = begin_read(&db, &mut conn, at)?;
        tx.get(table, &key)?
    };
    let Some(value) = value else {
        return Err(not_found(table, &key, enc));
    };
    let mut out = stdout();
    writeln!(out, "{}", enc.encode("value", &value)?)?;
    out.flush()?;
    close(db)
}

fn not_found(table: &str, key: &[u8], enc: Encoding) -> CliError {
    let shown = match enc {
        Encoding::Hex => to_hex(key),
        Encoding::Utf8 => format!("{:?}", String::from_utf8_lossy(key)),
    };
    CliError::msg(format!("key {shown} not found in table {table:?}"))
}

/// `put`: writes one key in a durable commit, creating the table (and the file) with
/// `create`.
pub fn put(
    file: &Path,
    table: &str,
    key: &str,
    value: &str,
    create: bool,
    enc: Encoding,
) -> CliResult<()> {
    let key = enc.decode("key", key)?;
    let value = enc.decode("value", value)?;
    // Refused before `--create` makes a file: one it made and removed after a failed
    // put could be another process's database by then.
    check_put(table, &key, &value)?;
    let db = if create {
        // A database this command creates and then fails to write into (its commit's
        // I/O failed) is not left behind. Another process's `put --create` may have
        // created the file first and committed to it: removed only while nothing was
        // ever committed to it, and while this open's lock keeps every other open out.
        let existed = std::fs::symlink_metadata(file).is_ok();
        let db = Database::open(file)?;
        let written = put_into(&db, table, &key, &value, true);
        if written.is_err() && !existed {
            if db.info().is_ok_and(|i| i.visible_seq == 0) {
                let _ = std::fs::remove_file(file);
            }
            drop(db);
            return written;
        }
        written?;
        db
    } else {
        let db = open_existing(file)?;
        put_into(&db, table, &key, &value, false)?;
        db
    };
    close(db)
}

/// The limits a put of `key` and `value` into `table` is refused for, checked as the
/// library checks them.
fn check_put(table: &str, key: &[u8], value: &[u8]) -> CliResult<()> {
    use capsuledb::{CATALOG_NAME, Error, MAX_KEY_LEN, MAX_TABLE_NAME_LEN, MAX_VALUE_LEN};
    if table.is_empty() || table.len() > MAX_TABLE_NAME_LEN || table == CATALOG_NAME {
        return Err(Error::InvalidTableName {
            len: table.len(),
            max: MAX_TABLE_NAME_LEN,
        }
        .into());
    }
    if key.len() > MAX_KEY_LEN {
        return Err(Error::KeyTooLarge {
            len: key.len(),
            max: MAX_KEY_LEN,
        }
        .into());
    }
    if value.len() > MAX_VALUE_LEN {
        return Err(Error::ValueTooLarge {
            len: value.len(),
            max: MAX_VALUE_LEN,
        }
        .into());
    }
    Ok(())
}

/// `put`'s durable commit of one key (creating the table when `create`).
fn put_into(db: &Database, table: &str, key: &[u8], value: &[u8], create: bool) -> CliResult<()> {
    let mut conn = db.connect();
    let mut tx = conn.begin()?;
    if create && !tx.table_exists(table)? {
        tx.create_table(table)?;
    }
    tx.put(table, key, value)?;
    tx.commit_with(Durability::Durable)?;
    Ok(())
}

/// `delete`: removes one key in a durable commit; a missing key is an error.
pub fn delete(file: &Path, table: &str, key: &str, enc: Encoding) -> CliResult<()> {
    let key = enc.decode("key", key)?;
    let db = open_existing(file)?;
    {
        let mut conn = db.connect();
        let mut tx = conn.begin()?;
        if tx.get(table, &key)?.is_none() {
            return Err(not_found(table, &key, enc));
        }
        tx.delete(table, &key)?;
        tx.commit_with(Durability::Durable)?;
    }
    close(db)
}

/// What `scan` reads.
pub struct ScanArgs<'a> {
    pub table: &'a str,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub reverse: bool,
    pub limit: Option<u64>,
    pub at: Option<u64>,
    pub enc: Encoding,
}

/// `scan`: `key<TAB>value` lines for keys in `[from, to)`.
pub fn scan(file: &Path, args: &ScanArgs<'_>) -> CliResult<()> {
    let enc = args.enc;
    let lo = match args.from {
        Some(k) => Bound::Included(enc.decode("--from key", k)?),
        None => Bound::Unbounded,
    };
    let hi = match args.to {
        Some(k) => Bound::Excluded(enc.decode("--to key", k)?),
        None => Bound::Unbounded,
    };
    let db = open_for_data(file)?;
    {
        let mut conn = db.connect();
        let tx = begin_read(&db, &mut conn, args.at)?;
        let range = tx.range(args.table, (lo, hi))?;
        let items: Box<dyn Iterator<Item = _>> = if args.reverse {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        let limit = args.limit.unwrap_or(u64::MAX);
        let mut out = stdout();
        for item in items.take(usize::try_from(limit).unwrap_or(usize::MAX)) {
            let (k, v) = item?;
            writeln!(
                out,
                "{}\t{}",
                enc.encode_field("key", &k)?,
                enc.encode_field("value", &v)?
            )?;
        }
        out.flush()?;
    }
    close(db)
}

/// The line format of `dump`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DumpFormat {
    /// One JSON object per line: `{"key": ..., "value": ...}`; bytes that are not
    /// UTF-8 (or everything, with --hex) go in `key_hex` / `value_hex` instead.
    Jsonl,
    /// One line per entry: the key in hex, a space, the value in hex.
    Hex,
}

/// `dump`: every entry of a table in key order.
pub fn dump(file: &Path, table: &str, format: DumpFormat, enc: Encoding) -> CliResult<()> {
    let db = open_for_data(file)?;
    {
        let mut conn = db.connect();
        let tx = conn.begin_read()?;
        let mut out = stdout();
        for item in tx.iter(table)? {
            let (k, v) = item?;
            match format {
                DumpFormat::Hex => writeln!(out, "{} {}", to_hex(&k), to_hex(&v))?,
                DumpFormat::Jsonl => {
                    let mut obj = serde_json::Map::new();
                    json_field(&mut obj, "key", &k, enc);
                    json_field(&mut obj, "value", &v, enc);
                    writeln!(out, "{}", serde_json::Value::Object(obj))?;
                }
            }
        }
        out.flush()?;
    }
    close(db)
}

/// `name: "text"` when the bytes are UTF-8 and text is wanted, else `name_hex: "..."`.
fn json_field(
    obj: &mut serde_json::Map<String, serde_json::Value>,
    name: &str,
    bytes: &[u8],
    enc: Encoding,
) {
    match (enc, std::str::from_utf8(bytes)) {
        (Encoding::Utf8, Ok(s)) => obj.insert(name.into(), s.into()),
        _ => obj.insert(format!("{name}_hex"), to_hex(bytes).into()),
    };
}
