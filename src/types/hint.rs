//! A hint to the processor's cache, for walks that will read scattered memory in turn.

/// Asks the processor to start loading the cache lines of `bytes` (up to `max` bytes of
/// them) without waiting for them: a hint with no effect on what the program computes.
/// A walk that will read scattered values in turn (a checkpoint copying the store's
/// values into leaves, a merge of write runs whose large records each have a chunk of
/// their own) asks for the next ones early, so their misses overlap. A no-op off x86-64.
#[inline]
pub fn prefetch(bytes: &[u8], max: usize) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.get(..bytes.len().min(max)).unwrap_or(&[]).chunks(64) {
        // SAFETY: `prefetcht0` never faults and reads nothing into the program: it only
        // hints the cache. The pointer is to bytes of a live slice besides.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast::<i8>(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (bytes, max);
}
