//! Criterion micro-benchmarks of the hot paths, through the public API:
//! record encode/decode, a point read served by the version store and by the B+tree,
//! a 100-key range scan, 1000-entry borrowing scans forward and reverse, point reads
//! on two threads at once, and whole commits at `Durability::Applied` (validation,
//! sequencing and version-store insertion; `commit_numbers` reports the serialized
//! section alone).
//!
//! ```sh
//! cargo bench --bench hot_paths
//! ```

use capsuledb::format::{
    Header, Marker, Proof, TableWrites, WriteSet, decode_capsule, encode_capsule,
};
use capsuledb::{Database, Durability, Options};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Instant;

fn key(i: u64) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..8].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
    k
}

fn encode_decode(c: &mut Criterion) {
    let mut writes = WriteSet::new();
    let table: TableWrites = (0..10).map(|i| (key(i), Some([7u8; 150]))).collect();
    writes.insert(1u64, table);
    let enc = encode_capsule(1, &writes, &[]).unwrap();
    c.bench_function("capsule encode, 10 keys", |b| {
        b.iter(|| black_box(encode_capsule(1, black_box(&writes), &[])))
    });
    c.bench_function("capsule decode+verify, 10 keys", |b| {
        b.iter(|| black_box(decode_capsule(black_box(&enc.bytes))))
    });
    let proof = Proof {
        seq: 9,
        snapshot: 8,
        capsule_offset: 4096,
        capsule_len: 300,
        capsule_checksum: 1,
        write_digest: 2,
        entry_count: 10,
    };
    c.bench_function("proof encode+decode", |b| {
        b.iter(|| black_box(Proof::decode(&black_box(proof).encode())))
    });
    let (m, _) = Marker {
        seq: 5,
        proof_offset: 8192,
        proof_checksum: 3,
    }
    .encode(7);
    c.bench_function("marker decode+chain check", |b| {
        b.iter(|| black_box(Marker::decode(black_box(&m), 5, 7)))
    });
    let dir = tempfile::tempdir().unwrap();
    drop(Database::open(dir.path().join("h.db")).unwrap());
    let bytes = std::fs::read(dir.path().join("h.db")).unwrap();
    c.bench_function("header decode+verify", |b| {
        b.iter(|| black_box(Header::decode(black_box(&bytes[..128]), 0)))
    });
}

fn loaded(checkpointed: bool, keys: u64) -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Options::new().open(dir.path().join("r.db")).unwrap();
    fill(&db, checkpointed, keys);
    (dir, db)
}

/// Table `t` with `keys` keys of 150 bytes, in one durable commit (folded into the tree
/// with `checkpointed`).
fn fill(db: &Database, checkpointed: bool, keys: u64) {
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    for i in 0..keys {
        tx.put("t", &key(i), &[3u8; 150]).unwrap();
    }
    tx.commit().unwrap();
    if checkpointed {
        db.checkpoint().unwrap();
    }
}

fn reads(c: &mut Criterion) {
    for (name, checkpointed) in [("version store", false), ("B+tree", true)] {
        let dir = tempfile::tempdir().unwrap();
        let db = Options::new().open(dir.path().join("r.db")).unwrap();
        // For the version store, a snapshot from before the load: alone, a commit this
        // large goes straight into the tree, and an idle fold would fold it there later.
        let mut holder = db.connect();
        let held = (!checkpointed).then(|| holder.begin_read().unwrap());
        fill(&db, checkpointed, 100_000);
        if !checkpointed {
            assert!(
                db.stats().versions >= 100_000,
                "the load is in the version store"
            );
        }
        let mut conn = db.connect();
        let tx = conn.begin_read().unwrap();
        let mut i = 0u64;
        c.bench_function(&format!("point read from the {name}, 100k keys"), |b| {
            b.iter(|| {
                i = (i + 7919) % 100_000;
                black_box(tx.get_ref("t", &key(i)).unwrap())
            })
        });
        c.bench_function(&format!("100-key range scan from the {name}"), |b| {
            b.iter(|| {
                i = (i + 7919) % 100_000;
                let start = key(i);
                black_box(tx.range("t", start.as_slice()..).unwrap().take(100).count())
            })
        });
        if !checkpointed {
            assert!(db.stats().versions >= 100_000, "still in the version store");
        }
        drop(held);
    }
}

/// 100k keys checkpointed into the B+tree, then 1000 one-key commits left in the
/// version store (as after the comparison harness's load): reads consult both.
fn tree_and_store() -> (tempfile::TempDir, Database) {
    let (dir, db) = loaded(true, 100_000);
    let mut conn = db.connect();
    for i in 0..1000u64 {
        let mut tx = conn.begin().unwrap();
        tx.put("t", &key(i * 97 % 100_000), &[4u8; 150]).unwrap();
        tx.commit_with(Durability::Applied).unwrap();
    }
    (dir, db)
}

/// Borrowing scans of 1000 entries from random start keys (each in a fresh read
/// transaction, as the comparison harness runs them), forward and reverse.
fn long_scans(c: &mut Criterion) {
    const SCAN_LEN: usize = 1000;
    for (name, (_dir, db)) in [
        ("B+tree", loaded(true, 100_000)),
        ("B+tree + 1000 in the store", tree_and_store()),
    ] {
        let mut sorted: Vec<[u8; 24]> = (0..100_000).map(key).collect();
        sorted.sort();
        let mut conn = db.connect();
        let mut i = 0usize;
        for reverse in [false, true] {
            let dir = if reverse { "reverse" } else { "forward" };
            c.bench_function(&format!("1000-entry scan {dir}, {name}"), |b| {
                b.iter(|| {
                    // Start keys with 1000 entries on the scan's side.
                    i = (i + 7919) % (sorted.len() - 2 * SCAN_LEN);
                    let start = sorted[i + SCAN_LEN];
                    let tx = conn.begin_read().unwrap();
                    let mut scan = if reverse {
                        tx.scan_rev("t", ..=start.as_slice()).unwrap()
                    } else {
                        tx.scan("t", start.as_slice()..).unwrap()
                    };
                    let mut n = 0;
                    while n < SCAN_LEN {
                        let Some(e) = scan.next() else { break };
                        black_box(e.unwrap());
                        n += 1;
                    }
                    assert_eq!(n, SCAN_LEN);
                })
            });
        }
    }
}

/// Point reads on two threads at once, each with its own connection and read
/// transaction: the time is per read per thread, so perfect scaling matches the one
/// thread row.
fn parallel_reads(c: &mut Criterion) {
    const THREADS: u64 = 2;
    for (name, (_dir, db)) in [
        ("B+tree", loaded(true, 100_000)),
        ("B+tree + 1000 in the store", tree_and_store()),
    ] {
        for threads in [1, THREADS] {
            c.bench_function(&format!("point read, {threads} threads, {name}"), |b| {
                b.iter_custom(|iters| {
                    let db = &db;
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for t in 0..threads {
                            s.spawn(move || {
                                let mut conn = db.connect();
                                let tx = conn.begin_read().unwrap();
                                let mut i = t * 50_000;
                                for _ in 0..iters {
                                    i = (i + 7919) % 100_000;
                                    black_box(tx.get_ref("t", &key(i)).unwrap().unwrap());
                                }
                            });
                        }
                    });
                    start.elapsed()
                })
            });
        }
    }
}

fn commits(c: &mut Criterion) {
    let (_dir, db) = loaded(false, 0);
    let mut conn = db.connect();
    let mut i = 0u64;
    for n in [1u64, 10] {
        c.bench_function(&format!("commit Applied, {n} keys"), |b| {
            b.iter_batched(
                || {
                    i += 1;
                    i
                },
                |base| {
                    let mut tx = conn.begin().unwrap();
                    for j in 0..n {
                        tx.put("t", &key((base * 16 + j) % 50_000), &[1u8; 150])
                            .unwrap();
                    }
                    black_box(tx.commit_with(Durability::Applied).unwrap())
                },
                BatchSize::SmallInput,
            )
        });
    }
}

criterion_group!(
    benches,
    encode_decode,
    reads,
    long_scans,
    parallel_reads,
    commits
);
criterion_main!(benches);
