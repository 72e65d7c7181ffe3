//! Fault-in: what the swapper does when the workload touches a region page that is not present.
//!
//! ```text
//!  handle_fault(addr) ──► fault_in(page)
//!     resident ≥ budget? ──► reclaim_one (reclaim.rs) until there is room
//!     alloc_frame: a WORKLOAD frame (reclaiming and retrying when none is free)
//!     empty PTE  ──► zero the frame                         (a minor fault: zero_fills)
//!     swap entry ──► frontswap load, else the disk            (a major fault: swapins)
//!     Region::map ──► only now release_slot: drop the frontswap copy and free the slot
//! ```

use frame::{FrameError, Owner};
use swap::SwapEntry;
use swap::entry::Pte as Kind;
use x86_64::structures::paging::PageTableFlags;

use super::{SwapError, Swapper};
use crate::mm::frames::OwnedFrame;
use crate::zcache;

/// Extra reclaims tried when a frame allocation fails.
const ALLOC_RETRIES: u32 = 8;

impl Swapper {
    pub(super) fn fault_in(&mut self, page: u64) -> Result<(), SwapError> {
        let entry = self.region.entry(page)?;
        let kind = SwapEntry::classify(entry.raw());
        if let Kind::Bad(_) | Kind::Present = kind {
            // Present: the fault was not for a missing page (a protection fault): not ours.
            return Err(SwapError::BadPte { page, raw: entry.raw() });
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
        let mut frame = self.alloc_frame()?;
        // On an error the frame is dropped (freed): it was never mapped.
        self.fill(&mut frame, page, kind)?;
        let flags = PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE;
        // If the mapping is refused, the swap entry is still in place and its copy (tmem or disk) still
        // valid: only the frame goes (dropped with the error).
        self.region.map(page, frame, flags).map_err(|(e, _frame)| SwapError::Region(e))?;
        // Only now, with the page mapped again, does its swap copy go (Linux's do_swap_page order).
        if let Kind::Swap(e) = kind {
            self.release_slot(e)?;
        }
        self.clock.insert(page);
        self.stats.faults += 1;
        self.stats.resident = self.clock.len() as u64;
        self.stats.peak_resident = self.stats.peak_resident.max(self.stats.resident);
        Ok(())
    }

    /// Fill a fresh frame for `page`: zeros for a never-touched page, its swapped copy for a swap entry.
    fn fill(&mut self, frame: &mut OwnedFrame, page: u64, kind: Kind) -> Result<(), SwapError> {
        frame
            .with_bytes(|bytes| match kind {
                Kind::Swap(e) => self.read_in(e, bytes),
                _ => {
                    bytes.fill(0);
                    self.stats.zero_fills += 1;
                    Ok(())
                }
            })
            .map_err(|error| SwapError::Kmap { page, error })?
    }

    /// Swap-in: frontswap first, then the disk. Nothing is given up here: the caller maps the page,
    /// then [`Swapper::release_slot`] drops the swap copy.
    fn read_in(&mut self, e: SwapEntry, out: &mut [u8; 4096]) -> Result<(), SwapError> {
        let hit = self.front && zcache::frontswap::load(e.ty, e.offset, out)?;
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
            zcache::frontswap::invalidate_page(e.ty, e.offset)?;
        }
        self.map.free(e.offset).map_err(SwapError::Slot)?;
        self.stats.slots_used = self.map.used();
        Ok(())
    }

    fn alloc_frame(&mut self) -> Result<OwnedFrame, SwapError> {
        let mut last = FrameError::OutOfMemory { order: 0 };
        for _ in 0..=ALLOC_RETRIES {
            match OwnedFrame::alloc(Owner::WORKLOAD) {
                Ok(frame) => return Ok(frame),
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
}
