//! The results table: one row per workload, one column per engine, and the ratio of
//! capsuledb's figure to the best peer's.

/// Which way a row's figure is better.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

pub struct Row {
    pub label: String,
    pub better: Better,
    pub cells: Vec<Option<f64>>,
}

pub struct Table {
    pub engines: Vec<&'static str>,
    pub rows: Vec<Row>,
}

/// A figure with thousands separators, or with decimals when it is small.
pub fn fmt_num(x: f64) -> String {
    if x.abs() >= 1000.0 {
        let s = format!("{:.0}", x.round());
        let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

impl Table {
    pub fn new(engines: Vec<&'static str>) -> Table {
        Table {
            engines,
            rows: Vec::new(),
        }
    }

    /// Sets one cell, adding the row on first use.
    pub fn set(&mut self, label: &str, better: Better, engine: usize, value: f64) {
        let n = self.engines.len();
        let row = match self.rows.iter().position(|r| r.label == label) {
            Some(i) => &mut self.rows[i],
            None => {
                self.rows.push(Row {
                    label: label.into(),
                    better,
                    cells: vec![None; n],
                });
                self.rows.last_mut().expect("just pushed")
            }
        };
        row.cells[engine] = Some(value);
    }

    /// Declares a row so it keeps its place even if every engine fails it.
    pub fn row(&mut self, label: &str, better: Better) {
        if !self.rows.iter().any(|r| r.label == label) {
            let n = self.engines.len();
            self.rows.push(Row {
                label: label.into(),
                better,
                cells: vec![None; n],
            });
        }
    }

    fn ratio(&self, row: &Row) -> String {
        let Some(ours) = self
            .engines
            .iter()
            .position(|e| *e == "capsuledb")
            .and_then(|i| row.cells[i])
        else {
            return "—".into();
        };
        let peers = self
            .engines
            .iter()
            .zip(&row.cells)
            .filter(|(e, _)| **e != "capsuledb")
            .filter_map(|(_, c)| *c);
        let best = match row.better {
            Better::Higher => peers.fold(None, |b: Option<f64>, x| Some(b.map_or(x, |b| b.max(x)))),
            Better::Lower => peers.fold(None, |b: Option<f64>, x| Some(b.map_or(x, |b| b.min(x)))),
        };
        match best {
            Some(b) if b > 0.0 => format!("{:.2}×", ours / b),
            Some(_) if ours == 0.0 => "1.00×".into(),
            _ => "—".into(),
        }
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str("| workload |");
        for e in &self.engines {
            out.push_str(&format!(" {e} |"));
        }
        out.push_str(" capsuledb / best peer |\n|---|");
        for _ in &self.engines {
            out.push_str("---:|");
        }
        out.push_str("---:|\n");
        for row in &self.rows {
            let arrow = match row.better {
                Better::Higher => "↑",
                Better::Lower => "↓",
            };
            out.push_str(&format!("| {} {arrow} |", row.label));
            for c in &row.cells {
                match c {
                    Some(x) => out.push_str(&format!(" {} |", fmt_num(*x))),
                    None => out.push_str(" failed |"),
                }
            }
            out.push_str(&format!(" {} |\n", self.ratio(row)));
        }
        out
    }
}

/// Logs a failed workload and keeps it for the notes under the table.
pub fn failed(notes: &mut Vec<String>, what: &str, engine: &str, e: &crate::engine::BoxError) {
    eprintln!("  {engine}: {what} FAILED: {e}");
    notes.push(format!("{engine} failed {what}: {e}"));
}
