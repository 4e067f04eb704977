//! `freshet serve --processes N --process I --hosts …`: the cluster flags, the worker-only
//! processes, and the watchdog that stops process 0 when the cluster is lost.
//!
//! Process 0 serves HTTP as usual over an engine whose workers span every process. The other
//! processes print nothing on stdout and serve nothing: they run their workers until process 0
//! stops the cluster (exit 0) or a peer is lost (exit 1). A timely cluster cannot take a
//! process back once it is gone, so every process exits within seconds of a loss and the
//! supervisor (Kubernetes, systemd, `scripts/cluster-local`) starts them all again.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use freshet_dataflows::cluster::{ClusterConfig, ProcessState, WorkerProcess};
use freshet_dataflows::engine::Engine;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct ClusterArgs {
    /// Number of processes in the cluster (each runs --workers threads).
    #[arg(long, default_value_t = 1, env = "FRESHET_PROCESSES")]
    processes: usize,
    /// This process's index; 0 serves the HTTP API. A name ending in -N (a StatefulSet pod
    /// name such as freshet-2) means N.
    #[arg(long, default_value = "0", env = "FRESHET_PROCESS")]
    process: String,
    /// host:port of every process, comma-separated, in process order.
    #[arg(long, value_delimiter = ',', env = "FRESHET_HOSTS")]
    hosts: Vec<String>,
    /// A file with one host:port per line, in process order (instead of --hosts).
    #[arg(long, env = "FRESHET_HOSTS_FILE", conflicts_with = "hosts")]
    hosts_file: Option<PathBuf>,
    /// Seconds to wait for every process to connect at start.
    #[arg(long, default_value_t = 60, env = "FRESHET_PEER_TIMEOUT_SECS")]
    peer_timeout_secs: u64,
}

impl ClusterArgs {
    /// The cluster to join, or `None` for a single process.
    pub fn config(&self) -> anyhow::Result<Option<ClusterConfig>> {
        let mut addresses: Vec<String> = match &self.hosts_file {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("reading the hosts file {}", path.display()))?
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from)
                .collect(),
            None => self.hosts.clone(),
        };
        addresses.retain(|a| !a.trim().is_empty());
        let process = parse_process(&self.process)?;
        if self.processes <= 1 {
            if process != 0 {
                anyhow::bail!("--process {process} needs --processes greater than {process}");
            }
            if addresses.len() > 1 {
                anyhow::bail!(
                    "{} hosts given but --processes is 1; pass --processes {}",
                    addresses.len(),
                    addresses.len()
                );
            }
            return Ok(None);
        }
        if addresses.is_empty() {
            anyhow::bail!(
                "--processes {} needs the address of every process: --hosts h0:p0,h1:p1,… or \
                 --hosts-file",
                self.processes
            );
        }
        let config = ClusterConfig {
            processes: self.processes,
            process,
            addresses,
            peer_timeout: Duration::from_secs(self.peer_timeout_secs.max(1)),
        };
        config.validate()?;
        Ok(Some(config))
    }
}

/// `3`, or the `3` of `freshet-3`.
fn parse_process(text: &str) -> anyhow::Result<usize> {
    let text = text.trim();
    let digits = text.rsplit('-').next().unwrap_or(text);
    digits.parse::<usize>().map_err(|_| {
        anyhow::anyhow!("--process {text:?} is neither a number nor a name ending in -NUMBER")
    })
}

/// Runs a process other than 0 until the cluster stops.
pub fn serve_worker_process(
    config: ClusterConfig,
    workers: usize,
    idle_spin: std::time::Duration,
) -> anyhow::Result<()> {
    let index = config.process;
    let process = WorkerProcess::start(
        config,
        workers,
        Some(freshet_inputs::connectors()),
        idle_spin,
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let signalled = runtime.block_on(async {
        let signal = crate::wait_for_signal();
        tokio::pin!(signal);
        loop {
            tokio::select! {
                _ = &mut signal => return true,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {
                    if process.state() != ProcessState::Running {
                        return false;
                    }
                }
            }
        }
    });
    if signalled {
        tracing::info!(
            process = index,
            "signal received: waiting up to 10 s for process 0 to stop the cluster"
        );
        return match process.wait(Duration::from_secs(10)) {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!("leaving the cluster before it stopped: {e}");
                Ok(())
            }
        };
    }
    process.wait(Duration::from_secs(30))?;
    tracing::info!(process = index, "the cluster stopped");
    Ok(())
}

/// Process 0: once the engine has failed (a lost peer), keeps answering `/healthz` and
/// `/readyz` with the reason for a moment, then stops the HTTP server. Returns the reason.
pub async fn watchdog(engine: Engine, shutdown: CancellationToken) -> Option<String> {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        if let Some(reason) = engine.failure() {
            tracing::error!("the cluster failed: {reason}; stopping in 1 s");
            tokio::time::sleep(Duration::from_secs(1)).await;
            shutdown.cancel();
            return Some(reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_process;

    #[test]
    fn process_indices_from_numbers_and_pod_names() {
        assert_eq!(parse_process("2").unwrap(), 2);
        assert_eq!(parse_process("freshet-12").unwrap(), 12);
        assert_eq!(parse_process("my-db-freshet-0").unwrap(), 0);
        assert!(parse_process("freshet").is_err());
        assert!(parse_process("-1x").is_err());
    }
}
