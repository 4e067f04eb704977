//! The bench binary's allocator: mimalloc, counting the bytes held live once asked to.
//!
//! The memory benchmark's resident set includes what the allocator keeps after frees and the
//! pages of batches that merged away, and moves by ±10–20 % between runs of one case. The
//! live heap (bytes requested and not yet freed, `Vec` capacity included) is exact and shows
//! what the arrangements themselves hold. Counting is off until [`start`], so the throughput
//! benchmarks pay one relaxed load of a flag no thread writes per allocation, not an atomic
//! add on a cache line every worker shares (which is why this is not the `cap` crate).

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};

use mimalloc::MiMalloc;

/// mimalloc, with a live-byte count that [`start`] turns on.
pub struct Counting;

static ON: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// Counts from now on. Frees of blocks allocated before are counted too, so compare two
/// readings of [`live`] taken after this, not one against zero.
pub fn start() {
    ON.store(true, Relaxed);
}

/// Bytes allocated and not freed since [`start`] (negative if more was freed).
pub fn live() -> isize {
    LIVE.load(Relaxed)
}

fn count(delta: isize) {
    if ON.load(Relaxed) {
        LIVE.fetch_add(delta, Relaxed);
    }
}

// SAFETY: every call forwards to mimalloc with the caller's arguments unchanged; counting
// only reads the layout sizes the caller passed.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { MiMalloc.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { MiMalloc.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { MiMalloc.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { MiMalloc.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_is_held_once_started() {
        start();
        let before = live();
        // Other tests' threads allocate too; 64 MiB (never touched, so never paged in) stands
        // well above what they hold.
        let v: Vec<u8> = Vec::with_capacity(64 << 20);
        assert!(live() - before >= 56 << 20);
        drop(v);
        assert!(live() - before < 8 << 20);
    }
}
