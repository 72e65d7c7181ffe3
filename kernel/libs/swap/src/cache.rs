//! The swap cache: a page swapped in keeps its slot and its copy (frontswap or disk) until it is written,
//! so reclaiming it again, still clean, costs no compression, no store and no disk write.
//!
//! # Why
//!
//! zkernel's first swapper freed a page's slot and dropped its frontswap copy as soon as the page was
//! mapped again, and treated every page as dirty. A page that is only read after a swap-in (most of a
//! Zipf workload's cold tail) was then compressed and stored, or written to the disk, every time reclaim
//! chose it again, for bytes that were already there. Linux keeps such a page in the *swap cache*
//! (`add_to_swap_cache`, `PageSwapCache`): the page stays tied to its swap slot, and `shrink_page_list`
//! skips `pageout` for a clean one. This file is that bookkeeping, without the page tables.
//!
//! # Vocabulary
//!
//! * **copy**: the bytes of a page at its swap slot, in frontswap (tmem) or on the swap disk
//!   ([`SwapCopy`], [`Backing`]).
//! * **kept / cached page**: a resident page whose copy is still valid; it has an entry here.
//! * **clean / dirty**: whether the page was written since its swap-in. x86 sets the PTE's dirty bit (D)
//!   on the first write through that PTE; the kernel reports it here ([`SwapCache::observe_dirty`],
//!   [`SwapCache::reclaim`]). Or the page is mapped read-only and its first write faults.
//! * **clean re-reclaim**: reclaiming a kept page that is still clean: the PTE gets the swap entry of its
//!   kept slot, the frame is freed, nothing is stored or written ([`SwapCacheStats::clean_reclaims_saved`]).
//! * **exclusive load** (zswap's `exclusive_loads`): a frontswap copy is dropped the moment it is loaded,
//!   giving its pool memory back at once; the page counts as dirty from then on. A disk copy costs no
//!   memory and is kept even then.
//!
//! # The states of one region page
//!
//! | state | PTE | slot | copy | entry here |
//! |---|---|---|---|---|
//! | never touched | 0 | — | — | no |
//! | resident, no copy (new or dirtied) | present | — | — | no |
//! | resident, kept (clean) | present, D clear (or read-only) | held | frontswap or disk | yes |
//! | swapped out | swap entry (slot) | held | frontswap or disk | no |
//!
//! # The rules the kernel follows (in order)
//!
//! **Fault-in of a swap entry (slot s):** make room (`budget::make_room`), allocate a frame, load it
//! (frontswap, else the disk), map it **with D clear** (dirty-bit mode) or **read-only** (write-fault
//! mode), then call [`SwapCache::swapped_in`]`(page, copy)`:
//! [`SwapIn::Keep`]: nothing more (the slot stays allocated, the copy stays);
//! [`SwapIn::Release`]: invalidate frontswap's copy at s, then free s (the order of Linux's `swap_free`).
//!
//! **Write fault on a read-only kept page (write-fault mode):** [`SwapCache::observe_dirty`]`(page, true)`
//! gives the copy back: invalidate frontswap at its slot, free the slot, make the PTE writable.
//! In dirty-bit mode the kernel may call the same hook whenever it reads a PTE (e.g. the clock's scan),
//! to give a stale copy's pool memory back before reclaim.
//!
//! **Reclaim of a victim:** the entry to install comes first: `copy_of(page)` gives the kept slot, else a
//! new slot is allocated. Unmap by *exchanging* the PTE for that swap entry; the dirty bit is the D of
//! the PTE value the exchange returned (a read before the exchange could miss a write in between and a
//! stale copy would be served). Then [`SwapCache::reclaim`]`(page, dirty)`:
//! * [`Reclaim::Clean`]: free the frame. No store, no write.
//! * [`Reclaim::Rewrite`]: the kept copy is stale. Invalidate frontswap at its slot, store the page again
//!   at the **same** slot (frontswap, else the disk), free the frame, [`SwapCache::stored`]. If the
//!   store fails, map the page back and free the slot: it is a page without a copy now.
//! * [`Reclaim::Store`]: store at the new slot as before the swap cache, then [`SwapCache::stored`].
//!
//! **tmem writes a page back** (zswap's shrink, `frontswap::store`'s sink): if the slot belongs to a kept
//! page, [`SwapCache::written_back`] moves its copy to the disk (the copy stays valid: same bytes, same slot).
//!
//! **Shrinking the pool** without I/O: [`SwapCache::evict`]`(Some(Backing::Frontswap))` gives up one kept
//! frontswap copy (invalidate it, free its slot). Out of slots: `evict(None)` gives up any kept copy.
//!
//! **Every write to a kept page goes through its region PTE**: a write through another mapping (a kmap
//! of the frame) sets no D bit; a kernel path that does one must call `observe_dirty(page, true)` first.
//!
//! # Worked example
//!
//! Page 7 was swapped out to slot 3 (frontswap). It faults: loaded, mapped with D clear,
//! `swapped_in(7, {3, Frontswap})` → `Keep`. The workload only reads it. Reclaim picks it: the PTE is
//! exchanged for entry 3, D = 0, `reclaim(7, false)` → `Clean({3, Frontswap})`: the frame is freed, no
//! compression, no store (`clean_reclaims_saved` = 1). It faults again (`Keep`) and is written: D = 1.
//! Reclaim: `reclaim(7, true)` → `Rewrite({3, Frontswap})`: invalidate tmem's stale copy at 3, store the
//! new bytes at 3 (`dirtied_after_swapin` = 1, `stores` = 1 after `stored(Frontswap)`).
//!
//! # Contracts
//!
//! * One entry per page and one page per slot: [`SwapCache::swapped_in`] refuses a page already kept or a
//!   slot another kept page holds ([`CacheError`]) and changes nothing then.
//! * Every call is O(log n) in the kept pages, except [`SwapCache::evict`] (a scan in slot order).
//! * The cache never touches slots, tmem or frames: it says what to do; the kernel does it.

use alloc::collections::BTreeMap;

/// Where a page's copy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Backing {
    /// In tmem (frontswap): costs pool memory.
    Frontswap,
    /// On the swap disk: costs a slot only.
    Disk,
}

/// A valid copy of a page: slot `slot` of the swap device, in `backing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SwapCopy {
    pub slot: u64,
    pub backing: Backing,
}

/// What a swap-in keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// No swap cache: every swap-in releases its slot and its copy (zkernel before the swap cache).
    Off,
    /// Keep every copy until the page is written.
    Keep,
    /// zswap's `exclusive_loads`: a frontswap copy is released at load; a disk copy is kept.
    ExclusiveLoads,
}

/// What the kernel does after mapping a swapped-in page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapIn {
    /// Keep the slot and the copy: the page is in the swap cache.
    Keep,
    /// Invalidate frontswap's copy at the slot, then free the slot.
    Release(SwapCopy),
}

/// What reclaiming a resident page takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reclaim {
    /// Clean, with a valid copy: install its slot's swap entry, free the frame; no store, no write.
    Clean(SwapCopy),
    /// Written since its swap-in: invalidate frontswap at the slot, store the page again at the same slot.
    Rewrite(SwapCopy),
    /// No copy: a new slot and a store, as before the swap cache.
    Store,
}

/// A call the cache refused (a kernel bug: stale or doubled bookkeeping). Nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheError {
    /// The page already has a kept copy (it cannot have been swapped out).
    AlreadyKept { page: u64, slot: u64 },
    /// The slot is the kept copy of another page.
    SlotTaken { slot: u64, page: u64 },
}

/// Counters for the report (names after zswap/vmscan where one exists).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwapCacheStats {
    /// Swap-ins that kept their slot and copy.
    pub swapins_kept: u64,
    /// Swap-ins that released them (mode `Off`, or an exclusive frontswap load).
    pub swapins_released: u64,
    /// Reclaims of a clean kept page: no store, no write.
    pub clean_reclaims_saved: u64,
    /// Of those, frontswap stores saved (the copy was in tmem).
    pub saved_stores: u64,
    /// Of those, disk writes saved (the copy was on the disk).
    pub saved_writes: u64,
    /// Kept pages found written (dirty bit or write fault): their copy was dropped or rewritten.
    pub dirtied_after_swapin: u64,
    /// Frontswap stores by reclaim (reported by [`SwapCache::stored`]).
    pub stores: u64,
    /// Disk writes by reclaim (reported by [`SwapCache::stored`]; writeback not included).
    pub writes: u64,
    /// Kept frontswap copies tmem wrote back to the disk.
    pub written_back: u64,
    /// Kept copies given up by [`SwapCache::evict`].
    pub evicted: u64,
}

/// The kept copies of the resident pages of one region.
#[derive(Debug, Clone)]
pub struct SwapCache {
    mode: CacheMode,
    by_page: BTreeMap<u64, SwapCopy>,
    by_slot: BTreeMap<u64, u64>,
    pub stats: SwapCacheStats,
}

impl SwapCache {
    pub fn new(mode: CacheMode) -> Self {
        Self { mode, by_page: BTreeMap::new(), by_slot: BTreeMap::new(), stats: SwapCacheStats::default() }
    }

    pub fn mode(&self) -> CacheMode {
        self.mode
    }

    /// Kept pages.
    pub fn len(&self) -> usize {
        self.by_page.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_page.is_empty()
    }

    /// The kept copy of `page`, if any (the slot reclaim installs).
    pub fn copy_of(&self, page: u64) -> Option<SwapCopy> {
        self.by_page.get(&page).copied()
    }

    /// The kept page whose copy is at `slot`, if any.
    pub fn page_at(&self, slot: u64) -> Option<u64> {
        self.by_slot.get(&slot).copied()
    }

    /// The kept pages and their copies, by page.
    pub fn iter(&self) -> impl Iterator<Item = (u64, SwapCopy)> + '_ {
        self.by_page.iter().map(|(&p, &c)| (p, c))
    }

    /// `page` was loaded from `copy` and is mapped again (clean). Keep or release, by the mode.
    pub fn swapped_in(&mut self, page: u64, copy: SwapCopy) -> Result<SwapIn, CacheError> {
        if let Some(old) = self.by_page.get(&page) {
            return Err(CacheError::AlreadyKept { page, slot: old.slot });
        }
        if let Some(&other) = self.by_slot.get(&copy.slot) {
            return Err(CacheError::SlotTaken { slot: copy.slot, page: other });
        }
        let keep = match self.mode {
            CacheMode::Off => false,
            CacheMode::Keep => true,
            CacheMode::ExclusiveLoads => copy.backing == Backing::Disk,
        };
        if !keep {
            self.stats.swapins_released += 1;
            return Ok(SwapIn::Release(copy));
        }
        self.by_page.insert(page, copy);
        self.by_slot.insert(copy.slot, page);
        self.stats.swapins_kept += 1;
        Ok(SwapIn::Keep)
    }

    /// The kernel saw `page`'s dirty bit (or took a write fault on it: `dirty` = true). A written kept
    /// page loses its copy, which comes back for the kernel to drop (invalidate frontswap, free the slot).
    pub fn observe_dirty(&mut self, page: u64, dirty: bool) -> Option<SwapCopy> {
        if !dirty {
            return None;
        }
        let copy = self.take(page)?;
        self.stats.dirtied_after_swapin += 1;
        Some(copy)
    }

    /// Reclaim chose `page`; `dirty` is the D bit of the PTE the unmap exchanged. The page leaves the
    /// cache either way (it is no longer resident).
    pub fn reclaim(&mut self, page: u64, dirty: bool) -> Reclaim {
        let Some(copy) = self.take(page) else { return Reclaim::Store };
        if dirty {
            self.stats.dirtied_after_swapin += 1;
            return Reclaim::Rewrite(copy);
        }
        self.stats.clean_reclaims_saved += 1;
        match copy.backing {
            Backing::Frontswap => self.stats.saved_stores += 1,
            Backing::Disk => self.stats.saved_writes += 1,
        }
        Reclaim::Clean(copy)
    }

    /// Reclaim stored a page (after [`Reclaim::Rewrite`] or [`Reclaim::Store`]) in `backing`.
    pub fn stored(&mut self, backing: Backing) {
        match backing {
            Backing::Frontswap => self.stats.stores += 1,
            Backing::Disk => self.stats.writes += 1,
        }
    }

    /// tmem wrote the page at `slot` back to the disk. If it is a kept frontswap copy, it is on the disk
    /// now; returns its page.
    pub fn written_back(&mut self, slot: u64) -> Option<u64> {
        let page = *self.by_slot.get(&slot)?;
        let copy = self.by_page.get_mut(&page)?;
        if copy.backing != Backing::Frontswap {
            return None;
        }
        copy.backing = Backing::Disk;
        self.stats.written_back += 1;
        Some(page)
    }

    /// Give up the kept copy with the lowest slot in `only` (any backing for `None`): the kernel
    /// invalidates frontswap at its slot and frees the slot. The page stays resident, without a copy.
    pub fn evict(&mut self, only: Option<Backing>) -> Option<(u64, SwapCopy)> {
        let page = self
            .by_slot
            .values()
            .copied()
            .find(|p| only.is_none_or(|b| self.by_page.get(p).is_some_and(|c| c.backing == b)))?;
        let copy = self.take(page)?;
        self.stats.evicted += 1;
        Some((page, copy))
    }

    /// `page` stops being resident other than by reclaim (teardown): its kept copy, if any, for the
    /// kernel to drop. No counter moves.
    pub fn remove(&mut self, page: u64) -> Option<SwapCopy> {
        self.take(page)
    }

    fn take(&mut self, page: u64) -> Option<SwapCopy> {
        let copy = self.by_page.remove(&page)?;
        self.by_slot.remove(&copy.slot);
        Some(copy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FS3: SwapCopy = SwapCopy { slot: 3, backing: Backing::Frontswap };
    const DISK4: SwapCopy = SwapCopy { slot: 4, backing: Backing::Disk };

    /// The worked example of the header, counter by counter.
    #[test]
    fn worked_example() {
        let mut c = SwapCache::new(CacheMode::Keep);
        assert!(c.is_empty());
        assert_eq!(c.swapped_in(7, FS3), Ok(SwapIn::Keep));
        assert!(!c.is_empty());
        assert_eq!(c.copy_of(7), Some(FS3));
        assert_eq!(c.page_at(3), Some(7));
        assert_eq!(c.reclaim(7, false), Reclaim::Clean(FS3));
        assert!(c.is_empty());
        assert_eq!(c.swapped_in(7, FS3), Ok(SwapIn::Keep));
        assert_eq!(c.reclaim(7, true), Reclaim::Rewrite(FS3));
        c.stored(Backing::Frontswap);
        assert_eq!(
            c.stats,
            SwapCacheStats {
                swapins_kept: 2,
                clean_reclaims_saved: 1,
                saved_stores: 1,
                dirtied_after_swapin: 1,
                stores: 1,
                ..Default::default()
            }
        );
        // A page never swapped in has nothing kept.
        assert_eq!(c.reclaim(8, false), Reclaim::Store);
    }

    #[test]
    fn off_releases_everything_and_exclusive_loads_only_frontswap() {
        let mut off = SwapCache::new(CacheMode::Off);
        assert_eq!(off.swapped_in(1, FS3), Ok(SwapIn::Release(FS3)));
        assert_eq!(off.swapped_in(2, DISK4), Ok(SwapIn::Release(DISK4)));
        assert_eq!(off.len(), 0);
        assert_eq!(off.stats.swapins_released, 2);

        let mut ex = SwapCache::new(CacheMode::ExclusiveLoads);
        assert_eq!(ex.swapped_in(1, FS3), Ok(SwapIn::Release(FS3)));
        assert_eq!(ex.swapped_in(2, DISK4), Ok(SwapIn::Keep));
        assert_eq!(ex.reclaim(2, false), Reclaim::Clean(DISK4));
        assert_eq!(ex.stats.saved_writes, 1);
        assert_eq!(ex.stats.saved_stores, 0);
        assert_eq!(ex.mode(), CacheMode::ExclusiveLoads);
    }

    #[test]
    fn a_write_fault_drops_the_copy_once() {
        let mut c = SwapCache::new(CacheMode::Keep);
        c.swapped_in(5, DISK4).unwrap();
        assert_eq!(c.observe_dirty(5, false), None);
        assert_eq!(c.copy_of(5), Some(DISK4));
        assert_eq!(c.observe_dirty(5, true), Some(DISK4));
        assert_eq!(c.observe_dirty(5, true), None);
        assert_eq!(c.reclaim(5, true), Reclaim::Store);
        assert_eq!(c.stats.dirtied_after_swapin, 1);
        assert_eq!(c.page_at(4), None);
    }

    #[test]
    fn doubled_bookkeeping_is_refused_and_changes_nothing() {
        let mut c = SwapCache::new(CacheMode::Keep);
        c.swapped_in(1, FS3).unwrap();
        assert_eq!(c.swapped_in(1, DISK4), Err(CacheError::AlreadyKept { page: 1, slot: 3 }));
        assert_eq!(c.swapped_in(2, FS3), Err(CacheError::SlotTaken { slot: 3, page: 1 }));
        assert_eq!(c.len(), 1);
        assert_eq!(c.stats.swapins_kept, 1);
        assert_eq!(c.iter().collect::<Vec<_>>(), [(1, FS3)]);
    }

    #[test]
    fn writeback_moves_a_kept_copy_to_the_disk() {
        let mut c = SwapCache::new(CacheMode::Keep);
        c.swapped_in(1, FS3).unwrap();
        assert_eq!(c.written_back(9), None);
        assert_eq!(c.written_back(3), Some(1));
        assert_eq!(c.written_back(3), None, "already on the disk");
        assert_eq!(c.reclaim(1, false), Reclaim::Clean(SwapCopy { slot: 3, backing: Backing::Disk }));
        assert_eq!((c.stats.written_back, c.stats.saved_writes, c.stats.saved_stores), (1, 1, 0));
    }

    #[test]
    fn evict_takes_the_lowest_matching_slot() {
        let mut c = SwapCache::new(CacheMode::Keep);
        c.swapped_in(10, DISK4).unwrap();
        c.swapped_in(11, FS3).unwrap();
        c.swapped_in(12, SwapCopy { slot: 9, backing: Backing::Frontswap }).unwrap();
        assert_eq!(c.evict(Some(Backing::Disk)), Some((10, DISK4)));
        assert_eq!(c.evict(Some(Backing::Disk)), None);
        assert_eq!(c.evict(None), Some((11, FS3)));
        assert_eq!(c.evict(Some(Backing::Frontswap)), Some((12, SwapCopy { slot: 9, backing: Backing::Frontswap })));
        assert_eq!(c.evict(None), None);
        assert_eq!(c.stats.evicted, 3);
        assert!(c.is_empty());
    }

    #[test]
    fn remove_moves_no_counter() {
        let mut c = SwapCache::new(CacheMode::Keep);
        c.swapped_in(1, FS3).unwrap();
        let before = c.stats;
        assert_eq!(c.remove(1), Some(FS3));
        assert_eq!(c.remove(1), None);
        assert_eq!(c.stats, before);
        assert_eq!(c.page_at(3), None);
    }
}
