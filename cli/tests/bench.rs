//! `capsuledb bench` with tiny sizes: every phase runs, the table and the JSON come out,
//! and the temporary files are removed.

mod common;
use common::{fails, ok, s};

const TINY: [&str; 16] = [
    "--seconds-per-phase",
    "0.1",
    "--keys",
    "2000",
    "--threads",
    "2,4",
    "--applied-threads",
    "1,2",
    "--contended-threads",
    "4",
    "--read-threads",
    "1,2",
    "--keys-per-writer",
    "100",
    "--quiet",
    "--seed",
];

fn tiny(dir: &tempfile::TempDir, extra: &[&str]) -> String {
    let path = s(dir.path());
    let mut args: Vec<&str> = vec!["bench", "--path", &path];
    args.extend(TINY);
    args.push("7");
    args.extend(extra);
    ok(&args)
}

#[test]
fn bench_prints_a_row_per_phase_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let out = tiny(&dir, &[]);
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("| ")).collect();
    assert!(
        rows[0].contains("phase") && rows[0].contains("fsyncs/commit"),
        "{out}"
    );
    assert!(rows[1].starts_with("| ---"), "{out}");
    let phases: Vec<&str> = rows[2..]
        .iter()
        .map(|r| {
            r.trim_start_matches("| ")
                .split(" |")
                .next()
                .unwrap()
                .trim()
        })
        .collect();
    assert_eq!(
        phases,
        [
            "raw fdatasync",
            "durable commit",
            "durable commit",
            "durable commit",
            "contended serializable",
            "applied commit",
            "applied commit",
            "bulk load",
            "point read",
            "point read",
            "range scan 1000",
        ],
        "{out}"
    );
    let widths: Vec<usize> = rows.iter().map(|r| r.chars().count()).collect();
    assert!(
        widths.iter().all(|&w| w == widths[0]),
        "table not aligned:\n{out}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn bench_json_parses_and_selects_phases() {
    let dir = tempfile::tempdir().unwrap();
    let out = tiny(&dir, &["--json", "--phases", "single,contended,reads"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("stdout is one JSON document");
    let results = v["results"].as_array().expect("results array");
    let phases: Vec<&str> = results
        .iter()
        .map(|r| r["phase"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        [
            "durable commit",
            "contended serializable",
            "bulk load",
            "point read",
            "point read"
        ]
    );
    for r in results {
        assert!(r["ops"].as_u64().unwrap() > 0, "{r}");
        assert!(r["ops_per_s"].as_f64().unwrap() > 0.0, "{r}");
    }
    assert_eq!(results[0]["threads"], 1);
    assert!(results[0]["fsyncs_per_commit"].as_f64().unwrap() > 0.0);
    assert!(results[1]["abort_pct"].as_f64().is_some());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn bench_ops_cap_ends_phases_early() {
    let dir = tempfile::tempdir().unwrap();
    let path = s(dir.path());
    let out = ok(&[
        "bench",
        "--path",
        &path,
        "--quiet",
        "--json",
        "--phases",
        "applied",
        "--applied-threads",
        "1",
        "--commits",
        "50",
        "--seconds-per-phase",
        "60",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ops = v["results"][0]["ops"].as_u64().unwrap();
    assert!((50..60).contains(&ops), "{ops}");
}

#[test]
fn bench_keep_leaves_a_database_every_subcommand_can_use() {
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("kept.db");
    let kept = s(&kept);
    tiny(&dir, &["--phases", "bulk,reads", "--keep", &kept]);
    let info = ok(&["info", &kept]);
    assert!(
        info.contains("table              bench (2000 entries)"),
        "{info}"
    );
    assert!(ok(&["check", &kept]).starts_with("ok:"));
    assert_eq!(ok(&["tables", &kept]), "bench\n");
    let scan = ok(&["scan", &kept, "bench", "--hex", "--limit", "3"]);
    assert_eq!(scan.lines().count(), 3, "{scan}");
    let dump = ok(&["dump", &kept, "bench", "--format", "hex"]);
    assert_eq!(dump.lines().count(), 2000);
    ok(&["put", &kept, "bench", "--hex", "00", "ff"]);
    assert_eq!(ok(&["get", &kept, "bench", "--hex", "00"]), "ff\n");
    ok(&["delete", &kept, "bench", "--hex", "00"]);
    assert!(ok(&["compact", &kept]).starts_with("compacted:"));
    assert!(ok(&["check", &kept]).starts_with("ok:"));
}

/// `--keep` never replaces a file, and says so before any phase runs.
#[test]
fn bench_keep_refuses_an_existing_file_at_once() {
    let (_dir, db) = common::sample();
    let before = std::fs::read(&db).unwrap();
    let err = fails(
        &["bench", "--phases", "bulk", "--keys", "10", "--keep", &db],
        1,
    );
    assert!(err.contains("exists"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

/// `--keep` into a directory no file can be made in is refused before any phase runs
/// (it was found after the whole run, and the results were lost with it). `/proc`
/// takes no new file, whoever runs the test.
#[test]
fn bench_keep_into_an_unwritable_directory_is_refused_at_once() {
    let err = fails(
        &[
            "bench",
            "--phases",
            "bulk",
            "--keys",
            "10",
            "--keep",
            "/proc/kept.db",
        ],
        1,
    );
    assert!(err.contains("create a file in its directory"), "{err}");
}

/// A closed stdout ends `bench` quietly (exit 0), as it does the other commands: no panic.
#[test]
fn bench_output_into_a_closed_pipe_is_no_failure() {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_capsuledb"))
        .args([
            "bench",
            "--phases",
            "fsync",
            "--seconds-per-phase",
            "0.1",
            "--quiet",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before anything is printed
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

/// A run ended by SIGTERM (or Ctrl-C's SIGINT) removes its temporary directory, as a
/// finished run does, and exits with 128 + the signal's number.
#[test]
fn an_interrupted_run_removes_its_directory() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_capsuledb"))
        .args(["bench", "--path", &s(dir.path()), "--phases", "single"])
        .args(["--seconds-per-phase", "120", "--seed", "7"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The first line is printed once the signals are taken over.
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("capsuledb bench: "), "{line}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: sends a signal to the child this test started and still waits for.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "the run's directory is left behind"
    );
}

/// `--keep` onto another file system (the benchmark's directory on tmpfs, when the
/// machine has one): a copy beside FILE, synced and linked in, and nothing else left
/// there (the copy went straight to FILE's name, a failure leaving part of it).
#[test]
fn bench_keep_across_file_systems_leaves_one_whole_file() {
    let shm = std::path::Path::new("/dev/shm");
    if !shm.is_dir() {
        return; // no second file system here
    }
    let run_dir = tempfile::tempdir_in(shm).unwrap();
    let keep_dir = tempfile::tempdir().unwrap();
    let kept = s(&keep_dir.path().join("kept.db"));
    tiny(&run_dir, &["--phases", "bulk", "--keep", &kept]);
    assert!(ok(&["check", &kept]).starts_with("ok:"));
    let names: Vec<_> = std::fs::read_dir(keep_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("kept.db")]);
}
