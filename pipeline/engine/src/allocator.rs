//! The allocator's options, for the binaries that use mimalloc as their global allocator.

/// mimalloc's `mi_option_purge_delay` (its index in `mimalloc.h`, the same in mimalloc 2 and
/// 3; `libmimalloc-sys` names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Timely's message buffers are allocated and freed by the thousand; mimalloc's default
/// returns freed memory to the OS after 1 s, so later buffers fault fresh zeroed pages in.
/// Freed memory is kept for 10 s instead (`BENCHMARKS.md`), unless `MIMALLOC_PURGE_DELAY`
/// says otherwise. Call it first in `main`, before any other thread starts, as mimalloc's
/// option setters require.
#[allow(unsafe_code)]
pub fn configure() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: a plain store of an integer option, made while only this thread runs.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10_000) };
    }
}

#[cfg(test)]
mod tests {
    use super::MI_OPTION_PURGE_DELAY;

    #[test]
    fn the_purge_delay_index_names_the_purge_delay() {
        // mimalloc's `options.c` sets the purge delay's default to 1000 ms; no neighbouring
        // option defaults to 1000 (eager commit delay 1, NUMA nodes 0), so a renumbering
        // fails here.
        // SAFETY: a plain option read.
        #[allow(unsafe_code)]
        let value = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(value, 1000);
    }
}
