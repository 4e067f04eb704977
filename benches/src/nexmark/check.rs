//! Results compared as multisets of rows.
//!
//! Both sides are written as canonical text, one line per row occurrence: each value as its
//! JSON form in freshet's API (the baseline's typed results go through `Value::to_json`), with
//! doubles printed to ten significant digits so that sums taken in another order still match.
//! The files are kept (`target/bench-nexmark/`) so that a mismatch can be looked at.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

/// One value, canonically.
pub fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => {
            format!("{:.9e}", n.as_f64().unwrap_or(f64::NAN))
        }
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn row<'a>(cells: impl IntoIterator<Item = &'a serde_json::Value>) -> String {
    cells.into_iter().map(cell).collect::<Vec<_>>().join("\t")
}

/// Writes rows, each as many times as its multiplicity (a negative one as `-N\t` + row).
pub struct RowWriter {
    out: BufWriter<std::fs::File>,
    pub rows: u64,
}

impl RowWriter {
    pub fn create(path: &Path) -> anyhow::Result<RowWriter> {
        Ok(RowWriter {
            out: BufWriter::new(std::fs::File::create(path)?),
            rows: 0,
        })
    }

    pub fn write(&mut self, line: &str, multiplicity: i64) -> anyhow::Result<()> {
        if multiplicity < 0 {
            writeln!(self.out, "{multiplicity}\t{line}")?;
        }
        for _ in 0..multiplicity.max(0) {
            writeln!(self.out, "{line}")?;
            self.rows += 1;
        }
        Ok(())
    }

    pub fn finish(mut self) -> anyhow::Result<u64> {
        self.out.flush()?;
        Ok(self.rows)
    }
}

fn hash(line: &str) -> u64 {
    let mut h = DefaultHasher::new();
    line.hash(&mut h);
    h.finish()
}

/// The outcome of comparing two result files.
pub struct Comparison {
    pub left_rows: u64,
    pub right_rows: u64,
    /// Rows whose counts differ (distinct rows).
    pub differing: usize,
    /// A few rows only in `left` and only in `right`.
    pub only_left: Vec<String>,
    pub only_right: Vec<String>,
}

impl Comparison {
    pub fn equal(&self) -> bool {
        self.differing == 0
    }
}

/// Compares the row multisets of two files written by `RowWriter`.
pub fn compare(left: &Path, right: &Path) -> anyhow::Result<Comparison> {
    let mut counts: HashMap<u64, i64> = HashMap::new();
    let mut tally = |path: &Path, sign: i64| -> anyhow::Result<u64> {
        let mut n = 0;
        for line in BufReader::new(std::fs::File::open(path)?).lines() {
            *counts.entry(hash(&line?)).or_default() += sign;
            n += 1;
        }
        Ok(n)
    };
    let left_rows = tally(left, 1)?;
    let right_rows = tally(right, -1)?;
    let differing: HashSet<u64> = counts
        .into_iter()
        .filter(|(_, c)| *c != 0)
        .map(|(h, _)| h)
        .collect();
    let examples = |path: &Path| -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        if differing.is_empty() {
            return Ok(out);
        }
        for line in BufReader::new(std::fs::File::open(path)?).lines() {
            let line = line?;
            if differing.contains(&hash(&line)) && out.len() < 3 {
                out.push(line);
            }
        }
        Ok(out)
    };
    Ok(Comparison {
        left_rows,
        right_rows,
        differing: differing.len(),
        only_left: examples(left)?,
        only_right: examples(right)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_are_canonical() {
        assert_eq!(cell(&json!(42)), "42");
        assert_eq!(cell(&json!("a b")), "a b");
        assert_eq!(cell(&json!(null)), "null");
        // Sums taken in another order differ in the last bits only.
        assert_eq!(cell(&json!(0.1 + 0.2)), cell(&json!(0.3)));
        assert_ne!(cell(&json!(908.0)), cell(&json!(908)));
    }

    #[test]
    fn multisets_compare_with_multiplicities() {
        let dir = std::env::temp_dir().join(format!("freshet-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, rows: &[(&str, i64)]| {
            let path = dir.join(name);
            let mut w = RowWriter::create(&path).unwrap();
            for (r, m) in rows {
                w.write(r, *m).unwrap();
            }
            w.finish().unwrap();
            path
        };
        let a = write("a", &[("x", 2), ("y", 1)]);
        let b = write("b", &[("y", 1), ("x", 1), ("x", 1)]);
        let c = write("c", &[("x", 1), ("y", 1)]);
        assert!(compare(&a, &b).unwrap().equal());
        let diff = compare(&a, &c).unwrap();
        assert_eq!(diff.differing, 1);
        assert_eq!(diff.only_left, vec!["x", "x"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
