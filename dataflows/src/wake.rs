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

/// How long an idle worker of the embedded engine polls before parking, by default
/// (`EngineConfig::idle_spin`). A caller that writes, waits for the result and writes again
/// comes back within tens of microseconds; a worker that is still polling then saves the
/// unpark, and the single-write p50 falls from about 150 µs to 65–100 µs on a 2-vCPU virtual
/// machine (docs/benchmarks.md). The HTTP server keeps timely's 10 µs instead
/// ([`SERVER_IDLE_SPIN`]): there the polling worker would take the core its request and
/// subscriber threads need. Either way an idle worker polls only after work and then sleeps.
pub const IDLE_SPIN: Duration = Duration::from_micros(100);

/// The server's default poll (`freshet serve --idle-spin-us`): timely's own.
pub const SERVER_IDLE_SPIN: Duration = Duration::from_micros(10);

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
