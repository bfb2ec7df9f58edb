//! How to see capsuledb's log messages: capsuledb reports through the `log` facade
//! (recovery at open, checkpoints, compaction, backups, and the sticky I/O failure that
//! poisons a database) and leaves the choice of logger to the application. Here
//! `env_logger` prints them:
//!
//! ```sh
//! RUST_LOG=capsuledb=debug cargo run --example logging
//! ```

use capsuledb::{Database, Error};

fn main() -> Result<(), Error> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("capsuledb=info"))
        .init();
    let dir = std::env::temp_dir().join(format!("capsuledb-logging-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("app.db");
    {
        let db = Database::open(&path)?; // "creating a new database"
        let mut conn = db.connect();
        conn.run(|tx| {
            tx.create_table("t")?;
            for i in 0..1000u32 {
                tx.put("t", &i.to_be_bytes(), b"value")?;
            }
            Ok::<_, Error>(())
        })?;
        db.checkpoint()?; // "checkpoint to seq ..: .. pages written, .. pages freed"
        conn.run(|tx| tx.put("t", b"after", b"the checkpoint"))?;
        db.compact()?; // "compaction returned .. bytes"
        db.backup_to(dir.join("copy.db"))?; // "backup of seq .."
        db.close()?;
    }
    // Reopening replays the log after the last checkpoint: "recovery replayed .. commits".
    let db = Database::open(&path)?;
    db.close()?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
