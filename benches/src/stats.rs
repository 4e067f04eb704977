//! Latency percentiles and their formatting.

use std::time::Duration;

/// Results of one benchmark configuration.
#[derive(Default)]
pub struct Outcome {
    pub p50: Duration,
    pub p99: Duration,
    /// Updates per second in the throughput run.
    pub throughput: f64,
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

pub fn fmt(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    }
}
