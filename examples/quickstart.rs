//! The README's quick start, built and run by `cargo test` so it stays true.

use capsuledb::{Database, Durability, Error};

fn main() -> capsuledb::Result<()> {
    let path = std::env::temp_dir().join(format!("capsuledb-quickstart-{}.db", std::process::id()));
    let db = Database::open(&path)?; // created if missing
    let mut conn = db.connect(); // one Connection per thread
    let mut tx = conn.begin()?; // Serializable by default
    tx.create_table("accounts")?;
    tx.put("accounts", b"alice", b"100")?;
    tx.put("accounts", b"bob", b"50")?;
    tx.commit()?; // Durable by default

    // Retry on conflict: another transaction committed first.
    loop {
        let mut tx = conn.begin()?;
        let a: i64 = String::from_utf8_lossy(&tx.get("accounts", b"alice")?.unwrap())
            .parse()
            .unwrap();
        tx.put("accounts", b"alice", (a - 10).to_string().as_bytes())?;
        match tx.commit_with(Durability::Durable) {
            Ok(_) => break,
            Err(Error::Conflict { committed_seq, .. }) => {
                db.wait_for(committed_seq, Durability::Applied)?
            }
            Err(e) => return Err(e),
        }
    }

    let snap = conn.begin_read()?; // read-only snapshot: never blocks, never aborts
    for item in snap.range("accounts", b"a".as_slice()..)? {
        let (k, v) = item?;
        println!(
            "{} = {}",
            String::from_utf8_lossy(&k),
            String::from_utf8_lossy(&v)
        );
    }
    drop(snap);
    db.close()?;
    let _ = std::fs::remove_file(&path);
    Ok(())
}
