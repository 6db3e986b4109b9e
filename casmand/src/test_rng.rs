//! A fixed pseudo-random sequence for tests (xorshift64): the same cases on
//! every run, no crate for it.

/// Returns a generator of numbers below its argument, from `seed` (non-zero).
pub(crate) fn xorshift(mut seed: u64) -> impl FnMut(usize) -> usize {
    move |n| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    }
}
