//! `freshet-bench`: benchmarks that compare freshet with a hand-written differential dataflow
//! doing the same work, in the same process, in one run.
//!
//! `freshet-bench engine` measures a join + aggregate view: single-row update latency
//! (write → visible to a subscriber) and throughput of batched updates, for freshet and four
//! hand-written dataflows (textbook `reduce` and count and sum as differences, each over
//! `u64`s and over freshet's `Row`), with 1 and 2 workers, in interleaved rounds, and
//! reports the medians and ratios. Results go to stdout as a Markdown
//! table for `docs/benchmarks.md`.
//!
//! `freshet-bench server` measures the HTTP service; `freshet-bench sources` measures backfill
//! from CSV and JSON files and a Kafka topic (on a `tansu` broker it starts) into an aggregate
//! view, and Kafka produce → subscriber latency. `freshet-bench nexmark` runs the Nexmark
//! queries as views beside the same queries hand-written in differential dataflow.
//! `freshet-bench memory` measures arranged state per row against the rows' raw bytes.
//! `freshet-bench reads` measures reads of a view after many single-row writes.

mod baseline;
mod batcher;
mod durability;
mod engine;
mod engine_report;
mod heap;
mod memory;
mod nexmark;
mod packing;
mod reads;
mod server;
mod sources;
mod stats;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: heap::Counting = heap::Counting;

#[derive(Parser)]
#[command(name = "freshet-bench", about = "freshet benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Join + aggregate view: latency and throughput, freshet vs hand-written differential.
    Engine {
        /// Keys in each table.
        #[arg(long, default_value_t = 10_000)]
        keys: u64,
        /// Single-row updates timed for latency.
        #[arg(long, default_value_t = 2_000)]
        updates: usize,
        /// Rows per batch in the throughput run.
        #[arg(long, default_value_t = 10_000)]
        batch: usize,
        /// Batches in the throughput run.
        #[arg(long, default_value_t = 20)]
        batches: usize,
        /// Worker counts to run, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        workers: Vec<usize>,
        /// How long freshet's idle workers poll before parking, in microseconds (default: the
        /// engine's).
        #[arg(long)]
        idle_spin_us: Option<u64>,
        /// How long the benchmark's subscriber polls before parking, in microseconds (default:
        /// the engine's choice, `EngineConfig::subscriber_poll`).
        #[arg(long)]
        subscriber_poll_us: Option<u64>,
        /// Runs only this system (for profiling): `freshet`, `differential` (hand-written with
        /// `reduce`), `diffs` (hand-written with count and sum as diffs), `rows` (`reduce`
        /// over freshet's `Row`) or `rows-diffs` (diffs over freshet's `Row`). The others are
        /// not printed.
        #[arg(long)]
        only: Option<String>,
        /// Rounds of every system, interleaved; the table gives medians.
        #[arg(long, default_value_t = 1)]
        rounds: usize,
    },
    /// Building rows: nanoseconds per row packed by the ways the engine builds them.
    Packing {
        /// Rows per run.
        #[arg(long, default_value_t = 2_000_000)]
        rows: usize,
        /// Runs of each, the fastest reported.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Forming batches: differential's merge batcher against freshet's, on random and ordered
    /// rows.
    Batcher {
        /// Updates per batch.
        #[arg(long, default_value_t = 10_000)]
        batch: usize,
        /// Batches.
        #[arg(long, default_value_t = 40)]
        batches: usize,
        /// Runs of each, the fastest reported.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Reads of a view after many single-row writes (inside the retention window).
    Reads {
        /// Write counts to try, comma-separated (a fresh engine for each).
        #[arg(long, value_delimiter = ',', default_value = "200,2000,20000")]
        writes: Vec<usize>,
        /// Reads timed after the writes.
        #[arg(long, default_value_t = 200)]
        reads: usize,
        #[arg(long, default_value_t = 1)]
        workers: usize,
    },
    /// Arranged state: RSS per row against the raw bytes, freshet and hand-written differential.
    Memory {
        /// Rows per table.
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        #[arg(long, value_delimiter = ',', default_value = "1")]
        workers: Vec<usize>,
    },
    /// One case of `memory`, in a process of its own (used by `memory`).
    #[command(hide = true)]
    MemoryCase {
        case: String,
        #[arg(long)]
        rows: u64,
        #[arg(long)]
        workers: usize,
    },
    /// The HTTP service: write → subscriber latency, bulk ingest, idle subscribers.
    Server {
        /// The freshet binary to run.
        #[arg(long, default_value = "target/release/freshet")]
        bin: String,
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        workers: Vec<usize>,
        /// Single-row writes timed for latency.
        #[arg(long, default_value_t = 2_000)]
        writes: usize,
        /// Idle subscribers to open, one measurement per count.
        #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
        subscribers: Vec<usize>,
        /// Write rates (writes per second) for the write → subscriber latency sweep.
        #[arg(long, value_delimiter = ',', default_value = "500,2000,5000")]
        rates: Vec<f64>,
    },
    /// Sources: CSV, JSON and Kafka backfill into an aggregate view; Kafka → subscriber latency;
    /// a Kafka sink's snapshot of the topic with 1 and 2 writers.
    Sources {
        /// The freshet binary to run.
        #[arg(long, default_value = "target/release/freshet")]
        bin: String,
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        workers: Vec<usize>,
        /// Rows in each generated file (CSV and JSON lines).
        #[arg(long, default_value_t = 2_000_000)]
        rows: u64,
        /// Messages produced to the Kafka topic for its backfill; 0 skips Kafka.
        #[arg(long, default_value_t = 1_000_000)]
        messages: u64,
        /// Single Kafka messages timed from produce to the subscriber, per worker count.
        #[arg(long, default_value_t = 2_000)]
        live: usize,
        /// Rate of those messages per second.
        #[arg(long, default_value_t = 200.0)]
        rate: f64,
        /// Where the generated files are written.
        #[arg(long, default_value = "target/bench-sources")]
        dir: std::path::PathBuf,
        /// The tansu broker binary (default: $FRESHET_TANSU, else `scripts/test-deps tansu`).
        #[arg(long)]
        tansu: Option<std::path::PathBuf>,
        /// Also time each file backfill with a data directory (every batch logged and
        /// fsynced before it is visible), beside the in-memory run.
        #[arg(long)]
        durable: bool,
    },
    /// Nexmark: the queries as SQL views over generator sources, against hand-written
    /// differential dataflow on the same events; results compared.
    Nexmark {
        /// The freshet binary to run.
        #[arg(long, default_value = "target/release/freshet")]
        bin: String,
        /// Nexmark events in all (persons : auctions : bids = 1 : 3 : 46).
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Queries to run, comma-separated, or `all`.
        #[arg(long, value_delimiter = ',', default_value = "all")]
        queries: Vec<String>,
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        workers: Vec<usize>,
        /// Event time of the first event (ms since the epoch), fixed so runs are repeatable.
        #[arg(long, default_value_t = 1_700_000_000_000)]
        base_time: u64,
        /// Where result files are written.
        #[arg(long, default_value = "target/bench-nexmark")]
        dir: std::path::PathBuf,
        /// Seconds one run may take before it is reported as not finished.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Compare the results of freshet and differential (reads and writes every row).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        check: bool,
        /// Queries run live (unbounded sources at a rate) for ingestion → subscriber latency.
        #[arg(long, value_delimiter = ',', default_value = "q0,q4,q5")]
        live_queries: Vec<String>,
        /// Target rates of the live runs, events per second (all streams together).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "10000,50000,100000,200000,400000"
        )]
        rates: Vec<u64>,
        /// Seconds measured per live run (after a 2 s warm-up).
        #[arg(long, default_value_t = 4.0)]
        live_seconds: f64,
        /// Run the queries in DuckDB too (from scratch, over the events as CSV; DuckDB from
        /// PyPI in a venv under target/).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        duckdb: bool,
        /// With `--duckdb`, run them in Flink SQL too (batch mode over the same files;
        /// apache-flink from PyPI, about 850 MB, and a JDK 17 in JAVA_HOME).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        flink: bool,
        /// Draw target/bench-nexmark/latency.png (matplotlib in a venv under target/).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        plot: bool,
        /// Read the sources to their end first, then create the view and time it alone: no
        /// generator runs beside the workers, so the figures are the dataflow's (worker
        /// scaling). The hand-written dataflow's events are generated before its clock
        /// starts, so it too is timed alone.
        #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
        view_after_sources: bool,
    },
    /// One hand-written Nexmark query in this process (used by `nexmark`).
    #[command(hide = true)]
    NexmarkBaseline {
        #[arg(long)]
        query: String,
        #[arg(long)]
        events: u64,
        #[arg(long)]
        base_time: u64,
        #[arg(long)]
        workers: usize,
        /// Generate every event before the clock starts and time the dataflow alone.
        #[arg(long)]
        pregenerated: bool,
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Durability with fsync on: concurrent acknowledged writes per second, and recovery speed.
    Durability {
        /// The freshet binary to run.
        #[arg(long, default_value = "target/release/freshet")]
        bin: String,
        /// Concurrent single-row writers.
        #[arg(long, default_value_t = 64)]
        writers: usize,
        /// How long the writers run.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Rows loaded before the recovery is timed.
        #[arg(long, default_value_t = 2_000_000)]
        recovery_rows: u64,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Nexmark {
            bin,
            events,
            queries,
            workers,
            base_time,
            dir,
            timeout,
            check,
            live_queries,
            rates,
            live_seconds,
            duckdb,
            flink,
            plot,
            view_after_sources,
        } => nexmark::run(&nexmark::Options {
            bin,
            events,
            queries,
            workers,
            base_time,
            dir,
            timeout: std::time::Duration::from_secs(timeout),
            check,
            live_queries,
            rates,
            live_seconds,
            duckdb,
            flink,
            plot,
            view_after_sources,
        })?,
        Command::NexmarkBaseline {
            query,
            events,
            base_time,
            workers,
            pregenerated,
            out,
        } => nexmark::baseline_main(
            &query,
            events,
            base_time,
            workers,
            pregenerated,
            out.as_deref(),
        )?,
        Command::Durability {
            bin,
            writers,
            seconds,
            recovery_rows,
        } => durability::run(&bin, writers, seconds, recovery_rows)?,
        Command::Engine {
            keys,
            updates,
            batch,
            batches,
            workers,
            idle_spin_us,
            subscriber_poll_us,
            only,
            rounds,
        } => engine_report::run(&engine_report::Settings {
            keys,
            updates,
            batch,
            batches,
            workers,
            idle_spin: idle_spin_us.map(std::time::Duration::from_micros),
            subscriber_poll: subscriber_poll_us.map(std::time::Duration::from_micros),
            only,
            rounds,
        })?,
        Command::Packing { rows, rounds } => packing::run(rows, rounds)?,
        Command::Batcher {
            batch,
            batches,
            rounds,
        } => batcher::run(batch, batches, rounds)?,
        Command::Reads {
            writes,
            reads,
            workers,
        } => reads::run(workers, &writes, reads)?,
        Command::Memory { rows, workers } => memory::run(rows, &workers)?,
        Command::MemoryCase {
            case,
            rows,
            workers,
        } => memory::case(&case, rows, workers)?,
        Command::Server {
            bin,
            workers,
            writes,
            subscribers,
            rates,
        } => {
            println!("| benchmark | result | | | notes |");
            println!("|---|---|---|---|---|");
            for w in workers {
                server::run(&bin, w, writes, &subscribers, &rates)?;
            }
        }
        Command::Sources {
            bin,
            workers,
            rows,
            messages,
            live,
            rate,
            dir,
            tansu,
            durable,
        } => sources::run(&sources::Options {
            bin,
            workers,
            rows,
            messages,
            live,
            rate,
            dir,
            tansu,
            durable,
        })?,
    }
    Ok(())
}
