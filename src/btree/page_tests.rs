//! Tests of leaf and branch pages (`page.rs`).

use super::*;
use proptest::prelude::*;

fn k(table: u64, key: &[u8]) -> Vec<u8> {
    crate::btree::composite(table, key)
}

#[test]
fn leaf_and_branch_round_trip() {
    let (a, b_key) = (k(3, b"a"), k(3, b"b"));
    let mut b = NodeBuilder::new(true, 4096);
    assert!(b.admit(&TreeKey::whole(&a), 1));
    b.push_leaf_inline(&TreeKey::whole(&a), b"1");
    assert!(b.admit(&TreeKey::whole(&b_key), OVERFLOW_BODY));
    b.push_leaf_overflow(&TreeKey::whole(&b_key), 77, 5000);
    let c_key = k(3, b"c");
    assert!(b.admit(&TreeKey::whole(&c_key), EXTENT_CELL_BODY));
    b.push_leaf_extent(&TreeKey::whole(&c_key), 81, 4096, 0xDEAD_BEEF);
    assert_eq!(b.prefix(), 3u64.to_be_bytes());
    let page = b.finish(9).unwrap();
    assert_eq!(page[4], PageKind::CompactLeaf as u8);
    let n = NodeRef::parse(&page, 9).unwrap();
    assert!(n.is_leaf() && n.is_compact());
    assert_eq!(n.count(), 3);
    assert!(n.key(1).unwrap().eq_bytes(&b_key));
    assert_eq!(n.key(1).unwrap().user(), b"b");
    assert_eq!(n.key(1).unwrap().table_bytes(), Some(3u64.to_be_bytes()));
    assert_eq!(n.key(0).unwrap().to_vec(), a);
    assert_eq!(n.value(0).unwrap(), CellValue::Inline(b"1"));
    let overflow = CellValue::Overflow {
        page: 77,
        len: 5000,
    };
    assert_eq!(n.value(1).unwrap(), overflow);
    assert_eq!(n.entry(1).unwrap().1, overflow);
    let extent = CellValue::Extent {
        page: 81,
        len: 4096,
        crc: 0xDEAD_BEEF,
    };
    assert_eq!(n.value(2).unwrap(), extent);
    assert_eq!(n.entry(2).unwrap().1, extent);
    assert_eq!(n.search(&c_key).unwrap(), Ok(2));
    assert_eq!(n.search(&b_key).unwrap(), Ok(1));
    assert_eq!(n.search(&k(3, b"aa")).unwrap(), Err(1));
    assert_eq!(n.search(&k(2, b"zz")).unwrap(), Err(0));
    assert_eq!(n.search(&k(4, b"")).unwrap(), Err(3));
    assert_eq!(n.search(&[0, 0, 0]).unwrap(), Err(0));
    assert_eq!(n.search(&k(3, b"")).unwrap(), Err(0));

    let mut b = NodeBuilder::new(false, 4096);
    b.set_first_child(3);
    b.push_raw(&branch_cell(b"m", 4));
    let page = b.finish(10).unwrap();
    let n = NodeRef::parse(&page, 10).unwrap();
    assert_eq!((n.child(0).unwrap(), n.child(1).unwrap()), (3, 4));
    assert_eq!(n.separator(0).unwrap(), b"m");
    assert_eq!(n.child_index_for(b"a").unwrap(), 0);
    assert_eq!(n.child_index_for(b"m").unwrap(), 1);
    assert_eq!(n.child_index_for(b"z").unwrap(), 1);
}

#[test]
fn version_3_leaves_are_read() {
    let (a, b_key) = (k(3, b"a"), k(3, b"b"));
    let mut b = NodeBuilder::new(true, 4096);
    b.push_raw(&v3_leaf_cell_inline(&a, b"1"));
    b.push_raw(&v3_leaf_cell_overflow(&b_key, 77, 5000));
    let page = b.finish_v3_leaf(9).unwrap();
    let n = NodeRef::parse(&page, 9).unwrap();
    assert!(n.is_leaf() && !n.is_compact());
    assert!(n.key(1).unwrap().eq_bytes(&b_key));
    assert_eq!(n.key(1).unwrap().user(), b"b");
    assert_eq!(n.value(0).unwrap(), CellValue::Inline(b"1"));
    assert_eq!(
        n.value(1).unwrap(),
        CellValue::Overflow {
            page: 77,
            len: 5000
        }
    );
    assert_eq!(n.search(&b_key).unwrap(), Ok(1));
    assert_eq!(n.search(&k(3, b"aa")).unwrap(), Err(1));
    let parsed = NodeRef::parsed_leaf(&page, 9, n.shape());
    assert_eq!(parsed.entry(0).unwrap().0.to_vec(), a);
}

/// Keys of several small tables share a leaf: its prefix shrinks to what they
/// share, the cells already in it take back the bytes it gave up, and every key
/// reads back whole. A leaf at least half full starts a new leaf instead.
#[test]
fn small_tables_share_a_leaf_and_its_prefix_shrinks() {
    let mut b = NodeBuilder::new(true, 4096);
    let keys: Vec<Vec<u8>> = (0..40u64)
        .flat_map(|t| [k(0x0102 + t * 3, b"x"), k(0x0102 + t * 3, b"yy")])
        .collect();
    for key in &keys {
        let key = TreeKey::whole(key);
        assert!(b.admit(&key, 10));
        b.push_leaf_inline(&key, &[9; 10]);
    }
    assert_eq!(b.prefix(), &[0, 0, 0, 0, 0, 0, 1][..]);
    let page = b.finish(4).unwrap();
    assert_eq!(page[18], 7);
    let n = NodeRef::parse(&page, 4).unwrap();
    assert_eq!(n.prefix(), &[0, 0, 0, 0, 0, 0, 1][..]);
    for (i, key) in keys.iter().enumerate() {
        let (got, value) = n.entry(i).unwrap();
        assert_eq!(got.to_vec(), *key);
        assert_eq!(got.user(), &key[8..]);
        assert_eq!(
            got.table_bytes().map(|t| t.to_vec()),
            Some(key[..8].to_vec())
        );
        assert_eq!(value, CellValue::Inline(&[9; 10]));
        assert_eq!(n.search(key).unwrap(), Ok(i));
    }
    assert_eq!(n.search(&k(1, b"")).unwrap(), Err(0));
    assert_eq!(n.search(&k(1 << 60, b"")).unwrap(), Err(keys.len()));

    // Half full: the next table starts a new leaf.
    let mut b = NodeBuilder::new(true, 4096);
    let big = TreeKey::whole(&keys[0]);
    assert!(b.admit(&big, 1100));
    b.push_leaf_inline(&big, &[1; 1100]);
    let next = TreeKey::whole(&keys[1]);
    assert!(b.admit(&next, 1100));
    b.push_leaf_inline(&next, &[1; 1100]);
    assert!(!b.admit(&TreeKey::whole(&keys[2]), 10));
    assert_eq!(b.prefix(), &keys[0][..8]);
}

proptest! {
    #[test]
    fn compact_leaves_round_trip(
        table in 0u64..4,
        entries in proptest::collection::btree_map(
            proptest::collection::vec(any::<u8>(), 0..40),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
            0..12),
        probe in proptest::collection::vec(any::<u8>(), 0..12),
    ) {
        let mut b = NodeBuilder::new(true, 4096);
        let keys: Vec<Vec<u8>> = entries.keys().map(|u| k(table, u)).collect();
        for (key, v) in keys.iter().zip(entries.values()) {
            let key = TreeKey::whole(key);
            match v {
                Some(v) => {
                    prop_assert!(b.admit(&key, v.len()));
                    b.push_leaf_inline(&key, v);
                }
                None => {
                    prop_assert!(b.admit(&key, OVERFLOW_BODY));
                    b.push_leaf_overflow(&key, 9, 70_000);
                }
            }
        }
        let page = b.finish(2).unwrap();
        let n = NodeRef::parse(&page, 2).unwrap();
        prop_assert_eq!(n.count(), entries.len());
        for (i, (key, v)) in keys.iter().zip(entries.values()).enumerate() {
            let (got, value) = n.entry(i).unwrap();
            prop_assert_eq!(got.to_vec(), key.clone());
            prop_assert_eq!(n.search(key).unwrap(), Ok(i));
            let want = match v {
                Some(v) => CellValue::Inline(v),
                None => CellValue::Overflow { page: 9, len: 70_000 },
            };
            prop_assert_eq!(value, want);
            prop_assert_eq!(n.value(i).unwrap(), want);
        }
        let probe = k(table, &probe);
        let want = keys.binary_search(&probe);
        prop_assert_eq!(n.search(&probe).unwrap(), want);
    }
}

proptest! {
    /// Cells of one size make a uniform leaf (kind 9) that reads back like a compact
    /// one; one cell of another size makes the leaf compact.
    #[test]
    fn uniform_leaves_round_trip(
        table in 0u64..4,
        key_len in 0usize..12,
        value_len in 0usize..60,
        seeds in proptest::collection::btree_set(any::<u64>(), 1..300),
        odd_one in any::<bool>(),
        probe in any::<u64>(),
    ) {
        let user = |s: u64| s.to_be_bytes().repeat(2)[..key_len].to_vec();
        let users: std::collections::BTreeSet<Vec<u8>> = seeds.iter().map(|&s| user(s)).collect();
        let mut b = NodeBuilder::new(true, 4096);
        let mut keys = Vec::new();
        let mut values = Vec::new();
        for (i, u) in users.iter().enumerate() {
            let key = k(table, u);
            // With `odd_one`, the second cell's value is a byte longer.
            let len = value_len + usize::from(odd_one && i == 1);
            let value = vec![i as u8; len];
            if !b.admit_inline(&TreeKey::whole(&key), len) {
                break;
            }
            b.push_leaf_inline(&TreeKey::whole(&key), &value);
            keys.push(key);
            values.push(value);
        }
        let page = b.finish(2).unwrap();
        let uniform = !(odd_one && keys.len() > 1);
        let kind = if uniform { PageKind::UniformLeaf } else { PageKind::CompactLeaf };
        prop_assert_eq!(page[4], kind as u8);
        prop_assert_eq!(page.len(), 4096);
        let verified = crate::pager::Verified::default();
        let n = NodeRef::parse_cached(&page, 2, Some(&verified)).unwrap();
        let again = NodeRef::parse_cached(&page, 2, Some(&verified)).unwrap();
        let lent = NodeRef::parsed_leaf(&page, 2, n.shape());
        prop_assert_eq!(n.is_compact(), !uniform);
        prop_assert_eq!(n.count(), keys.len());
        for (i, (key, value)) in keys.iter().zip(&values).enumerate() {
            for node in [&n, &again, &lent] {
                let (got, v) = node.entry(i).unwrap();
                prop_assert_eq!(got.to_vec(), key.clone());
                prop_assert_eq!(v, CellValue::Inline(value));
                prop_assert_eq!(node.value(i).unwrap(), CellValue::Inline(value));
                prop_assert_eq!(node.key(i).unwrap().to_vec(), key.clone());
            }
            prop_assert_eq!(n.search(key).unwrap(), Ok(i));
            let bounds = (Some(&keys[0][..]), Some(&[0xFFu8; 9][..]));
            prop_assert_eq!(n.search_near(key, bounds).unwrap(), Ok(i));
        }
        prop_assert_eq!(n.raw_cell(0).is_ok(), !uniform);
        n.touch_cells(0, keys.len(), true);
        n.touch_cells(0, keys.len(), false);
        let probe = k(table, &user(probe));
        prop_assert_eq!(n.search(&probe).unwrap(), keys.binary_search(&probe));
    }
}

/// A 64 KiB page of uniform cells: the builder stages them in the compact encoding, past
/// 65,535 bytes (4,094 cells of 8 + 8 bytes take 81,880 bytes with their heads), and every
/// cell reads back (16-bit staging offsets wrapped: cell 3,277 on were copied from the
/// wrong place).
#[test]
fn a_64k_page_of_uniform_cells_reads_back_every_cell() {
    let mut b = NodeBuilder::new(true, 65536);
    let mut keys = Vec::new();
    for i in 0u64..10_000 {
        let key = k(3, &i.to_be_bytes());
        if !b.admit_inline(&TreeKey::whole(&key), 8) {
            break;
        }
        b.push_leaf_inline(&TreeKey::whole(&key), &(i * 3).to_le_bytes());
        keys.push(key);
    }
    assert_eq!(keys.len(), 4094);
    let page = b.finish(7).unwrap();
    assert_eq!((page.len(), page[4]), (65536, PageKind::UniformLeaf as u8));
    let n = NodeRef::parse(&page, 7).unwrap();
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(n.search(key).unwrap(), Ok(i));
        let value = (i as u64 * 3).to_le_bytes();
        assert_eq!(n.value(i).unwrap(), CellValue::Inline(&value));
    }
}

/// A uniform leaf whose header is wrong: cells that do not fit, or keys out of order
/// (each resealed, so only the structure is wrong), is refused naming its page, trusted
/// or not.
#[test]
fn a_damaged_uniform_leaf_is_refused_naming_its_page() {
    let mut b = NodeBuilder::new(true, 4096);
    for i in 0..10u64 {
        let key = k(3, &i.to_be_bytes());
        assert!(b.admit_inline(&TreeKey::whole(&key), 4));
        b.push_leaf_inline(&TreeKey::whole(&key), &[1, 2, 3, 4]);
    }
    let good = b.finish(9).unwrap();
    assert_eq!(good[4], PageKind::UniformLeaf as u8);
    assert_eq!((good[20], good[22]), (8, 4));
    let verified = crate::pager::Verified::default();
    NodeRef::parse_cached(&good, 9, Some(&verified)).unwrap();
    let resealed = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut page = good.clone();
        f(&mut page);
        crate::format::seal_page(&mut page, PageKind::UniformLeaf, 9).unwrap();
        page
    };
    // Count and lengths that put the cells past the page; no cells at all.
    for (page, what) in [
        (
            resealed(&|p| p[16..18].copy_from_slice(&400u16.to_le_bytes())),
            "uniform cells do not fit",
        ),
        (
            resealed(&|p| p[20..22].copy_from_slice(&4000u16.to_le_bytes())),
            "uniform cells do not fit",
        ),
        (
            resealed(&|p| p[16..18].copy_from_slice(&0u16.to_le_bytes())),
            "uniform cells do not fit",
        ),
    ] {
        for v in [None, Some(&verified)] {
            let err = NodeRef::parse_cached(&page, 9, v)
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains("page 9") && err.contains(what), "{err}");
        }
    }
    // A shorter key length reads every key as its first 7 bytes' rest: all cells but
    // the shifted ones out of order.
    let page = resealed(&|p| p[20..22].copy_from_slice(&2u16.to_le_bytes()));
    let err = NodeRef::parse(&page, 9).err().unwrap().to_string();
    assert!(
        err.contains("page 9") && err.contains("keys out of order"),
        "{err}"
    );
    // A flipped bit without a reseal fails the checksum.
    let mut page = good.clone();
    page[40] ^= 1;
    assert!(NodeRef::parse(&page, 9).is_err());
}

#[test]
fn offsets_match_spec() {
    let md = include_str!("../../format-spec/btree.md");
    let rows = crate::format::spec_table::rows(md, "Leaf page");
    let names: Vec<_> = rows
        .iter()
        .map(|r| (r.name.as_str(), r.offset, r.size))
        .collect();
    assert_eq!(
        names,
        vec![
            ("count", 16, 2),
            ("prefix_len", 18, 1),
            ("pages", 19, 1),
            ("reserved", 20, 4),
            ("first_child", 24, 8)
        ]
    );
    let rows = crate::format::spec_table::rows(md, "Uniform leaf");
    assert_eq!(
        rows.iter()
            .map(|r| (r.name.as_str(), r.offset, r.size))
            .collect::<Vec<_>>(),
        vec![("rest_len", 20, 2), ("value_len", 22, 2)]
    );
    let rows = crate::format::spec_table::rows(md, "Compact leaf cell");
    assert_eq!(
        rows.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![0, 2, 4]
    );
    assert_eq!(
        rows.get(1).map(|r| r.offset + r.size),
        Some(COMPACT_CELL_HEAD)
    );
    let rows = crate::format::spec_table::rows(md, "Leaf cell");
    assert_eq!(
        rows.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![0, 2, 3, 4, 8]
    );
    assert_eq!(rows.get(3).map(|r| r.offset + r.size), Some(LEAF_CELL_HEAD));
    let rows = crate::format::spec_table::rows(md, "Branch cell");
    assert_eq!(
        rows.last().map(|r| r.offset + r.size),
        Some(BRANCH_CELL_HEAD)
    );
    assert_eq!(
        rows.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![0, 2, 8]
    );
    // The reference after an extent cell's key: page, length and checksum at 0, 8, 12
    // (`NodeRef::compact_value`, `NodeBuilder::push_leaf_extent`).
    let rows = crate::format::spec_table::rows(md, "Extent reference");
    crate::format::spec_table::assert_layout(
        &rows,
        &[
            ("first_page", 0, 8),
            ("value_len", 8, 4),
            ("checksum", 12, 4),
        ],
    );
    assert_eq!(
        rows.last().map(|r| r.offset + r.size),
        Some(EXTENT_CELL_BODY)
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096), n in 0u64..4) {
        if let Ok(node) = NodeRef::parse(&bytes, n) {
            for i in 0..node.count() {
                let _ = node.key(i);
                let _ = node.value(i);
                let _ = node.child(i);
            }
            let _ = node.search(b"k");
        }
    }
}

/// Keys spread evenly, clustered, decimal or random, any bounds (even ones that do not
/// bound the page): the interpolating search finds what the binary search finds.
fn search_keys() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop_oneof![
        proptest::collection::btree_set(proptest::collection::vec(any::<u8>(), 0..12), 0..120)
            .prop_map(|s| s.into_iter().collect()),
        proptest::collection::btree_set(0u64..1_000_000, 0..120).prop_map(|s| s
            .into_iter()
            .map(|n| format!("user:{n:08}").into_bytes())
            .collect()),
        proptest::collection::btree_set(0u64..1_000_000, 0..120).prop_map(|s| s
            .into_iter()
            .map(|n| format!("user{n}").into_bytes())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()),
        proptest::collection::btree_set((0u64..4).prop_map(|x| x * x * x * 1000), 0..120)
            .prop_map(|s| s.into_iter().map(|n| n.to_be_bytes().to_vec()).collect()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn interpolating_search_matches_binary_search(
        table in 0u64..3,
        users in search_keys(),
        probe in proptest::collection::vec(any::<u8>(), 0..12),
        pick in any::<proptest::sample::Index>(),
        bounds in (proptest::option::of(proptest::collection::vec(any::<u8>(), 0..14)),
                   proptest::option::of(proptest::collection::vec(any::<u8>(), 0..14))),
        tight in any::<bool>(),
        value_len in prop_oneof![Just(1usize), 250usize..480],
    ) {
        // Values of 250 bytes or more make cells large enough for a search from the
        // estimate at fewer than 16 cells.
        let keys: Vec<Vec<u8>> = users.iter().map(|u| k(table, u)).collect();
        let mut b = NodeBuilder::new(true, 65536);
        let value = vec![b'v'; value_len];
        for key in &keys {
            let key = TreeKey::whole(key);
            prop_assert!(b.admit(&key, value.len()));
            b.push_leaf_inline(&key, &value);
        }
        let page = b.finish(3).unwrap();
        let n = NodeRef::parse(&page, 3).unwrap();
        // Bounds that really bound the page (the first key and one past the last), or
        // arbitrary ones.
        let (lo, hi) = if tight && !keys.is_empty() {
            let mut past = keys[keys.len() - 1].clone();
            past.push(0);
            (Some(keys[0].clone()), Some(past))
        } else {
            (bounds.0.map(|b| k(table, &b)), bounds.1.map(|b| k(table, &b)))
        };
        let mut probes = vec![k(table, &probe), k(table + 1, b""), k(table, b"")];
        if !keys.is_empty() {
            let i = pick.index(keys.len());
            probes.push(keys[i].clone());
            let mut after = keys[i].clone();
            after.push(1);
            probes.push(after);
        }
        for p in probes {
            let want = keys.binary_search(&p);
            prop_assert_eq!(n.search(&p).unwrap(), want);
            prop_assert_eq!(n.search_near(&p, (lo.as_deref(), hi.as_deref())).unwrap(), want);
        }
    }
}

/// A page read once (so trusted afterwards) whose header changes in memory: the trusted
/// path still parses the header and names the page instead of reading it as a node.
#[test]
fn a_trusted_page_with_a_bad_header_is_an_error_naming_it() {
    let verified = crate::pager::Verified::default();
    let mut b = NodeBuilder::new(true, 4096);
    // Two values of different lengths: a compact leaf, whose bytes 20..24 are reserved.
    for (key, value) in [(k(3, b"a"), &b"1"[..]), (k(3, b"b"), &b"22"[..])] {
        assert!(b.admit_inline(&TreeKey::whole(&key), value.len()));
        b.push_leaf_inline(&TreeKey::whole(&key), value);
    }
    let mut page = b.finish(9).unwrap();
    assert_eq!(page[4], PageKind::CompactLeaf as u8);
    assert_eq!(
        NodeRef::parse_cached(&page, 9, Some(&verified))
            .unwrap()
            .count(),
        2
    );
    assert!(verified.contains(9));
    let error_of = |page: &[u8]| {
        NodeRef::parse_cached(page, 9, Some(&verified))
            .err()
            .unwrap()
            .to_string()
    };
    let good = page.clone();
    page[4] = 1;
    let err = error_of(&page);
    assert!(
        err.contains("page 9") && err.contains("expected a tree page, found kind byte 1"),
        "{err}"
    );
    page = good.clone();
    page[20] = 1;
    let err = error_of(&page);
    assert!(
        err.contains("page 9") && err.contains("reserved node header bytes"),
        "{err}"
    );
    assert_eq!(
        NodeRef::parse_cached(&good, 9, Some(&verified))
            .unwrap()
            .count(),
        2
    );
}
