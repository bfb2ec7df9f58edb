//! The bank: accounts whose total never changes, serializable transfers between them
//! (retried after a conflict), and serializable full scans that check the total.

use super::shared::Shared;
use capsuledb::rng::Rng;
use capsuledb::{Database, Durability, Error, Isolation, Transaction};
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub(super) const BANK: &str = "bank";

pub(super) const ACCOUNTS: u64 = 256;
pub(super) const INITIAL: i64 = 1000;
const TOTAL: i64 = INITIAL * ACCOUNTS as i64;
/// Largest amount moved by one transfer.
const AMOUNT_MAX: u64 = 100;

pub(super) fn account(i: u64) -> Vec<u8> {
    format!("acct{i:05}").into_bytes()
}

fn decode(v: &[u8]) -> Option<i64> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Checks the bank table as `tx` sees it, by a scan (forward or reverse) or by point
/// reads: every account present, none negative, the total intact.
pub(super) fn check_bank(tx: &Transaction<'_>, how: u64) -> Result<(), String> {
    let mut balances = Vec::with_capacity(ACCOUNTS as usize);
    let mut push = |k: &[u8], v: &[u8]| -> Result<(), String> {
        let b = decode(v).ok_or_else(|| {
            format!(
                "account {} holds {:?}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            )
        })?;
        balances.push(b);
        Ok(())
    };
    let err = |e: Error| format!("reading the bank: {e}");
    match how % 3 {
        0 => {
            for item in tx.range(BANK, b"acct".as_slice()..).map_err(err)? {
                let (k, v) = item.map_err(err)?;
                push(&k, &v)?;
            }
        }
        1 => {
            for item in tx.range_rev(BANK, ..b"acct~".as_slice()).map_err(err)? {
                let (k, v) = item.map_err(err)?;
                push(&k, &v)?;
            }
        }
        _ => {
            for i in 0..ACCOUNTS {
                let k = account(i);
                match tx.get_ref(BANK, &k).map_err(err)? {
                    Some(v) => push(&k, &v)?,
                    None => return Err(format!("account {i} is missing")),
                }
            }
        }
    }
    let total: i64 = balances.iter().sum();
    if balances.len() != ACCOUNTS as usize || total != TOTAL || balances.iter().any(|&b| b < 0) {
        return Err(format!(
            "snapshot {} ({}) saw {} accounts totalling {total} (expected {ACCOUNTS} totalling \
             {TOTAL}), min balance {:?}",
            tx.snapshot_seq(),
            ["scan", "reverse scan", "point reads"][(how % 3) as usize],
            balances.len(),
            balances.iter().min()
        ));
    }
    Ok(())
}

/// What one conflict-retrying transaction attempt ended in.
enum Attempt {
    Done,
    Retry(u64),
}

fn transfer_once(
    conn: &mut capsuledb::Connection,
    sh: &Shared,
    rng: &mut Rng,
) -> Result<Attempt, String> {
    let from = rng.below(ACCOUNTS);
    let to = (from + 1 + rng.below(ACCOUNTS - 1)) % ACCOUNTS;
    let amount = 1 + rng.below(AMOUNT_MAX) as i64;
    let level = match rng.below(8) {
        0 => Durability::Applied,
        1 => Durability::Written,
        _ => Durability::Durable,
    };
    let err = |e: Error| format!("transfer: {e}");
    let mut tx = conn.begin_with(Isolation::Serializable).map_err(err)?;
    let read = |tx: &Transaction<'_>, i: u64| -> Result<i64, String> {
        let v = tx
            .get(BANK, &account(i))
            .map_err(err)?
            .ok_or_else(|| format!("account {i} is missing"))?;
        decode(&v).ok_or_else(|| format!("account {i} holds garbage"))
    };
    let (a, b) = (read(&tx, from)?, read(&tx, to)?);
    if a < 0 || b < 0 {
        return Err(format!("negative balance read: {a}, {b}"));
    }
    if a < amount {
        return Ok(Attempt::Done);
    }
    tx.put(BANK, &account(from), (a - amount).to_string().as_bytes())
        .map_err(err)?;
    tx.put(BANK, &account(to), (b + amount).to_string().as_bytes())
        .map_err(err)?;
    match sh.commit(tx, level) {
        Ok(_) => {
            sh.transfers.fetch_add(1, Ordering::Relaxed);
            Ok(Attempt::Done)
        }
        Err(Error::Conflict { committed_seq, .. }) => {
            sh.aborts.fetch_add(1, Ordering::Relaxed);
            Ok(Attempt::Retry(committed_seq))
        }
        Err(e) => Err(err(e)),
    }
}

pub(super) fn transfer_thread(db: Database, sh: Arc<Shared>, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut conn = db.connect();
    while !sh.stopped() {
        match transfer_once(&mut conn, &sh, &mut rng) {
            Ok(Attempt::Done) => {}
            Ok(Attempt::Retry(seq)) => {
                // A retry that begins before the conflicting commit is visible would meet
                // the same conflict again.
                if let Err(e) = db.wait_for(seq, Durability::Applied) {
                    sh.violation(format!("wait_for after a conflict: {e}"));
                }
            }
            Err(what) => sh.violation(what),
        }
    }
}

/// Serializable full scans that check the total, then commit (validating the scanned
/// ranges: a conflict is an abort, not a violation).
pub(super) fn scan_thread(db: Database, sh: Arc<Shared>, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut conn = db.connect();
    while !sh.stopped() {
        let tx = match conn.begin() {
            Ok(tx) => tx,
            Err(e) => return sh.violation(format!("begin: {e}")),
        };
        if let Err(what) = check_bank(&tx, rng.below(2)) {
            return sh.violation(what);
        }
        sh.scans.fetch_add(1, Ordering::Relaxed);
        match sh.commit(tx, Durability::Applied) {
            Ok(_) => {}
            Err(Error::Conflict { .. }) => {
                sh.aborts.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => return sh.violation(format!("read-only serializable commit: {e}")),
        }
    }
}
