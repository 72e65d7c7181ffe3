//! The swap subsystem: a demand-paged region larger than the memory it may use, reclaim, swap entries in
//! page tables, frontswap in front of a virtio-blk swap disk.
//!
//! # The journey of one page (docs/swap.md follows it function by function)
//!
//! ```text
//!  workload touches REGION_BASE + p·4096 ──► #PF ──► arch::interrupts::page_fault ──► mm::fault::dispatch ──► handle_fault
//!    PTE empty      ──► fault_in: a WORKLOAD frame, zeroed through kmap, mapped  (a "minor" fault)
//!    PTE swap entry ──► fault_in: frontswap::load (tmem), else the disk; the slot is freed  ("major")
//!  resident pages ≥ budget ──► reclaim_one: Clock::victim (accessed bits) ──► swap_out
//!    swap_out: SwapMap::alloc slot s ──► PTE := SwapEntry{ty 0, s} ──► frontswap::store, else the disk
//!    tmem full ──► writeback: the oldest tmem pages go to the disk at their own slots (zswap's shrink)
//! ```
//!
//! # The room
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the installed [`Swapper`] behind one lock; [`install`], [`uninstall`], the region's fault handler `handle_fault` (reached through `mm::fault::dispatch`) |
//! | `fault.rs` | fault-in: a zeroed frame or a swap-in (frontswap, else the disk), then the mapping |
//! | `reclaim.rs` | reclaim: the clock's victim, swap-out to frontswap or the disk, tmem's writeback |
//! | `stats.rs` | [`SwapStats`] |
//!
//! The region lives in the lower half ([`REGION_BASE`]) as an `mm::region::Region`: the swapper owns its
//! pages and frames, and edits their PTEs through the region's safe calls (nothing here needs `unsafe_code`). Nothing
//! but the page-fault handler maps or unmaps region pages while a [`Swapper`] is installed, and the
//! handler runs with interrupts off on the faulting CPU, so the state is one lock ([`SWAP`]) taken by
//! the handler (with `try_lock`: a fault under it is fatal, not a deadlock), by
//! [`install`]/[`uninstall`] and by [`stats`]. The handler takes zcache's lock inside it (order: swap,
//! then zcache), also with `try_lock`.
//!
//! # I/O counted
//!
//! Every page written to or read from the swap disk is one I/O (`disk_writes`, `disk_reads`); pages
//! frontswap keeps in tmem cost none. With tmem off every swap-out is a disk write and every swap-in a
//! disk read, which is what `cargo xtask run --workload swap` compares against.
//!
//! # Failure, never loss
//!
//! * A frontswap store tmem refuses (incompressible, pool out of frames, tmem full) goes to the disk.
//! * No free slot: the victim stays resident (`out_of_swap` counted, reported once); the budget is
//!   exceeded rather than a page dropped.
//! * A frame allocation that fails (out of memory, or `fail_frame_every`): reclaim once more and retry.
//! * A failed swap-out (a disk error, zram's pool out of frames): the page is mapped back where it was
//!   and reclaim tries the next victim. After `swap::MAX_FAILED_SWAPOUTS` failures in one reclaim the
//!   access goes on over budget and the run reports the first error at its end ([`Finished::error`]),
//!   unless every one was zram's pool finding no frame: that is zram out of memory, as at its memory
//!   limit, so the step goes over (`zram_oom_steps`) and the run goes on.
//! * A swap-in gives up nothing until the page is mapped again: only then are its frontswap copy and
//!   its slot freed ([`Swapper::release_slot`]), as Linux's `do_swap_page` frees the swap entry last.
//! * A swap-in whose copy cannot be read (a disk or zram error, a frontswap copy that fails its check)
//!   loses that one page: its PTE becomes the lost marker, its slot and copy are freed, `pages_lost` is
//!   counted, and the access fails with `RegionError::PageLost` (Linux: SIGBUS). docs/reliability.md.

mod fault;
mod reclaim;
mod stats;

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::fmt;

use compress::Algorithm;
use frame::FrameError;
use memmap::layout::SCRATCH_BASE;
use spin::Mutex;
use swap::{Accounting, CacheMode, Clock, FixedBudget, MemoryBudget, SlotError, SwapCache, SwapMap};
use tmem::Backend;

use crate::arch::lock::{Lock, LockStats};
use crate::drivers::virtio_blk::{self, BlkDisk, BlkError};
use crate::mm::region::{Region, RegionError};
use crate::zcache::{self, ZcacheError};

pub use stats::SwapStats;

/// Where the workload region starts: 256 GiB into the lower-half scratch slot, clear of the tests'
/// scratch mappings.
pub const REGION_BASE: u64 = SCRATCH_BASE + (1 << 38);
/// The one swap type (device) zkernel has.
pub const SWAP_TYPE: u8 = 0;
/// Most region pages (256 GiB).
pub const MAX_REGION_PAGES: u64 = 1 << 26;

/// Whose memory the compressed pool uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemMode {
    /// Resident pages + pool frames ≤ `budget_pages` at every step: the pool comes out of the same RAM,
    /// as in Linux (`swap_mode=equal`, the default).
    Equal,
    /// Resident pages ≤ `budget_pages`, the pool on top of it (`swap_mode=fixed`).
    Fixed,
}

/// Where swapped pages go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// The virtio-blk swap disk (with frontswap in front of it when `tmem` is set).
    Disk,
    /// The zram device (`crate::zram`): compressed RAM, no disk.
    Zram,
}

/// How one swap run is set up.
#[derive(Debug, Clone, Copy)]
pub struct SwapConfig {
    /// Pages in the demand-paged region.
    pub region_pages: u64,
    /// The workload's memory N in pages (`swap_mem`): see [`MemMode`].
    pub budget_pages: u64,
    /// Whose memory the pool uses.
    pub mode: MemMode,
    /// The swap device.
    pub device: Device,
    /// What a swap-in keeps (the swap cache).
    pub cache: CacheMode,
    /// tmem backend for frontswap, or `None` for no tmem (every swap-out goes to the disk).
    pub tmem: Option<Backend>,
    /// Most pool frames tmem may hold: `tmem_max_pool_percent` of N under [`MemMode::Equal`] (it is the
    /// pool's cap then), of RAM under [`MemMode::Fixed`].
    pub tmem_limit_pages: u64,
    /// Swap slots to use (at most the disk's pages).
    pub slots: u64,
    /// The compressor of frontswap's stores (when this run installs zcache).
    pub algorithm: Algorithm,
}

/// Why the swap subsystem could not go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapError {
    /// No virtio-blk disk with serial "swap".
    NoSwapDisk,
    /// A swapper is already installed.
    Busy,
    /// The configuration cannot work (zero budget, more slots than the disk has, …).
    BadConfig(&'static str),
    /// No frame for a faulting page even after reclaiming.
    OutOfMemory(FrameError),
    /// The region (its page tables, or a frame's mapping) refused a change.
    Region(RegionError),
    /// The swap disk failed.
    Disk(BlkError),
    /// A PTE in the region held neither a mapping nor a swap entry.
    BadPte { page: u64, raw: u64 },
    /// A swap entry named a slot that was not in use.
    Slot(SlotError),
    /// No kmap slot to reach the frame of a region page.
    Kmap { page: u64, error: crate::mm::kmap::KmapError },
    /// No swapper is installed.
    NotInstalled,
    /// tmem or frontswap failed in a way that is not a refusal.
    Tmem(ZcacheError),
    /// The zram device failed in a way that is not a refusal.
    Zram(crate::zram::ZramDevError),
    /// The swap cache's bookkeeping refused a call (a kernel bug; nothing changed).
    Cache(swap::CacheError),
    /// The page's swapped copy could not be read back (`cause`: the device error or corruption); its
    /// PTE now holds the lost marker and every access to it fails (`RegionError::PageLost`).
    PageLost { page: u64, cause: Option<&'static str> },
}

impl fmt::Display for SwapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwapError::NoSwapDisk => write!(f, "no swap disk (virtio-blk with serial \"swap\")"),
            SwapError::Busy => write!(f, "a swap region is already installed"),
            SwapError::BadConfig(why) => write!(f, "bad swap configuration: {why}"),
            SwapError::OutOfMemory(e) => write!(f, "out of memory: no frame for a faulting page ({e})"),
            SwapError::Region(e) => write!(f, "region: {e:?}"),
            SwapError::Disk(e) => write!(f, "swap disk: {e:?}"),
            SwapError::BadPte { page, raw } => {
                write!(f, "PTE of region page {page} is {raw:#x}: neither a page nor a swap entry")
            }
            SwapError::Slot(e) => write!(f, "swap slot: {e:?}"),
            SwapError::Kmap { page, error } => write!(f, "no kmap slot for the frame of region page {page}: {error:?}"),
            SwapError::NotInstalled => write!(f, "no swap region is installed"),
            SwapError::Tmem(e) => write!(f, "tmem: {e}"),
            SwapError::Zram(e) => write!(f, "{e}"),
            SwapError::Cache(e) => write!(f, "swap cache: {e:?}"),
            SwapError::PageLost { page, cause } => {
                write!(f, "region page {page} is lost")?;
                cause.map_or(Ok(()), |c| write!(f, " ({c})"))
            }
        }
    }
}

impl From<RegionError> for SwapError {
    fn from(e: RegionError) -> Self {
        SwapError::Region(e)
    }
}

impl From<ZcacheError> for SwapError {
    fn from(e: ZcacheError) -> Self {
        SwapError::Tmem(e)
    }
}

/// The installed swap state.
struct Swapper {
    cfg: SwapConfig,
    region: Arc<Region>,
    clock: Clock,
    map: SwapMap,
    disk: &'static Mutex<BlkDisk>,
    /// Whether frontswap (in [`crate::zcache`]) is in front of the disk.
    front: bool,
    /// Whether the zram device is the swap device.
    zram: bool,
    /// Whether this swapper installed zcache itself (and removes it at the end).
    owns_zcache: bool,
    /// How resident pages and pool frames are charged.
    acct: Accounting,
    /// The kept copies of resident pages (the swap cache).
    cache: SwapCache,
    stats: SwapStats,
    /// The first reclaim error the fault handler met and survived (the access went on over budget); the
    /// run reports it at its end.
    error: Option<SwapError>,
    reported_oos: bool,
}

/// The installed swapper: taken by the page-fault handler and by install/uninstall only.
static SWAP: Lock<Option<Box<Swapper>>> = Lock::new("swap", 20, None);

/// The swap subsystem's lock.
pub fn lock_stats() -> LockStats {
    SWAP.stats()
}

/// Install a swapper for a fresh region. The region's pages are all empty until touched.
pub fn install(cfg: SwapConfig) -> Result<(), SwapError> {
    let disk = virtio_blk::disk("swap").ok_or(SwapError::NoSwapDisk)?;
    if cfg.budget_pages == 0 || cfg.region_pages == 0 {
        return Err(SwapError::BadConfig("region and budget must be at least one page"));
    }
    let capacity = disk.lock().capacity_pages();
    if cfg.slots > capacity {
        return Err(SwapError::BadConfig("more swap slots than the swap disk has pages"));
    }
    if cfg.region_pages > MAX_REGION_PAGES {
        return Err(SwapError::BadConfig("region above 256 GiB"));
    }
    if cfg.device == Device::Zram && cfg.tmem.is_some() {
        return Err(SwapError::BadConfig("frontswap goes in front of the disk, not of zram"));
    }
    let n = cfg.budget_pages;
    let acct = match cfg.mode {
        // The pool's cap: tmem's limit (zswap's max_pool_percent of N); zram may use all but one page.
        MemMode::Equal => {
            let cap = if cfg.device == Device::Zram { n - 1 } else { cfg.tmem_limit_pages.min(n - 1) };
            Accounting::Equal(MemoryBudget { total: n, pool_cap: cap })
        }
        MemMode::Fixed => Accounting::Fixed(FixedBudget { resident: n }),
    };
    // The swapper's lock first (the documented order: swap, then zcache), so a busy swapper is refused
    // before zcache is touched.
    let mut slot = SWAP.lock();
    if slot.is_some() {
        return Err(SwapError::Busy);
    }
    if cfg.device == Device::Zram {
        let limit = acct.pool_cap().unwrap_or(0);
        crate::zram::install(cfg.slots, limit).map_err(SwapError::Zram)?;
    }
    let region = match Region::claim(REGION_BASE, cfg.region_pages, handle_fault) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            if cfg.device == Device::Zram {
                crate::zram::uninstall();
            }
            return Err(e.into());
        }
    };
    let mut owns_zcache = false;
    if let Some(backend) = cfg.tmem {
        if !zcache::installed() {
            zcache::install(cfg.tmem_limit_pages, cfg.algorithm).map_err(|_| SwapError::Busy)?;
            owns_zcache = true;
        }
        if let Err(e) = zcache::frontswap::init(SWAP_TYPE, cfg.slots, backend) {
            if owns_zcache {
                zcache::uninstall();
            }
            return Err(SwapError::Tmem(e));
        }
    }
    *slot = Some(Box::new(Swapper {
        cfg,
        region,
        clock: Clock::new(),
        map: SwapMap::new(cfg.slots),
        disk,
        front: cfg.tmem.is_some(),
        zram: cfg.device == Device::Zram,
        owns_zcache,
        acct,
        cache: SwapCache::new(cfg.cache),
        stats: SwapStats::default(),
        error: None,
        reported_oos: false,
    }));
    Ok(())
}

/// The installed swapper's region, for the workload's accesses ([`Region::read`]/[`Region::write`]):
/// the copy runs without the swapper's lock, which the fault it may take needs.
pub fn region() -> Option<Arc<Region>> {
    SWAP.lock().as_ref().map(|s| s.region.clone())
}

/// What [`uninstall`] found and left.
#[derive(Debug, Clone, Copy)]
pub struct Finished {
    pub stats: SwapStats,
    /// tmem's counters when the workload ended (before teardown), if the run had tmem.
    pub tmem: Option<tmem::TmemStats>,
    /// tmem's counters after teardown: no page may be left.
    pub tmem_after: Option<tmem::TmemStats>,
    /// The zram device's `mm_stat` when the workload ended, and after teardown, if it was the device.
    pub zram: Option<zram::MmStat>,
    pub zram_after: Option<zram::MmStat>,
    /// tmem's index and zram's slot table in bytes when the workload ended (0 when absent).
    pub tmem_index_bytes: u64,
    pub zram_table_bytes: u64,
    /// The first error teardown met.
    pub error: Option<SwapError>,
}

/// Tear the region down: free every resident frame and every slot, empty tmem.
pub fn uninstall() -> Option<Finished> {
    let mut s = SWAP.lock().take()?;
    let tmem = if s.front { zcache::stats() } else { None };
    let zram = if s.zram { crate::zram::mm_stat() } else { None };
    let tmem_index_bytes = if s.front { zcache::index_bytes().unwrap_or(0) } else { 0 };
    let zram_table_bytes = if s.zram { crate::zram::table_bytes().unwrap_or(0) } else { 0 };
    let error = s.teardown().err();
    let tmem_after = if s.front { zcache::stats() } else { None };
    if s.owns_zcache {
        zcache::uninstall();
    }
    let zram_after = if s.zram { crate::zram::uninstall() } else { None };
    s.stats.clean_reclaims_saved = s.cache.stats.clean_reclaims_saved;
    s.stats.swapins_kept = s.cache.stats.swapins_kept;
    s.stats.dirtied_after_swapin = s.cache.stats.dirtied_after_swapin;
    Some(Finished {
        stats: s.stats,
        tmem,
        tmem_after,
        zram,
        zram_after,
        tmem_index_bytes,
        zram_table_bytes,
        error: s.error.or(error),
    })
}

/// Reclaim region page `page` now, from whichever CPU calls (the swap workload's `page_out` and
/// tests/smp_stress.rs, which reclaims a page another CPU keeps writing). `Ok(true)` when it went out.
pub fn reclaim_page(page: u64) -> Result<bool, SwapError> {
    let mut g = SWAP.lock();
    let s = g.as_mut().ok_or(SwapError::NotInstalled)?;
    if page >= s.cfg.region_pages {
        return Err(SwapError::BadConfig("page outside the region"));
    }
    let r = s.page_out(page);
    s.check_invariant();
    r
}

/// zswap's shrink, once, on demand: drop a kept in-memory copy, else write tmem's oldest page back to
/// the disk (`Reclaimer::shrink_pool`). `Ok(false)` when nothing could move. tests/device_faults.rs uses
/// it to make writeback meet a corrupt page at a chosen moment.
pub fn shrink_pool_once() -> Result<bool, SwapError> {
    use swap::Reclaimer;
    let mut g = SWAP.lock();
    let s = g.as_mut().ok_or(SwapError::NotInstalled)?;
    let r = s.shrink_pool();
    s.check_invariant();
    r
}

/// Counters of the installed swapper.
pub fn stats() -> Option<SwapStats> {
    SWAP.lock().as_ref().map(|s| s.stats)
}

/// The region's fault handler (registered with `mm::fault` by [`install`]): `true` when the fault is
/// resolved (the access is retried), `false` when it cannot be (the handler then reports a fatal fault;
/// the reason is logged first).
///
/// The fault runs in the faulting code's context, as a Linux page fault runs in its task's: it uses the
/// task kmap slots (the interrupted code holds none of them, it was copying region memory).
fn handle_fault(addr: u64, _write: bool) -> bool {
    // Another CPU's fault or reclaim holds the state: wait for it (with interrupts off; a TLB shootdown
    // it sends meanwhile comes as an NMI, which is still taken). This CPU holding it: a fault inside the
    // fault path, fatal.
    let Ok(mut guard) = SWAP.lock_or_recursion() else {
        return false;
    };
    let Some(s) = guard.as_mut() else { return false };
    let Some(page) = s.region.page_of(addr) else { return false };
    match s.fault_in(page) {
        Ok(()) => true,
        // Counted and reported by the swapper; the access fails with "page lost" (the copy's fixup).
        Err(SwapError::PageLost { .. }) => false,
        Err(e) => {
            log::error!("swap: fault at {addr:#x} (page {page}) failed: {e}");
            s.error.get_or_insert(e);
            false
        }
    }
}

impl Swapper {
    /// Drop whatever holds the copy at `slot` in memory: frontswap's (tmem) or zram's. A disk copy needs
    /// nothing: the slot is freed by the caller.
    fn drop_copy(&mut self, slot: u64) {
        if self.front {
            let _ = zcache::frontswap::invalidate_page(SWAP_TYPE, slot);
        }
        if self.zram {
            let _ = crate::zram::slot_free_notify(slot);
        }
    }

    /// Unmap and free every region page, free every slot, empty frontswap.
    fn teardown(&mut self) -> Result<(), SwapError> {
        use crate::mm::paging::Pte;
        use swap::SwapEntry;
        use swap::entry::Pte as Kind;
        let mut first = None;
        for page in 0..self.cfg.region_pages {
            let entry = match self.region.entry(page) {
                Ok(e) => e,
                Err(e) => {
                    first.get_or_insert(SwapError::Region(e));
                    continue;
                }
            };
            match SwapEntry::classify(entry.raw()) {
                Kind::None => continue,
                Kind::Present => {
                    // The workload has finished; the frame comes back and is freed as it drops, and a
                    // copy the swap cache kept for the page is released with its slot.
                    if let Err(e) = self.region.unmap(page, Pte::EMPTY) {
                        first.get_or_insert(SwapError::Region(e));
                    }
                    if let Some(copy) = self.cache.remove(page) {
                        self.drop_copy(copy.slot);
                        if let Err(err) = self.map.free(copy.slot) {
                            first.get_or_insert(SwapError::Slot(err));
                        }
                    }
                }
                Kind::Swap(e) => {
                    self.drop_copy(e.offset);
                    if let Err(err) = self.map.free(e.offset) {
                        first.get_or_insert(SwapError::Slot(err));
                    }
                    if let Err(e) = self.region.set_entry(page, Pte::EMPTY) {
                        first.get_or_insert(SwapError::Region(e));
                    }
                }
                Kind::Lost => {
                    if let Err(e) = self.region.set_entry(page, Pte::EMPTY) {
                        first.get_or_insert(SwapError::Region(e));
                    }
                }
                Kind::Bad(raw) => {
                    first.get_or_insert(SwapError::BadPte { page, raw });
                }
            }
        }
        self.clock = Clock::new();
        self.stats.resident = 0;
        self.stats.slots_used = self.map.used();
        if self.front {
            let _ = zcache::frontswap::invalidate_area(SWAP_TYPE);
        }
        first.map_or(Ok(()), Err)
    }
}
