//! Giving freed memory back to the system. Adopting or rebuilding a large
//! database allocates many small blocks (one per row read); glibc keeps the
//! freed ones in its heap, so without this the daemon would sit at its
//! adoption peak (hundreds of MB) until restarted.

/// Returns the free memory at the top and in the free lists of every malloc
/// arena to the system (glibc's `malloc_trim(0)`). Cheap when there is
/// nothing to return; call it after work that allocated a lot.
#[allow(unsafe_code)]
pub fn release_free_memory() {
    // SAFETY: `malloc_trim` takes no pointers and touches only the
    // allocator's own state, under the allocator's own per-arena locks, so it
    // is sound to call from any thread at any time (glibc documents it as
    // MT-Safe). Rust's global allocator on this target is the system malloc,
    // whose free blocks are the ones returned.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::malloc_trim(0);
    }
}
