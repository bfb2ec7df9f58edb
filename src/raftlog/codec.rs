//! The byte layout of the Raft log's keys and values inside its two tables
//! (`format-spec/raftlog.md`, which a test holds these encoders to).
//!
//! Integers are little-endian, except log keys, which are big-endian so that the
//! table's byte order is index order.
//!
//! `<name>.log`, one key per entry:
//!
//! | Part  | Offset | Size | Type   | Meaning                        |
//! |-------|--------|------|--------|--------------------------------|
//! | key   | 0      | 8    | u64 BE | entry index                    |
//! | value | 0      | 8    | u64    | entry term                     |
//! | value | 8      | rest | bytes  | entry payload (may be empty)   |
//!
//! `<name>.meta`, key `hard_state` (exactly 25 bytes):
//!
//! | Offset | Size | Type | Meaning                                    |
//! |--------|------|------|--------------------------------------------|
//! | 0      | 8    | u64  | current term                               |
//! | 8      | 8    | u64  | commit index                               |
//! | 16     | 1    | u8   | 1 if a vote was cast, 0 if not; else error |
//! | 17     | 8    | u64  | voted-for node id (0 when byte 16 is 0)    |
//!
//! `<name>.meta`, key `purged` (exactly 16 bytes): index (u64) then term (u64) of the
//! last purged entry. Absent until the first purge.
//!
//! `<name>.meta`, keys `user/<name>`: opaque values of [`super::RaftLog::save_meta`].
//!
//! Every value is written in one transaction together with whatever it describes, so a
//! crash leaves either the old or the new value whole (the engine commits atomically).
//! Decoding checks lengths and flag bytes and returns [`Error::Corrupted`] rather than
//! guessing.

use super::{EntryId, HardState};
use crate::error::{Error, Result};

/// Bytes of the term in front of every entry's payload.
pub(super) const TERM_LEN: usize = 8;
/// Length of an encoded [`HardState`].
pub(super) const HARD_STATE_LEN: usize = 25;
/// Length of an encoded purge record.
pub(super) const PURGED_LEN: usize = 16;
/// Meta key of the hard state.
pub(super) const HARD_STATE_KEY: &[u8] = b"hard_state";
/// Meta key of the last purged entry's id.
pub(super) const PURGED_KEY: &[u8] = b"purged";
/// Prefix of the meta keys written by [`super::RaftLog::save_meta`].
pub(super) const USER_META_PREFIX: &[u8] = b"user/";

/// The table key of entry `index`.
pub(super) fn log_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The index named by a log key. Inlined into the walks that read entries, with its
/// error apart: returned through memory, the result stalled every entry's read.
#[inline]
pub(super) fn decode_log_key(key: &[u8]) -> Result<u64> {
    match <[u8; 8]>::try_from(key) {
        Ok(bytes) => Ok(u64::from_be_bytes(bytes)),
        Err(_) => Err(bad_log_key(key.len())),
    }
}

#[cold]
#[inline(never)]
fn bad_log_key(len: usize) -> Error {
    corrupted(format!("raft log key of {len} bytes, not 8"))
}

/// The stored value of an entry: its term, then its payload.
pub(super) fn entry_value(term: u64, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(TERM_LEN + data.len());
    v.extend_from_slice(&term.to_le_bytes());
    v.extend_from_slice(data);
    v
}

/// Splits a stored entry value into its term and payload (inlined as
/// [`decode_log_key`] is).
#[inline]
pub(super) fn decode_entry_value(index: u64, value: &[u8]) -> Result<(u64, &[u8])> {
    match value.split_first_chunk::<TERM_LEN>() {
        Some((term, data)) => Ok((u64::from_le_bytes(*term), data)),
        None => Err(short_entry_value(index, value.len())),
    }
}

#[cold]
#[inline(never)]
fn short_entry_value(index: u64, len: usize) -> Error {
    corrupted(format!(
        "raft log entry {index}: value of {len} bytes is shorter than its term"
    ))
}

pub(super) fn encode_hard_state(h: &HardState) -> [u8; HARD_STATE_LEN] {
    let mut out = [0u8; HARD_STATE_LEN];
    let (term, rest) = out.split_at_mut(8);
    let (commit, rest) = rest.split_at_mut(8);
    let (flag, vote) = rest.split_at_mut(1);
    term.copy_from_slice(&h.term.to_le_bytes());
    commit.copy_from_slice(&h.commit.to_le_bytes());
    flag.copy_from_slice(&[u8::from(h.vote.is_some())]);
    vote.copy_from_slice(&h.vote.unwrap_or(0).to_le_bytes());
    out
}

pub(super) fn decode_hard_state(bytes: &[u8]) -> Result<HardState> {
    let bytes: &[u8; HARD_STATE_LEN] = bytes.try_into().map_err(|_| {
        corrupted(format!(
            "raft hard state of {} bytes, not {HARD_STATE_LEN}",
            bytes.len()
        ))
    })?;
    let (term, rest) = split_u64(bytes);
    let (commit, rest) = split_u64(rest);
    let (flag, rest) = rest.split_first().unwrap_or((&2, &[]));
    let (vote, _) = split_u64(rest);
    let vote = match flag {
        0 if vote == 0 => None,
        1 => Some(vote),
        _ => return Err(corrupted(format!("raft hard state vote flag {flag}"))),
    };
    Ok(HardState { term, vote, commit })
}

pub(super) fn encode_purged(id: EntryId) -> [u8; PURGED_LEN] {
    let mut out = [0u8; PURGED_LEN];
    let (index, term) = out.split_at_mut(8);
    index.copy_from_slice(&id.index.to_le_bytes());
    term.copy_from_slice(&id.term.to_le_bytes());
    out
}

pub(super) fn decode_purged(bytes: &[u8]) -> Result<EntryId> {
    let bytes: &[u8; PURGED_LEN] = bytes.try_into().map_err(|_| {
        corrupted(format!(
            "raft purge record of {} bytes, not {PURGED_LEN}",
            bytes.len()
        ))
    })?;
    let (index, rest) = split_u64(bytes);
    let (term, _) = split_u64(rest);
    Ok(EntryId { index, term })
}

/// The meta key of a [`super::RaftLog::save_meta`] name.
pub(super) fn user_meta_key(name: &str) -> Vec<u8> {
    [USER_META_PREFIX, name.as_bytes()].concat()
}

/// Reads a little-endian u64 off the front of `bytes` (zero when too short; callers
/// check the length first).
fn split_u64(bytes: &[u8]) -> (u64, &[u8]) {
    match bytes.split_first_chunk::<8>() {
        Some((head, rest)) => (u64::from_le_bytes(*head), rest),
        None => (0, &[]),
    }
}

/// The Raft log's tables live in ordinary table values, not at a page of their own.
fn corrupted(what: String) -> Error {
    Error::corrupted(0, what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::spec_table;
    use proptest::prelude::*;

    /// `format-spec/raftlog.md`'s tables against what the encoders write.
    #[test]
    fn layout_matches_the_spec() {
        let spec = include_str!("../../format-spec/raftlog.md");
        let value = entry_value(7, b"abc");
        assert_eq!(decode_entry_value(1, &value).unwrap(), (7, &b"abc"[..]));
        assert_eq!(&value[..TERM_LEN], &7u64.to_le_bytes());
        spec_table::assert_layout(
            &spec_table::rows(spec, "Entry value"),
            &[("term", 0, TERM_LEN), ("payload", TERM_LEN, 0)],
        );
        let h = encode_hard_state(&HardState {
            term: 3,
            commit: 5,
            vote: Some(9),
        });
        assert_eq!(h.len(), HARD_STATE_LEN);
        assert_eq!((h[0], h[8], h[16], h[17]), (3, 5, 1, 9));
        spec_table::assert_layout(
            &spec_table::rows(spec, "Hard state"),
            &[
                ("term", 0, 8),
                ("commit", 8, 8),
                ("voted", 16, 1),
                ("vote", 17, 8),
            ],
        );
        let p = encode_purged(EntryId { index: 4, term: 2 });
        assert_eq!((p.len(), p[0], p[8]), (PURGED_LEN, 4, 2));
        spec_table::assert_layout(
            &spec_table::rows(spec, "Purge record"),
            &[("index", 0, 8), ("term", 8, 8)],
        );
        assert!(spec.contains("Key `hard_state`") && spec.contains("Key `purged`"));
        assert_eq!(
            (HARD_STATE_KEY, PURGED_KEY),
            (&b"hard_state"[..], &b"purged"[..])
        );
        assert!(spec.contains("Keys `user/<n>`") && USER_META_PREFIX == b"user/");
    }

    proptest! {
        #[test]
        fn hard_state_round_trips(term: u64, commit: u64, vote: Option<u64>) {
            let h = HardState { term, vote, commit };
            let bytes = encode_hard_state(&h);
            prop_assert_eq!(decode_hard_state(&bytes).unwrap(), h);
        }

        #[test]
        fn purged_round_trips(index: u64, term: u64) {
            let id = EntryId { index, term };
            prop_assert_eq!(decode_purged(&encode_purged(id)).unwrap(), id);
        }

        #[test]
        fn entry_value_round_trips(index: u64, term: u64, data: Vec<u8>) {
            let v = entry_value(term, &data);
            let (t, d) = decode_entry_value(index, &v).unwrap();
            prop_assert_eq!(t, term);
            prop_assert_eq!(d, &data[..]);
            prop_assert_eq!(decode_log_key(&log_key(index)).unwrap(), index);
        }

        /// Arbitrary bytes never panic a decoder, and what one accepts re-encodes to
        /// exactly those bytes (the decoders are canonical: no two encodings of one
        /// value, so a damaged record cannot pass for a whole one).
        #[test]
        fn decoding_arbitrary_bytes_is_canonical(
            bytes in prop::collection::vec(any::<u8>(), 0..40)
        ) {
            if let Ok(h) = decode_hard_state(&bytes) {
                prop_assert_eq!(&encode_hard_state(&h)[..], &bytes[..]);
            }
            if let Ok(id) = decode_purged(&bytes) {
                prop_assert_eq!(&encode_purged(id)[..], &bytes[..]);
            }
            if let Ok((term, data)) = decode_entry_value(0, &bytes) {
                prop_assert_eq!(entry_value(term, data), bytes.clone());
            }
            if let Ok(index) = decode_log_key(&bytes) {
                prop_assert_eq!(&log_key(index)[..], &bytes[..]);
            }
        }
    }

    #[test]
    fn layout_matches_the_table() {
        let h = HardState {
            term: 0x0102,
            vote: Some(7),
            commit: 0x0304,
        };
        let b = encode_hard_state(&h);
        assert_eq!(b.len(), HARD_STATE_LEN);
        assert_eq!(&b[0..8], &0x0102u64.to_le_bytes());
        assert_eq!(&b[8..16], &0x0304u64.to_le_bytes());
        assert_eq!(b[16], 1);
        assert_eq!(&b[17..25], &7u64.to_le_bytes());
        assert_eq!(log_key(1), [0, 0, 0, 0, 0, 0, 0, 1]);
        assert!(log_key(255) < log_key(256), "keys sort in index order");
    }

    #[test]
    fn bad_bytes_are_typed_errors() {
        let mut b = encode_hard_state(&HardState::default());
        b[16] = 2;
        assert!(matches!(
            decode_hard_state(&b),
            Err(Error::Corrupted { .. })
        ));
        assert!(matches!(
            decode_hard_state(&b[..24]),
            Err(Error::Corrupted { .. })
        ));
        assert!(matches!(
            decode_entry_value(3, &[1, 2, 3]),
            Err(Error::Corrupted { .. })
        ));
        assert!(matches!(
            decode_purged(&[0; 15]),
            Err(Error::Corrupted { .. })
        ));
    }
}
