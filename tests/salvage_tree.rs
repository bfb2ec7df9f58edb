//! `Database::salvage_table` on a file with a damaged tree page or value: every other key
//! comes out with its committed value, the versions committed after the last checkpoint
//! come out even where the tree below them is damaged, nothing deleted or never written
//! comes out, and every key that does not come out lies in a reported loss that names
//! the damaged page. Each leaf, branch and value extent of a small database is damaged
//! in turn.

use capsuledb::storage::SimStorage;
use capsuledb::{Database, Durability, Error, HistoryRetention, Options, SalvageReport};
use std::collections::BTreeMap;
use std::sync::Arc;

const PAGE: usize = 4096;
const KEYS: u32 = 2000;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn key(i: u32) -> Vec<u8> {
    i.to_be_bytes().to_vec()
}

fn value(i: u32, round: u8) -> Vec<u8> {
    let len = if i % 250 == 7 { 3000 } else { 40 };
    (0..len)
        .map(|j| (i as usize * 31 + j) as u8 ^ round)
        .collect()
}

/// A database whose table `t` lies in a tree of many leaves (with a few values in
/// extents), then updates and deletions committed durably after the checkpoint (in the
/// log only); the file as a crash leaves it, the model of `t`, and the keys the log holds.
fn build() -> (Vec<u8>, Model, Vec<Vec<u8>>) {
    let sim = SimStorage::new();
    let db = Options::new()
        .random_seed(3)
        .open_storage(Arc::new(sim.clone()))
        .unwrap();
    let mut c = db.connect();
    let mut model = Model::new();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.create_table("u").unwrap();
    for i in 0..KEYS {
        tx.put("t", &key(i), &value(i, 0)).unwrap();
        model.insert(key(i), value(i, 0));
    }
    for i in 0..50u32 {
        tx.put("u", &key(i), b"small").unwrap();
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap().unwrap();
    db.compact().unwrap();
    assert_eq!(db.stats().versions, 0, "everything is in the tree");
    let mut logged = Vec::new();
    for i in (0..KEYS).step_by(97) {
        let mut tx = c.begin().unwrap();
        tx.put("t", &key(i), &value(i, 1)).unwrap();
        tx.commit_with(Durability::Durable).unwrap();
        model.insert(key(i), value(i, 1));
        logged.push(key(i));
    }
    for i in (5..KEYS).step_by(131) {
        let mut tx = c.begin().unwrap();
        tx.delete("t", &key(i)).unwrap();
        tx.commit_with(Durability::Durable).unwrap();
        model.remove(&key(i));
    }
    // Two keys whose tree values lie in extents, deleted and updated in the log only: a
    // damaged extent of theirs is no loss (the log holds their state).
    let mut tx = c.begin().unwrap();
    tx.delete("t", &key(257)).unwrap();
    tx.put("t", &key(507), &value(507, 1)).unwrap();
    tx.commit_with(Durability::Durable).unwrap();
    model.remove(&key(257));
    model.insert(key(507), value(507, 1));
    logged.push(key(507));
    // A new key past the tree's: only the log has it.
    let mut tx = c.begin().unwrap();
    tx.put("t", &key(KEYS + 5), b"new").unwrap();
    tx.commit_with(Durability::Durable).unwrap();
    model.insert(key(KEYS + 5), b"new".to_vec());
    logged.push(key(KEYS + 5));
    sim.crash_losing_unsynced();
    let bytes = sim.live_bytes();
    drop(c);
    drop(db);
    (bytes, model, logged)
}

fn open_read_only(bytes: Vec<u8>) -> capsuledb::Result<Database> {
    Options::new()
        .random_seed(3)
        .read_only(true)
        .open_storage(Arc::new(SimStorage::from_bytes(bytes)))
}

/// Keys and values in the order a salvage handed them over.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// What `tx` salvages of `table`, in the order handed over, and its report.
fn salvaged(tx: &capsuledb::Transaction<'_>, table: &str) -> (Pairs, SalvageReport) {
    let mut got = Vec::new();
    let report = tx
        .salvage_table(table, |k, v| {
            got.push((k.to_vec(), v.to_vec()));
            Ok(())
        })
        .unwrap();
    (got, report)
}

/// Salvages `t`; checks what came out against the model and the losses reported.
fn salvage_and_check(
    db: &Database,
    model: &Model,
    logged: &[Vec<u8>],
    what: &str,
) -> SalvageReport {
    let mut out = Model::new();
    let report = db
        .salvage_table("t", |k, v| {
            assert!(
                out.insert(k.to_vec(), v.to_vec()).is_none(),
                "{what}: key handed over twice"
            );
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{what}: salvage failed: {e}"));
    assert_eq!(report.entries, out.len() as u64, "{what}");
    let mut previous: Option<&Vec<u8>> = None;
    for k in out.keys() {
        assert!(previous < Some(k), "{what}: keys out of order");
        previous = Some(k);
    }
    for (k, v) in &out {
        assert_eq!(
            model.get(k),
            Some(v),
            "{what}: salvage handed over a key or value never committed (key {k:?})"
        );
    }
    // A loss of one key names a key whose state the tree alone held.
    for l in &report.losses {
        let one_key = l
            .until
            .as_ref()
            .is_some_and(|u| *u == [&l.from[..], &[0]].concat());
        assert!(
            !one_key || (model.contains_key(&l.from) && !logged.contains(&l.from)),
            "{what}: key {:?} reported lost, but the log holds its state",
            l.from
        );
    }
    let lost = |k: &Vec<u8>| {
        report.losses.iter().any(|l| {
            l.from.as_slice() <= k.as_slice()
                && l.until.as_ref().is_none_or(|u| k.as_slice() < u.as_slice())
        })
    };
    for k in model.keys() {
        if !out.contains_key(k) {
            assert!(
                lost(k),
                "{what}: key {k:?} neither handed over nor in a reported loss: {:?}",
                report.losses
            );
        }
    }
    for k in logged {
        assert!(
            out.contains_key(k),
            "{what}: key {k:?}, committed after the checkpoint, was not handed over"
        );
    }
    report
}

#[test]
fn an_undamaged_file_salvages_whole() {
    let (bytes, model, logged) = build();
    let db = open_read_only(bytes).unwrap();
    let report = salvage_and_check(&db, &model, &logged, "undamaged");
    assert!(report.losses.is_empty(), "{:?}", report.losses);
    assert_eq!(report.entries, model.len() as u64);
}

#[test]
fn each_damaged_tree_page_loses_only_its_own_keys() {
    let (bytes, model, logged) = build();
    let extent_starts: Vec<Vec<u8>> = (0..KEYS)
        .filter(|i| value(*i, 0).len() == 3000)
        .map(|i| value(i, 0)[..32].to_vec())
        .collect();
    let pages = bytes.len() / PAGE;
    let (mut damaged_cases, mut lossy, mut refused) = (0, 0, 0);
    for p in 2..pages {
        let at = p * PAGE;
        let kind = bytes[at + 4];
        // Branches (4) and leaves (5, 8, 9) carry their own page number.
        let node =
            matches!(kind, 4 | 5 | 8 | 9) && bytes[at + 8..at + 16] == (p as u64).to_le_bytes();
        let extent = extent_starts.iter().any(|s| bytes[at..at + 32] == s[..]);
        if !node && !extent {
            continue;
        }
        damaged_cases += 1;
        let mut copy = bytes.clone();
        copy[at + PAGE / 2] ^= 0x10;
        let what = format!("page {p} (kind {kind}, extent {extent})");
        let db = match open_read_only(copy) {
            Ok(db) => db,
            Err(Error::Corrupted { .. }) => {
                refused += 1;
                continue;
            }
            Err(e) => panic!("{what}: untyped open error {e}"),
        };
        // The catalog (table names) lives in the tree too: its damage is a typed error.
        match db.salvage_table("u", |_, _| Ok(())) {
            Err(Error::Corrupted { .. }) => {
                refused += 1;
                continue;
            }
            Err(e) => panic!("{what}: untyped error {e}"),
            Ok(_) => {}
        }
        let report = salvage_and_check(&db, &model, &logged, &what);
        if !report.losses.is_empty() {
            lossy += 1;
            assert!(
                report.losses.iter().all(|l| l.page == p as u64),
                "{what}: a loss names another page: {:?}",
                report.losses
            );
        }
    }
    eprintln!("damaged {damaged_cases}, lossy {lossy}, refused {refused}");
    assert!(damaged_cases > 20, "a tree of many pages: {damaged_cases}");
    assert!(
        lossy > damaged_cases / 2,
        "most damaged pages hold keys of t: {lossy} of {damaged_cases} ({refused} refused)"
    );
}

/// `Transaction::salvage_table` copies the transaction's snapshot, not the newest state:
/// the CLI salvages every table through one read transaction, so a file a writer still
/// commits to comes out as one committed state (a salvage per table through the
/// database read each table at the newest commit of its moment).
#[test]
fn a_salvage_through_one_transaction_copies_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("s.db")).unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    for t in ["a", "b"] {
        tx.create_table(t).unwrap();
        tx.put(t, b"k", b"old").unwrap();
    }
    tx.commit().unwrap();
    let mut rc = db.connect();
    let snapshot = rc.begin_read().unwrap();
    let (mut copied, _) = salvaged(&snapshot, "a");
    let mut tx = c.begin().unwrap();
    tx.put("b", b"k", b"new").unwrap();
    tx.put("b", b"k2", b"new").unwrap();
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    let (b, report) = salvaged(&snapshot, "b");
    copied.extend(b);
    assert!(report.losses.is_empty());
    assert_eq!(
        copied,
        vec![
            (b"k".to_vec(), b"old".to_vec()),
            (b"k".to_vec(), b"old".to_vec())
        ]
    );
    // The entry callback may read through the same transaction (the walk holds a pin
    // of its own, not the transaction's).
    let mut seen = 0;
    snapshot
        .salvage_table("b", |k, _| {
            assert!(snapshot.get("a", k)?.is_some());
            seen += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, 1);
}

/// A time-travel transaction below the last checkpoint cannot be salvaged (the walk
/// reads the tree's current entries, not its history): it is refused, where it handed
/// over the newer state as the older one.
#[test]
fn a_time_travel_salvage_below_the_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Options::new()
        .history_retention(capsuledb::HistoryRetention::Commits(100))
        .open(dir.path().join("s.db"))
        .unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.put("t", b"k", b"old").unwrap();
    let old = tx.commit().unwrap().seq;
    let mut tx = c.begin().unwrap();
    tx.put("t", b"k", b"new").unwrap();
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    let past = db.begin_read_at(old).unwrap();
    assert_eq!(past.get("t", b"k").unwrap().as_deref(), Some(&b"old"[..]));
    let r = past.salvage_table("t", |_, v| {
        assert_eq!(v, b"old", "a salvage handed over another state");
        Ok(())
    });
    assert!(matches!(r, Err(Error::HistoryUnavailable { .. })), "{r:?}");
}

/// A damaged catalog page loses only the table names on it: `tables` refuses the file,
/// `salvage_tables` gives every other name and names the lost range, and each of those
/// tables salvages whole (a salvage of a file whose catalog page was damaged copied
/// nothing: the list of tables failed).
#[test]
fn a_damaged_catalog_page_loses_only_the_names_on_it() {
    lose_catalog_pages(0);
}

/// Tables dropped while the history window keeps their data are not taken for tables
/// whose names a damaged catalog page lost.
#[test]
fn a_dropped_table_kept_for_history_is_no_lost_table() {
    lose_catalog_pages(10);
}

const TABLES: u32 = 400;

fn table_name(i: u32) -> String {
    format!("table-{i:04}-{}", "n".repeat(60))
}

/// A cleanly closed database of 400 tables of one key each, the first `dropped` of them
/// dropped inside the history window after a checkpoint wrote them (their keys kept).
fn catalog_of_many_tables(dropped: u32) -> Vec<u8> {
    let sim = SimStorage::new();
    let db = Options::new()
        .random_seed(3)
        .history_retention(HistoryRetention::Commits(10_000))
        .open_storage(Arc::new(sim.clone()))
        .unwrap();
    let name = table_name;
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    for i in 0..TABLES {
        tx.create_table(&name(i)).unwrap();
        tx.put(&name(i), b"k", &i.to_le_bytes()).unwrap();
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap().unwrap();
    if dropped > 0 {
        let mut tx = c.begin().unwrap();
        for i in 0..dropped {
            tx.drop_table(&name(i)).unwrap();
        }
        tx.commit().unwrap();
        db.checkpoint().unwrap().unwrap();
    }
    drop(c);
    db.close().unwrap();
    sim.crash_losing_unsynced();
    sim.live_bytes()
}

/// Damages each leaf of [`catalog_of_many_tables`]'s catalog in turn.
fn lose_catalog_pages(dropped: u32) {
    let bytes = catalog_of_many_tables(dropped);
    {
        let db = open_read_only(bytes.clone()).unwrap();
        let mut c = db.connect();
        let tx = c.begin_read().unwrap();
        let (ids, report) = tx.salvage_unnamed_tables().unwrap();
        assert_eq!(ids, Vec::<u64>::new());
        assert!(report.losses.is_empty(), "{report:?}");
        // A dropped table's id salvages nothing, though the tree keeps its keys.
        for id in 1..=u64::from(dropped) {
            let report = tx
                .salvage_table_id(id, |k, _| panic!("table #{id} handed out {k:?}"))
                .unwrap();
            assert_eq!(report.entries, 0);
        }
    }
    let mut cases = 0;
    for (p, page) in bytes.chunks_exact(PAGE).enumerate().skip(2) {
        let leaf = matches!(page[4], 5 | 8 | 9) && page[8..16] == (p as u64).to_le_bytes();
        if !leaf {
            continue;
        }
        let mut copy = bytes.clone();
        copy[p * PAGE + PAGE / 2] ^= 0x10;
        let Ok(db) = open_read_only(copy) else {
            continue;
        };
        let mut c = db.connect();
        let tx = c.begin_read().unwrap();
        match tx.tables() {
            Err(Error::Corrupted { page, .. }) => assert_eq!(page, p as u64),
            Err(e) => panic!("page {p}: {e}"),
            Ok(_) => continue,
        }
        cases += 1;
        let (names, report) = tx.salvage_tables().unwrap();
        assert!(
            !report.losses.is_empty() && report.losses.iter().all(|l| l.page == p as u64),
            "page {p}: {:?} names {}",
            report.losses,
            names.len()
        );
        assert!(names.len() < TABLES as usize, "page {p}: no name lost");
        let mut found = std::collections::BTreeSet::new();
        for n in &names {
            let i: u32 = n[6..10].parse().unwrap();
            let (got, _) = salvaged(&tx, n);
            assert_eq!(got, vec![(b"k".to_vec(), i.to_le_bytes().to_vec())], "{n}");
            found.insert(i);
        }
        // The tables whose names were lost are found by their keys, and copied whole.
        let (unnamed, search) = tx.salvage_unnamed_tables().unwrap();
        assert!(search.losses.is_empty(), "page {p}: {search:?}");
        assert_eq!(
            unnamed.len() + names.len(),
            (TABLES - dropped) as usize,
            "page {p}: {unnamed:?}"
        );
        for id in unnamed {
            let mut got = Vec::new();
            let report = tx
                .salvage_table_id(id, |k, v| {
                    got.push((k.to_vec(), v.to_vec()));
                    Ok(())
                })
                .unwrap();
            assert!(report.losses.is_empty(), "table #{id}: {report:?}");
            let [(k, v)] = &got[..] else {
                panic!("table #{id}: {got:?}")
            };
            assert_eq!(k, b"k");
            let i = u32::from_le_bytes(v[..].try_into().unwrap());
            assert!(found.insert(i), "table #{id} copied table {i} twice");
        }
        assert_eq!(found.len(), (TABLES - dropped) as usize);
        assert!(
            found.iter().all(|&i| i >= dropped),
            "a dropped table came out"
        );
    }
    assert!(
        cases >= 2,
        "the catalog spans several leaves: {cases} damaged"
    );
}

/// A catalog entry whose value is no table id, in a page that verifies (a crafted file),
/// loses that one name: the other names come out, the loss names the page, and the
/// table is found by its keys (the first such value ended the whole walk).
#[test]
fn a_catalog_entry_that_is_no_table_id_loses_only_its_name() {
    let tables: Vec<(String, Vec<u8>)> = (1..=5)
        .map(|i| (format!("crafted-table-{i}"), vec![i]))
        .collect();
    let mut bytes = checkpointed_tables(&tables);
    // The catalog's one leaf; the value 3 (a table's id) becomes 0, the catalog's own.
    let p = bytes
        .chunks_exact(PAGE)
        .enumerate()
        .position(|(p, b)| {
            matches!(b[4], 8 | 9)
                && b[19] <= 1
                && b[8..16] == (p as u64).to_le_bytes()
                && b.windows(15).any(|w| w == b"crafted-table-1")
        })
        .expect("the catalog's leaf");
    let page = &mut bytes[p * PAGE..(p + 1) * PAGE];
    let id3 = 3u64.to_le_bytes();
    let at: Vec<usize> = (16..PAGE - 8).filter(|&i| page[i..i + 8] == id3).collect();
    let [at] = at[..] else {
        panic!("the id 3 is at {at:?}")
    };
    page[at..at + 8].fill(0);
    let sum = crc32fast::hash(&page[4..]);
    page[..4].copy_from_slice(&sum.to_le_bytes());

    let db = open_read_only(bytes).unwrap();
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    let (names, report) = tx.salvage_tables().unwrap();
    assert_eq!(names.len(), 4, "{names:?}");
    let [loss] = &report.losses[..] else {
        panic!("{report:?}")
    };
    assert_eq!(loss.page, p as u64, "{loss:?}");
    assert!(loss.what.contains("table id 0"), "{loss:?}");
    let lost = String::from_utf8(loss.from.clone()).unwrap();
    assert!(!names.contains(&lost), "{lost}");
    let mut values = Vec::new();
    for n in &names {
        tx.salvage_table(n, |_, v| {
            values.push(v[0]);
            Ok(())
        })
        .unwrap();
    }
    for id in tx.salvage_unnamed_tables().unwrap().0 {
        tx.salvage_table_id(id, |_, v| {
            values.push(v[0]);
            Ok(())
        })
        .unwrap();
    }
    values.sort_unstable();
    assert_eq!(values, vec![1, 2, 3, 4, 5]);
}

/// A table whose keys all lie on the damaged page with the catalog's names is not
/// found, and the search says which ids it could not look at (the report claimed every
/// table other than those it found was gone with its keys, or said nothing).
#[test]
fn a_search_for_unnamed_tables_names_the_ids_it_could_not_look_at() {
    let tables = [
        ("x".to_string(), b"v".to_vec()),
        ("y".to_string(), b"v".to_vec()),
    ];
    let mut bytes = checkpointed_tables(&tables);
    // The tree is one leaf: the names and both tables' keys.
    let p = bytes
        .chunks_exact(PAGE)
        .enumerate()
        .position(|(p, b)| matches!(b[4], 8 | 9) && b[8..16] == (p as u64).to_le_bytes())
        .expect("the tree's leaf");
    bytes[p * PAGE + PAGE / 2] ^= 0x10;
    let db = open_read_only(bytes).unwrap();
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    let (names, _) = tx.salvage_tables().unwrap();
    assert!(names.is_empty(), "{names:?}");
    let (ids, search) = tx.salvage_unnamed_tables().unwrap();
    assert!(ids.is_empty(), "{ids:?}");
    let [loss] = &search.losses[..] else {
        panic!("{search:?}")
    };
    assert_eq!(loss.page, p as u64);
    assert_eq!(loss.from, 1u64.to_be_bytes());
    assert_eq!(loss.until, None, "{loss:?}");
}

/// The file a crash leaves after one commit creating each of `tables` with the key `k`
/// (its value given) and a checkpoint.
fn checkpointed_tables(tables: &[(String, Vec<u8>)]) -> Vec<u8> {
    let sim = SimStorage::new();
    let db = Options::new()
        .random_seed(3)
        .open_storage(Arc::new(sim.clone()))
        .unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    for (name, value) in tables {
        tx.create_table(name).unwrap();
        tx.put(name, b"k", value).unwrap();
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap().unwrap();
    drop(c);
    db.close().unwrap();
    sim.crash_losing_unsynced();
    sim.live_bytes()
}

/// `Transaction::salvage_table` hands over the committed state only: it read the table's
/// id through the transaction's own catalog writes, so a table this transaction created
/// salvaged as empty with no loss, one it cleared handed over nothing of what was
/// committed, and one it dropped was not found.
#[test]
fn a_salvage_in_a_writing_transaction_reads_the_committed_table() {
    let db = Options::new()
        .open_storage(Arc::new(SimStorage::new()))
        .unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    for t in ["cleared", "dropped"] {
        tx.create_table(t).unwrap();
        tx.put(t, b"k", b"v").unwrap();
    }
    tx.commit().unwrap();
    let mut tx = c.begin().unwrap();
    tx.create_table("created").unwrap();
    tx.put("created", b"own", b"write").unwrap();
    tx.clear_table("cleared").unwrap();
    tx.drop_table("dropped").unwrap();
    assert!(matches!(
        tx.salvage_table("created", |_, _| Ok(())),
        Err(Error::TableNotFound { .. })
    ));
    for t in ["cleared", "dropped"] {
        let (got, report) = salvaged(&tx, t);
        assert!(report.losses.is_empty(), "{t}: {report:?}");
        assert_eq!(got, [(b"k".to_vec(), b"v".to_vec())], "{t}");
    }
}

/// A catalog page and the leaf holding the record of drops the history window keeps
/// both damaged: the dropped tables, whose keys the tree keeps, are found by their keys
/// like live ones, and the search said nothing of the record it could not read.
#[test]
fn unnamed_tables_found_without_the_record_of_drops_say_so() {
    let dropped = 10;
    let bytes = catalog_of_many_tables(dropped);
    let leaf = |page: &[u8], p: usize| {
        matches!(page[4], 5 | 8 | 9) && page[8..16] == (p as u64).to_le_bytes()
    };
    let drops_leaf = bytes
        .chunks_exact(PAGE)
        .enumerate()
        .position(|(p, page)| leaf(page, p) && page.windows(5).any(|w| w == b"drops"))
        .expect("the record of drops is in a leaf");
    let mut cases = 0;
    for (p, page) in bytes.chunks_exact(PAGE).enumerate().skip(2) {
        if !leaf(page, p) || p == drops_leaf {
            continue;
        }
        let mut copy = bytes.clone();
        copy[p * PAGE + PAGE / 2] ^= 0x10;
        copy[drops_leaf * PAGE + PAGE / 2] ^= 0x10;
        let Ok(db) = open_read_only(copy) else {
            continue;
        };
        let mut c = db.connect();
        let tx = c.begin_read().unwrap();
        if tx.tables().is_ok() {
            continue;
        }
        let (unnamed, search) = tx.salvage_unnamed_tables().unwrap();
        if !unnamed.iter().any(|&id| id <= u64::from(dropped)) {
            continue;
        }
        cases += 1;
        assert!(
            search
                .losses
                .iter()
                .any(|l| l.page == drops_leaf as u64 && l.what.contains("dropped")),
            "page {p}: {unnamed:?} {search:?}"
        );
    }
    assert!(cases > 0, "no catalog page's loss found a dropped table");
}
