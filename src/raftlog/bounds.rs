//! What a log holds ([`Bounds`]), as its handle believes it is on disk, and the
//! invariants it keeps.

use super::entry::EntryId;
use crate::{Error, Result};

/// What the log holds, as the handle believes it is on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(super) struct Bounds {
    /// The last purged entry, if anything was ever purged.
    pub(super) purged: Option<EntryId>,
    /// The first held index and the last held entry, if the log holds entries.
    pub(super) held: Option<(u64, EntryId)>,
}

impl Bounds {
    pub(super) fn first_index(&self) -> u64 {
        match (self.held, self.purged) {
            (Some((first, _)), _) => first,
            (None, Some(p)) => p.index.saturating_add(1),
            (None, None) => 0,
        }
    }

    pub(super) fn last_id(&self) -> Option<EntryId> {
        self.held.map(|(_, last)| last).or(self.purged)
    }

    /// Whether `index` is held.
    pub(super) fn holds(&self, index: u64) -> bool {
        self.held
            .is_some_and(|(first, last)| (first..=last.index).contains(&index))
    }
}

/// The invariants of what a log holds: purged entries come before held ones, the
/// held range is not reversed. The purged entry's term is not compared with the held
/// ones': `purge_to` the index right before a log that starts late records the term
/// it is given, which openraft's own storage suite sets above the first entry's (a
/// log holding that record was refused at its next open).
pub(super) fn check_bounds(b: &Bounds) -> Result<()> {
    let bad = |what: String| Err(Error::corrupted(0, format!("raft log bounds: {what}")));
    if let Some((first, last)) = b.held {
        if first > last.index {
            return bad(format!("first entry {first} after last {}", last.index));
        }
        if let Some(p) = b.purged
            && p.index.checked_add(1) != Some(first)
        {
            return bad(format!(
                "first entry {first} does not follow the last purged {}",
                p.index
            ));
        }
    }
    Ok(())
}
