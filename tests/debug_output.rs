//! Every public type prints with `{:?}` (the library also warns on
//! `missing_debug_implementations`, an error under CI's `-D warnings`), so a user's own `#[derive(Debug)]` struct can hold a
//! `Database`, a `Connection` or a `RaftLog`; the output names what a reader of a log needs.

use capsuledb::raftlog::{Entry, RaftLog};
use capsuledb::{Database, Durability, Options, TableDef};

#[derive(Debug)]
#[allow(dead_code, reason = "only printed")]
struct App {
    db: Database,
    log: RaftLog,
}

#[test]
fn handles_transactions_and_iterators_print() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("debug.db");
    let db = Options::new().open(&path).unwrap();
    let log = RaftLog::open(&db).unwrap();
    log.append(&[Entry::new(1, 1, b"a".to_vec())]).unwrap();
    let printed = format!(
        "{:?}",
        App {
            db: db.clone(),
            log: log.clone()
        }
    );
    assert!(printed.contains("debug.db"), "{printed}");
    assert!(printed.contains("last_index: Some(1)"), "{printed}");

    let mut c = db.connect();
    assert!(format!("{c:?}").contains("Connection"));
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.put("t", b"k", b"v").unwrap();
    assert!(format!("{tx:?}").contains("write_bytes"));
    tx.commit_with(Durability::Durable).unwrap();

    let tx = c.begin_read().unwrap();
    let range = tx.range::<&[u8], _>("t", ..).unwrap();
    assert!(format!("{range:?}").starts_with("Range"));
    let scan = tx.scan::<&[u8], _>("t", ..).unwrap();
    assert!(format!("{scan:?}").starts_with("Scan"));
    const T: TableDef<u64, String> = TableDef::new("typed");
    let table = tx.table(T);
    assert!(format!("{table:?}").contains("typed"));
    drop(tx);

    let sub = db.subscribe_with_capacity(4);
    assert!(format!("{sub:?}").contains("capacity: 4"));
    let batch = log.entry_batch(..).unwrap();
    assert!(format!("{batch:?}").contains("EntryBatch"));
}
