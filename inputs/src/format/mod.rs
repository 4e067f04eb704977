//! Formats: records in bytes to typed rows of a schema, with line-numbered errors.

pub mod csv;
pub mod json;
pub mod record;

use freshet_dataflows::plan::Diff;
use freshet_dataflows::Row;

/// A record that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct FormatError {
    /// 1-based line number in the input.
    pub line: u64,
    pub message: String,
}

/// Decoded updates: rows with +1 (insert) or -1 (delete).
pub type Updates = Vec<(Row, Diff)>;
