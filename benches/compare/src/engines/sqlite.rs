//! SQLite through rusqlite (bundled, built with `HAVE_FDATASYNC`: the repository's `.cargo/config.toml`):
//! WAL journal, `synchronous=FULL`, one connection per thread; write transactions queue
//! on a lock of the process, then start with `BEGIN IMMEDIATE` (with a busy timeout, for
//! the checkpoint a reader may hold).

use crate::engine::{Attempt, Body, Engine, Key, Res, Tx, err};
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a connection waits for the write lock before `BEGIN IMMEDIATE` gives up
/// (then the attempt is retried and counted as an abort).
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// Page cache per connection, in KiB (SQLite's negative `cache_size`): room for the
/// whole bulk-loaded table, like the other engines' caches.
const CACHE_KIB: i64 = 512 * 1024;

const GET: &str = "SELECT v FROM kv WHERE k = ?1";
const PUT: &str = "INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)";
const SCAN: &str = "SELECT k, v FROM kv WHERE k >= ?1 ORDER BY k LIMIT ?2";
const SCAN_REV: &str = "SELECT k, v FROM kv WHERE k <= ?1 ORDER BY k DESC LIMIT ?2";

pub struct Sqlite {
    path: PathBuf,
    /// Writers take turns here: SQLite's busy handler sleeps (1, 2, 5 … 100 ms) while
    /// another connection writes, leaving the lock idle, where an application with many
    /// writing threads queues them on a lock of its own.
    writers: std::sync::Mutex<()>,
}

struct SqlTx<'c> {
    conn: &'c Connection,
    read_only: bool,
}

impl Tx for SqlTx<'_> {
    fn get(&mut self, key: &[u8]) -> Res<Option<Vec<u8>>> {
        let mut stmt = self.conn.prepare_cached(GET)?;
        Ok(stmt.query_row(params![key], |r| r.get(0)).optional()?)
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> Res<()> {
        if self.read_only {
            return Err(err("write in a read-only body"));
        }
        self.conn
            .prepare_cached(PUT)?
            .execute(params![key, value])?;
        Ok(())
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

impl Sqlite {
    fn connect(&self) -> Res<Connection> {
        let conn = Connection::open(&self.path)?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(err(format!("journal_mode is {mode}, not wal")));
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(conn)
    }
}

impl Engine for Sqlite {
    type Session = Connection;
    const NAME: &'static str = "SQLite";
    const DURABILITY: &'static str =
        "`journal_mode=WAL`, `synchronous=FULL` (WAL fdatasync per commit, default auto-checkpoint)";
    const SERIALIZATION: &'static str = "one connection per thread; writers queue on a process lock, then `BEGIN IMMEDIATE` (busy_timeout 30 s); read-only bodies use a deferred `BEGIN`";

    fn open(dir: &Path) -> Res<Self> {
        let engine = Sqlite {
            path: dir.join("sqlite.db"),
            writers: std::sync::Mutex::new(()),
        };
        let conn = engine.connect()?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID",
        )?;
        Ok(engine)
    }

    fn session(&self) -> Res<Connection> {
        self.connect()
    }

    fn transact(
        &self,
        conn: &mut Connection,
        read_only: bool,
        body: &mut Body<'_>,
    ) -> Res<Attempt> {
        let begin = if read_only {
            "BEGIN"
        } else {
            "BEGIN IMMEDIATE"
        };
        // Held to the commit's end (a poisoned lock only means another writer panicked).
        let _turn = (!read_only).then(|| self.writers.lock().unwrap_or_else(|p| p.into_inner()));
        match conn.execute_batch(begin) {
            Ok(()) => {}
            Err(e) if is_busy(&e) => return Ok(Attempt::Retry { wait_for: None }),
            Err(e) => return Err(e.into()),
        }
        let ran = body(&mut SqlTx { conn, read_only });
        let done = ran.and_then(|()| Ok(conn.execute_batch("COMMIT")?));
        match done {
            Ok(()) => Ok(Attempt::Committed),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                match e.downcast_ref::<rusqlite::Error>() {
                    Some(se) if is_busy(se) => Ok(Attempt::Retry { wait_for: None }),
                    _ => Err(e),
                }
            }
        }
    }

    fn read_batch(&self, conn: &mut Connection, keys: &[Key]) -> Res<usize> {
        conn.execute_batch("BEGIN")?;
        let mut found = 0;
        {
            let mut stmt = conn.prepare_cached(GET)?;
            for key in keys {
                let mut rows = stmt.query(params![key.as_slice()])?;
                if let Some(row) = rows.next()? {
                    std::hint::black_box(row.get_ref(0)?.as_blob()?);
                    found += 1;
                }
            }
        }
        conn.execute_batch("COMMIT")?;
        Ok(found)
    }

    fn scan(&self, conn: &mut Connection, start: &[u8], n: usize) -> Res<usize> {
        let mut stmt = conn.prepare_cached(SCAN)?;
        let mut rows = stmt.query(params![start, n as i64])?;
        let mut read = 0;
        while let Some(row) = rows.next()? {
            std::hint::black_box((row.get_ref(0)?.as_blob()?, row.get_ref(1)?.as_blob()?));
            read += 1;
        }
        Ok(read)
    }

    fn scan_rev(&self, conn: &mut Connection, start: &[u8], n: usize) -> Res<usize> {
        let mut stmt = conn.prepare_cached(SCAN_REV)?;
        let mut rows = stmt.query(params![start, n as i64])?;
        let mut read = 0;
        while let Some(row) = rows.next()? {
            std::hint::black_box((row.get_ref(0)?.as_blob()?, row.get_ref(1)?.as_blob()?));
            read += 1;
        }
        Ok(read)
    }

    fn close(self) -> Res<()> {
        Ok(())
    }
}
