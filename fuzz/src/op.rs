//! Operation codes of [`fuzz_api_model`](super::fuzz_api_model) (an op byte modulo
//! [`OP_COUNT`](super::OP_COUNT)); the bytes after each are its arguments, as read by
//! `run_session` with the readers at the end of this file.

use super::input::Input;
use super::model::Key;
use capsuledb::MAX_KEY_LEN;
use std::ops::Bound;

/// `[iso]`: rolls back any open transaction and begins one (Snapshot if iso is odd).
pub const BEGIN: u8 = 0;
/// `[t]`: create table `t % 3`.
pub const CREATE: u8 = 1;
/// `[t]`: drop table.
pub const DROP: u8 = 2;
/// `[t, key.., value..]`: put.
pub const PUT: u8 = 3;
/// `[t, key..]`: delete.
pub const DELETE: u8 = 4;
/// `[t, key..]`: get (and get_ref).
pub const GET: u8 = 5;
/// `[t, lo.., hi.., pattern]`: a range read from both ends as `pattern`'s bits say.
pub const RANGE: u8 = 6;
/// `[]`: list tables, count and scan every table, read every key back.
pub const CHECK_ALL: u8 = 7;
/// `[level]`: commit at `Applied`, `Written`, `Durable` (level % 3).
pub const COMMIT: u8 = 8;
/// `[]`: roll back.
pub const ROLLBACK: u8 = 9;
/// `[]`: `Database::checkpoint`.
pub const CHECKPOINT: u8 = 10;
/// `[]`: `Database::compact`.
pub const COMPACT: u8 = 11;
/// `[kind, seed x8]`: crash (kind % 3: process crash, power loss keeping a seeded
/// subset of unsynced writes, power loss keeping none) and reopen the image.
pub const CRASH: u8 = 12;
/// `[]`: close, lose everything unsynced (nothing may be lost), reopen.
pub const REOPEN: u8 = 13;
/// `[]`: `check_integrity()` must find no problem.
pub const INTEGRITY: u8 = 14;
/// `[]`: open a `begin_read` snapshot (dropping the oldest past the limit).
pub const OPEN_READER: u8 = 15;
/// `[i]`: check everything snapshot `i` sees against its model.
pub const CHECK_READER: u8 = 16;
/// `[n]`: the power goes out after `n % 64` more storage operations; the first
/// error that follows ends the session in a crash.
pub const POWER_CUT: u8 = 17;
/// `[]`: `collect_garbage`.
pub const GC: u8 = 18;
/// Number of operation codes.
pub const COUNT: u8 = 19;

pub(super) fn read_key(input: &mut Input<'_>) -> Key {
    let l = input.u8();
    match l {
        // Short keys from a four-letter alphabet, so they collide.
        0..=239 => {
            let n = usize::from(l % 4);
            (0..n).map(|_| b'a' + input.u8() % 4).collect()
        }
        // Long keys around the limit (some over it).
        240..=247 => {
            let fill = input.u8();
            vec![fill; MAX_KEY_LEN - 4 + usize::from(l - 240)]
        }
        // Raw bytes.
        _ => {
            let n = usize::from(input.u8() % 16);
            input.bytes(n)
        }
    }
}

pub(super) fn read_value(input: &mut Input<'_>) -> Vec<u8> {
    let l = input.u8();
    if l < 224 {
        let n = usize::from(l % 8);
        input.bytes(n)
    } else {
        // Large values: inline up to a quarter page, overflow runs beyond.
        let n = usize::from(l - 223) * 700;
        let seed = input.u8();
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }
}

pub(super) fn read_bound(input: &mut Input<'_>) -> Bound<Key> {
    match input.u8() % 3 {
        0 => Bound::Unbounded,
        1 => Bound::Included(read_key(input)),
        _ => Bound::Excluded(read_key(input)),
    }
}
