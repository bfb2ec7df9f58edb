//! Opening every kind of bad file gives its typed error and leaves the bytes unchanged.

use capsuledb::format::{FORMAT_VERSION, HEADER_COPY_OFFSETS, HEADER_LEN, Header};
use capsuledb::{Database, Error, Options};
use std::path::Path;

fn bytes_of(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// Creates a valid database file and returns its path (the handle is closed).
fn new_db(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("x.db");
    drop(Database::open(&path).unwrap());
    path
}

/// Opens `path`, expects an error, and checks the file's bytes did not change.
fn open_err_untouched(path: &Path) -> Error {
    let before = bytes_of(path);
    let err = match Database::open(path) {
        Err(e) => e,
        Ok(_) => panic!("opening {} should fail", path.display()),
    };
    assert_eq!(
        before,
        bytes_of(path),
        "a failed open must not change the file"
    );
    err
}

fn header_of(bytes: &[u8], copy: usize) -> Header {
    let off = HEADER_COPY_OFFSETS[copy] as usize;
    Header::decode(&bytes[off..off + HEADER_LEN], copy as u32).unwrap()
}

fn rewrite_header(path: &Path, copy: usize, h: &Header) {
    let mut bytes = bytes_of(path);
    let off = HEADER_COPY_OFFSETS[copy] as usize;
    bytes[off..off + HEADER_LEN].copy_from_slice(&h.encode(copy as u32));
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn new_file_then_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_db(dir.path());
    let bytes = bytes_of(&path);
    assert_eq!(
        bytes.len(),
        16384,
        "header region, first marker page, its reserved next page"
    );
    assert_eq!(&bytes[..8], b"CAPSULDB");
    assert_eq!(
        header_of(&bytes, 0).database_id,
        header_of(&bytes, 1).database_id
    );
    let db = Database::open(&path).unwrap();
    let info = db.info().unwrap();
    assert_eq!(
        (info.page_size, info.format_version, info.file_len),
        (4096, FORMAT_VERSION, 16384)
    );
}

#[test]
fn not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("text.db");
    std::fs::write(&path, "hello, this is not a database\n".repeat(1000)).unwrap();
    assert!(matches!(
        open_err_untouched(&path),
        Error::NotADatabase { .. }
    ));
    let short = dir.path().join("short.db");
    std::fs::write(&short, b"hello").unwrap();
    assert!(matches!(
        open_err_untouched(&short),
        Error::NotADatabase { .. }
    ));
}

#[test]
fn truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_db(dir.path());
    let bytes = bytes_of(&path);
    std::fs::write(&path, &bytes[..5000]).unwrap();
    match open_err_untouched(&path) {
        Error::Truncated { len, needed } => assert_eq!((len, needed), (5000, 8192)),
        e => panic!("expected Truncated, got {e}"),
    }
    // A header that accounts for more pages than the file holds.
    std::fs::write(&path, &bytes).unwrap();
    for copy in 0..2 {
        let h = Header {
            page_count: 10,
            ..header_of(&bytes, copy)
        };
        rewrite_header(&path, copy, &h);
    }
    assert!(matches!(open_err_untouched(&path), Error::Truncated { .. }));
}

#[test]
fn newer_format_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_db(dir.path());
    let bytes = bytes_of(&path);
    for copy in 0..2 {
        let h = Header {
            read_version: FORMAT_VERSION + 1,
            write_version: FORMAT_VERSION + 1,
            ..header_of(&bytes, copy)
        };
        rewrite_header(&path, copy, &h);
    }
    match open_err_untouched(&path) {
        Error::UnsupportedVersion { found, supported } => {
            assert_eq!((found, supported), (FORMAT_VERSION + 1, FORMAT_VERSION))
        }
        e => panic!("expected UnsupportedVersion, got {e}"),
    }
}

/// A newer format's header in the newest copy, using what are reserved bytes here (its
/// checksum recomputed: the copy is intact), beside an older copy this build reads: the
/// file is a newer one, refused by every open and left untouched. It was taken for
/// damage to that copy: a read-write open said Corrupted, a read-only open read the
/// older copy, an earlier state.
#[test]
fn a_newer_formats_header_is_not_taken_for_damage() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_db(dir.path());
    let mut bytes = bytes_of(&path);
    let a = header_of(&bytes, 0);
    let newer = Header {
        read_version: FORMAT_VERSION + 1,
        write_version: FORMAT_VERSION + 1,
        generation: a.generation + 1,
        ..a
    };
    let off = HEADER_COPY_OFFSETS[1] as usize;
    let mut copy = newer.encode(1);
    copy[100] = 7; // a reserved byte here, a field there
    let sum = capsuledb::format::checksum(&[&copy[..124]]);
    copy[124..128].copy_from_slice(&sum.to_le_bytes());
    bytes[off..off + HEADER_LEN].copy_from_slice(&copy);
    // And one bit of it flipped at rest: repaired, it is still a newer format's copy
    // (the repair took only a copy that passed every check, and read the older copy).
    let mut flipped = bytes.clone();
    flipped[off + 40] ^= 1;
    for bytes in [bytes, flipped] {
        std::fs::write(&path, &bytes).unwrap();
        newer_is_refused(&path, &bytes);
    }
}

fn newer_is_refused(path: &Path, bytes: &[u8]) {
    for read_only in [false, true] {
        let opened = capsuledb::Options::new().read_only(read_only).open(path);
        assert!(
            matches!(
                opened,
                Err(Error::UnsupportedVersion { found, .. }) if found == FORMAT_VERSION + 1
            ),
            "read_only {read_only}: {:?}",
            opened.map(|_| ())
        );
        assert!(bytes_of(path) == bytes, "untouched");
    }
}

#[test]
fn a_newer_writers_file_opens_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_db(dir.path());
    {
        let db = capsuledb::Database::open(&path).unwrap();
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        tx.create_table("t").unwrap();
        tx.put("t", b"k", b"v").unwrap();
        tx.commit().unwrap();
        db.checkpoint().unwrap();
    }
    let bytes = bytes_of(&path);
    for copy in 0..2 {
        let h = Header {
            write_version: FORMAT_VERSION + 1,
            ..header_of(&bytes, copy)
        };
        rewrite_header(&path, copy, &h);
    }
    // Read-write: refused, untouched.
    match open_err_untouched(&path) {
        e @ Error::UnsupportedVersion { found, supported } => {
            assert_eq!((found, supported), (FORMAT_VERSION + 1, FORMAT_VERSION));
            // The message tells the way in.
            assert!(e.to_string().contains("opens read-only"), "{e}");
        }
        e => panic!("expected UnsupportedVersion, got {e}"),
    }
    // Read-only: readable, and still untouched.
    let before = bytes_of(&path);
    let db = capsuledb::Options::new()
        .read_only(true)
        .open(&path)
        .unwrap();
    let mut c = db.connect();
    assert_eq!(
        c.begin_read().unwrap().get("t", b"k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
    drop(c);
    drop(db);
    assert_eq!(bytes_of(&path), before);
}

#[test]
fn both_header_checksums_fail() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_db(dir.path());
    let mut bytes = bytes_of(&path);
    bytes[40] ^= 0xFF;
    bytes[4096 + 40] ^= 0xFF;
    std::fs::write(&path, &bytes).unwrap();
    match open_err_untouched(&path) {
        Error::Corrupted { page, what } => {
            assert_eq!(page, 0);
            assert!(
                what.contains("copy A") && what.contains("checksum"),
                "{what}"
            );
        }
        e => panic!("expected Corrupted, got {e}"),
    }
}

/// One flipped bit in either header copy (its magic, generation, checksum or any other
/// field) is repaired: the checksum confirms the one-bit repair, and the open reads the
/// same newest copy as before the flip.
#[test]
fn one_flipped_bit_in_a_header_copy_is_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_db(dir.path());
    let good = bytes_of(&path);
    let read_only = |path: &Path| {
        let info = Options::new()
            .read_only(true)
            .open(path)
            .unwrap()
            .info()
            .unwrap();
        (info.header_copy, info.header_generation)
    };
    let want = read_only(&path);
    for copy in 0..2usize {
        for byte in [0usize, 24, 50, 124, 127] {
            let mut bytes = good.clone();
            bytes[HEADER_COPY_OFFSETS[copy] as usize + byte] ^= 0x04;
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(read_only(&path), want, "copy {copy} byte {byte}");
            let db = Database::open(&path).unwrap();
            assert!(
                db.check_integrity().unwrap().is_ok(),
                "copy {copy} byte {byte}"
            );
            drop(db);
            std::fs::write(&path, &good).unwrap();
        }
    }
}

/// A header copy damaged beyond a one-bit repair may be the newer one: a read-write open
/// refuses, naming the copy's page and leaving the file as it was; a read-only open reads
/// the other copy.
#[test]
fn a_header_copy_damaged_beyond_repair_refuses_a_read_write_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_db(dir.path());
    let good = bytes_of(&path);
    for copy in 0..2usize {
        let mut bytes = good.clone();
        bytes[HEADER_COPY_OFFSETS[copy] as usize + 50] ^= 0xFF;
        std::fs::write(&path, &bytes).unwrap();
        match open_err_untouched(&path) {
            Error::Corrupted { page, what } => {
                assert_eq!(page, copy as u64, "{what}");
                assert!(what.contains("beyond repair"), "{what}");
            }
            e => panic!("expected Corrupted, got {e}"),
        }
        let info = Options::new()
            .read_only(true)
            .open(&path)
            .unwrap()
            .info()
            .unwrap();
        assert_eq!(info.header_copy, 1 - copy as u32);
        std::fs::write(&path, &good).unwrap();
    }
}

/// The case that rolled a database back: a large durable commit goes straight into the
/// tree and writes the newest header (no marker), small durable commits follow, the
/// process ends without another header write, and one bit of that newest header flips at
/// rest. Every acknowledged commit is there after the reopen.
#[test]
fn a_flipped_bit_in_the_header_of_a_tree_commit_loses_nothing() {
    use capsuledb::storage::SimStorage;
    use std::sync::Arc;
    let sim = SimStorage::new();
    let db = Options::new().open_storage(Arc::new(sim.clone())).unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    for i in 0u32..20_000 {
        tx.put("t", &i.to_be_bytes(), &[3u8; 100]).unwrap();
    }
    tx.commit().unwrap();
    for i in 0u32..5 {
        let mut tx = c.begin().unwrap();
        tx.put("t", format!("after {i}").as_bytes(), b"v").unwrap();
        tx.commit().unwrap();
    }
    // What a crash now leaves: no clean close writes another header.
    let mut bytes = sim.durable_bytes();
    drop(c);
    drop(db);
    let newest = usize::from(header_of(&bytes, 1).generation > header_of(&bytes, 0).generation);
    bytes[HEADER_COPY_OFFSETS[newest] as usize + 24] ^= 0x01;
    let db = Options::new()
        .open_storage(Arc::new(SimStorage::from_bytes(bytes)))
        .unwrap();
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    assert_eq!(tx.len("t").unwrap(), 20_005, "every acknowledged commit");
}

#[test]
fn newest_valid_copy_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_db(dir.path());
    let bytes = bytes_of(&path);
    let h = Header {
        generation: 5,
        marker_chain_seed: header_of(&bytes, 1).marker_chain_seed,
        ..header_of(&bytes, 1)
    };
    rewrite_header(&path, 1, &h);
    let info = Database::open(&path).unwrap().info().unwrap();
    assert_eq!((info.header_copy, info.header_generation), (1, 5));
}

#[test]
fn directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    match Database::open(dir.path()) {
        Err(Error::InvalidPath { reason, .. }) => assert_eq!(reason, "is a directory"),
        Err(e) => panic!("expected InvalidPath, got {e}"),
        Ok(_) => panic!("a directory opened as a database"),
    }
}

/// A FIFO (an open of it would block until a writer came) and a device are refused,
/// read-write and read-only, without waiting.
#[test]
fn a_fifo_or_a_device_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    let mut paths = vec![std::path::PathBuf::from("/dev/null")];
    if made.is_ok_and(|s| s.success()) {
        paths.push(fifo);
    }
    for path in paths {
        for read_only in [false, true] {
            match capsuledb::Options::new().read_only(read_only).open(&path) {
                Err(Error::InvalidPath { reason, .. }) => {
                    assert_eq!(reason, "is not a regular file", "{}", path.display());
                }
                Err(e) => panic!("{}: expected InvalidPath, got {e}", path.display()),
                Ok(_) => panic!("{} opened as a database", path.display()),
            }
        }
    }
}

#[test]
fn path_without_permission() {
    // Root bypasses file modes, so as root use a sysfs file that refuses writers.
    let is_root = unsafe_free_is_root();
    let dir = tempfile::tempdir().unwrap();
    let path = if is_root {
        std::path::PathBuf::from("/sys/kernel/notes")
    } else {
        use std::os::unix::fs::PermissionsExt;
        let p = new_db(dir.path());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
        p
    };
    if !path.exists() {
        return; // no such file on this kernel; nothing to test
    }
    match Database::open(&path) {
        Err(Error::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied)
        }
        Err(e) => panic!("expected a permission error, got {e}"),
        Ok(_) => panic!("opened a file without permission"),
    }
}

fn unsafe_free_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

#[test]
fn invalid_page_size_option() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    for bad in [0, 1000, 2048, 5000, 131072] {
        assert!(matches!(
            Options::new().page_size(bad).open(&path),
            Err(Error::InvalidOptions { .. })
        ));
    }
    assert!(!path.exists(), "a refused option creates no file");
    for good in [4096, 8192, 16384, 32768, 65536] {
        let p = dir.path().join(format!("{good}.db"));
        let db = Options::new().page_size(good).open(&p).unwrap();
        assert_eq!(db.info().unwrap().page_size, good);
        drop(db);
        // Reopening with other options keeps the stored page size.
        assert_eq!(Database::open(&p).unwrap().info().unwrap().page_size, good);
    }
}

#[test]
fn same_file_twice_in_one_process_shares_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let a = Database::open(&path).unwrap();
    let b = Database::open(&path).unwrap();
    assert_eq!(a.info().unwrap().database_id, b.info().unwrap().database_id);
}

#[test]
fn zeroed_headers_over_committed_data_are_not_recreated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("z.db");
    {
        let db = Database::open(&path).unwrap();
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        tx.create_table("t").unwrap();
        tx.put("t", b"k", b"precious").unwrap();
        tx.commit().unwrap();
    }
    let mut bytes = bytes_of(&path);
    bytes.truncate(16384); // small enough to look like an interrupted creation
    bytes[..8192].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    // Markers exist after the header region: this is damage, not a fresh file.
    let err = open_err_untouched(&path);
    assert!(
        matches!(err, Error::NotADatabase { .. } | Error::Corrupted { .. }),
        "{err}"
    );
}

#[test]
fn a_version_1_file_opens_and_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_db(dir.path());
    {
        let db = Database::open(&path).unwrap();
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        tx.create_table("t").unwrap();
        tx.put("t", b"k", b"v1").unwrap();
        tx.commit().unwrap();
    }
    // What a version-1 writer leaves: version 1 and no durable bound, in both copies.
    let bytes = bytes_of(&path);
    for copy in 0..2 {
        let h = Header {
            read_version: 1,
            write_version: 1,
            log_durable_seq: 0,
            ..header_of(&bytes, copy)
        };
        rewrite_header(&path, copy, &h);
    }
    // Read-only: read by the same rules, untouched.
    let before = bytes_of(&path);
    {
        let db = Options::new().read_only(true).open(&path).unwrap();
        assert_eq!(db.info().unwrap().format_version, 1);
        let mut c = db.connect();
        assert_eq!(
            c.begin_read().unwrap().get("t", b"k").unwrap().as_deref(),
            Some(&b"v1"[..])
        );
    }
    assert_eq!(before, bytes_of(&path));
    // Read-write: upgraded by its first header write, which records the durable bound.
    let db = Database::open(&path).unwrap();
    let info = db.info().unwrap();
    assert_eq!(
        (info.format_version, info.log_durable_seq),
        (FORMAT_VERSION, 1)
    );
    let mut c = db.connect();
    assert_eq!(
        c.begin_read().unwrap().get("t", b"k").unwrap().as_deref(),
        Some(&b"v1"[..])
    );
}

/// Power lost at every point of a new database's creation and first open, each crash
/// keeping a seeded subset of the unsynced writes: the next read-write open succeeds
/// (creation writes both header copies before one sync, so a crash may keep one and
/// lose the other: a blank copy beside a first-generation one is that, not damage).
#[test]
fn power_lost_during_creation_never_leaves_an_unopenable_file() {
    use capsuledb::storage::SimStorage;
    use std::sync::Arc;
    for ops in 0..16 {
        for seed in 0..12 {
            let sim = SimStorage::new();
            sim.power_off_after(ops);
            drop(Options::new().open_storage(Arc::new(sim.clone())));
            sim.crash(seed);
            let db = Options::new()
                .open_storage(Arc::new(sim.clone()))
                .unwrap_or_else(|e| panic!("ops {ops} seed {seed}: {e}"));
            let mut c = db.connect();
            let mut tx = c.begin().unwrap();
            tx.create_table("t").unwrap();
            tx.commit().unwrap();
        }
    }
}

/// A header copy damaged beyond repair, read past by a read-only open: `DbInfo` says so
/// and `check_integrity` reports it (the state read may be an earlier one), and an
/// undamaged file reports nothing.
#[test]
fn a_read_only_open_past_a_damaged_header_copy_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_db(dir.path());
    let ro = |path: &Path| Options::new().read_only(true).open(path).unwrap();
    let db = ro(&path);
    assert_eq!(db.info().unwrap().header_damage, None);
    assert!(db.check_integrity().unwrap().is_ok());
    drop(db);
    let mut bytes = bytes_of(&path);
    bytes[HEADER_COPY_OFFSETS[1] as usize + 50] ^= 0xFF;
    std::fs::write(&path, &bytes).unwrap();
    let db = ro(&path);
    let damage = db.info().unwrap().header_damage.expect("reported");
    assert!(
        damage.contains("copy B") && damage.contains("beyond repair"),
        "{damage}"
    );
    let report = db.check_integrity().unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains("copy B")),
        "{:?}",
        report.problems
    );
}

/// A live reader opening a file whose creator is writing its first header copy this
/// instant (the other copy still zeros, this one torn) is told the file is not a
/// database yet; it was told the file was corrupted at page 0.
#[test]
fn a_reader_of_a_database_being_created_is_told_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_db(dir.path());
    let mut bytes = bytes_of(&path);
    let (a, b) = (
        HEADER_COPY_OFFSETS[0] as usize,
        HEADER_COPY_OFFSETS[1] as usize,
    );
    // Copy A half written (its second half still zeros), copy B never written.
    bytes[a + HEADER_LEN / 2..a + HEADER_LEN].fill(0);
    bytes[b..b + HEADER_LEN].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    match Options::new().read_only(true).open(&path) {
        Err(Error::NotADatabase { what }) => assert!(what.contains("being created"), "{what}"),
        other => panic!("expected NotADatabase, got {other:?}"),
    }
    // A copy that lost its magic but is not blank is damage, not a creation.
    bytes[b + 100] = 1;
    std::fs::write(&path, &bytes).unwrap();
    match Options::new().read_only(true).open(&path) {
        Err(Error::Corrupted { .. }) => {}
        other => panic!("expected Corrupted, got {other:?}"),
    }
}

/// A read-only open never uses the free list: one damaged free-list page no longer keeps
/// it (and `salvage`, which opens read-only) from every other page. `check_integrity`
/// still reports the page, and a read-write open still refuses the file.
#[test]
fn a_damaged_free_list_does_not_keep_a_read_only_open_from_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.db");
    {
        let db = Database::open(&path).unwrap();
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        tx.create_table("t").unwrap();
        for i in 0..500u32 {
            tx.put("t", &i.to_be_bytes(), &[3; 200]).unwrap();
        }
        tx.commit().unwrap();
        db.checkpoint().unwrap();
        db.close().unwrap();
    }
    let mut bytes = bytes_of(&path);
    let h = [header_of(&bytes, 0), header_of(&bytes, 1)]
        .into_iter()
        .max_by_key(|h| h.generation)
        .unwrap();
    assert!(h.freelist_root > 0);
    let at = (h.freelist_root * u64::from(h.page_size)) as usize + 40;
    bytes[at] ^= 0xFF;
    bytes[at + 1] ^= 0xFF;
    std::fs::write(&path, &bytes).unwrap();
    let ro = Options::new().read_only(true).open(&path).unwrap();
    {
        let mut c = ro.connect();
        let tx = c.begin_read().unwrap();
        assert_eq!(tx.len("t").unwrap(), 500);
    }
    let report = ro.check_integrity().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&format!("page {}", h.freelist_root))),
        "{:?}",
        report.problems
    );
    // Not every free page reported leaked besides (the engine holds no free list).
    assert!(
        report
            .problems
            .iter()
            .all(|p| !p.contains("is leaked") && !p.contains("are leaked")),
        "{:?}",
        report.problems
    );
    drop(ro);
    assert!(Database::open(&path).is_err());
}

/// A header copy with one flipped bit is read repaired; `check_integrity` lists it as
/// repairable, as it lists repairable log records (it said the file was fine).
#[test]
fn check_lists_a_header_copy_with_a_flipped_bit_as_repairable() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_db(dir.path());
    let mut bytes = bytes_of(&path);
    bytes[HEADER_COPY_OFFSETS[0] as usize + 50] ^= 0x10;
    bytes[HEADER_COPY_OFFSETS[1] as usize + 50] ^= 0x04;
    std::fs::write(&path, &bytes).unwrap();
    let ro = Options::new().read_only(true).open(&path).unwrap();
    let report = ro.check_integrity().unwrap();
    let repairable: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.contains("repairable (a read-write open writes it back whole): header copy"))
        .collect();
    assert_eq!(repairable.len(), 2, "{:?}", report.problems);
}

/// A version store budget under 16 KiB made every commit a large one (a tree commit or
/// a checkpoint each), and no checkpoint-by-commits bound checkpointed after every
/// commit: both are refused as options, before any file is made.
#[test]
fn invalid_budget_options() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    for bad in [
        Options::new().version_store_budget(0),
        Options::new().version_store_budget(16 * 1024 - 1),
        Options::new().checkpoint_log_commits(0),
    ] {
        let r = bad.open(&path);
        assert!(matches!(r, Err(Error::InvalidOptions { .. })), "{r:?}");
    }
    assert!(!path.exists(), "a refused option creates no file");
    let db = Options::new()
        .version_store_budget(16 * 1024)
        .checkpoint_log_commits(1)
        .open(&path)
        .unwrap();
    db.connect().run(|tx| tx.create_table("t")).unwrap();
}

/// A database in `dir` whose table `t` holds `key` (checkpointed if `checkpoint`),
/// closed; its path and the copy holding its newest header.
fn one_commit_closed(
    dir: &Path,
    key: &[u8],
    value: &[u8],
    checkpoint: bool,
) -> (std::path::PathBuf, usize) {
    let path = new_db(dir);
    let db = Database::open(&path).unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.put("t", key, value).unwrap();
    tx.commit().unwrap();
    if checkpoint {
        db.checkpoint().unwrap();
    }
    drop(c);
    db.close().unwrap();
    let bytes = bytes_of(&path);
    let newest = (0..2)
        .max_by_key(|&c| header_of(&bytes, c).generation)
        .unwrap();
    (path, newest)
}

/// A header whose generation is one below the largest a reader accepts (a crafted
/// file): the next checkpoint wrote a header with the largest generation, which the
/// next open refused, after it had freed the log behind it. A header write now checks
/// first that its reader will accept it: the checkpoint is refused and nothing is lost.
#[test]
fn no_header_is_written_past_the_largest_generation() {
    let dir = tempfile::tempdir().unwrap();
    let (path, newest) = one_commit_closed(dir.path(), b"k1", b"v1", false);
    let mut h = header_of(&bytes_of(&path), newest);
    // `PIN_GENERATION_MAX` (2^62 - 1) is refused; one below it is the largest read.
    h.generation = (1u64 << 62) - 2;
    rewrite_header(&path, newest, &h);

    let db = Database::open(&path).unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.put("t", b"k2", b"v2").unwrap();
    tx.commit().unwrap();
    let e = db.checkpoint().expect_err("no room for another header");
    assert!(
        e.is_corruption() && e.to_string().contains("generation"),
        "{e}"
    );
    drop(c);
    let _ = db.close();
    let db = Options::new().read_only(true).open(&path).unwrap();
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    assert_eq!(tx.get("t", b"k1").unwrap().as_deref(), Some(&b"v1"[..]));
    assert_eq!(tx.get("t", b"k2").unwrap().as_deref(), Some(&b"v2"[..]));
}

/// The newest header copy damaged while the older one names pages past the file's end
/// (as a copy from before a compaction that cut the file does): every open said "file
/// is truncated", naming neither copy. It now names the damaged copy's page.
#[test]
fn a_damaged_header_beside_a_copy_naming_pages_past_the_end_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (path, newest) = one_commit_closed(dir.path(), b"k", b"v", true);
    let bytes = bytes_of(&path);
    let older = 1 - newest;
    let mut h = header_of(&bytes, older);
    h.page_count = bytes.len() as u64 / u64::from(h.page_size) + 10;
    rewrite_header(&path, older, &h);
    let mut bytes = bytes_of(&path);
    bytes[HEADER_COPY_OFFSETS[newest] as usize + 50] ^= 0xFF;
    std::fs::write(&path, &bytes).unwrap();
    let name = if newest == 0 { "copy A" } else { "copy B" };
    for read_only in [false, true] {
        let e = Options::new()
            .read_only(read_only)
            .open(&path)
            .expect_err("neither state opens");
        assert!(
            matches!(e, Error::Corrupted { .. }) && e.to_string().contains(name),
            "read-only {read_only}: {e}"
        );
    }
}
