//! The swap subsystem's counters. Names follow Linux's `/proc/vmstat` where one exists; the report and
//! `@@stats` print them through the shared `zstats` types.

/// Counters of one swap run. Names follow Linux's `/proc/vmstat` where one exists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwapStats {
    /// Region page faults handled (`pgfault`).
    pub faults: u64,
    /// Faults on never-touched pages, given a zeroed frame.
    pub zero_fills: u64,
    /// Faults on swap entries (`pgmajfault`, `pswpin` + frontswap loads).
    pub swapins: u64,
    /// Pages reclaimed (`pswpout` + frontswap stores).
    pub swapouts: u64,
    /// Pages read from the swap disk (`pswpin`).
    pub disk_reads: u64,
    /// Pages written to the swap disk (`pswpout`), writeback included.
    pub disk_writes: u64,
    /// Swap-ins served by frontswap (tmem).
    pub frontswap_loads: u64,
    /// Swap-outs frontswap took.
    pub frontswap_stores: u64,
    /// Swap-outs frontswap refused (they went to the disk).
    pub frontswap_refused: u64,
    /// tmem pages written back to the disk to make room.
    pub written_back_pages: u64,
    /// Victims kept resident because no swap slot was free.
    pub out_of_swap: u64,
    /// Frame allocations for a faulting page that failed (each is followed by one more reclaim and a
    /// retry, up to 8 times).
    pub alloc_failures: u64,
    /// Resident region pages now.
    pub resident: u64,
    /// The most region pages ever resident at once.
    pub peak_resident: u64,
    /// Swap slots in use now.
    pub slots_used: u64,
    /// The most swap slots ever in use at once.
    pub peak_slots: u64,
    /// Most pool frames tmem held at once (sampled at each frontswap store).
    pub peak_tmem_pages: u64,
    /// cleancache (ephemeral) pages tmem dropped to make room for this run's frontswap stores.
    pub cleancache_dropped: u64,
    /// Reclaims of a clean page whose swap copy was kept (the swap cache): no store, no write.
    pub clean_reclaims_saved: u64,
    /// Swap-ins that kept their slot and copy.
    pub swapins_kept: u64,
    /// Kept pages found written at reclaim (their copy was rewritten).
    pub dirtied_after_swapin: u64,
    /// Fault steps that had to go over the memory size N: nothing more could move (out of swap, or a
    /// pool that could not shrink).
    pub over_budget_steps: u64,
    /// The most pool frames (tmem or zram) held at the end of a reclaim.
    pub peak_pool_pages: u64,
    /// The most resident pages + pool frames at the end of a reclaim (≤ N under equal memory).
    pub peak_mem_pages: u64,
    /// Pages written to and read from the zram device.
    pub zram_writes: u64,
    pub zram_reads: u64,
    /// Writes the zram device refused (its memory limit): those pages stayed resident.
    pub zram_refused: u64,
}

impl SwapStats {
    /// Disk I/O operations (pages read plus pages written).
    pub fn io(&self) -> u64 {
        self.disk_reads + self.disk_writes
    }
}
