//! Durable storage in a data directory: a lock file, a segmented write-ahead log with group
//! commit, and a snapshot.
//!
//! ```text
//! DIR/LOCK                       held (flock) while a freshet process uses DIR
//! DIR/log/<first seq>.wal        log segments: frames of (seq, LogRecord)
//! DIR/snapshot.bin               the latest snapshot (one frame), replaced atomically
//! ```
//!
//! **Group commit.** `append` encodes the record into a shared buffer and returns; one writer
//! thread takes whatever has gathered, writes it and calls `fdatasync` once, then reports every
//! record in that batch durable. Many concurrent writers thus share one fsync. A failed write
//! or sync cuts the segment back to its last durable length and reports those records failed,
//! so nothing half-written stays behind.
//!
//! **Recovery** reads the snapshot and then the segments in order, stopping at the first frame
//! that is torn or fails its checksum: the segment is cut there (and later segments set
//! aside), with a log line saying what was dropped. Only records that were never acknowledged
//! can be lost that way, because a record is acknowledged only after its fsync.

pub mod frame;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use freshet_dataflows::storage::{Done, LogRecord, Recovered, Snapshot, Storage};

/// Durable storage in a directory.
pub struct FileStorage {
    dir: PathBuf,
    shared: Arc<Queue>,
    /// The segment being appended to, shared with the writer thread.
    segment: Arc<Mutex<Segment>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    _lock: File,
}

struct Segment {
    file: Option<File>,
    /// Length of the segment up to its last durable frame.
    durable_len: u64,
    /// Sequence number of its first record.
    first_seq: u64,
    /// The last sequence number written to it (0 if none).
    last_seq: u64,
}

#[derive(Default)]
struct Queue {
    state: Mutex<Pending>,
    wake: Condvar,
    log_bytes: AtomicU64,
}

#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    done: Vec<Done>,
    last_seq: u64,
    closed: bool,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> String {
    format!("{what} {}: {e}", path.display())
}

impl FileStorage {
    /// Opens (creating) `dir` and takes its lock; a second process on the same directory is
    /// refused with a clear message.
    pub fn open(dir: &Path) -> Result<FileStorage, String> {
        std::fs::create_dir_all(dir.join("log")).map_err(|e| io("creating", dir, e))?;
        let lock_path = dir.join("LOCK");
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| io("opening", &lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&lock_path).unwrap_or_default();
                return Err(format!(
                    "data directory {} is in use by another freshet process{}",
                    dir.display(),
                    if holder.trim().is_empty() {
                        String::new()
                    } else {
                        format!(" (pid {})", holder.trim())
                    }
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("locking", &lock_path, e)),
        }
        let _ = lock.set_len(0);
        let _ = write!(lock, "{}", std::process::id());
        let shared = Arc::new(Queue::default());
        let segment = Arc::new(Mutex::new(Segment {
            file: None,
            durable_len: 0,
            first_seq: 1,
            last_seq: 0,
        }));
        let writer = {
            let shared = Arc::clone(&shared);
            let segment = Arc::clone(&segment);
            let log_dir = dir.join("log");
            std::thread::Builder::new()
                .name("freshet-wal".into())
                .spawn(move || write_loop(&shared, &segment, &log_dir))
                .map_err(|e| format!("starting the log writer: {e}"))?
        };
        Ok(FileStorage {
            dir: dir.to_path_buf(),
            shared,
            segment,
            writer: Mutex::new(Some(writer)),
            _lock: lock,
        })
    }

    fn segments(&self) -> Result<Vec<(u64, PathBuf)>, String> {
        let log = self.dir.join("log");
        let mut out = Vec::new();
        for e in std::fs::read_dir(&log).map_err(|e| io("reading", &log, e))? {
            let e = e.map_err(|e| io("reading", &log, e))?;
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(seq) = name
                .strip_suffix(".wal")
                .and_then(|s| s.parse::<u64>().ok())
            {
                out.push((seq, e.path()));
            }
        }
        out.sort();
        Ok(out)
    }
}

impl Drop for FileStorage {
    fn drop(&mut self) {
        self.shared.state.lock().expect("lock").closed = true;
        self.shared.wake.notify_all();
        if let Some(w) = self.writer.lock().expect("lock").take() {
            let _ = w.join();
        }
    }
}

/// A file's contents, reading no more than its length says (a device is never read forever).
fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = File::open(path).map_err(|e| io("opening", path, e))?;
    let len = f.metadata().map_err(|e| io("reading", path, e))?.len();
    let mut bytes = Vec::with_capacity(len as usize);
    f.take(len)
        .read_to_end(&mut bytes)
        .map_err(|e| io("reading", path, e))?;
    Ok(bytes)
}

/// The writer thread: one write and one fsync per gathered batch.
fn write_loop(shared: &Queue, segment: &Mutex<Segment>, log_dir: &Path) {
    loop {
        let (buf, done, last_seq) = {
            let mut p = shared.state.lock().expect("lock");
            while p.buf.is_empty() && !p.closed {
                p = shared.wake.wait(p).expect("lock");
            }
            if p.buf.is_empty() && p.closed {
                return;
            }
            (
                std::mem::take(&mut p.buf),
                std::mem::take(&mut p.done),
                p.last_seq,
            )
        };
        let result = {
            let mut seg = segment.lock().expect("lock");
            write_batch(&mut seg, log_dir, &buf, last_seq)
        };
        if result.is_ok() {
            shared
                .log_bytes
                .fetch_add(buf.len() as u64, Ordering::Relaxed);
        }
        for d in done {
            d(result.clone());
        }
    }
}

fn write_batch(seg: &mut Segment, log_dir: &Path, buf: &[u8], last_seq: u64) -> Result<(), String> {
    if seg.file.is_none() {
        let path = log_dir.join(format!("{:020}.wal", seg.first_seq));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io("opening", &path, e))?;
        seg.durable_len = file.metadata().map(|m| m.len()).unwrap_or(0);
        seg.file = Some(file);
        // A new segment's name must be durable before its records count.
        if let Ok(d) = File::open(log_dir) {
            let _ = d.sync_all();
        }
    }
    let file = seg.file.as_mut().expect("open");
    let written = file.write_all(buf).and_then(|_| file.sync_data());
    match written {
        Ok(()) => {
            seg.durable_len += buf.len() as u64;
            seg.last_seq = last_seq;
            Ok(())
        }
        Err(e) => {
            // Nothing half-written stays: cut back to the last durable frame.
            let _ = file.set_len(seg.durable_len);
            Err(format!("writing the log: {e}"))
        }
    }
}

impl Storage for FileStorage {
    fn recover(&self) -> Result<Recovered, String> {
        let mut recovered = Recovered::default();
        let snap_path = self.dir.join("snapshot.bin");
        if snap_path.exists() {
            let bytes = std::fs::read(&snap_path).map_err(|e| io("reading", &snap_path, e))?;
            let (mut values, stop) = frame::read_all::<Snapshot>(&bytes);
            if stop.is_some() || values.len() != 1 {
                return Err(format!(
                    "the snapshot {} is damaged ({stop:?}); move it aside to start from the log alone",
                    snap_path.display()
                ));
            }
            recovered.snapshot = values.pop().map(|(s, _)| s);
        }
        let after = recovered.snapshot.as_ref().map(|s| s.seq).unwrap_or(0);
        let segments = self.segments()?;
        let mut last_seq = after;
        let mut cut = false;
        for (first, path) in &segments {
            if cut {
                let aside = path.with_extension("wal.after-damage");
                tracing::error!(
                    segment = %path.display(),
                    "a log segment follows a damaged one; setting it aside as {}",
                    aside.display()
                );
                let _ = std::fs::rename(path, aside);
                continue;
            }
            let bytes = read_file(path)?;
            let (values, stop) = frame::read_all::<(u64, LogRecord)>(&bytes);
            for ((seq, record), _) in values {
                if seq > after {
                    recovered.records.push((seq, record));
                }
                last_seq = last_seq.max(seq);
            }
            if let Some((at, why)) = stop {
                tracing::warn!(
                    segment = %path.display(),
                    offset = at,
                    dropped_bytes = bytes.len() - at,
                    reason = ?why,
                    "cutting the log at its last whole record (a write that was never acknowledged)"
                );
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| io("opening", path, e))?;
                f.set_len(at as u64).map_err(|e| io("cutting", path, e))?;
                f.sync_all().map_err(|e| io("syncing", path, e))?;
                cut = true;
            }
            let _ = first;
        }
        // Append after what is there: a fresh segment named for the next record.
        let mut seg = self.segment.lock().expect("lock");
        seg.file = None;
        seg.first_seq = last_seq + 1;
        seg.last_seq = last_seq;
        self.shared.state.lock().expect("lock").last_seq = last_seq;
        Ok(recovered)
    }

    fn append(&self, seq: u64, record: &LogRecord, done: Done) {
        let mut p = self.shared.state.lock().expect("lock");
        if let Err(e) = frame::write(&mut p.buf, &(seq, record)) {
            drop(p);
            done(Err(e));
            return;
        }
        p.last_seq = seq;
        p.done.push(done);
        drop(p);
        self.shared.wake.notify_one();
    }

    fn snapshot(&self, snapshot: Snapshot) -> Result<(), String> {
        let mut buf = Vec::new();
        frame::write(&mut buf, &snapshot)?;
        let tmp = self.dir.join("snapshot.tmp");
        let path = self.dir.join("snapshot.bin");
        {
            let mut f = File::create(&tmp).map_err(|e| io("creating", &tmp, e))?;
            f.write_all(&buf).map_err(|e| io("writing", &tmp, e))?;
            f.sync_all().map_err(|e| io("syncing", &tmp, e))?;
        }
        std::fs::rename(&tmp, &path).map_err(|e| io("renaming", &tmp, e))?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        // Start a new segment, then drop segments wholly covered by the snapshot.
        let segments = self.segments()?;
        {
            let mut seg = self.segment.lock().expect("lock");
            if seg.file.is_some() {
                seg.file = None;
                seg.first_seq = seg.last_seq + 1;
            }
        }
        let current_first = self.segment.lock().expect("lock").first_seq;
        for (i, (first, p)) in segments.iter().enumerate() {
            let next_first = segments
                .get(i + 1)
                .map(|(f, _)| *f)
                .unwrap_or(current_first);
            if *first < current_first && next_first.saturating_sub(1) <= snapshot.seq {
                std::fs::remove_file(p).map_err(|e| io("removing", p, e))?;
            }
        }
        self.shared.log_bytes.store(0, Ordering::Relaxed);
        Ok(())
    }

    fn log_bytes(&self) -> u64 {
        self.shared.log_bytes.load(Ordering::Relaxed)
    }
}
