//! The generated input of the sources benchmarks and what the view must end up holding.
//!
//! Rows are `(k bigint, v bigint, t text)`: `k` has about 1,000 distinct values, `v` is below a
//! million, `t` is a short word. The same seeded sequence is written as a CSV file with a
//! header, as JSON lines, and produced to Kafka, so every run can be checked against one
//! oracle: per key, the count of rows and the sum of `v`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use freshet_dataflows::connector::Format;
use freshet_dataflows::{Column, DataType, Schema};
use freshet_inputs::format::record::RecordDecoder;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Distinct values of `k` (the number of groups in the view).
pub const KEYS: i64 = 1_000;

/// The columns, as the sources declare them.
pub const COLUMNS: &str = "k bigint, v bigint, t text";

/// The view every run builds over source `s`.
pub const VIEW: &str =
    "CREATE VIEW agg AS SELECT k, count(*) AS n, sum(v) AS total FROM s GROUP BY k";

/// One generated row.
pub struct Record {
    pub k: i64,
    pub v: i64,
    pub t: u32,
}

impl Record {
    pub fn csv(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(out, "{},{},w{:07x}", self.k, self.v, self.t)
    }

    pub fn json(&self, out: &mut impl Write) -> std::io::Result<()> {
        write!(
            out,
            "{{\"k\": {}, \"v\": {}, \"t\": \"w{:07x}\"}}",
            self.k, self.v, self.t
        )
    }
}

/// The first `n` rows of the seeded sequence.
pub fn records(n: u64) -> impl Iterator<Item = Record> {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    (0..n).map(move |_| Record {
        k: rng.random_range(0..KEYS),
        v: rng.random_range(0..1_000_000),
        t: rng.random_range(0..0x1000_0000),
    })
}

/// Per key: (count, sum of v). What `agg` must hold.
pub type Expected = BTreeMap<i64, (i64, i64)>;

pub fn add(expected: &mut Expected, k: i64, v: i64) {
    let e = expected.entry(k).or_default();
    e.0 += 1;
    e.1 += v;
}

/// Writes `n` rows to `dir/rows.csv` (with a header) and `dir/rows.jsonl`; returns the oracle.
pub fn write_files(dir: &Path, n: u64) -> anyhow::Result<Expected> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut csv = BufWriter::with_capacity(1 << 20, File::create(dir.join("rows.csv"))?);
    let mut json = BufWriter::with_capacity(1 << 20, File::create(dir.join("rows.jsonl"))?);
    writeln!(csv, "k,v,t")?;
    let mut expected = Expected::new();
    for r in records(n) {
        r.csv(&mut csv)?;
        r.json(&mut json)?;
        json.write_all(b"\n")?;
        add(&mut expected, r.k, r.v);
    }
    csv.flush()?;
    json.flush()?;
    Ok(expected)
}

/// Single-thread speed of reading a file's lines as the file source does (1 MB `BufReader`,
/// `read_until`), without and with decoding each line with the sources' `RecordDecoder`.
pub struct ParseSpeed {
    pub rows: u64,
    pub bytes: u64,
    pub lines_only: Duration,
    pub decode: Duration,
}

pub fn parse_speed(path: &Path, format: Format, header: bool) -> anyhow::Result<ParseSpeed> {
    let schema = Schema::new(vec![
        Column::new("k", DataType::Int, true),
        Column::new("v", DataType::Int, true),
        Column::new("t", DataType::Text, true),
    ]);
    let mut decoder = RecordDecoder::new(schema, format);
    let open = || -> anyhow::Result<BufReader<File>> {
        Ok(BufReader::with_capacity(1 << 20, File::open(path)?))
    };
    let mut line = Vec::with_capacity(256);
    if header {
        open()?.read_until(b'\n', &mut line)?;
        decoder
            .use_csv_header(&line)
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    // Once to warm the page cache, then timed.
    let mut pass = |decode: bool| -> anyhow::Result<(u64, u64, Duration)> {
        let mut reader = open()?;
        let (mut rows, mut bytes) = (0u64, 0u64);
        let start = Instant::now();
        if header {
            line.clear();
            reader.read_until(b'\n', &mut line)?;
        }
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            bytes += n as u64;
            if decode {
                match decoder.decode(&line) {
                    Some(Ok(update)) => {
                        std::hint::black_box(update);
                    }
                    Some(Err(e)) => bail!("{}: {e}", path.display()),
                    None => continue,
                }
            }
            rows += 1;
        }
        Ok((rows, bytes, start.elapsed()))
    };
    pass(false)?;
    let (rows, bytes, lines_only) = pass(false)?;
    let (_, _, decode) = pass(true)?;
    Ok(ParseSpeed {
        rows,
        bytes,
        lines_only,
        decode,
    })
}
