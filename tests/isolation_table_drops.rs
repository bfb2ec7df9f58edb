//! Dropping or clearing a table is a write to every key of it: a transaction writing
//! into a table that a concurrent commit dropped or cleared, and one dropping or clearing
//! a table a concurrent commit wrote into, lose to the first committer, under both
//! isolation levels. Without it a read-modify-write beside a `clear_table` lost its
//! update under `Snapshot` (the cleared table's new id shares no key with the old one).

mod isolation_support;

use capsuledb::Error;
use capsuledb::Isolation::{self, Serializable, Snapshot};
use isolation_support::*;

const T: &str = "t";

/// T1 increments `k`; T2 reads `k`, clears the table and writes `k + 10`. Whichever
/// commits second is refused: no serial order loses T1's increment.
fn lost_update_through_clear(iso: Isolation, increment_first: bool) {
    let (_d, db) = db_with(T, &[("k", 5)]);
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let mut inc = c1.begin_with(iso).unwrap();
    let mut rebuild = c2.begin_with(iso).unwrap();
    let v = get_int(&inc, T, "k").unwrap();
    put_int(&mut inc, T, "k", v + 1);
    let w = get_int(&rebuild, T, "k").unwrap();
    rebuild.clear_table(T).unwrap();
    put_int(&mut rebuild, T, "k", w + 10);
    let (first, second) = if increment_first {
        (inc, rebuild)
    } else {
        (rebuild, inc)
    };
    ok(first.commit());
    let refused = second.commit();
    // The conflict names the table (a clear's refusal named it "(table 1)").
    assert!(
        matches!(&refused, Err(Error::Conflict { table, .. }) if table == T),
        "{iso:?}, increment first {increment_first}: {refused:?}"
    );
    let expect = if increment_first { 6 } else { 15 };
    assert_eq!(committed(&db, T), rows(&[("k", expect)]), "{iso:?}");
}

#[test]
fn a_clear_beside_an_increment_loses_no_update_under_snapshot() {
    lost_update_through_clear(Snapshot, true);
    lost_update_through_clear(Snapshot, false);
}

#[test]
fn a_clear_beside_an_increment_loses_no_update_under_serializable() {
    lost_update_through_clear(Serializable, true);
    lost_update_through_clear(Serializable, false);
}

/// A blind write into a table dropped by a concurrent commit is refused (it vanished
/// into the dead table under `Snapshot`), and a drop after a concurrent blind write
/// into the table is refused (the write would vanish with it).
#[test]
fn blind_writes_and_drops_of_one_table_conflict() {
    for iso in [Snapshot, Serializable] {
        for writer_first in [false, true] {
            let (_d, db) = db_with(T, &[("k", 5)]);
            let (mut c1, mut c2) = (db.connect(), db.connect());
            let mut writer = c1.begin_with(iso).unwrap();
            let mut dropper = c2.begin_with(iso).unwrap();
            put_int(&mut writer, T, "other", 1);
            dropper.drop_table(T).unwrap();
            let (first, second) = if writer_first {
                (writer, dropper)
            } else {
                (dropper, writer)
            };
            ok(first.commit());
            let refused = second.commit();
            assert!(
                matches!(&refused, Err(Error::Conflict { table, .. }) if table == T),
                "{iso:?}, writer first {writer_first}: {refused:?}"
            );
        }
    }
}

/// Writes into other tables, and drops of tables no one wrote concurrently, pass.
#[test]
fn drops_do_not_conflict_with_other_tables() {
    for iso in [Snapshot, Serializable] {
        let (_d, db) = db_with(T, &[("k", 5)]);
        let mut c0 = db.connect();
        let mut tx = c0.begin().unwrap();
        tx.create_table("u").unwrap();
        ok(tx.commit());
        let (mut c1, mut c2) = (db.connect(), db.connect());
        let mut writer = c1.begin_with(iso).unwrap();
        let mut dropper = c2.begin_with(iso).unwrap();
        put_int(&mut writer, "u", "x", 1);
        dropper.drop_table(T).unwrap();
        ok(dropper.commit());
        ok(writer.commit());
        assert_eq!(committed(&db, "u"), rows(&[("x", 1)]), "{iso:?}");
    }
}

/// T1 salvages table `a` by its id and writes `x` of `b`; T2 reads `x`, drops `a` and
/// commits. T1 saw `a`'s rows (before T2) and T2 saw the old `x` (before T1): a cycle,
/// refused whichever commits first. The salvage by id read no catalog name, and a drop
/// met no read of the table it dropped: both committed.
#[test]
fn a_salvage_by_id_conflicts_with_a_concurrent_drop_of_that_table() {
    for salvage_first in [false, true] {
        let (_d, db) = db_with("a", &[("k", 1)]);
        db.connect()
            .run(|tx| {
                tx.create_table("b")?;
                tx.put("b", b"x", &0i64.to_be_bytes())
            })
            .unwrap();
        let (mut c1, mut c2) = (db.connect(), db.connect());
        let mut t1 = c1.begin_with(Serializable).unwrap();
        let mut t2 = c2.begin_with(Serializable).unwrap();
        let mut seen = 0;
        t1.salvage_table_id(1, |_, _| {
            seen += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, 1, "table a has id 1");
        t2.get("b", b"x").unwrap();
        t2.drop_table("a").unwrap();
        t1.put("b", b"x", &1i64.to_be_bytes()).unwrap();
        let (first, second) = if salvage_first { (t1, t2) } else { (t2, t1) };
        ok(first.commit());
        let refused = second.commit();
        assert!(
            matches!(refused, Err(Error::Conflict { .. })),
            "salvage first {salvage_first}: {refused:?}"
        );
    }
}
