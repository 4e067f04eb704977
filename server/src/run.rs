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
    let mut out = std::io::stdout().lock();
    let mut result = Ok(());
    for (i, stmt) in freshet_dataflows::sql::split_statements(&sql)
        .iter()
        .enumerate()
    {
        // A batch job reads its inputs to the end first: queries wait for the sources' history.
        let first = stmt.text.split_whitespace().next().unwrap_or("");
        if ["select", "with", "table", "values"].contains(&first.to_ascii_lowercase().as_str()) {
            wait_for_backfill(&engine);
        }
        match engine.execute(stmt.text) {
            Ok(results) => {
                for r in results.iter().filter(|r| r.rows.is_some()) {
                    print_result(&mut out, r, format)?;
                }
            }
            Err(e) => {
                let position = match &e.error {
                    freshet_dataflows::Error::Syntax {
                        position: Some(p), ..
                    } => {
                        // Positions are within the statement; report them in the file.
                        let start = freshet_dataflows::sql::position_of(&sql, stmt.offset);
                        let line = start.line + p.line - 1;
                        let column = if p.line == 1 {
                            start.column + p.column - 1
                        } else {
                            p.column
                        };
                        format!(" at line {line}, column {column}")
                    }
                    _ => String::new(),
                };
                result = Err(anyhow::anyhow!(
                    "{}: statement {} failed{position}: {}",
                    path.display(),
                    i + 1,
                    e.error
                ));
                break;
            }
        }
    }
    engine.shutdown();
    result
}

/// Waits until every source has read the history it found at start, with a progress bar on
/// a terminal (bytes where the size is known, else rows).
fn wait_for_backfill(engine: &Engine) {
    use std::sync::atomic::Ordering;
    if engine.sources_backfilling().is_empty() {
        return;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} backfilling {msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    loop {
        let waiting = engine.sources_backfilling();
        if waiting.is_empty() {
            break;
        }
        let stats = engine.source_stats();
        let (bytes, total, rows) = stats.iter().fold((0, 0, 0), |(b, t, r), (_, s)| {
            (
                b + s.bytes.load(Ordering::Relaxed),
                t + s.total_bytes.load(Ordering::Relaxed),
                r + s.rows.load(Ordering::Relaxed),
            )
        });
        bar.set_length(total.max(bytes));
        bar.set_position(bytes);
        bar.set_message(format!("{} ({rows} rows)", waiting.join(", ")));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    bar.finish_and_clear();
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
