//! zstats: the typed `@@stats` objects. The kernel fills a [`Report`] and prints it with [`to_line`];
//! xtask reads the line back with [`from_line`] into the same types, with unknown fields denied.
//!
//! # Why
//!
//! The kernel's machine-readable output is one line, `@@stats {json}`, that xtask saves to
//! `target/zkernel/report.json` and draws the report from (Linux's equivalent is a sysfs file such as
//! `/sys/block/zram0/mm_stat`, whose column order is an ABI). The first version built that line by hand
//! with `format!` in five files, so a key was a string typed twice, once by the kernel and once by the
//! reader, and nothing noticed when they differed: `SwapStats::written_back` went out as
//! `written_back_pages`, the pools demo's `sparse_pages` as `pages_after_freeing_two_thirds`, and a
//! file run's tmem figures sat under `tmem` while a swap run's sat under `tmem_stats`.
//!
//! Here every object is a plain struct, serialized with serde (`serde_json` with only `alloc`, so the
//! kernel can use it) and deserialized by xtask with `#[serde(deny_unknown_fields)]`: a key the kernel
//! prints that the types do not know, or a key the types need that the kernel left out, fails the read
//! instead of drawing a wrong report.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | stats line | one serial line, [`PREFIX`] then one JSON object; the kernel prints one per boot, at the end |
//! | report | the top-level object ([`Report`]): boot facts, memory counters, the workload's results |
//! | run | one pass of a workload with one configuration (tmem off, or on with one backend) |
//! | failure | a reason the run must not pass (a mismatch, a stale hit); [`Report::failures`] |
//!
//! # The objects
//!
//! Field names are the library's field names, which follow zram and zswap where Linux has a name
//! (`orig_data_size`, `compr_data_size`, `mem_used_total`, `same_pages`, `pages_compacted`,
//! `stored_pages`, `written_back_pages`, `reject_compress_poor`). Where a library keeps counters in a
//! stats struct, the object mirrors that struct field for field, so the kernel fills it by copying.
//!
//! | key path | type | filled from (kernel) | present |
//! |---|---|---|---|
//! | (top) | [`Report`] | `init::BootFacts`, `main.rs` | always |
//! | `memory` | [`MemoryReport`] | `memmap::Summary` | always |
//! | `frames` | [`FramesReport`] | `frame::FrameStats` | always |
//! | `heap` | [`HeapReport`] | `mm::heap::HeapStats` | always |
//! | `kmap` | [`KmapReport`] | `mm::kmap::KmapStats` | always |
//! | `paging` | [`PagingReport`] | `mm::paging::PagingStats` | always |
//! | `pools[]` | [`PoolReport`] | `workload::pools::PoolRun` + `zstore::StoreStats` | `workload=pools` |
//! | `pool_table[]` | [`PoolTableRow`] | `workload::pooltable::run` + `pooltable::Measured` | `workload=pools` |
//! | `swap` | [`SwapReport`] | `workload::swap::run_demo` | `workload=swap` |
//! | `swap.runs[]`, `all.swap` | [`SwapRunReport`] | `workload::swap_run::RunResult` | |
//! | `swap.runs[].swap` | [`SwapStatsReport`] | `swap::SwapStats` | |
//! | `swap.runs[].series[]` | [`SeriesPoint`] | `workload::swap_run::SwapRun::step`, sampled | runs of `workload=swap` and `all` |
//! | `….tmem_stats` | [`TmemReport`] | `tmem::TmemStats` | runs with tmem |
//! | `swap.io_avoided[]` | [`IoAvoidedReport`] | `workload::swap::run_demo` | |
//! | `files` | [`FilesReport`] | `workload::files::run_demo` | `workload=files` |
//! | `files.runs[]`, `all.files` | [`FileRunReport`] | `workload::files::FileResult` + `pagecache::PageCacheStats` | |
//! | `….cleancache_stats` | [`CleancacheReport`] | `tmem::cleancache::CleancacheStats` | runs with cleancache |
//! | `all` | [`AllReport`] | `workload::all::run_all` | `workload=all` |
//! | `sweep` | [`SweepReport`] | `workload::sweep` | `workload=sweep` |
//! | `sweep.points[]` | [`SweepPoint`] | one swap run of the sweep, one configuration at one memory size | |
//!
//! # Keys that changed from the hand-built line
//!
//! Every key the old line printed keeps its name and its value except these (the tests
//! `pools_line_of_the_old_kernel`, `swap_line_of_the_old_kernel` and `files_line_of_the_old_kernel`
//! take the old lines apart and check this table against them):
//!
//! | old key | new key | why |
//! |---|---|---|
//! | `pools[].pages_after_freeing_two_thirds` | `pools[].sparse_pages` | the kernel's field name (`PoolRun::sparse_pages`) |
//! | `swap.runs[].tmem_stats.orig_data_size` | (removed) | not a tmem counter: it was `stored_pages` × 4096 |
//! | `files.runs[].tmem.ephemeral_pages` | `files.runs[].tmem_stats.ephemeral_pages` | the same object as a swap run's `tmem_stats` |
//! | `files.runs[].tmem.pool_pages` | `files.runs[].tmem_stats.pool_pages` | as above |
//! | `files.runs[].tmem.ephemeral_drops` | `files.runs[].tmem_stats.ephemeral_drops` | as above |
//!
//! `swap.runs[].swap.written_back_pages` keeps its key, which is zswap's name; the kernel's
//! `SwapStats::written_back` is the one that drifted. New keys: `options` and `failures` at the top,
//! `memory.usable_end` and `memory.unordered`, a run's `dirty_zero_fills`, `swap.resident` and
//! `swap.slots_used`, a file run's `ms` and the page-cache counters it did not print, and the tmem and
//! cleancache counters the old objects left out (each object now mirrors its library struct whole).
//! Later, with the equal-memory sweep: the swap-cache, memory-size and zram counters of a run's `swap`
//! (`clean_reclaims_saved` … `zram_refused`) and the `sweep` member.
//!
//! # Worked example
//!
//! A pools run on BIOS with 4 CPUs, one pool shown (zsmalloc) where the kernel prints two. The line is
//! one line on the wire, cut after commas here; the test `worked_example_from_the_header` joins these
//! lines and checks that [`from_line`] reads them into the report it expects and [`to_line`] prints
//! exactly them:
//!
//! ```text
//! EXAMPLE-BEGIN
//! @@stats {"firmware":"BIOS","cpus":4,"options":"compressor=lz4","memory":{"regions":7,"usable_regions":3,
//! "usable_bytes":266584064,"usable_frames":65084,"bootloader_bytes":1048576,"firmware_bytes":4295491584,
//! "usable_end":268304384,"unordered":false},"frames":{"managed":64870,"free":40632,"used":23908,"per_cpu":330,
//! "free_per_order":[2,1,1,0,1,1,0,1,0,1,39],"allocs":31250,"frees":7342,"alloc_failures":0},
//! "heap":{"size":16777216,"used":2359296,"mapped":4194304},"kmap":{"maps":48211,"unmaps":48211,"invlpg":48211,
//! "max_depth":2},"paging":{"maps":1310,"unmaps":12,"invlpg":12,"tables":9},"breakpoints":0,
//! "pools":[{"pool":"zsmalloc","compressor":"lz4","pages":2048,"stored_pages":1980,"same_pages":205,"huge_pages":0,
//! "reject_compress_poor":68,"reject_alloc_fail":0,"orig_data_size":8110080,"compr_data_size":3514368,
//! "mem_used_total":4096000,"sparse_pages":620,"pages_compacted":250,"store_ns":23817,"load_ns":9120,
//! "mismatches":0}],"failures":[]}
//! EXAMPLE-END
//! ```
//!
//! Read back: 1980 of 2048 pages were stored (205 same-filled, 68 refused as poor, none kept whole);
//! 8110080 bytes of pages (`orig_data_size` = 1980 × 4096) took 3514368 bytes of compressed objects
//! (`compr_data_size`) in 1000 pool frames (`mem_used_total` = 1000 × 4096 = 4096000), so the pool's
//! overhead over its objects is 4096000 / 3514368 − 1 = 16.6 %. After two of every three pages were
//! freed the pool held 620 frames (`sparse_pages`) and compaction gave back 250 (`pages_compacted`).
//! No option but `compressor=lz4` was given, nothing failed (`failures` is empty), and as the other
//! workloads did not run, `swap`, `files`, `all` and `sweep` are absent.
//!
//! # Contracts
//!
//! - Every struct denies unknown fields. Every field that is not an `Option` (or `pools`, empty unless
//!   the pools workload ran) is required: a line without it fails to read.
//! - `Option` members are left out when `None` and read back as `None` when absent (or `null`).
//! - Counters are `u64`; the only floats are percentages ([`IoAvoidedReport::percent`],
//!   [`FilesReport::percent_avoided`]), which [`percent_avoided`] makes finite and rounds to 0.1, so
//!   they print short and read back equal.
//! - [`to_line`] allocates and never fails for these types; [`from_line`] never panics: bad input is an
//!   [`Error`].
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};
pub use serde_json::error::Category as JsonCategory;

#[cfg(test)]
mod tests;

/// What starts a stats line, space included.
pub const PREFIX: &str = "@@stats ";

/// The top-level object: what boot learned, the memory counters at the end of the run, and the results
/// of the one workload that ran.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The firmware that booted the kernel: `"BIOS"`, `"UEFI"` or `"unknown firmware"`
    /// (`memmap::Firmware::name`).
    pub firmware: String,
    /// CPUs QEMU reports through fw_cfg; 0 when unknown (no fw_cfg device). How many of them run is
    /// [`Report::cpus_up`].
    pub cpus: u64,
    /// The kernel options as received (`key=value` words, xtask's `-fw_cfg opt/zkernel/...`), trimmed;
    /// empty when none (Linux: `/proc/cmdline`).
    pub options: String,
    /// The bootloader's memory map, summarised.
    pub memory: MemoryReport,
    /// The frame (buddy) allocator's counters.
    pub frames: FramesReport,
    /// The kernel heap.
    pub heap: HeapReport,
    /// The per-CPU temporary-mapping window (`kmap_local`).
    pub kmap: KmapReport,
    /// The kernel's own page-table walker.
    pub paging: PagingReport,
    /// `int3` breakpoints taken and returned from.
    pub breakpoints: u64,
    /// CPUs that came up: the boot CPU and every application processor that reported in.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cpus_up: u64,
    /// TLB shootdowns sent (`arch::tlb`): changes of a mapping another CPU may cache, each waited for.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tlb_shootdowns: u64,
    /// The kernel's locks (`arch::lock`): acquisitions, and those that found another CPU holding the
    /// lock — the measure zcache's designers took of their pool lock.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locks: Vec<LockReport>,
    /// `workload=pools`: one entry per pool (zsmalloc, zbud); a pool whose run failed has no entry.
    /// Empty, and left out of the line, for the other workloads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<PoolReport>,
    /// `workload=pools`: the allocator table, every pool on the same objects (`pooltable`), one row per
    /// (workload, pool) — the counts the host's `pool-table` prints for the same workloads. Empty, and
    /// left out of the line, when the table did not run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pool_table: Vec<PoolTableRow>,
    /// `workload=swap`: the swap workload without and with tmem behind frontswap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<SwapReport>,
    /// `workload=files`: the page cache over the file disk without and with cleancache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<FilesReport>,
    /// `workload=all`: both workloads at once over one tmem; `None` when that run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<AllReport>,
    /// `workload=sweep`: the swap workload at each memory size for each configuration (disk only,
    /// frontswap + tmem on each pool, zram), to compare them at equal memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepReport>,
    /// `workload=soak`: what the soak did and found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<SoakReport>,
    /// Why this run must not pass, one reason each (a mismatch, a stale hit, a run that failed); empty
    /// for a run that passed.
    pub failures: Vec<String>,
}

impl Report {
    /// Whether the run passed: no failure was recorded.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

fn one() -> u64 {
    1
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// `workload=soak` (`workload::soak`): rounds of swap, tmem and zram work with faults injected.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct SoakReport {
    /// `soak_seconds`, as asked.
    pub seconds: u64,
    /// CPUs the tmem rounds ran on.
    pub cpus: u64,
    pub rounds: u64,
    /// Accesses, puts, gets, flushes, writes and reads made, every round's together.
    pub operations: u64,
    /// Pages read back and compared with their checksum.
    pub pages_verified: u64,
    /// Disk requests failed on purpose.
    pub device_faults: u64,
    /// Pool and workload frame allocations failed on purpose.
    pub frame_faults: u64,
    /// Heap admissions and page-table allocations failed on purpose (where the kernel has a fallback: a
    /// tmem store's admission against the heap, a region mapping's page table).
    pub meta_faults: u64,
    /// Pages lost (their swap-in read failed), and how many reads were failed on purpose while a
    /// swap-in could meet them: the two must be equal.
    pub pages_lost: u64,
    pub lost_expected: u64,
    /// Pages that came back with other bytes (must be 0).
    pub mismatches: u64,
}

/// One kernel lock's counters (`arch::lock::LockStats`; per-CPU locks of one kind summed under one name).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct LockReport {
    pub name: String,
    pub acquisitions: u64,
    /// Acquisitions that had to wait for another CPU.
    pub contentions: u64,
}

/// The memory map as the bootloader handed it over (`memmap::Summary`; Linux prints the same as the
/// `BIOS-e820` lines at boot).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct MemoryReport {
    /// All regions in the map, of every kind (e820 entries).
    pub regions: u64,
    /// Regions of kind usable (e820 `usable`).
    pub usable_regions: u64,
    /// Bytes in usable regions.
    pub usable_bytes: u64,
    /// Whole 4 KiB frames in usable regions: what a frame allocator can hand out.
    pub usable_frames: u64,
    /// Bytes the bootloader occupies.
    pub bootloader_bytes: u64,
    /// Bytes in firmware regions (reserved, ACPI, MMIO), address space rather than RAM.
    pub firmware_bytes: u64,
    /// One past the highest usable byte: how far a frame table must reach (Linux `max_pfn` << 12).
    pub usable_end: u64,
    /// Whether some regions overlapped or came out of address order.
    pub unordered: bool,
}

/// The buddy allocator (`frame::FrameStats`). Always `managed == free + used + per_cpu` and
/// `free == Σ free_per_order[o] << o`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct FramesReport {
    /// Frames the allocator manages (Linux zone `managed_pages`).
    pub managed: u64,
    /// Frames in the buddy lists (Linux `nr_free_pages`).
    pub free: u64,
    /// Frames allocated to owners.
    pub used: u64,
    /// Frames parked in per-CPU lists (Linux per-cpu pageset `count`).
    pub per_cpu: u64,
    /// Free blocks (not frames) on each order's list, order 0 first (Linux `/proc/buddyinfo`).
    pub free_per_order: Vec<u64>,
    /// Successful allocations, buddy and per-CPU (Linux `pgalloc_*`).
    pub allocs: u64,
    /// Successful frees, buddy and per-CPU (Linux `pgfree`).
    pub frees: u64,
    /// Allocations refused for lack of memory.
    pub alloc_failures: u64,
}

/// The kernel heap (`mm::heap::HeapStats`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct HeapReport {
    /// Bytes in the heap's arenas (boot arena and main region).
    pub size: u64,
    /// Bytes allocated now.
    pub used: u64,
    /// Bytes of the main region mapped so far (it is mapped on demand).
    pub mapped: u64,
}

/// The per-CPU temporary-mapping window (`mm::kmap::KmapStats`; Linux `kmap_local_page`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct KmapReport {
    /// Mappings made.
    pub maps: u64,
    /// Mappings released.
    pub unmaps: u64,
    /// TLB entries flushed with `invlpg` on unmap.
    pub invlpg: u64,
    /// Deepest task-context nesting seen (Linux bounds it by `KM_MAX_IDX`).
    pub max_depth: u64,
}

/// The kernel's page-table walker (`mm::paging::PagingStats`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct PagingReport {
    /// Leaf mappings made.
    pub maps: u64,
    /// Leaf mappings removed.
    pub unmaps: u64,
    /// TLB entries flushed with `invlpg`.
    pub invlpg: u64,
    /// Page-table frames this walker allocated (Linux `nr_page_table_pages`).
    pub tables: u64,
}

/// One pool of the pools demo: its store's counters with every page held (`zstore::StoreStats`, named
/// as zram's `mm_stat` and zswap's debugfs files), then what freeing, compaction and read-back did.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct PoolReport {
    /// The pool: `"zsmalloc"`, `"zbud"`, … (`ZPool::name`; zswap's `zpool` parameter).
    pub pool: String,
    /// The compressor: `"lz4"` or `"deflate"` (`Algorithm::name`; zswap's `compressor`, zram's
    /// `comp_algorithm`).
    pub compressor: String,
    /// Pages offered to the store.
    pub pages: u64,
    /// Pages held, every kind (zswap `stored_pages`).
    pub stored_pages: u64,
    /// Of `stored_pages`: same-filled pages kept as one word (zram `same_pages`, zswap
    /// `same_filled_pages`).
    pub same_pages: u64,
    /// Of `stored_pages`: poor pages kept whole (zram `huge_pages`).
    pub huge_pages: u64,
    /// Stores refused because the page did not compress below the threshold (zswap
    /// `reject_compress_poor`).
    pub reject_compress_poor: u64,
    /// Stores refused by the pool's `malloc` (zswap `reject_alloc_fail`).
    pub reject_alloc_fail: u64,
    /// `stored_pages` × 4096 (zram `orig_data_size`).
    pub orig_data_size: u64,
    /// Bytes of pool objects held (zram `compr_data_size`).
    pub compr_data_size: u64,
    /// The pool's frames × 4096 (zram `mem_used_total`).
    pub mem_used_total: u64,
    /// Pool frames after two of every three stored pages were freed, before compaction
    /// (`PoolRun::sparse_pages`).
    pub sparse_pages: u64,
    /// Pool frames that compaction then gave back (zram `pages_compacted`).
    pub pages_compacted: u64,
    /// Mean cost of one store, in nanoseconds of guest time (TCG: compare pools, not hardware).
    pub store_ns: u64,
    /// Mean cost of one load, in nanoseconds of guest time.
    pub load_ns: u64,
    /// Pages that did not read back identical, before and after compaction (must be 0).
    pub mismatches: u64,
}

/// One row of the allocator table (`pooltable::Measured`): one pool on one workload, every object
/// `malloc`'d and written, counted with every object live, read back, freed. Keyed by (`workload`,
/// `pool`) as the host's `pool-table` keys its JSON rows, so host and kernel rows compare field by field.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct PoolTableRow {
    /// The workload's key: `"p75"`, `"perl"`, `"perl_x8"`, `"uniform"` (`pooltable::Workload::key`).
    pub workload: String,
    /// The pool's key: `"zbud"`, `"xvmalloc"`, `"xcfmalloc"`, `"zsmalloc-1"` … `"zsmalloc-16"`
    /// (`pooltable::PoolKind::key`).
    pub pool: String,
    /// Objects the pool took.
    pub stored: u64,
    /// Objects refused as larger than the pool's `max_size`.
    pub refused: u64,
    /// Frames held with every object live, without the reserve (`Measured::pool_pages`).
    pub pool_pages: u64,
    /// Empty frames held by design beside them (xcfmalloc's reserve; 0 for the others).
    pub reserve_pages: u64,
    /// Bytes of the stored objects (`Measured::stored_bytes`): the ideal is this ÷ 4096 pages.
    pub object_bytes: u64,
    /// Bookkeeping bytes with every object live, in the pool's pages and beside them
    /// (`Measured::metadata`).
    pub metadata_bytes: u64,
}

/// `workload=swap`: every run, then the disk I/O tmem avoided per pattern and backend.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct SwapReport {
    /// For each pattern: the run with tmem off, then one per tmem backend. A run that failed is absent.
    pub runs: Vec<SwapRunReport>,
    /// One per run with tmem whose pattern also has a run with tmem off.
    pub io_avoided: Vec<IoAvoidedReport>,
    /// `swap_cpus` > 1: the runs with one worker per CPU (`workload::swap_smp`), which replace `runs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub smp_runs: Vec<SmpSwapRunReport>,
}

/// One multi-CPU run of the swap workload (`workload::swap_smp::SmpRunResult`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct SmpSwapRunReport {
    /// `"disk"`, `"tmem-zsmalloc"` (or another pool) in front of the disk, or `"zram-zsmalloc"`.
    pub config: String,
    pub pattern: String,
    /// Workers, one per CPU.
    pub cpus: u64,
    /// `"split"` or `"shared"` (`swap_sharing`).
    pub sharing: String,
    /// Accesses of all workers, fills included.
    pub accesses: u64,
    /// Owned bytes that came back changed, plus dirty first touches (must be 0).
    pub mismatches: u64,
    /// Disk I/O of the run (reads + writes).
    pub io: u64,
    /// Wall time of the whole run (first worker started to last finished).
    pub ms: u64,
    /// The swapper's counters (`raced_faults`: faults another CPU had resolved first).
    pub swap: SwapStatsReport,
}

/// One run of the swap workload (`workload::swap_run::RunResult`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct SwapRunReport {
    /// The access pattern after the fill: `"sequential"`, `"random"` or `"zipf"`.
    pub pattern: String,
    /// frontswap's tmem backend: `"off"` (every swap-out goes to the disk), `"zsmalloc"` or `"zbud"`.
    pub tmem: String,
    /// Pages in the demand-paged region.
    pub region_pages: u64,
    /// Most region pages resident at once.
    pub budget_pages: u64,
    /// Accesses made, the fill included.
    pub accesses: u64,
    /// Pages whose checksum did not match when read (must be 0).
    pub mismatches: u64,
    /// Fresh pages that did not read as zeros on their first touch (must be 0).
    pub dirty_zero_fills: u64,
    /// Swap-disk I/O: `swap.disk_reads + swap.disk_writes`.
    pub io: u64,
    /// Milliseconds of guest time the run took (TCG).
    pub ms: u64,
    /// The swap subsystem's counters.
    pub swap: SwapStatsReport,
    /// Bytes of tmem's own index when the workload ended (its maps' keys and values: objects, pampds,
    /// store order), memory beside the pool frames; 0 without tmem.
    pub tmem_index_bytes: u64,
    /// Bytes of the zram device's slot table (16 per slot), allocated when the device was made; 0 when zram
    /// was not the device.
    pub zram_table_bytes: u64,
    /// tmem at the end of the run; `None` with tmem off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmem_stats: Option<TmemReport>,
    /// The run over time: one point every `max(64, accesses / 64)` accesses and one at the end, so at
    /// most 66 points a run (`cargo xtask report` plots them). Empty, and left out, for runs that kept
    /// none (the sweep's and the soak's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<SeriesPoint>,
}

/// One point of a swap run's time series (`SwapRunReport::series`): the counters after `access`
/// accesses, fill included.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct SeriesPoint {
    /// Accesses made so far, the fill included.
    pub access: u64,
    /// Region pages resident.
    pub resident: u64,
    /// Pool frames held: tmem's (`TmemReport::pool_pages`) or the zram device's.
    pub pool_pages: u64,
    /// Pages held compressed: tmem's `stored_pages`, or the zram device's pages.
    pub stored_pages: u64,
    /// Bytes of compressed objects held (the ratio is `stored_pages × 4096 / compr_data_size`).
    pub compr_data_size: u64,
    /// Swap-disk reads and writes so far (`SwapStatsReport::disk_reads`, `disk_writes`).
    pub disk_reads: u64,
    pub disk_writes: u64,
    /// zsmalloc's free bytes inside partly used zspages (tmem's zsmalloc pools; 0 without one).
    pub frag_free_bytes: u64,
}

/// The swap subsystem's counters for one run (names after Linux's `/proc/vmstat`). The kernel counts in
/// this very type (`zkernel::swap::SwapStats` is an alias of it), so the report cannot drift from it.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct SwapStatsReport {
    /// Region page faults handled (`pgfault`).
    pub faults: u64,
    /// Faults on never-touched pages, given a zeroed frame.
    pub zero_fills: u64,
    /// Faults on swap entries (`pgmajfault`: `pswpin` plus frontswap loads).
    pub swapins: u64,
    /// Pages reclaimed (`pswpout` plus frontswap stores).
    pub swapouts: u64,
    /// Pages read from the swap disk (`pswpin`).
    pub disk_reads: u64,
    /// Pages written to the swap disk, writeback included (`pswpout`).
    pub disk_writes: u64,
    /// Swap-ins served by frontswap (debugfs `frontswap/loads`).
    pub frontswap_loads: u64,
    /// Swap-outs frontswap took (debugfs `frontswap/succ_stores`).
    pub frontswap_stores: u64,
    /// Swap-outs frontswap refused, which went to the disk (debugfs `frontswap/failed_stores`).
    pub frontswap_refused: u64,
    /// tmem pages written back to the disk to make room (zswap `written_back_pages`; the kernel's
    /// `SwapStats::written_back`).
    pub written_back_pages: u64,
    /// Victims kept resident because no swap slot was free.
    pub out_of_swap: u64,
    /// Frame allocations for a faulting page that failed, and page tables its mapping needed that could
    /// not be had (each is followed by a reclaim and a retry).
    pub alloc_failures: u64,
    /// Region pages resident at the end.
    pub resident: u64,
    /// The most region pages ever resident at once.
    pub peak_resident: u64,
    /// Swap slots in use at the end.
    pub slots_used: u64,
    /// The most swap slots ever in use at once.
    pub peak_slots: u64,
    /// Most pool frames tmem held at once, sampled at each frontswap store.
    pub peak_tmem_pages: u64,
    /// cleancache pages tmem dropped to make room for this run's frontswap stores.
    pub cleancache_dropped: u64,
    /// Reclaims of a clean page whose swap copy was kept (the swap cache): no store, no write.
    pub clean_reclaims_saved: u64,
    /// Swap-ins that kept their slot and copy (the swap cache).
    pub swapins_kept: u64,
    /// Kept pages found written at reclaim (their copy was rewritten).
    pub dirtied_after_swapin: u64,
    /// Fault steps that had to go over the memory size N (nothing more could move).
    pub over_budget_steps: u64,
    /// Faults found already resolved when their CPU got the swapper's lock: another CPU faulted the
    /// same page in first (only with several CPUs on one region).
    #[serde(default)]
    pub raced_faults: u64,
    /// Pages whose swapped copy could not be read back (a device error, a corrupt object): their PTE
    /// holds the lost marker and every access fails with "page lost".
    #[serde(default)]
    pub pages_lost: u64,
    /// tmem pages whose writeback to the disk failed: each stayed in tmem.
    #[serde(default)]
    pub writeback_failures: u64,
    /// Swap-outs that failed (a device error, a pool out of frames): each page stayed resident and
    /// reclaim went on to the next victim (`swap::MAX_FAILED_SWAPOUTS` failures in one reclaim end it
    /// with the first error).
    #[serde(default)]
    pub swapout_failures: u64,
    /// Reclaims that ended after `swap::MAX_FAILED_SWAPOUTS` failed swap-outs, every one of them zram's
    /// pool finding no frame: zram out of memory, not broken. The step went over and was counted in
    /// `over_budget_steps`; the run went on.
    #[serde(default)]
    pub zram_oom_steps: u64,
    /// The most pool frames (tmem or zram) held at the end of a reclaim.
    pub peak_pool_pages: u64,
    /// The most resident pages + pool frames at the end of a reclaim (≤ N under equal memory).
    pub peak_mem_pages: u64,
    /// Pages written to the zram device.
    pub zram_writes: u64,
    /// Pages read from the zram device.
    pub zram_reads: u64,
    /// Writes the zram device refused: at its memory limit, or its pool found no frame.
    pub zram_refused: u64,
}

impl SwapStatsReport {
    /// Disk I/O operations: pages read plus pages written.
    pub fn io(&self) -> u64 {
        self.disk_reads + self.disk_writes
    }
}

/// tmem's counters. tmem counts in this very type (`tmem::TmemStats` is an alias of it), so the report
/// cannot drift from it. Names follow zswap, zram and zcache where one exists.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct TmemReport {
    /// Puts to a live pool: stored + `put_failures` + `refused_full`.
    pub puts: u64,
    /// Puts that found a page under their key and flushed it first.
    pub puts_replaced: u64,
    /// Puts refused by the page store: incompressible, out of memory, other pool errors (not `Full`).
    pub put_failures: u64,
    /// Puts refused because tmem was full and could not make room.
    pub refused_full: u64,
    /// Of `put_failures`: pages that did not compress below the threshold (zswap `reject_compress_poor`).
    pub reject_compress_poor: u64,
    /// Of `put_failures`: the allocator refused, even after the retry (zswap `reject_alloc_fail`).
    pub reject_alloc_fail: u64,
    /// Times tmem became full (zswap `pool_limit_hit`).
    pub pool_limit_hit: u64,
    /// Stores retried because the allocator was out of memory: after compaction under pressure freed a
    /// frame, or after dropping ephemeral pages.
    pub oom_retries: u64,
    /// Gets from a live pool: `get_hits` + `get_misses` + gets that found a corrupt page.
    pub gets: u64,
    pub get_hits: u64,
    pub get_misses: u64,
    /// Pages removed by `flush_page`.
    pub flush_pages: u64,
    /// Objects removed by `flush_object` (calls that found at least one page).
    pub flush_objects: u64,
    /// Pages removed by `flush_object`.
    pub flush_object_pages: u64,
    /// Pools created, ever.
    pub created_pools: u64,
    /// Pools destroyed, ever.
    pub destroyed_pools: u64,
    /// Pages freed by `destroy_pool`.
    pub destroyed_pages: u64,
    /// Ephemeral pages tmem dropped to make room (limit or out of memory), one by one in object order or
    /// a frame's worth at a time by zbud eviction. Ephemeral gets are not drops.
    pub ephemeral_drops: u64,
    /// Pool frames the ephemeral reclaim steps gave back (both modes): the fall of `pool_pages` across
    /// each drop or eviction. `ephemeral_drops ÷ ephemeral_frames_freed` is the pages lost per frame won.
    pub ephemeral_frames_freed: u64,
    /// Of `ephemeral_frames_freed`: zbud frames freed by eviction ([`EphemeralReclaim::ZbudFrames`];
    /// zcache's `zcache_evicted_buddied_pages + zcache_evicted_unbuddied_pages`).
    pub zbud_frames_evicted: u64,
    /// zbud evictions that did not go through: a frame held an object tmem has no key for (an internal
    /// inconsistency; should stay 0). tmem then dropped a page in object order instead.
    pub zbud_evict_failures: u64,
    /// Of `reject_compress_poor`: persistent pages above `zv_max_zsize` (zcache `zcache_compress_poor`).
    pub compress_poor: u64,
    /// Of `reject_compress_poor`: persistent pages above `zv_max_mean_zsize` while the mean was too
    /// (zcache `zcache_mean_compress_poor`).
    pub mean_compress_poor: u64,
    /// Of `put_failures`: persistent puts refused by `zv_page_count_policy_percent` (zcache counted them
    /// only in `zcache_failed_pers_puts`).
    pub page_count_policy_refused: u64,
    /// Of `put_failures`: puts the kernel's metadata gate refused because its heap could not promise the
    /// put's bookkeeping (tmem `set_metadata_gate`; a refused store goes to the swap device).
    pub refused_metadata: u64,
    /// Persistent pages handed to a writeback sink and removed (zswap `written_back_pages`).
    pub written_back_pages: u64,
    /// Gets and writebacks that found stored bytes failing their check.
    pub corrupt: u64,
    /// Pool frames given back by compaction: the one tmem runs when full, compaction under pressure, and
    /// [`Tmem::compact`] (zram `pages_compacted`).
    pub pages_compacted: u64,
    /// Compactions of all pools tmem ran because it was full (at the limit, before dropping ephemeral
    /// pages or refusing a put).
    pub limit_compactions: u64,
    /// Compactions of one zsmalloc pool run by compaction under pressure (module header): its excess
    /// passed [`Config::compact_threshold_percent`], or an allocator was out of memory and the pool could
    /// free a frame. Not counted in `limit_compactions`.
    pub compactions_triggered: u64,
    /// Of `pages_compacted`: frames those `compactions_triggered` gave back.
    pub shrinker_pages_compacted: u64,
    /// Allocator refusals to free a pampd tmem let go of (an internal inconsistency; should stay 0).
    pub free_errors: u64,
    /// Frames a destroyed pool still held after every page was freed (should stay 0).
    pub leaked_pages: u64,
    /// Operations that named a pool that does not exist.
    pub no_such_pool: u64,
    /// Pages held now, in all pools (zswap `stored_pages`).
    pub stored_pages: u64,
    /// Of `stored_pages`: in persistent pools.
    pub persistent_pages: u64,
    /// Of `stored_pages`: in ephemeral pools.
    pub ephemeral_pages: u64,
    /// Of `stored_pages`: same-filled pages, which hold no pool memory (zswap `same_filled_pages`).
    pub same_pages: u64,
    /// Bytes the held pages' compressed objects take (zram `compr_data_size`).
    pub compr_data_size: u64,
    /// Pool frames held now, all pools (zswap `pool_total_size` / 4096).
    pub pool_pages: u64,
    /// The configured limit, in pool frames.
    pub limit_pages: u64,
    /// The accept threshold, in pool frames.
    pub accept_pages: u64,
    /// Whether tmem is in the full state.
    pub full: bool,
    /// Live pools.
    pub pools: u64,
}

impl TmemReport {
    /// Ephemeral pages dropped per pool frame freed by reclaim, in thousandths; `None` before any frame
    /// was freed. Lower is better: with `tmem::EphemeralReclaim::ZbudFrames` over zbud pools it lies between
    /// 1000 and 2000 (each eviction drops one or two pages and frees one frame); object order can drop
    /// pages that free nothing, so it has no upper bound.
    pub const fn drops_per_frame_milli(&self) -> Option<u64> {
        if self.ephemeral_frames_freed == 0 {
            return None;
        }
        Some((self.ephemeral_drops as u128 * 1000 / self.ephemeral_frames_freed as u128) as u64)
    }

    /// The inverse: frames freed per page dropped, in thousandths (`None` before any drop); at most
    /// 1000 with zbud eviction, at least 500 when every evicted frame was buddied.
    pub const fn frames_per_drop_milli(&self) -> Option<u64> {
        if self.ephemeral_drops == 0 {
            return None;
        }
        Some((self.ephemeral_frames_freed as u128 * 1000 / self.ephemeral_drops as u128) as u64)
    }
}

/// The disk I/O tmem avoided for one pattern and backend: the run with tmem against the run without.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct IoAvoidedReport {
    /// The access pattern of both runs.
    pub pattern: String,
    /// The backend of the run with tmem: `"zsmalloc"` or `"zbud"`.
    pub tmem: String,
    /// Swap-disk I/O of the run with tmem off.
    pub io_without: u64,
    /// Swap-disk I/O of the run with tmem.
    pub io_with: u64,
    /// `percent_avoided(io_without, io_with)`: the share of swap I/O tmem avoided, in percent, to 0.1
    /// (zcache's headline figure).
    pub percent: f64,
}

/// `workload=files`: the file workload without and with cleancache, and the disk reads it avoided.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct FilesReport {
    /// The run without cleancache, then the run with it. A run that failed is absent.
    pub runs: Vec<FileRunReport>,
    /// File-disk reads of the run without cleancache (0 if it failed).
    pub disk_reads_without: u64,
    /// File-disk reads of the run with cleancache (0 if it failed).
    pub disk_reads_with: u64,
    /// `percent_avoided(disk_reads_without, disk_reads_with)`, in percent, to 0.1.
    pub percent_avoided: f64,
}

/// One run of the file workload (`workload::files::FileResult`), with the page cache's counters
/// (`pagecache::PageCacheStats`) flat in it. Always `misses == cleancache_hits + disk_reads`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct FileRunReport {
    /// cleancache's tmem backend: `"off"`, `"zbud"` or `"zsmalloc"`.
    pub cleancache: String,
    /// Files in the set.
    pub files: u64,
    /// Pages in the set.
    pub set_pages: u64,
    /// Pages the page cache may hold, as configured (`files_cache`).
    pub cache_pages: u64,
    /// Page reads the workload made.
    pub reads: u64,
    /// Reads served from the page cache.
    pub hits: u64,
    /// Reads that missed the page cache.
    pub misses: u64,
    /// Of `misses`: served by cleancache (debugfs `cleancache/succ_gets` as the page cache saw them).
    pub cleancache_hits: u64,
    /// Of `misses`: reads issued to the file disk, failed ones included.
    pub disk_reads: u64,
    /// Pages evicted from the page cache (each offered to cleancache when it is on).
    pub evictions: u64,
    /// Files invalidated, as when a file is rewritten (`invalidate_inode_pages2`).
    pub invalidated_files: u64,
    /// Reads whose bytes did not match the file (must be 0).
    pub mismatches: u64,
    /// Reads of an invalidated page served by cleancache before a disk read (must be 0).
    pub stale_hits: u64,
    /// Of `disk_reads`: failed.
    pub disk_errors: u64,
    /// Of `evictions`: dropped without going to cleancache because their frame could not be mapped.
    pub evict_map_errors: u64,
    /// Cached pages dropped by invalidation.
    pub invalidations: u64,
    /// Frame allocations retried after evicting one more page.
    pub alloc_retries: u64,
    /// Reads served but not cached.
    pub uncached_reads: u64,
    /// Frames the memory refused to take back (should stay 0).
    pub free_errors: u64,
    /// Pages cached when the workload ended.
    pub cached_pages: u64,
    /// The page cache's capacity, in pages.
    pub capacity: u64,
    /// Milliseconds of guest time the run took (TCG).
    pub ms: u64,
    /// Workers, one per CPU, over the one page cache (`files_cpus`; lines of older kernels: 1).
    #[serde(default = "one")]
    pub cpus: u64,
    /// cleancache's counters; `None` with cleancache off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleancache_stats: Option<CleancacheReport>,
    /// tmem when the workload ended; `None` with cleancache off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmem_stats: Option<TmemReport>,
}

/// cleancache's counters (Linux's debugfs names). cleancache counts in this very type
/// (`tmem::cleancache::CleancacheStats` is an alias of it).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct CleancacheReport {
    /// Gets served by tmem (Linux `succ_gets`).
    pub succ_gets: u64,
    /// Gets tmem could not serve: misses and corrupt pages (Linux `failed_gets`).
    pub failed_gets: u64,
    /// Pages offered by `put_page`, stored or not (Linux `puts`).
    pub puts: u64,
    /// `invalidate_page` calls (Linux `invalidates`), whether or not tmem held the page.
    pub invalidates: u64,
    /// Of `puts`: refused by tmem.
    pub failed_puts: u64,
    /// Of `failed_gets`: pages that failed the compressor's check (removed all the same).
    pub corrupt_gets: u64,
    /// Of `invalidates`: calls that found a page and removed it.
    pub invalidated_pages: u64,
    /// `invalidate_inode` calls.
    pub invalidated_inodes: u64,
    /// Pages removed by `invalidate_inode`.
    pub invalidated_inode_pages: u64,
    /// Filesystems initialised, ever.
    pub inited_fs: u64,
    /// Filesystems invalidated (umount).
    pub invalidated_fs: u64,
    /// Pages removed by `invalidate_fs`.
    pub invalidated_fs_pages: u64,
}

/// `workload=all`: one swap run and one file run at once over one tmem.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct AllReport {
    /// The swap run (tmem on, zsmalloc).
    pub swap: SwapRunReport,
    /// The file run (cleancache on).
    pub files: FileRunReport,
    /// cleancache pages tmem dropped, for any reason (`tmem_stats.ephemeral_drops` of the file run).
    pub ephemeral_drops: u64,
    /// Of `ephemeral_drops`: dropped to make room for frontswap's stores (`swap.cleancache_dropped`).
    pub dropped_for_frontswap: u64,
}

/// `workload=sweep`: compression at equal memory. One boot runs the same swap workload (same pages,
/// same accesses) at each memory size N from 20 % to 100 % of the region, once per configuration, and
/// counts the swap-disk I/O each needed. N counts everything the configuration keeps in RAM for the
/// region — resident pages plus the frames of its compressed pool — so a pool's frames are taken from
/// the pages that may stay resident (zcache's question: is a page of compressed pages worth more than a
/// page of plain ones?). `cargo xtask bench --sweep` draws the table and the plot from it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct SweepReport {
    /// Pages in the demand-paged region (`swap_factor` × `swap_mem`): 100 % of the sweep's axis.
    pub region_pages: u64,
    /// Accesses each run made, the fill included (the same for every point).
    pub accesses: u64,
    /// Where the region's page contents came from (the kernel's page source name: the ramdisk's page
    /// file or the synthetic pages).
    pub pages: String,
    /// One per configuration and memory size, in the order the kernel ran them. A configuration that
    /// could not run at some N is still listed, with `fits` false.
    pub points: Vec<SweepPoint>,
}

/// One run of the sweep: one configuration at one memory size N. Always `io == disk_reads +
/// disk_writes`, and with `fits`, `peak_resident + peak_pool_pages <= mem_pages`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct SweepPoint {
    /// The configuration: `"disk"` (no compression: every swap-out goes to the disk),
    /// `"tmem-zsmalloc"`, `"tmem-zbud"`, `"tmem-xvmalloc"`, `"tmem-xcfmalloc"` (frontswap + tmem on
    /// that pool, writing back to the disk when full) or `"zram-zsmalloc"` (a zram swap device).
    pub config: String,
    /// N, the memory the run had, in pages: resident region pages plus pool frames never exceeded it.
    pub mem_pages: u64,
    /// N in percent of `region_pages` (20, 30, …, 100).
    pub percent: u64,
    /// Swap-disk I/O: `disk_reads + disk_writes`; meaningless when `fits` is false.
    pub io: u64,
    /// Pages read from the swap disk (`pswpin`).
    pub disk_reads: u64,
    /// Pages written to the swap disk, writeback included (`pswpout`).
    pub disk_writes: u64,
    /// Whether the configuration kept resident pages + pool frames within N for the whole run. False
    /// when it could not (zram full, a pool too large for N): the point has no figure.
    pub fits: bool,
    /// Pages whose checksum did not match when read (must be 0).
    pub mismatches: u64,
    /// Most pool frames the compressed store held at once (0 for `"disk"`).
    pub peak_pool_pages: u64,
    /// Most region pages resident at once.
    pub peak_resident: u64,
    /// Clean pages reclaimed without a write because the swap disk or the pool still held an
    /// up-to-date copy (Linux: a swap-cache page whose slot is still valid is dropped, not written).
    pub clean_reclaims_saved: u64,
    /// Milliseconds of guest time the run took (TCG).
    pub ms: u64,
}

/// Why a line did not read as a [`Report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The line does not start with [`PREFIX`].
    MissingPrefix,
    /// The JSON after the prefix is malformed (`Syntax`), ends early (`Eof`), or does not fit the types
    /// (`Data`: an unknown field, a missing field, a wrong type).
    Json {
        category: JsonCategory,
        /// Where, in the JSON after the prefix (1-based; 0 when serde_json does not know).
        line: usize,
        column: usize,
        /// serde_json's message, e.g. ``unknown field `x`, expected one of …``.
        message: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MissingPrefix => write!(f, "not a stats line: it does not start with {PREFIX:?}"),
            Error::Json { message, .. } => write!(f, "stats line: {message}"),
        }
    }
}

impl core::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Json { category: e.classify(), line: e.line(), column: e.column(), message: e.to_string() }
    }
}

/// The stats line for `report`: [`PREFIX`] then the report as one line of JSON, no newline.
///
/// Serializing these types cannot fail (no maps, no fallible `Serialize`); if it ever did, the line
/// would be [`PREFIX`] and `!` and the error, which [`from_line`] reports as a JSON syntax error rather
/// than the kernel panicking at the end of a run.
pub fn to_line(report: &Report) -> String {
    match serde_json::to_string(report) {
        Ok(json) => {
            let mut line = String::with_capacity(PREFIX.len() + json.len());
            line.push_str(PREFIX);
            line.push_str(&json);
            line
        }
        Err(e) => {
            let mut line = String::from(PREFIX);
            line.push('!');
            line.push_str(&e.to_string());
            line
        }
    }
}

/// Read a stats line back. `line` must start with [`PREFIX`]; whitespace after the JSON (a serial
/// line's `\r\n`) is allowed, anything else after it is an error.
pub fn from_line(line: &str) -> Result<Report, Error> {
    let json = line.strip_prefix(PREFIX).ok_or(Error::MissingPrefix)?;
    Ok(serde_json::from_str(json)?)
}

/// The share of `without` that `with` avoided, in percent rounded to the nearest 0.1 (halves away from
/// zero): `100 × (without − with) / without`. Negative when `with` is larger; 0.0 when `without` is 0
/// (there was nothing to avoid). Computed in integers, so the result is the `f64` nearest a one-decimal
/// number and prints short (`70.5`, not `70.49999…`).
pub fn percent_avoided(without: u64, with: u64) -> f64 {
    if without == 0 {
        return 0.0;
    }
    let num = 1000 * (i128::from(without) - i128::from(with));
    let den = i128::from(without);
    // Round half away from zero: (2·num ± den) / (2·den), truncating toward zero.
    let tenths = (2 * num + num.signum() * den) / (2 * den);
    tenths as f64 / 10.0
}
