//! The `freshet` binary: `serve` the HTTP API, or `run` a SQL script in-process.

mod app;
mod auth;
mod client;
mod cluster;
mod error;
mod json;
mod metrics;
mod routes;
mod run;
mod state;
mod table;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use freshet_dataflows::engine::{Engine, EngineConfig};
use tokio_util::sync::CancellationToken;

/// mimalloc: rows are many small allocations, which glibc's allocator handles slowly.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "freshet",
    version,
    about = "Incremental SQL views on timely and differential dataflow"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service.
    Serve(ServeArgs),
    /// Run a SQL script in-process and print the results of its SELECTs.
    Run {
        file: PathBuf,
        #[arg(long, default_value_t = 1)]
        workers: usize,
        #[arg(long, value_enum, default_value = "table")]
        format: run::Format,
    },
    /// Run statements on a running server and print the results.
    Sql {
        sql: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Follow a view on a running server as a live table.
    Subscribe {
        view: String,
        #[command(flatten)]
        conn: Connection,
    },
}

#[derive(clap::Args)]
struct Connection {
    /// The server's address.
    #[arg(long, default_value = "http://127.0.0.1:7800", env = "FRESHET_URL")]
    url: String,
    /// Bearer token, if the server requires one.
    #[arg(long, env = "FRESHET_AUTH_TOKEN")]
    auth_token: Option<String>,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:7800", env = "FRESHET_LISTEN")]
    listen: SocketAddr,
    /// Timely worker threads.
    #[arg(long, default_value_t = 1, env = "FRESHET_WORKERS")]
    workers: usize,
    /// Directory for durable state: the catalog, a write-ahead log of table writes, snapshots.
    /// Created if missing; restarting on it recovers everything acknowledged.
    #[arg(
        long,
        env = "FRESHET_DATA_DIR",
        default_value = "freshet-data",
        conflicts_with = "ephemeral"
    )]
    data_dir: PathBuf,
    /// Keep everything in memory (nothing survives a restart).
    #[arg(long, env = "FRESHET_EPHEMERAL")]
    ephemeral: bool,
    /// Require `Authorization: Bearer TOKEN` on /v1 and the console.
    #[arg(long, env = "FRESHET_AUTH_TOKEN")]
    auth_token: Option<String>,
    /// Largest accepted request body.
    #[arg(long, default_value_t = 64 << 20)]
    max_body_bytes: usize,
    /// How long history stays readable with AS OF and resumable by subscriptions, in seconds.
    #[arg(long, default_value_t = 300)]
    retention_secs: u64,
    /// Events buffered per subscriber before it is cut off as lagging.
    #[arg(long, default_value_t = 1024)]
    subscriber_buffer: usize,
    /// Longest time between snapshots of the data directory while something was logged, in
    /// seconds (one is also taken whenever the log passes 256 MiB).
    #[arg(long, default_value_t = 600)]
    snapshot_interval_secs: u64,
    /// How long an idle worker polls for work before it sleeps, in microseconds. Waking a
    /// sleeping thread costs tens of microseconds on many virtual machines; longer polls help
    /// when there are cores to spare for them.
    #[arg(long, default_value_t = freshet_dataflows::wake::SERVER_IDLE_SPIN.as_micros() as u64, env = "FRESHET_IDLE_SPIN_US")]
    idle_spin_us: u64,
    #[command(flatten)]
    cluster: cluster::ClusterArgs,
}

fn main() -> std::process::ExitCode {
    match run_cli() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_cli() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Run {
            file,
            workers,
            format,
        } => run::run(&file, workers, format),
        Command::Sql { sql, conn } => client::sql(
            conn.url.trim_end_matches('/'),
            conn.auth_token.as_deref(),
            &sql,
        ),
        Command::Subscribe { view, conn } => client::subscribe(
            conn.url.trim_end_matches('/'),
            conn.auth_token.as_deref(),
            &view,
        ),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let cluster = args.cluster.config()?;
    if let Some(c) = cluster.as_ref().filter(|c| c.process != 0) {
        return cluster::serve_worker_process(
            c.clone(),
            args.workers,
            Duration::from_micros(args.idle_spin_us),
        );
    }
    let clustered = cluster.is_some();
    let storage = if args.ephemeral {
        tracing::info!("ephemeral: nothing is kept after the process exits");
        None
    } else {
        let storage = freshet_inputs::durable::FileStorage::open(&args.data_dir)
            .map_err(|e| anyhow::anyhow!(e))?;
        tracing::info!(dir = %args.data_dir.display(), "data directory");
        Some(freshet_dataflows::engine::StorageHandle(Arc::new(storage)))
    };
    let engine = Engine::start(EngineConfig {
        storage,
        workers: args.workers,
        retention: Duration::from_secs(args.retention_secs),
        subscriber_buffer: args.subscriber_buffer,
        snapshot_interval: Duration::from_secs(args.snapshot_interval_secs),
        idle_spin: Duration::from_micros(args.idle_spin_us),
        connectors: Some(freshet_inputs::connectors()),
        cluster,
        ..Default::default()
    })?;
    // Planning recurses over the SQL tree; give request threads room for the deepest statement
    // the planner accepts (deeper ones get a clear error, never a stack overflow).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(32 << 20)
        .build()?;
    let shutdown = CancellationToken::new();
    let state = state::AppState {
        engine: engine.clone(),
        auth_token: args.auth_token.map(Arc::from),
        max_body_bytes: args.max_body_bytes,
        shutdown: shutdown.clone(),
        metrics: Arc::new(metrics::HttpMetrics::default()),
    };
    let watchdog =
        clustered.then(|| runtime.spawn(cluster::watchdog(engine.clone(), shutdown.clone())));
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        let addr = listener.local_addr()?;
        println!("listening on http://{addr}");
        tracing::info!(%addr, workers = args.workers, "serving");
        let signal_token = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            signal_token.cancel();
        });
        axum::serve(listener, app::router(state))
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await?;
        anyhow::Ok(())
    })?;
    let failure = match watchdog {
        Some(w) => runtime.block_on(w).ok().flatten(),
        None => None,
    };
    engine.shutdown();
    // Requests still blocked on the engine now fail; do not wait long for their threads.
    runtime.shutdown_timeout(Duration::from_secs(5));
    match failure {
        Some(reason) => anyhow::bail!("the cluster failed: {reason}"),
        None => Ok(()),
    }
}

pub(crate) async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
