//! Waking a worker from another thread.
//!
//! A worker with nothing to do polls its channels for a short while ([`IDLE_SPIN`]) before it
//! parks its thread, because waking a parked thread costs tens of microseconds on a virtual
//! machine whose vCPU went idle (36 µs for a round trip between two threads here, against
//! 4 µs for threads pinned to one core). That polling only sees timely's own events, so a
//! plain `Thread::unpark` from the coordinator, a source reader or the storage thread would
//! wait out the whole poll. A [`Waker`] instead posts an activation to the worker's timely
//! scheduler, which ends the poll at once, and unparks the thread if it already sleeps.
//!
//! The activation names no dataflow (timely ignores it when scheduling): it only tells the
//! worker that something outside timely wants its loop to turn.

use std::time::Duration;

use timely::scheduling::activate::SyncActivations;
use timely::worker::Worker;

/// How long an idle worker polls before parking, by default (`EngineConfig::idle_spin`,
/// `--idle-spin-us`): timely's own default. Longer polls (200 µs) cut the embedded engine's
/// single-write latency by a third on a 2-vCPU virtual machine, but cost the HTTP server more
/// than they gain there: the polling worker takes a core the request and subscriber threads
/// need (docs/benchmarks.md).
pub const IDLE_SPIN: Duration = Duration::from_micros(10);

/// A dataflow index timely never hands out: activating it schedules nothing.
const NO_DATAFLOW: usize = usize::MAX;

/// Wakes one worker, whether it polls or sleeps. Cheap to clone, usable from any thread.
#[derive(Clone, Debug)]
pub struct Waker {
    activations: SyncActivations,
}

impl Waker {
    /// A waker for the worker running on the current thread.
    pub fn for_worker(worker: &Worker) -> Waker {
        Waker {
            activations: worker.activations().borrow().sync(),
        }
    }

    /// Makes the worker's loop turn soon. A worker that has stopped is not woken, silently.
    pub fn wake(&self) {
        let _ = self.activations.activate(vec![NO_DATAFLOW]);
    }
}
