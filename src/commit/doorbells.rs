//! Doorbells: where committers waiting for a sequence sleep, each with its own small
//! lock, so waking them never sends them through the coordinator's state lock.
//!
//! With condition variables tied to the state lock, a step that finished twenty
//! commits requeued their twenty committers onto that lock, and each had to take it in
//! turn, every release waking the next (a convoy of task switches on the leader's path).
//! Here a waiter takes a *ticket* (the bell's ring count) while it still holds the state
//! lock, releases that lock, and sleeps on its bell until the count moves or its
//! condition holds; a waker rings the bells of the sequences it finished. A ring after
//! the ticket always wakes the waiter: the count is read and changed under the bell's
//! lock, and the waiter only sleeps after checking it under that lock.

use parking_lot::{Condvar, Mutex};

/// One bell: its ring count and the waiters sleeping on it.
#[derive(Default)]
struct Bell {
    rings: Mutex<u64>,
    woken: Condvar,
}

/// Bells that waiters for a sequence sleep on, one chosen by the sequence
/// (`seq % N`): ringing the sequences that advanced wakes their own waiters, not
/// everyone waiting for a later one. Two sequences sharing a bell cost a spurious wake.
pub struct Doorbells<const N: usize>([Bell; N]);

impl<const N: usize> Default for Doorbells<N> {
    fn default() -> Self {
        const { assert!(N > 0, "Doorbells need at least one bell") };
        Doorbells(std::array::from_fn(|_| Bell::default()))
    }
}

impl<const N: usize> Doorbells<N> {
    #[expect(
        clippy::indexing_slicing,
        reason = "an index taken modulo N (at least one) is below N"
    )]
    fn bell(&self, seq: u64) -> &Bell {
        &self.0[(seq % N as u64) as usize]
    }

    /// The ticket of a waiter for `seq`: take it before releasing the lock under which
    /// the waiter found it must wait.
    pub fn ticket(&self, seq: u64) -> u64 {
        *self.bell(seq).rings.lock()
    }

    /// Sleeps until `seq`'s bell rings after `ticket` was taken, or `done` holds.
    pub fn wait(&self, seq: u64, ticket: u64, done: impl Fn() -> bool) {
        let bell = self.bell(seq);
        let mut rings = bell.rings.lock();
        while *rings == ticket && !done() {
            bell.woken.wait(&mut rings);
        }
    }

    /// Wakes the waiters of `seq` (and of the sequences sharing its bell).
    pub fn ring(&self, seq: u64) {
        let bell = self.bell(seq);
        let mut rings = bell.rings.lock();
        *rings = rings.wrapping_add(1);
        bell.woken.notify_all();
    }

    /// Wakes every waiter.
    pub fn ring_all(&self) {
        (0..N as u64).for_each(|s| self.ring(s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A ring between the ticket and the wait is not lost; a ring of another bell does
    /// not wake; `done` ends the wait without a ring.
    #[test]
    fn a_ring_after_the_ticket_always_wakes() {
        let bells: Arc<Doorbells<4>> = Arc::default();
        let t = bells.ticket(5);
        bells.ring(5);
        bells.wait(5, t, || false);
        let t = bells.ticket(6);
        bells.ring(7);
        bells.wait(6, t, || true);
        let flag = Arc::new(AtomicBool::new(false));
        let t = bells.ticket(1);
        let waiter = {
            let (bells, flag) = (Arc::clone(&bells), Arc::clone(&flag));
            std::thread::spawn(move || bells.wait(1, t, || flag.load(Ordering::SeqCst)))
        };
        flag.store(true, Ordering::SeqCst);
        bells.ring(1);
        waiter.join().unwrap();
    }
}
