//! Reading what can still be read out of a damaged file: `salvage_table`,
//! `salvage_tables`, `salvage_unnamed_tables`, `salvage_table_id`.

use super::{Database, Transaction};
use crate::engine::SalvageReport;
use crate::error::Result;
use crate::format::decode_table_id;
use crate::types::{CATALOG_TABLE, TableId};
use std::ops::Bound;
use std::sync::Arc;

impl Database {
    /// Copies what can still be read of `table` out of a damaged file: hands `entry`
    /// every key and value of the table's newest state, in key order, passing over the
    /// tree pages and values that fail their checks instead of stopping at the first, and
    /// reports the keys each one hides ([`crate::SalvageLoss`]: the page, what failed, the key
    /// range). Versions committed after the last checkpoint come from the log and are
    /// handed over even where the tree below them is damaged. Every page is verified
    /// again, whatever earlier reads found; nothing unverified is handed over.
    ///
    /// For recovery tools (the CLI's `salvage`): open the damaged file read-only
    /// ([`crate::Options::read_only`]), salvage each table, and write what comes out into
    /// a new database. An error from `entry` stops the walk and is returned; the
    /// store's versions of the table are gathered in memory first.
    ///
    /// ```
    /// # fn main() -> capsuledb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = capsuledb::Database::open(dir.path().join("app.db"))?;
    /// let mut conn = db.connect();
    /// let mut tx = conn.begin()?;
    /// tx.create_table("t")?;
    /// tx.put("t", b"k", b"v")?;
    /// tx.commit()?;
    /// let mut copied = Vec::new();
    /// let report = db.salvage_table("t", |k, v| {
    ///     copied.push((k.to_vec(), v.to_vec()));
    ///     Ok(())
    /// })?;
    /// assert!(report.losses.is_empty());
    /// assert_eq!(copied, vec![(b"k".to_vec(), b"v".to_vec())]);
    /// # Ok(()) }
    /// ```
    pub fn salvage_table(
        &self,
        table: &str,
        entry: impl FnMut(&[u8], &[u8]) -> Result<()>,
    ) -> Result<SalvageReport> {
        let mut conn = self.connect();
        let tx = conn.begin_read()?;
        tx.salvage_table(table, entry)
    }
}

impl Transaction<'_> {
    /// [`Database::salvage_table`] at this transaction's snapshot: salvaging every table
    /// through one read transaction copies one committed state, even of a file another
    /// process is still writing (a salvage per table through the database would read
    /// each at the newest commit of its moment). A time-travel transaction
    /// ([`Database::begin_read_at`]) below the last checkpoint gets
    /// [`Error::HistoryUnavailable`](crate::Error::HistoryUnavailable): the salvage walks
    /// the tree's current entries, not its history.
    ///
    /// It hands over the committed state only, never this transaction's own writes.
    /// At [`Isolation::Serializable`](crate::Isolation::Serializable) it counts as a
    /// read of the whole table, as a scan of it would.
    ///
    /// A name the catalog cannot give (its page damaged) is looked for as
    /// [`Transaction::salvage_tables`] reads the catalog.
    pub fn salvage_table(
        &self,
        table: &str,
        mut entry: impl FnMut(&[u8], &[u8]) -> Result<()>,
    ) -> Result<SalvageReport> {
        let id = match self.committed_table_id(table) {
            Ok(id) => id,
            Err(e) if e.is_corruption() => {
                // The catalog's entry of this name alone: a salvage of every table
                // through a damaged catalog reads each name once, not the catalog each
                // time.
                let mut found = None;
                let mut past = table.as_bytes().to_vec();
                past.push(0);
                self.salvage_catalog((table.as_bytes(), Some(&past)), |name, id| {
                    if name == table {
                        found = Some(id);
                    }
                })?;
                found.ok_or(e)?
            }
            Err(e) => return Err(e),
        };
        self.salvage_id(id, (&[], None), &|_| Ok(()), &mut entry)
    }

    /// Salvages the keys in `[from, until)` (`None`: to the end) of table `id` at this
    /// transaction's snapshot, recorded as a read of that range.
    fn salvage_id(
        &self,
        id: TableId,
        (from, until): (&[u8], Option<&[u8]>),
        valid: &dyn Fn(&[u8]) -> Result<()>,
        entry: &mut crate::engine::EntrySink<'_>,
    ) -> Result<SalvageReport> {
        self.record_range(
            id,
            Bound::Included(from),
            until.map_or(Bound::Unbounded, Bound::Excluded),
        );
        let snapshot = self.snapshot_seq();
        // A pin of its own, not the transaction's borrowed for the walk: `entry` may
        // read through the transaction.
        let mut pin = Arc::clone(&self.pin());
        self.engine()
            .salvage_table(&mut pin, id, (from, until), snapshot, valid, entry)
    }

    /// The names of the committed state's tables (not this transaction's own
    /// creations), in byte order, read as a salvage reads: damaged pages
    /// of the catalog are passed over, each named in the report's losses (the names in
    /// its key range are lost; [`Transaction::salvage_unnamed_tables`] finds their
    /// tables). For a file whose catalog [`Transaction::tables`] cannot read;
    /// [`Transaction::salvage_table`] then finds each table the same way.
    pub fn salvage_tables(&self) -> Result<(Vec<String>, SalvageReport)> {
        let mut names = Vec::new();
        let report = self.salvage_catalog((&[], None), |name, _| names.push(name))?;
        Ok((names, report))
    }

    /// The tables a damaged catalog page took the names of: the ids of tables holding
    /// keys at this transaction's snapshot that [`Transaction::salvage_tables`] cannot
    /// name, in id order, for [`Transaction::salvage_table_id`] to copy; and a report
    /// whose losses are the tree pages the search could not read, each naming the ids
    /// (8 bytes, big-endian) of the tables whose keys it may hold, from `from` up to
    /// `until` (`None`: every later id): a table whose keys all lie there is not found
    /// (nor is an empty table). The report's `entries` counts the ids. Empty when the
    /// catalog reads whole; a table dropped at or before the snapshot (whose data a
    /// checkpoint keeps while the history window holds the drop) is never listed, unless
    /// the record of those drops is damaged too, which a loss then says. Ids
    /// are the file's own numbering of its tables at the snapshot, one table each.
    ///
    /// Walks the tree from one table's first key to the next table's, passing over
    /// damage as a salvage does, only when the catalog has damage. Under
    /// [`Isolation::Serializable`](crate::Isolation::Serializable) it counts as a read of
    /// the catalog, not of the tables it finds.
    pub fn salvage_unnamed_tables(&self) -> Result<(Vec<u64>, SalvageReport)> {
        let seq = self.snapshot_seq();
        let mut named = std::collections::BTreeSet::new();
        let report = self.salvage_catalog((&[], None), |_, id| {
            named.insert(id);
        })?;
        if report.losses.is_empty() {
            return Ok((
                Vec::new(),
                SalvageReport {
                    seq,
                    ..SalvageReport::default()
                },
            ));
        }
        let mut pin = Arc::clone(&self.pin());
        let (ids, mut losses) = self.engine().salvage_table_ids(&mut pin, seq)?;
        let ids: Vec<u64> = ids.into_iter().filter(|id| !named.contains(id)).collect();
        // Without the record of drops the window keeps, a dropped table whose keys the
        // tree still holds is found like a live one: said when any table is found.
        if let Some((page, what)) = self
            .engine()
            .drops_unread
            .as_ref()
            .filter(|_| !ids.is_empty())
        {
            losses.push(crate::engine::SalvageLoss {
                page: *page,
                what: format!(
                    "the record of tables dropped inside the history window could not be read \
                     ({what}): a table found may be a dropped one"
                ),
                from: Vec::new(),
                until: None,
            });
        }
        let report = SalvageReport {
            seq,
            entries: ids.len() as u64,
            losses,
        };
        Ok((ids, report))
    }

    /// [`Transaction::salvage_table`] of the table with id `id` (one of
    /// [`Transaction::salvage_unnamed_tables`]): a table whose name is lost. An id no
    /// table has at the snapshot (never given, or a table dropped at or before it)
    /// salvages nothing; the catalog's own id, or one past the largest a table can
    /// have, is [`Error::TableNotFound`](crate::Error::TableNotFound) naming `#id`.
    /// Under `Serializable` it counts as a read of the table's keys and of every table
    /// name (a drop, clear or creation committed meanwhile conflicts with it).
    pub fn salvage_table_id(
        &self,
        id: u64,
        mut entry: impl FnMut(&[u8], &[u8]) -> Result<()>,
    ) -> Result<SalvageReport> {
        if id == CATALOG_TABLE || id > crate::types::TABLE_ID_MAX {
            return Err(crate::Error::TableNotFound {
                table: format!("#{id}"),
            });
        }
        let seq = self.snapshot_seq();
        // Read by id, the table's name is not: the whole catalog counts as read, so a
        // concurrent drop, clear or creation (each writes a name) conflicts with what
        // this read of the table saw (its name cannot be told from here).
        self.record_range(CATALOG_TABLE, Bound::Unbounded, Bound::Unbounded);
        if self.engine().table_dropped(id, seq) {
            return Ok(SalvageReport {
                seq,
                ..SalvageReport::default()
            });
        }
        self.salvage_id(id, (&[], None), &|_| Ok(()), &mut entry)
    }

    /// Salvages the catalog's names in `[from, until)` at this transaction's snapshot:
    /// `each(name, id)` for every entry that can be read, in name order. An entry whose
    /// value is no table id (a crafted file: a page that verifies holds it) is a loss of
    /// that name alone, not the end of the walk.
    fn salvage_catalog(
        &self,
        names: (&[u8], Option<&[u8]>),
        mut each: impl FnMut(String, TableId),
    ) -> Result<SalvageReport> {
        self.salvage_id(
            CATALOG_TABLE,
            names,
            &|v| decode_table_id(v).map(drop),
            &mut |k, v| {
                each(String::from_utf8_lossy(k).into_owned(), decode_table_id(v)?);
                Ok(())
            },
        )
    }
}
