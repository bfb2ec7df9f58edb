//! Raising the durable bound: the header's `log_durable_seq` (`format-spec/log.md`,
//! "Durable evidence"), written at open, at a clean close and by every checkpoint.

use super::Checkpointer;
use crate::Result;
use crate::format::{FORMAT_VERSION, HEADER_COPY_OFFSETS, Header};
use crate::storage::Storage;

/// Writes `header` with `log_durable_seq` raised to `seq` (and the format version of
/// this build) into the other copy, and syncs; returns the new header and its copy.
pub fn write_durable_bound(
    storage: &dyn Storage,
    header: &Header,
    copy: u32,
    seq: u64,
) -> Result<(Header, u32)> {
    write_durable_bound_with(storage, header, copy, seq, || storage.sync())
}

/// [`write_durable_bound`], syncing through `sync`.
fn write_durable_bound_with(
    storage: &dyn Storage,
    header: &Header,
    copy: u32,
    seq: u64,
    sync: impl FnOnce() -> Result<()>,
) -> Result<(Header, u32)> {
    crate::format::check_next_header(header.generation.saturating_add(1), header.checkpoint_seq)?;
    let new = Header {
        generation: header.generation + 1,
        log_durable_seq: seq.max(header.log_durable_seq),
        read_version: FORMAT_VERSION,
        write_version: FORMAT_VERSION,
        ..*header
    };
    let new_copy = 1 - copy.min(1);
    let slot = HEADER_COPY_OFFSETS
        .get(new_copy as usize)
        .copied()
        .unwrap_or(0);
    storage.write_at(slot, &new.encode(new_copy))?;
    sync()?;
    Ok((new, new_copy))
}

/// Whether a header needs a write to record `seq` as durable.
pub fn bound_needs_write(header: &Header, seq: u64) -> bool {
    seq > header.log_durable_seq.max(header.checkpoint_seq)
        || header.read_version < FORMAT_VERSION
        || header.write_version < FORMAT_VERSION
}

impl Checkpointer {
    /// Records that every marker up to `seq` is durable (a clean close), unless the
    /// header already says so. Waits for a checkpoint in progress.
    pub fn raise_durable_bound(&self, seq: u64) -> Result<()> {
        let _st = self.state.lock();
        let (header, copy) = self.header();
        if !bound_needs_write(&header, seq) {
            return Ok(());
        }
        // A commit admitted while `close` drained may still run its steps: this sync is
        // held off from theirs, and a failed write or sync here poisons the database, so
        // none of them is acknowledged over what the failure dropped (on a storage whose
        // syncs do not all fail after one failed, as the file storage's do).
        let _serial = self.committer.serialize_syncs();
        let poison = |e: &crate::Error| {
            self.committer
                .poison_sync(format!("the durable bound's header write failed: {e}"))
        };
        let unwinding =
            super::PoisonOnUnwind::new(&self.committer, "the durable bound's header write");
        let written = write_durable_bound_with(self.storage.as_ref(), &header, copy, seq, || {
            self.storage.sync()
        })
        .inspect_err(poison);
        unwinding.disarm();
        let written = written?;
        *self.header.lock() = written;
        Ok(())
    }
}
