//! Prometheus metrics: request latencies, subscribers, and the engine's counters.

use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use freshet_dataflows::engine::Engine;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::state::AppState;

type Labels = Vec<(String, String)>;

pub struct HttpMetrics {
    registry: Registry,
    pub requests: Family<Labels, Histogram>,
    pub subscribers: Gauge,
    rows_written: Counter,
    writes: Counter,
    reads: Counter,
    statement_errors: Counter,
    latest_timestamp: Gauge,
    frontier_lag_ms: Gauge,
    item_updates: Family<Labels, Counter>,
    item_records: Family<Labels, Gauge>,
    item_batches: Family<Labels, Gauge>,
    item_lag_ms: Family<Labels, Gauge>,
    source_rows: Family<Labels, Counter>,
    source_bytes: Family<Labels, Counter>,
    source_total_bytes: Family<Labels, Gauge>,
    source_errors: Family<Labels, Counter>,
    source_late: Family<Labels, Counter>,
    source_caught_up: Family<Labels, Gauge>,
    sink_messages: Family<Labels, Counter>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("freshet");
        let requests = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
        });
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route and status",
            requests.clone(),
        );
        let subscribers = Gauge::default();
        registry.register(
            "subscribers",
            "Open subscription streams",
            subscribers.clone(),
        );
        let rows_written = Counter::default();
        registry.register(
            "rows_written",
            "Rows inserted or deleted in tables",
            rows_written.clone(),
        );
        let writes = Counter::default();
        registry.register(
            "writes",
            "Write statements and ingest requests applied",
            writes.clone(),
        );
        let reads = Counter::default();
        registry.register("reads", "SELECT statements answered", reads.clone());
        let statement_errors = Counter::default();
        registry.register(
            "statement_errors",
            "Statements that failed",
            statement_errors.clone(),
        );
        let latest_timestamp = Gauge::default();
        registry.register(
            "latest_timestamp_ms",
            "Latest complete timestamp",
            latest_timestamp.clone(),
        );
        let frontier_lag_ms = Gauge::default();
        registry.register(
            "frontier_lag_ms",
            "Wall clock minus the latest complete timestamp",
            frontier_lag_ms.clone(),
        );
        let item_updates = Family::<Labels, Counter>::default();
        registry.register(
            "relation_updates",
            "Updates produced by each table's and view's dataflow",
            item_updates.clone(),
        );
        let item_records = Family::<Labels, Gauge>::default();
        registry.register(
            "arrangement_records",
            "Updates held in each table's and view's arrangement",
            item_records.clone(),
        );
        let item_batches = Family::<Labels, Gauge>::default();
        registry.register(
            "arrangement_batches",
            "Batches with data in each table's and view's arrangement, merged or waiting to be",
            item_batches.clone(),
        );
        let item_lag_ms = Family::<Labels, Gauge>::default();
        registry.register(
            "relation_frontier_lag_ms",
            "Wall clock minus each table's and view's frontier",
            item_lag_ms.clone(),
        );
        let family = |registry: &mut Registry, name: &str, help: &str| {
            let f = Family::<Labels, Counter>::default();
            registry.register(name, help, f.clone());
            f
        };
        let source_rows = family(&mut registry, "source_rows", "Rows read by each source");
        let source_bytes = family(&mut registry, "source_bytes", "Bytes read by each source");
        let source_errors = family(
            &mut registry,
            "source_errors",
            "Records each source could not decode",
        );
        let source_late = family(
            &mut registry,
            "source_late_records",
            "Records older than the source's event-time frontier (placed at the frontier)",
        );
        let sink_messages = family(
            &mut registry,
            "sink_messages",
            "Changes each sink has written (acknowledged)",
        );
        let source_total_bytes = Family::<Labels, Gauge>::default();
        registry.register(
            "source_backfill_bytes",
            "Bytes of history each source found at start (0 when unknown)",
            source_total_bytes.clone(),
        );
        let source_caught_up = Family::<Labels, Gauge>::default();
        registry.register(
            "source_caught_up",
            "1 once a source has read the history that existed when it started",
            source_caught_up.clone(),
        );
        HttpMetrics {
            source_rows,
            source_bytes,
            source_total_bytes,
            source_errors,
            source_late,
            source_caught_up,
            sink_messages,
            item_updates,
            item_records,
            item_batches,
            item_lag_ms,
            registry,
            requests,
            subscribers,
            rows_written,
            writes,
            reads,
            statement_errors,
            latest_timestamp,
            frontier_lag_ms,
        }
    }
}

fn catch_up(counter: &Counter, value: u64) {
    let current = counter.get();
    if value > current {
        counter.inc_by(value - current);
    }
}

impl HttpMetrics {
    /// The text exposition, with engine counters brought up to date.
    pub fn render(&self, engine: &Engine) -> String {
        let m = engine.metrics();
        catch_up(&self.rows_written, m.rows_written.load(Ordering::Relaxed));
        catch_up(&self.writes, m.writes.load(Ordering::Relaxed));
        catch_up(&self.reads, m.reads.load(Ordering::Relaxed));
        catch_up(&self.statement_errors, m.errors.load(Ordering::Relaxed));
        let (latest, _) = engine.frontiers();
        self.latest_timestamp.set(latest as i64);
        self.frontier_lag_ms
            .set(freshet_dataflows::engine::now_ms().saturating_sub(latest) as i64);
        let now = freshet_dataflows::engine::now_ms();
        self.item_records.clear();
        self.item_batches.clear();
        self.item_lag_ms.clear();
        for item in engine.item_stats() {
            let labels = vec![
                ("name".to_string(), item.name.clone()),
                ("kind".to_string(), item.kind.to_string()),
            ];
            catch_up(&self.item_updates.get_or_create(&labels), item.updates);
            self.item_records
                .get_or_create(&labels)
                .set(item.records as i64);
            self.item_batches
                .get_or_create(&labels)
                .set(item.batches as i64);
            if item.frontier > 0 && item.frontier != u64::MAX {
                self.item_lag_ms
                    .get_or_create(&labels)
                    .set(now.saturating_sub(item.frontier) as i64);
            }
        }
        for (name, s) in engine.source_stats() {
            let labels = vec![("source".to_string(), name)];
            catch_up(
                &self.source_rows.get_or_create(&labels),
                s.rows.load(Ordering::Relaxed),
            );
            catch_up(
                &self.source_bytes.get_or_create(&labels),
                s.bytes.load(Ordering::Relaxed),
            );
            catch_up(
                &self.source_errors.get_or_create(&labels),
                s.errors.load(Ordering::Relaxed),
            );
            catch_up(
                &self.source_late.get_or_create(&labels),
                s.late.load(Ordering::Relaxed),
            );
            self.source_total_bytes
                .get_or_create(&labels)
                .set(s.total_bytes.load(Ordering::Relaxed) as i64);
            self.source_caught_up
                .get_or_create(&labels)
                .set(s.is_caught_up() as i64);
        }
        for (name, s) in engine.sink_stats() {
            let labels = vec![("sink".to_string(), name)];
            catch_up(
                &self.sink_messages.get_or_create(&labels),
                s.messages.load(Ordering::Relaxed),
            );
        }
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            tracing::error!("metrics encoding failed");
        }
        out
    }
}

/// Records each request's latency under its route.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let start = Instant::now();
    let response = next.run(req).await;
    let labels = vec![
        ("route".to_string(), route),
        ("method".to_string(), method),
        ("status".to_string(), response.status().as_u16().to_string()),
    ];
    state
        .metrics
        .requests
        .get_or_create(&labels)
        .observe(start.elapsed().as_secs_f64());
    response
}
