//! Giving freed memory back to the system. Adopting or rebuilding a large
//! database allocates many small blocks (one per row read); glibc keeps the
//! freed ones in its heap, so without this the daemon would sit at its
//! adoption peak (hundreds of MB) until restarted.

/// Limits glibc to two malloc arenas, and fixes the size from which a block
/// gets a mapping of its own ([`MMAP_THRESHOLD`]). Call first thing in
/// `main`, before any thread starts.
///
/// glibc raises that size, and with it the size a heap must grow past before
/// its top is given back, each time it frees a large mapped block (up to 32
/// and 64 MB): a second listing of the chains then built its 17 MB in the
/// heap of a thread's arena, whose free top `malloc_trim` never returns, and
/// casmand stayed 17 MB larger. A fixed threshold turns that off (both
/// thresholds stay at their values). `MALLOC_MMAP_THRESHOLD_` in the
/// environment still wins.
///
/// glibc gives every thread that allocates under contention an arena of its
/// own, up to 8 per core, and a freed block returns to the arena it came
/// from: with tokio's workers, the blocking pool and SQLite's readers that
/// is a dozen arenas, each keeping megabytes `malloc_trim` cannot give back
/// (measured on the field-size fixture: 15 MB anonymous after adopting and
/// backing up, 4.9 MB with two arenas). The daemon's threads wait on I/O and
/// SQLite far more than on malloc, so the shared lock costs nothing seen.
/// `MALLOC_ARENA_MAX` in the environment still wins (glibc reads it first).
#[allow(unsafe_code)]
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: `mallopt` takes two integers and no pointers; it changes
        // the allocator's parameters under its own lock (glibc: MT-Safe).
        // M_ARENA_MAX only bounds how many arenas future allocations may
        // create; existing blocks stay valid wherever they live.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: as above: two integers, no pointers, under the allocator's
        // lock; the threshold only decides how future blocks are placed.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        }
    }
}

/// Blocks from this size (bytes) are mapped on their own and unmapped when
/// freed: a listing's or a rebuild's large buffers go back to the system at
/// once. (glibc's starting value; pages of a listing are below it.)
pub const MMAP_THRESHOLD: i32 = 128 << 10;

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

/// How long after a file swap the freed memory is returned once more.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

/// [`release_free_memory`] now, and once more [`SETTLE`] later: the
/// connections a file swap closed free their page caches on their own
/// threads after the swap has returned (on the field-size fixture, 12 MB
/// still held after a restore's own trim, given back by the later one).
/// Must be called inside the tokio runtime; calls made while one is
/// pending share it.
pub fn release_free_memory_after_swap() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static PENDING: AtomicBool = AtomicBool::new(false);
    release_free_memory();
    if !PENDING.swap(true, Ordering::AcqRel) {
        tokio::spawn(async {
            tokio::time::sleep(SETTLE).await;
            PENDING.store(false, Ordering::Release);
            release_free_memory();
        });
    }
}
