//! Reclaim: choose a resident page with the clock and move it out, to frontswap or to the swap disk.
//!
//! ```text
//!  reclaim_one ──► Clock::victim (second chance on the PTE's accessed bit)
//!     swap_out(page): a slot s ──► Region::unmap(page, swap entry {type 0, s}) gives the frame back
//!        ──► write_out: zcache::frontswap::store, else the disk (tmem full: writeback first)
//!        ──► the frame is dropped (freed); on any error the mapping is put back: nothing is lost
//! ```

use frame::Owner;
use swap::entry::Pte as Kind;
use swap::{SlotError, SwapEntry};
use x86_64::structures::paging::PageTableFlags;

use super::{SWAP_TYPE, SwapError, Swapper};
use crate::mm::paging::Pte;
use crate::zcache;

impl Swapper {
    /// Reclaim one resident page. `Ok(false)`: no page could go (no resident page, or no swap slot).
    pub(super) fn reclaim_one(&mut self) -> Result<bool, SwapError> {
        let region = self.region.clone();
        let Some(victim) = self.clock.victim(|p| region.test_and_clear_accessed(p).unwrap_or(false)) else {
            return Ok(false);
        };
        match self.swap_out(victim) {
            Ok(true) => Ok(true),
            Ok(false) => {
                self.clock.insert(victim);
                Ok(false)
            }
            // Every error leaves the page mapped where it was.
            Err(e) => {
                self.clock.insert(victim);
                Err(e)
            }
        }
    }

    /// Move one resident page out: a slot, a swap entry in its PTE, its bytes to frontswap or the disk,
    /// its frame freed. `Ok(false)` when no slot is free (the page stays).
    fn swap_out(&mut self, page: u64) -> Result<bool, SwapError> {
        let found = self.region.entry(page)?;
        if SwapEntry::classify(found.raw()) != Kind::Present {
            // The clock only holds resident pages; anything else is a kernel bug, and nothing is touched.
            return Err(SwapError::BadPte { page, raw: found.raw() });
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
        let Some(entry) = SwapEntry::new(SWAP_TYPE, offset) else {
            let _ = self.map.free(offset);
            return Err(SwapError::BadConfig("slot beyond the entry format"));
        };
        let mut frame = match self.region.unmap(page, Pte::from_raw(entry.to_pte())) {
            Ok(f) => f,
            Err(e) => {
                let _ = self.map.free(offset);
                return Err(e.into());
            }
        };
        let written = match frame.with_bytes(|bytes| self.write_out(offset, bytes)) {
            Ok(r) => r,
            Err(error) => Err(SwapError::Kmap { page, error }),
        };
        if let Err(e) = written {
            // Put the page back where it was: nothing is lost.
            let flags = found.flags() - PageTableFlags::PRESENT;
            self.region.map(page, frame, flags).map_err(|(e, _)| SwapError::Region(e))?;
            let _ = self.map.free(offset);
            return Err(e);
        }
        // The frame's contents are safe in frontswap or on the disk: it is freed here.
        debug_assert!(crate::mm::frames::info(frame.pfn()).is_some_and(|i| i.owner() == Owner::WORKLOAD));
        drop(frame);
        self.stats.swapouts += 1;
        self.stats.resident = self.clock.len() as u64;
        self.stats.slots_used = self.map.used();
        self.stats.peak_slots = self.stats.peak_slots.max(self.map.used());
        Ok(true)
    }

    /// frontswap_store, else the disk. A full tmem first writes back its oldest pages (zswap's shrink)
    /// and the store is tried once more (`zcache::frontswap::store`).
    fn write_out(&mut self, offset: u64, page: &[u8; 4096]) -> Result<(), SwapError> {
        if self.front {
            let disk = self.disk;
            let mut sink = |off: u64, p: &[u8; 4096]| disk.lock().write_page(off, p).is_ok();
            let out = zcache::frontswap::store(SWAP_TYPE, offset, page, &mut sink)?;
            self.stats.cleancache_dropped += out.cleancache_dropped;
            self.stats.peak_tmem_pages = self.stats.peak_tmem_pages.max(out.tmem_pages);
            self.stats.written_back_pages += out.written_back;
            self.stats.disk_writes += out.written_back;
            if out.stored {
                self.stats.frontswap_stores += 1;
                return Ok(());
            }
            self.stats.frontswap_refused += 1;
        }
        self.disk.lock().write_page(offset, page).map_err(SwapError::Disk)?;
        self.stats.disk_writes += 1;
        Ok(())
    }
}
