//! Reclaim: make room for a faulting page under the run's accounting, choose a resident page with the
//! clock, and move it out — or, for a clean page whose swap copy was kept, just drop it.
//!
//! ```text
//!  make_room (swap::make_room over this Swapper): until one more frame fits
//!     equal memory: resident + 1 + pool frames ≤ N (and the pool under its cap), fixed: resident + 1 ≤ N
//!     pool over its cap ──► shrink_pool: drop a kept in-memory copy, else write tmem's oldest page back
//!     short of room     ──► reclaim_one ──► Clock::victim (second chance on the accessed bit)
//!  swap_out(page): the kept slot, else a new one ──► Region::unmap(page, swap entry) gives the frame and
//!     the old PTE back; its dirty bit asks the swap cache:
//!        Clean   ──► free the frame: no store, no write (clean_reclaims_saved)
//!        Rewrite ──► the kept copy is stale: store again at the same slot
//!        Store   ──► write_out: frontswap (tmem full: writeback first), else zram or the disk
//!     on any error the mapping is put back: nothing is lost, and make_room tries the next victim
//!     (swap::MAX_FAILED_SWAPOUTS failures in one call end it with the first error, which becomes the
//!     run's error; if every one of them was zram's pool finding no frame (is_out_of_memory), zram is
//!     out of memory, not broken: the step goes over, counted in zram_oom_steps, and the run goes on)
//! ```

use swap::cache::Reclaim;
use swap::entry::Pte as Kind;
use swap::{Backing, Reclaimer, SlotError, SwapEntry};
use x86_64::structures::paging::PageTableFlags;

use super::{SWAP_TYPE, SwapError, Swapper};
use crate::mm::paging::Pte;
use crate::mm::trace;
use crate::zcache;

impl Reclaimer for Swapper {
    type Error = SwapError;

    fn resident(&self) -> u64 {
        self.clock.len() as u64
    }

    fn pool_pages(&self) -> u64 {
        if self.front {
            zcache::frontswap::pool_pages().unwrap_or(0)
        } else if self.zram {
            crate::zram::pool_pages().unwrap_or(0)
        } else {
            0
        }
    }

    fn reclaim_one(&mut self) -> Result<bool, SwapError> {
        Swapper::reclaim_one(self)
    }

    /// zram's pool found no frame for the page: zram is out of memory, not broken.
    fn is_out_of_memory(&self, e: &SwapError) -> bool {
        zram_out_of_memory(e)
    }

    /// Take one object out of the pool: first a copy the swap cache keeps in memory for a resident page
    /// (no I/O: the page is resident), else tmem's oldest page written back to the disk.
    fn shrink_pool(&mut self) -> Result<bool, SwapError> {
        if let Some((_page, copy)) = self.cache.evict(Some(Backing::Frontswap)) {
            self.release_slot(copy.slot)?;
            return Ok(true);
        }
        if !self.front {
            return Ok(false);
        }
        let disk = self.disk;
        let mut failed = 0;
        let mut sink = |off: u64, p: &[u8; 4096]| {
            let ok = disk.lock().write_page(off, p).is_ok();
            failed += u64::from(!ok);
            ok
        };
        let r = zcache::frontswap::writeback_one(SWAP_TYPE, &mut sink);
        // A failed write leaves the page in tmem (tmem drops it only once the sink took it).
        self.stats.writeback_failures += failed;
        match r? {
            Some(slot) => {
                self.cache.written_back(slot);
                self.stats.written_back_pages += 1;
                self.stats.disk_writes += 1;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

impl Swapper {
    /// Reclaim and shrink until one more frame fits the run's accounting (`swap::make_room`). When
    /// nothing more can move, the step goes over and is counted; the invariant is checked after.
    pub(super) fn make_room(&mut self) -> Result<(), SwapError> {
        let acct = self.acct;
        let room = match swap::make_room(acct, 1, self) {
            // swap::MAX_FAILED_SWAPOUTS swap-outs failed in this reclaim (each victim is back where it
            // was), every one because zram's pool found no frame: zram is out of memory, not broken. As
            // at its memory limit, the step goes over and is counted; the run goes on.
            Ok(r) if r.out_of_memory => {
                self.stats.zram_oom_steps += 1;
                r
            }
            Ok(r) => r,
            // Any other failure among them (a failing disk, a bad PTE), or the pool could not shrink:
            // note it for the run's report and let this access complete over budget.
            Err(e) => {
                log::error!("swap: reclaim failed: {e}");
                self.error.get_or_insert(e);
                swap::Room::default()
            }
        };
        if !room.fits {
            self.stats.over_budget_steps += 1;
            if !self.reported_oos {
                self.reported_oos = true;
                log::warn!(
                    "swap: no more room under {} of {} pages (resident {}, pool {}): this run goes over",
                    acct.name(),
                    self.cfg.budget_pages,
                    self.clock.len(),
                    self.pool_pages()
                );
            }
        }
        Ok(())
    }

    /// After a step: the peaks, and the accounting's invariant, which a step that went over (or a pool
    /// that grew behind `make_room`, e.g. a store made to find a frame) breaks and is counted for.
    pub(super) fn check_invariant(&mut self) {
        let (resident, pool) = (self.clock.len() as u64, self.pool_pages());
        self.stats.peak_pool_pages = self.stats.peak_pool_pages.max(pool);
        self.stats.peak_mem_pages = self.stats.peak_mem_pages.max(resident + pool);
        if !self.acct.holds(resident, pool) {
            self.stats.over_budget_steps += 1;
        }
    }

    /// Reclaim one resident page. `Ok(false)`: no page could go (no resident page, or no swap slot).
    pub(super) fn reclaim_one(&mut self) -> Result<bool, SwapError> {
        let region = self.region.clone();
        let Some(victim) = self.clock.victim(|p| region.test_and_clear_accessed(p).unwrap_or(false)) else {
            return Ok(false);
        };
        if trace::is_page(victim) {
            crate::println!(
                "trace: page {victim}: clock victim: accessed bit clear (its second chance used), {} resident",
                self.clock.len() + 1
            );
        }
        match self.swap_out(victim) {
            Ok(true) => Ok(true),
            Ok(false) => {
                self.clock.insert(victim);
                Ok(false)
            }
            // An error leaves the page mapped where it was, unless even that failed (then its PTE holds the
            // swap entry and the page is not resident). swap::make_room passes over it to the next victim.
            Err(e) => {
                if self.region.entry(victim).is_ok_and(|p| p.is_present()) {
                    self.clock.insert(victim);
                }
                self.stats.swapout_failures += 1;
                if self.stats.swapout_failures == 1 {
                    log::warn!(
                        "swap: swap-out of page {victim} failed ({e}): it stays resident and reclaim tries the next \
                         page (each failure is counted in swapout_failures)"
                    );
                }
                Err(e)
            }
        }
    }

    /// Reclaim `page` now if it is resident (Linux's `madvise(MADV_PAGEOUT)`): `Ok(false)` when it is
    /// not resident or could not go (out of swap); on an error it stays mapped, as in [`Self::reclaim_one`].
    pub(super) fn page_out(&mut self, page: u64) -> Result<bool, SwapError> {
        if !self.clock.remove(page) {
            return Ok(false);
        }
        match self.swap_out(page) {
            Ok(true) => Ok(true),
            Ok(false) => {
                self.clock.insert(page);
                Ok(false)
            }
            Err(e) => {
                if self.region.entry(page).is_ok_and(|p| p.is_present()) {
                    self.clock.insert(page);
                }
                Err(e)
            }
        }
    }

    /// A slot for `page`: the one its kept copy has, else a new one (giving up another page's kept copy
    /// if the device is full). `Ok(None)`: out of swap.
    fn slot_for(&mut self, page: u64) -> Result<Option<(u64, bool)>, SwapError> {
        if let Some(copy) = self.cache.copy_of(page) {
            return Ok(Some((copy.slot, false)));
        }
        loop {
            match self.map.alloc() {
                Ok(s) => return Ok(Some((s, true))),
                Err(SlotError::Full { slots }) => {
                    if let Some((_, copy)) = self.cache.evict(None) {
                        self.release_slot(copy.slot)?;
                        continue;
                    }
                    self.stats.out_of_swap += 1;
                    if !self.reported_oos {
                        self.reported_oos = true;
                        log::warn!(
                            "swap: out of swap space ({slots} slots in use): pages stay resident over the budget of {}",
                            self.cfg.budget_pages
                        );
                    }
                    return Ok(None);
                }
                Err(e) => return Err(SwapError::Slot(e)),
            }
        }
    }

    /// Move one resident page out: a swap entry in its PTE, its frame freed, its bytes stored unless the
    /// swap cache holds a clean copy. `Ok(false)` when no slot is free (the page stays).
    fn swap_out(&mut self, page: u64) -> Result<bool, SwapError> {
        let found = self.region.entry(page)?;
        if SwapEntry::classify(found.raw()) != Kind::Present {
            // The clock only holds resident pages; anything else is a kernel bug, and nothing is touched.
            return Err(SwapError::BadPte { page, raw: found.raw() });
        }
        let Some((offset, fresh)) = self.slot_for(page)? else { return Ok(false) };
        let Some(entry) = SwapEntry::new(SWAP_TYPE, offset) else {
            if fresh {
                let _ = self.map.free(offset);
            }
            return Err(SwapError::BadConfig("slot beyond the entry format"));
        };
        // The exchange gives back the PTE as the CPU left it: its dirty bit says whether a kept copy is
        // still the page's (a read before the exchange could miss a write in between).
        let (mut frame, old) = match self.region.unmap(page, Pte::from_raw(entry.to_pte())) {
            Ok(r) => r,
            Err(e) => {
                if fresh {
                    let _ = self.map.free(offset);
                }
                return Err(e.into());
            }
        };
        let decision = self.cache.reclaim(page, old.is_dirty());
        // The page trace (one atomic load when off): the PTE change, then every step of the store.
        let traced = trace::is_page(page);
        if traced {
            crate::println!(
                "trace: page {page}: swap_out: frame pfn {:#x} unmapped, PTE holds swap entry (type {SWAP_TYPE}, \
                 offset {offset}){}",
                frame.pfn().0,
                if old.is_dirty() { ", dirty" } else { ", clean" }
            );
            match decision {
                Reclaim::Clean(_) => {
                    crate::println!("trace:   clean and its copy kept at slot {offset}: nothing is written")
                }
                _ => {
                    trace::record_frame(Some(frame.pfn()));
                }
            }
        }
        let written = match decision {
            // Clean, its copy kept: nothing to write.
            Reclaim::Clean(_) => Ok(None),
            Reclaim::Rewrite(_) | Reclaim::Store => {
                if let Reclaim::Rewrite(copy) = decision {
                    // The kept copy is stale: drop it from memory before the new bytes go to its slot.
                    self.drop_copy(copy.slot);
                }
                match frame.with_bytes(|bytes| self.write_out(offset, bytes)) {
                    Ok(r) => r.map(Some),
                    Err(error) => Err(SwapError::Kmap { page, error }),
                }
            }
        };
        if traced {
            trace::take();
            match written {
                Ok(Some(Backing::Frontswap)) if self.front => trace::set_slot(Some(offset)),
                Ok(Some(Backing::Disk)) => crate::println!("trace:   written to the swap disk at slot {offset}"),
                _ => {}
            }
        }
        match written {
            Ok(Some(backing)) => self.cache.stored(backing),
            Ok(None) => {}
            Err(e) => {
                // Put the page back where it was: nothing is lost. Its slot (new, or the kept one whose copy
                // is gone now) is freed: the page has no copy any more.
                let flags = old.flags() - PageTableFlags::PRESENT;
                self.region.map(page, frame, flags).map_err(|(e, _)| SwapError::Region(e))?;
                let _ = self.map.free(offset);
                self.stats.slots_used = self.map.used();
                // zram at its memory limit is a full device, not a failure: the page stays resident,
                // as it would out of swap (the step then goes over and is counted).
                if let SwapError::Zram(crate::zram::ZramDevError::Zram(zram::ZramError::MemLimit { .. })) = e {
                    return Ok(false);
                }
                return Err(e);
            }
        }
        // The frame's contents are safe in frontswap, zram or on the disk: it is freed here.
        if traced {
            crate::println!("trace: page {page}: frame pfn {:#x} freed", frame.pfn().0);
        }
        drop(frame);
        self.stats.swapouts += 1;
        self.stats.resident = self.clock.len() as u64;
        self.stats.slots_used = self.map.used();
        self.stats.peak_slots = self.stats.peak_slots.max(self.map.used());
        Ok(true)
    }

    /// frontswap_store, else zram or the disk. A full tmem first writes back its oldest pages (zswap's
    /// shrink) and the store is tried once more (`zcache::frontswap::store`). Returns where the copy is.
    fn write_out(&mut self, offset: u64, page: &[u8; 4096]) -> Result<Backing, SwapError> {
        if self.front {
            let disk = self.disk;
            let cache = &mut self.cache;
            let mut failed = 0;
            let mut sink = |off: u64, p: &[u8; 4096]| {
                let ok = disk.lock().write_page(off, p).is_ok();
                if ok {
                    // A kept page's copy moved to the disk: still valid, same slot.
                    cache.written_back(off);
                }
                failed += u64::from(!ok);
                ok
            };
            let out = zcache::frontswap::store(SWAP_TYPE, offset, page, &mut sink);
            self.stats.writeback_failures += failed;
            let out = out?;
            self.stats.cleancache_dropped += out.cleancache_dropped;
            self.stats.peak_tmem_pages = self.stats.peak_tmem_pages.max(out.tmem_pages);
            self.stats.written_back_pages += out.written_back;
            self.stats.disk_writes += out.written_back;
            if out.stored {
                self.stats.frontswap_stores += 1;
                return Ok(Backing::Frontswap);
            }
            self.stats.frontswap_refused += 1;
        }
        if self.zram {
            return match crate::zram::write_page(offset, page) {
                Ok(()) => {
                    self.stats.zram_writes += 1;
                    Ok(Backing::Frontswap)
                }
                Err(e) => {
                    self.stats.zram_refused += 1;
                    Err(SwapError::Zram(e))
                }
            };
        }
        self.disk.lock().write_page(offset, page).map_err(SwapError::Disk)?;
        self.stats.disk_writes += 1;
        Ok(Backing::Disk)
    }
}

/// Whether a swap-out failed because zram's pool found no frame for the page: zram is out of memory
/// (Linux's zram_write_page: -ENOMEM), not broken.
fn zram_out_of_memory(e: &SwapError) -> bool {
    matches!(
        e,
        SwapError::Zram(crate::zram::ZramDevError::Zram(zram::ZramError::Store(zstore::StoreError::Pool(
            zpool::PoolError::OutOfMemory
        ))))
    )
}
