//! The `CommitProof` record (`format-spec/log.md`).

use super::checksum;
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `PRF1`.
pub const PROOF_MAGIC: u32 = 0x3146_5250;
/// Length of a proof record.
pub const PROOF_LEN: usize = 48;

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy)]
#[repr(C)]
struct RawProof {
    checksum: U32,
    magic: U32,
    seq: U64,
    snapshot: U64,
    capsule_offset: U64,
    capsule_len: U32,
    capsule_checksum: U32,
    write_digest: U32,
    entry_count: U32,
}

const _: () = assert!(size_of::<RawProof>() == PROOF_LEN);

/// A commit proof: binds a sequence number to a capsule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proof {
    /// The commit sequence number.
    pub seq: u64,
    /// The transaction's snapshot.
    pub snapshot: u64,
    /// File offset of the capsule.
    pub capsule_offset: u64,
    /// The capsule's length.
    pub capsule_len: u32,
    /// The capsule's checksum.
    pub capsule_checksum: u32,
    /// The write-set digest.
    pub write_digest: u32,
    /// The capsule's entry count.
    pub entry_count: u32,
}

impl Proof {
    /// Encodes the proof; the checksum is bytes `0..4` of the result.
    pub fn encode(&self) -> [u8; PROOF_LEN] {
        let mut raw = RawProof {
            checksum: U32::new(0),
            magic: U32::new(PROOF_MAGIC),
            seq: U64::new(self.seq),
            snapshot: U64::new(self.snapshot),
            capsule_offset: U64::new(self.capsule_offset),
            capsule_len: U32::new(self.capsule_len),
            capsule_checksum: U32::new(self.capsule_checksum),
            write_digest: U32::new(self.write_digest),
            entry_count: U32::new(self.entry_count),
        };
        raw.checksum = U32::new(checksum(&[raw.as_bytes().get(4..).unwrap_or(&[])]));
        let mut out = [0u8; PROOF_LEN];
        out.copy_from_slice(raw.as_bytes());
        out
    }

    /// The checksum an encoded proof carries.
    pub fn checksum_of(encoded: &[u8; PROOF_LEN]) -> u32 {
        u32::from_le_bytes([encoded[0], encoded[1], encoded[2], encoded[3]])
    }

    /// Decodes and verifies a proof; returns it with its stored checksum.
    pub fn decode(bytes: &[u8]) -> Result<(Proof, u32), &'static str> {
        let b = bytes.get(..PROOF_LEN).ok_or("proof cut short")?;
        let raw = RawProof::read_from_bytes(b).map_err(|_| "proof cut short")?;
        if raw.magic.get() != PROOF_MAGIC {
            return Err("proof magic does not match");
        }
        if checksum(&[b.get(4..).unwrap_or(&[])]) != raw.checksum.get() {
            return Err("proof checksum mismatch");
        }
        Ok((
            Proof {
                seq: raw.seq.get(),
                snapshot: raw.snapshot.get(),
                capsule_offset: raw.capsule_offset.get(),
                capsule_len: raw.capsule_len.get(),
                capsule_checksum: raw.capsule_checksum.get(),
                write_digest: raw.write_digest.get(),
                entry_count: raw.entry_count.get(),
            },
            raw.checksum.get(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::spec_table;
    use proptest::prelude::*;
    use std::mem::offset_of;

    #[test]
    fn offsets_match_spec() {
        let spec = spec_table::rows(include_str!("../../format-spec/log.md"), "Proof record");
        let code = [
            ("checksum", offset_of!(RawProof, checksum), 4),
            ("magic", offset_of!(RawProof, magic), 4),
            ("seq", offset_of!(RawProof, seq), 8),
            ("snapshot", offset_of!(RawProof, snapshot), 8),
            ("capsule_offset", offset_of!(RawProof, capsule_offset), 8),
            ("capsule_len", offset_of!(RawProof, capsule_len), 4),
            (
                "capsule_checksum",
                offset_of!(RawProof, capsule_checksum),
                4,
            ),
            ("write_digest", offset_of!(RawProof, write_digest), 4),
            ("entry_count", offset_of!(RawProof, entry_count), 4),
        ];
        spec_table::assert_layout(&spec, &code);
        assert_eq!(&PROOF_MAGIC.to_le_bytes(), b"PRF1");
    }

    proptest! {
        #[test]
        fn round_trip(a in any::<(u64, u64, u64, u32, u32, u32, u32)>()) {
            let p = Proof { seq: a.0, snapshot: a.1, capsule_offset: a.2, capsule_len: a.3, capsule_checksum: a.4, write_digest: a.5, entry_count: a.6 };
            let enc = p.encode();
            prop_assert_eq!(Proof::decode(&enc), Ok((p, Proof::checksum_of(&enc))));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = Proof::decode(&bytes);
        }

        #[test]
        fn any_bit_flip_is_caught(seq in any::<u64>(), bit in 0usize..PROOF_LEN * 8) {
            let p = Proof { seq, snapshot: 1, capsule_offset: 2, capsule_len: 3, capsule_checksum: 4, write_digest: 5, entry_count: 6 };
            let mut enc = p.encode();
            enc[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(Proof::decode(&enc).is_err());
        }
    }
}
