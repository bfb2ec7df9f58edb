//! The results of a benchmark run: one row per phase, printed as an aligned
//! Markdown table or as JSON.

use serde_json::{Value, json};

/// One row of the summary.
#[derive(Clone, Debug, Default)]
pub struct PhaseResult {
    pub phase: String,
    pub threads: usize,
    /// Operations completed (commits, reads, scans, keys loaded).
    pub ops: u64,
    pub seconds: f64,
    pub ops_per_s: f64,
    pub latency_us_p50: Option<f64>,
    pub latency_us_p99: Option<f64>,
    pub fsyncs_per_commit: Option<f64>,
    pub abort_pct: Option<f64>,
    /// Commits per commit group (under load about one fdatasync per group: each sync is
    /// the second of one group and the first of the next).
    pub group_size_mean: Option<f64>,
    /// Capsule, proof and marker bytes written per commit.
    pub bytes_per_commit: Option<f64>,
    /// Mean time in the commit coordinator's serialized section.
    pub section_ns_mean: Option<f64>,
    pub write_conflicts: Option<u64>,
    pub ssi_conflicts: Option<u64>,
    pub notes: String,
}

/// What the run was measured on.
#[derive(Clone, Debug)]
pub struct Machine {
    pub directory: String,
    pub file_system: String,
    pub cpus: usize,
    pub seed: u64,
    pub seconds_per_phase: f64,
}

const HEADERS: [&str; 8] = [
    "phase",
    "threads",
    "ops/s",
    "p50 µs",
    "p99 µs",
    "fsyncs/commit",
    "abort %",
    "notes",
];

/// Numbers with thousands separators and no decimals (rates).
pub fn grouped(x: f64) -> String {
    let n = x.round().max(0.0) as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Latencies: three significant digits or so.
fn micros(x: Option<f64>) -> String {
    match x {
        None => "-".into(),
        Some(v) if v >= 100.0 => grouped(v),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

fn ratio(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:.3}"))
}

fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

fn cells(r: &PhaseResult) -> [String; 8] {
    [
        r.phase.clone(),
        r.threads.to_string(),
        grouped(r.ops_per_s),
        micros(r.latency_us_p50),
        micros(r.latency_us_p99),
        ratio(r.fsyncs_per_commit),
        percent(r.abort_pct),
        r.notes.clone(),
    ]
}

/// The summary as an aligned Markdown table: text columns left, numbers right.
pub fn table(results: &[PhaseResult]) -> String {
    let rows: Vec<[String; 8]> = results.iter().map(cells).collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let left = |i: usize| i == 0 || i == HEADERS.len() - 1;
    let line = |row: &[String]| {
        let mut s = String::from("|");
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            let pad = " ".repeat(w - cell.chars().count());
            if left(i) {
                s.push_str(&format!(" {cell}{pad} |"));
            } else {
                s.push_str(&format!(" {pad}{cell} |"));
            }
        }
        s
    };
    let mut out = line(&HEADERS.map(String::from));
    out.push('\n');
    out.push('|');
    for (i, w) in widths.iter().enumerate() {
        let dashes = "-".repeat(*w);
        if left(i) {
            out.push_str(&format!(" {dashes} |"));
        } else {
            out.push_str(&format!(" {}: |", &dashes[1..]));
        }
    }
    out.push('\n');
    for row in &rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

/// The summary as JSON.
pub fn json(machine: &Machine, results: &[PhaseResult]) -> Value {
    let rows: Vec<Value> = results
        .iter()
        .map(|r| {
            json!({
                "phase": r.phase,
                "threads": r.threads,
                "ops": r.ops,
                "seconds": r.seconds,
                "ops_per_s": r.ops_per_s,
                "latency_us_p50": r.latency_us_p50,
                "latency_us_p99": r.latency_us_p99,
                "fsyncs_per_commit": r.fsyncs_per_commit,
                "abort_pct": r.abort_pct,
                "group_size_mean": r.group_size_mean,
                "bytes_per_commit": r.bytes_per_commit,
                "section_ns_mean": r.section_ns_mean,
                "write_conflicts": r.write_conflicts,
                "ssi_conflicts": r.ssi_conflicts,
                "notes": r.notes,
            })
        })
        .collect();
    json!({
        "capsuledb_version": env!("CARGO_PKG_VERSION"),
        "directory": machine.directory,
        "file_system": machine.file_system,
        "cpus": machine.cpus,
        "seed": machine.seed,
        "seconds_per_phase": machine.seconds_per_phase,
        "results": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_inserts_separators() {
        assert_eq!(grouped(0.0), "0");
        assert_eq!(grouped(999.4), "999");
        assert_eq!(grouped(1000.0), "1,000");
        assert_eq!(grouped(1234567.0), "1,234,567");
    }

    #[test]
    fn table_is_aligned() {
        let r = PhaseResult {
            phase: "durable commit".into(),
            threads: 16,
            ops_per_s: 12345.6,
            latency_us_p50: Some(1234.5),
            notes: "group 3.1".into(),
            ..PhaseResult::default()
        };
        let t = table(&[r]);
        let widths: Vec<usize> = t.lines().map(|l| l.chars().count()).collect();
        assert_eq!(widths.len(), 3);
        assert!(widths.iter().all(|&w| w == widths[0]), "{t}");
        assert!(t.contains("12,346"));
    }
}
