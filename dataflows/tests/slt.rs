//! sqllogictest files run against the embedded engine.
//!
//! Every `*.slt` file under `tests/slt/` (recursively, `regressions/` included) runs on a fresh
//! engine, once with one worker and once with two. Records run one by one so that a failure
//! does not hide the ones after it; all failures are reported together, each with its file and
//! line. Files under `tests/slt/known_failures/` describe engine bugs that are not fixed yet:
//! the main test skips them (they would fail), and the ignored test `slt_known_failures` runs
//! them to show which still fail (`cargo test --test slt -- --ignored`).
//!
//! Expected results are PostgreSQL's (`tests/slt/pg_expected.py` runs the files on a PostgreSQL
//! server and compares), printed as described below.
//!
//! Conventions of the files:
//! - Column types: `I` bigint, `R` double precision and numeric, `T` everything else (text,
//!   boolean, timestamp, date, interval). They are checked.
//! - Values print as `Value`'s `Display`: NULL as `NULL`, booleans `true`/`false`, floats with
//!   at least one decimal (`2.0`), the empty string as `(empty)`.
//! - Leading whitespace of a value is significant (EXPLAIN output is one row per plan line,
//!   indented); trailing whitespace is ignored and inner runs of whitespace count as one space.
//! - `statement error <regex>` / `query error <regex>` match the engine error's message.
//! - Records that only make sense for freshet (its own statements, features it reports as
//!   unsupported) are marked `onlyif freshet`.
//!
//! Environment: `SLT_FILTER=substring` runs only the files whose path contains it;
//! `SLT_PATH=file-or-dir` runs other files instead of `tests/slt/`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use freshet_dataflows::engine::{Engine, EngineConfig};
use freshet_dataflows::{DataType, Value};
use sqllogictest::{DBOutput, DefaultColumnType, Record, RecordOutput, Runner};

/// Worker counts every file runs with.
const WORKER_COUNTS: [usize; 2] = [1, 2];

/// The folder (under the slt root) of files that are known to fail.
const KNOWN_FAILURES: &str = "known_failures";

/// An engine started for one file.
struct Freshet {
    engine: Engine,
}

/// An engine error, shown as the engine shows it (the message the error regexes match).
#[derive(Debug)]
struct SltError {
    code: &'static str,
    message: String,
}

impl fmt::Display for SltError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SltError {}

impl Freshet {
    fn start(workers: usize) -> Result<Freshet, SltError> {
        let engine = Engine::start(EngineConfig {
            workers,
            ..Default::default()
        })
        .map_err(|e| SltError {
            code: e.code(),
            message: e.to_string(),
        })?;
        Ok(Freshet { engine })
    }
}

impl Drop for Freshet {
    fn drop(&mut self) {
        self.engine.shutdown();
    }
}

fn column_type(ty: DataType) -> DefaultColumnType {
    match ty {
        DataType::Int => DefaultColumnType::Integer,
        DataType::Float | DataType::Numeric => DefaultColumnType::FloatingPoint,
        _ => DefaultColumnType::Text,
    }
}

fn render(v: &Value) -> String {
    match v {
        Value::Text(s) if s.is_empty() => "(empty)".to_string(),
        other => other.to_string(),
    }
}

impl sqllogictest::DB for Freshet {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let results = self.engine.execute(sql).map_err(|e| SltError {
            code: e.error.code(),
            message: e.error.to_string(),
        })?;
        let Some(last) = results.last() else {
            return Ok(DBOutput::StatementComplete(0));
        };
        match (&last.columns, &last.rows) {
            (Some(columns), Some(rows)) => {
                let types = columns.iter().map(|c| column_type(c.ty)).collect();
                let rows = if last.tag == "EXPLAIN" {
                    // One row per plan line, so that a plan reads as a tree in the file.
                    rows.iter()
                        .flat_map(|r| r.iter().map(|v| render(&v)).collect::<Vec<_>>())
                        .flat_map(|text| {
                            text.lines()
                                .map(|l| vec![l.to_string()])
                                .collect::<Vec<_>>()
                        })
                        .collect()
                } else {
                    rows.iter()
                        .map(|r| r.iter().map(|v| render(&v)).collect())
                        .collect()
                };
                Ok(DBOutput::Rows { types, rows })
            }
            _ => {
                // `INSERT 3`, `DELETE 1`, `UPDATE 2`: the count for `statement count N`.
                let count = last
                    .tag
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                Ok(DBOutput::StatementComplete(count))
            }
        }
    }

    fn shutdown(&mut self) {
        self.engine.shutdown();
    }

    fn engine_name(&self) -> &str {
        "freshet"
    }

    /// The engine's machine code (`invalid_query`, `not_found`, …), shown in mismatch reports.
    fn error_sql_state(err: &SltError) -> Option<String> {
        Some(err.code.to_string())
    }
}

/// Keeps leading whitespace (indentation is meaningful in EXPLAIN output), drops trailing
/// whitespace and folds inner runs of whitespace into one space.
#[allow(clippy::ptr_arg)] // the signature sqllogictest's `Normalizer` asks for
fn normalize(s: &String) -> String {
    let body = s.trim_start();
    let lead = &s[..s.len() - body.len()];
    let words: Vec<&str> = body.split_ascii_whitespace().collect();
    format!("{lead}{}", words.join(" "))
}

fn slt_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("slt")
}

/// All `*.slt` files under `dir`, sorted; with `skip_known`, not those under `known_failures/`.
fn collect(dir: &Path, skip_known: bool, out: &mut Vec<PathBuf>) {
    if dir.is_file() {
        out.push(dir.to_path_buf());
        return;
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            // Known failures would fail by definition; `slt_known_failures` runs them.
            if skip_known && path.file_name().is_some_and(|n| n == KNOWN_FAILURES) {
                continue;
            }
            collect(&path, skip_known, out);
        } else if path.extension().is_some_and(|e| e == "slt") {
            out.push(path);
        }
    }
}

/// Outcome of one file on one engine.
struct FileRun {
    records: usize,
    failures: Vec<String>,
}

/// Runs every record of `path` on a fresh engine with `workers` workers.
fn run_file(path: &Path, workers: usize) -> FileRun {
    let records = match sqllogictest::parse_file::<DefaultColumnType>(path) {
        Ok(r) => r,
        Err(e) => {
            return FileRun {
                records: 0,
                failures: vec![format!("cannot parse {}: {e}", path.display())],
            }
        }
    };
    let mut runner = Runner::new(move || std::future::ready(Freshet::start(workers)));
    runner.with_normalizer(normalize);
    runner.with_column_validator(sqllogictest::strict_column_validator);
    let mut run = FileRun {
        records: 0,
        failures: Vec::new(),
    };
    for record in records {
        if matches!(record, Record::Halt { .. }) {
            break;
        }
        let counted = matches!(record, Record::Statement { .. } | Record::Query { .. });
        match runner.run(record) {
            // Skipped (`onlyif`/`skipif`), or not a statement or query.
            Ok(RecordOutput::Nothing) => {}
            Ok(_) => run.records += usize::from(counted),
            Err(e) => {
                run.records += usize::from(counted);
                run.failures.push(format!(
                    "{} ({workers} worker(s)): {}",
                    e.location(),
                    e.kind().display(false)
                ));
            }
        }
    }
    runner.shutdown();
    run
}

/// What running a set of files gave.
struct Summary {
    records: usize,
    failures: Vec<String>,
    /// Files with no failure with any worker count.
    passing: Vec<PathBuf>,
}

/// Runs each file with each worker count.
fn run_all(files: &[PathBuf]) -> Summary {
    let mut summary = Summary {
        records: 0,
        failures: Vec::new(),
        passing: Vec::new(),
    };
    for path in files {
        let mut clean = true;
        for workers in WORKER_COUNTS {
            let started = Instant::now();
            let run = run_file(path, workers);
            eprintln!(
                "slt: {} with {workers} worker(s): {} records, {} failed, {:.1}s",
                path.strip_prefix(slt_root()).unwrap_or(path).display(),
                run.records,
                run.failures.len(),
                started.elapsed().as_secs_f64()
            );
            clean &= run.failures.is_empty();
            summary.records += run.records;
            summary.failures.extend(run.failures);
        }
        if clean {
            summary.passing.push(path.clone());
        }
    }
    summary
}

fn selected_files(root: &Path, skip_known: bool) -> Vec<PathBuf> {
    let mut files = Vec::new();
    collect(root, skip_known, &mut files);
    if let Ok(filter) = std::env::var("SLT_FILTER") {
        files.retain(|p| p.to_string_lossy().contains(&filter));
    }
    files
}

#[test]
fn sqllogictest() {
    let root = std::env::var("SLT_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|_| slt_root());
    let files = selected_files(&root, true);
    assert!(
        !files.is_empty() || std::env::var("SLT_FILTER").is_ok(),
        "no .slt files under {}",
        root.display()
    );
    let summary = run_all(&files);
    eprintln!(
        "slt: {} files, {} records run, {} failures",
        files.len(),
        summary.records,
        summary.failures.len()
    );
    if !summary.failures.is_empty() {
        panic!(
            "{} sqllogictest failure(s):\n\n{}",
            summary.failures.len(),
            summary.failures.join("\n\n")
        );
    }
}

/// Runs the known failures and lists what still fails. A file that passes entirely means its
/// bug is fixed: the test then fails, asking for the file to move to `regressions/`.
#[test]
#[ignore = "known engine bugs; run with --ignored to see which still fail"]
fn slt_known_failures() {
    let dir = slt_root().join(KNOWN_FAILURES);
    let files = selected_files(&dir, false);
    let summary = run_all(&files);
    for f in &summary.failures {
        eprintln!("{f}\n");
    }
    eprintln!(
        "slt known failures: {} files, {} records, {} failing",
        files.len(),
        summary.records,
        summary.failures.len()
    );
    assert!(
        summary.passing.is_empty(),
        "these known failures pass now; move them to tests/slt/regressions/: {:?}",
        summary.passing
    );
}
