//! What every handler shares: the engine, limits, auth and metrics.

use std::sync::Arc;

use freshet_dataflows::engine::Engine;
use tokio_util::sync::CancellationToken;

use crate::metrics::HttpMetrics;

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub auth_token: Option<Arc<str>>,
    pub max_body_bytes: usize,
    /// Cancelled when the server shuts down: open streams end.
    pub shutdown: CancellationToken,
    pub metrics: Arc<HttpMetrics>,
}
