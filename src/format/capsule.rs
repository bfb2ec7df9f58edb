//! The capsule record: one transaction's write set (`format-spec/log.md`).

use super::checksum;
use crate::types::{CATALOG_TABLE, MAX_KEY_LEN, MAX_VALUE_LEN, TableId, WriteSet};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `CAP1`.
pub const CAPSULE_MAGIC: u32 = 0x3150_4143;
/// Length of the capsule header.
pub const CAPSULE_HEADER_LEN: usize = 32;
/// Length of an entry's fixed head.
pub const ENTRY_HEAD_LEN: usize = 20;

const OP_PUT: u8 = 1;
const OP_DELETE: u8 = 2;
const OP_DROP_TABLE: u8 = 3;

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy)]
#[repr(C)]
struct RawCapsuleHeader {
    checksum: U32,
    magic: U32,
    total_len: U32,
    entry_count: U32,
    snapshot: U64,
    reserved: [u8; 8],
}

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy)]
#[repr(C)]
struct RawEntryHead {
    op: u8,
    reserved: [u8; 3],
    table: U64,
    key_len: U32,
    value_len: U32,
}

const _: () = assert!(size_of::<RawCapsuleHeader>() == CAPSULE_HEADER_LEN);
const _: () = assert!(size_of::<RawEntryHead>() == ENTRY_HEAD_LEN);

/// An encoded capsule with the facts its proof repeats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedCapsule {
    /// The record's bytes.
    pub bytes: Vec<u8>,
    /// Its `checksum` field.
    pub checksum: u32,
    /// Its `entry_count` field.
    pub entry_count: u32,
    /// The write-set digest (see the spec).
    pub write_digest: u32,
}

/// A decoded capsule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capsule {
    /// The snapshot the transaction read.
    pub snapshot: u64,
    /// Puts and tombstones per table.
    pub writes: WriteSet,
    /// Tables whose data the commit drops.
    pub dropped_tables: Vec<TableId>,
    /// Entry count.
    pub entry_count: u32,
    /// Write-set digest recomputed from the entries.
    pub write_digest: u32,
}

/// Why a capsule does not decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapsuleFault(pub String);

fn digest_entry(h: &mut crc32fast::Hasher, op: u8, table: TableId, key: &[u8]) {
    h.update(&[op]);
    h.update(&table.to_le_bytes());
    h.update(&(key.len() as u32).to_le_bytes());
    h.update(key);
}

/// Encodes a write set. Returns `None` when it cannot fit a `u32` length.
pub fn encode_capsule(
    snapshot: u64,
    writes: &WriteSet,
    dropped: &[TableId],
) -> Option<EncodedCapsule> {
    let mut len = CAPSULE_HEADER_LEN;
    let mut count = 0u32;
    for keys in writes.values() {
        for (k, v) in keys {
            len += ENTRY_HEAD_LEN + k.len() + v.as_ref().map_or(0, |v| v.len());
            count = count.checked_add(1)?;
        }
    }
    len += ENTRY_HEAD_LEN * dropped.len();
    count = count.checked_add(u32::try_from(dropped.len()).ok()?)?;
    let total_len = u32::try_from(len).ok()?;
    let mut bytes = Vec::with_capacity(len);
    bytes.extend_from_slice(&[0u8; CAPSULE_HEADER_LEN]);
    let mut digest = crc32fast::Hasher::new();
    let mut push = |bytes: &mut Vec<u8>, op: u8, table: TableId, key: &[u8], value: &[u8]| {
        let head = RawEntryHead {
            op,
            reserved: [0; 3],
            table: U64::new(table),
            key_len: U32::new(key.len() as u32),
            value_len: U32::new(value.len() as u32),
        };
        bytes.extend_from_slice(head.as_bytes());
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(value);
        digest_entry(&mut digest, op, table, key);
    };
    for (&table, keys) in writes {
        for (k, v) in keys {
            match v {
                Some(v) => push(&mut bytes, OP_PUT, table, k, v),
                None => push(&mut bytes, OP_DELETE, table, k, &[]),
            }
        }
    }
    for &table in dropped {
        push(&mut bytes, OP_DROP_TABLE, table, &[], &[]);
    }
    let write_digest = digest.finalize();
    let header = RawCapsuleHeader {
        checksum: U32::new(0),
        magic: U32::new(CAPSULE_MAGIC),
        total_len: U32::new(total_len),
        entry_count: U32::new(count),
        snapshot: U64::new(snapshot),
        reserved: [0; 8],
    };
    bytes
        .get_mut(..CAPSULE_HEADER_LEN)?
        .copy_from_slice(header.as_bytes());
    let sum = checksum(&[bytes.get(4..)?]);
    bytes.get_mut(..4)?.copy_from_slice(&sum.to_le_bytes());
    Some(EncodedCapsule {
        bytes,
        checksum: sum,
        entry_count: count,
        write_digest,
    })
}

/// Reads the `total_len` a capsule header claims, if the header is there.
pub fn capsule_total_len(bytes: &[u8]) -> Option<u32> {
    let head = RawCapsuleHeader::read_from_bytes(bytes.get(..CAPSULE_HEADER_LEN)?).ok()?;
    Some(head.total_len.get())
}

/// Decodes and verifies a capsule record occupying exactly `bytes`.
pub fn decode_capsule(bytes: &[u8]) -> Result<Capsule, CapsuleFault> {
    let fault = |s: &str| CapsuleFault(s.to_string());
    let head_bytes = bytes
        .get(..CAPSULE_HEADER_LEN)
        .ok_or_else(|| fault("capsule cut short"))?;
    let head =
        RawCapsuleHeader::read_from_bytes(head_bytes).map_err(|_| fault("capsule cut short"))?;
    if head.magic.get() != CAPSULE_MAGIC {
        return Err(fault("capsule magic does not match"));
    }
    if head.total_len.get() as usize != bytes.len() {
        return Err(fault("capsule length does not match"));
    }
    let computed = checksum(&[bytes.get(4..).unwrap_or(&[])]);
    if computed != head.checksum.get() {
        return Err(CapsuleFault(format!(
            "capsule checksum mismatch (stored {:#010x}, computed {computed:#010x})",
            head.checksum.get()
        )));
    }
    if head.reserved != [0; 8] {
        return Err(fault("capsule reserved bytes are not zero"));
    }
    let mut capsule = Capsule {
        snapshot: head.snapshot.get(),
        entry_count: head.entry_count.get(),
        ..Capsule::default()
    };
    let mut digest = crc32fast::Hasher::new();
    let mut at = CAPSULE_HEADER_LEN;
    for _ in 0..head.entry_count.get() {
        let e = bytes
            .get(at..at + ENTRY_HEAD_LEN)
            .and_then(|b| RawEntryHead::read_from_bytes(b).ok())
            .ok_or_else(|| fault("capsule entry runs past the record"))?;
        if e.reserved != [0; 3] {
            return Err(fault("capsule entry reserved bytes are not zero"));
        }
        let key_len = e.key_len.get() as usize;
        let value_len = e.value_len.get() as usize;
        if key_len > MAX_KEY_LEN || value_len > MAX_VALUE_LEN {
            return Err(fault("capsule entry key or value longer than the limits"));
        }
        let key_start = at + ENTRY_HEAD_LEN;
        let value_start = key_start + key_len;
        let end = value_start + value_len;
        let key = bytes
            .get(key_start..value_start)
            .ok_or_else(|| fault("capsule entry runs past the record"))?;
        let value = bytes
            .get(value_start..end)
            .ok_or_else(|| fault("capsule entry runs past the record"))?;
        let table = e.table.get();
        digest_entry(&mut digest, e.op, table, key);
        match e.op {
            OP_PUT => {
                capsule
                    .writes
                    .entry(table)
                    .or_default()
                    .insert(key, Some(value))
                    .map_err(|_| fault("capsule writes more than a table's write buffer holds"))?;
            }
            OP_DELETE if value_len == 0 => {
                capsule
                    .writes
                    .entry(table)
                    .or_default()
                    .insert(key, None)
                    .map_err(|_| fault("capsule writes more than a table's write buffer holds"))?;
            }
            OP_DROP_TABLE if key_len == 0 && value_len == 0 && table != CATALOG_TABLE => {
                capsule.dropped_tables.push(table);
            }
            OP_DELETE => {
                return Err(CapsuleFault(format!(
                    "capsule delete entry with a value of {value_len} bytes"
                )));
            }
            OP_DROP_TABLE if table == CATALOG_TABLE => {
                return Err(CapsuleFault("capsule entry drops the catalog".into()));
            }
            OP_DROP_TABLE => {
                return Err(CapsuleFault(format!(
                    "capsule drop entry with a key of {key_len} bytes and a value of \
                     {value_len} bytes"
                )));
            }
            _ => {
                return Err(CapsuleFault(format!(
                    "capsule entry has invalid op {}",
                    e.op
                )));
            }
        }
        at = end;
    }
    if at != bytes.len() {
        return Err(fault("capsule has bytes after its last entry"));
    }
    capsule.write_digest = digest.finalize();
    Ok(capsule)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::spec_table;
    use proptest::prelude::*;
    use std::mem::offset_of;

    #[test]
    fn offsets_match_spec() {
        let md = include_str!("../../format-spec/log.md");
        let spec = spec_table::rows(md, "Capsule header");
        let code = [
            ("checksum", offset_of!(RawCapsuleHeader, checksum), 4),
            ("magic", offset_of!(RawCapsuleHeader, magic), 4),
            ("total_len", offset_of!(RawCapsuleHeader, total_len), 4),
            ("entry_count", offset_of!(RawCapsuleHeader, entry_count), 4),
            ("snapshot", offset_of!(RawCapsuleHeader, snapshot), 8),
            ("reserved", offset_of!(RawCapsuleHeader, reserved), 8),
        ];
        spec_table::assert_layout(&spec, &code);
        let spec = spec_table::rows(md, "Capsule entry");
        let code = [
            ("op", offset_of!(RawEntryHead, op), 1),
            ("reserved", offset_of!(RawEntryHead, reserved), 3),
            ("table", offset_of!(RawEntryHead, table), 8),
            ("key_len", offset_of!(RawEntryHead, key_len), 4),
            ("value_len", offset_of!(RawEntryHead, value_len), 4),
        ];
        spec_table::assert_layout(&spec, &code);
        assert_eq!(&CAPSULE_MAGIC.to_le_bytes(), b"CAP1");
    }

    /// A capsule of `entries` (op, table, key, value), its header and checksum right.
    fn raw_capsule(entries: &[(u8, u64, &[u8], &[u8])]) -> Vec<u8> {
        let mut b = vec![0u8; CAPSULE_HEADER_LEN];
        for &(op, table, key, value) in entries {
            b.extend([op, 0, 0, 0]);
            b.extend(table.to_le_bytes());
            b.extend((key.len() as u32).to_le_bytes());
            b.extend((value.len() as u32).to_le_bytes());
            b.extend(key);
            b.extend(value);
        }
        let total = b.len() as u32;
        b[4..8].copy_from_slice(&CAPSULE_MAGIC.to_le_bytes());
        b[8..12].copy_from_slice(&total.to_le_bytes());
        b[12..16].copy_from_slice(&(entries.len() as u32).to_le_bytes());
        let sum = checksum(&[&b[4..]]);
        b[..4].copy_from_slice(&sum.to_le_bytes());
        b
    }

    /// A valid op whose lengths or table break its rule is named as that, not as an
    /// invalid op (ops 2 and 3 were "invalid op 2" then).
    #[test]
    fn an_entry_breaking_its_ops_rule_is_named() {
        assert!(decode_capsule(&raw_capsule(&[(OP_DELETE, 1, b"k", b"")])).is_ok());
        let named = |entries: &[(u8, u64, &[u8], &[u8])]| {
            decode_capsule(&raw_capsule(entries)).unwrap_err().0
        };
        assert_eq!(
            named(&[(OP_DELETE, 1, b"k", b"v")]),
            "capsule delete entry with a value of 1 bytes"
        );
        assert_eq!(
            named(&[(OP_DROP_TABLE, CATALOG_TABLE, b"", b"")]),
            "capsule entry drops the catalog"
        );
        assert!(
            named(&[(OP_DROP_TABLE, 2, b"k", b"")])
                .starts_with("capsule drop entry with a key of 1 bytes")
        );
        assert_eq!(
            named(&[(9, 1, b"k", b"")]),
            "capsule entry has invalid op 9"
        );
    }

    fn any_writes() -> impl Strategy<Value = (WriteSet, Vec<TableId>)> {
        (
            proptest::collection::vec(
                (
                    0u64..4,
                    proptest::collection::vec(any::<u8>(), 0..20),
                    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..50)),
                ),
                0..20,
            ),
            proptest::collection::vec(1u64..10, 0..3),
        )
            .prop_map(|(entries, dropped)| {
                let mut w = WriteSet::new();
                for (t, k, v) in entries {
                    w.entry(t).or_default().insert(&k, v.as_deref()).unwrap();
                }
                (w, dropped)
            })
    }

    proptest! {
        #[test]
        fn round_trip((writes, dropped) in any_writes(), snapshot in any::<u64>()) {
            let enc = encode_capsule(snapshot, &writes, &dropped).unwrap();
            let dec = decode_capsule(&enc.bytes).unwrap();
            prop_assert_eq!(dec.snapshot, snapshot);
            let mut expected = writes.clone();
            expected.retain(|_, m| !m.is_empty());
            prop_assert_eq!(&dec.writes, &expected);
            prop_assert_eq!(&dec.dropped_tables, &dropped);
            prop_assert_eq!(dec.entry_count, enc.entry_count);
            prop_assert_eq!(dec.write_digest, enc.write_digest);
            prop_assert_eq!(capsule_total_len(&enc.bytes), Some(enc.bytes.len() as u32));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode_capsule(&bytes);
            let _ = capsule_total_len(&bytes);
        }

        #[test]
        fn any_bit_flip_is_caught((writes, dropped) in any_writes(), bit in any::<usize>()) {
            let mut enc = encode_capsule(1, &writes, &dropped).unwrap();
            let bit = bit % (enc.bytes.len() * 8);
            enc.bytes[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode_capsule(&enc.bytes).is_err());
        }
    }
}
