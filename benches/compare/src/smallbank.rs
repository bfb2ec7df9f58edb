//! (f): a SmallBank-style mix on checking and savings balances with a hot spot.
//!
//! Transaction mix (the usual SmallBank weights): Amalgamate 15%, Balance 15%,
//! DepositChecking 15%, SendPayment 25%, TransactSavings 15%, WriteCheck 15%. Each picks
//! its accounts from the hot set with probability `hot_pct`, else uniformly from the rest.
//! Overdrafts are allowed, so no transaction aborts for business reasons: every abort
//! counted is a concurrency-control abort. Every committed transaction reports how it
//! changed the total of all balances, and the run ends by checking that total, which
//! catches a lost update or a torn commit. Not a write skew: each transaction's change
//! is computed from its own reads, so the total holds under snapshot isolation too
//! (serializability is checked by the engine's own tests, not here).

use crate::driver::{Run, run_tx, timed};
use crate::engine::{Engine, KEY_LEN, Key, Res, Tx, err};
use crate::rng::{Rng, seed_for};
use std::sync::atomic::{AtomicI64, Ordering};

/// Initial balance of every checking and savings account.
const INITIAL: i64 = 10_000;

#[derive(Clone, Copy, Debug)]
pub struct Bank {
    pub accounts: u64,
    pub hot: u64,
    /// Percent of account picks that go to the hot set.
    pub hot_pct: u64,
}

fn account_key(kind: &[u8; 4], id: u64) -> Key {
    let mut k = [0u8; KEY_LEN];
    k[..4].copy_from_slice(kind);
    k[KEY_LEN - 8..].copy_from_slice(&id.to_be_bytes());
    k
}
fn checking(id: u64) -> Key {
    account_key(b"chk:", id)
}
fn savings(id: u64) -> Key {
    account_key(b"sav:", id)
}

fn balance(tx: &mut dyn Tx, key: &Key) -> Res<i64> {
    let v = tx.get(key)?.ok_or_else(|| err("account missing"))?;
    let bytes: [u8; 8] = v
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| err("bad balance"))?;
    Ok(i64::from_le_bytes(bytes))
}
fn set(tx: &mut dyn Tx, key: &Key, value: i64) -> Res<()> {
    tx.put(key, &value.to_le_bytes())
}

impl Bank {
    fn pick(&self, rng: &mut Rng) -> u64 {
        if rng.below(100) < self.hot_pct || self.accounts <= self.hot {
            rng.below(self.hot.min(self.accounts))
        } else {
            self.hot + rng.below(self.accounts - self.hot)
        }
    }

    fn pick_two(&self, rng: &mut Rng) -> (u64, u64) {
        let a = self.pick(rng);
        loop {
            let b = self.pick(rng);
            if b != a || self.accounts < 2 {
                return (a, b);
            }
        }
    }

    /// Creates every account in one durable transaction.
    pub fn setup<E: Engine>(&self, e: &E) -> Res<()> {
        let mut s = e.session()?;
        run_tx(e, &mut s, false, &mut |tx: &mut dyn Tx| {
            for id in 0..self.accounts {
                set(tx, &checking(id), INITIAL)?;
                set(tx, &savings(id), INITIAL)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Runs the mix on `threads` threads for `seconds`, then checks the total.
    pub fn run<E: Engine>(&self, e: &E, threads: usize, seconds: f64, seed: u64) -> Res<Run> {
        let delta_total = AtomicI64::new(0);
        let run = timed(
            e,
            threads,
            seconds,
            |t| Ok(Rng::new(seed_for(seed, "smallbank", t as u64))),
            |e, s, rng| {
                let kind = rng.below(100);
                let amount = 1 + rng.below(100) as i64;
                let (a, b) = self.pick_two(rng);
                // The change to the total made by the attempt that commits.
                let mut delta = 0i64;
                let aborts = match kind {
                    0..15 => run_tx(e, s, false, &mut |tx: &mut dyn Tx| {
                        // Amalgamate: move all of a's money into b's checking.
                        let total = balance(tx, &savings(a))? + balance(tx, &checking(a))?;
                        let to = balance(tx, &checking(b))?;
                        set(tx, &savings(a), 0)?;
                        set(tx, &checking(a), 0)?;
                        set(tx, &checking(b), to + total)
                    })?,
                    15..30 => run_tx(e, s, true, &mut |tx: &mut dyn Tx| {
                        // Balance.
                        let total = balance(tx, &savings(a))? + balance(tx, &checking(a))?;
                        std::hint::black_box(total);
                        Ok(())
                    })?,
                    30..45 => run_tx(e, s, false, &mut |tx: &mut dyn Tx| {
                        // DepositChecking.
                        let c = balance(tx, &checking(a))?;
                        delta = amount;
                        set(tx, &checking(a), c + amount)
                    })?,
                    45..70 => run_tx(e, s, false, &mut |tx: &mut dyn Tx| {
                        // SendPayment.
                        let from = balance(tx, &checking(a))?;
                        let to = balance(tx, &checking(b))?;
                        set(tx, &checking(a), from - amount)?;
                        set(tx, &checking(b), to + amount)
                    })?,
                    70..85 => run_tx(e, s, false, &mut |tx: &mut dyn Tx| {
                        // TransactSavings.
                        let v = balance(tx, &savings(a))?;
                        delta = amount;
                        set(tx, &savings(a), v + amount)
                    })?,
                    _ => run_tx(e, s, false, &mut |tx: &mut dyn Tx| {
                        // WriteCheck: an overdraft costs one more.
                        let total = balance(tx, &savings(a))? + balance(tx, &checking(a))?;
                        let c = balance(tx, &checking(a))?;
                        let cost = if total < amount { amount + 1 } else { amount };
                        delta = -cost;
                        set(tx, &checking(a), c - cost)
                    })?,
                };
                delta_total.fetch_add(delta, Ordering::Relaxed);
                Ok((1, aborts))
            },
        )?;
        self.check_total(
            e,
            INITIAL * 2 * self.accounts as i64 + delta_total.into_inner(),
        )?;
        Ok(run)
    }

    fn check_total<E: Engine>(&self, e: &E, expected: i64) -> Res<()> {
        let mut s = e.session()?;
        let mut total = 0;
        run_tx(e, &mut s, true, &mut |tx: &mut dyn Tx| {
            total = 0;
            for id in 0..self.accounts {
                total += balance(tx, &checking(id))? + balance(tx, &savings(id))?;
            }
            Ok(())
        })?;
        if total != expected {
            return Err(err(format!(
                "{}: SmallBank total is {total}, expected {expected}: money was created or lost",
                E::NAME
            )));
        }
        Ok(())
    }
}
