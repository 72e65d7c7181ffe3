//! From the kernel's counters to the typed `@@stats` objects of `zstats` (the one set of types xtask
//! reads back, so a key cannot drift), and the failures a run must end with.

use alloc::string::String;

use pagecache::PageCacheStats;
use tmem::TmemStats;
use tmem::cleancache::CleancacheStats;

use crate::swap::SwapStats;

/// Copy the named fields of `$src` into a new `$ty` (the same names on both sides).
macro_rules! copy_fields {
    ($src:expr, $ty:ident { $($f:ident),* $(,)? }) => {
        zstats::$ty { $($f: $src.$f.into()),* }
    };
}

/// tmem's counters (`TmemStats`) as a report object.
pub fn tmem(t: &TmemStats) -> zstats::TmemReport {
    copy_fields!(
        t,
        TmemReport {
            puts,
            puts_replaced,
            put_failures,
            refused_full,
            reject_compress_poor,
            reject_alloc_fail,
            pool_limit_hit,
            oom_retries,
            gets,
            get_hits,
            get_misses,
            flush_pages,
            flush_objects,
            flush_object_pages,
            created_pools,
            destroyed_pools,
            destroyed_pages,
            ephemeral_drops,
            written_back_pages,
            corrupt,
            pages_compacted,
            free_errors,
            leaked_pages,
            no_such_pool,
            stored_pages,
            persistent_pages,
            ephemeral_pages,
            same_pages,
            compr_data_size,
            pool_pages,
            limit_pages,
            accept_pages,
            full,
            pools,
        }
    )
}

/// cleancache's counters as a report object.
pub fn cleancache(c: &CleancacheStats) -> zstats::CleancacheReport {
    copy_fields!(
        c,
        CleancacheReport {
            succ_gets,
            failed_gets,
            puts,
            invalidates,
            failed_puts,
            corrupt_gets,
            invalidated_pages,
            invalidated_inodes,
            invalidated_inode_pages,
            inited_fs,
            invalidated_fs,
            invalidated_fs_pages,
        }
    )
}

/// The swap subsystem's counters as a report object.
pub fn swap_stats(s: &SwapStats) -> zstats::SwapStatsReport {
    copy_fields!(
        s,
        SwapStatsReport {
            faults,
            zero_fills,
            swapins,
            swapouts,
            disk_reads,
            disk_writes,
            frontswap_loads,
            frontswap_stores,
            frontswap_refused,
            written_back_pages,
            out_of_swap,
            alloc_failures,
            resident,
            peak_resident,
            slots_used,
            peak_slots,
            peak_tmem_pages,
            cleancache_dropped,
            clean_reclaims_saved,
            swapins_kept,
            dirtied_after_swapin,
            over_budget_steps,
            peak_pool_pages,
            peak_mem_pages,
            zram_writes,
            zram_reads,
            zram_refused,
        }
    )
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
