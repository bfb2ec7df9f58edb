//! The simulated storage's crash, tear, flip and fault behaviours, each proven.

use capsuledb::storage::{SECTOR_SIZE, SimStorage, Storage};

fn filled(len: usize, byte: u8) -> Vec<u8> {
    vec![byte; len]
}

#[test]
fn synced_writes_survive_and_unsynced_are_lost() {
    let s = SimStorage::new();
    s.write_at(0, b"durable").unwrap();
    s.sync().unwrap();
    s.write_at(100, b"volatile").unwrap();
    assert_eq!(s.view().unwrap().get(100, 8).unwrap(), b"volatile");
    s.crash_losing_unsynced();
    let v = s.view().unwrap();
    assert_eq!(v.get(0, 7).unwrap(), b"durable");
    assert_eq!(v.len(), 7, "the unsynced extension is gone");
}

#[test]
fn crash_is_deterministic_per_seed() {
    let image = |seed: u64| {
        let s = SimStorage::new();
        s.write_at(0, &filled(8192, 1)).unwrap();
        s.sync().unwrap();
        for i in 0..16u64 {
            s.write_at(i * 512, &filled(1024, i as u8 + 10)).unwrap();
        }
        s.crash(seed);
        s.live_bytes()
    };
    assert_eq!(image(7), image(7));
    let distinct: std::collections::HashSet<Vec<u8>> = (0..20).map(image).collect();
    assert!(
        distinct.len() > 1,
        "different seeds choose different subsets"
    );
}

#[test]
fn torn_writes_tear_only_at_sector_boundaries() {
    let sector = SECTOR_SIZE as usize;
    let mut saw_mixed = false;
    for seed in 0..64 {
        let s = SimStorage::new();
        s.write_at(0, &filled(8 * sector, 0xAA)).unwrap();
        s.sync().unwrap();
        // One unaligned write across 8 sector boundaries.
        s.write_at(100, &filled(8 * sector - 200, 0x55)).unwrap();
        s.crash(seed);
        let img = s.live_bytes();
        assert_eq!(img.len(), 8 * sector);
        // Each piece of the write between sector boundaries is all old or all new.
        let mut pieces = Vec::new();
        let (start, end) = (100usize, 8 * sector - 100);
        let mut at = start;
        while at < end {
            let next = ((at / sector) + 1) * sector;
            let next = next.min(end);
            let piece = &img[at..next];
            assert!(
                piece.iter().all(|&b| b == 0xAA) || piece.iter().all(|&b| b == 0x55),
                "seed {seed}: piece {at}..{next} is torn inside a sector"
            );
            pieces.push(piece[0]);
            at = next;
        }
        if pieces.contains(&0xAA) && pieces.contains(&0x55) {
            saw_mixed = true;
        }
        // Bytes outside the write are untouched.
        assert!(img[..100].iter().all(|&b| b == 0xAA));
        assert!(img[end..].iter().all(|&b| b == 0xAA));
    }
    assert!(
        saw_mixed,
        "some seed keeps part of the write and drops the rest"
    );
}

#[test]
fn crash_keeps_some_subsets_of_unsynced_writes() {
    let mut outcomes = std::collections::HashSet::new();
    for seed in 0..64 {
        let s = SimStorage::new();
        s.write_at(0, &filled(1024, 0)).unwrap();
        s.sync().unwrap();
        s.write_at(0, &[1]).unwrap();
        s.write_at(512, &[2]).unwrap();
        s.crash(seed);
        let img = s.live_bytes();
        outcomes.insert((img[0], img[512]));
    }
    assert_eq!(
        outcomes.len(),
        4,
        "every keep/drop combination occurs: {outcomes:?}"
    );
}

#[test]
fn flip_bit_changes_live_and_durable() {
    let s = SimStorage::new();
    s.write_at(0, &[0u8; 16]).unwrap();
    s.sync().unwrap();
    s.flip_bit(3, 2);
    assert_eq!(s.view().unwrap()[3], 0b100);
    assert_eq!(s.durable_bytes()[3], 0b100);
    s.flip_bit(1 << 40, 0); // past the end: ignored
}

#[test]
fn nth_write_sync_and_set_len_fail_once() {
    let s = SimStorage::new();
    s.fail_nth_write(2);
    s.write_at(0, b"a").unwrap();
    assert!(s.write_at(1, b"b").is_err());
    assert_eq!(s.view().unwrap().len(), 1, "the failed write wrote nothing");
    s.write_at(1, b"c").unwrap();

    s.fail_nth_sync(1);
    assert!(s.sync().is_err());
    assert_eq!(
        s.durable_bytes().len(),
        0,
        "a failed sync made nothing durable"
    );
    // Its writes are lost, as pages Linux marks clean after a failed writeback: reads
    // see them, no later sync makes them durable.
    s.sync().unwrap();
    assert_eq!(s.durable_bytes().len(), 0);
    assert_eq!(&s.view().unwrap()[..], b"ac");
    s.write_at(2, b"d").unwrap();
    s.sync().unwrap();
    assert_eq!(s.durable_bytes(), b"\0\0d");

    s.fail_nth_set_len(1);
    assert!(s.set_len(4096).is_err());
    assert_eq!(s.len().unwrap(), 3);
    s.set_len(4096).unwrap();
    assert_eq!(s.len().unwrap(), 4096);
    let c = s.counts();
    assert_eq!((c.writes, c.syncs, c.set_lens), (3, 2, 1));
}

#[test]
fn power_off_fails_everything_after_the_budget() {
    let s = SimStorage::new();
    s.power_off_after(2);
    s.write_at(0, b"x").unwrap();
    s.sync().unwrap();
    assert!(s.write_at(1, b"y").is_err());
    assert!(s.sync().is_err());
    assert!(s.set_len(10).is_err());
    s.crash(1);
    assert_eq!(s.live_bytes(), b"x");
    s.write_at(1, b"z").unwrap(); // power is back after the crash
}

#[test]
fn full_disk_refuses_growth() {
    let s = SimStorage::new();
    s.set_max_len(Some(4096));
    s.set_len(4096).unwrap();
    assert!(s.set_len(8192).is_err());
    let e = s.write_at(4000, &[0u8; 200]).unwrap_err();
    assert!(e.to_string().contains("full disk"), "{e}");
    s.write_at(0, &[1u8; 100]).unwrap();
}

#[test]
fn views_taken_before_a_write_stay_consistent() {
    let s = SimStorage::new();
    s.write_at(0, b"old").unwrap();
    let before = s.view().unwrap();
    s.write_at(0, b"new").unwrap();
    assert_eq!(&before[..], b"old");
    assert_eq!(&s.view().unwrap()[..], b"new");
}

#[test]
fn fork_crashes_independently() {
    let s = SimStorage::new();
    s.write_at(0, &[1u8; 1024]).unwrap();
    s.sync().unwrap();
    s.write_at(0, &[2u8; 1024]).unwrap();
    let a = s.fork();
    let b = s.fork();
    a.crash_losing_unsynced();
    assert_eq!(a.live_bytes()[0], 1);
    assert_eq!(b.live_bytes()[0], 2, "a fork keeps its own unsynced writes");
    b.crash(3);
    assert_eq!(s.live_bytes()[0], 2, "the original is untouched");
}

/// A lost writeback keeps the file's length (metadata the file system journals) and
/// drops only the unsynced writes: it dropped a pending resize too, leaving the durable
/// image shorter than the live one after the next sync.
#[test]
fn a_lost_writeback_keeps_lengths_and_drops_writes() {
    let sim = SimStorage::new();
    sim.set_len(4096).unwrap();
    sim.sync().unwrap();
    sim.set_len(1 << 20).unwrap();
    sim.write_at(8192, b"lost").unwrap();
    sim.fail_nth_sync(1);
    assert!(sim.sync().is_err());
    sim.lose_writeback();
    sim.write_at(0, b"kept").unwrap();
    sim.sync().unwrap();
    let durable = sim.durable_bytes();
    assert_eq!(durable.len(), 1 << 20);
    assert_eq!(&durable[..4], b"kept");
    assert_eq!(&durable[8192..8196], &[0; 4]);
    assert_eq!(&sim.live_bytes()[8192..8196], b"lost");
}
