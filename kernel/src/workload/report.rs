//! From the kernel's counters to the typed `@@stats` objects of `zstats` (the one set of types xtask
//! reads back, so a key cannot drift), and the failures a run must end with.

use alloc::string::String;

use pagecache::PageCacheStats;
use tmem::TmemStats;
use tmem::cleancache::CleancacheStats;

use crate::swap::SwapStats;

/// tmem's counters as a report object: the same type (`tmem::TmemStats` is `zstats::TmemReport`).
pub fn tmem(t: &TmemStats) -> zstats::TmemReport {
    *t
}

/// cleancache's counters as a report object: the same type.
pub fn cleancache(c: &CleancacheStats) -> zstats::CleancacheReport {
    *c
}

/// The swap subsystem's counters as a report object: the same type (see `swap::SwapStats`).
pub fn swap_stats(s: &SwapStats) -> zstats::SwapStatsReport {
    *s
}

/// A file run's page-cache counters, flat in a file-run report whose other fields the caller sets.
pub fn page_cache_into(c: &PageCacheStats, r: &mut zstats::FileRunReport) {
    r.hits = c.hits;
    r.misses = c.misses;
    r.cleancache_hits = c.cleancache_hits;
    r.disk_reads = c.disk_reads;
    r.evictions = c.evictions;
    r.invalidated_files = c.invalidated_files;
    r.disk_errors = c.disk_errors;
    r.evict_map_errors = c.evict_map_errors;
    r.invalidations = c.invalidations;
    r.alloc_retries = c.alloc_retries;
    r.uncached_reads = c.uncached_reads;
    r.free_errors = c.free_errors;
    r.cached_pages = c.cached_pages;
    r.capacity = c.capacity;
}

/// Failures collected during a run: each is one line naming what went wrong; any makes the run fail.
#[derive(Debug, Default)]
pub struct Failures(pub alloc::vec::Vec<String>);

impl Failures {
    /// Note a failure (and print it at once, so it stands next to the lines it concerns).
    pub fn add(&mut self, what: String) {
        crate::println!("FAILED: {what}");
        self.0.push(what);
    }

    /// Note a failure when `count` is not zero.
    pub fn nonzero(&mut self, count: u64, what: impl FnOnce() -> String) {
        if count != 0 {
            self.add(what());
        }
    }
}
