//! Errors: evaluation errors that flow as data, and errors returned to callers.
//!
//! `EvalError` is what an expression produces for a bad input row (division by zero, overflow,
//! a failed cast). It travels through dataflows in a collection beside the results, so that
//! retracting the bad row retracts the error. `Error` is what the engine's API returns; each
//! variant has a stable machine `code()` that the HTTP layer serializes.

use serde::{Deserialize, Serialize};

/// An error computed from data. Ordered and hashable so it can live in a collection.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, thiserror::Error,
)]
pub enum EvalError {
    #[error("division by zero")]
    DivisionByZero,
    #[error("{0} out of range")]
    Overflow(String),
    #[error("invalid input syntax for type {to}: \"{value}\"")]
    InvalidCast { value: String, to: String },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("more than one row returned by a subquery used as an expression")]
    MultipleRows,
    #[error("recursive query exceeded {0} iterations")]
    RecursionLimit(u64),
    /// A record a source could not decode (the message names the source and the place).
    #[error("{0}")]
    Source(String),
}

/// Where in the SQL text an error was found (1-based line and column, 0-based byte offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

/// Errors returned by the engine API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("syntax error: {message}")]
    Syntax {
        message: String,
        position: Option<Position>,
    },
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Plan(String),
    #[error("{kind} \"{name}\" does not exist")]
    UnknownItem { kind: &'static str, name: String },
    #[error("{kind} \"{name}\" already exists")]
    AlreadyExists { kind: &'static str, name: String },
    #[error("{0}")]
    DependentObjects(String),
    #[error("{0}")]
    InvalidData(String),
    #[error("{0}")]
    UniqueViolation(String),
    #[error("{0}")]
    Eval(#[from] EvalError),
    #[error(
        "timestamp {requested} is no longer retained; the earliest retained timestamp is {since}"
    )]
    Compacted { requested: u64, since: u64 },
    #[error("timestamp {requested} is in the future; the latest complete timestamp is {latest}")]
    Future { requested: u64, latest: u64 },
    #[error("the engine is shut down")]
    Shutdown,
    /// Durable storage failed (disk full, unwritable): the write was not applied.
    #[error("storage unavailable: {0}")]
    Storage(String),
    /// The engine is still replaying its data directory.
    #[error("recovering: {0}")]
    Recovering(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("{0}")]
    Cluster(#[from] crate::cluster::ClusterError),
}

impl Error {
    /// A stable machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Syntax { .. } => "syntax_error",
            Error::Unsupported(_) => "unsupported",
            Error::Plan(_) => "invalid_query",
            Error::UnknownItem { .. } => "not_found",
            Error::AlreadyExists { .. } => "already_exists",
            Error::DependentObjects(_) => "dependent_objects",
            Error::InvalidData(_) => "invalid_data",
            Error::UniqueViolation(_) => "unique_violation",
            Error::Eval(_) => "evaluation_error",
            Error::Compacted { .. } => "compacted",
            Error::Future { .. } => "future_timestamp",
            Error::Shutdown => "shutting_down",
            Error::Storage(_) => "storage_unavailable",
            Error::Recovering(_) => "recovering",
            Error::Internal(_) => "internal",
            Error::Cluster(_) => "cluster",
        }
    }

    pub fn plan(msg: impl Into<String>) -> Error {
        Error::Plan(msg.into())
    }

    pub fn unsupported(what: impl std::fmt::Display) -> Error {
        Error::Unsupported(format!("{what} is not supported"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
