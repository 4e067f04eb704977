//! Sources: one reader per worker, on a thread of its own, sending decoded batches.
//!
//! Each transport decides how the work is shared: a file's bytes are split into ranges (every
//! worker backfills its range, one follows appends), a directory's files and a topic's
//! partitions are dealt out, a generator's sequence is strided. Readers stop when their
//! output reports the source closed.

pub mod file;
pub mod generator;
pub mod kafka;

use freshet_dataflows::connector::{
    Closed, Format, ReaderContext, SourceBatch, SourceFactory, SourceOutput, SourceSpec, Transport,
};
use freshet_dataflows::error::{Error, Result};
use freshet_dataflows::plan::Diff;
use freshet_dataflows::sql::connector::check_known_options;
use freshet_dataflows::Row;

use crate::format::record::RecordDecoder;

/// The sources `freshet-inputs` can read.
#[derive(Debug, Default)]
pub struct Sources;

impl SourceFactory for Sources {
    fn prepare(&self, spec: &mut SourceSpec) -> Result<()> {
        match &spec.transport {
            Transport::File { .. } => file::prepare(spec),
            Transport::Kafka { .. } => kafka::prepare(spec),
            Transport::Generator { .. } => generator::prepare(spec),
        }
    }

    fn start(&self, spec: &SourceSpec, ctx: ReaderContext) -> Result<Box<dyn Send>> {
        match &spec.transport {
            Transport::File { .. } => file::start(spec, ctx),
            Transport::Kafka { .. } => kafka::start(spec, ctx),
            Transport::Generator { .. } => generator::start(spec, ctx),
        }
    }
}

/// A boolean option (`true`/`false`), defaulting to `default`.
pub(crate) fn bool_option(spec_options: &SourceSpec, key: &str, default: bool) -> Result<bool> {
    match spec_options.option(key) {
        None => Ok(default),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" | "1" => Ok(true),
            "false" | "off" | "no" | "0" => Ok(false),
            other => Err(Error::plan(format!(
                "option {key} must be true or false, not '{other}'"
            ))),
        },
    }
}

/// A non-negative integer option.
pub(crate) fn u64_option(spec: &SourceSpec, key: &str) -> Result<Option<u64>> {
    spec.option(key)
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                Error::plan(format!(
                    "option {key} must be a non-negative integer, not '{v}'"
                ))
            })
        })
        .transpose()
}

/// Checks options against what the transport knows, and the format against the transport.
pub(crate) fn check_options(spec: &SourceSpec, known: &[&str]) -> Result<()> {
    check_known_options(&spec.options, known)?;
    if spec.format == Some(Format::Json) && spec.options.contains_key("header") {
        return Err(Error::plan("option header applies to FORMAT CSV only"));
    }
    Ok(())
}

/// Gathers decoded records into batches of a bounded size and sends them.
pub(crate) struct Batcher<'a> {
    output: &'a SourceOutput,
    batch: SourceBatch,
    /// Rows per batch before it is sent.
    limit: usize,
}

impl<'a> Batcher<'a> {
    pub fn new(output: &'a SourceOutput) -> Batcher<'a> {
        Batcher {
            output,
            batch: SourceBatch::default(),
            limit: 4096,
        }
    }

    /// Decodes `record` (from `part` ending at `offset`) into the batch; `place` names where
    /// it was, for error messages.
    pub fn record(
        &mut self,
        decoder: &RecordDecoder,
        record: &[u8],
        place: impl FnOnce() -> String,
    ) -> std::result::Result<(), Closed> {
        self.batch.bytes += record.len() as u64;
        match decoder.decode(record) {
            None => {}
            Some(Ok(update)) => self.batch.rows.push(update),
            Some(Err(message)) => self.batch.errors.push(format!("{}: {message}", place())),
        }
        self.flush_if_full()
    }

    /// Counts bytes read for records handled with [`Batcher::push`] / [`Batcher::error`].
    pub fn bytes(&mut self, n: u64) {
        self.batch.bytes += n;
    }

    /// Adds a decoded update.
    pub fn push(&mut self, row: Row, diff: Diff) -> std::result::Result<(), Closed> {
        self.batch.rows.push((row, diff));
        self.flush_if_full()
    }

    /// Adds a record that did not decode.
    pub fn error(&mut self, message: String) -> std::result::Result<(), Closed> {
        self.batch.errors.push(message);
        self.flush_if_full()
    }

    /// Whether the batch can take more before it should be sent.
    pub fn has_room(&self) -> bool {
        self.batch.rows.len() + self.batch.errors.len() < self.limit
    }

    fn flush_if_full(&mut self) -> std::result::Result<(), Closed> {
        if self.has_room() {
            Ok(())
        } else {
            self.flush()
        }
    }

    pub fn position(&mut self, part: u64, offset: u64) {
        self.batch.positions.insert(part, offset);
    }

    pub fn has_data(&self) -> bool {
        !self.batch.rows.is_empty() || !self.batch.errors.is_empty() || self.batch.bytes > 0
    }

    /// Sends what has gathered (nothing if empty).
    pub fn flush(&mut self) -> std::result::Result<(), Closed> {
        if !self.has_data() && !self.batch.caught_up {
            return Ok(());
        }
        self.output.send(std::mem::take(&mut self.batch))
    }

    /// Sends what has gathered, marked as the end of the history that existed at start.
    pub fn caught_up(&mut self) -> std::result::Result<(), Closed> {
        self.batch.caught_up = true;
        self.flush()
    }
}
