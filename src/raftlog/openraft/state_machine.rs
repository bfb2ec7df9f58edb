//! The key-value state machine of [`TypeConfig`] on capsuledb tables (the module docs
//! of [`super`] say how it is stored).

use super::*;

/// The key-value state machine of [`TypeConfig`], kept in capsuledb tables; cheap to
/// clone (clones share the state). It is also its own snapshot builder.
#[derive(Clone)]
pub struct StateMachine {
    inner: Arc<SmInner>,
}

impl std::fmt::Debug for StateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMachine")
            .field("data", &self.inner.data)
            .finish_non_exhaustive()
    }
}

struct SmInner {
    db: Database,
    data: String,
    meta: String,
    snapshot: String,
    /// Snapshots built since opening (counted; a snapshot's id is named by the stored
    /// count, which a build kept unstored does not raise: two such builds at one applied
    /// id share an id, and their contents).
    built: AtomicU64,
    /// Held while a snapshot is stored: openraft builds snapshots in a task of their
    /// own, beside the state machine's commands, so a build's store and an install
    /// would otherwise conflict (a fatal storage error) or the build would replace a
    /// newer installed snapshot with its older one.
    storing: parking_lot::Mutex<()>,
}

/// The serialized form of a snapshot: the applied state and every key-value pair.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    last_applied: Option<LogId<Nid>>,
    membership: StoredMembership<Nid, BasicNode>,
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl StateMachine {
    /// Whether `bytes`, a whole snapshot as a leader sends it, decodes and holds keys
    /// and values within capsuledb's limits. A receiver that hands openraft the last
    /// chunk of one that does not stops its Raft (openraft takes the failed install as
    /// fatal): check before, and refuse the chunk. Not checked: the install is one
    /// transaction (the pairs, the deletion of the current ones and the snapshot's own
    /// bytes), which a snapshot of more than about a third of
    /// [`crate::MAX_TRANSACTION_BYTES`] can pass, and then fails as fatally.
    pub fn check_snapshot_data(bytes: &[u8]) -> crate::Result<()> {
        let data: SnapshotData =
            serde_json::from_slice(bytes).map_err(|e| crate::Error::Decode {
                ty: "raft snapshot",
                what: e.to_string(),
            })?;
        for (k, v) in &data.pairs {
            if k.len() > crate::MAX_KEY_LEN {
                return Err(crate::Error::KeyTooLarge {
                    len: k.len(),
                    max: crate::MAX_KEY_LEN,
                });
            }
            if v.len() > crate::MAX_VALUE_LEN {
                return Err(crate::Error::ValueTooLarge {
                    len: v.len(),
                    max: crate::MAX_VALUE_LEN,
                });
            }
        }
        Ok(())
    }

    /// The state machine named `raft` in `db` (tables created if absent).
    pub fn open(db: &Database) -> crate::Result<StateMachine> {
        StateMachine::open_named(db, crate::raftlog::DEFAULT_NAME)
    }

    /// The state machine in the tables `<name>.sm`, `<name>.sm.meta` and
    /// `<name>.sm.snapshot` of `db`, created if absent.
    pub fn open_named(db: &Database, name: &str) -> crate::Result<StateMachine> {
        let data = format!("{name}.sm");
        let meta = format!("{name}.sm.meta");
        let snapshot = format!("{name}.sm.snapshot");
        crate::raftlog::create_tables(db, &[&data, &meta, &snapshot])?;
        Ok(StateMachine {
            inner: Arc::new(SmInner {
                db: db.clone(),
                data,
                meta,
                snapshot,
                built: AtomicU64::new(0),
                storing: parking_lot::Mutex::new(()),
            }),
        })
    }

    /// The applied value of `key`.
    pub fn get(&self, key: &[u8]) -> crate::Result<Option<Vec<u8>>> {
        let mut conn = self.inner.db.connect();
        let tx = conn.begin_read()?;
        tx.get(&self.inner.data, key)
    }

    /// Every applied key-value pair, in key order.
    pub fn pairs(&self) -> crate::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut conn = self.inner.db.connect();
        let tx = conn.begin_read()?;
        tx.iter(&self.inner.data)?
            .map(|r| r.map(|(k, v)| (k, v.to_vec())))
            .collect()
    }

    fn meta_value<T: DeserializeOwned + Default>(
        tx: &crate::Transaction<'_>,
        table: &str,
        key: &[u8],
    ) -> Result<T, StorageError<Nid>> {
        match tx.get(table, key).map_err(sm_read)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(sm_read),
            None => Ok(T::default()),
        }
    }

    fn put_json<T: Serialize>(
        tx: &mut crate::Transaction<'_>,
        table: &str,
        key: &[u8],
        value: &T,
    ) -> Result<(), StorageError<Nid>> {
        let bytes = serde_json::to_vec(value).map_err(sm_write)?;
        tx.put(table, key, &bytes).map_err(sm_write)
    }

    /// Stores `bytes` as the current snapshot described by `meta`, in `tx`.
    fn store_snapshot(
        &self,
        tx: &mut crate::Transaction<'_>,
        meta: &SnapshotMeta<Nid, BasicNode>,
        bytes: &[u8],
    ) -> Result<(), StorageError<Nid>> {
        let old: Vec<Vec<u8>> = tx
            .iter(&self.inner.snapshot)
            .map_err(sm_write)?
            .map(|r| r.map(|(k, _)| k))
            .collect::<crate::Result<_>>()
            .map_err(sm_write)?;
        for k in old {
            tx.delete(&self.inner.snapshot, &k).map_err(sm_write)?;
        }
        for (i, chunk) in (0u64..).zip(bytes.chunks(SNAPSHOT_CHUNK_BYTES)) {
            tx.put(&self.inner.snapshot, &i.to_be_bytes(), chunk)
                .map_err(sm_write)?;
        }
        Self::put_json(tx, &self.inner.meta, SNAPSHOT_LEN, &Some(bytes.len()))?;
        Self::put_json(tx, &self.inner.meta, SNAPSHOT_META, &Some(meta))
    }

    fn commit(tx: crate::Transaction<'_>) -> Result<(), StorageError<Nid>> {
        tx.commit_with(Durability::Durable)
            .map(|_| ())
            .map_err(sm_write)
    }

    /// Commits applied entries with the last one's id and, if they held one, the last
    /// membership, in the same transaction: a crash never separates the data from what
    /// it reflects.
    fn commit_applied(
        mut tx: crate::Transaction<'_>,
        meta: &str,
        last: Option<LogId<Nid>>,
        membership: Option<StoredMembership<Nid, BasicNode>>,
    ) -> Result<(), StorageError<Nid>> {
        Self::put_json(&mut tx, meta, LAST_APPLIED, &last)?;
        if let Some(m) = membership {
            Self::put_json(&mut tx, meta, MEMBERSHIP, &m)?;
        }
        Self::commit(tx)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<Nid>> {
        let inner = &*self.inner;
        let (data, bytes) = {
            let mut conn = inner.db.connect();
            // One read snapshot: the pairs and the applied state agree.
            let tx = conn.begin_read().map_err(sm_read)?;
            let pairs = tx
                .iter(&inner.data)
                .map_err(sm_read)?
                .map(|r| r.map(|(k, v)| (k, v.to_vec())))
                .collect::<crate::Result<Vec<_>>>()
                .map_err(sm_read)?;
            let data = SnapshotData {
                last_applied: Self::meta_value(&tx, &inner.meta, LAST_APPLIED)?,
                membership: Self::meta_value(&tx, &inner.meta, MEMBERSHIP)?,
                pairs,
            };
            let bytes = serde_json::to_vec(&data).map_err(sm_read)?;
            (data, bytes)
        };
        let _storing = inner.storing.lock();
        let mut conn = inner.db.connect();
        let mut tx = conn.begin_with(Isolation::Snapshot).map_err(sm_write)?;
        let stored: Option<SnapshotMeta<Nid, BasicNode>> =
            Self::meta_value(&tx, &inner.meta, SNAPSHOT_META)?;
        // An installed snapshot at or past this one, stored meanwhile, stays: this one
        // is handed to openraft unstored (openraft keeps the newer one it holds).
        let keep_stored = stored.is_some_and(|m| m.last_log_id >= data.last_applied);
        let count: u64 = Self::meta_value(&tx, &inner.meta, SNAPSHOT_COUNT)?;
        let count = count.checked_add(1).ok_or_else(|| {
            sm_read(crate::Error::corrupted(
                0,
                format!("the state machine's snapshot count {count} cannot grow"),
            ))
        })?;
        inner.built.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match data.last_applied {
            Some(id) => format!("{}-{}-{count}", id.leader_id, id.index),
            None => format!("--{count}"),
        };
        let meta = SnapshotMeta {
            last_log_id: data.last_applied,
            last_membership: data.membership,
            snapshot_id,
        };
        if !keep_stored {
            Self::put_json(&mut tx, &inner.meta, SNAPSHOT_COUNT, &count)?;
            self.store_snapshot(&mut tx, &meta, &bytes)?;
            Self::commit(tx)?;
        }
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<Nid>>, StoredMembership<Nid, BasicNode>), StorageError<Nid>> {
        let mut conn = self.inner.db.connect();
        let tx = conn.begin_read().map_err(sm_read)?;
        Ok((
            Self::meta_value(&tx, &self.inner.meta, LAST_APPLIED)?,
            Self::meta_value(&tx, &self.inner.meta, MEMBERSHIP)?,
        ))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<Nid>>
    where
        I: IntoIterator<Item = ::openraft::Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let applied = self.apply_entries(entries);
        if applied.is_err() {
            // openraft's state machine task ends at this error, and an install queued
            // behind it never runs: a purge waiting for that install stops waiting.
            self.note(false);
        }
        applied
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<Nid>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<Nid, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<Nid>> {
        let installed = self.install(meta, snapshot.into_inner());
        self.note(installed.is_ok());
        installed
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<Nid>> {
        let current = self.current_snapshot();
        if current.is_err() {
            // openraft's state machine task ends at this error too, and an install
            // queued behind it never runs: a purge waiting for it stops waiting.
            self.note(false);
        }
        current
    }
}

impl StateMachine {
    /// [`note_state_machine`] for this state machine: how its latest install ended, or
    /// that an apply or a read of its snapshot failed (`ok` false).
    fn note(&self, ok: bool) {
        let inner = &*self.inner;
        let name = inner.data.strip_suffix(".sm").unwrap_or(&inner.data);
        note_state_machine(&inner.db, name, ok);
    }

    /// [`RaftStateMachine::get_current_snapshot`]: the stored snapshot, its chunks
    /// checked to be keys `0, 1, 2, ...` and to hold the length stored with them (joined
    /// as they came, a missing or stray chunk was served as a snapshot no follower could
    /// install; a snapshot stored before the length was has only the keys checked).
    fn current_snapshot(&self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<Nid>> {
        let inner = &*self.inner;
        let mut conn = inner.db.connect();
        let tx = conn.begin_read().map_err(sm_read)?;
        let meta: Option<SnapshotMeta<Nid, BasicNode>> =
            Self::meta_value(&tx, &inner.meta, SNAPSHOT_META)?;
        let Some(meta) = meta else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        for (i, r) in (0u64..).zip(tx.iter(&inner.snapshot).map_err(sm_read)?) {
            let (key, chunk) = r.map_err(sm_read)?;
            if key != i.to_be_bytes() {
                return Err(sm_read(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "table {}: snapshot chunk {i} expected, key {key:02x?} found",
                        inner.snapshot
                    ),
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let len: Option<usize> = Self::meta_value(&tx, &inner.meta, SNAPSHOT_LEN)?;
        if let Some(len) = len.filter(|&len| len != bytes.len()) {
            return Err(sm_read(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "table {}: the snapshot's chunks hold {} bytes, {len} were stored",
                    inner.snapshot,
                    bytes.len()
                ),
            )));
        }
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}

impl StateMachine {
    /// [`RaftStateMachine::apply`]: the entries applied in commits of at most
    /// `APPEND_PART_BYTES_MAX` bytes each, with the last applied id.
    fn apply_entries<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<Nid>>
    where
        I: IntoIterator<Item = ::openraft::Entry<TypeConfig>>,
    {
        let inner = &*self.inner;

        let mut conn = inner.db.connect();
        let mut tx = conn.begin_with(Isolation::Snapshot).map_err(sm_write)?;
        let mut responses = Vec::new();
        let mut last = None;
        let mut membership = None;
        // Bytes written by this transaction: past `APPEND_PART_BYTES_MAX` the entries so
        // far are committed as one part (with the last applied id, as every commit is),
        // so a batch never meets the transaction limit (fatal to openraft).
        let mut part_bytes = 0usize;
        for e in entries {
            last = Some(e.log_id);
            part_bytes += match &e.payload {
                EntryPayload::Normal(Request::Set { key, value }) => key.len() + value.len(),
                EntryPayload::Normal(Request::Delete { key }) => key.len(),
                _ => 0,
            };
            let response = match e.payload {
                EntryPayload::Blank => Response::default(),
                // Deterministic on every replica: failing here would stop each node's
                // Raft at this entry, again at every restart.
                EntryPayload::Normal(r) => match (r.inapplicable(), r) {
                    (Some(refused), _) => Response {
                        previous: None,
                        refused: Some(refused.to_string()),
                    },
                    (None, Request::Set { key, value }) => {
                        let previous = tx.get(&inner.data, &key).map_err(sm_write)?;
                        tx.put(&inner.data, &key, &value).map_err(sm_write)?;
                        Response {
                            previous,
                            refused: None,
                        }
                    }
                    (None, Request::Delete { key }) => {
                        let previous = tx.get(&inner.data, &key).map_err(sm_write)?;
                        tx.delete(&inner.data, &key).map_err(sm_write)?;
                        Response {
                            previous,
                            refused: None,
                        }
                    }
                },
                EntryPayload::Membership(m) => {
                    membership = Some(StoredMembership::new(Some(e.log_id), m));
                    Response::default()
                }
            };
            responses.push(response);
            if part_bytes > APPEND_PART_BYTES_MAX {
                Self::commit_applied(tx, &inner.meta, last.take(), membership.take())?;
                tx = conn.begin_with(Isolation::Snapshot).map_err(sm_write)?;
                part_bytes = 0;
            }
        }
        if last.is_some() {
            Self::commit_applied(tx, &inner.meta, last, membership)?;
        }
        Ok(responses)
    }

    /// [`RaftStateMachine::install_snapshot`]'s work.
    fn install(
        &self,
        meta: &SnapshotMeta<Nid, BasicNode>,
        bytes: Vec<u8>,
    ) -> Result<(), StorageError<Nid>> {
        let inner = &*self.inner;
        let data: SnapshotData = serde_json::from_slice(&bytes).map_err(sm_write)?;
        let _storing = inner.storing.lock();
        let mut conn = inner.db.connect();
        let mut tx = conn.begin_with(Isolation::Snapshot).map_err(sm_write)?;
        let old: Vec<Vec<u8>> = tx
            .iter(&inner.data)
            .map_err(sm_write)?
            .map(|r| r.map(|(k, _)| k))
            .collect::<crate::Result<_>>()
            .map_err(sm_write)?;
        for k in old {
            tx.delete(&inner.data, &k).map_err(sm_write)?;
        }
        for (k, v) in &data.pairs {
            tx.put(&inner.data, k, v).map_err(sm_write)?;
        }
        // The snapshot's metadata is authoritative for what it reflects.
        Self::put_json(&mut tx, &inner.meta, LAST_APPLIED, &meta.last_log_id)?;
        Self::put_json(&mut tx, &inner.meta, MEMBERSHIP, &meta.last_membership)?;
        self.store_snapshot(&mut tx, meta, &bytes)?;
        Self::commit(tx)
    }
}
