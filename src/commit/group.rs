//! The group-commit coordinator: leader/follower flushing of proofs and markers.
//!
//! Admitted commits join a bounded queue in sequence order (inside the serialized
//! section). A committer that needs `Written` or `Durable` either waits or, if no
//! flush is running, becomes the leader: it takes up to [`GROUP_COMMITS_MAX`] queued
//! commits and writes their proofs, **FSYNC_1**, their markers (publishing `written`),
//! **FSYNC_2** (publishing `durable`), then wakes everyone. Any I/O failure poisons the
//! coordinator: every waiting and later commit gets [`Error::Poisoned`].

use super::arena::LogArena;
use super::feed::Feed;
use super::marker_writer::MarkerWriter;
use crate::error::{Error, Result};
use crate::format::Proof;
use crate::storage::Storage;
use crate::types::Durability;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::Arc;

/// Most commits flushed by one group.
pub const GROUP_COMMITS_MAX: usize = 512;

/// Most commits waiting for a flush; a committer finding the queue this full flushes
/// (or waits) before it is admitted.
pub const QUEUE_COMMITS_MAX: usize = 8192;

/// A sequenced commit waiting for its proof and marker.
#[derive(Clone, Copy, Debug)]
pub struct Pending {
    /// Its proof (sequence, snapshot, capsule location and checksums).
    pub proof: Proof,
}

/// Counters of the coordinator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Groups flushed.
    pub groups: u64,
    /// Commits flushed by those groups.
    pub commits: u64,
    /// `fdatasync` calls made by groups.
    pub syncs: u64,
    /// Bytes written for proofs and markers.
    pub log_bytes: u64,
}

struct State {
    queue: VecDeque<Pending>,
    leader_active: bool,
    written: u64,
    durable: u64,
    poisoned: Option<String>,
    stats: GroupStats,
}

/// The coordinator.
pub struct GroupCommit {
    feed: Arc<Feed>,
    storage: Arc<dyn Storage>,
    proofs: LogArena,
    markers: Mutex<MarkerWriter>,
    state: Mutex<State>,
    changed: Condvar,
}

impl GroupCommit {
    /// A coordinator whose commits up to `durable` are already on disk.
    pub fn new(
        storage: Arc<dyn Storage>,
        proofs: LogArena,
        markers: MarkerWriter,
        durable: u64,
        feed: Arc<Feed>,
    ) -> GroupCommit {
        GroupCommit {
            feed,
            storage,
            proofs,
            markers: Mutex::new(markers),
            state: Mutex::new(State {
                queue: VecDeque::new(),
                leader_active: false,
                written: durable,
                durable,
                poisoned: None,
                stats: GroupStats::default(),
            }),
            changed: Condvar::new(),
        }
    }

    /// Fails when the coordinator is poisoned.
    pub fn check(&self) -> Result<()> {
        match &self.state.lock().poisoned {
            Some(cause) => Err(Error::Poisoned {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Queues a sequenced commit. Called inside the serialized section, so the queue
    /// is in sequence order.
    pub fn enqueue(&self, pending: Pending) {
        let mut st = self.state.lock();
        debug_assert!(
            st.queue
                .back()
                .is_none_or(|b| b.proof.seq + 1 == pending.proof.seq)
        );
        st.queue.push_back(pending);
    }

    /// Blocks while the queue is full, flushing if nobody else is.
    pub fn wait_for_room(&self) -> Result<()> {
        let mut st = self.state.lock();
        while st.queue.len() >= QUEUE_COMMITS_MAX {
            self.lead_or_wait(&mut st)?;
        }
        Ok(())
    }

    /// Blocks until commit `seq` has reached `level` (`Written` or `Durable`).
    pub fn wait_for(&self, seq: u64, level: Durability) -> Result<()> {
        let mut st = self.state.lock();
        loop {
            let reached = match level {
                Durability::Applied => true,
                Durability::Written => st.written >= seq,
                Durability::Durable => st.durable >= seq,
            };
            if reached {
                return Ok(());
            }
            self.lead_or_wait(&mut st)?;
        }
    }

    /// Flushes everything queued so far (shutdown).
    pub fn drain(&self) -> Result<()> {
        let mut st = self.state.lock();
        while !st.queue.is_empty() || st.leader_active {
            self.lead_or_wait(&mut st)?;
        }
        Ok(())
    }

    /// Either flushes one group as the leader or waits for a change.
    fn lead_or_wait(&self, st: &mut parking_lot::MutexGuard<'_, State>) -> Result<()> {
        if let Some(cause) = &st.poisoned {
            return Err(Error::Poisoned {
                cause: cause.clone(),
            });
        }
        if st.leader_active || st.queue.is_empty() {
            self.changed.wait(st);
            return Ok(());
        }
        st.leader_active = true;
        let n = st.queue.len().min(GROUP_COMMITS_MAX);
        let batch: Vec<Pending> = st.queue.drain(..n).collect();
        let result = parking_lot::MutexGuard::unlocked(st, || self.flush(&batch));
        st.leader_active = false;
        if let Err(e) = &result {
            log::error!(
                "a group commit's I/O failed; the database refuses commits until reopened: {e}"
            );
            st.poisoned = Some(e.to_string());
        }
        self.changed.notify_all();
        result
    }

    /// Proofs, FSYNC_1, markers, FSYNC_2 for one group.
    fn flush(&self, batch: &[Pending]) -> Result<()> {
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            return Ok(());
        };
        let encoded: Vec<_> = batch.iter().map(|p| p.proof.encode()).collect();
        let records: Vec<&[u8]> = encoded.iter().map(|e| &e[..]).collect();
        let seqs: Vec<u64> = batch.iter().map(|p| p.proof.seq).collect();
        let extents = self.proofs.append_settled(&records, &seqs)?;
        self.storage.sync()?; // FSYNC_1: capsules and proofs durable before any marker.
        let mut markers = self.markers.lock();
        let entries: Vec<(u64, u64, u32)> = batch
            .iter()
            .zip(&extents)
            .zip(&encoded)
            .map(|((p, e), enc)| (p.proof.seq, e.offset, Proof::checksum_of(enc)))
            .collect();
        let marker_bytes = markers.append(&entries)?;
        drop(markers);
        {
            let mut st = self.state.lock();
            st.written = last.proof.seq;
            self.changed.notify_all();
        }
        self.storage.sync()?; // FSYNC_2: the markers themselves.
        let mut st = self.state.lock();
        st.durable = last.proof.seq;
        st.stats.groups += 1;
        st.stats.commits += last.proof.seq - first.proof.seq + 1;
        st.stats.syncs += 2;
        st.stats.log_bytes += (records.len() * crate::format::PROOF_LEN) as u64 + marker_bytes;
        drop(st);
        self.feed.durable(last.proof.seq);
        Ok(())
    }

    /// Runs `f` on the marker writer while no group writes markers.
    pub fn with_markers<T>(&self, f: impl FnOnce(&mut MarkerWriter) -> T) -> T {
        f(&mut self.markers.lock())
    }

    /// The proof arena.
    pub fn proofs(&self) -> &LogArena {
        &self.proofs
    }

    /// Counters so far.
    pub fn stats(&self) -> GroupStats {
        self.state.lock().stats
    }

    /// Highest sequence on disk.
    pub fn durable_seq(&self) -> u64 {
        self.state.lock().durable
    }
}
