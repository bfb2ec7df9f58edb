//! A short run of the soak (`examples/soak/`): bank transfers, scans, snapshots,
//! filler rows that grow and shrink the file, checkpoints and compactions on 16 threads
//! for a few seconds. It asserts the invariants, `check_integrity()` and the reopen,
//! never timings; the long run is `cargo run --release --example soak`.

#[path = "../examples/soak/main.rs"]
#[allow(dead_code)]
mod soak;

use std::time::Duration;

#[test]
fn soak_keeps_invariants_and_integrity() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = soak::Config::new(dir.path().join("soak.db"));
    cfg.duration = Duration::from_secs(12);
    cfg.threads = 16;
    cfg.report_every = Duration::from_secs(3);
    cfg.checkpoint_every = Duration::from_millis(700);
    cfg.compact_every = Duration::from_secs(3);
    let report = soak::run(&cfg);
    assert_eq!(
        report.violation_count, 0,
        "invariants violated: {:?}",
        report.violations
    );
    assert_eq!(
        report.integrity,
        Some(Vec::new()),
        "check_integrity after the run"
    );
    assert!(report.reopen_ok, "the reopened database lost the invariant");
    assert_eq!(
        report.reopen_integrity,
        Some(Vec::new()),
        "check_integrity after reopening"
    );
    assert!(report.transfers > 0, "no transfer committed");
    assert!(
        report.checkpoints + report.compactions > 0,
        "no maintenance ran"
    );
    assert!(report.passed());
}
