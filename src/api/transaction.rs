//! `Transaction`: reads, writes and commit.

use super::connection::{Connection, Names};
use super::database::EngineRef;
use super::range::Range;
use crate::btree::OnNodePage;
use crate::commit::{ReadSet, TableRange};
use crate::engine::{Committed, Engine, ReadPin, ValueRef};
use crate::error::{Error, Result};
use crate::format::{check_table_name, decode_table_id};
use crate::mvcc::{HistoryPin, SnapshotGuard, bounds_nonempty};
use crate::types::{
    CATALOG_NAME, CATALOG_TABLE, CommitInfo, Durability, Isolation, MAX_KEY_LEN,
    MAX_TRANSACTION_BYTES, MAX_VALUE_LEN, TABLE_WRITES_BYTES_MAX, TableId, TableWrites, WriteSet,
};
use std::cell::RefCell;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

/// One page of a resumable scan ([`Transaction::page`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Page {
    /// Keys and values, in the scan's order.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
    /// The last key of this page when more may follow: pass it as `after` to get the
    /// next page. `None` when the range is done.
    pub next: Option<Vec<u8>>,
}

/// A transaction. Reads see the transaction's own writes, then the snapshot taken at
/// `begin`. Dropping it without [`Transaction::commit`] rolls it back.
///
/// ```
/// # fn main() -> capsuledb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let db = capsuledb::Database::open(dir.path().join("app.db"))?;
/// let mut conn = db.connect();
/// let mut tx = conn.begin()?;
/// tx.create_table("t")?;
/// tx.put("t", b"a", b"1")?;
/// tx.put("t", b"b", b"2")?;
/// tx.delete("t", b"a")?;
/// let keys: Vec<Vec<u8>> = tx.range("t", b"a".as_slice()..)?.map(|r| r.map(|(k, _)| k)).collect::<Result<_, _>>()?;
/// assert_eq!(keys, vec![b"b".to_vec()]);
/// tx.commit()?;
/// # Ok(()) }
/// ```
pub struct Transaction<'c> {
    engine: EngineRef<'c>,
    _conn: std::marker::PhantomData<&'c mut Connection>,
    snapshot: Snap,
    isolation: Isolation,
    read_only: bool,
    pub(crate) writes: WriteSet,
    write_bytes: usize,
    dropped: Vec<TableId>,
    /// The names of the tables this transaction dropped or cleared, by their ids before
    /// (a conflict on one names it).
    dropped_names: Vec<(TableId, String)>,
    /// Committed table names resolved at the snapshot.
    names: RefCell<Names>,
    reads: RefCell<ReadSet>,
    /// The checkpointed tree and mapping this transaction reads, taken at `begin`.
    pin: RefCell<Arc<ReadPin>>,
}

/// What keeps a transaction's snapshot readable.
enum Snap {
    /// A live snapshot: the GC horizon and checkpoints stay at or below it.
    Live(SnapshotGuard),
    /// A time-travel snapshot inside the history window.
    At(HistoryPin),
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("snapshot", &self.snapshot.seq())
            .field("isolation", &self.isolation)
            .field("read_only", &self.read_only)
            .field("write_bytes", &self.write_bytes)
            .finish_non_exhaustive()
    }
}

impl Snap {
    fn seq(&self) -> u64 {
        match self {
            Snap::Live(g) => g.seq(),
            Snap::At(p) => p.seq(),
        }
    }
}

fn check_key(key: &[u8]) -> Result<()> {
    if key.len() > MAX_KEY_LEN {
        return Err(Error::KeyTooLarge {
            len: key.len(),
            max: MAX_KEY_LEN,
        });
    }
    Ok(())
}

impl<'c> Transaction<'c> {
    pub(crate) fn begin(
        conn: &'c mut Connection,
        isolation: Isolation,
        read_only: bool,
    ) -> Result<Self> {
        let conn: &'c Connection = conn;
        let engine = conn.db.latest_ref()?;
        engine.check_open()?;
        if !read_only && engine.read_only {
            return Err(Error::ReadOnlyDatabase);
        }
        // A read-only snapshot never validates: it holds back no pruning of the commit
        // index, only the version store's collection.
        let snapshot = Snap::Live(if read_only {
            engine.registry.begin_read_only()
        } else {
            engine.registry.begin()
        });
        let pin = RefCell::new(engine.shared_pin()?);
        // Read after the snapshot: every catalog change at or below it is counted.
        let catalog_at = engine.committer.catalog_changed_at();
        let names = Names::begin(&conn.names, &engine, catalog_at, snapshot.seq());
        Ok(Transaction {
            engine,
            _conn: std::marker::PhantomData,
            snapshot,
            isolation,
            read_only,
            writes: WriteSet::new(),
            write_bytes: 0,
            dropped: Vec::new(),
            dropped_names: Vec::new(),
            names: RefCell::new(names),
            reads: RefCell::new(ReadSet::default()),
            pin,
        })
    }

    /// A read-only transaction at the past state `seq` (`Database::begin_read_at`).
    pub(crate) fn begin_at(engine: Arc<Engine>, seq: u64) -> Result<Self> {
        engine.check_open()?;
        // Registered as a snapshot while it pins: a tree commit may raise the floor up to
        // its own sequence before that is visible (every sequence was refused meanwhile);
        // the registration waits it out, as any new snapshot does, and keeps another
        // from starting until the pin is taken.
        let registered = engine.registry.begin();
        let pin = engine
            .committer
            .history()
            .pin(seq, engine.registry.visible())?;
        drop(registered);
        let read_pin = RefCell::new(engine.pin()?);
        Ok(Transaction {
            engine: EngineRef::Owned(engine),
            _conn: std::marker::PhantomData,
            snapshot: Snap::At(pin),
            isolation: Isolation::Snapshot,
            read_only: true,
            writes: WriteSet::new(),
            write_bytes: 0,
            dropped: Vec::new(),
            dropped_names: Vec::new(),
            names: RefCell::default(),
            reads: RefCell::new(ReadSet::default()),
            pin: read_pin,
        })
    }

    /// Whether reads go through the tree's history entries (a time-travel snapshot).
    pub(crate) fn time_travel(&self) -> bool {
        matches!(self.snapshot, Snap::At(_))
    }

    /// The snapshot this transaction reads: commits at or below this sequence.
    pub fn snapshot_seq(&self) -> u64 {
        self.snapshot.seq()
    }

    /// The isolation level (`Snapshot` for read-only transactions).
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// Whether this transaction was begun with `begin_read` (or
    /// [`crate::Database::begin_read_at`]): it reads and never writes.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Tests: the ranges recorded as read.
    #[cfg(test)]
    pub(crate) fn read_ranges(&self) -> Vec<crate::commit::TableRange> {
        self.reads.borrow().ranges.clone()
    }

    fn tracks_reads(&self) -> bool {
        !self.read_only && self.isolation == Isolation::Serializable
    }

    fn record_point(&self, table: TableId, key: &[u8]) {
        if self.tracks_reads() {
            self.reads.borrow_mut().points.insert((table, key.to_vec()));
        }
    }

    /// Records a scanned range. A range that continues the last one recorded (a scan's
    /// next batch: it starts just past where the last ended, or, reversed, ends just
    /// before where it started) extends it, so a long scan is one range to check, not
    /// one per batch, in every later writer's validation.
    pub(crate) fn record_range(&self, table: TableId, lo: Bound<&[u8]>, hi: Bound<&[u8]>) {
        if !self.tracks_reads() {
            return;
        }
        let mut reads = self.reads.borrow_mut();
        // Only ordered ranges join (an inverted one, recorded for a scan of nothing,
        // adjoining at its wrong end would cut the other short).
        if let Some(last) = reads.ranges.last_mut()
            && last.table == table
            && bounds_nonempty(lo, hi)
            && bounds_nonempty(
                super::range::bound_ref(&last.lo),
                super::range::bound_ref(&last.hi),
            )
        {
            if super::range::adjoins(super::range::bound_ref(&last.hi), lo) {
                last.hi = hi.map(<[u8]>::to_vec);
                return;
            }
            if super::range::adjoins(hi, super::range::bound_ref(&last.lo)) {
                last.lo = lo.map(<[u8]>::to_vec);
                return;
            }
        }
        reads.ranges.push(TableRange {
            table,
            lo: lo.map(<[u8]>::to_vec),
            hi: hi.map(<[u8]>::to_vec),
        });
    }

    /// The id of table `name` as this transaction sees it.
    pub(crate) fn table_id(&self, name: &str) -> Result<TableId> {
        check_table_name(name)?;
        if let Some(own) = self
            .writes
            .get(&CATALOG_TABLE)
            .and_then(|c| c.get(name.as_bytes()))
        {
            return match own {
                Some(v) => decode_table_id(v),
                None => Err(Error::TableNotFound { table: name.into() }),
            };
        }
        self.committed_table_id(name)
    }

    /// The id of table `name` in the committed state this transaction reads, whatever
    /// it wrote to the catalog itself.
    pub(crate) fn committed_table_id(&self, name: &str) -> Result<TableId> {
        check_table_name(name)?;
        {
            let mut names = self.names.borrow_mut();
            let cached = match &names.last {
                Some((last, id)) if last == name => Some(*id),
                _ => {
                    let id = names.map.get(name).copied();
                    if let Some(id) = id {
                        names.last = Some((name.to_string(), id));
                    }
                    id
                }
            };
            if let Some(id) = cached {
                // A name from the connection's cache was read from the catalog by an
                // earlier transaction: under Serializable this one reads it too.
                if self.tracks_reads() && names.recorded.insert(id) {
                    self.record_point(CATALOG_TABLE, name.as_bytes());
                }
                return Ok(id);
            }
        }
        self.record_point(CATALOG_TABLE, name.as_bytes());
        let page_size = self.engine.page_size;
        let found = self.lookup(CATALOG_TABLE, name.as_bytes(), |pin, c| match c {
            Committed::Shared(v) => decode_table_id(&v),
            // A damaged entry read in place names its node's page (a multi-page leaf's
            // first), as every other read of tree bytes does.
            Committed::Mapped((offset, len)) => {
                let bytes = pin.bytes(offset, len);
                decode_table_id(bytes).map_err(|e| e.on_node_page_of(&pin.view, bytes, page_size))
            }
        })?;
        match found {
            Some(id) => {
                let id = id?;
                let mut names = self.names.borrow_mut();
                // Not cached for a name this transaction wrote to the catalog (a salvage
                // asks its committed id): `drop_table` takes a name missing from the map
                // for one this transaction created.
                let own = self.writes.get(&CATALOG_TABLE);
                if own.and_then(|c| c.get(name.as_bytes())).is_none() {
                    names.map.insert(name.to_string(), id);
                }
                names.recorded.insert(id);
                Ok(id)
            }
            None => Err(Error::TableNotFound { table: name.into() }),
        }
    }

    /// The committed value at the snapshot, below this transaction's own writes, handed
    /// to `f` with the read pin it lies in.
    fn lookup<T>(
        &self,
        table: TableId,
        key: &[u8],
        f: impl FnOnce(&Arc<ReadPin>, Committed) -> T,
    ) -> Result<Option<T>> {
        let mut pin = self.pin.borrow_mut();
        let found = self.engine.committed_get(
            &mut pin,
            table,
            key,
            self.snapshot.seq(),
            self.time_travel(),
        )?;
        Ok(found.map(|c| f(&pin, c)))
    }

    /// [`Transaction::lookup`] on the value's bytes, in place.
    fn committed<T>(
        &self,
        table: TableId,
        key: &[u8],
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>> {
        self.lookup(table, key, |pin, c| match c {
            Committed::Shared(v) => f(&v),
            Committed::Mapped((offset, len)) => f(pin.bytes(offset, len)),
        })
    }

    /// [`Transaction::lookup`] as a [`ValueRef`].
    fn committed_ref(&self, table: TableId, key: &[u8]) -> Result<Option<ValueRef>> {
        self.lookup(table, key, |pin, c| match c {
            Committed::Shared(v) => ValueRef::shared(v),
            Committed::Mapped((offset, len)) => ValueRef::pinned(pin, offset, len),
        })
    }

    /// The read pin, for scans.
    pub(crate) fn pin(&self) -> std::cell::RefMut<'_, Arc<ReadPin>> {
        self.pin.borrow_mut()
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    fn writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        Ok(())
    }

    fn add_write(&mut self, table: TableId, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        let len = key.len() + value.map_or(0, <[u8]>::len);
        fits(self.write_bytes + len)?;
        self.insert_write(table, key, value)
    }

    /// [`Transaction::add_write`] without the check of the transaction's total (its
    /// caller made it).
    /// The transaction's total follows what its buffers hold ([`TableWrites::payload`]),
    /// not every put: an overwritten put stops counting once a merge drops it.
    fn insert_write(&mut self, table: TableId, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        let data = self.writes.entry(table).or_default();
        let before = data.payload();
        data.insert(key, value)
            .map_err(|_| Error::TransactionTooLarge {
                what: format!("more than {TABLE_WRITES_BYTES_MAX} bytes of puts to one table"),
            })?;
        self.write_bytes = self.write_bytes.saturating_sub(before) + data.payload();
        Ok(())
    }

    /// Bytes of keys and values this transaction holds for table `id`.
    fn pending_bytes(&self, id: TableId) -> usize {
        self.writes.get(&id).map_or(0, TableWrites::payload)
    }

    /// Creates an empty table. Fails with [`Error::TableExists`] if it exists.
    pub fn create_table(&mut self, name: &str) -> Result<()> {
        self.writable()?;
        match self.table_id(name) {
            Ok(_) => return Err(Error::TableExists { table: name.into() }),
            Err(Error::TableNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let id = self.engine.allocate_table_id()?;
        self.add_write(CATALOG_TABLE, name.as_bytes(), Some(&id.to_le_bytes()[..]))
    }

    /// Drops a table and all its data. Fails with [`Error::TableNotFound`] if missing.
    pub fn drop_table(&mut self, name: &str) -> Result<()> {
        self.writable()?;
        let id = self.table_id(name)?;
        let created_here = self
            .writes
            .get(&CATALOG_TABLE)
            .and_then(|c| c.get(name.as_bytes()))
            .is_some_and(|v| v.is_some())
            && !self.names.borrow().map.contains_key(name);
        // What can fail comes first: a drop that failed changed nothing (a transaction
        // committed after it would otherwise keep the table's row and drop its data,
        // which later commits' writes would then vanish into). The total is checked as
        // it will be, without the table's own writes.
        let freed = self.pending_bytes(id);
        fits(self.write_bytes.saturating_sub(freed) + name.len())?;
        self.insert_write(CATALOG_TABLE, name.as_bytes(), None)?;
        if self.writes.remove(&id).is_some() {
            self.write_bytes = self.write_bytes.saturating_sub(freed);
        }
        if !created_here {
            self.dropped.push(id);
        }
        self.dropped_names.push((id, name.to_string()));
        let mut names = self.names.borrow_mut();
        names.map.remove(name);
        names.last = None;
        Ok(())
    }

    /// Removes every key of table `name` in one commit, keeping the table: the table
    /// gets a new identity and the old data goes at a later checkpoint, so this costs
    /// the same however large the table is. Fails with [`Error::TableNotFound`] if
    /// missing.
    pub fn clear_table(&mut self, name: &str) -> Result<()> {
        // Both catalog writes must fit (without the table's own writes, which the drop
        // removes), or neither is made: a clear that failed halfway would leave the
        // table dropped.
        self.writable()?;
        let id = self.table_id(name)?;
        let catalog_bytes = 2 * name.len() + std::mem::size_of::<TableId>();
        fits(self.write_bytes.saturating_sub(self.pending_bytes(id)) + catalog_bytes)?;
        // The new id too (none may be left): ids are never reused, so one taken by a
        // clear that then fails is only skipped.
        let new_id = self.engine.allocate_table_id()?;
        self.drop_table(name)?;
        self.add_write(
            CATALOG_TABLE,
            name.as_bytes(),
            Some(&new_id.to_le_bytes()[..]),
        )
    }

    /// Whether table `name` exists.
    pub fn table_exists(&self, name: &str) -> Result<bool> {
        match self.table_id(name) {
            Ok(_) => Ok(true),
            Err(Error::TableNotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The names of all tables, in byte order.
    pub fn tables(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for item in Range::new(self, CATALOG_TABLE, Bound::Unbounded, Bound::Unbounded) {
            let (k, _) = item?;
            names.push(String::from_utf8_lossy(&k).into_owned());
        }
        Ok(names)
    }

    /// Reads `key`, copying the value out.
    pub fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        check_key(key)?;
        let id = self.table_id(table)?;
        if let Some(own) = self.writes.get(&id).and_then(|t| t.get(key)) {
            return Ok(own.as_ref().map(|v| v.to_vec()));
        }
        self.record_point(id, key);
        self.committed(id, key, <[u8]>::to_vec)
    }

    /// Reads `key` without copying a committed value: the value borrows the engine's
    /// bytes. A value this transaction wrote itself is copied once into the returned
    /// [`ValueRef`] (the transaction may overwrite it while the `ValueRef` lives).
    pub fn get_ref(&self, table: &str, key: &[u8]) -> Result<Option<ValueRef>> {
        check_key(key)?;
        let id = self.table_id(table)?;
        if let Some(own) = self.writes.get(&id).and_then(|t| t.get(key)) {
            return Ok(own.map(|v| ValueRef::shared(Arc::from(v))));
        }
        self.record_point(id, key);
        self.committed_ref(id, key)
    }

    /// Writes `key = value`.
    pub fn put(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.writable()?;
        check_key(key)?;
        if value.len() > MAX_VALUE_LEN {
            return Err(Error::ValueTooLarge {
                len: value.len(),
                max: MAX_VALUE_LEN,
            });
        }
        let id = self.table_id(table)?;
        self.add_write(id, key, Some(value))
    }

    /// Deletes `key` (a no-op if it does not exist).
    pub fn delete(&mut self, table: &str, key: &[u8]) -> Result<()> {
        self.writable()?;
        check_key(key)?;
        let id = self.table_id(table)?;
        self.add_write(id, key, None)
    }

    /// Iterates the keys of `table` inside `range` in ascending order; call `.rev()` on
    /// the iterator (or use [`Transaction::range_rev`]) for descending order. Entries come
    /// in bounded batches, so a scan never holds engine locks while you use it.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &self,
        table: &str,
        range: R,
    ) -> Result<Range<'_, 'c>> {
        let id = self.table_id(table)?;
        let lo = range.start_bound().map(|k| k.as_ref().to_vec());
        let hi = range.end_bound().map(|k| k.as_ref().to_vec());
        Ok(Range::new(self, id, lo, hi))
    }

    /// Iterates the keys of `table` inside `range` in descending order.
    pub fn range_rev<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &self,
        table: &str,
        range: R,
    ) -> Result<std::iter::Rev<Range<'_, 'c>>> {
        Ok(self.range(table, range)?.rev())
    }

    /// Iterates the whole table in ascending order.
    pub fn iter(&self, table: &str) -> Result<Range<'_, 'c>> {
        let id = self.table_id(table)?;
        Ok(Range::new(self, id, Bound::Unbounded, Bound::Unbounded))
    }

    /// Number of keys in `table` (a full scan).
    pub fn len(&self, table: &str) -> Result<u64> {
        let mut n = 0;
        for item in self.iter(table)? {
            item?;
            n += 1;
        }
        Ok(n)
    }

    /// Whether `table` has no keys.
    pub fn is_empty(&self, table: &str) -> Result<bool> {
        Ok(self.iter(table)?.next().transpose()?.is_none())
    }

    /// One page of a scan that can be resumed in a later transaction: at most `limit`
    /// entries (a `limit` of 0 counts as 1, so that every page moves on) of `table`
    /// inside `range` in ascending order (descending with
    /// `reverse`), starting after the key `after` (exclusive; `None` starts at the
    /// range's end). [`Page::next`] is the continuation for the following page.
    ///
    /// ```
    /// # fn main() -> capsuledb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = capsuledb::Database::open(dir.path().join("app.db"))?;
    /// # let mut conn = db.connect();
    /// # let mut tx = conn.begin()?;
    /// # tx.create_table("t")?;
    /// # for i in 0..10u8 { tx.put("t", &[i], b"v")?; }
    /// # tx.commit()?;
    /// let mut after: Option<Vec<u8>> = None;
    /// let mut seen = 0;
    /// loop {
    ///     let tx = conn.begin_read()?; // a new transaction for each page
    ///     let page = tx.page::<&[u8], _>("t", .., after.as_deref(), 4, false)?;
    ///     seen += page.entries.len();
    ///     match page.next {
    ///         Some(k) => after = Some(k),
    ///         None => break,
    ///     }
    /// }
    /// assert_eq!(seen, 10);
    /// # Ok(()) }
    /// ```
    pub fn page<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &self,
        table: &str,
        range: R,
        after: Option<&[u8]>,
        limit: usize,
        reverse: bool,
    ) -> Result<Page> {
        let id = self.table_id(table)?;
        let mut lo = range.start_bound().map(|k| k.as_ref().to_vec());
        let mut hi = range.end_bound().map(|k| k.as_ref().to_vec());
        if let Some(a) = after {
            let cont = Bound::Excluded(a.to_vec());
            if reverse {
                if crate::util::bound_tighter_hi(&cont, &hi) {
                    hi = cont;
                }
            } else if crate::util::bound_tighter_lo(&cont, &lo) {
                lo = cont;
            }
        }
        let limit = limit.max(1);
        let mut it = Range::new(self, id, lo, hi).with_batch_size(limit.saturating_add(1));
        let mut entries = Vec::with_capacity(limit.min(4096));
        let mut more = false;
        loop {
            let item = if reverse { it.next_back() } else { it.next() };
            let Some(item) = item else { break };
            if entries.len() == limit {
                more = true;
                break;
            }
            let (k, v) = item?;
            entries.push((k, v.to_vec()));
        }
        let next = if more {
            entries.last().map(|(k, _)| k.clone())
        } else {
            None
        };
        Ok(Page { entries, next })
    }

    /// The retained versions of `key` in `table` at or below this transaction's
    /// snapshot, newest first, as `(seq, value)` with `None` for a deletion. Which
    /// versions are retained is set by [`crate::Options::history_retention`]. The oldest
    /// pair may be the value the key held when the window starts, reported at the
    /// window's start seq when the commit that wrote it has left the window.
    pub fn versions(&self, table: &str, key: &[u8]) -> Result<Vec<(u64, Option<Vec<u8>>)>> {
        check_key(key)?;
        let id = self.table_id(table)?;
        // The newest of them is the key's value at the snapshot: under Serializable a
        // read, as `get` is.
        self.record_point(id, key);
        let seq = self.snapshot.seq();
        self.engine.committed_versions(id, key, seq)
    }

    /// Commits with [`Durability::Durable`].
    pub fn commit(self) -> Result<CommitInfo> {
        self.commit_with(Durability::Durable)
    }

    /// Commits, returning once the commit has reached `durability`.
    ///
    /// A transaction that wrote nothing (a read) waits until the state it read has
    /// reached `durability`. On a read-only database (a live reader) it cannot tell: the
    /// state it read is in the file, written by the writer process but perhaps not yet
    /// synced, so the [`CommitInfo`] says `Written` at most, whatever was asked.
    ///
    /// # Errors
    ///
    /// - [`Error::Conflict`]: a concurrent commit came first; nothing is written and the
    ///   transaction can be run again.
    /// - [`Error::Io`] or [`Error::Poisoned`]: the outcome is unknown. The commit's own
    ///   write or sync may have failed after its marker reached the file, and a reopen
    ///   then finds it; only a read after reopening tells.
    /// - [`Error::Closed`], [`Error::ReadOnlyDatabase`], [`Error::TransactionTooLarge`]:
    ///   nothing is written.
    pub fn commit_with(self, durability: Durability) -> Result<CommitInfo> {
        let snapshot = self.snapshot.seq();
        if self.engine.read_only && !self.writes.is_empty() {
            return Err(Error::ReadOnlyDatabase);
        }
        if self.read_only || (self.writes.is_empty() && !self.tracks_reads()) {
            return Ok(CommitInfo {
                seq: snapshot,
                durability: self.read_state_reaches(snapshot, durability)?,
            });
        }
        let reads = std::mem::take(&mut *self.reads.borrow_mut());
        let seq = self
            .engine
            .commit(
                snapshot,
                self.isolation,
                &self.writes,
                reads,
                &self.dropped,
                durability,
                &|| self.touched_tables(),
                self.write_bytes,
            )
            .map_err(|e| match e {
                crate::commit::CommitError::Refused(r) => self.name_conflict(r),
                crate::commit::CommitError::Failed(e) => e,
            })?;
        if seq.is_none() {
            // Nothing written (a Serializable transaction that only read).
            self.read_state_reaches(snapshot, durability)?;
        }
        // The snapshot goes first: it holds the horizon below this commit.
        let (engine, write_bytes) = (Arc::clone(&*self.engine), self.write_bytes);
        drop(self);
        engine.after_commit(write_bytes, seq.is_some());
        Ok(CommitInfo {
            seq: seq.unwrap_or(snapshot),
            durability,
        })
    }

    /// For a commit that writes nothing: the state it read reaches `durability` first,
    /// so a caller that acts on what it read, told it is durable, never acts on a state
    /// a crash then loses (an `Applied` commit not yet flushed). Nothing to wait for when
    /// it already has. A read-only database cannot tell, and does not wait: what it
    /// reads is in the file (written), not known synced. Returns the level reached.
    fn read_state_reaches(&self, snapshot: u64, durability: Durability) -> Result<Durability> {
        if self.engine.read_only {
            return Ok(durability.min(Durability::Written));
        }
        if durability > Durability::Applied {
            self.engine.committer.wait_for(snapshot, durability)?;
        }
        Ok(durability)
    }

    /// The names of the tables this transaction wrote, created, cleared or dropped (asked
    /// for by the feed only once its commit has a sequence and someone subscribed).
    fn touched_tables(&self) -> Arc<[String]> {
        let mut names = std::collections::BTreeSet::new();
        if let Some(catalog) = self.writes.get(&CATALOG_TABLE) {
            names.extend(
                catalog
                    .keys()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
            );
        }
        for (&id, keys) in &self.writes {
            if id != CATALOG_TABLE && !keys.is_empty() {
                names.insert(self.name_of(id).unwrap_or_else(|| format!("(table {id})")));
            }
        }
        names.into_iter().collect()
    }

    /// Rolls back (the same as dropping the transaction).
    pub fn rollback(self) {}

    /// Turns a conflict on a table id into one naming the table.
    fn name_conflict(&self, e: crate::commit::Refusal) -> Error {
        let table = if e.table == CATALOG_TABLE {
            CATALOG_NAME.to_string()
        } else {
            self.name_of(e.table)
                .unwrap_or_else(|| format!("(table {})", e.table))
        };
        Error::Conflict {
            table,
            key: e.key,
            committed_seq: e.committed_seq,
        }
    }

    fn name_of(&self, id: TableId) -> Option<String> {
        if let Some((name, _)) = self.names.borrow().map.iter().find(|(_, v)| **v == id) {
            return Some(name.clone());
        }
        let written = self.writes.get(&CATALOG_TABLE).and_then(|catalog| {
            catalog.iter().find_map(|(name, v)| {
                (decode_table_id(v?).ok()? == id)
                    .then(|| String::from_utf8_lossy(name).into_owned())
            })
        });
        written.or_else(|| {
            let dropped = self.dropped_names.iter().find(|(d, _)| *d == id);
            dropped.map(|(_, name)| name.clone())
        })
    }
}

/// Refuses a transaction whose keys and values would reach `total` bytes, over the limit.
fn fits(total: usize) -> Result<()> {
    if total > MAX_TRANSACTION_BYTES {
        return Err(Error::TransactionTooLarge {
            what: format!("more than {MAX_TRANSACTION_BYTES} bytes of keys and values"),
        });
    }
    Ok(())
}
