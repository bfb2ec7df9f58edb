//! The fuzz harnesses of `fuzz/` run as ordinary tests on stable: every committed seed
//! (`fuzz/corpus/<target>/`) and every regression a fuzzer found
//! (`fuzz/regressions/<target>/`) goes through the harness of its target, then a few
//! thousand seeded-random inputs per harness (mutated seeds for `open_bytes` and `history`,
//! random bytes for `decode` and `api_model`). A harness panics when capsuledb misbehaves;
//! see `fuzz/src/` and `fuzz/README.md`.
//!
//! The regressions are the fuzzers' findings, each fixed in the engine: a marker page
//! naming a next page far past the file's end (an unbounded allocation at open) and a
//! committed table id of `u64::MAX` (an overflow of the next table id).

#[path = "../fuzz/src/lib.rs"]
#[allow(
    dead_code,
    unused_imports,
    reason = "the corpus generator's helpers, and the constants and sample databases the \
              harness re-exports for it, are used only by fuzz/examples"
)]
mod harness;

use capsuledb::rng::Rng;
use proptest::prelude::*;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

type Harness = fn(&[u8]);

fn harness_for(target: &str) -> Harness {
    match target {
        "open_bytes" => harness::fuzz_open_bytes,
        "decode" => harness::fuzz_decode,
        "api_model" => harness::fuzz_api_model,
        "key_decode" => harness::fuzz_key_decode,
        "raftlog" => harness::fuzz_raftlog,
        "history" => harness::fuzz_history,
        other => panic!("fuzz/{other}: no harness of that name"),
    }
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// `(target, "target/name", path)` of every file under `fuzz/<kind>/*/`.
fn inputs(kind: &str) -> Vec<(String, String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(fuzz_dir().join(kind)) else {
        return out;
    };
    for dir in dirs {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let target = dir.file_name().unwrap().to_string_lossy().into_owned();
        for file in std::fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_file() && !name.starts_with('.') {
                out.push((target.clone(), format!("{target}/{name}"), path));
            }
        }
    }
    out.sort();
    out
}

/// Runs each input through its harness; returns the ones that panicked.
fn replay(files: &[(String, String, PathBuf)]) -> Vec<String> {
    let mut failed = Vec::new();
    for (target, id, path) in files {
        let data = std::fs::read(path).unwrap();
        let run = harness_for(target);
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(id.clone());
        }
    }
    failed
}

#[test]
fn corpus_and_regressions_replay() {
    let corpus = inputs("corpus");
    for target in ["open_bytes", "decode", "api_model", "raftlog", "history"] {
        assert!(
            corpus.iter().filter(|(t, ..)| t == target).count() >= 5,
            "fuzz/corpus/{target}/ holds the committed seeds"
        );
    }
    let regressions = inputs("regressions");
    assert!(
        regressions.len() >= 3,
        "fuzz/regressions/ holds the findings"
    );
    let mut failed = replay(&corpus);
    failed.extend(replay(&regressions));
    println!(
        "replayed {} seeds and {} regressions",
        corpus.len(),
        regressions.len()
    );
    assert!(failed.is_empty(), "inputs that failed: {failed:?}");
}

/// A `decode` input's first byte picks its mode modulo [`harness::DECODE_MODES`]: a
/// regression saved with a byte past the mode count moved to another mode when a mode
/// was added (two catalog-id regressions, saved as 17 and 19 for modes 7 and 9, ran
/// modes 6 and 8 once the version-list mode made eleven, and tested nothing). Each
/// names its mode directly.
#[test]
fn decode_regressions_name_their_mode_directly() {
    for (target, id, path) in inputs("regressions") {
        if target != "decode" {
            continue;
        }
        let first = std::fs::read(&path).unwrap().first().copied();
        assert!(
            first.is_some_and(|b| b < harness::DECODE_MODES),
            "{id}: first byte {first:?} is not a mode below {}",
            harness::DECODE_MODES
        );
    }
}

/// The `open_bytes` seeds hold a page of every kind (a page header naming its own
/// number), so mutations reach every page reader: the overflow runs and compact leaves
/// of older writers were reached by no seed (today's writer makes neither).
#[test]
fn open_bytes_seeds_cover_every_page_kind() {
    use capsuledb::format::{Header, PageKind};
    let mut seen = std::collections::BTreeSet::new();
    for (target, _, path) in inputs("corpus") {
        if target != "open_bytes" {
            continue;
        }
        let bytes = std::fs::read(path).unwrap();
        let Ok(header) = Header::decode(&bytes, 0) else {
            continue;
        };
        let ps = header.page_size as usize;
        for (page, b) in bytes.chunks_exact(ps).enumerate().skip(1) {
            if u64::from_le_bytes(b[8..16].try_into().unwrap()) == page as u64 {
                seen.extend(PageKind::from_u8(b[4]).map(|k| k as u8));
            }
        }
    }
    for kind in 1..=9u8 {
        let name = PageKind::from_u8(kind).unwrap();
        assert!(
            seen.contains(&kind),
            "no open_bytes seed holds a {name:?} page"
        );
    }
}

/// Seeded mutations of the committed database files: byte and bit changes, copied
/// chunks, cut or extended ends, and (often) both header checksums fixed up so the
/// damage reaches past the header.
#[test]
fn open_bytes_mutated_seeds() {
    const CASES: u64 = 3000;
    let seeds: Vec<Vec<u8>> = inputs("corpus")
        .into_iter()
        .filter(|(t, ..)| t == "open_bytes")
        .map(|(_, _, p)| std::fs::read(p).unwrap())
        .filter(|b| !b.is_empty())
        .collect();
    let mut rng = Rng::new(0x0b7e5);
    for case in 0..CASES {
        let mut bytes = seeds[rng.below(seeds.len() as u64) as usize].clone();
        for _ in 0..1 + rng.below(4) {
            if bytes.is_empty() {
                // Cut to nothing by an earlier mutation: nothing left to change.
                break;
            }
            let len = bytes.len() as u64;
            let at = rng.below(len.max(1)) as usize;
            match rng.below(6) {
                0 => bytes[at] ^= 1 << rng.below(8),
                1 => bytes[at] = rng.next_u64() as u8,
                2 => {
                    let n = 1 + rng.below(64) as usize;
                    let from = rng.below(len) as usize;
                    let chunk: Vec<u8> = bytes[from..(from + n).min(bytes.len())].to_vec();
                    let end = (at + chunk.len()).min(bytes.len());
                    bytes[at..end].copy_from_slice(&chunk[..end - at]);
                }
                3 => bytes.truncate(at),
                4 => bytes.extend((0..rng.below(5000)).map(|i| i as u8)),
                _ => {
                    // A little-endian integer field somewhere set to an extreme.
                    let v =
                        [0u64, 1, u64::MAX, u64::from(u32::MAX), 1 << 40][rng.below(5) as usize];
                    let end = (at + 8).min(bytes.len());
                    bytes[at..end].copy_from_slice(&v.to_le_bytes()[..end - at]);
                }
            }
        }
        if rng.chance(1, 2) {
            fix_header_checksums(&mut bytes);
        }
        let r = catch_unwind(AssertUnwindSafe(|| harness::fuzz_open_bytes(&bytes)));
        assert!(r.is_ok(), "open_bytes mutated case {case} panicked");
    }
}

fn fix_header_checksums(bytes: &mut [u8]) {
    for offset in [0usize, 4096] {
        if let Some(h) = bytes.get_mut(offset..offset + 128) {
            let sum = capsuledb::format::checksum(&[&h[..124]]);
            h[124..].copy_from_slice(&sum.to_le_bytes());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 3000,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "fuzz/regressions/fuzz_corpus.proptest-regressions"
            ),
        )),
        ..ProptestConfig::default()
    })]

    /// Random table contents and calls for the Raft log (the harness shapes most records
    /// like the log's own).
    #[test]
    fn raftlog_random(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        harness::fuzz_raftlog(&bytes);
    }

    /// Random bytes for every typed key: two candidate keys of one type (the first
    /// byte picks it, the second splits them).
    #[test]
    fn key_decode_random(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        harness::fuzz_key_decode(&bytes);
    }

    /// Two valid encodings of one key type, split where the first ends: random bytes
    /// almost never decode as a pair (a `u64` pair needs 18 bytes split at 8), so the
    /// harness's order check ran on the committed seeds alone.
    #[test]
    fn key_decode_encoded_pairs(
        (x, y) in (any::<u64>(), any::<u64>()),
        (s, t) in (".{0,8}", ".{0,8}"),
        (i, j) in (any::<i16>(), any::<i16>()),
        (m, n) in (any::<i32>(), any::<i32>()),
        (u, v) in (prop::collection::vec(any::<u8>(), 0..6), prop::collection::vec(any::<u8>(), 0..6)),
    ) {
        use capsuledb::encode_key;
        type T5<'a> = (u64, &'a str, i16);
        type T6<'a> = (&'a [u8], &'a [u8], bool);
        let pairs = [
            (0u8, encode_key::<u64>(&x), encode_key::<u64>(&y)),
            (1, encode_key::<i32>(&m), encode_key::<i32>(&n)),
            (3, encode_key::<&str>(&s.as_str()), encode_key::<&str>(&t.as_str())),
            (5, encode_key::<T5>(&(x, s.as_str(), i)), encode_key::<T5>(&(y, t.as_str(), j))),
            (6, encode_key::<T6>(&(&u, &v, i < 0)), encode_key::<T6>(&(&v, &u, j < 0))),
        ];
        for (which, a, b) in pairs {
            let mut data = vec![which, u8::try_from(a.len()).unwrap()];
            data.extend(a);
            data.extend(b);
            harness::fuzz_key_decode(&data);
        }
    }

    /// Random bytes for every decode mode (the first byte picks it).
    #[test]
    fn decode_random(
        mode in 0u8..harness::DECODE_MODES,
        bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut data = vec![mode];
        data.extend(bytes);
        harness::fuzz_decode(&data);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "fuzz/regressions/fuzz_corpus.proptest-regressions"
            ),
        )),
        ..ProptestConfig::default()
    })]

    /// Random operation sequences (op bytes from the valid range, arguments random).
    #[test]
    fn api_model_random(config in any::<u8>(), ops in prop::collection::vec((0..harness::OP_COUNT, any::<[u8; 4]>()), 0..80)) {
        let mut data = vec![config];
        for (code, args) in ops {
            data.push(code);
            data.extend(args);
        }
        harness::fuzz_api_model(&data);
    }
}

/// A seeded failure of `api_model_random` (found by CI at `b2846a5`, which let a
/// committer that led a failing step return `Ok` when its sequence had already reached
/// its level): the model then found, after close and reopen, a state that was no commit
/// prefix at or after the last acknowledged one (an empty database where a table had
/// been created). A leader's failed step answers with the step's error, as before.
#[test]
fn api_model_regression_a_failed_step_is_its_leaders_error() {
    let data = [
        0u8, 0, 0, 35, 0, 93, 8, 96, 0, 61, 0, 4, 255, 40, 7, 0, 0, 70, 0, 0, 0,
    ];
    harness::fuzz_api_model(&data);
}

/// Seeded mutations of the `history` seeds: bytes of the rewritten part of a history
/// leaf (or of any tree page) changed, so the version lists, the floor, the kept drops
/// and the directory built from them meet damage behind a valid checksum. The sample
/// holds history leaves for the seeds to pick.
#[test]
fn history_mutated_seeds() {
    const CASES: u64 = 2000;
    let sample = harness::history_database();
    let history_leaves = sample
        .chunks_exact(4096)
        .enumerate()
        .filter(|(p, b)| {
            matches!(b[4], 8 | 9)
                && u64::from_le_bytes(b[8..16].try_into().unwrap()) == *p as u64
                && b[24..32] == [0xFF; 8]
        })
        .count();
    assert!(
        history_leaves >= 2,
        "the history sample holds {history_leaves} history leaves"
    );
    let seeds: Vec<Vec<u8>> = inputs("corpus")
        .into_iter()
        .filter(|(t, ..)| t == "history")
        .map(|(_, _, p)| std::fs::read(p).unwrap())
        .collect();
    let mut rng = Rng::new(0x415);
    for case in 0..CASES {
        let mut bytes = seeds[rng.below(seeds.len() as u64) as usize].clone();
        if bytes.len() > 3 {
            for _ in 0..1 + rng.below(3) {
                let at = 3 + rng.below(bytes.len() as u64 - 3) as usize;
                bytes[at] = match rng.below(3) {
                    0 => bytes[at] ^ (1 << rng.below(8)),
                    1 => rng.next_u64() as u8,
                    _ => [0, 0xFF, 1][rng.below(3) as usize],
                };
            }
        } else {
            bytes.extend((0..rng.below(64)).map(|_| rng.next_u64() as u8));
        }
        let r = catch_unwind(AssertUnwindSafe(|| harness::fuzz_history(&bytes)));
        assert!(r.is_ok(), "history mutated case {case} panicked");
    }
}
