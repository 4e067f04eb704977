//! Terminal clients of a running server: `freshet sql "…"` prints results as tables, and
//! `freshet subscribe VIEW` keeps a live table on screen, redrawn at every progress message
//! (never half a timestamp).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};

use anyhow::{bail, Context as _};

use crate::table::write_table;
use serde_json::Value;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn with_auth<B>(req: ureq::RequestBuilder<B>, token: Option<&str>) -> ureq::RequestBuilder<B> {
    match token {
        Some(t) => req.header("Authorization", &format!("Bearer {t}")),
        None => req,
    }
}

fn api_error(body: &Value) -> String {
    let e = &body["error"];
    let mut msg = format!(
        "{} ({})",
        e["message"].as_str().unwrap_or("request failed"),
        e["code"].as_str().unwrap_or("?")
    );
    if let Some(p) = e.get("position") {
        msg.push_str(&format!(" at line {}, column {}", p["line"], p["column"]));
    }
    if let Some(i) = e.get("statement_index").and_then(Value::as_u64) {
        msg = format!("statement {}: {msg}", i + 1);
    }
    msg
}

/// Runs statements on the server and prints each result.
pub fn sql(url: &str, token: Option<&str>, sql: &str) -> anyhow::Result<()> {
    let body = serde_json::json!({ "sql": sql }).to_string();
    let mut resp = with_auth(agent().post(&format!("{url}/v1/sql")), token)
        .header("Content-Type", "application/json")
        .send(body)
        .with_context(|| format!("connecting to {url}"))?;
    let text = resp.body_mut().read_to_string()?;
    let json: Value =
        serde_json::from_str(&text).with_context(|| format!("unexpected answer: {text}"))?;
    if !resp.status().is_success() {
        bail!(api_error(&json));
    }
    let mut out = std::io::stdout().lock();
    for r in json["results"].as_array().into_iter().flatten() {
        match (r["columns"].as_array(), r["rows"].as_array()) {
            (Some(cols), Some(rows)) => {
                let names: Vec<String> = cols
                    .iter()
                    .map(|c| c["name"].as_str().unwrap_or("").to_string())
                    .collect();
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|row| row.as_array().into_iter().flatten().map(cell).collect())
                    .collect();
                write_table(&mut out, &names, &cells)?;
            }
            _ => writeln!(out, "{}", r["tag"].as_str().unwrap_or(""))?,
        }
    }
    Ok(())
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Follows a view, redrawing it in the terminal at every complete timestamp.
pub fn subscribe(url: &str, token: Option<&str>, view: &str) -> anyhow::Result<()> {
    let resp = with_auth(agent().get(&format!("{url}/v1/subscribe")), token)
        .query("view", view)
        .header("Accept", "application/x-ndjson")
        .call()
        .with_context(|| format!("connecting to {url}"))?;
    if !resp.status().is_success() {
        let text = resp.into_body().read_to_string()?;
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        bail!(api_error(&json));
    }
    let reader = BufReader::new(resp.into_body().into_reader());
    let mut names: Vec<String> = Vec::new();
    let mut rows: BTreeMap<String, (Vec<String>, i64)> = BTreeMap::new();
    let mut out = std::io::stdout().lock();
    for line in reader.lines() {
        let msg: Value = serde_json::from_str(&line?)?;
        match msg["type"].as_str() {
            Some("columns") => {
                names = msg["columns"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| c["name"].as_str().unwrap_or("").to_string())
                    .collect()
            }
            Some("update") => {
                for u in msg["updates"].as_array().into_iter().flatten() {
                    let cells: Vec<String> = u["row"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(cell)
                        .collect();
                    let key = u["row"].to_string();
                    let entry = rows.entry(key.clone()).or_insert((cells, 0));
                    entry.1 += u["diff"].as_i64().unwrap_or(0);
                    if entry.1 == 0 {
                        rows.remove(&key);
                    }
                }
            }
            Some("progress") => {
                let time = msg["time"].as_u64().unwrap_or(0).saturating_sub(1);
                let cells: Vec<Vec<String>> = rows
                    .values()
                    .flat_map(|(c, n)| std::iter::repeat_n(c.clone(), (*n).max(0) as usize))
                    .collect();
                // Clear the screen and draw the table as of `time`.
                write!(out, "\x1b[2J\x1b[H{view} as of {time}\n\n")?;
                write_table(&mut out, &names, &cells)?;
                out.flush()?;
            }
            Some("error") => bail!(
                "{} ({})",
                msg["message"].as_str().unwrap_or(""),
                msg["code"].as_str().unwrap_or("")
            ),
            _ => {}
        }
    }
    Ok(())
}
