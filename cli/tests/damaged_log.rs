//! The issue-14 story through the binary: 61 one-commit `put` runs, then damage to the
//! log. A repairable flip is shown by `info` (read-only) and repaired by the next write open;
//! writes refuse, `check` and `info` report it, and `salvage` copies what is recoverable.

mod common;
use common::{db_in, fails, ok, s};

const MARKER_PAGE_OFFSET: usize = 2 * 4096;

fn sixty_one_puts() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let db = s(&db_in(&dir));
    ok(&["put", "--create", &db, "t", "k01", "v"]);
    for i in 2..=61 {
        ok(&["put", &db, "t", &format!("k{i:02}"), "v"]);
    }
    (dir, db)
}

fn marker_of(seq: usize) -> usize {
    MARKER_PAGE_OFFSET + 32 + (seq - 1) * 32
}

/// Loses commit 9's marker and its proof (damage nothing repairs); returns the file's bytes.
fn lose_commit_9(db: &str) -> Vec<u8> {
    let mut bytes = std::fs::read(db).unwrap();
    let m = marker_of(9);
    let proof = u64::from_le_bytes(bytes[m + 8..m + 16].try_into().unwrap()) as usize;
    bytes[proof..proof + 48].fill(0);
    bytes[m..m + 32].fill(0);
    std::fs::write(db, &bytes).unwrap();
    bytes
}

#[test]
fn a_flipped_marker_bit_is_repaired_and_shown_by_info() {
    let (_dir, db) = sixty_one_puts();
    let mut bytes = std::fs::read(&db).unwrap();
    bytes[MARKER_PAGE_OFFSET + 300] ^= 0x01;
    std::fs::write(&db, &bytes).unwrap();
    // `check` reads only: it reports the damage a write open repairs.
    let out = common::run(&["check", &db]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("repairable") && out.stdout.contains("the marker of commit 9"),
        "{}",
        out.stdout
    );
    assert_eq!(std::fs::read(&db).unwrap(), bytes, "check changes nothing");
    let info = ok(&["info", &db]);
    assert!(info.contains("last commit seq    61"), "{info}");
    assert!(info.contains("repaired at open   1 log records"), "{info}");
    // `info` opens read-only too: the repair is written back by a read-write open.
    assert_eq!(std::fs::read(&db).unwrap(), bytes, "info changes nothing");
    ok(&["put", &db, "t", "after", "repair"]);
    assert!(ok(&["check", &db]).starts_with("ok:"));
    assert_eq!(ok(&["scan", &db, "t"]).lines().count(), 62);
}

#[test]
fn unrepairable_damage_is_reported_and_salvaged() {
    let (dir, db) = sixty_one_puts();
    let bytes = lose_commit_9(&db);

    let err = fails(&["put", &db, "t", "new", "v"], 1);
    assert!(err.contains("commit 9 cannot be recovered"), "{err}");
    let out = common::run(&["check", &db]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("commit 9 cannot be recovered"),
        "{}",
        out.stdout
    );
    let info = ok(&["info", &db]);
    assert!(info.contains("LOG DAMAGE         commit 9"), "{info}");
    assert!(info.contains("commits 9 to 61 were durable"), "{info}");
    assert!(
        info.contains("52 marker records of commits 10 to 61 remain"),
        "{info}"
    );
    assert_eq!(std::fs::read(&db).unwrap(), bytes, "nothing was written");

    let out_db = s(&dir.path().join("salvaged.db"));
    let report = ok(&["salvage", &db, &out_db]);
    assert!(report.contains("lost: commits 9 to 61"), "{report}");
    assert!(report.contains("the state after commit 8"), "{report}");
    assert!(ok(&["check", &out_db]).starts_with("ok:"));
    assert_eq!(ok(&["scan", &out_db, "t"]).lines().count(), 8);
    assert_eq!(
        std::fs::read(&db).unwrap(),
        bytes,
        "salvage never modifies IN"
    );
    let again = fails(&["salvage", &db, &out_db], 1);
    assert!(again.contains("already exists"), "{again}");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".salvage-")),
        "no temporary file is left beside OUT"
    );
}

/// The commands that show data refuse a file whose log is damaged instead of showing the
/// state before the damage as if it were the database's (an earlier state is lost data);
/// `backup` refuses too. Each names the damage and points at `salvage`.
#[test]
fn data_commands_and_backup_refuse_a_damaged_log() {
    let (dir, db) = sixty_one_puts();
    lose_commit_9(&db);
    let out_db = s(&dir.path().join("backup.db"));
    for args in [
        vec!["scan", &db, "t"],
        vec!["get", &db, "t", "k01"],
        vec!["tables", &db],
        vec!["dump", &db, "t"],
        vec!["backup", &db, &out_db],
    ] {
        let err = fails(&args, 1);
        assert!(
            err.contains("the log is damaged") && err.contains("salvage"),
            "{args:?}: {err}"
        );
    }
    assert!(!std::path::Path::new(&out_db).exists(), "no backup written");
}

/// A damaged header copy beside a good one: `info` read the good (possibly older) copy
/// and said nothing of the damage. It now says so.
#[test]
fn info_shows_a_damaged_header_copy() {
    let dir = tempfile::tempdir().unwrap();
    let db = s(&db_in(&dir));
    ok(&["put", "--create", &db, "t", "k1", "v"]);
    ok(&["put", &db, "t", "k2", "v"]);
    ok(&["put", &db, "t", "k3", "v"]);
    let shown = ok(&["info", &db]);
    let newest = if shown.contains("copy B") { 4096 } else { 0 };
    let mut bytes = std::fs::read(&db).unwrap();
    bytes[newest + 50] ^= 0xFF; // eight bits: past the one-bit repair
    std::fs::write(&db, &bytes).unwrap();
    let shown = ok(&["info", &db]);
    assert!(shown.contains("HEADER DAMAGE"), "{shown}");
}
