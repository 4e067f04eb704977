//! The engine benchmark's comparison: freshet and four hand-written dataflows for the same
//! view, run in interleaved rounds. One round on this machine moves by ±30 % with its
//! neighbours' load, so the table gives each system's median over the rounds and the spread
//! of freshet's ratio to it, each ratio taken within one round.

use std::time::Duration;

use crate::baseline::{self, Aggregate};
use crate::engine;
use crate::stats::{self, Outcome};

/// What one benchmark invocation runs.
pub struct Settings {
    pub keys: u64,
    pub updates: usize,
    pub batch: usize,
    pub batches: usize,
    pub workers: Vec<usize>,
    pub idle_spin: Option<Duration>,
    pub subscriber_poll: Option<Duration>,
    pub only: Option<String>,
    pub rounds: usize,
}

/// The hand-written dataflows: the name `--only` knows them by, their label, how they
/// aggregate, and whether their fields are freshet's `Row`s.
const BASELINES: [(&str, &str, Aggregate, bool); 4] = [
    (
        "differential",
        "differential (hand-written, `reduce`)",
        Aggregate::Reduce,
        false,
    ),
    (
        "diffs",
        "differential (hand-written, count and sum as diffs, result arranged)",
        Aggregate::Diffs,
        false,
    ),
    (
        "rows",
        "differential over freshet's `Row` (`reduce`)",
        Aggregate::Reduce,
        true,
    ),
    (
        "rows-diffs",
        "differential over freshet's `Row` (diffs)",
        Aggregate::Diffs,
        true,
    ),
];

/// Runs every round and prints the table.
pub fn run(s: &Settings) -> anyhow::Result<()> {
    let runs = |name: &str| s.only.as_deref().is_none_or(|o| o == name);
    // outcomes[w][system][round]; system 0 is freshet, then BASELINES in order.
    let mut outcomes: Vec<Vec<Vec<Outcome>>> = s
        .workers
        .iter()
        .map(|_| (0..=BASELINES.len()).map(|_| Vec::new()).collect())
        .collect();
    for _ in 0..s.rounds.max(1) {
        for (wi, &w) in s.workers.iter().enumerate() {
            let ours = match runs("freshet") {
                true => engine::run(
                    w,
                    s.keys,
                    s.updates,
                    s.batch,
                    s.batches,
                    s.idle_spin,
                    s.subscriber_poll,
                )?,
                false => Outcome::default(),
            };
            outcomes[wi][0].push(ours);
            for (bi, (name, _, aggregate, rows)) in BASELINES.iter().enumerate() {
                let (k, u, b, n) = (s.keys, s.updates, s.batch, s.batches);
                let o = match (runs(name), rows) {
                    (false, _) => Outcome::default(),
                    (true, false) => baseline::run::<u64>(w, k, u, b, n, *aggregate),
                    (true, true) => {
                        baseline::run::<freshet_dataflows::Row>(w, k, u, b, n, *aggregate)
                    }
                };
                outcomes[wi][bi + 1].push(o);
            }
        }
    }
    println!(
        "| workers | system | p50 latency | p99 latency | updates/s | freshet / this system |"
    );
    println!("|---|---|---|---|---|---|");
    for (wi, w) in s.workers.iter().enumerate() {
        let ours = &outcomes[wi][0];
        for (bi, (_, label, _, _)) in BASELINES.iter().enumerate() {
            let theirs = &outcomes[wi][bi + 1];
            let ratios: Vec<f64> = ours
                .iter()
                .zip(theirs)
                .filter(|(a, b)| a.throughput > 0.0 && b.throughput > 0.0)
                .map(|(a, b)| a.throughput / b.throughput)
                .collect();
            line(*w, label, theirs, &ratios);
        }
        line(*w, "freshet", ours, &[]);
    }
    Ok(())
}

/// One system's medians, and freshet's ratio to it: the median, then the range when there
/// were several rounds.
fn line(workers: usize, system: &str, rounds: &[Outcome], ratios: &[f64]) {
    if rounds.iter().all(|o| o.throughput <= 0.0) {
        return;
    }
    let p50 = median_by(rounds, |o| o.p50.as_secs_f64());
    let p99 = median_by(rounds, |o| o.p99.as_secs_f64());
    let rate = median_by(rounds, |o| o.throughput);
    let ratio = match ratios.len() {
        0 => String::new(),
        1 => format!("{:.2}", ratios[0]),
        _ => {
            let lo = ratios.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = ratios.iter().cloned().fold(0.0, f64::max);
            format!("{:.2} ({lo:.2}–{hi:.2})", median_by(ratios, |r| *r))
        }
    };
    let (p50, p99) = (
        stats::fmt(Duration::from_secs_f64(p50)),
        stats::fmt(Duration::from_secs_f64(p99)),
    );
    println!("| {workers} | {system} | {p50} | {p99} | {rate:.0} | {ratio} |");
}

/// The median of `f` over `items` (the mean of the middle two for an even count).
fn median_by<X>(items: &[X], f: impl Fn(&X) -> f64) -> f64 {
    let mut v: Vec<f64> = items.iter().map(f).collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::median_by;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median_by(&[3.0, 1.0, 2.0], |x| *x), 2.0);
        assert_eq!(median_by(&[4.0, 1.0, 3.0, 2.0], |x| *x), 2.5);
        assert_eq!(median_by::<f64>(&[], |x| *x), 0.0);
    }
}
