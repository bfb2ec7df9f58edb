//! Test support: reads the byte tables of `format-spec/` so tests can hold the code's
//! offsets against the specification.

/// One row of a spec table: offset, size and name.
#[derive(Debug, PartialEq, Eq)]
pub struct Row {
    pub offset: usize,
    pub size: usize,
    pub name: String,
}

/// The rows of the first `| Offset | Size | Type | Name | ...` table after the heading
/// line containing `heading` in `markdown`. Reserved rows are named `reserved`.
pub fn rows(markdown: &str, heading: &str) -> Vec<Row> {
    let mut lines = markdown
        .lines()
        .skip_while(|l| !(l.starts_with('#') && l.contains(heading)));
    let mut out = Vec::new();
    let mut in_table = false;
    for line in lines.by_ref().skip(1) {
        let t = line.trim();
        if !t.starts_with('|') {
            if in_table {
                break;
            }
            if t.starts_with('#') {
                break;
            }
            continue;
        }
        let cells: Vec<&str> = t.trim_matches('|').split('|').map(str::trim).collect();
        if cells.first() == Some(&"Offset") || cells.iter().all(|c| c.starts_with('-')) {
            in_table = true;
            continue;
        }
        in_table = true;
        let offset = cells[0].parse().expect("offset");
        let size = cells[1].parse().unwrap_or(0);
        let name = cells[3].trim_matches('`').to_string();
        out.push(Row { offset, size, name });
    }
    assert!(!out.is_empty(), "no table under heading {heading:?}");
    out
}

/// Asserts that `spec` rows and the code's `(name, offset, size)` triples agree, row by
/// row and in number.
pub fn assert_layout(spec: &[Row], code: &[(&str, usize, usize)]) {
    assert_eq!(
        spec.len(),
        code.len(),
        "rows in the spec table and fields in the code"
    );
    for (row, &(name, offset, size)) in spec.iter().zip(code) {
        assert_eq!(
            (row.name.as_str(), row.offset, row.size),
            (name, offset, size)
        );
    }
}
