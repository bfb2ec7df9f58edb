//! Read pins of the current tree kept for the next transactions, one per thread shard.
//!
//! A read transaction needs a [`ReadPin`]: the tree, the mapping and the version store's
//! tables it reads. Making one takes the tree's and the mapping's locks and reference
//! counts, which every reading thread shares; a transaction of one read paid for them
//! each time, and two threads passed those cache lines back and forth. A pin of the
//! current tree is now kept per shard ([`crate::util::ThreadShards`]) and handed to the
//! next transaction of a thread of that shard.
//!
//! A kept pin keeps its tree's pages from reuse, so none outlives its tree: a pin is
//! kept only while its generation is the current one, and the checkpointer empties the
//! cache as soon as it publishes a newer tree ([`PinCache::clear`]). Only transactions
//! hold older trees, as before.

use super::ReadPin;
use crate::util::ThreadShards;
use parking_lot::Mutex;
use std::sync::Arc;

/// One shard's kept pin, on a cache line of its own.
#[repr(align(128))]
#[derive(Default)]
struct Slot(Mutex<Option<Arc<ReadPin>>>);

/// Pins of the current tree, by shard.
#[derive(Default)]
pub(crate) struct PinCache {
    slots: ThreadShards<Slot>,
}

impl PinCache {
    /// The kept pin of generation `generation`, if this thread's shard has one.
    pub(crate) fn get(&self, generation: u64) -> Option<Arc<ReadPin>> {
        self.slots
            .home()
            .0
            .lock()
            .as_ref()
            .filter(|p| p.generation == generation)
            .map(Arc::clone)
    }

    /// Keeps `pin` for this thread's shard if its generation is still `current()`
    /// (tested under the slot's lock, which [`PinCache::clear`] takes after the
    /// generation moves: a pin of an older tree is never left behind).
    pub(crate) fn offer(&self, pin: &Arc<ReadPin>, current: impl FnOnce() -> u64) {
        let mut slot = self.slots.home().0.lock();
        if current() == pin.generation {
            *slot = Some(Arc::clone(pin));
        }
    }

    /// Drops every kept pin (a newer tree was published, or the engine closes).
    pub(crate) fn clear(&self) {
        for slot in self.slots.iter() {
            let old = slot.0.lock().take();
            drop(old);
        }
    }
}
