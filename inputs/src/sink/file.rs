//! File sinks: JSON lines appended to a file, synced at each progress record.
//!
//! On start the file is read back and cut at the end of its last progress record, so a run
//! that died mid-write leaves nothing behind; a failed write is cut back the same way, which
//! makes every write all-or-nothing.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use freshet_dataflows::error::{Error, Result};
use freshet_dataflows::Schema;

use super::{parse_record, Destination, ReadBack, Recovered};

pub(crate) fn prepare(path: &str) -> Result<()> {
    let p = Path::new(path);
    let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(d) = dir {
        if !d.is_dir() {
            return Err(Error::plan(format!(
                "file sink: directory {} does not exist",
                d.display()
            )));
        }
    }
    if p.is_dir() {
        return Err(Error::plan(format!("file sink: {path} is a directory")));
    }
    Ok(())
}

pub struct FileDestination {
    path: PathBuf,
    file: Option<File>,
    /// Length of the file up to its last progress record.
    committed: u64,
}

impl FileDestination {
    pub fn new(path: &str) -> FileDestination {
        FileDestination {
            path: PathBuf::from(path),
            file: None,
            committed: 0,
        }
    }
}

impl Destination for FileDestination {
    fn recover(&mut self, schema: &Schema) -> std::result::Result<Recovered, String> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        let mut recovered = Recovered::default();
        let mut since_progress: Vec<(freshet_dataflows::Row, isize)> = Vec::new();
        let mut committed = 0u64;
        let mut offset = 0u64;
        let mut reader = BufReader::new(&file);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| format!("{}: {e}", self.path.display()))?;
            if n == 0 || line.last() != Some(&b'\n') {
                break;
            }
            offset += n as u64;
            match parse_record(schema, &line) {
                Ok(ReadBack::Progress(p)) => {
                    for (row, d) in since_progress.drain(..) {
                        *recovered.contents.entry(row).or_default() += d;
                    }
                    recovered.upper = p;
                    committed = offset;
                }
                Ok(ReadBack::Update(row, d)) => since_progress.push((row, d)),
                Err(e) => {
                    return Err(format!(
                        "{} at byte {}: {e} (not written by this sink?)",
                        self.path.display(),
                        offset - n as u64
                    ))
                }
            }
        }
        recovered.contents.retain(|_, d| *d != 0);
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len > committed {
            tracing::warn!(
                path = %self.path.display(),
                dropped_bytes = len - committed,
                "file sink: cutting records after the last progress (an unfinished write)"
            );
            file.set_len(committed)
                .map_err(|e| format!("{}: {e}", self.path.display()))?;
        }
        self.committed = committed;
        self.file = Some(file);
        Ok(recovered)
    }

    fn write(&mut self, records: &[Vec<u8>]) -> std::result::Result<(), String> {
        let file = self.file.as_mut().ok_or("file sink not open")?;
        let mut buf = Vec::with_capacity(records.iter().map(|r| r.len() + 1).sum());
        for r in records {
            buf.extend_from_slice(r);
            buf.push(b'\n');
        }
        if let Err(e) = file.write_all(&buf) {
            // All or nothing: cut back what part of the batch landed.
            let _ = file.set_len(self.committed);
            return Err(format!("{}: {e}", self.path.display()));
        }
        Ok(())
    }

    fn commit(&mut self) -> std::result::Result<(), String> {
        let file = self.file.as_mut().ok_or("file sink not open")?;
        file.sync_data()
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        self.committed = file.metadata().map(|m| m.len()).unwrap_or(self.committed);
        Ok(())
    }
}
