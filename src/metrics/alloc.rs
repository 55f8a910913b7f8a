//! A global allocator that counts live heap bytes, so `/api/metrics` can report real allocated memory (the
//! figure the original system took from Go's runtime) at the cost of one relaxed atomic add per allocation.
//!
//! The counting is written once, in [`Counted`], over a counter it is given: the global allocator uses the
//! process-wide counter, and the tests use one of their own, which no other thread touches.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting bytes currently allocated.
pub struct CountingAllocator;

/// The system allocator, keeping `.0` equal to the bytes it has handed out and not yet taken back.
struct Counted<'a>(&'a AtomicUsize);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counter is only
// bookkeeping and never affects the memory handed out.
unsafe impl GlobalAlloc for Counted<'_> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract of GlobalAlloc::alloc.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            self.0.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract of GlobalAlloc::alloc_zeroed.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            self.0.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract of GlobalAlloc::dealloc.
        unsafe { System.dealloc(ptr, layout) };
        self.0.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract of GlobalAlloc::realloc.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Add before subtracting, so the counter never dips below the bytes still live.
            self.0.fetch_add(new_size, Ordering::Relaxed);
            self.0.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

// SAFETY: forwards every call unchanged to `Counted`, whose contract is the one above.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract of GlobalAlloc::alloc.
        unsafe { Counted(&ALLOCATED).alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract of GlobalAlloc::alloc_zeroed.
        unsafe { Counted(&ALLOCATED).alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract of GlobalAlloc::dealloc.
        unsafe { Counted(&ALLOCATED).dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract of GlobalAlloc::realloc.
        unsafe { Counted(&ALLOCATED).realloc(ptr, layout, new_size) }
    }
}

/// Heap bytes currently allocated by this process through the global allocator.
pub fn allocated_bytes() -> usize {
    ALLOCATED.load(Ordering::Relaxed)
}

/// Arenas glibc's allocator may create when `MALLOC_ARENA_MAX` is not set.
pub const DEFAULT_ARENAS: i32 = 2;

/// Caps glibc's malloc arenas at [`DEFAULT_ARENAS`] unless `MALLOC_ARENA_MAX` says otherwise; call it first
/// thing, before threads start. glibc's default (8 per core) lets every worker thread grow its own arena,
/// and the freed gaps in each stay resident: on the load benchmark that costs 30–40 KiB of resident memory per
/// session, for no measurable CPU (parley's threads allocate little at once). A no-op elsewhere.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes an allocator parameter; M_ARENA_MAX takes any positive value.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, DEFAULT_ARENAS);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc as _, Layout};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::Counted;

    /// Exact accounting through every entry point, on a counter of the test's own: other test threads
    /// allocating and freeing at the same moment cannot move it.
    #[test]
    fn every_byte_handed_out_is_counted_until_it_is_given_back() {
        let counter = AtomicUsize::new(0);
        let heap = Counted(&counter);
        let count = || counter.load(Ordering::Relaxed);
        let small = Layout::from_size_align(1000, 8).unwrap();
        let big = Layout::from_size_align(8 << 20, 16).unwrap();
        // SAFETY: each pointer is checked non-null, then freed once with the layout it was allocated with
        // (after realloc, with the new size).
        unsafe {
            let a = heap.alloc(small);
            assert!(!a.is_null());
            assert_eq!(count(), 1000);
            let z = heap.alloc_zeroed(big);
            assert!(!z.is_null());
            assert_eq!(count(), 1000 + (8 << 20));
            let a = heap.realloc(a, small, 5000);
            assert!(!a.is_null());
            assert_eq!(count(), 5000 + (8 << 20), "a grown block counts at its new size");
            let a = heap.realloc(a, Layout::from_size_align(5000, 8).unwrap(), 10);
            assert!(!a.is_null());
            assert_eq!(count(), 10 + (8 << 20), "a shrunk block too");
            heap.dealloc(z, big);
            assert_eq!(count(), 10);
            heap.dealloc(a, Layout::from_size_align(10, 8).unwrap());
        }
        assert_eq!(count(), 0, "everything given back");
    }

    /// The process-wide figure is the global allocator's: while this test holds a block, the live bytes of
    /// the whole process cannot be fewer, whatever other threads free meanwhile (they can only give back
    /// what was counted when they took it). A counter that stopped counting stays far below.
    #[test]
    fn the_process_figure_includes_a_block_held_by_this_thread() {
        const HELD: usize = 64 << 20;
        // Reserved, not touched: the pages are never faulted in, so this costs no resident memory.
        let block: Vec<u8> = Vec::with_capacity(HELD);
        let block = std::hint::black_box(block);
        let during = super::allocated_bytes();
        assert!(during >= HELD, "{during} bytes counted while this test holds {HELD}");
        drop(block);
    }
}
