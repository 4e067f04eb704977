//! File sources: CSV or JSON lines from a file or a directory of files.
//!
//! Backfill is shared: a single file's bytes are cut into one range per worker (each worker
//! reads the lines that *start* in its range, so no line is read twice or missed), and a
//! directory's files are dealt to workers by a hash of their names. With `tail = true` the
//! owner of a file keeps reading what is appended after the backfill; a directory is also
//! watched for new files. A file that shrinks is taken to be truncated and is read again from
//! its start; a file replaced by another (a new inode: log rotation) is read from the start of
//! the new file. Both decisions are logged; rows already read stay (they are not retracted).

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use freshet_dataflows::connector::{
    Closed, Format, ReaderContext, SourceOutput, SourceSpec, Transport,
};
use freshet_dataflows::error::{Error, Result};

use super::{bool_option, check_options, Batcher};
use crate::format::record::RecordDecoder;

/// How often a tailed file is checked for growth.
const POLL: Duration = Duration::from_millis(5);

/// Set by `prepare`, never by users (it is not a known option): the file's length when the
/// source was created. Every worker divides the backfill by this one length; each measuring the
/// file itself, workers that started around an append cut different ranges and left bytes
/// between them unread. With `tail`, it is the end of the last complete line instead: a line
/// still being written then is left to the tail, which waits for its newline (read by the
/// backfill, its first half would be one bad record and its second half another).
const BACKFILL_END: &str = "freshet.backfill_end";

pub(crate) fn prepare(spec: &mut SourceSpec) -> Result<()> {
    check_options(spec, &["header", "tail"])?;
    bool_option(spec, "header", false)?;
    bool_option(spec, "tail", false)?;
    let path = path_of(spec);
    if !path.exists() {
        return Err(Error::plan(format!(
            "file source \"{}\": {} does not exist",
            spec.name,
            path.display()
        )));
    }
    if let Some(meta) = std::fs::metadata(&path).ok().filter(|m| m.is_file()) {
        let mut end = meta.len();
        if bool_option(spec, "tail", false)? {
            end = end_of_last_line(&path, end).map_err(|e| {
                Error::plan(format!(
                    "file source \"{}\": {}: {e}",
                    spec.name,
                    path.display()
                ))
            })?;
        }
        spec.options
            .insert(BACKFILL_END.to_string(), end.to_string());
    }
    Ok(())
}

/// The offset just past the last newline in the first `len` bytes of `path` (0 if none).
fn end_of_last_line(path: &Path, len: u64) -> std::io::Result<u64> {
    use std::io::Read;
    const BLOCK: u64 = 64 * 1024;
    let mut file = File::open(path)?;
    let mut end = len;
    let mut buf = Vec::new();
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        buf.resize((end - start) as usize, 0);
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf)?;
        if let Some(i) = buf.iter().rposition(|b| *b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

fn path_of(spec: &SourceSpec) -> PathBuf {
    match &spec.transport {
        Transport::File { path } => PathBuf::from(path),
        _ => PathBuf::new(),
    }
}

struct Config {
    name: String,
    header: bool,
    tail: bool,
    /// Where the backfill of a single file ends ([`BACKFILL_END`]).
    backfill_end: Option<u64>,
    decoder: RecordDecoder,
}

pub(crate) fn start(spec: &SourceSpec, ctx: ReaderContext) -> Result<Box<dyn Send>> {
    let config = Config {
        name: spec.name.clone(),
        header: bool_option(spec, "header", false)? && spec.format == Some(Format::Csv),
        tail: bool_option(spec, "tail", false)?,
        backfill_end: spec.options.get(BACKFILL_END).and_then(|v| v.parse().ok()),
        decoder: RecordDecoder::new(spec.schema.clone(), spec.format.unwrap_or(Format::Json)),
    };
    let path = path_of(spec);
    let name = format!("freshet-file-{}-{}", spec.name, ctx.worker);
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let result = if path.is_dir() {
                read_directory(&config, &path, &ctx)
            } else {
                read_file(&config, &path, &ctx)
            };
            if let Err(Closed) = result {
                tracing::debug!(source = config.name, "file reader stopped");
            }
        })
        .map_err(|e| Error::Internal(format!("could not start a reader thread: {e}")))?;
    Ok(Box::new(()))
}

/// One file, its bytes shared among the workers for the backfill.
fn read_file(config: &Config, path: &Path, ctx: &ReaderContext) -> std::result::Result<(), Closed> {
    let out = &ctx.output;
    let mut decoder = config.decoder.clone();
    let mut batcher = Batcher::new(out);
    let file = loop {
        match File::open(path) {
            Ok(f) => break f,
            Err(e) => {
                out.stats.stall(format!(
                    "source \"{}\": cannot open {}: {e}",
                    config.name,
                    path.display()
                ));
                wait(out, Duration::from_millis(500))?;
            }
        }
    };
    out.stats.unstall();
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let identity = identity(&file);
    // The header (if any) is read by every worker, to map fields to columns.
    let mut start_of_data = 0;
    if config.header {
        let mut reader = BufReader::new(&file);
        let mut line = Vec::new();
        start_of_data = reader.read_until(b'\n', &mut line).unwrap_or(0) as u64;
        if let Err(e) = decoder.use_csv_header(&line) {
            out.stats.stall(format!(
                "source \"{}\": {}: {e}",
                config.name,
                path.display()
            ));
            return batcher.caught_up();
        }
    }
    // This worker's byte range of the backfill, and where following appends starts. After a
    // restart they come from the stored positions: part 0 is where this worker's reader
    // stands, 1 the end of its range, 2 the file's length when the backfill began.
    let (lo, hi, tail_from) = match resume_range(config, ctx, path, len)? {
        Some(range) => range,
        None => {
            // One length for all workers (a shorter file was truncated since).
            let end = config.backfill_end.map_or(len, |e| e.min(len));
            let data = end.saturating_sub(start_of_data);
            let share = data.div_ceil(ctx.peers as u64);
            let lo = start_of_data + share * ctx.worker as u64;
            let hi = (lo + share).min(end);
            (lo.min(end), hi, end)
        }
    };
    batcher.position(0, lo);
    batcher.position(1, hi);
    batcher.position(2, tail_from);
    out.stats
        .total_bytes
        .fetch_add(hi.saturating_sub(lo), Ordering::Relaxed);
    let mut reader = match LineReader::open(file, lo, lo == start_of_data, start_of_data) {
        Ok(r) => r,
        Err(e) => {
            out.stats.stall(format!(
                "source \"{}\": {}: {e}",
                config.name,
                path.display()
            ));
            return batcher.caught_up();
        }
    };
    reader.read(&decoder, &mut batcher, path, 0, Some(hi))?;
    batcher.caught_up()?;
    if !config.tail || ctx.worker != 0 {
        return Ok(());
    }
    // Worker 0 follows what is appended after the backfill (a resumed reader that was already
    // following stands at a line's start).
    let at_line_start = reader.offset >= tail_from;
    let from = reader.offset.max(tail_from);
    let mut reader =
        LineReader::open(reader.into_file(), from, at_line_start, 0).map_err(|_| Closed)?;
    let mut identity = identity;
    // After a truncation or rotation, a CSV header must be skipped again once it is complete.
    let mut header_pending = false;
    loop {
        match std::fs::metadata(path) {
            Err(e) => {
                out.stats.stall(format!(
                    "source \"{}\": {} is gone ({e}); waiting for it to reappear",
                    config.name,
                    path.display()
                ));
            }
            Ok(meta) => {
                let now = meta_identity(&meta);
                if now != identity {
                    tracing::warn!(
                        source = config.name,
                        path = %path.display(),
                        "file was replaced (rotated); reading the new file from its start"
                    );
                    match File::open(path) {
                        Ok(f) => {
                            identity = now;
                            reader = LineReader::open(f, 0, true, 0).map_err(|_| Closed)?;
                            header_pending = config.header;
                        }
                        Err(_) => {
                            wait(out, POLL)?;
                            continue;
                        }
                    }
                } else if meta.len() < reader.offset {
                    tracing::warn!(
                        source = config.name,
                        path = %path.display(),
                        size = meta.len(),
                        "file shrank (truncated); reading it again from its start"
                    );
                    reader =
                        LineReader::open(reader.into_file(), 0, true, 0).map_err(|_| Closed)?;
                    header_pending = config.header;
                }
                out.stats.unstall();
                if header_pending {
                    match complete_header_len(path) {
                        Some(skip) => {
                            reader = LineReader::open(reader.into_file(), skip, true, skip)
                                .map_err(|_| Closed)?;
                            header_pending = false;
                        }
                        None => {
                            wait(out, POLL)?;
                            continue;
                        }
                    }
                }
                if meta.len() > reader.offset {
                    reader.read(&decoder, &mut batcher, path, 0, None)?;
                    batcher.flush()?;
                    continue;
                }
            }
        }
        wait(out, POLL)?;
    }
}

/// This worker's (range start, range end, tail start) from the positions stored before a
/// restart; `None` to divide the file afresh (no restart, or this worker stored nothing).
fn resume_range(
    config: &Config,
    ctx: &ReaderContext,
    path: &Path,
    len: u64,
) -> std::result::Result<Option<(u64, u64, u64)>, Closed> {
    let Some(resume) = &ctx.resume else {
        return Ok(None);
    };
    let Some(own) = &resume.own else {
        // Byte ranges were cut for another number of workers: reading on from them would
        // read rows twice or skip some. Say so and wait (the source stays unready).
        ctx.output.stats.stall(format!(
            "source \"{}\": {} was being read by a different number of workers before the \
             restart; restart with that number of workers, or drop and create the source again",
            config.name,
            path.display()
        ));
        loop {
            wait(&ctx.output, Duration::from_secs(1))?;
        }
    };
    let (Some(&at), Some(&hi), Some(&tail)) = (own.get(&0), own.get(&1), own.get(&2)) else {
        return Ok(None);
    };
    if at > len {
        tracing::warn!(
            source = config.name,
            path = %path.display(),
            size = len,
            position = at,
            "file is shorter than where reading stopped before the restart (truncated while \
             down); following it from its end"
        );
        return Ok(Some((len, len, len)));
    }
    Ok(Some((at, hi, tail)))
}

/// Length of a CSV file's header line.
fn header_len(path: &Path) -> u64 {
    File::open(path)
        .ok()
        .and_then(|f| {
            let mut line = Vec::new();
            BufReader::new(f).read_until(b'\n', &mut line).ok()
        })
        .unwrap_or(0) as u64
}

/// Length of the header line once it is complete (ends with a newline).
fn complete_header_len(path: &Path) -> Option<u64> {
    let f = File::open(path).ok()?;
    let mut line = Vec::new();
    let n = BufReader::new(f).read_until(b'\n', &mut line).ok()?;
    (line.last() == Some(&b'\n')).then_some(n as u64)
}

/// A directory: files dealt out by name; new files picked up while tailing.
fn read_directory(
    config: &Config,
    dir: &Path,
    ctx: &ReaderContext,
) -> std::result::Result<(), Closed> {
    let out = &ctx.output;
    let mut batcher = Batcher::new(out);
    let mut done: std::collections::BTreeMap<PathBuf, (LineReader, RecordDecoder, u64)> =
        Default::default();
    let mut first = true;
    loop {
        let mut files = list(dir);
        files.retain(|p| owner(p, ctx.peers) == ctx.worker && !done.contains_key(p));
        if first {
            let total: u64 = files
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum();
            out.stats.total_bytes.fetch_add(total, Ordering::Relaxed);
        }
        for path in files {
            let Ok(file) = File::open(&path) else {
                continue;
            };
            let mut decoder = config.decoder.clone();
            let mut skip = 0;
            if config.header {
                skip = header_len(&path);
                let mut line = Vec::new();
                if let Ok(f) = File::open(&path) {
                    let _ = BufReader::new(f).read_until(b'\n', &mut line);
                }
                if let Err(e) = decoder.use_csv_header(&line) {
                    out.stats.stall(format!(
                        "source \"{}\": {}: {e}",
                        config.name,
                        path.display()
                    ));
                    continue;
                }
            }
            let part = part_of(&path);
            // After a restart, a file read before goes on from its stored position.
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let from = match ctx.resume.as_ref().and_then(|r| r.all.get(&part)) {
                Some(&at) if at <= len => at.max(skip),
                Some(&at) => {
                    tracing::warn!(
                        source = config.name,
                        path = %path.display(),
                        size = len,
                        position = at,
                        "file is shorter than where reading stopped before the restart; \
                         reading it again from its start"
                    );
                    skip
                }
                None => skip,
            };
            let Ok(mut reader) = LineReader::open(file, from, true, skip) else {
                continue;
            };
            reader.read(&decoder, &mut batcher, &path, part, None)?;
            done.insert(path, (reader, decoder, part));
        }
        if first {
            first = false;
            batcher.caught_up()?;
        } else {
            batcher.flush()?;
        }
        if !config.tail {
            return Ok(());
        }
        // Follow appends to the files this worker owns.
        for (path, (reader, decoder, part)) in done.iter_mut() {
            if let Ok(meta) = std::fs::metadata(path) {
                if meta.len() > reader.offset {
                    reader.read(decoder, &mut batcher, path, *part, None)?;
                }
            }
        }
        batcher.flush()?;
        wait(out, POLL)?;
    }
}

/// Regular, non-hidden files of `dir`, by name.
fn list(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// A stable number for a file (its position key), from its name.
fn part_of(path: &Path) -> u64 {
    // FNV-1a: stable across runs and platforms, unlike the std hasher.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in path.file_name().unwrap_or_default().as_encoded_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn owner(path: &Path, peers: usize) -> usize {
    (part_of(path) % peers as u64) as usize
}

/// Reads complete lines from an offset, remembering where it is.
struct LineReader {
    reader: BufReader<File>,
    offset: u64,
    /// The 1-based number of the next line, when known (reading from the file's start).
    line: Option<u64>,
    buf: Vec<u8>,
}

impl LineReader {
    /// Positions at the first line starting at or after `offset` (at `offset` itself when
    /// `at_line_start`). Lines are numbered when reading from `numbered_from` (the data start).
    fn open(
        file: File,
        offset: u64,
        at_line_start: bool,
        numbered_from: u64,
    ) -> std::io::Result<LineReader> {
        let mut file = file;
        let mut offset = offset;
        if !at_line_start && offset > 0 {
            // The line containing `offset - 1` belongs to whoever owns its start.
            file.seek(SeekFrom::Start(offset - 1))?;
            let mut reader = BufReader::with_capacity(1 << 16, file);
            let mut skipped = Vec::new();
            let n = reader.read_until(b'\n', &mut skipped)? as u64;
            offset = offset - 1 + n;
            file = reader.into_inner();
        }
        file.seek(SeekFrom::Start(offset))?;
        let line = (offset == numbered_from).then_some(if numbered_from > 0 { 2 } else { 1 });
        Ok(LineReader {
            reader: BufReader::with_capacity(1 << 20, file),
            offset,
            line,
            buf: Vec::with_capacity(256),
        })
    }

    fn into_file(self) -> File {
        self.reader.into_inner()
    }

    /// Reads lines starting before `end` (all complete lines when `None`: an unterminated
    /// last line waits for its newline).
    fn read(
        &mut self,
        decoder: &RecordDecoder,
        batcher: &mut Batcher<'_>,
        path: &Path,
        part: u64,
        end: Option<u64>,
    ) -> std::result::Result<(), Closed> {
        loop {
            if end.is_some_and(|e| self.offset >= e) {
                break;
            }
            self.buf.clear();
            let n = match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(path = %path.display(), "read failed: {e}");
                    break;
                }
            };
            if end.is_none() && self.buf.last() != Some(&b'\n') {
                // A partial line at the end of a file being written: wait for the rest.
                let back = -(n as i64);
                let _ = self.reader.seek_relative(back);
                break;
            }
            let at = self.offset;
            let line = self.line;
            batcher.record(decoder, &self.buf, || match line {
                Some(l) => format!("{}:{l}", path.display()),
                None => format!("{} at byte {at}", path.display()),
            })?;
            self.offset += n as u64;
            self.line = self.line.map(|l| l + 1);
            batcher.position(part, self.offset);
        }
        Ok(())
    }
}

/// What identifies a file across renames (device and inode on Unix).
fn identity(file: &File) -> (u64, u64) {
    file.metadata().map(|m| meta_identity(&m)).unwrap_or((0, 0))
}

#[cfg(unix)]
fn meta_identity(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn meta_identity(_meta: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

/// Sleeps, ending early with `Closed` if the source is dropped.
fn wait(out: &SourceOutput, d: Duration) -> std::result::Result<(), Closed> {
    if out.is_closed() {
        return Err(Closed);
    }
    std::thread::sleep(d);
    if out.is_closed() {
        return Err(Closed);
    }
    Ok(())
}
