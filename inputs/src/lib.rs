//! Sources and sinks for freshet.
//!
//! Transport is kept apart from format: a transport (file, Kafka, the HTTP ingest endpoint, a
//! generator) moves bytes and knows positions; a format (`format::json`, `format::csv`) turns
//! those bytes into rows of a schema. The HTTP ingest endpoint is the first user of the
//! formats; file and Kafka sources reuse them.

pub mod durable;
pub mod format;
pub mod sink;
pub mod source;

use std::sync::Arc;

use freshet_dataflows::connector::Connectors;

/// Every source and sink this crate provides, for `EngineConfig::connectors`.
pub fn connectors() -> Connectors {
    Connectors {
        sources: Arc::new(source::Sources),
        sinks: Arc::new(sink::Sinks),
    }
}
