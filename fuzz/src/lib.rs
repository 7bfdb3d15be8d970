//! What every fuzz target shares: the allocation cap of docs/testing.md S5
//! and the canonical round-trip check.
//!
//! Linking this crate (every target calls [`canonical`] or [`init`]) installs
//! a global allocator that refuses any single allocation above
//! [`ALLOCATION_BYTES_MAX`]: the decoder under test then aborts with "memory
//! allocation of N bytes failed", which libFuzzer reports as a crash. (With
//! `-s none` there is no sanitizer to enforce libFuzzer's `-malloc_limit_mb`.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Debug;

/// The largest single allocation a decoder may make on any input: 64 MiB.
pub const ALLOCATION_BYTES_MAX: usize = 64 * 1024 * 1024;

struct Capped;

// SAFETY: every call is forwarded to `System` unchanged, or refused with a
// null pointer, which `GlobalAlloc` allows.
unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOCATION_BYTES_MAX {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOCATION_BYTES_MAX {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > ALLOCATION_BYTES_MAX {
            return std::ptr::null_mut();
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Capped = Capped;

/// For targets with nothing to check canonically: makes sure this crate,
/// and so the allocation cap, is linked.
#[inline(never)]
pub fn init() {}

/// A canonical decoder accepted `input` as `value`: encoding `value` must
/// give back exactly `input`.
pub fn canonical<T: Debug>(what: &str, input: &[u8], value: &T, encoded: &[u8]) {
    assert!(
        encoded == input,
        "{what}: decoded, but re-encodes to other bytes\n input:   {}\n encoded: {}\n value: {value:?}",
        hex(input),
        hex(encoded)
    );
}

/// Lower-case hex, for messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
