//! The swap subsystem: a demand-paged region larger than the memory it may use, reclaim, swap entries in
//! page tables, frontswap in front of a virtio-blk swap disk.
//!
//! # The journey of one page (docs/swap.md follows it function by function)
//!
//! ```text
//!  workload touches REGION_BASE + p·4096 ──► #PF ──► arch::interrupts::page_fault ──► handle_fault
//!    PTE empty      ──► fault_in: a WORKLOAD frame, zeroed through kmap, mapped  (a "minor" fault)
//!    PTE swap entry ──► fault_in: frontswap::load (tmem), else the disk; the slot is freed  ("major")
//!  resident pages ≥ budget ──► reclaim_one: Clock::victim (accessed bits) ──► swap_out
//!    swap_out: SwapMap::alloc slot s ──► PTE := SwapEntry{ty 0, s} ──► frontswap::store, else the disk
//!    tmem full ──► writeback: the oldest tmem pages go to the disk at their own slots (zswap's shrink)
//! ```
//!
//! The region lives in the lower half ([`REGION_BASE`]); its page tables are ordinary ones built by
//! [`paging::write_leaf`]. Nothing but the page-fault handler maps or unmaps region pages while a
//! [`Swapper`] is installed, and the handler runs with interrupts off on the faulting CPU, so the state
//! is one lock ([`SWAP`]) taken by the handler (with `try_lock`: a fault under it is fatal, not a
//! deadlock), by [`install`]/[`uninstall`] and by [`stats`]. The handler takes zcache's lock inside it
//! (order: swap, then zcache), also with `try_lock`.
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
//! * A disk error on swap-out: the page is mapped back where it was, the access goes on over budget, and
//!   the run reports the error at its end ([`Finished::error`]).
//! * A swap-in gives up nothing until the page is mapped again: only then are its frontswap copy and
//!   its slot freed ([`Swapper::release_slot`]), as Linux's `do_swap_page` frees the swap entry last.

pub mod workload;

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt;

use compress::Algorithm;
use frame::{FrameError, Owner, Pfn};
use memmap::layout::SCRATCH_BASE;
use spin::Mutex;
use swap::entry::Pte;
use swap::{Clock, SlotError, SwapEntry, SwapMap};
use tmem::frontswap::FrontswapError;
use tmem::{Backend, TmemError};
use x86_64::structures::paging::PageTableFlags;

use crate::drivers::virtio_blk::{self, BlkDisk, BlkError};
use crate::mm::frames;
use crate::mm::frames::BuddyTables;
use crate::mm::kmap::kmap_local;
use crate::mm::paging::{self, MapError};
use crate::zcache;

/// Where the workload region starts: 256 GiB into the lower-half scratch slot, clear of the tests'
/// scratch mappings.
pub const REGION_BASE: u64 = SCRATCH_BASE + (1 << 38);
/// The one swap type (device) zkernel has.
pub const SWAP_TYPE: u8 = 0;
/// Most tmem pages written back to the disk per tmem-full event.
pub const WRITEBACK_BATCH: u64 = 32;
/// Extra reclaims tried when a frame allocation fails.
const ALLOC_RETRIES: u32 = 8;

const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// How one swap run is set up.
#[derive(Debug, Clone, Copy)]
pub struct SwapConfig {
    /// Pages in the demand-paged region.
    pub region_pages: u64,
    /// Most region pages resident at once.
    pub budget_pages: u64,
    /// tmem backend for frontswap, or `None` for no tmem (every swap-out goes to the disk).
    pub tmem: Option<Backend>,
    /// Most pool frames tmem may hold (the kernel's `tmem_max_pool_percent` of RAM).
    pub tmem_limit_pages: u64,
    /// Swap slots to use (at most the disk's pages).
    pub slots: u64,
    /// The compressor of frontswap's stores (when this run installs zcache).
    pub algorithm: Algorithm,
}

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
    pub written_back: u64,
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
}

impl SwapStats {
    /// Disk I/O operations (pages read plus pages written).
    pub fn io(&self) -> u64 {
        self.disk_reads + self.disk_writes
    }

    pub fn json(&self) -> String {
        alloc::format!(
            "{{\"faults\":{},\"zero_fills\":{},\"swapins\":{},\"swapouts\":{},\"disk_reads\":{},\"disk_writes\":{},\
             \"frontswap_loads\":{},\"frontswap_stores\":{},\"frontswap_refused\":{},\"written_back_pages\":{},\
             \"out_of_swap\":{},\"alloc_failures\":{},\"cleancache_dropped\":{},\"peak_resident\":{},\"peak_slots\":{},\"peak_tmem_pages\":{}}}",
            self.faults,
            self.zero_fills,
            self.swapins,
            self.swapouts,
            self.disk_reads,
            self.disk_writes,
            self.frontswap_loads,
            self.frontswap_stores,
            self.frontswap_refused,
            self.written_back,
            self.out_of_swap,
            self.alloc_failures,
            self.cleancache_dropped,
            self.peak_resident,
            self.peak_slots,
            self.peak_tmem_pages
        )
    }
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
    /// The page tables refused a change.
    Map(MapError),
    /// The swap disk failed.
    Disk(BlkError),
    /// A PTE in the region held neither a mapping nor a swap entry.
    BadPte { va: u64, raw: u64 },
    /// A swap entry named a slot that was not in use.
    Slot(SlotError),
    /// No kmap slot to reach the frame of the page at `va`.
    Kmap { va: u64, error: crate::mm::kmap::KmapError },
    /// The frame allocator refused a frame back.
    FreeFrame(FrameError),
    /// No swapper is installed.
    NotInstalled,
    /// tmem or frontswap failed in a way that is not a refusal.
    Tmem(&'static str),
}

impl fmt::Display for SwapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwapError::NoSwapDisk => write!(f, "no swap disk (virtio-blk with serial \"swap\")"),
            SwapError::Busy => write!(f, "a swap region is already installed"),
            SwapError::BadConfig(why) => write!(f, "bad swap configuration: {why}"),
            SwapError::OutOfMemory(e) => write!(f, "out of memory: no frame for a faulting page ({e})"),
            SwapError::Map(e) => write!(f, "page tables: {e:?}"),
            SwapError::Disk(e) => write!(f, "swap disk: {e:?}"),
            SwapError::BadPte { va, raw } => write!(f, "PTE of {va:#x} is {raw:#x}: neither a page nor a swap entry"),
            SwapError::Slot(e) => write!(f, "swap slot: {e:?}"),
            SwapError::Kmap { va, error } => write!(f, "no kmap slot for the frame of {va:#x}: {error:?}"),
            SwapError::FreeFrame(e) => write!(f, "a freed frame was refused: {e}"),
            SwapError::NotInstalled => write!(f, "no swap region is installed"),
            SwapError::Tmem(what) => write!(f, "tmem: {what}"),
        }
    }
}

impl From<MapError> for SwapError {
    fn from(e: MapError) -> Self {
        SwapError::Map(e)
    }
}

/// The installed swap state.
struct Swapper {
    cfg: SwapConfig,
    clock: Clock,
    map: SwapMap,
    disk: &'static Mutex<BlkDisk>,
    /// Whether frontswap (in [`crate::zcache`]) is in front of the disk.
    front: bool,
    /// Whether this swapper installed zcache itself (and removes it at the end).
    owns_zcache: bool,
    stats: SwapStats,
    /// The first reclaim error the fault handler met and survived (the access went on over budget); the
    /// run reports it at its end.
    error: Option<SwapError>,
    reported_oos: bool,
}

/// The installed swapper: taken by the page-fault handler and by install/uninstall only.
static SWAP: Mutex<Option<Box<Swapper>>> = Mutex::new(None);

fn page_va(page: u64) -> u64 {
    REGION_BASE + page * 4096
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
    if cfg.region_pages > (1 << 26) {
        return Err(SwapError::BadConfig("region above 256 GiB"));
    }
    // The swapper's lock first (the documented order: swap, then zcache), so a busy swapper is refused
    // before zcache is touched.
    let mut slot = SWAP.lock();
    if slot.is_some() {
        return Err(SwapError::Busy);
    }
    let mut owns_zcache = false;
    if let Some(backend) = cfg.tmem {
        if !zcache::installed() {
            zcache::install(cfg.tmem_limit_pages, cfg.algorithm).map_err(|_| SwapError::Busy)?;
            owns_zcache = true;
        }
        if !matches!(zcache::init_frontswap(SWAP_TYPE, cfg.slots, backend), Some(Ok(()))) {
            if owns_zcache {
                zcache::uninstall();
            }
            return Err(SwapError::Tmem("frontswap init refused"));
        }
    }
    *slot = Some(Box::new(Swapper {
        cfg,
        clock: Clock::new(),
        map: SwapMap::new(cfg.slots),
        disk,
        front: cfg.tmem.is_some(),
        owns_zcache,
        stats: SwapStats::default(),
        error: None,
        reported_oos: false,
    }));
    Ok(())
}

/// What [`uninstall`] found and left.
#[derive(Debug, Clone, Copy)]
pub struct Finished {
    pub stats: SwapStats,
    /// tmem's counters when the workload ended (before teardown), if the run had tmem.
    pub tmem: Option<tmem::TmemStats>,
    /// tmem's counters after teardown: no page may be left.
    pub tmem_after: Option<tmem::TmemStats>,
    /// The first error teardown met.
    pub error: Option<SwapError>,
}

/// Tear the region down: free every resident frame and every slot, empty tmem.
pub fn uninstall() -> Option<Finished> {
    let mut s = SWAP.lock().take()?;
    let tmem = if s.front { zcache::stats() } else { None };
    let error = s.teardown().err();
    let tmem_after = if s.front { zcache::stats() } else { None };
    if s.owns_zcache {
        zcache::uninstall();
    }
    Some(Finished { stats: s.stats, tmem, tmem_after, error: s.error.or(error) })
}

/// Counters of the installed swapper.
pub fn stats() -> Option<SwapStats> {
    SWAP.lock().as_ref().map(|s| s.stats)
}

/// Called by the page-fault handler: `true` when the fault was in the region and is resolved (the
/// access is retried), `false` when it is not ours or cannot be resolved (the handler then reports a
/// fatal fault; the reason is logged first).
///
/// The fault runs in the faulting code's context, as a Linux page fault runs in its task's: it uses the
/// task kmap slots (the interrupted code holds none of them, it was copying region memory).
pub fn handle_fault(addr: u64) -> bool {
    let Some(mut guard) = SWAP.try_lock() else {
        // A fault while the swap state is held: a fault inside the fault path. Fatal.
        return false;
    };
    let Some(s) = guard.as_mut() else { return false };
    if addr < REGION_BASE || addr >= page_va(s.cfg.region_pages) {
        return false;
    }
    let page = (addr - REGION_BASE) / 4096;
    match s.fault_in(page) {
        Ok(()) => true,
        Err(e) => {
            log::error!("swap: fault at {addr:#x} (page {page}) failed: {e}");
            s.error.get_or_insert(e);
            false
        }
    }
}

fn compressor_failed(_: compress::CompressError) -> SwapError {
    SwapError::Tmem("no compression stream")
}

impl Swapper {
    fn fault_in(&mut self, page: u64) -> Result<(), SwapError> {
        let va = page_va(page);
        let raw = paging::read_leaf(va)?;
        let pte = SwapEntry::classify(raw);
        if let Pte::Bad(_) | Pte::Present = pte {
            // Present: the fault was not for a missing page (a protection fault): not ours.
            return Err(SwapError::BadPte { va, raw });
        }
        while self.clock.len() as u64 >= self.cfg.budget_pages {
            match self.reclaim_one() {
                Ok(true) => {}
                // Out of swap: go over budget rather than lose a page.
                Ok(false) => break,
                // A swap-out failed (the victim is back where it was): note it for the run's report and
                // let this access complete over budget.
                Err(e) => {
                    log::error!("swap: reclaim failed: {e}");
                    self.error.get_or_insert(e);
                    break;
                }
            }
        }
        let pfn = self.alloc_frame()?;
        let filled = self.fill(pfn, va, pte);
        if let Err(e) = filled {
            // SAFETY: the frame was never mapped anywhere but a kmap slot that is gone.
            let _ = unsafe { frames::free_page(pfn) };
            return Err(e);
        }
        let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE;
        // SAFETY: the region page belongs to the swapper and the frame was just filled for it; the old
        // entry was empty or a swap entry, so no frame is dropped.
        if let Err(e) = unsafe { paging::write_leaf(va, pfn.addr() | flags.bits(), &mut BuddyTables) } {
            // The swap entry is still in place and its copy (tmem or disk) still valid: only the frame goes.
            // SAFETY: the mapping was refused, so the frame is mapped nowhere.
            let _ = unsafe { frames::free_page(pfn) };
            return Err(e.into());
        }
        // Only now, with the page mapped again, does its swap copy go (Linux's do_swap_page order).
        if let Pte::Swap(e) = pte {
            self.release_slot(e)?;
        }
        self.clock.insert(page);
        self.stats.faults += 1;
        self.stats.resident = self.clock.len() as u64;
        self.stats.peak_resident = self.stats.peak_resident.max(self.stats.resident);
        Ok(())
    }

    /// Fill a fresh frame for `va`: zeros for a never-touched page, its swapped copy for a swap entry.
    fn fill(&mut self, pfn: Pfn, va: u64, pte: Pte) -> Result<(), SwapError> {
        // SAFETY: the frame was just allocated for this fault; nothing else maps it.
        let mut m = unsafe { kmap_local(pfn) }.map_err(|e| SwapError::Kmap { va, error: e })?;
        match pte {
            Pte::Swap(e) => self.read_in(e, m.bytes()),
            _ => {
                m.bytes().fill(0);
                self.stats.zero_fills += 1;
                Ok(())
            }
        }
    }

    /// Swap-in: frontswap first, then the disk. Nothing is given up here: the caller maps the page,
    /// then [`Swapper::release_slot`] drops the swap copy.
    fn read_in(&mut self, e: SwapEntry, out: &mut [u8; 4096]) -> Result<(), SwapError> {
        let mut hit = false;
        if self.front {
            hit = zcache::try_with(|z| z.with_compressor(|tmem, fs, _, c| fs.load(tmem, c, e.ty, e.offset, out)))
                .ok_or(SwapError::Tmem("zcache is gone or held"))?
                .map_err(compressor_failed)?
                .map_err(|_| SwapError::Tmem("frontswap load failed"))?;
        }
        if hit {
            self.stats.frontswap_loads += 1;
        } else {
            self.disk.lock().read_page(e.offset, out).map_err(SwapError::Disk)?;
            self.stats.disk_reads += 1;
        }
        self.stats.swapins += 1;
        Ok(())
    }

    /// The page is mapped again: drop its frontswap copy and free its slot (Linux's `swap_free` →
    /// `frontswap_invalidate_page`). No swap cache here: the page is mapped writable, so it is dirty by
    /// definition and must be written again on its next swap-out.
    fn release_slot(&mut self, e: SwapEntry) -> Result<(), SwapError> {
        if self.front {
            zcache::try_with(|z| z.frontswap.invalidate_page(&mut z.tmem, e.ty, e.offset))
                .ok_or(SwapError::Tmem("zcache is gone or held"))?
                .map_err(|_| SwapError::Tmem("frontswap invalidate failed"))?;
        }
        self.map.free(e.offset).map_err(SwapError::Slot)?;
        self.stats.slots_used = self.map.used();
        Ok(())
    }

    fn alloc_frame(&mut self) -> Result<Pfn, SwapError> {
        let mut last = FrameError::OutOfMemory { order: 0 };
        for _ in 0..=ALLOC_RETRIES {
            match frames::alloc_page(Owner::WORKLOAD) {
                Ok(pfn) => return Ok(pfn),
                Err(e) => {
                    last = e;
                    self.stats.alloc_failures += 1;
                    if self.clock.is_empty() || !self.reclaim_one()? {
                        break;
                    }
                }
            }
        }
        Err(SwapError::OutOfMemory(last))
    }

    /// Reclaim one resident page. `Ok(false)`: no page could go (no resident page, or no swap slot).
    fn reclaim_one(&mut self) -> Result<bool, SwapError> {
        let Some(victim) = self.clock.victim(|p| paging::test_and_clear_accessed(page_va(p)).unwrap_or(false)) else {
            return Ok(false);
        };
        match self.swap_out(victim) {
            Ok(true) => Ok(true),
            Ok(false) => {
                self.clock.insert(victim);
                Ok(false)
            }
            // The frame could not be freed, but the page is safely swapped out: it is not resident.
            Err(e @ SwapError::FreeFrame(_)) => Err(e),
            // Every other error leaves the page mapped where it was.
            Err(e) => {
                self.clock.insert(victim);
                Err(e)
            }
        }
    }

    /// Move one resident page out: a slot, a swap entry in its PTE, its bytes to frontswap or the disk,
    /// its frame freed. `Ok(false)` when no slot is free (the page stays).
    fn swap_out(&mut self, page: u64) -> Result<bool, SwapError> {
        let va = page_va(page);
        let raw = paging::read_leaf(va)?;
        if SwapEntry::classify(raw) != Pte::Present {
            // The clock only holds resident pages; anything else is a kernel bug, and nothing is touched.
            return Err(SwapError::BadPte { va, raw });
        }
        let offset = match self.map.alloc() {
            Ok(s) => s,
            Err(SlotError::Full { slots }) => {
                self.stats.out_of_swap += 1;
                if !self.reported_oos {
                    self.reported_oos = true;
                    log::warn!(
                        "swap: out of swap space ({slots} slots in use): pages stay resident over the budget of {}",
                        self.cfg.budget_pages
                    );
                }
                return Ok(false);
            }
            Err(e) => return Err(SwapError::Slot(e)),
        };
        let entry = SwapEntry::new(SWAP_TYPE, offset).ok_or(SwapError::BadConfig("slot beyond the entry format"))?;
        // SAFETY: the page is the swapper's and no reference into it is live (the workload is stopped
        // in this fault); the frame comes back to us in the old entry.
        let old = match unsafe { paging::write_leaf(va, entry.to_pte(), &mut BuddyTables) } {
            Ok(old) => old,
            Err(e) => {
                let _ = self.map.free(offset);
                return Err(e.into());
            }
        };
        let pfn = Pfn::from_addr(old & ADDR_MASK);
        // SAFETY: the frame was this page's and is now unmapped from the region; only this kmap sees it.
        let written = match unsafe { kmap_local(pfn) } {
            Ok(mut m) => self.write_out(offset, m.bytes()),
            Err(error) => Err(SwapError::Kmap { va, error }),
        };
        if let Err(e) = written {
            // Put the page back where it was: nothing is lost.
            // SAFETY: restoring the mapping just removed, to the same frame.
            unsafe { paging::write_leaf(va, old, &mut BuddyTables) }?;
            let _ = self.map.free(offset);
            return Err(e);
        }
        // SAFETY: the frame's contents are safe in frontswap or on the disk and nothing maps it.
        unsafe { frames::free_page(pfn) }.map_err(SwapError::FreeFrame)?;
        self.stats.swapouts += 1;
        self.stats.resident = self.clock.len() as u64;
        self.stats.slots_used = self.map.used();
        self.stats.peak_slots = self.stats.peak_slots.max(self.map.used());
        Ok(true)
    }

    /// frontswap_store, else the disk. A full tmem first writes back its oldest pages (zswap's shrink)
    /// and the store is tried once more.
    fn write_out(&mut self, offset: u64, page: &[u8; 4096]) -> Result<(), SwapError> {
        if self.front {
            let disk = self.disk;
            let stats = &mut self.stats;
            let stored = zcache::try_with(|z| {
                z.with_compressor(|tmem, fs, _, c| {
                    for attempt in 0..2 {
                        let drops = tmem.stats().ephemeral_drops;
                        let r = fs.store(tmem, c, SWAP_TYPE, offset, page);
                        stats.cleancache_dropped += tmem.stats().ephemeral_drops - drops;
                        stats.peak_tmem_pages = stats.peak_tmem_pages.max(tmem.total_pages());
                        match r {
                            Ok(()) => return true,
                            Err(FrontswapError::Tmem(TmemError::Full)) if attempt == 0 => {
                                // zswap's shrink: write the oldest pages back to their own slots until
                                // the pools are below the accept threshold, at most a batch at a time.
                                let mut sink = |off: u64, p: &[u8; 4096]| disk.lock().write_page(off, p).is_ok();
                                let accept = tmem.config().accept_pages();
                                let mut written = 0;
                                while written < WRITEBACK_BATCH && tmem.total_pages() >= accept {
                                    match fs.writeback_oldest(tmem, c, SWAP_TYPE, &mut sink) {
                                        Ok(Some(_)) => written += 1,
                                        _ => break,
                                    }
                                }
                                stats.written_back += written;
                                stats.disk_writes += written;
                            }
                            Err(_) => return false,
                        }
                    }
                    false
                })
            })
            .ok_or(SwapError::Tmem("zcache is gone or held"))?
            .map_err(compressor_failed)?;
            if stored {
                self.stats.frontswap_stores += 1;
                return Ok(());
            }
            self.stats.frontswap_refused += 1;
        }
        self.disk.lock().write_page(offset, page).map_err(SwapError::Disk)?;
        self.stats.disk_writes += 1;
        Ok(())
    }

    /// Unmap and free every region page, free every slot, empty frontswap.
    fn teardown(&mut self) -> Result<(), SwapError> {
        let mut first = None;
        for page in 0..self.cfg.region_pages {
            let va = page_va(page);
            let raw = match paging::read_leaf(va) {
                Ok(r) => r,
                Err(e) => {
                    first.get_or_insert(SwapError::Map(e));
                    continue;
                }
            };
            match SwapEntry::classify(raw) {
                Pte::None => continue,
                Pte::Present => {
                    // SAFETY: the workload has finished; nothing references the region any more.
                    match unsafe { paging::write_leaf(va, 0, &mut BuddyTables) } {
                        Ok(old) => {
                            // SAFETY: the frame was this page's and is unmapped now.
                            let _ = unsafe { frames::free_page(Pfn::from_addr(old & ADDR_MASK)) };
                        }
                        Err(e) => {
                            first.get_or_insert(SwapError::Map(e));
                        }
                    }
                }
                Pte::Swap(e) => {
                    if self.front {
                        zcache::with(|z| z.frontswap.invalidate_page(&mut z.tmem, e.ty, e.offset));
                    }
                    if let Err(err) = self.map.free(e.offset) {
                        first.get_or_insert(SwapError::Slot(err));
                    }
                    // SAFETY: a swap entry maps no frame.
                    let _ = unsafe { paging::write_leaf(va, 0, &mut BuddyTables) };
                }
                Pte::Bad(raw) => {
                    first.get_or_insert(SwapError::BadPte { va, raw });
                }
            }
        }
        self.clock = Clock::new();
        self.stats.resident = 0;
        self.stats.slots_used = self.map.used();
        if self.front {
            zcache::with(|z| z.frontswap.invalidate_area(&mut z.tmem, SWAP_TYPE));
        }
        first.map_or(Ok(()), Err)
    }
}
