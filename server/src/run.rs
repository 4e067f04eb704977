//! `freshet run FILE.sql`: a script on the same engine, in-process, then exit.
//!
//! Batch is a stream that closes: the script's statements run against a fresh engine exactly
//! as they would against a server, and each SELECT's result is printed.

use std::io::Write;

use anyhow::{bail, Context as _};
use freshet_dataflows::engine::{Engine, EngineConfig, StatementResult};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

pub fn run(path: &std::path::Path, workers: usize, format: Format) -> anyhow::Result<()> {
    // Planning recurses over the SQL tree: run it on a thread with room for the deepest
    // statement the planner accepts.
    let path = path.to_path_buf();
    std::thread::Builder::new()
        .stack_size(32 << 20)
        .spawn(move || run_script(&path, workers, format))?
        .join()
        .map_err(|_| anyhow::anyhow!("the script runner panicked"))?
}

fn run_script(path: &std::path::Path, workers: usize, format: Format) -> anyhow::Result<()> {
    let sql =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let engine = Engine::start(EngineConfig {
        workers,
        connectors: Some(freshet_inputs::connectors()),
        ..Default::default()
    })?;
    let outcome = engine.execute(&sql);
    let mut out = std::io::stdout().lock();
    let result = match outcome {
        Ok(results) => {
            for r in results.iter().filter(|r| r.rows.is_some()) {
                print_result(&mut out, r, format)?;
            }
            Ok(())
        }
        Err(e) => {
            for r in e.completed.iter().filter(|r| r.rows.is_some()) {
                print_result(&mut out, r, format)?;
            }
            let position = match &e.error {
                freshet_dataflows::Error::Syntax {
                    position: Some(p), ..
                } => format!(" at line {}, column {}", p.line, p.column),
                _ => String::new(),
            };
            Err(anyhow::anyhow!(
                "{}: statement {} failed{position}: {}",
                path.display(),
                e.statement_index + 1,
                e.error
            ))
        }
    };
    engine.shutdown();
    result
}

fn print_result(out: &mut impl Write, r: &StatementResult, format: Format) -> anyhow::Result<()> {
    let (Some(cols), Some(rows)) = (&r.columns, &r.rows) else {
        bail!("no rows")
    };
    match format {
        Format::Json => {
            for row in rows {
                let obj: serde_json::Map<String, serde_json::Value> = cols
                    .iter()
                    .zip(row.iter())
                    .map(|(c, v)| (c.name.clone(), v.to_json()))
                    .collect();
                writeln!(out, "{}", serde_json::Value::Object(obj))?;
            }
        }
        Format::Csv => {
            writeln!(
                out,
                "{}",
                cols.iter()
                    .map(|c| csv_field(&c.name))
                    .collect::<Vec<_>>()
                    .join(",")
            )?;
            for row in rows {
                let fields: Vec<String> = row
                    .iter()
                    .map(|v| {
                        if v.is_null() {
                            String::new()
                        } else {
                            csv_field(&v.to_string())
                        }
                    })
                    .collect();
                writeln!(out, "{}", fields.join(","))?;
            }
        }
        Format::Table => {
            let names: Vec<String> = cols.iter().map(|c| c.name.clone()).collect();
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| r.iter().map(|v| v.to_string()).collect())
                .collect();
            crate::table::write_table(out, &names, &cells)?;
        }
    }
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
