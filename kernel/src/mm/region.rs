//! Regions: ranges of lower-half virtual pages that one subsystem owns and fills on demand, and the safe
//! calls it edits their page-table entries with.
//!
//! # Why
//!
//! The swap subsystem maps workload pages, swaps a present PTE for a swap entry, and reads the accessed
//! bit: page-table edits that `mm::paging` can only offer as `unsafe` (a mapping is a claim on a frame
//! and an address range). A [`Region`] makes the claim once: while it lives, its pages and every frame
//! mapped in them belong to it alone, so each edit can be safe. Frames move in and out as
//! [`OwnedFrame`] values, never as raw frame numbers.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | region | `[base, base + pages·4096)` in the lower half, claimed by [`Region::claim`] |
//! | page | an index `0..pages` into the region |
//! | entry | the page's leaf PTE ([`Pte`]): empty, present (mapping a frame the region owns) or another non-present value (a swap entry) |
//!
//! # Calls
//!
//! | call | entry before | entry after | frame |
//! |---|---|---|---|
//! | [`Region::map`]`(p, frame, flags)` | not present | present | the region takes it |
//! | [`Region::unmap`]`(p, entry)` | present | `entry` (not present) | given back as an [`OwnedFrame`], with the old entry (its dirty bit) |
//! | [`Region::set_entry`]`(p, entry)` | not present | `entry` (not present) | — |
//! | [`Region::test_and_clear_accessed`]`(p)` | present | accessed bit clear | — |
//! | [`Region::read`] / [`Region::write`] (and `read_at`/`write_at` for part of a page) | any | as the fault handler leaves it | copies through the virtual address (`arch::probe::copy_bytes`), faulting like any access; a fault the handler refuses ends the copy with [`RegionError::PageLost`] instead of killing the kernel |
//!
//! # Worked example
//!
//! The swapper claims 3072 pages at `REGION_BASE` with its fault handler. The workload writes page 7:
//! the #PF reaches `mm::fault::dispatch` → the swapper, which allocates an [`OwnedFrame`], zeroes it
//! through kmap and calls `map(7, frame, WRITABLE | NO_EXECUTE)`. Later reclaim picks page 7 and calls
//! `unmap(7, swap_entry)`: the PTE now holds the swap entry and the swapper holds the frame again, to
//! copy it out and drop it (freeing it).
//!
//! # Contracts
//!
//! * Regions never overlap each other and lie in the lower half, outside everything the kernel maps
//!   itself (`paging`'s `Reserved` check).
//! * Region memory is reached only by [`Region::read`]/[`Region::write`] (copies, never references), so
//!   no Rust reference into a region page can be live when an entry changes. One CPU at a time edits a
//!   region (the owner's lock). [`Region::unmap`] returns the frame only after the old translation is
//!   shot down on every other CPU that may cache it (`paging::write_leaf` → `arch::tlb::shootdown`), so
//!   a write from another CPU lands before the unmap (and goes out with the page) or faults after it,
//!   never in a reused frame (tests/smp_boot.rs, `unmap_is_shot_down_on_other_cpus`).
//! * Dropping a region frees every frame still mapped in it and clears every entry; non-present entries
//!   are the owner's to release first (a swap entry names a slot only the owner knows).

use core::ops::Range;

use frame::FrameError;
use x86_64::structures::paging::PageTableFlags;

use super::fault::{self, FaultError, FaultHandler};
use super::frames::{BuddyTables, FallibleTables, OwnedFrame};
use super::paging::{self, MapError, Pte};

/// Why a region operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionError {
    /// The range is not in the lower half, not page aligned, or reserved.
    BadRange { base: u64, pages: u64 },
    /// A page index outside the region.
    OutOfRange { page: u64 },
    /// The fault dispatcher refused the range.
    Fault(FaultError),
    /// The entry was not in the state the call needs.
    Entry { page: u64, found: Pte },
    /// Flags a region page may not have (only writable, no-execute, accessed and dirty are allowed).
    Flags(PageTableFlags),
    /// A page of the range is mapped or holds an entry already: the range is someone else's.
    InUse { page: u64, found: Pte },
    /// The page tables refused the change.
    Map(MapError),
    /// A frame was refused on free.
    Frame(FrameError),
    /// A byte range that does not fit in one page (`offset + len > 4096`).
    Bytes { offset: usize, len: usize },
    /// The page could not be brought in: the region's handler refused the fault (its swapped copy was
    /// lost to a device error or corruption). Every later access to it fails the same way. Linux sends
    /// SIGBUS here; the copy stopped after `done` bytes.
    PageLost { page: u64, done: usize },
}

impl From<MapError> for RegionError {
    fn from(e: MapError) -> Self {
        RegionError::Map(e)
    }
}

/// A claimed range of pages. See the module header.
#[derive(Debug)]
pub struct Region {
    base: u64,
    pages: u64,
}

impl Region {
    /// Claim `pages` pages at `base` and send their faults to `handler`.
    pub fn claim(base: u64, pages: u64, handler: FaultHandler) -> Result<Region, RegionError> {
        let bad = RegionError::BadRange { base, pages };
        let end = pages.checked_mul(4096).and_then(|b| base.checked_add(b)).ok_or(bad)?;
        if pages == 0 || !base.is_multiple_of(4096) || end > memmap::layout::DYNAMIC_BASE.min(1 << 47) {
            return Err(bad);
        }
        // Every page must be one the page tables may change, and empty: a region owns its pages and
        // every frame mapped in them, so it cannot take over a page someone else mapped.
        for page in 0..pages {
            let found = paging::read_leaf(base + page * 4096).map_err(|_| bad)?;
            if found != Pte::EMPTY {
                return Err(RegionError::InUse { page, found });
            }
        }
        fault::register(base..end, handler).map_err(RegionError::Fault)?;
        Ok(Region { base, pages })
    }

    /// The first address.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Pages in the region.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// The addresses the region covers.
    pub fn range(&self) -> Range<u64> {
        self.base..self.base + self.pages * 4096
    }

    /// The page that holds `addr`, if the region does.
    pub fn page_of(&self, addr: u64) -> Option<u64> {
        self.range().contains(&addr).then(|| (addr - self.base) / 4096)
    }

    fn va(&self, page: u64) -> Result<u64, RegionError> {
        if page < self.pages { Ok(self.base + page * 4096) } else { Err(RegionError::OutOfRange { page }) }
    }

    /// The page's entry now.
    pub fn entry(&self, page: u64) -> Result<Pte, RegionError> {
        Ok(paging::read_leaf(self.va(page)?)?)
    }

    /// Map `frame` at `page`, whose entry must not be present; returns the entry it replaced (empty or a
    /// swap entry). On refusal the frame comes back with the reason.
    pub fn map(&self, page: u64, frame: OwnedFrame, flags: PageTableFlags) -> Result<Pte, (RegionError, OwnedFrame)> {
        let va = match self.va(page) {
            Ok(va) => va,
            Err(e) => return Err((e, frame)),
        };
        let allowed =
            PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE | PageTableFlags::ACCESSED | PageTableFlags::DIRTY;
        let extra = flags - allowed - PageTableFlags::PRESENT;
        if !extra.is_empty() {
            return Err((RegionError::Flags(extra), frame));
        }
        match paging::read_leaf(va) {
            Ok(old) if !old.is_present() => {}
            Ok(found) => return Err((RegionError::Entry { page, found }, frame)),
            Err(e) => return Err((e.into(), frame)),
        }
        let new = Pte::mapping(frame.pfn(), flags);
        // SAFETY: the region owns the page (it is claimed and not present, so no reference into it is
        // live) and the frame (an `OwnedFrame`); the page tables take the frame over below. A page table
        // this needs may be refused (`FallibleTables`: memory or injection): the frame comes back.
        match unsafe { paging::write_leaf(va, new, &mut FallibleTables) } {
            Ok(old) => {
                let _ = frame.into_pfn();
                Ok(old)
            }
            Err(e) => Err((e.into(), frame)),
        }
    }

    /// Replace `page`'s present mapping with the non-present `entry`, and take its frame back, with the
    /// entry the mapping had (its accessed and dirty bits as the CPU left them at the exchange).
    pub fn unmap(&self, page: u64, entry: Pte) -> Result<(OwnedFrame, Pte), RegionError> {
        let va = self.va(page)?;
        if entry.is_present() {
            return Err(RegionError::Entry { page, found: entry });
        }
        let found = paging::read_leaf(va)?;
        let Some(_) = found.pfn() else { return Err(RegionError::Entry { page, found }) };
        // SAFETY: the page is present, so the region mapped its frame with `map` and owns it; region
        // memory is only copied through `read`/`write`, never referenced, so no reference into it is live.
        let old = unsafe { paging::write_leaf(va, entry, &mut BuddyTables) }?;
        let pfn = old.pfn().ok_or(RegionError::Entry { page, found: old })?;
        // SAFETY: the frame was mapped only here and is unmapped now (the TLB entry was flushed).
        Ok((unsafe { OwnedFrame::from_pfn(pfn) }, old))
    }

    /// Replace `page`'s non-present entry with another non-present one (a swap entry or empty).
    pub fn set_entry(&self, page: u64, entry: Pte) -> Result<Pte, RegionError> {
        let va = self.va(page)?;
        let found = paging::read_leaf(va)?;
        if found.is_present() || entry.is_present() {
            return Err(RegionError::Entry { page, found });
        }
        // SAFETY: neither entry maps a frame, so no frame or reference changes hands.
        Ok(unsafe { paging::write_leaf(va, entry, &mut BuddyTables) }?)
    }

    /// The page's accessed bit, cleared on the way (Linux's `ptep_test_and_clear_young`).
    pub fn test_and_clear_accessed(&self, page: u64) -> Result<bool, RegionError> {
        Ok(paging::test_and_clear_accessed(self.va(page)?)?)
    }

    /// Copy `page`'s bytes out through its virtual address. A page that is not present faults and is
    /// filled by the region's handler first.
    pub fn read(&self, page: u64, out: &mut [u8; 4096]) -> Result<(), RegionError> {
        self.read_at(page, 0, out)
    }

    /// Copy `data` into `page` through its virtual address (faulting it in as [`Region::read`] does).
    pub fn write(&self, page: u64, data: &[u8; 4096]) -> Result<(), RegionError> {
        self.write_at(page, 0, data)
    }
}

impl Region {
    /// Copy `out.len()` bytes of `page` from byte `offset` (within the page) out, as [`Region::read`]
    /// does for the whole page: several CPUs may each work on their own part of one page.
    pub fn read_at(&self, page: u64, offset: usize, out: &mut [u8]) -> Result<(), RegionError> {
        let va = self.va(page)? + Self::span(offset, out.len())?;
        // SAFETY: a byte range inside one page of this region, mapped or resolved by its fault handler on
        // access; the copy goes through the address and forms no lasting reference into it. A fault the
        // handler refuses ends the copy at the probe's fixup instead of being fatal.
        unsafe { crate::arch::probe::copy_bytes(out.as_mut_ptr(), va as *const u8, out.len()) }
            .map_err(|(done, _)| RegionError::PageLost { page, done })
    }

    /// Copy `data` into `page` from byte `offset` on (see [`Region::read_at`]).
    pub fn write_at(&self, page: u64, offset: usize, data: &[u8]) -> Result<(), RegionError> {
        let va = self.va(page)? + Self::span(offset, data.len())?;
        // SAFETY: as for `read_at`; region memory is never referenced, so the write aliases nothing.
        unsafe { crate::arch::probe::copy_bytes(va as *mut u8, data.as_ptr(), data.len()) }
            .map_err(|(done, _)| RegionError::PageLost { page, done })
    }

    /// Read the aligned `u64` at byte `offset` of `page` with one 8-byte load. A copy (`read_at`) moves
    /// bytes one at a time and may see half of another CPU's concurrent store; this cannot. A page that
    /// is not present is faulted in first, as for a copy.
    pub fn read_u64(&self, page: u64, offset: usize) -> Result<u64, RegionError> {
        let va = self.word(page, offset)?;
        // SAFETY: an aligned word inside one page of this region: plain memory, mapped or resolved by the
        // region's fault handler on access; a refused fault comes back as an error through the fixup.
        unsafe { crate::arch::probe::read_u64(va) }.map_err(|_| RegionError::PageLost { page, done: 0 })
    }

    /// Store `value` into the aligned `u64` at byte `offset` of `page` with one 8-byte store (see
    /// [`Region::read_u64`]).
    pub fn write_u64(&self, page: u64, offset: usize, value: u64) -> Result<(), RegionError> {
        let va = self.word(page, offset)?;
        // SAFETY: as for `read_u64`; region memory is never referenced, so the store aliases nothing.
        unsafe { crate::arch::probe::write_u64(va, value) }.map_err(|_| RegionError::PageLost { page, done: 0 })
    }

    fn word(&self, page: u64, offset: usize) -> Result<u64, RegionError> {
        if !offset.is_multiple_of(8) {
            return Err(RegionError::Bytes { offset, len: 8 });
        }
        Ok(self.va(page)? + Self::span(offset, 8)?)
    }

    fn span(offset: usize, len: usize) -> Result<u64, RegionError> {
        match offset.checked_add(len) {
            Some(end) if end <= 4096 => Ok(offset as u64),
            _ => Err(RegionError::Bytes { offset, len }),
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        fault::unregister(self.base);
        for page in 0..self.pages {
            let Ok(va) = self.va(page) else { continue };
            match paging::read_leaf(va) {
                Ok(e) if e.is_present() => {
                    if let Ok((frame, _)) = self.unmap(page, Pte::EMPTY) {
                        drop(frame);
                    }
                }
                Ok(e) if e != Pte::EMPTY => {
                    let _ = self.set_entry(page, Pte::EMPTY);
                }
                _ => {}
            }
        }
    }
}
