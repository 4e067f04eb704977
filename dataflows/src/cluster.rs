//! One timely execution over many processes: connecting the peers, starting the workers, and
//! noticing when a peer is lost.
//!
//! Timely already knows how to run one dataflow computation over several processes
//! (`CommunicationConfig::Cluster`): every process runs `W` worker threads, workers exchange
//! data and progress over one TCP connection per pair of processes, and worker `p·W + i` is
//! thread `i` of process `p`. freshet uses that runtime as it is; this module adds what a
//! service needs around it:
//!
//! - **Connecting with a deadline.** Timely's own connection code retries forever and prints
//!   to stdout (where `freshet serve` promises a single `listening on` line). Here each
//!   process connects to the processes before it and accepts the ones after it, like timely,
//!   but gives up after `peer_timeout` naming the processes it is still waiting for, and
//!   checks a small handshake (cluster size, workers per process) so that a process started
//!   with different flags is refused with a clear message instead of a garbled stream. The
//!   connected sockets are then handed to timely unchanged.
//! - **Noticing a lost peer.** When a peer dies, timely's receive thread for it panics
//!   ("timely communication error: … socket closed") and the workers that touch the poisoned
//!   queues panic after it. A panic hook recognises the communication threads, names the
//!   peer, and marks every engine of this process failed, so `/healthz`, `/readyz`, reads
//!   and the catalog say why; the process then exits instead of waiting for a peer that will
//!   never answer ([`WorkerProcess::state`], and the server's watchdog for process 0).
//! - **Worker-only processes.** Process 0 runs the coordinator, the HTTP API and worker 0,
//!   which sequences every command. The other processes only run workers
//!   ([`WorkerProcess`]): they apply the same commands and send what the coordinator needs
//!   (read answers, statistics) to worker 0 through the "Gather" dataflow (`worker::gather`).
//!   They stop when process 0 sends the final `Shutdown` command.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::{Duration, Instant};

use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::allocator::ProcessBuilder;
use timely::communication::{AllocatorBuilder, Hooks, WorkerGuards};
use timely::worker::Worker;

use crate::connector::Connectors;
use crate::worker::Shared;

/// How this process takes part in a cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Number of processes.
    pub processes: usize,
    /// This process's index (0 runs the coordinator and the HTTP API).
    pub process: usize,
    /// `host:port` of every process, in process order; this process listens on its own.
    pub addresses: Vec<String>,
    /// How long to wait for every peer to connect.
    pub peer_timeout: Duration,
}

impl ClusterConfig {
    /// Checks the shape of the configuration.
    pub fn validate(&self) -> Result<(), ClusterError> {
        if self.processes < 2 {
            return Err(ClusterError::Config(format!(
                "a cluster needs at least 2 processes (got {})",
                self.processes
            )));
        }
        if self.process >= self.processes {
            return Err(ClusterError::Config(format!(
                "process index {} is out of range for {} processes (0 to {})",
                self.process,
                self.processes,
                self.processes - 1
            )));
        }
        if self.addresses.len() != self.processes {
            return Err(ClusterError::Config(format!(
                "{} processes need {} host:port addresses, got {} ({})",
                self.processes,
                self.processes,
                self.addresses.len(),
                self.addresses.join(",")
            )));
        }
        for a in &self.addresses {
            let port = a.rsplit_once(':').map(|(_, p)| p.parse::<u16>());
            if !matches!(port, Some(Ok(_))) {
                return Err(ClusterError::Config(format!(
                    "\"{a}\" is not a host:port address"
                )));
            }
        }
        Ok(())
    }
}

/// Why a cluster could not form or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster configuration: {0}")]
    Config(String),
    #[error("cannot listen for peers on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error(
        "timed out after {seconds} s waiting for {waiting}; start every process with the same \
         --processes and --hosts (each with its own --process), or raise --peer-timeout-secs"
    )]
    PeerTimeout { seconds: u64, waiting: String },
    #[error("peer at {address}: {message}")]
    Handshake { address: String, message: String },
    #[error("cluster networking: {0}")]
    Network(String),
    #[error("{0}")]
    Failed(String),
}

/// What the coordinator and workers of one process know about the cluster.
#[derive(Debug)]
pub struct ClusterState {
    /// True in processes other than 0: no coordinator here; answers go to worker 0.
    pub worker_only: bool,
    /// Global index of this process's first worker (it reports the process's statistics).
    pub first_worker: usize,
    /// Worker threads in this process.
    pub local_workers: usize,
    /// Processes in the cluster (1 without one).
    pub processes: usize,
    /// Why the engine failed, once it has.
    pub failure: Mutex<Option<String>>,
    /// Local workers that have stopped and wound down their dataflows.
    pub finished: AtomicUsize,
}

impl ClusterState {
    /// The process that runs the coordinator (the only one without a cluster).
    pub fn coordinator(local_workers: usize, processes: usize) -> ClusterState {
        ClusterState {
            worker_only: false,
            first_worker: 0,
            local_workers,
            processes: processes.max(1),
            failure: Mutex::new(None),
            finished: AtomicUsize::new(0),
        }
    }

    fn worker_process(process: usize, local_workers: usize, processes: usize) -> ClusterState {
        ClusterState {
            worker_only: true,
            first_worker: process * local_workers,
            local_workers,
            processes,
            failure: Mutex::new(None),
            finished: AtomicUsize::new(0),
        }
    }

    /// The recorded reason for a failure, if any.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Marks the engine of `shared` failed for `reason` (the first reason wins) and wakes the
/// threads that wait on it.
pub(crate) fn mark_failed(shared: &Shared, reason: &str) {
    {
        let mut failure = shared
            .cluster
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if failure.is_none() {
            *failure = Some(reason.to_string());
        }
    }
    shared
        .failed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    if let Some(w) = shared
        .worker0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
    {
        w.wake();
    }
    if let Some(t) = shared
        .clock
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
    {
        t.unpark();
    }
}

/// Engines of this process that want to hear about lost peers.
static LISTENERS: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());
static HOOK: Once = Once::new();

/// Registers `shared` to be marked failed when a connection to a peer breaks, installing the
/// panic hook that notices it (once per process; earlier hooks still run).
pub(crate) fn watch_peers(shared: &Arc<Shared>) {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(reason) = lost_peer(info) {
                tracing::error!("{reason}");
                let listeners = LISTENERS.lock().unwrap_or_else(|p| p.into_inner());
                for shared in listeners.iter().filter_map(Weak::upgrade) {
                    mark_failed(&shared, &reason);
                }
            }
            previous(info);
        }));
    });
    let mut listeners = LISTENERS.lock().unwrap_or_else(|p| p.into_inner());
    listeners.retain(|w| w.strong_count() > 0);
    listeners.push(Arc::downgrade(shared));
}

/// If this panic is timely losing a connection, a sentence saying which peer was lost.
fn lost_peer(info: &std::panic::PanicHookInfo<'_>) -> Option<String> {
    let message = info
        .payload()
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| info.payload().downcast_ref::<String>().cloned())
        .unwrap_or_default();
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("");
    let peer = name
        .strip_prefix("timely:recv-")
        .or_else(|| name.strip_prefix("timely:send-"))
        .and_then(|p| p.parse::<usize>().ok());
    match peer {
        Some(p) => Some(format!(
            "lost the connection to cluster process {p} ({message}); the cluster cannot go on \
             and must be restarted"
        )),
        None if message.starts_with("timely communication error") => Some(format!(
            "lost a connection to a cluster process ({message}); the cluster cannot go on and \
             must be restarted"
        )),
        None => None,
    }
}

/// How workers of either kind of execution behave: they poll a while before parking, and an
/// idle arrangement finishes the merges it started (see [`idle_merging`]).
fn worker_config(idle_spin: Duration) -> timely::WorkerConfig {
    let mut config = timely::WorkerConfig::default().idle_spin(idle_spin);
    config.set::<differential_dataflow::trace::ExertionLogic>(
        "differential/default_exert_logic".to_string(),
        idle_merging(IDLE_MERGE_EFFORT),
    );
    config
}

/// Updates of merge work an idle arrangement does each time it is scheduled: small enough that
/// a write arriving meanwhile waits only tens of microseconds.
const IDLE_MERGE_EFFORT: usize = 2048;

/// Differential merges an arrangement's batches with fuel that new updates bring, so an
/// arrangement that stops receiving them keeps a merge half done: both inputs and the partial
/// output held, and every reader walking all three. With this, an arrangement with a merge in
/// progress spends `effort` on it each time it is scheduled (and schedules itself again) until
/// none is. It does not start merges: forcing a one-row batch into a million-row one after
/// every write would cost each write the whole merge (a single-row update took 1 ms instead
/// of 0.15 ms when idle arrangements were merged down to one batch), where differential's
/// levels keep that work amortized.
fn idle_merging(effort: usize) -> differential_dataflow::trace::ExertionLogic {
    std::sync::Arc::new(move |layers: &[(usize, usize, usize)]| {
        layers
            .iter()
            .any(|&(_level, batches, _updates)| batches > 1)
            .then_some(effort)
    })
}

/// Starts `workers` timely worker threads in this process: alone, or joined to the other
/// processes of `cluster` (waiting for them to connect first). Idle workers poll for
/// `idle_spin` before parking.
pub(crate) fn start_workers<F>(
    workers: usize,
    cluster: Option<&ClusterConfig>,
    idle_spin: Duration,
    func: F,
) -> Result<WorkerGuards<()>, ClusterError>
where
    F: Fn(&mut Worker) + Send + Sync + 'static,
{
    let Some(cluster) = cluster else {
        let config = timely::Config {
            communication: timely::CommunicationConfig::Process(workers),
            worker: worker_config(idle_spin),
        };
        return timely::execute(config, func).map_err(ClusterError::Network);
    };
    cluster.validate()?;
    let sockets = connect(cluster, workers)?;
    let hooks = Hooks::default();
    let process_allocators =
        ProcessBuilder::new_typed_vector(workers, hooks.refill.clone(), hooks.spill.clone());
    let (builders, comms) = initialize_networking_from_sockets(
        process_allocators,
        sockets,
        cluster.process,
        workers,
        hooks,
    )
    .map_err(|e| ClusterError::Network(e.to_string()))?;
    timely::execute::execute_from(
        builders.into_iter().map(AllocatorBuilder::Tcp).collect(),
        Box::new(comms),
        worker_config(idle_spin),
        func,
    )
    .map_err(ClusterError::Network)
}

/// Waits for the worker threads (and, in a cluster, timely's network threads) to finish, at
/// most `timeout`. After a failure nothing is joined: a failed worker or a lost peer can
/// leave threads that never finish, and the process is about to exit anyway.
pub(crate) fn join_workers(guards: WorkerGuards<()>, shared: &Shared, timeout: Duration) {
    if shared.failed.load(Ordering::SeqCst) {
        tracing::warn!("not waiting for the workers of a failed engine");
        std::mem::forget(guards);
        return;
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    let joiner = std::thread::Builder::new()
        .name("freshet-join".into())
        .spawn(move || {
            let results = guards.join();
            let _ = tx.send(results.iter().all(Result::is_ok));
        });
    if joiner.is_err() {
        return;
    }
    match rx.recv_timeout(timeout) {
        Ok(true) => {}
        Ok(false) => tracing::warn!("a worker thread ended with a panic"),
        Err(crossbeam_channel::RecvTimeoutError::Timeout) => tracing::warn!(
            seconds = timeout.as_secs(),
            "workers did not stop in time; exiting without them"
        ),
        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
            tracing::warn!("the network threads ended with a panic")
        }
    }
}

/// First bytes of every connection between freshet processes.
const MAGIC: &[u8; 8] = b"freshet\x01";

/// What each end of a connection says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hello {
    process: u64,
    processes: u64,
    workers: u64,
}

impl Hello {
    fn write(&self, stream: &mut TcpStream) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(32);
        buf.extend_from_slice(MAGIC);
        for x in [self.process, self.processes, self.workers] {
            buf.extend_from_slice(&x.to_be_bytes());
        }
        stream.write_all(&buf)?;
        stream.flush()
    }

    fn read(stream: &mut TcpStream) -> Result<Hello, String> {
        let mut buf = [0u8; 32];
        stream
            .read_exact(&mut buf)
            .map_err(|e| format!("no greeting ({e})"))?;
        if &buf[..8] != MAGIC {
            return Err("not a freshet cluster process (or another version)".into());
        }
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&buf[8 + 8 * i..16 + 8 * i]);
            u64::from_be_bytes(w)
        };
        Ok(Hello {
            process: word(0),
            processes: word(1),
            workers: word(2),
        })
    }

    /// Checks that a peer belongs to the same cluster as `self`.
    fn check(&self, peer: &Hello) -> Result<(), String> {
        if peer.processes != self.processes {
            return Err(format!(
                "it was started with --processes {}, this process with {}",
                peer.processes, self.processes
            ));
        }
        if peer.workers != self.workers {
            return Err(format!(
                "it runs {} workers per process, this process {}; every process needs the \
                 same --workers",
                peer.workers, self.workers
            ));
        }
        Ok(())
    }
}

/// Connects this process to every other one: it dials the processes before it and accepts
/// the ones after it (the order timely expects), within `peer_timeout`.
fn connect(config: &ClusterConfig, workers: usize) -> Result<Vec<Option<TcpStream>>, ClusterError> {
    let me = Hello {
        process: config.process as u64,
        processes: config.processes as u64,
        workers: workers as u64,
    };
    let deadline = (
        Instant::now() + config.peer_timeout,
        config.peer_timeout.as_secs(),
    );
    let listener = listen(&config.addresses[config.process])?;
    tracing::info!(
        process = config.process,
        processes = config.processes,
        address = config.addresses[config.process],
        "waiting for the other cluster processes"
    );
    let addresses = config.addresses.clone();
    let dialer = std::thread::Builder::new()
        .name("freshet-dial".into())
        .spawn(move || dial_lower(&addresses, me, deadline))
        .map_err(|e| ClusterError::Network(e.to_string()))?;
    let accepted = accept_higher(&listener, &config.addresses, me, deadline);
    let dialed = dialer
        .join()
        .map_err(|_| ClusterError::Network("the connecting thread panicked".into()))?;
    let (mut dialed, accepted) = match (dialed, accepted) {
        (Ok(d), Ok(a)) => (d, a),
        (
            Err(ClusterError::PeerTimeout { seconds, waiting }),
            Err(ClusterError::PeerTimeout { waiting: more, .. }),
        ) => {
            return Err(ClusterError::PeerTimeout {
                seconds,
                waiting: format!("{waiting}, {more}"),
            })
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    dialed.push(None);
    dialed.extend(accepted.into_iter().map(Some));
    for s in dialed.iter().flatten() {
        s.set_read_timeout(None)
            .and_then(|()| s.set_write_timeout(None))
            .map_err(|e| ClusterError::Network(e.to_string()))?;
    }
    tracing::info!(
        process = config.process,
        processes = config.processes,
        "every cluster process connected"
    );
    Ok(dialed)
}

/// Binds this process's cluster address; a host name that is not an IP address (a
/// Kubernetes pod's DNS name) listens on every interface at that port.
fn listen(address: &str) -> Result<TcpListener, ClusterError> {
    let err = |source| ClusterError::Listen {
        address: address.to_string(),
        source,
    };
    let bind_to = match address.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            let port = address
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .ok_or_else(|| {
                    err(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "not a host:port address",
                    ))
                })?;
            SocketAddr::from(([0, 0, 0, 0], port))
        }
    };
    let listener = TcpListener::bind(bind_to).map_err(err)?;
    listener.set_nonblocking(true).map_err(err)?;
    Ok(listener)
}

/// How long one handshake may take once the TCP connection is up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn waiting_for(addresses: &[String], pending: impl Iterator<Item = usize>) -> String {
    pending
        .map(|p| format!("process {p} ({})", addresses[p]))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Connects to processes `0..me.process`, retrying until `deadline`.
fn dial_lower(
    addresses: &[String],
    me: Hello,
    (deadline, seconds): (Instant, u64),
) -> Result<Vec<Option<TcpStream>>, ClusterError> {
    let mut out = Vec::new();
    for (p, address) in addresses.iter().enumerate().take(me.process as usize) {
        let mut last_note = Instant::now();
        let stream = loop {
            match try_dial(address, me, p) {
                Ok(s) => break s,
                Err(DialError::Refused(e)) => {
                    if Instant::now() >= deadline {
                        return Err(ClusterError::PeerTimeout {
                            seconds,
                            waiting: waiting_for(addresses, p..me.process as usize),
                        });
                    }
                    if last_note.elapsed() >= Duration::from_secs(5) {
                        last_note = Instant::now();
                        tracing::info!(peer = p, address, "still waiting for process ({e})");
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(DialError::Fatal(e)) => return Err(e),
            }
        };
        tracing::debug!(peer = p, address, "connected to process");
        out.push(Some(stream));
    }
    Ok(out)
}

enum DialError {
    /// Not there yet (refused, unreachable, name not resolvable yet): try again.
    Refused(String),
    /// There, but not a compatible peer.
    Fatal(ClusterError),
}

fn try_dial(address: &str, me: Hello, expected: usize) -> Result<TcpStream, DialError> {
    let addrs: Vec<SocketAddr> = address
        .to_socket_addrs()
        .map_err(|e| DialError::Refused(e.to_string()))?
        .collect();
    let mut last = String::from("no address");
    for a in addrs {
        let mut stream = match TcpStream::connect_timeout(&a, Duration::from_secs(2)) {
            Ok(s) => s,
            Err(e) => {
                last = e.to_string();
                continue;
            }
        };
        let fatal = |message: String| {
            DialError::Fatal(ClusterError::Handshake {
                address: address.to_string(),
                message,
            })
        };
        let setup = stream
            .set_nodelay(true)
            .and_then(|()| stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT)))
            .and_then(|()| stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT)));
        if let Err(e) = setup {
            last = e.to_string();
            continue;
        }
        if let Err(e) = me.write(&mut stream) {
            // The peer may have closed a half-open connection while starting: try again.
            last = e.to_string();
            continue;
        }
        let peer = match Hello::read(&mut stream) {
            Ok(h) => h,
            Err(e) => {
                last = e;
                continue;
            }
        };
        if peer.process != expected as u64 {
            return Err(fatal(format!(
                "expected process {expected} there, but process {} answered; check the order \
                 of --hosts",
                peer.process
            )));
        }
        me.check(&peer).map_err(fatal)?;
        return Ok(stream);
    }
    Err(DialError::Refused(last))
}

/// Accepts processes `me.process+1..`, until `deadline`.
fn accept_higher(
    listener: &TcpListener,
    addresses: &[String],
    me: Hello,
    (deadline, seconds): (Instant, u64),
) -> Result<Vec<TcpStream>, ClusterError> {
    let first = me.process as usize + 1;
    let mut slots: Vec<Option<TcpStream>> = (first..addresses.len()).map(|_| None).collect();
    while slots.iter().any(Option::is_none) {
        match listener.accept() {
            Ok((mut stream, from)) => {
                let greeted = stream
                    .set_nonblocking(false)
                    .and_then(|()| stream.set_nodelay(true))
                    .and_then(|()| stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT)))
                    .and_then(|()| stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT)))
                    .map_err(|e| e.to_string())
                    .and_then(|()| Hello::read(&mut stream));
                let peer = match greeted {
                    Ok(h) => h,
                    Err(e) => {
                        tracing::warn!(%from, "ignoring a connection that is not a peer: {e}");
                        continue;
                    }
                };
                let handshake = |message: String| ClusterError::Handshake {
                    address: from.to_string(),
                    message,
                };
                // Answer first, so that a mismatched peer hears why it is refused.
                me.write(&mut stream)
                    .map_err(|e| handshake(format!("could not answer: {e}")))?;
                me.check(&peer).map_err(handshake)?;
                let p = peer.process as usize;
                if p < first || p >= addresses.len() {
                    return Err(handshake(format!(
                        "a process calling itself {p} connected to process {}, which only \
                         accepts processes {first} to {}",
                        me.process,
                        addresses.len() - 1
                    )));
                }
                if slots[p - first].is_some() {
                    return Err(handshake(format!(
                        "process {p} connected twice; are two processes started with --process {p}?"
                    )));
                }
                tracing::debug!(peer = p, %from, "process connected");
                slots[p - first] = Some(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    let pending = slots
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| s.is_none())
                        .map(|(i, _)| first + i);
                    return Err(ClusterError::PeerTimeout {
                        seconds,
                        waiting: waiting_for(addresses, pending),
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(ClusterError::Network(format!("accepting peers: {e}"))),
        }
    }
    Ok(slots.into_iter().flatten().collect())
}

/// How a worker-only process is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessState {
    /// Workers are running.
    Running,
    /// Process 0 stopped the cluster and every local worker has wound down.
    Finished,
    /// A peer was lost or a worker failed.
    Failed(String),
}

/// A process other than 0: workers only, no coordinator and no HTTP API.
pub struct WorkerProcess {
    shared: Arc<Shared>,
    guards: Option<WorkerGuards<()>>,
    config: ClusterConfig,
}

impl WorkerProcess {
    /// Connects to the other processes (waiting up to `cluster.peer_timeout`) and starts
    /// `workers` worker threads. `connectors` must be the same kind of sources and sinks as
    /// process 0's, since every worker reads its share of every source. Idle workers poll for
    /// `idle_spin` before parking (as `EngineConfig::idle_spin`).
    pub fn start(
        cluster: ClusterConfig,
        workers: usize,
        connectors: Option<Connectors>,
        idle_spin: Duration,
    ) -> Result<WorkerProcess, ClusterError> {
        cluster.validate()?;
        if cluster.process == 0 {
            return Err(ClusterError::Config(
                "process 0 runs the coordinator: start it with Engine::start".into(),
            ));
        }
        let workers = workers.max(1);
        let shared = Arc::new(Shared::for_worker_process(
            connectors,
            ClusterState::worker_process(cluster.process, workers, cluster.processes),
        ));
        watch_peers(&shared);
        let worker_shared = Arc::clone(&shared);
        // Worker 0 (in process 0) sends the starting time as its first command.
        let guards = start_workers(workers, Some(&cluster), idle_spin, move |worker| {
            crate::worker::run(worker, Arc::clone(&worker_shared), 0);
        })?;
        tracing::info!(
            process = cluster.process,
            processes = cluster.processes,
            workers,
            "joined the cluster; process 0 serves the API"
        );
        Ok(WorkerProcess {
            shared,
            guards: Some(guards),
            config: cluster,
        })
    }

    /// Whether the workers still run, have stopped cleanly, or failed.
    pub fn state(&self) -> ProcessState {
        if self.shared.failed.load(Ordering::SeqCst) {
            return ProcessState::Failed(self.shared.cluster.failure().unwrap_or_else(|| {
                "a worker failed (see the log); the cluster must be restarted".into()
            }));
        }
        if self.shared.cluster.finished.load(Ordering::SeqCst) >= self.shared.cluster.local_workers
        {
            return ProcessState::Finished;
        }
        ProcessState::Running
    }

    /// Waits at most `timeout` for the cluster to stop; `Ok` after a clean stop by process
    /// 0, an error naming the cause after a failure or when the time is up.
    pub fn wait(mut self, timeout: Duration) -> Result<(), ClusterError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.state() {
                ProcessState::Running if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                ProcessState::Running => {
                    return Err(ClusterError::Failed(format!(
                        "process {} still running after {} s",
                        self.config.process,
                        timeout.as_secs()
                    )))
                }
                ProcessState::Finished => {
                    if let Some(guards) = self.guards.take() {
                        join_workers(guards, &self.shared, Duration::from_secs(10));
                    }
                    return Ok(());
                }
                ProcessState::Failed(reason) => {
                    if let Some(guards) = self.guards.take() {
                        std::mem::forget(guards);
                    }
                    return Err(ClusterError::Failed(reason));
                }
            }
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        // Joining could wait forever for a peer; a dropped process handle leaves its threads.
        if let Some(guards) = self.guards.take() {
            std::mem::forget(guards);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(processes: usize, process: usize, addresses: &[&str]) -> ClusterConfig {
        ClusterConfig {
            processes,
            process,
            addresses: addresses.iter().map(|s| s.to_string()).collect(),
            peer_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn idle_arrangements_finish_merges_and_start_none() {
        let logic = idle_merging(7);
        // (level, batches at the level, updates): no merge in progress, whatever the batches.
        assert_eq!(logic(&[(4, 1, 100)]), None);
        assert_eq!(logic(&[(4, 1, 100), (2, 1, 50), (1, 1, 3)]), None);
        assert_eq!(logic(&[]), None);
        // A merge in progress, even of empty batches: go on.
        assert_eq!(logic(&[(2, 2, 10)]), Some(7));
        assert_eq!(logic(&[(3, 1, 9), (2, 2, 0)]), Some(7));
    }

    #[test]
    fn configurations_are_checked() {
        assert!(config(2, 0, &["a:1", "b:2"]).validate().is_ok());
        assert!(config(1, 0, &["a:1"]).validate().is_err());
        assert!(config(2, 2, &["a:1", "b:2"]).validate().is_err());
        assert!(config(3, 0, &["a:1", "b:2"]).validate().is_err());
        assert!(config(2, 0, &["a:1", "b"]).validate().is_err());
    }

    #[test]
    fn a_missing_peer_times_out_with_its_address() {
        let port = free_port();
        let other = free_port();
        let c = ClusterConfig {
            peer_timeout: Duration::from_millis(300),
            ..config(
                2,
                0,
                &[&format!("127.0.0.1:{port}"), &format!("127.0.0.1:{other}")],
            )
        };
        let started = Instant::now();
        let err = connect(&c, 1).expect_err("no peer: an error");
        assert!(started.elapsed() < Duration::from_secs(5));
        let text = err.to_string();
        assert!(text.contains("timed out"), "{text}");
        assert!(
            text.contains(&format!("process 1 (127.0.0.1:{other})")),
            "{text}"
        );
    }

    #[test]
    fn mismatched_workers_are_refused() {
        let a = format!("127.0.0.1:{}", free_port());
        let b = format!("127.0.0.1:{}", free_port());
        let c0 = config(2, 0, &[&a, &b]);
        let c1 = config(2, 1, &[&a, &b]);
        let t = std::thread::spawn(move || connect(&c1, 2).map(|_| ()));
        let r0 = connect(&c0, 1);
        let r1 = t.join().expect("thread");
        let text = format!("{:?} {:?}", r0.err(), r1.err());
        assert!(text.contains("same --workers"), "{text}");
    }

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port")
    }
}
