//! A global allocator for this test binary that remembers the largest single allocation
//! of the current thread, so a test can measure what the generated decoder allocates.
//! It refuses any allocation over 1 GiB, so a count that slips through aborts the test
//! run at once instead of paging a CI machine to death.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

const ALLOCATION_BYTES_MAX: usize = 1 << 30;

thread_local! {
    static LARGEST_ALLOCATION_BYTES: Cell<usize> = const { Cell::new(0) };
}

struct WatchedAllocator;

#[global_allocator]
static ALLOCATOR: WatchedAllocator = WatchedAllocator;

fn note(size_bytes: usize) -> bool {
    // `try_with`: the slot may be gone while a thread is being torn down.
    let _ = LARGEST_ALLOCATION_BYTES.try_with(|largest| largest.set(largest.get().max(size_bytes)));
    size_bytes <= ALLOCATION_BYTES_MAX
}

// SAFETY: every call is forwarded unchanged to the system allocator, or refused with null,
// which the `GlobalAlloc` contract allows.
unsafe impl GlobalAlloc for WatchedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !note(layout.size()) {
            return std::ptr::null_mut();
        }
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !note(layout.size()) {
            return std::ptr::null_mut();
        }
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !note(new_size) {
            return std::ptr::null_mut();
        }
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

/// Runs `work` and returns its result with the largest single allocation it made.
pub(super) fn largest_during<T>(work: impl FnOnce() -> T) -> (T, usize) {
    LARGEST_ALLOCATION_BYTES.with(|largest| largest.set(0));
    let result = work();
    (result, LARGEST_ALLOCATION_BYTES.with(Cell::get))
}
