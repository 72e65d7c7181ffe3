//! frontswap: the swap layer's door into tmem — Linux's `mm/frontswap.c`, with zcache's key mapping.
//!
//! # Why
//!
//! When reclaim swaps a page out it already knows where on the swap device the page would go: a *swap
//! entry* `(type, offset)`, the type naming the swap area (one per `swapon`), the offset the page slot in
//! it. frontswap offers the page to tmem first, under a key made from that entry; only if tmem refuses
//! does the page go to the device. Swap-in asks frontswap first too, and reads the device on a miss. The
//! page table holds the same swap entry either way, so the rest of the swap code never knows where the
//! page went.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | type | a swap area, 0..[`MAX_SWAPFILES`]; frontswap keeps one persistent tmem pool per type |
//! | offset | a page slot in the swap area, 0..`max_offsets` |
//! | frontswap map | one bit per offset: set when tmem holds the page of that slot (Linux `sis->frontswap_map`) |
//! | store / load | offer a page to tmem / ask for it back (Linux `frontswap_store`, `frontswap_load`) |
//! | invalidate | the swap slot was freed: drop tmem's copy (`frontswap_invalidate_page`); swapoff drops the whole area (`frontswap_invalidate_area`) |
//!
//! # Keys: zcache's swizzle
//!
//! zcache put every swap page into tmem under `oid = (type << SWIZ_BITS) | (offset & SWIZ_MASK)`,
//! `index = offset >> SWIZ_BITS`, with [`SWIZ_BITS`] = 4. zcache's reason ("Swizzling increases objects
//! per swaptype, increasing tmem concurrency for heavy swaploads") was lock spread: tmem hashed each
//! object's oid to one of 256 hash buckets, each under its own spinlock, so one object per swap area would
//! have put every swap page of the area behind one lock. Here tmem is one structure under one lock, so
//! the swizzle buys no concurrency; it is kept for zcache's key layout (the type in the oid keeps areas
//! apart even in one shared pool). [`swap_key`] and [`swap_entry`] convert both ways; the index is 32 bits,
//! so an area has at most 2^36 offsets.
//!
//! ```text
//!   type 1, offset 0x1234      oid = (1 << 4) | 0x4 = 0x14      index = 0x123
//! ```
//!
//! # Contracts (Linux's, kept)
//!
//! - A successful [`Frontswap::store`] sets the offset's bit; a load with the bit set is served by tmem
//!   ([`Frontswap::load`] returns `Ok(true)`), a load with the bit clear is the device's (`Ok(false)`).
//! - A refused store leaves the page to the caller, who writes it to the device. If the offset held an
//!   older page in tmem (a *duplicate* store: the swap slot was reused while its old copy still sat in
//!   tmem), that copy is invalidated and the bit cleared, so a later load reads the device's new page,
//!   never the stale one. (tmem's put already flushed the old copy before it failed; frontswap makes sure.)
//! - Loads are non-exclusive: the page stays in tmem until the swap layer frees the slot and calls
//!   [`Frontswap::invalidate_page`].
//! - [`Frontswap::invalidate_area`] drops every page of the type and the type itself (swapoff); it must be
//!   [`Frontswap::init`]ed again before use.
//! - Every wrong type or offset is a typed [`FrontswapError`]; nothing panics.
//!
//! [`Frontswap::writeback_oldest`] is what zswap added later: under memory pressure the oldest page in
//! tmem is written to the device at its own offset and dropped from tmem, so tmem makes room for newer
//! (hotter) pages instead of refusing them.

use alloc::collections::TryReserveError;
use alloc::vec::Vec;
use core::fmt;

use pagemem::{FrameSource, PageMemory};

use crate::{Backend, Compressor, Key, Page, PoolId, PoolKind, Tmem, TmemError};

#[cfg(test)]
mod tests;

/// Swap areas frontswap serves (Linux's `MAX_SWAPFILES` is 32 minus a few; four is plenty here).
pub const MAX_SWAPFILES: usize = 4;

/// Offset bits moved into the oid (zcache's `SWIZ_BITS`).
pub const SWIZ_BITS: u32 = 4;

/// The offset bits moved into the oid.
pub const SWIZ_MASK: u64 = (1 << SWIZ_BITS) - 1;

/// The most offsets one area may have: the index is a `u32` of offset bits above [`SWIZ_BITS`].
pub const MAX_OFFSETS: u64 = (u32::MAX as u64 + 1) << SWIZ_BITS;

/// The tmem key of swap entry `(ty, offset)` in `pool` (zcache's `oswiz`/`iswiz`). `offset` must be
/// below [`MAX_OFFSETS`].
pub const fn swap_key(pool: PoolId, ty: u8, offset: u64) -> Key {
    Key { pool, oid: ((ty as u64) << SWIZ_BITS) | (offset & SWIZ_MASK), index: (offset >> SWIZ_BITS) as u32 }
}

/// The swap entry `(type, offset)` a frontswap key stands for: the inverse of [`swap_key`].
pub const fn swap_entry(key: Key) -> (u8, u64) {
    ((key.oid >> SWIZ_BITS) as u8, ((key.index as u64) << SWIZ_BITS) | (key.oid & SWIZ_MASK))
}

/// Why a frontswap call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontswapError {
    /// The type is not below [`MAX_SWAPFILES`].
    BadType(u8),
    /// The type is not initialised (never, or since its `invalidate_area`).
    NoSuchType(u8),
    /// `init` of a type that is in use.
    Busy(u8),
    /// The offset is not below the area's `max_offsets`.
    BadOffset { offset: u64, max_offsets: u64 },
    /// `init` with more than [`MAX_OFFSETS`] offsets.
    TooManyOffsets(u64),
    /// No heap memory for the frontswap map.
    NoMemory,
    /// tmem refused (the store's usual answer is [`TmemError::Full`] or `Incompressible`: the caller
    /// writes the page to the device).
    Tmem(TmemError),
}

impl From<TmemError> for FrontswapError {
    fn from(e: TmemError) -> Self {
        FrontswapError::Tmem(e)
    }
}

impl From<TryReserveError> for FrontswapError {
    fn from(_: TryReserveError) -> Self {
        FrontswapError::NoMemory
    }
}

impl fmt::Display for FrontswapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrontswapError::BadType(t) => write!(f, "swap type {t} is not below {MAX_SWAPFILES}"),
            FrontswapError::NoSuchType(t) => write!(f, "swap type {t} is not initialised"),
            FrontswapError::Busy(t) => write!(f, "swap type {t} is already initialised"),
            FrontswapError::BadOffset { offset, max_offsets } => {
                write!(f, "swap offset {offset} is not below {max_offsets}")
            }
            FrontswapError::TooManyOffsets(n) => write!(f, "{n} swap offsets are more than {MAX_OFFSETS}"),
            FrontswapError::NoMemory => write!(f, "no memory for the frontswap map"),
            FrontswapError::Tmem(e) => write!(f, "tmem: {e}"),
        }
    }
}

/// frontswap's counters, as Linux's debugfs `frontswap/` shows them, plus zswap's writeback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrontswapStats {
    /// Loads served by tmem.
    pub loads: u64,
    /// Stores tmem accepted.
    pub succ_stores: u64,
    /// Stores tmem refused (the page went to the device).
    pub failed_stores: u64,
    /// Of `failed_stores`: refused duplicate stores, whose old copy was invalidated.
    pub failed_dup_stores: u64,
    /// Pages invalidated because their swap slot was freed.
    pub invalidates: u64,
    /// Areas invalidated (swapoff).
    pub invalidated_areas: u64,
    /// Pages written back to the device by [`Frontswap::writeback_oldest`].
    pub written_back: u64,
    /// Oldest pages writeback found corrupt: dropped from tmem so writeback can go on, their offsets
    /// remembered so a load reports them corrupt instead of missing (the caller would read stale bytes
    /// from the device).
    pub corrupt_skipped: u64,
}

/// One initialised swap area.
#[derive(Debug)]
struct SwapType {
    pool: PoolId,
    max_offsets: u64,
    /// The frontswap map, one bit per offset.
    map: Vec<u64>,
    /// Bits set in `map` (Linux `sis->frontswap_pages`).
    pages: u64,
    /// Offsets whose page writeback found corrupt and dropped: their bit stays set, a load of one is
    /// `Corrupt`, and invalidating the slot forgets it.
    corrupt: alloc::collections::BTreeSet<u64>,
}

impl SwapType {
    fn check(&self, offset: u64) -> Result<(), FrontswapError> {
        if offset < self.max_offsets {
            Ok(())
        } else {
            Err(FrontswapError::BadOffset { offset, max_offsets: self.max_offsets })
        }
    }

    fn test(&self, offset: u64) -> bool {
        self.map.get((offset / 64) as usize).is_some_and(|w| w & (1 << (offset % 64)) != 0)
    }

    fn set(&mut self, offset: u64) {
        if let Some(w) = self.map.get_mut((offset / 64) as usize)
            && *w & (1 << (offset % 64)) == 0
        {
            *w |= 1 << (offset % 64);
            self.pages += 1;
        }
    }

    fn clear(&mut self, offset: u64) {
        if let Some(w) = self.map.get_mut((offset / 64) as usize)
            && *w & (1 << (offset % 64)) != 0
        {
            *w &= !(1 << (offset % 64));
            self.pages -= 1;
        }
    }
}

fn area(types: &mut [Option<SwapType>; MAX_SWAPFILES], ty: u8) -> Result<&mut SwapType, FrontswapError> {
    match types.get_mut(ty as usize) {
        None => Err(FrontswapError::BadType(ty)),
        Some(None) => Err(FrontswapError::NoSuchType(ty)),
        Some(Some(t)) => Ok(t),
    }
}

/// frontswap over one [`Tmem`] (see the module header). It holds only the maps and the pool ids; every
/// call takes the tmem, so the kernel can keep both behind one lock.
#[derive(Debug, Default)]
pub struct Frontswap {
    types: [Option<SwapType>; MAX_SWAPFILES],
    stats: FrontswapStats,
}

impl Frontswap {
    pub fn new() -> Self {
        Self::default()
    }

    /// swapon: make type `ty`, of `max_offsets` page slots, usable — a new persistent tmem pool (default
    /// backend) over `mem` and an empty frontswap map (Linux `frontswap_init`).
    pub fn init<M: PageMemory + FrameSource>(
        &mut self,
        tmem: &mut Tmem<M>,
        ty: u8,
        max_offsets: u64,
        mem: M,
    ) -> Result<(), FrontswapError> {
        self.init_backend(tmem, ty, max_offsets, None, mem)
    }

    /// [`Frontswap::init`] with a chosen backend for the type's pool (`None`: the persistent default).
    pub fn init_backend<M: PageMemory + FrameSource>(
        &mut self,
        tmem: &mut Tmem<M>,
        ty: u8,
        max_offsets: u64,
        backend: Option<Backend>,
        mem: M,
    ) -> Result<(), FrontswapError> {
        match self.types.get(ty as usize) {
            None => return Err(FrontswapError::BadType(ty)),
            Some(Some(_)) => return Err(FrontswapError::Busy(ty)),
            Some(None) => {}
        }
        if max_offsets > MAX_OFFSETS {
            return Err(FrontswapError::TooManyOffsets(max_offsets));
        }
        let words = max_offsets.div_ceil(64) as usize;
        let mut map = Vec::new();
        map.try_reserve_exact(words)?;
        map.resize(words, 0);
        let pool = tmem.new_pool(PoolKind::Persistent, backend, mem)?;
        self.types[ty as usize] = Some(SwapType { pool, max_offsets, map, pages: 0, corrupt: Default::default() });
        Ok(())
    }

    /// Offer `page`, the contents of swap slot `(ty, offset)`, to tmem. `Ok` means tmem holds it; on `Err`
    /// the caller writes it to the device (see the module header for duplicate stores).
    pub fn store<M: PageMemory + FrameSource>(
        &mut self,
        tmem: &mut Tmem<M>,
        comp: &mut Compressor,
        ty: u8,
        offset: u64,
        page: &Page,
    ) -> Result<(), FrontswapError> {
        self.store_with(tmem, ty, offset, |t, key| t.put(comp, key, page))
    }

    /// [`Frontswap::store`] of a page the caller compressed already ([`zstore::Prepared::new`]): zcache
    /// compresses with its per-CPU stream before it takes its lock, and only this part runs under it.
    pub fn store_prepared<M: PageMemory + FrameSource>(
        &mut self,
        tmem: &mut Tmem<M>,
        prepared: &zstore::Prepared,
        ty: u8,
        offset: u64,
        page: &Page,
    ) -> Result<(), FrontswapError> {
        self.store_with(tmem, ty, offset, |t, key| t.put_prepared(prepared, key, page))
    }

    fn store_with<M: PageMemory + FrameSource>(
        &mut self,
        tmem: &mut Tmem<M>,
        ty: u8,
        offset: u64,
        put: impl FnOnce(&mut Tmem<M>, Key) -> Result<(), TmemError>,
    ) -> Result<(), FrontswapError> {
        let t = area(&mut self.types, ty)?;
        t.check(offset)?;
        let key = swap_key(t.pool, ty, offset);
        let dup = t.test(offset);
        // A new store replaces whatever the slot held, a corrupt page dropped by writeback included.
        t.corrupt.remove(&offset);
        match put(tmem, key) {
            Ok(()) => {
                t.set(offset);
                self.stats.succ_stores += 1;
                Ok(())
            }
            Err(e) => {
                self.stats.failed_stores += 1;
                if dup {
                    // tmem flushed the old copy before refusing; flush again in case it failed before
                    // that step, and clear the bit, so the device's copy is the one that is read.
                    let _ = tmem.flush_page(key);
                    t.clear(offset);
                    self.stats.failed_dup_stores += 1;
                }
                Err(e.into())
            }
        }
    }

    /// Swap-in: `Ok(true)` if tmem had slot `(ty, offset)`'s page and copied it into `out`; `Ok(false)` if
    /// frontswap never took it (the caller reads the device). The page stays in tmem. An `Err` with the
    /// bit set (a corrupt page) is the caller's to report: the device does not hold this page.
    pub fn load<M: PageMemory + FrameSource>(
        &mut self,
        tmem: &mut Tmem<M>,
        comp: &mut Compressor,
        ty: u8,
        offset: u64,
        out: &mut Page,
    ) -> Result<bool, FrontswapError> {
        let t = area(&mut self.types, ty)?;
        t.check(offset)?;
        if !t.test(offset) {
            return Ok(false);
        }
        if t.corrupt.contains(&offset) {
            return Err(FrontswapError::Tmem(TmemError::Corrupt));
        }
        tmem.get(comp, swap_key(t.pool, ty, offset), out)?;
        self.stats.loads += 1;
        Ok(true)
    }

    /// The swap slot was freed: drop tmem's copy. `Ok(true)` if there was one.
    pub fn invalidate_page<M: PageMemory + FrameSource>(
        &mut self,
        tmem: &mut Tmem<M>,
        ty: u8,
        offset: u64,
    ) -> Result<bool, FrontswapError> {
        let t = area(&mut self.types, ty)?;
        t.check(offset)?;
        if !t.test(offset) {
            return Ok(false);
        }
        t.clear(offset);
        self.stats.invalidates += 1;
        if t.corrupt.remove(&offset) {
            // Writeback already dropped its corrupt object from tmem.
            return Ok(true);
        }
        tmem.flush_page(swap_key(t.pool, ty, offset))?;
        Ok(true)
    }

    /// swapoff: drop every page of type `ty`, its pool and its map; the type needs [`Frontswap::init`]
    /// again. Returns the pages dropped.
    pub fn invalidate_area<M: PageMemory + FrameSource>(
        &mut self,
        tmem: &mut Tmem<M>,
        ty: u8,
    ) -> Result<u64, FrontswapError> {
        let pool = area(&mut self.types, ty)?.pool;
        self.types[ty as usize] = None;
        self.stats.invalidated_areas += 1;
        Ok(tmem.destroy_pool(pool)?)
    }

    /// Whether tmem holds slot `(ty, offset)`'s page (its bit is set).
    pub fn contains(&self, ty: u8, offset: u64) -> bool {
        matches!(self.types.get(ty as usize), Some(Some(t)) if t.test(offset))
    }

    /// Pages of type `ty` in tmem (Linux `frontswap_curr_pages` for one area); 0 for an unused type.
    pub fn pages(&self, ty: u8) -> u64 {
        match self.types.get(ty as usize) {
            Some(Some(t)) => t.pages,
            _ => 0,
        }
    }

    /// The tmem pool of type `ty`, if it is initialised.
    pub fn pool(&self, ty: u8) -> Option<PoolId> {
        match self.types.get(ty as usize) {
            Some(Some(t)) => Some(t.pool),
            _ => None,
        }
    }

    /// Page slots of type `ty`, if it is initialised.
    pub fn max_offsets(&self, ty: u8) -> Option<u64> {
        match self.types.get(ty as usize) {
            Some(Some(t)) => Some(t.max_offsets),
            _ => None,
        }
    }

    pub fn stats(&self) -> FrontswapStats {
        self.stats
    }

    /// zswap's writeback: hand the oldest page of type `ty` in tmem to `sink(offset, page)`, which writes
    /// it to the device at `offset` and returns true; the page then leaves tmem and the map and its offset
    /// is returned. `Ok(None)` if the sink refused (nothing changed) or tmem holds no page of `ty`.
    pub fn writeback_oldest<M: PageMemory + FrameSource>(
        &mut self,
        tmem: &mut Tmem<M>,
        comp: &mut Compressor,
        ty: u8,
        sink: &mut dyn FnMut(u64, &Page) -> bool,
    ) -> Result<Option<u64>, FrontswapError> {
        let t = area(&mut self.types, ty)?;
        loop {
            match tmem.writeback_oldest(comp, t.pool, &mut |key, page| sink(swap_entry(key).1, page)) {
                Ok(Some(key)) => {
                    let offset = swap_entry(key).1;
                    t.clear(offset);
                    self.stats.written_back += 1;
                    return Ok(Some(offset));
                }
                Ok(None) => return Ok(None),
                // The oldest page fails its check: it can never be written back, and left in place it
                // would stop writeback for good. Drop it, remember its offset as corrupt (a load must
                // not miss and send the caller to the device's stale bytes), and go on with the next.
                Err(TmemError::Corrupt) => {
                    let Some(key) = tmem.oldest(t.pool) else { return Err(TmemError::Corrupt.into()) };
                    tmem.flush_page(key)?;
                    t.corrupt.insert(swap_entry(key).1);
                    self.stats.corrupt_skipped += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}
