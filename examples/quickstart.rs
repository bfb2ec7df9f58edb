//! The README's quick start, run by `tests/quickstart.rs` so it stays true.

use capsuledb::{Database, TableDef};

/// A typed table: `&str` keys, `i64` values, stored in order (`format-spec/keys.md`).
const ACCOUNTS: TableDef<&str, i64> = TableDef::new("accounts");

pub fn main() -> capsuledb::Result<()> {
    let path = std::env::temp_dir().join(format!("capsuledb-quickstart-{}.db", std::process::id()));
    let db = Database::open(&path)?; // created if missing
    let mut conn = db.connect(); // one Connection per thread
    conn.run(|tx| {
        // Serializable, committed Durable, retried on conflict
        if !tx.table_exists(ACCOUNTS.name())? {
            tx.create_table(ACCOUNTS.name())?;
        }
        let mut accounts = tx.table_mut(ACCOUNTS);
        accounts.put("alice", 100)?;
        accounts.put("bob", 50)
    })?;

    // If another transaction commits first, `run` waits until that commit is visible
    // and runs the closure again (within `RetryPolicy::default()`).
    let left = conn.run(|tx| {
        let mut accounts = tx.table_mut(ACCOUNTS);
        let alice = accounts.get("alice")?.unwrap_or(0);
        let bob = accounts.get("bob")?.unwrap_or(0);
        accounts.put("alice", alice - 10)?;
        accounts.put("bob", bob + 10)?;
        Ok::<_, capsuledb::Error>(alice - 10) // the closure's value comes back
    })?;
    assert_eq!(left, 90);

    conn.read(|tx| {
        // a read-only snapshot: never aborts
        for entry in tx.table(ACCOUNTS).iter()? {
            let (name, balance) = entry?;
            println!("{name} = {balance}");
        }
        Ok::<_, capsuledb::Error>(())
    })?;
    db.close()?;
    let _ = std::fs::remove_file(&path);
    Ok(())
}
