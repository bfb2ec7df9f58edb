//! The recorded history: what each transaction read (and which writer's version it
//! saw), wrote and ended in. Every value written names its writer and its key, so
//! every read says which committed version it saw.

use capsuledb::Isolation;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Bound;

/// The tables of every workload, indexed by [`Tbl`].
pub const TABLES: [&str; 3] = ["hot", "side", "wide"];

/// Writer id of the setup transaction that creates the tables and the first values.
pub const SETUP_UID: Uid = 0;

/// A table, as an index into [`TABLES`].
pub type Tbl = usize;
/// A key.
pub type Key = Vec<u8>;
/// A transaction's writer id, stored in every value it writes.
pub type Uid = u64;

/// The `i`-th key of a table.
pub fn key_name(i: u64) -> Key {
    format!("k{i:02}").into_bytes()
}

/// A value names its writer and its key: 8 bytes of writer id, then the key.
pub fn encode_value(uid: Uid, key: &[u8]) -> Vec<u8> {
    let mut v = uid.to_le_bytes().to_vec();
    v.extend_from_slice(key);
    v
}

/// The writer id in a value read under `key`; fails the test if the value was not
/// written for that key.
pub fn decode_value(seed: u64, v: &[u8], key: &[u8]) -> Uid {
    let (head, tail) = v.split_at(8.min(v.len()));
    assert!(
        head.len() == 8 && tail == key,
        "seed {seed:#x}: key {} holds a value that is not one written for it: {v:?}",
        String::from_utf8_lossy(key)
    );
    u64::from_le_bytes(head.try_into().unwrap())
}

/// Whether `k` lies between the bounds.
pub fn in_range(lo: &Bound<Key>, hi: &Bound<Key>, k: &[u8]) -> bool {
    std::ops::RangeBounds::<[u8]>::contains(
        &(
            lo.as_ref().map(Vec::as_slice),
            hi.as_ref().map(Vec::as_slice),
        ),
        k,
    )
}

/// How a transaction began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `begin()` / `begin_with(iso)`.
    ReadWrite,
    /// `begin_read()`: a plain snapshot, not part of the serializability graph.
    Reader,
}

/// How a transaction ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    Committed { seq: u64 },
    Aborted { table: String, key: Key, seq: u64 },
    RolledBack,
}

/// How a scan consumed its iterator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Forward,
    Reverse,
    /// Alternating `next` and `next_back`; recorded in ascending order.
    BothEnds,
}

/// One read of a transaction and what it returned.
#[derive(Clone, Debug)]
pub enum Read {
    Point {
        tbl: Tbl,
        key: Key,
        /// The transaction's own write of the key when it read, if any.
        own: Option<Option<Uid>>,
        got: Option<Uid>,
    },
    Scan {
        tbl: Tbl,
        lo: Bound<Key>,
        hi: Bound<Key>,
        dir: Dir,
        /// The transaction's own writes inside the range when it scanned.
        own: Vec<(Key, Option<Uid>)>,
        got: Vec<(Key, Uid)>,
    },
}

/// One transaction as recorded by its thread.
#[derive(Clone, Debug)]
pub struct Txn {
    pub uid: Uid,
    pub thread: usize,
    pub kind: Kind,
    pub snapshot: u64,
    /// `stats().tip_seq` right before and right after `commit` was called.
    pub tip_before: u64,
    pub tip_after: u64,
    /// Ticks of the workload's shared clock, taken right before `begin` and right after
    /// a successful `commit_with` returned (0: not recorded, as in hand-made histories).
    /// A commit acknowledged before another transaction began precedes it in real time.
    pub began_at: u64,
    pub acked_at: u64,
    pub reads: Vec<Read>,
    pub writes: BTreeMap<(Tbl, Key), Option<Uid>>,
    pub outcome: Outcome,
}

impl Txn {
    pub fn committed_seq(&self) -> Option<u64> {
        match self.outcome {
            Outcome::Committed { seq } => Some(seq),
            _ => None,
        }
    }

    pub fn describe(&self) -> String {
        let mut s = format!(
            "T{:#x} (thread {}, {:?}, snapshot {}, {:?}, tip {}..{})",
            self.uid,
            self.thread,
            self.kind,
            self.snapshot,
            self.outcome,
            self.tip_before,
            self.tip_after
        );
        for r in &self.reads {
            match r {
                Read::Point { tbl, key, own, got } => {
                    let _ = write!(
                        s,
                        "\n    get {}:{} own={own:?} -> {got:?}",
                        TABLES[*tbl],
                        String::from_utf8_lossy(key)
                    );
                }
                Read::Scan {
                    tbl,
                    lo,
                    hi,
                    dir,
                    own,
                    got,
                } => {
                    let show = |b: &Bound<Key>| match b {
                        Bound::Included(k) => format!("[{}", String::from_utf8_lossy(k)),
                        Bound::Excluded(k) => format!("({}", String::from_utf8_lossy(k)),
                        Bound::Unbounded => "*".to_string(),
                    };
                    let got: Vec<String> = got
                        .iter()
                        .map(|(k, u)| format!("{}={u:#x}", String::from_utf8_lossy(k)))
                        .collect();
                    let _ = write!(
                        s,
                        "\n    scan {} {} .. {} {dir:?} own={own:?} -> {got:?}",
                        TABLES[*tbl],
                        show(lo),
                        show(hi),
                    );
                }
            }
        }
        for ((tbl, key), v) in &self.writes {
            let _ = write!(
                s,
                "\n    write {}:{} = {v:?}",
                TABLES[*tbl],
                String::from_utf8_lossy(key)
            );
        }
        s
    }
}

/// One run: every transaction of every thread, and the state at the end.
pub struct History {
    pub seed: u64,
    pub profile: &'static str,
    pub iso: Isolation,
    pub txns: Vec<Txn>,
    pub final_tip: u64,
    /// What a `begin_read` at the end saw, per table: key -> writer.
    pub final_state: Vec<Vec<(Key, Uid)>>,
    /// The engine's own counters: (write conflicts, SSI conflicts).
    pub engine_refusals: (u64, u64),
}
