//! freshet's engine: SQL views kept incrementally by timely/differential workers.
//!
//! Read the modules in this order:
//! - [`value`], [`row`], [`schema`]: the data model.
//! - [`expr`]: scalar expressions and SQL functions, errors as values.
//! - [`sql`]: statements parsed with `sqlparser` and planned into [`plan::Plan`]s.
//! - [`plan`]: the relational plan and its lowering (join order, arrangements, fused maps).
//! - `render`: plans transcribed into differential dataflow operators.
//! - `worker`: the loop each timely worker runs: sequenced commands, peeks, subscriptions.
//! - [`connector`]: the seam to sources and sinks (implemented in `freshet-inputs`).
//! - [`engine`]: the embeddable API (start, execute SQL, write, read, subscribe, shut down).
//! - [`cluster`]: one timely execution over many processes (connecting, lost peers).

pub mod error;
pub mod expr;
pub mod plan;
pub mod row;
pub mod schema;
pub mod sort_key;
pub mod sql;
pub mod value;

pub mod catalog;
pub mod cluster;
pub mod command;
pub mod connector;
pub mod engine;
pub mod pending;
pub mod render;
pub mod storage;
pub mod subscribe;
pub mod wake;
pub mod worker;

pub use error::{Error, EvalError, Result};
pub use row::{Row, RowPacker};
pub use schema::{Column, Schema};
pub use value::{DataType, Value};
