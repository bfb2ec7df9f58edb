//! Criterion micro-benchmarks of the hot paths, through the public API:
//! record encode/decode, a point read served by the version store and by the B+tree,
//! a 100-key range scan, and whole commits at `Durability::Applied` (validation,
//! sequencing and version-store insertion; `commit_numbers` reports the serialized
//! section alone).
//!
//! ```sh
//! cargo bench --bench hot_paths
//! ```

use capsuledb::format::{Header, Marker, Proof, decode_capsule, encode_capsule};
use capsuledb::{Database, Durability, Options};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

fn key(i: u64) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..8].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
    k
}

fn encode_decode(c: &mut Criterion) {
    let mut writes = BTreeMap::new();
    let table: BTreeMap<Vec<u8>, Option<Arc<[u8]>>> = (0..10)
        .map(|i| (key(i).to_vec(), Some(Arc::from(&[7u8; 150][..]))))
        .collect();
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
    (dir, db)
}

fn reads(c: &mut Criterion) {
    for (name, checkpointed) in [("version store", false), ("B+tree", true)] {
        let (_dir, db) = loaded(checkpointed, 100_000);
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

criterion_group!(benches, encode_decode, reads, commits);
criterion_main!(benches);
