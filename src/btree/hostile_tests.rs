//! Trees whose pages are each well formed (checksums and cells valid) but which together
//! break the tree's invariants, as a writer's mistake or a hostile file could make them:
//! every walk ends, with an error naming a page, instead of looping or multiplying.

use super::old_tree::leaves_of;
use super::page::{NodeBuilder, TreeKey, branch_cell};
use super::salvage::salvage_leaf;
use super::scan_leaf;
use std::ops::Bound;

pub(super) const PS: u32 = 4096;

/// A file of `pages` pages with the given nodes written at their pages.
pub(super) fn file_of(pages: u64, nodes: Vec<(u64, Vec<u8>)>) -> Vec<u8> {
    let mut file = vec![0u8; (pages * u64::from(PS)) as usize];
    for (page, bytes) in nodes {
        let at = (page * u64::from(PS)) as usize;
        file[at..at + bytes.len()].copy_from_slice(&bytes);
    }
    file
}

pub(super) fn leaf(page: u64, keys: &[&[u8]]) -> (u64, Vec<u8>) {
    let mut b = NodeBuilder::new(true, PS);
    for k in keys {
        let key = TreeKey::whole(k);
        assert!(b.admit(&key, 1));
        b.push_leaf_inline(&key, b"v");
    }
    (page, b.finish(page).unwrap())
}

pub(super) fn branch(page: u64, first_child: u64, cells: &[(&[u8], u64)]) -> (u64, Vec<u8>) {
    let mut b = NodeBuilder::new(false, PS);
    b.set_first_child(first_child);
    for (sep, child) in cells {
        b.push_raw(&branch_cell(sep, *child));
    }
    (page, b.finish(page).unwrap())
}

/// Scans as the engine's loops do (resuming from each leaf's edge), at most `limit`
/// leaves: `Ok(leaves)` when the scan ended, `Err` when the tree was refused.
fn scan_all(file: &[u8], root: u64, reverse: bool, limit: usize) -> Result<usize, String> {
    let mut bound: Option<Vec<u8>> = Some(b"mmmmmmmm".to_vec());
    for n in 1..=limit {
        let b = bound.as_deref().map_or(Bound::Unbounded, Bound::Included);
        let (lo, hi) = if reverse {
            (Bound::Unbounded, b)
        } else {
            (b, Bound::Unbounded)
        };
        let batch = scan_leaf(file, PS, root, lo, hi, reverse, None).map_err(|e| e.to_string())?;
        match batch.leaf_edge {
            None => return Ok(n),
            Some(edge) => bound = Some(edge),
        }
        if reverse {
            // A reverse scan resumes below its edge: one less than the edge here.
            if let Some(last) = bound.as_mut().and_then(|b| b.last_mut()) {
                *last = last.wrapping_sub(1);
            }
        }
    }
    panic!("the scan did not end after {limit} leaves");
}

/// Walks the whole tree as a salvage does (resuming where each step says), at most
/// `limit` steps: returns the steps taken; panics if the walk does not end or goes back.
fn salvage_all(file: &[u8], root: u64, limit: usize) -> usize {
    let mut from = Vec::new();
    for n in 1..=limit {
        let step = salvage_leaf(file, PS, root, &from, &[0xFF; 9]);
        match step.next {
            None => return n,
            Some(next) => {
                assert!(next > from, "a salvage step must move on");
                from = next;
            }
        }
    }
    panic!("the salvage walk did not end after {limit} steps");
}

#[test]
fn scans_over_separators_out_of_order_end() {
    let keys: [&[u8]; 1] = [b"mmmmmmmm"];
    // Separators equal or falling: the leaf a forward scan from "mmmmmmmm" reaches has an
    // upper edge at or below where it started.
    for seps in [
        vec![&b"mmmmmmmm"[..], b"mmmmmmmm"],
        vec![&b"aaaaaaaa"[..], b"mmmmmmmm", b"mmmmmmmm"],
        vec![&b"zzzzzzzz"[..], b"mmmmmmmm"],
        vec![&b"mmmmmmmm"[..], b"cccccccc"],
    ] {
        let cells: Vec<(&[u8], u64)> = seps
            .iter()
            .enumerate()
            .map(|(i, s)| (*s, 3 + i as u64))
            .collect();
        let mut nodes = vec![branch(1, 2, &cells)];
        for p in 2..3 + seps.len() as u64 {
            nodes.push(leaf(p, &keys));
        }
        let file = file_of(3 + seps.len() as u64, nodes);
        for reverse in [false, true] {
            // Ends, with the leaves or with an error: never loops.
            let _ = scan_all(&file, 1, reverse, 16);
        }
        salvage_all(&file, 1, 16);
    }
}

#[test]
fn a_page_reached_twice_is_refused_by_a_rebuild() {
    // Every child of the root names the same branch, whose children all name one leaf:
    // listed naively that is fanout^depth leaves, and each leaf freed many times.
    let seps: Vec<Vec<u8>> = (0..50u8)
        .map(|i| vec![b'a' + i % 26, i, 0, 0, 0, 0, 0, 0])
        .collect();
    let mut sorted = seps.clone();
    sorted.sort();
    let cells =
        |child: u64| -> Vec<(&[u8], u64)> { sorted.iter().map(|s| (&s[..], child)).collect() };
    let file = file_of(
        4,
        vec![
            branch(1, 2, &cells(2)),
            branch(2, 3, &cells(3)),
            leaf(3, &[b"mmmmmmmm"]),
        ],
    );
    match leaves_of(&file, PS, 1, 0..u64::MAX) {
        Err(err) => assert!(err.to_string().contains("reachable twice"), "{err}"),
        Ok(tree) => panic!("listed {} leaves of one", tree.leaves.len()),
    }
    // A salvage walk ends, and hands the leaf's key over at most once, in order.
    let mut from = Vec::new();
    let mut handed = Vec::new();
    for _ in 0..200 {
        let step = salvage_leaf(&file, PS, 1, &from, &[0xFF; 9]);
        for (k, _) in &step.entries {
            let mut key = Vec::new();
            k.extend_into(&mut key);
            assert!(key >= from, "a key below the step's start");
            handed.push(key);
        }
        match step.next {
            Some(next) => from = next,
            None => break,
        }
    }
    assert!(handed.len() <= 1, "handed over {handed:?}");
}

/// A leaf whose keys are out of order or repeated (whole keys, or a compact leaf's
/// tails under its prefix), or a branch whose separators are: refused on the page's
/// first read, naming it, with or without the verified set; a search or scan would
/// otherwise trust the order and hand out keys outside its range.
#[test]
fn a_page_with_keys_out_of_order_is_refused_on_first_read() {
    use super::page::NodeRef;
    let t = |k: &[u8]| super::composite(3, k);
    let (a, b) = (t(b"a"), t(b"b"));
    let cases = [
        leaf(2, &[b"bbbbbbbb", b"aaaaaaaa"]),
        leaf(2, &[b"aaaaaaaa", b"aaaaaaaa"]),
        leaf(2, &[&b[..], &a[..]]),
        leaf(2, &[&a[..], &a[..]]),
        branch(2, 5, &[(b"mmmmmmmm", 6), (b"cccccccc", 7)]),
        branch(2, 5, &[(b"mmmmmmmm", 6), (b"mmmmmmmm", 7)]),
    ];
    for (page, bytes) in cases {
        let verified = crate::pager::Verified::default();
        for set in [None, Some(&verified)] {
            let e = NodeRef::parse_cached(&bytes, page, set).err().unwrap();
            assert!(
                e.to_string().contains("page 2") && e.to_string().contains("keys out of order"),
                "{e}"
            );
        }
        assert!(!verified.contains(page));
    }
    let (page, good) = leaf(2, &[&a[..], &b[..]]);
    assert_eq!(NodeRef::parse(&good, page).unwrap().count(), 2);
}

/// Two cells naming one overflow extent, or an extent over another tree page: the walk
/// (the integrity check's) refuses the tree, naming the page used twice; freeing the
/// tree would otherwise free that page twice.
#[test]
fn a_page_used_twice_by_values_is_refused_by_the_walk() {
    use super::page::EXTENT_CELL_BODY;
    use super::run::{encode_extent_into, extent_checksum};
    // A leaf at `page` whose cells name the extents `(first page, length, checksum)`.
    let leaf_naming = |page: u64, extents: &[(u64, u32, u32)]| {
        let mut b = NodeBuilder::new(true, PS);
        for (i, &(e, len, crc)) in extents.iter().enumerate() {
            let k = vec![b'a' + i as u8; 8];
            let key = TreeKey::whole(&k);
            assert!(b.admit(&key, EXTENT_CELL_BODY));
            b.push_leaf_extent(&key, e, len, crc);
        }
        (page, b.finish(page).unwrap())
    };
    let value = vec![5u8; 3000];
    let mut extent = Vec::new();
    encode_extent_into(&mut extent, PS, &value);
    let named = (2, value.len() as u32, extent_checksum(2, &value));

    // One leaf, two cells naming the extent at page 2.
    let file = file_of(
        4,
        vec![(2, extent.clone()), leaf_naming(3, &[named, named])],
    );
    let e = super::walk(&file, PS, 3, |_, _, _| {}).unwrap_err();
    assert!(
        e.to_string().contains("page 2") && e.to_string().contains("twice"),
        "{e}"
    );

    // A root over leaves 3 and 4; leaf 4's value is "an extent" at page 3, leaf 3
    // itself, its checksum computed over the leaf's bytes (a hostile file).
    let (_, leaf3) = leaf_naming(3, &[named]);
    let over_leaf = (3, PS, extent_checksum(3, &leaf3));
    let mut leaf4 = NodeBuilder::new(true, PS);
    let key = TreeKey::whole(b"nnnnnnnn");
    assert!(leaf4.admit(&key, EXTENT_CELL_BODY));
    leaf4.push_leaf_extent(&key, over_leaf.0, over_leaf.1, over_leaf.2);
    let nodes = vec![
        branch(1, 3, &[(b"mmmmmmmm", 4)]),
        (2, extent),
        (3, leaf3),
        (4, leaf4.finish(4).unwrap()),
    ];
    let file = file_of(5, nodes);
    let e = super::walk(&file, PS, 1, |_, _, _| {}).unwrap_err();
    assert!(
        e.to_string().contains("page 3") && e.to_string().contains("twice"),
        "{e}"
    );
}

/// Walks the whole tree with a [`super::cursor::Cursor`] (as the engine's scans and
/// range reads do), in `reverse` or forward, at most `limit` keys: `Ok(keys)` in the
/// order handed out, or the error that refused the tree.
fn cursor_all(file: &[u8], root: u64, reverse: bool, limit: usize) -> Result<Vec<Vec<u8>>, String> {
    let mut c = super::cursor::Cursor::seek(file, PS, root, Bound::Unbounded, reverse, None)
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some((k, _)) = c.step(file, None).map_err(|e| e.to_string())? {
        out.push(k.to_vec());
        assert!(
            out.len() <= limit,
            "the cursor did not end after {limit} keys"
        );
    }
    Ok(out)
}

/// A branch naming the same leaf twice, a branch naming itself, and a chain of branches
/// each naming the next many times (a walk of 150^k leaves): a cursor refuses the node
/// outside the bounds its ancestors give it, naming it, instead of handing
/// out the same keys again (for ever, in the chain).
#[test]
fn a_cursor_refuses_a_leaf_reached_twice() {
    let keys: [&[u8]; 2] = [b"aaaaaaaa", b"bbbbbbbb"];
    // Root 1: children 2 and 2.
    let twice = file_of(3, vec![branch(1, 2, &[(b"mmmmmmmm", 2)]), leaf(2, &keys)]);
    // Root 1: children 2 and 1 (itself).
    let cycle = file_of(3, vec![branch(1, 2, &[(b"mmmmmmmm", 1)]), leaf(2, &keys)]);
    // Branches 1..=20, each naming the next 100 times; branch 20 names leaf 21.
    let seps: Vec<Vec<u8>> = (0..99u32)
        .map(|i| format!("s{i:07}").into_bytes())
        .collect();
    let mut nodes = vec![leaf(21, &keys)];
    for p in 1..=20u64 {
        let cells: Vec<(&[u8], u64)> = seps.iter().map(|s| (s.as_slice(), p + 1)).collect();
        nodes.push(branch(p, p + 1, &cells));
    }
    let chain = file_of(22, nodes);
    for (name, file) in [("twice", &twice), ("cycle", &cycle), ("chain", &chain)] {
        for reverse in [false, true] {
            let got = cursor_all(file, 1, reverse, 16);
            let err = got.expect_err(name);
            // (A reverse walk of the cycle descends into it: "deeper than the limit".)
            assert!(err.contains("corrupted at page"), "{name}: {err}");
        }
    }
    // A well-formed two-leaf tree still walks in order both ways.
    let fine = file_of(
        4,
        vec![
            branch(1, 2, &[(b"mmmmmmmm", 3)]),
            leaf(2, &keys),
            leaf(3, &[b"nnnnnnnn", b"oooooooo"]),
        ],
    );
    let forward = cursor_all(&fine, 1, false, 16).unwrap();
    assert_eq!(forward.len(), 4);
    assert!(forward.windows(2).all(|w| w[0] < w[1]));
    let mut backward = cursor_all(&fine, 1, true, 16).unwrap();
    backward.reverse();
    assert_eq!(backward, forward);
}

/// A leaf, or a branch, holding keys outside the bounds its ancestors give it (every
/// page valid): a lookup descends by the separators and never finds them, and a scan
/// handed them out (a fuzzed branch whose child pointer moved by one had a scan hand
/// out a key and its value that a read of the same key answered as absent). The cursor
/// refuses the node, naming it, and hands out none of its keys; so does `scan_leaf`.
#[test]
fn a_cursor_refuses_a_node_outside_the_bounds_its_ancestors_give() {
    // Root 1: keys below "mmmmmmmm" in leaf 2, the rest in leaf 3, which holds a key
    // below it.
    let leaf_out = file_of(
        4,
        vec![
            branch(1, 2, &[(b"mmmmmmmm", 3)]),
            leaf(2, &[b"aaaaaaaa"]),
            leaf(3, &[b"bbbbbbbb", b"zzzzzzzz"]),
        ],
    );
    // Root 1: the rest in branch 3, whose separator lies below the root's bound: its
    // own leaves then pass their parent's bounds but not the root's.
    let branch_out = file_of(
        6,
        vec![
            branch(1, 2, &[(b"mmmmmmmm", 3)]),
            leaf(2, &[b"aaaaaaaa"]),
            branch(3, 4, &[(b"cccccccc", 5)]),
            leaf(4, &[b"bbbbbbbb"]),
            leaf(5, &[b"dddddddd"]),
        ],
    );
    for (name, file) in [("leaf", &leaf_out), ("branch", &branch_out)] {
        for reverse in [false, true] {
            let err = cursor_all(file, 1, reverse, 16).expect_err(name);
            assert!(err.contains("outside the bounds"), "{name}: {err}");
            // The leaf-at-a-time scan (integrity check, open, history walks) too.
            let err = scan_all(file, 1, reverse, 16).expect_err(name);
            assert!(err.contains("outside the bounds"), "{name}: {err}");
        }
    }
}

/// A branch whose separator lies past the bound its parent gives it (each page valid):
/// the salvage walk took that separator as its next start and skipped the keys of the
/// parent's next subtree below it, naming none of them lost. It now keeps the parent's
/// bound and hands over every key a lookup finds.
#[test]
fn a_salvage_walk_keeps_the_bound_its_parent_gives() {
    let file = file_of(
        6,
        vec![
            branch(1, 2, &[(b"mmmmmmmm", 4)]),
            branch(2, 3, &[(b"tttttttt", 5)]),
            leaf(3, &[b"aaaaaaaa"]),
            leaf(4, &[b"nnnnnnnn", b"pppppppp", b"xxxxxxxx"]),
            leaf(5, &[b"uuuuuuuu"]),
        ],
    );
    let mut from = Vec::new();
    let mut handed = Vec::new();
    for _ in 0..16 {
        let step = salvage_leaf(&file, PS, 1, &from, &[0xFF; 9]);
        assert!(step.damage.is_empty(), "{:?}", step.damage);
        for (k, _) in &step.entries {
            let mut key = Vec::new();
            k.extend_into(&mut key);
            handed.push(key);
        }
        match step.next {
            Some(next) => from = next,
            None => break,
        }
    }
    let want: Vec<Vec<u8>> = [b"aaaaaaaa", b"nnnnnnnn", b"pppppppp", b"xxxxxxxx"]
        .iter()
        .map(|k| k.to_vec())
        .collect();
    assert_eq!(handed, want);
}

/// An overflow run whose header disagrees with its leaf cell (another length, or an
/// entry count an overflow run never has), checksum valid: every read of the key
/// refuses it, so the integrity walk must too (it read the run's pages alone and said
/// the tree was sound).
#[test]
fn the_walk_refuses_an_overflow_run_a_read_refuses() {
    use super::page::OVERFLOW_CELL_BODY;
    let key = crate::btree::composite(1, b"k");
    let value = vec![7u8; 6000];
    // The cell says `cell_len`; the run at page 4 says `run_len` and `entries`.
    let tree = |cell_len: u32, run_len: u32, entries: u64| {
        let run = super::run::encode_run(
            crate::format::PageKind::Overflow,
            4,
            PS,
            &value,
            run_len,
            entries,
        );
        let mut b = NodeBuilder::new(true, PS);
        assert!(b.admit(&TreeKey::whole(&key), OVERFLOW_CELL_BODY));
        b.push_leaf_overflow(&TreeKey::whole(&key), 4, cell_len);
        file_of(7, vec![(3, b.finish(3).unwrap()), (4, run)])
    };
    let read = |file: &[u8]| super::get(file, PS, 3, &key, None).map(|v| v.map(<[u8]>::len));
    let sound = tree(6000, 6000, 0);
    assert_eq!(read(&sound).unwrap(), Some(6000));
    assert_eq!(super::walk(&sound, PS, 3, |_, _, _| {}).unwrap(), 1);
    for (cell_len, run_len, entries) in [(5000, 6000, 0), (6000, 5000, 0), (6000, 6000, 1)] {
        let file = tree(cell_len, run_len, entries);
        let e = read(&file).unwrap_err().to_string();
        assert!(e.contains("page 4"), "{e}");
        let e = super::walk(&file, PS, 3, |_, _, _| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("page 4"), "{cell_len} {run_len} {entries}: {e}");
    }
}

/// Two damaged extents named by one leaf, and a leaf at another depth than the first
/// the walk met: the walk names both extents (it stopped at a leaf's first damaged
/// value) and still checks the values of the leaf at the wrong depth.
#[test]
fn the_walk_names_every_damaged_value_of_a_leaf() {
    use super::page::EXTENT_CELL_BODY;
    use super::run::{encode_extent_into, extent_checksum};
    let value = vec![5u8; 3000];
    let mut extent = Vec::new();
    encode_extent_into(&mut extent, PS, &value);
    // A leaf at `page` whose keys `prefix‖a`, `prefix‖b`, ... name extents at `pages`.
    let leaf_naming = |page: u64, prefix: u8, pages: &[u64]| {
        let mut b = NodeBuilder::new(true, PS);
        for (i, &e) in pages.iter().enumerate() {
            let k = [vec![prefix; 7], vec![b'a' + i as u8]].concat();
            let key = TreeKey::whole(&k);
            assert!(b.admit(&key, EXTENT_CELL_BODY));
            b.push_leaf_extent(&key, e, 3000, extent_checksum(e, &value));
        }
        (page, b.finish(page).unwrap())
    };
    // Extents at 2, 4 and 5; the ones at 2 and 5 damaged.
    let mut bad = extent.clone();
    bad[100] ^= 1;
    let file = file_of(
        7,
        vec![
            (2, bad.clone()),
            leaf_naming(3, b'a', &[2, 4, 5]),
            (4, extent.clone()),
            (5, bad.clone()),
        ],
    );
    let mut named = Vec::new();
    super::walk_reporting(&file, PS, 3, |_, _, _| {}, |e| named.push(e.to_string()));
    assert_eq!(named.len(), 2, "{named:?}");
    assert!(
        named[0].contains("page 2") && named[1].contains("page 5"),
        "{named:?}"
    );

    // A root over a leaf (page 3, damaged extent at 2) and a branch over a leaf (page
    // 5, damaged extent at 6): the walk meets leaf 5 first (depth 2), then leaf 3 at
    // depth 1, which it names, and still names the extent under it.
    let file = file_of(
        9,
        vec![
            branch(1, 3, &[(b"mmmmmmmm", 4)]),
            (2, bad.clone()),
            leaf_naming(3, b'a', &[2]),
            branch(4, 5, &[]),
            leaf_naming(5, b'n', &[6]),
            (6, bad),
        ],
    );
    let mut named = Vec::new();
    super::walk_reporting(&file, PS, 1, |_, _, _| {}, |e| named.push(e.to_string()));
    let all = named.join(" | ");
    for page in ["page 2", "page 3", "page 6"] {
        assert!(all.contains(page), "{page}: {all}");
    }
}

/// A leaf with a damaged value and, after it, a key past the bound its parent gives: the
/// whole leaf is lost, reported once from the walk's start. The damaged value was also
/// kept, so the losses came twice and out of key order.
#[test]
fn a_lost_leaf_is_reported_once_in_key_order() {
    use super::page::EXTENT_CELL_BODY;
    use super::run::{encode_extent_into, extent_checksum};
    let value = vec![5u8; 3000];
    let mut extent = Vec::new();
    encode_extent_into(&mut extent, PS, &value);
    let mut bad = extent.clone();
    bad[100] ^= 1;
    let mut b = NodeBuilder::new(true, PS);
    for (k, page) in [(b"bbbbbbbb", 2u64), (b"zzzzzzzz", 5)] {
        let key = TreeKey::whole(k);
        assert!(b.admit(&key, EXTENT_CELL_BODY));
        b.push_leaf_extent(&key, page, 3000, extent_checksum(page, &value));
    }
    let file = file_of(
        7,
        vec![
            branch(1, 3, &[(b"mmmmmmmm", 4)]),
            (2, bad),
            (3, b.finish(3).unwrap()),
            leaf(4, &[b"nnnnnnnn"]),
            (5, extent),
        ],
    );
    let step = salvage_leaf(&file, PS, 1, b"", &[0xFF; 9]);
    assert!(step.entries.is_empty());
    let spans: Vec<(&[u8], &[u8])> = step
        .damage
        .iter()
        .map(|d| (&d.from[..], &d.until[..]))
        .collect();
    assert_eq!(spans, [(&b""[..], &b"mmmmmmmm"[..])], "{:?}", step.damage);
}

/// A checksum-valid leaf of another range where a branch names a child: a salvage names
/// it lost, as every read refuses it. From the walk's start (the branch's separator) the
/// leaf of the lower range gave nothing and no damage: the keys its range held were lost
/// with the report saying none were. A leaf of an older state (keys on both sides of the
/// separator) gave its old keys above it as current.
#[test]
fn a_salvage_names_a_leaf_of_another_range_lost() {
    let walk = |file: &[u8]| {
        let (mut entries, mut damage, mut from) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..10 {
            let step = salvage_leaf(file, PS, 1, &from, &[0xFF; 9]);
            entries.extend(step.entries.iter().map(|(k, _)| k.to_vec()));
            damage.extend(
                step.damage
                    .iter()
                    .map(|d| (d.error.to_string(), d.from.clone(), d.until.clone())),
            );
            match step.next {
                Some(next) => from = next,
                None => return (entries, damage),
            }
        }
        panic!("the walk did not end");
    };
    for leaf_3 in [
        &[&b"bbbbbbbb"[..], b"dddddddd"][..],
        &[b"cccccccc", b"nnnnnnnn", b"pppppppp"],
    ] {
        let file = file_of(
            4,
            vec![
                branch(1, 2, &[(b"mmmmmmmm", 3)]),
                leaf(2, &[b"aaaaaaaa"]),
                leaf(3, leaf_3),
            ],
        );
        let (entries, damage) = walk(&file);
        assert_eq!(entries, [b"aaaaaaaa".to_vec()]);
        assert_eq!(damage.len(), 1, "{damage:?}");
        let (error, from, until) = &damage[0];
        assert!(
            error.contains("page 3") && error.contains("outside"),
            "{error}"
        );
        assert_eq!((&from[..], &until[..]), (&b"mmmmmmmm"[..], &[0xFF; 9][..]));
    }
}

/// A checksum-valid leaf of another part of the tree where a branch names a child (a
/// lost or misdirected write): a point read missing at the leaf's edge checks the
/// descent and names the leaf, where it answered "absent" for every key of the range
/// the branch gives. A hit, and a miss between two of the leaf's keys, still answer.
#[test]
fn a_point_read_refuses_a_leaf_of_another_range() {
    // As a read calls it: with the pager's set of verified pages (one per file here).
    let get = |file: &[u8], key: &[u8]| {
        let verified = crate::pager::Verified::default();
        super::get(file, PS, 1, key, Some(&verified)).map(|v| v.is_some())
    };
    // Root 1: keys below "mmmmmmmm" in leaf 2, the rest in leaf 3; leaf 3 holds keys
    // of the lower range.
    let below = file_of(
        4,
        vec![
            branch(1, 2, &[(b"mmmmmmmm", 3)]),
            leaf(2, &[b"aaaaaaaa"]),
            leaf(3, &[b"bbbbbbbb", b"dddddddd"]),
        ],
    );
    let err = get(&below, b"nnnnnnnn").unwrap_err().to_string();
    assert!(
        err.contains("page 3") && err.contains("outside the bounds"),
        "{err}"
    );
    // Leaf 2 holds keys of the upper range.
    let above = file_of(
        4,
        vec![
            branch(1, 2, &[(b"mmmmmmmm", 3)]),
            leaf(2, &[b"xxxxxxxx", b"yyyyyyyy"]),
            leaf(3, &[b"nnnnnnnn"]),
        ],
    );
    let err = get(&above, b"aaaaaaaa").unwrap_err().to_string();
    assert!(
        err.contains("page 2") && err.contains("outside the bounds"),
        "{err}"
    );
    // A sound tree: hits, misses inside a leaf and at its edges.
    let fine = file_of(
        4,
        vec![
            branch(1, 2, &[(b"mmmmmmmm", 3)]),
            leaf(2, &[b"bbbbbbbb", b"dddddddd"]),
            leaf(3, &[b"nnnnnnnn", b"pppppppp"]),
        ],
    );
    for (key, found) in [
        (&b"aaaaaaaa"[..], false),
        (b"bbbbbbbb", true),
        (b"cccccccc", false),
        (b"eeeeeeee", false),
        (b"mmmmmmmm", false),
        (b"nnnnnnnn", true),
        (b"oooooooo", false),
        (b"zzzzzzzz", false),
    ] {
        assert_eq!(get(&fine, key).unwrap(), found, "{key:?}");
    }
}
