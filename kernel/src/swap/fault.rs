//! Fault-in: what the swapper does when the workload touches a region page that is not present.
//!
//! ```text
//!  handle_fault(addr) ──► fault_in(page)
//!     make_room(acct, 1): reclaim (reclaim.rs) and shrink the pool until one more frame fits:
//!         equal memory: resident + 1 + pool frames ≤ N;  fixed: resident + 1 ≤ N
//!     alloc_frame: a WORKLOAD frame (reclaiming and retrying when none is free)
//!     empty PTE  ──► zero the frame                                   (a minor fault: zero_fills)
//!     swap entry ──► frontswap load, else zram or the disk              (a major fault: swapins)
//!     Region::map, dirty bit clear ──► only now the swap cache decides: keep the slot and its copy
//!                  (a clean page reclaimed again costs nothing), or release them (swap_cache=exclusive)
//! ```

use frame::{FrameError, Owner};
use swap::cache::SwapIn;
use swap::entry::Pte as Kind;
use swap::{Backing, SwapCopy, SwapEntry};
use x86_64::structures::paging::PageTableFlags;

use super::{SwapError, Swapper};
use crate::mm::frames::OwnedFrame;
use crate::mm::paging::MapError;
use crate::mm::region::RegionError;
use crate::zcache;

/// Extra reclaims tried when a frame allocation fails.
const ALLOC_RETRIES: u32 = 8;

impl Swapper {
    pub(super) fn fault_in(&mut self, page: u64) -> Result<(), SwapError> {
        let entry = self.region.entry(page)?;
        let kind = SwapEntry::classify(entry.raw());
        match kind {
            // Another CPU faulted on the same page first and mapped it while this one waited for the
            // lock (only not-present faults reach here: arch sends protection faults to the fatal
            // path). The access is retried and succeeds: Linux's "the PTE changed under us" case.
            Kind::Present => {
                self.stats.raced_faults += 1;
                return Ok(());
            }
            Kind::Bad(_) => return Err(SwapError::BadPte { page, raw: entry.raw() }),
            // Lost before: every access fails the same way.
            Kind::Lost => return Err(SwapError::PageLost { page, cause: None }),
            _ => {}
        }
        self.make_room()?;
        let mut frame = self.alloc_frame()?;
        // The page trace (one atomic load when off): the fault, then the load's steps.
        let traced = crate::mm::trace::is_page(page);
        if traced {
            match kind {
                Kind::Swap(e) => crate::println!(
                    "trace: page {page}: fault: not present, PTE holds swap entry (type {}, offset {}); new frame \
                     pfn {:#x}",
                    e.ty,
                    e.offset,
                    frame.pfn().0
                ),
                _ => crate::println!(
                    "trace: page {page}: fault: not present, never touched: zero fill of new frame pfn {:#x}",
                    frame.pfn().0
                ),
            }
            crate::mm::trace::record_frame(Some(frame.pfn()));
        }
        // On an error the frame is dropped (freed): it was never mapped.
        let fill = self.fill(&mut frame, page, kind);
        if traced {
            crate::mm::trace::take();
        }
        let backing = match fill {
            Ok(b) => b,
            Err(e) => match (kind, lost_cause(&e)) {
                (Kind::Swap(se), Some(cause)) => return Err(self.lose(page, se, cause)),
                _ => return Err(e),
            },
        };
        // Mapped with the dirty bit clear: a write through the region sets it, and reclaim reads it to
        // know whether the kept copy is still the page's. Mapped young (accessed set, Linux's
        // `pte_mkyoung`): the access that faulted has not been retried yet, and with several CPUs another
        // one's reclaim could otherwise take the page as an unused victim before it ever is — each CPU
        // evicting the page the other just brought in. With one CPU it changes nothing: the retried
        // access sets the bit before any other fault can run.
        let flags = PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE | PageTableFlags::ACCESSED;
        let pfn = frame.pfn();
        // If the mapping is refused, the swap entry is still in place and its copy (tmem, zram or disk)
        // still valid: only the frame goes (dropped with the error).
        self.map_frame(page, frame, flags)?;
        // The page is mapped: from here on the fault is resolved whatever happens to the bookkeeping, so
        // errors are recorded for the run's report instead of failing the access.
        self.clock.insert(page);
        self.stats.faults += 1;
        self.stats.resident = self.clock.len() as u64;
        self.stats.peak_resident = self.stats.peak_resident.max(self.stats.resident);
        if traced {
            crate::println!("trace: page {page}: mapped at frame pfn {:#x}", pfn.0);
        }
        // Only now does the swap cache decide about the copy (Linux's do_swap_page order: swap_free last).
        if let (Kind::Swap(e), Some(backing)) = (kind, backing) {
            let release = match self.cache.swapped_in(page, SwapCopy { slot: e.offset, backing }) {
                Ok(SwapIn::Keep) => {
                    if traced {
                        crate::println!(
                            "trace:   the swap cache keeps slot {} and its copy until the page is written",
                            e.offset
                        );
                    }
                    None
                }
                Ok(SwapIn::Release(copy)) => Some(copy.slot),
                Err(err) => {
                    self.error.get_or_insert(SwapError::Cache(err));
                    Some(e.offset)
                }
            };
            if let Some(slot) = release
                && let Err(err) = self.release_slot(slot)
            {
                self.error.get_or_insert(err);
            }
        }
        self.check_invariant();
        Ok(())
    }

    /// Fill a fresh frame for `page`: zeros for a never-touched page, its swapped copy for a swap entry
    /// (and where that copy lives: in memory, frontswap or zram, or on the disk).
    fn fill(&mut self, frame: &mut OwnedFrame, page: u64, kind: Kind) -> Result<Option<Backing>, SwapError> {
        frame
            .with_bytes(|bytes| match kind {
                Kind::Swap(e) => self.read_in(e, bytes).map(Some),
                _ => {
                    bytes.fill(0);
                    self.stats.zero_fills += 1;
                    Ok(None)
                }
            })
            .map_err(|error| SwapError::Kmap { page, error })?
    }

    /// Swap-in: frontswap first, then zram or the disk. Nothing is given up here: the caller maps the
    /// page, then the swap cache keeps or releases the copy. A copy in memory (tmem or zram) counts as
    /// [`Backing::Frontswap`] for the swap cache: dropping it gives memory back.
    fn read_in(&mut self, e: SwapEntry, out: &mut [u8; 4096]) -> Result<Backing, SwapError> {
        self.stats.swapins += 1;
        if self.front && zcache::frontswap::load(e.ty, e.offset, out)? {
            self.stats.frontswap_loads += 1;
            return Ok(Backing::Frontswap);
        }
        if self.zram {
            crate::zram::read_page(e.offset, out).map_err(SwapError::Zram)?;
            self.stats.zram_reads += 1;
            return Ok(Backing::Frontswap);
        }
        self.disk.lock().read_page(e.offset, out).map_err(SwapError::Disk)?;
        self.stats.disk_reads += 1;
        Ok(Backing::Disk)
    }

    /// The only copy of `page` (at `e`) cannot be read back: mark the PTE lost, free the slot and whatever
    /// holds the copy, count it. The workload's access then fails with "page lost"; every other page is
    /// untouched (Linux: a swap-in I/O error → `SIGBUS`, the PTE a poisoned marker).
    fn lose(&mut self, page: u64, e: SwapEntry, cause: &'static str) -> SwapError {
        if let Err(err) = self.region.set_entry(page, crate::mm::paging::Pte::from_raw(swap::entry::LOST)) {
            return SwapError::Region(err);
        }
        if let Err(err) = self.release_slot(e.offset) {
            self.error.get_or_insert(err);
        }
        self.stats.pages_lost += 1;
        log::warn!("swap: region page {page} lost: its copy at slot {} could not be read ({cause})", e.offset);
        SwapError::PageLost { page, cause: Some(cause) }
    }

    /// A slot's copy is no longer wanted: drop it from frontswap or zram and free the slot (Linux's
    /// `swap_free` → `frontswap_invalidate_page` / `zram_slot_free_notify`).
    /// The slot is freed even when dropping the copy fails: a stale tmem copy at a reused slot is
    /// replaced by frontswap's duplicate-store rule and dropped at swapoff, so it is never served.
    pub(super) fn release_slot(&mut self, slot: u64) -> Result<(), SwapError> {
        let mut first = None;
        if self.front
            && let Err(e) = zcache::frontswap::invalidate_page(super::SWAP_TYPE, slot)
        {
            first = Some(SwapError::Tmem(e));
        }
        if self.zram
            && let Err(e) = crate::zram::slot_free_notify(slot)
        {
            first.get_or_insert(SwapError::Zram(e));
        }
        if let Err(e) = self.map.free(slot) {
            first.get_or_insert(SwapError::Slot(e));
        }
        self.stats.slots_used = self.map.used();
        first.map_or(Ok(()), Err)
    }

    /// Map `frame` at `page`. The mapping may need a page table, and that frame may not be had (memory
    /// short, or `frames::set_meta_fail_every`): reclaim one page and try again, as [`Self::alloc_frame`]
    /// does. Linux's fault returns `VM_FAULT_OOM` there; with reclaimable pages this kernel retries.
    fn map_frame(&mut self, page: u64, mut frame: OwnedFrame, flags: PageTableFlags) -> Result<(), SwapError> {
        let mut attempt = 0;
        loop {
            match self.region.map(page, frame, flags) {
                Ok(_) => return Ok(()),
                Err((RegionError::Map(MapError::OutOfFrames(_)), back)) if attempt < ALLOC_RETRIES => {
                    attempt += 1;
                    frame = back;
                    self.stats.alloc_failures += 1;
                    // Nothing to reclaim (`Ok(false)`) still retries: an injected refusal passes next time. A
                    // failed swap-out (counted in swapout_failures, its page still resident) is passed over
                    // too, as make_room does: the retries are bounded.
                    let _ = self.reclaim_one();
                    self.make_room()?;
                }
                Err((e, _frame)) => return Err(SwapError::Region(e)),
            }
        }
    }

    fn alloc_frame(&mut self) -> Result<OwnedFrame, SwapError> {
        let mut last = FrameError::OutOfMemory { order: 0 };
        for _ in 0..=ALLOC_RETRIES {
            match OwnedFrame::alloc(Owner::WORKLOAD) {
                Ok(frame) => return Ok(frame),
                Err(e) => {
                    last = e;
                    self.stats.alloc_failures += 1;
                    // Reclaim one page and try the allocation again, bounded by ALLOC_RETRIES. A swap-out
                    // that fails here (a disk error, a pool out of frames) put its victim back and was
                    // counted in swapout_failures: pass over it, as make_room does; the fault itself has
                    // not failed (found by `cargo xtask soak`: every 13th frame and every 7th write
                    // failing). Nothing to reclaim (`Ok(false)`, an empty clock: zram's pool can hold
                    // nearly all of N) still retries, as map_frame does: a refusal that was injected, or a
                    // frame another CPU gives back, passes next time; real exhaustion fails every retry.
                    if !self.clock.is_empty() {
                        let _ = self.reclaim_one();
                    }
                    // That reclaim's store may have grown the pool: make room under the accounting again
                    // before the retried frame is mapped.
                    self.make_room()?;
                }
            }
        }
        Err(SwapError::OutOfMemory(last))
    }
}

/// Whether a failed swap-in read loses the page, and why: the device failed or the stored copy is
/// corrupt. Anything else (no kmap slot, a lock held by this CPU) is a kernel fault, not a lost page.
fn lost_cause(e: &SwapError) -> Option<&'static str> {
    match e {
        SwapError::Disk(_) => Some("swap disk read failed"),
        SwapError::Zram(_) => Some("zram read failed"),
        SwapError::Tmem(crate::zcache::ZcacheError::Frontswap(_)) => Some("frontswap load failed: corrupt copy"),
        _ => None,
    }
}
