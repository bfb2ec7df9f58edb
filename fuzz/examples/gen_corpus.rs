//! Writes the seed corpus under `fuzz/corpus/<target>/`:
//!
//! ```sh
//! cd fuzz && cargo run --release --example gen_corpus
//! ```
//!
//! `open_bytes`: small database files the engine wrote (log only, checkpointed,
//! both, 8 KiB pages, compacted, a torn power-loss image, an empty and a cut-short
//! file). `decode`: one valid instance of each structure for each decode mode, taken
//! from those files. `api_model`: operation sequences covering each operation, every
//! crash kind, power cuts and the option variants. `history`: history leaves of the
//! history sample rewritten with their own bytes, and tree pages left whole. Output is
//! deterministic.

use capsuledb::format::{
    CAPSULE_MAGIC, HEADER_COPY_OFFSETS, HEADER_LEN, MARKER_LEN, PROOF_LEN, PROOF_MAGIC, PageKind,
    capsule_total_len, decode_capsule, encode_list, first_data_page, seal_page,
};
use capsuledb::storage::SimStorage;
use capsuledb::{Durability, Options};
use capsuledb_fuzz::{
    DECODE_CAPSULE, DECODE_CAPSULE_IN_DB, DECODE_HEADER, DECODE_HEADER_FIXED, DECODE_LOG_IN_DB,
    DECODE_MARKER, DECODE_PAGE, DECODE_PAGE_FIXED, DECODE_PROOF, DECODE_TREE_IN_DB,
    DECODE_VERSION_LIST, history_database, op, sample_database, trim_database,
};
use std::path::Path;
use std::sync::Arc;

const PS: usize = 4096;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("create corpus dir");
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// A database left by a power loss in the middle of a run of commits.
fn torn_database() -> Vec<u8> {
    let sim = SimStorage::new();
    let db = Options::new()
        .random_seed(3)
        .open_storage(Arc::new(sim.clone()))
        .expect("open");
    let mut conn = db.connect();
    let mut tx = conn.begin().expect("begin");
    tx.create_table("t").expect("create");
    tx.commit().expect("commit");
    for i in 0..12u32 {
        let mut tx = conn.begin().expect("begin");
        tx.put("t", &i.to_be_bytes(), &vec![i as u8; 100 + 90 * i as usize])
            .expect("put");
        let level = if i % 3 == 0 {
            Durability::Durable
        } else {
            Durability::Applied
        };
        tx.commit_with(level).expect("commit");
    }
    let image = sim.fork();
    image.crash(11);
    drop(conn);
    drop(db);
    trim_database(image.live_bytes())
}

fn fresh_database() -> Vec<u8> {
    let sim = SimStorage::new();
    let db = Options::new()
        .random_seed(5)
        .open_storage(Arc::new(sim.clone()))
        .expect("open");
    db.close().expect("close");
    trim_database(sim.live_bytes())
}

fn compacted_database() -> Vec<u8> {
    let sim = SimStorage::from_bytes(sample_database(PS as u32, true, true));
    let db = Options::new()
        .random_seed(5)
        .open_storage(Arc::new(sim.clone()))
        .expect("open");
    db.compact().expect("compact");
    db.close().expect("close");
    trim_database(sim.live_bytes())
}

fn open_bytes_seeds() -> Vec<(String, Vec<u8>)> {
    let mixed = sample_database(PS as u32, true, true);
    let mut seeds = vec![
        ("empty".to_string(), Vec::new()),
        ("fresh".into(), fresh_database()),
        ("log_only".into(), sample_database(PS as u32, false, true)),
        (
            "checkpointed".into(),
            sample_database(PS as u32, true, false),
        ),
        ("checkpointed_and_log".into(), mixed.clone()),
        ("page_8k".into(), sample_database(8192, true, true)),
        ("compacted".into(), compacted_database()),
        ("torn_power_loss".into(), torn_database()),
        ("header_region_only".into(), mixed[..8192].to_vec()),
    ];
    // Copy A damaged: the open must fall back to copy B.
    let mut b_only = mixed.clone();
    b_only[20] ^= 1;
    seeds.push(("header_a_damaged".into(), b_only));
    // A file of an older writer, with compact leaves (kind 5) and an overflow run (kind
    // 6), which no writer of today makes and every reader still reads: the fixture
    // keeps the first 86,016 bytes of a 1,064,960-byte file, the rest zeros.
    let mut v3 = include_bytes!("../../tests/fixtures/v3-leaves.db").to_vec();
    v3.resize(1_064_960, 0);
    seeds.push(("v3_leaves".into(), v3));
    seeds
}

fn decode_seeds(db: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let with = |mode: u8, body: &[u8]| {
        let mut v = vec![mode];
        v.extend_from_slice(body);
        v
    };
    for (copy, &offset) in HEADER_COPY_OFFSETS.iter().enumerate() {
        let h = &db[offset as usize..offset as usize + HEADER_LEN];
        seeds.push((format!("header_copy{copy}"), with(DECODE_HEADER, h)));
        seeds.push((
            format!("header_copy{copy}_fixed"),
            with(DECODE_HEADER_FIXED, h),
        ));
    }
    let first = first_data_page(PS as u32) as usize;
    let mut seen = Vec::new();
    let (mut proof, mut capsule, mut marker) = (None, None, None);
    for p in first..db.len() / PS {
        let page = &db[p * PS..(p + 1) * PS];
        let Some(kind) = PageKind::from_u8(page[4]) else {
            continue;
        };
        if u64::from_le_bytes(page[8..16].try_into().expect("8 bytes")) != p as u64 {
            continue;
        }
        if !seen.contains(&kind) {
            seen.push(kind);
            let name = format!("{kind:?}").to_lowercase();
            seeds.push((format!("page_{name}"), with(DECODE_PAGE, page)));
            seeds.push((format!("page_{name}_fixed"), with(DECODE_PAGE_FIXED, page)));
        }
        match kind {
            PageKind::Proof if proof.is_none() => {
                proof = (32..PS - PROOF_LEN)
                    .find(|&i| u32_at(page, i + 4) == PROOF_MAGIC)
                    .map(|i| page[i..i + PROOF_LEN].to_vec());
            }
            PageKind::Capsule if capsule.is_none() => {
                capsule = (32..PS - 32)
                    .filter(|&i| u32_at(page, i + 4) == CAPSULE_MAGIC)
                    .find_map(|i| {
                        let len = capsule_total_len(&db[p * PS + i..])? as usize;
                        let rec = db.get(p * PS + i..p * PS + i + len)?;
                        decode_capsule(rec).is_ok().then(|| rec.to_vec())
                    });
            }
            PageKind::Marker if marker.is_none() => {
                // Slot 1 chains to slot 0's chain value.
                let slot = |i: usize| &page[32 + i * MARKER_LEN..32 + (i + 1) * MARKER_LEN];
                if slot(1).iter().any(|&b| b != 0) {
                    let mut m = vec![0u8];
                    m.extend_from_slice(&slot(0)[28..32]);
                    m.extend_from_slice(slot(1));
                    marker = Some(m);
                }
            }
            _ => {}
        }
    }
    // An overflow run's page (kind 6): writers since version 6 put such values in extents,
    // which have no page header, so the sample database has none; readers still read runs
    // (`format-spec/btree.md`, "Overflow run"). One page holding a 100-byte value.
    if !seen.contains(&PageKind::Overflow) {
        let mut page = vec![0u8; PS];
        page[16..20].copy_from_slice(&1u32.to_le_bytes());
        page[20..24].copy_from_slice(&100u32.to_le_bytes());
        for (i, b) in page[32..132].iter_mut().enumerate() {
            *b = i as u8;
        }
        seal_page(&mut page, PageKind::Overflow, 9).expect("seal");
        seeds.push(("page_overflow".into(), with(DECODE_PAGE, &page)));
        seeds.push(("page_overflow_fixed".into(), with(DECODE_PAGE_FIXED, &page)));
    }
    let proof = proof.expect("a proof record");
    seeds.push((
        "proof".into(),
        with(DECODE_PROOF, &[&[0][..], &proof].concat()),
    ));
    seeds.push((
        "proof_fixed".into(),
        with(DECODE_PROOF, &[&[1][..], &proof].concat()),
    ));
    let capsule = capsule.expect("a capsule record");
    seeds.push((
        "capsule".into(),
        with(DECODE_CAPSULE, &[&[0][..], &capsule].concat()),
    ));
    seeds.push((
        "capsule_fixed".into(),
        with(DECODE_CAPSULE, &[&[1][..], &capsule].concat()),
    ));
    let marker = marker.expect("a marker page with two markers");
    seeds.push(("marker".into(), with(DECODE_MARKER, &marker)));
    let mut fixed = marker.clone();
    fixed[0] = 1;
    seeds.push(("marker_fixed".into(), with(DECODE_MARKER, &fixed)));
    // In-database modes: page index, no flags, offset 0, the page's first bytes
    // after its common header (unchanged: the database opens as written).
    for (mode, kinds, name) in [
        (
            DECODE_TREE_IN_DB,
            &[
                PageKind::Branch,
                PageKind::Leaf,
                PageKind::CompactLeaf,
                PageKind::UniformLeaf,
                PageKind::Overflow,
                PageKind::FreeList,
            ][..],
            "tree",
        ),
        (
            DECODE_LOG_IN_DB,
            &[PageKind::Capsule, PageKind::Proof, PageKind::Marker][..],
            "log",
        ),
    ] {
        let pages: Vec<usize> = (first..db.len() / PS)
            .filter(|&p| {
                PageKind::from_u8(db[p * PS + 4]).is_some_and(|k| kinds.contains(&k))
                    && u64::from_le_bytes(db[p * PS + 8..p * PS + 16].try_into().expect("8"))
                        == p as u64
            })
            .collect();
        for (index, &p) in pages.iter().enumerate() {
            let kind = PageKind::from_u8(db[p * PS + 4]).expect("kind");
            let mut v = vec![mode, index as u8, 0, 0];
            v.extend_from_slice(&db[p * PS + 16..p * PS + 16 + 240]);
            seeds.push((
                format!(
                    "{name}_in_db_{index}_{}",
                    format!("{kind:?}").to_lowercase()
                ),
                v,
            ));
        }
    }
    // Each committed capsule of the log, unchanged (an empty body), and pointing at
    // its first entry (offset 4 * 8 = 32, length field kept: flag 1).
    for index in 0..2u8 {
        seeds.push((
            format!("capsule_in_db_{index}"),
            vec![DECODE_CAPSULE_IN_DB, index, 0, 0],
        ));
        seeds.push((
            format!("capsule_in_db_{index}_entries"),
            vec![DECODE_CAPSULE_IN_DB, index, 1, 4],
        ));
    }
    // A version list of three elements (a value, a deletion, an empty value), read at
    // seq 6, indexed and in the version-2 layout.
    let list = [
        (9u64, Some(Arc::from(&b"nine"[..]))),
        (5, None),
        (0, Some(Arc::from(&b""[..]))),
    ];
    let at = 6u64.to_le_bytes();
    seeds.push((
        "version_list".into(),
        [
            &[DECODE_VERSION_LIST][..],
            &at,
            &encode_list(&list).expect("a small list"),
        ]
        .concat(),
    ));
    let mut v2 = 3u32.to_le_bytes().to_vec();
    for (seq, v) in &list {
        v2.extend_from_slice(&seq.to_le_bytes());
        v2.push(u8::from(v.is_some()));
        let b: &[u8] = v.as_deref().unwrap_or(&[]);
        v2.extend_from_slice(&(b.len() as u32).to_le_bytes());
        v2.extend_from_slice(b);
    }
    seeds.push((
        "version_list_v2".into(),
        [&[DECODE_VERSION_LIST][..], &at, &v2].concat(),
    ));
    seeds
}

/// Builds `fuzz_api_model` inputs.
struct Ops(Vec<u8>);

impl Ops {
    fn new(config: u8) -> Ops {
        Ops(vec![config])
    }
    fn op(mut self, code: u8, args: &[u8]) -> Ops {
        self.0.push(code);
        self.0.extend_from_slice(args);
        self
    }
    fn create(self, t: u8) -> Ops {
        self.op(op::CREATE, &[t])
    }
    fn put(self, t: u8, k: &str, v: &[u8]) -> Ops {
        assert!(v.len() < 8);
        let mut a = vec![t];
        a.extend(key(k));
        a.push(v.len() as u8);
        a.extend_from_slice(v);
        self.op(op::PUT, &a)
    }
    /// A put of `(big + 1) * 700` generated bytes.
    fn put_big(self, t: u8, k: &str, big: u8) -> Ops {
        let mut a = vec![t];
        a.extend(key(k));
        a.extend([224 + big, 0x5a]);
        self.op(op::PUT, &a)
    }
    fn delete(self, t: u8, k: &str) -> Ops {
        let mut a = vec![t];
        a.extend(key(k));
        self.op(op::DELETE, &a)
    }
    fn get(self, t: u8, k: &str) -> Ops {
        let mut a = vec![t];
        a.extend(key(k));
        self.op(op::GET, &a)
    }
    fn range(self, t: u8, lo: (u8, &str), hi: (u8, &str), pattern: u8) -> Ops {
        let mut a = vec![t];
        for (b, k) in [lo, hi] {
            a.push(b);
            if b != 0 {
                a.extend(key(k));
            }
        }
        a.push(pattern);
        self.op(op::RANGE, &a)
    }
    fn commit(self, level: u8) -> Ops {
        self.op(op::COMMIT, &[level])
    }
    fn crash(self, kind: u8, seed: u8) -> Ops {
        self.op(op::CRASH, &[kind, seed, 0, 0, 0, 0, 0, 0, 0])
    }
    fn simple(self, code: u8) -> Ops {
        self.op(code, &[])
    }
}

/// A short key from the four-letter alphabet `a..=d`.
fn key(k: &str) -> Vec<u8> {
    assert!(k.len() < 4);
    let mut v = vec![k.len() as u8];
    v.extend(k.bytes().map(|c| c - b'a'));
    v
}

const APPLIED: u8 = 0;
const WRITTEN: u8 = 1;
const DURABLE: u8 = 2;

fn fill(mut o: Ops, t: u8) -> Ops {
    for (i, k) in ["a", "b", "c", "ab", "ba", "dd", ""].iter().enumerate() {
        o = o.put(t, k, &[i as u8, 1]);
    }
    o
}

fn api_model_seeds() -> Vec<(String, Vec<u8>)> {
    let base = || fill(Ops::new(0).create(0).create(1), 0);
    let seeds = vec![
        (
            "basic",
            base()
                .commit(DURABLE)
                .simple(op::CHECK_ALL)
                .get(0, "ab")
                .delete(0, "a")
                .commit(DURABLE),
        ),
        (
            "process_crash_after_written",
            base()
                .commit(WRITTEN)
                .put(1, "c", b"x")
                .commit(APPLIED)
                .crash(0, 0)
                .simple(op::CHECK_ALL),
        ),
        (
            "power_loss_torn",
            base()
                .commit(DURABLE)
                .put(0, "a", b"new")
                .commit(APPLIED)
                .delete(0, "b")
                .commit(WRITTEN)
                .crash(1, 7)
                .simple(op::CHECK_ALL),
        ),
        (
            "power_loss_all_unsynced",
            base()
                .commit(APPLIED)
                .put(0, "d", b"1")
                .commit(DURABLE)
                .put(0, "d", b"2")
                .commit(APPLIED)
                .crash(2, 0),
        ),
        (
            "checkpoint_compact_reopen",
            fill(base().commit(DURABLE).delete(0, "a"), 1)
                .commit(DURABLE)
                .simple(op::CHECKPOINT)
                .delete(0, "b")
                .delete(0, "c")
                .commit(DURABLE)
                .simple(op::CHECKPOINT)
                .simple(op::COMPACT)
                .simple(op::INTEGRITY)
                .simple(op::REOPEN)
                .simple(op::CHECK_ALL),
        ),
        (
            "overflow_values",
            base()
                .put_big(0, "b", 5)
                .put_big(1, "a", 20)
                .commit(DURABLE)
                .simple(op::CHECKPOINT)
                .put_big(0, "b", 1)
                .commit(APPLIED)
                .crash(1, 3)
                .simple(op::CHECK_ALL)
                .simple(op::CHECKPOINT)
                .simple(op::INTEGRITY),
        ),
        (
            "ranges",
            base()
                .commit(DURABLE)
                .simple(op::CHECKPOINT)
                .put(0, "bb", b"own")
                .delete(0, "c")
                .range(0, (0, ""), (0, ""), 0)
                .range(0, (0, ""), (0, ""), 0xff)
                .range(0, (1, "b"), (2, "d"), 0b1010_1010)
                .range(0, (2, "ab"), (1, "c"), 0b0110)
                .range(0, (1, "c"), (1, "a"), 0)
                .range(1, (0, ""), (2, ""), 1),
        ),
        (
            "readers_across_commits",
            base()
                .commit(APPLIED)
                .simple(op::OPEN_READER)
                .delete(0, "a")
                .op(op::DROP, &[1])
                .commit(DURABLE)
                .simple(op::OPEN_READER)
                .simple(op::CHECKPOINT)
                .op(op::CHECK_READER, &[0])
                .op(op::CHECK_READER, &[1])
                .simple(op::GC)
                .op(op::CHECK_READER, &[0]),
        ),
        (
            "power_cut",
            base()
                .commit(DURABLE)
                .op(op::POWER_CUT, &[9])
                .put(0, "a", b"1")
                .commit(DURABLE)
                .put(0, "b", b"2")
                .commit(APPLIED)
                .put(0, "c", b"3")
                .commit(DURABLE)
                .simple(op::CHECKPOINT),
        ),
        (
            "drop_and_recreate",
            base()
                .commit(DURABLE)
                .simple(op::CHECKPOINT)
                .op(op::DROP, &[0])
                .create(0)
                .put(0, "z", b"")
                .commit(DURABLE)
                .simple(op::CHECKPOINT)
                .crash(2, 0)
                .simple(op::CHECK_ALL),
        ),
        (
            "snapshot_isolation_tx",
            base()
                .commit(DURABLE)
                .op(op::BEGIN, &[1])
                .get(0, "a")
                .put(0, "a", b"si")
                .commit(WRITTEN)
                .op(op::BEGIN, &[0])
                .get(0, "a")
                .commit(DURABLE)
                .simple(op::ROLLBACK),
        ),
        (
            "long_keys",
            base()
                .op(op::PUT, &[0, 244, b'k', 3, 1, 2, 3])
                .op(op::PUT, &[0, 245, b'k', 0])
                .op(op::GET, &[0, 243, b'k'])
                .op(op::PUT, &[0, 255, 5, 0, 0xff, 0x10, 0x80, 1, 1, b'r'])
                .commit(DURABLE)
                .simple(op::CHECKPOINT)
                .simple(op::CHECK_ALL),
        ),
    ];
    let mut out: Vec<(String, Vec<u8>)> = seeds
        .into_iter()
        .map(|(n, o)| (n.to_string(), o.0))
        .collect();
    // Small budgets: checkpoints run on their own (config bits 1-3), 8 KiB pages (bit 0).
    let mut auto = Ops::new(0b1111).create(0);
    for i in 0..40u8 {
        auto = auto
            .put(0, ["a", "b", "c", "d"][usize::from(i % 4)], &[i])
            .put_big(0, "cc", i % 3)
            .commit([APPLIED, DURABLE][usize::from(i % 2)]);
        if i % 10 == 9 {
            auto = auto.crash(i % 3, i);
        }
    }
    out.push(("auto_checkpoints_8k".into(), auto.0));
    out
}

/// `history` seeds: for several history leaves and tree pages of the history sample,
/// the input that rewrites part of the page with its own bytes (the file unchanged),
/// so mutations start from a whole page.
fn history_seeds() -> Vec<(String, Vec<u8>)> {
    let db = history_database();
    let leaves: Vec<usize> = (first_data_page(PS as u32) as usize..db.len() / PS)
        .filter(|&p| {
            let at = p * PS;
            matches!(db[at + 4], 8 | 9)
                && u64::from_le_bytes(db[at + 8..at + 16].try_into().expect("8 bytes")) == p as u64
                && db[at + 24..at + 32] == [0xFF; 8]
        })
        .collect();
    let mut out = Vec::new();
    for (i, &page) in leaves.iter().enumerate().take(6) {
        for (offset16, len) in [(0u8, 512usize), (8, 256)] {
            let from = page * PS + 16 + 16 * usize::from(offset16);
            let mut input = vec![i as u8, 1, offset16];
            input.extend_from_slice(&db[from..(from + len).min(db.len())]);
            out.push((format!("history_leaf{i}_at{offset16}"), input));
        }
    }
    // Any tree page (flag bit 0 clear), nothing overwritten.
    for i in 0..4u8 {
        out.push((format!("tree_page{i}"), vec![i, 0, 0]));
    }
    out
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for target in ["open_bytes", "decode", "api_model", "history"] {
        let _ = std::fs::remove_dir_all(root.join(target));
    }
    let mut total = 0;
    for (name, bytes) in open_bytes_seeds() {
        total += bytes.len();
        write("open_bytes", &name, &bytes);
    }
    let db = sample_database(PS as u32, true, true);
    for (name, bytes) in decode_seeds(&db) {
        total += bytes.len();
        write("decode", &name, &bytes);
    }
    for (name, bytes) in api_model_seeds() {
        total += bytes.len();
        write("api_model", &name, &bytes);
    }
    for (name, bytes) in history_seeds() {
        total += bytes.len();
        write("history", &name, &bytes);
    }
    println!("corpus: {total} bytes");
}
