//! zstore: a compressed page store — one 4 KiB page in, a pool object (or a single word) out, and back.
//! It is the part of zswap's `zswap_store`/`zswap_load` and zram's `zram_write_page`/`zram_read_page`
//! that sits between a page and a pool handle, and what tmem keeps for each page it holds.
//!
//! # Why
//!
//! A pool ([`zpool::ZPool`]) stores objects; a compressor ([`compress::Compressor`]) turns a page into
//! bytes. Between them sit a few decisions every compressed-memory layer of Linux makes the same way,
//! and that tmem, the zsmalloc/zbud test kernels and the benchmarks all need, so they live once, here:
//!
//! 1. A page that is one 8-byte word repeated (zero pages, mostly) is kept as that word: no compression,
//!    no pool memory (zswap's and zram's *same-filled* pages, [`StoreStats::same_pages`]).
//! 2. A page that does not shrink below a threshold is not worth a pool object: it is refused
//!    ([`PoorPage::Reject`], counted as zswap's `reject_compress_poor`) or kept whole, uncompressed
//!    ([`PoorPage::StoreWhole`], zram's `huge_pages`). Which, and where the threshold is, is [`Policy`];
//!    [`Policy::zram`] is zram's own rule (below).
//! 3. Everything else is compressed into the caller's per-CPU [`Compressor`] (which allocates nothing),
//!    copied into a fresh pool object through a [`MapMode::WriteOnly`] mapping, and described by an
//!    [`Entry`]: Linux zcache's *pampd*, the pool's handle plus what is needed to decode it.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | page | the [`PAGE_SIZE`] bytes being stored |
//! | stored bytes | what the compressor made of a page: header, check, stream (`compress` crate) |
//! | entry | what the store hands back for a page ([`Entry`]); the only way to get the page back or free it |
//! | same-filled | a page of one repeated 8-byte word ([`compress::same_filled`]) |
//! | poor page | a page whose stored bytes would exceed [`Policy::threshold`] |
//! | whole page | a poor page kept uncompressed in a [`PAGE_SIZE`] object ([`PoorPage::StoreWhole`]) |
//!
//! # The three kinds of entry
//!
//! | entry | pool object | decoded by |
//! |---|---|---|
//! | [`Entry::Same`]`{ word }` | none | [`compress::fill_same`] |
//! | [`Entry::Compressed`]`{ handle, len, algorithm }` | `len` stored bytes | [`Compressor::decompress`]: the Adler-32 check catches damage ([`StoreError::Corrupt`]) |
//! | [`Entry::Whole`]`{ handle, check }` | the page's 4096 raw bytes | a copy, checked against the Adler-32 kept in the entry ([`compress::page_check`]): damage is [`StoreError::Corrupt`] |
//!
//! # Worked example
//!
//! With the default policy (threshold 3584 bytes, poor pages rejected) and LZ4, three pages arrive:
//!
//! ```text
//!   zero page        same-filled, word 0 → Entry::Same { word: 0 }      same_pages 1, no pool object
//!   perl heap page   compresses to 1781 stored bytes ≤ 3584 → malloc(1781), copy in
//!                    → Entry::Compressed { handle, len: 1781, algorithm: 1 }
//!                    compr_data_size 1781, mem_used_total = the pool's pages × 4096
//!   random bytes     LZ4 makes 4119 stored bytes > 3584 → Err(Incompressible { size: 4119 })
//!                    reject_compress_poor 1; the caller writes the page to its swap device instead
//! ```
//!
//! `stored_pages` is then 2 and `orig_data_size` 8192. The test `worked_example_from_the_header`
//! replays it.
//!
//! # zram's rule and zram's `mm_stat`
//!
//! zram never refuses a page. `zram_write_page` (drivers/block/zram/zram_drv.c) compresses it, and if
//! `comp_len >= huge_class_size` — zsmalloc's `zs_huge_class_size()`, the smallest object its huge class
//! takes (`zsmalloc::huge_class_size`: 3257 bytes at chain 4, 3625 at chain 8) — it stores the page's 4096
//! raw bytes instead: in the huge class the object would take a whole frame anyway, and raw bytes need no
//! decompression. [`Policy::zram`]`(huge_class_size)` is that rule: threshold `huge_class_size − 1`,
//! [`PoorPage::StoreWhole`]. One difference stays: zram compares the bare compressor output, this store its
//! stored bytes, which carry the 5-byte frame ([`compress::OVERHEAD`]: algorithm id and Adler-32). That is
//! the right comparison for our pool (the frame is part of the object `malloc` places), and it moves only
//! pages whose stream ends within 5 bytes below the threshold.
//!
//! [`StoreStats`] holds zram's `/sys/block/zram<id>/mm_stat` fields with zram's meaning (`mm_stat_show`):
//!
//! | `mm_stat` field | here | counts |
//! |---|---|---|
//! | `orig_data_size` | [`StoreStats::orig_data_size`] | 4096 × pages held, same-filled and whole pages included (zram: `pages_stored << PAGE_SHIFT`) |
//! | `compr_data_size` | [`StoreStats::compr_data_size`] | bytes of the pool objects held: the stored bytes of each compressed page (zram: the bare stream; here 5 bytes more a page), 4096 per whole page, 0 per same-filled page |
//! | `mem_used_total` | [`StoreStats::mem_used_total`] | the pool's frames × 4096, everything it holds: data, headers, class rounding, free places, zspage tails (zram: `zs_get_total_pages() << PAGE_SHIFT`) |
//! | `same_pages` | [`StoreStats::same_pages`] | same-filled pages held, as one word and no pool object |
//! | `huge_pages` | [`StoreStats::huge_pages`] | pages held whole ([`Entry::Whole`]) |
//! | `pages_compacted` | [`StoreStats::pages_compacted`] | frames the pool's compaction freed, ever |
//!
//! (`mem_limit`, `mem_used_max` and `huge_pages_since` have no counterpart here.) `mem_used_total ÷
//! compr_data_size` is then the pool's cost over the ideal, as zram's documentation suggests.
//!
//! # Contracts
//!
//! - A refused store changes nothing but its counter (`reject_compress_poor` or `reject_alloc_fail`):
//!   the page was not taken, and the caller must keep it or send it elsewhere (frontswap's rule: a
//!   refused store goes to the swap device).
//! - [`Zstore::load`] gives the exact page back or an error: [`StoreError::Corrupt`] when the stored
//!   bytes do not decode to a page whose check matches, [`StoreError::Pool`] with
//!   [`PoolError::StaleHandle`] for an entry whose object is gone. A failed load leaves the entry in
//!   place; its page buffer holds garbage then.
//! - An [`Entry`] is neither `Copy` nor `Clone`: [`Zstore::free`] consumes it, so an entry cannot be
//!   freed twice by mistake. (Its handle can still be made stale behind its back by a pool that evicts;
//!   a load then says so.)
//! - [`Zstore::store_within`] adds a caller's size limit (tmem's zcache rules for persistent pages) on
//!   top of the policy: above it a page is refused even under [`PoorPage::StoreWhole`].
//! - [`Zstore::evict`] lets the pool free one page of objects (zbud's LRU page) and keeps the counters
//!   right; the caller maps the handles back to its own keys and drops those entries unfreed.
//! - The store allocates nothing on the heap: the compressor brings its buffers, the pool its frames.
//! - [`StoreStats`] always satisfies `stored_pages = same_pages + compressed + huge_pages` and
//!   `orig_data_size = stored_pages × 4096`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use core::fmt;

pub use compress::{Algorithm, CompressError, Compressor, DecompressError, PAGE_SIZE};
use zpool::{Handle, MapMode, PoolError, ZPool};

#[cfg(test)]
mod tests;

/// A page compressed ahead of its store (by the caller's per-CPU compressor, with no store's lock
/// held), for [`Zstore::store_prepared`]. Owned (a page of bytes inline): the compressor is free again
/// once this exists.
// The page of bytes stays inline on purpose: one `Prepared` lives on the storing CPU's stack per store,
// and boxing it would allocate on the swap-out path.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum Prepared {
    /// Every 8-byte word the same: kept as the word.
    Same { word: u64 },
    /// The stored bytes (the compressor's frame: header, check, stream) in `bytes[..len]`.
    Compressed { bytes: [u8; PAGE_SIZE], len: usize, algorithm: u8 },
    /// The stored bytes would not fit in a page: `size` of them.
    Poor { size: usize },
}

impl core::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Prepared::Same { word } => write!(f, "Same({word:#x})"),
            Prepared::Compressed { len, algorithm, .. } => write!(f, "Compressed({len} bytes, algorithm {algorithm})"),
            Prepared::Poor { size } => write!(f, "Poor({size})"),
        }
    }
}

impl Prepared {
    /// Compress `page` with `comp` (no threshold: each store applies its own when it keeps it).
    pub fn new(comp: &mut Compressor, page: &[u8; PAGE_SIZE]) -> Result<Prepared, CompressError> {
        if let Some(word) = compress::same_filled(page) {
            return Ok(Prepared::Same { word });
        }
        let algorithm = comp.algorithm().id();
        match comp.compress(page, PAGE_SIZE) {
            Ok(stored) => {
                let mut bytes = [0u8; PAGE_SIZE];
                bytes[..stored.len()].copy_from_slice(stored);
                Ok(Prepared::Compressed { len: stored.len(), bytes, algorithm })
            }
            Err(CompressError::Incompressible { size, .. }) => Ok(Prepared::Poor { size }),
            Err(e) => Err(e),
        }
    }
}

/// What to do with a page whose stored bytes would exceed the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoorPage {
    /// Refuse it: the caller keeps the page or writes it to its backing device (zswap, zcache).
    Reject,
    /// Keep it uncompressed in a [`PAGE_SIZE`] object (zram's `huge_pages`). Needs a pool whose
    /// `max_size` is at least [`PAGE_SIZE`] (zsmalloc); zbud refuses such objects, and the page is then
    /// refused as `reject_alloc_fail`.
    StoreWhole,
}

/// How the store decides what to keep (see the module header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The largest stored size worth a pool object, in bytes, for every page of this store: zswap's
    /// "compression too poor" cut (`reject_compress_poor`). The default, 3584 (7/8 of a page), is the
    /// value zcache gave its persistent-page rule `zv_max_zsize` (called `zv_max_page_size` before Linux
    /// 3.1). That rule itself — persistent pages only, beside zcache's `zv_max_mean_zsize` and
    /// `zv_page_count_policy_percent` — is tmem's to apply, through [`Zstore::store_within`].
    pub threshold: usize,
    pub poor: PoorPage,
}

impl Policy {
    /// 3584 bytes (7/8 of a page: zcache's `zv_max_zsize` default), poor pages rejected.
    pub const DEFAULT: Policy = Policy { threshold: PAGE_SIZE / 8 * 7, poor: PoorPage::Reject };

    /// zram's rule (`zram_write_page`, see "zram's rule and zram's `mm_stat`" in the module header): a page
    /// whose stored bytes reach `huge_class_size` is kept whole, every other page compressed; nothing is
    /// refused for its size. Pass the pool's huge class size (zsmalloc's `huge_class_size`, Linux's
    /// `zs_huge_class_size`). A `huge_class_size` of 0 keeps every page whole, as zram would.
    pub const fn zram(huge_class_size: usize) -> Policy {
        Policy { threshold: huge_class_size.saturating_sub(1), poor: PoorPage::StoreWhole }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What the store keeps for one page: zcache's *pampd*.
#[derive(Debug, PartialEq, Eq)]
pub enum Entry {
    /// A same-filled page: the word, and no pool object.
    Same { word: u64 },
    /// A compressed page: `len` stored bytes in the object `handle`, made by `algorithm` (an
    /// [`Algorithm::id`]; the stored bytes say it again in their first byte).
    Compressed { handle: Handle, len: u32, algorithm: u8 },
    /// A poor page kept whole: [`PAGE_SIZE`] raw bytes in the object `handle`, and their Adler-32
    /// ([`compress::page_check`]). A compressed frame carries its own check; raw bytes have nowhere to
    /// keep one, so the entry does (4 bytes, within the size the other variants give the enum anyway).
    Whole { handle: Handle, check: u32 },
}

impl Entry {
    /// The pool object behind the entry, if it has one.
    pub fn handle(&self) -> Option<Handle> {
        match *self {
            Entry::Same { .. } => None,
            Entry::Compressed { handle, .. } | Entry::Whole { handle, .. } => Some(handle),
        }
    }

    /// Bytes of pool object the entry holds (0 for a same-filled page).
    pub fn stored_len(&self) -> usize {
        match *self {
            Entry::Same { .. } => 0,
            Entry::Compressed { len, .. } => len as usize,
            Entry::Whole { .. } => PAGE_SIZE,
        }
    }
}

/// Why a page was not stored or not loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// The page would take `size` stored bytes, above the policy's threshold, and the policy rejects
    /// such pages (`reject_compress_poor`).
    Incompressible { size: usize },
    /// The pool refused (`malloc`: out of memory, too large — counted as `reject_alloc_fail`; `map` or
    /// `free`: a stale handle, a page it could not map).
    Pool(PoolError),
    /// The stored bytes did not decode to the page that was stored (`compress`'s check failed).
    Corrupt,
    /// The stored bytes name an algorithm no compressor knows.
    UnknownAlgorithm(u8),
    /// The compressor failed in a way its contract says cannot happen; reported, not panicked on.
    Compressor(CompressError),
}

impl From<PoolError> for StoreError {
    fn from(e: PoolError) -> Self {
        StoreError::Pool(e)
    }
}

impl From<DecompressError> for StoreError {
    fn from(e: DecompressError) -> Self {
        match e {
            DecompressError::UnknownAlgorithm(id) => StoreError::UnknownAlgorithm(id),
            DecompressError::Corrupt | DecompressError::OutputTooSmall => StoreError::Corrupt,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StoreError::Incompressible { size } => {
                write!(f, "the page compresses to {size} bytes, above the threshold")
            }
            StoreError::Pool(e) => write!(f, "pool: {e}"),
            StoreError::Corrupt => write!(f, "the stored bytes are corrupt"),
            StoreError::UnknownAlgorithm(id) => write!(f, "unknown compression algorithm {id}"),
            StoreError::Compressor(e) => write!(f, "compressor: {e:?}"),
        }
    }
}

/// The store's counters, named as zram's `mm_stat` and zswap's debugfs files name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Pages held (every kind of entry).
    pub stored_pages: u64,
    /// `stored_pages` × 4096, same-filled and whole pages included: what the held pages would take
    /// uncompressed (zram `orig_data_size`).
    pub orig_data_size: u64,
    /// Bytes of pool objects held: stored bytes (frame included) of compressed pages plus 4096 per whole
    /// page; nothing for same-filled pages (zram `compr_data_size`, where a compressed page counts its bare
    /// stream).
    pub compr_data_size: u64,
    /// The pool's frames × 4096, read from the pool when [`Zstore::stats`] is called (zram `mem_used_total`).
    pub mem_used_total: u64,
    /// Same-filled pages held, as one word each (zram and zswap `same_pages`/`same_filled_pages`).
    pub same_pages: u64,
    /// Poor pages held whole (zram `huge_pages`).
    pub huge_pages: u64,
    /// Pages freed by the pool's compaction, ever (zram `pages_compacted`).
    pub pages_compacted: u64,
    /// Stores refused because the page did not compress below the threshold (zswap `reject_compress_poor`).
    pub reject_compress_poor: u64,
    /// Stores refused by the pool's `malloc` (zswap `reject_alloc_fail`).
    pub reject_alloc_fail: u64,
    /// Successful loads, ever.
    pub loads: u64,
    /// Loads that found corrupt stored bytes, ever.
    pub corrupt_loads: u64,
}

/// A compressed page store over the pool `P` (see the module header).
#[derive(Debug)]
pub struct Zstore<P> {
    pool: P,
    policy: Policy,
    stats: StoreStats,
}

impl<P: ZPool> Zstore<P> {
    /// A store keeping its objects in `pool`, with `policy`.
    pub fn new(pool: P, policy: Policy) -> Self {
        Zstore { pool, policy, stats: StoreStats::default() }
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The pool, for its own statistics.
    pub fn pool(&self) -> &P {
        &self.pool
    }

    /// The pool, mutably. Freeing or rewriting the store's objects through it breaks the store's
    /// entries (tests do it on purpose, to corrupt stored bytes).
    pub fn pool_mut(&mut self) -> &mut P {
        &mut self.pool
    }

    /// Take the pool back; objects still held stay allocated in it.
    pub fn into_pool(self) -> P {
        self.pool
    }

    /// The counters, with the pool's current page count and compaction total.
    pub fn stats(&self) -> StoreStats {
        let pool = self.pool.stats();
        StoreStats {
            mem_used_total: pool.pages * PAGE_SIZE as u64,
            pages_compacted: pool.pages_compacted,
            ..self.stats
        }
    }

    /// Keep `page`, compressing it with `comp` (the caller's per-CPU compressor). On `Err` nothing was
    /// kept and only the matching reject counter moved.
    pub fn store(&mut self, comp: &mut Compressor, page: &[u8; PAGE_SIZE]) -> Result<Entry, StoreError> {
        self.store_within(comp, page, usize::MAX)
    }

    /// [`Zstore::store_within`] for a page the caller compressed already ([`Prepared::new`], with its
    /// per-CPU compressor, outside whatever lock guards this store): the same rules, the same counters,
    /// the same entry, without the compression. zcache compresses this way before it takes its one lock.
    pub fn store_prepared(
        &mut self,
        prepared: &Prepared,
        page: &[u8; PAGE_SIZE],
        limit: usize,
    ) -> Result<Entry, StoreError> {
        let compressed = match prepared {
            Prepared::Same { word } => {
                self.stats.same_pages += 1;
                self.count_stored(0);
                return Ok(Entry::Same { word: *word });
            }
            Prepared::Compressed { bytes, len, algorithm } => Ok((&bytes[..*len], *algorithm)),
            Prepared::Poor { size } => Err(*size),
        };
        self.keep(compressed, page, limit)
    }

    /// [`Zstore::store`] under one more rule of the caller's: a page whose stored bytes would exceed
    /// `limit` is refused with [`StoreError::Incompressible`] (counted in `reject_compress_poor`) whatever
    /// the policy says of poor pages — a [`PoorPage::StoreWhole`] policy does not keep it whole. tmem passes
    /// zcache's `zv_max_zsize` / `zv_max_mean_zsize` for persistent pages here. Same-filled pages take no
    /// pool memory and are kept whatever the limit.
    pub fn store_within(
        &mut self,
        comp: &mut Compressor,
        page: &[u8; PAGE_SIZE],
        limit: usize,
    ) -> Result<Entry, StoreError> {
        if let Some(word) = compress::same_filled(page) {
            self.stats.same_pages += 1;
            self.count_stored(0);
            return Ok(Entry::Same { word });
        }
        let algorithm = comp.algorithm().id();
        let compressed = match comp.compress(page, self.policy.threshold) {
            Ok(stored) => Ok((stored, algorithm)),
            Err(CompressError::Incompressible { size, .. }) => Err(size),
            Err(e) => return Err(StoreError::Compressor(e)),
        };
        self.keep(compressed, page, limit)
    }

    /// The rules after compression: `compressed` is the stored bytes and their algorithm, or the size
    /// that was too big for them. Poor pages go by the policy and `limit`; the rest gets a pool object.
    fn keep(
        &mut self,
        compressed: Result<(&[u8], u8), usize>,
        page: &[u8; PAGE_SIZE],
        limit: usize,
    ) -> Result<Entry, StoreError> {
        // A page compressed without this store's threshold ([`Prepared`]) meets it here.
        let compressed = match compressed {
            Ok((stored, _)) if stored.len() > self.policy.threshold => Err(stored.len()),
            other => other,
        };
        let (bytes, whole, algorithm): (&[u8], bool, u8) = match compressed {
            Ok((stored, _)) if stored.len() > limit => {
                self.stats.reject_compress_poor += 1;
                return Err(StoreError::Incompressible { size: stored.len() });
            }
            Ok((stored, alg)) => (stored, false, alg),
            Err(size) if size > limit => {
                self.stats.reject_compress_poor += 1;
                return Err(StoreError::Incompressible { size });
            }
            Err(size) => match self.policy.poor {
                PoorPage::Reject => {
                    self.stats.reject_compress_poor += 1;
                    return Err(StoreError::Incompressible { size });
                }
                PoorPage::StoreWhole => (&page[..], true, 0),
            },
        };
        let handle = match self.pool.malloc(bytes.len()) {
            Ok(h) => h,
            Err(e) => {
                self.stats.reject_alloc_fail += 1;
                return Err(StoreError::Pool(e));
            }
        };
        if let Err(e) = self.pool.map(handle, MapMode::WriteOnly, |obj| obj.copy_from_slice(bytes)) {
            // The object is ours and fresh: give it back. Should that fail too, the pool leaks one object
            // and the first error is still the answer.
            let _ = self.pool.free(handle);
            self.stats.reject_alloc_fail += 1;
            return Err(StoreError::Pool(e));
        }
        self.count_stored(bytes.len());
        if whole {
            self.stats.huge_pages += 1;
            Ok(Entry::Whole { handle, check: compress::page_check(page) })
        } else {
            Ok(Entry::Compressed { handle, len: bytes.len() as u32, algorithm })
        }
    }

    fn count_stored(&mut self, object_bytes: usize) {
        self.stats.stored_pages += 1;
        self.stats.orig_data_size += PAGE_SIZE as u64;
        self.stats.compr_data_size += object_bytes as u64;
    }

    /// Put the page of `entry` back into `page`, decompressing with `comp` (which decodes either
    /// algorithm). The entry stays held.
    pub fn load(&mut self, comp: &mut Compressor, entry: &Entry, page: &mut [u8; PAGE_SIZE]) -> Result<(), StoreError> {
        let r = match *entry {
            Entry::Same { word } => {
                compress::fill_same(page, word);
                Ok(())
            }
            Entry::Compressed { handle, len, .. } => self
                .pool
                .map(handle, MapMode::ReadOnly, |obj| {
                    if obj.len() != len as usize {
                        return Err(StoreError::Corrupt);
                    }
                    comp.decompress(obj, page).map_err(StoreError::from)
                })
                .map_err(StoreError::Pool)
                .and_then(|r| r),
            Entry::Whole { handle, check } => self
                .pool
                .map(handle, MapMode::ReadOnly, |obj| match <&[u8; PAGE_SIZE]>::try_from(&*obj) {
                    Ok(raw) if compress::page_check(raw) == check => {
                        page.copy_from_slice(raw);
                        Ok(())
                    }
                    _ => Err(StoreError::Corrupt),
                })
                .map_err(StoreError::Pool)
                .and_then(|r| r),
        };
        match r {
            Ok(()) => self.stats.loads += 1,
            Err(StoreError::Corrupt | StoreError::UnknownAlgorithm(_)) => self.stats.corrupt_loads += 1,
            Err(_) => {}
        }
        r
    }

    /// Let go of `entry`'s page. On `Err` (the pool refused the handle) the counters are unchanged.
    pub fn free(&mut self, entry: Entry) -> Result<(), StoreError> {
        if let Some(handle) = entry.handle() {
            self.pool.free(handle)?;
        }
        // Saturating: an entry of another store (a caller's mistake) must not panic the kernel.
        let s = &mut self.stats;
        s.stored_pages = s.stored_pages.saturating_sub(1);
        s.orig_data_size = s.orig_data_size.saturating_sub(PAGE_SIZE as u64);
        s.compr_data_size = s.compr_data_size.saturating_sub(entry.stored_len() as u64);
        match entry {
            Entry::Same { .. } => s.same_pages = s.same_pages.saturating_sub(1),
            Entry::Whole { .. } => s.huge_pages = s.huge_pages.saturating_sub(1),
            Entry::Compressed { .. } => {}
        }
        Ok(())
    }

    /// Compact the pool (zram's `compact` attribute); returns the pages freed.
    pub fn compact(&mut self) -> Result<u64, StoreError> {
        Ok(self.pool.compact()?)
    }

    /// Have the pool evict one page ([`ZPool::evict`]): `writeback(handle, bytes)` sees each object of
    /// the page, and only if it returns true for all of them does the pool release them and free the
    /// page. The store then forgets those objects' pages in its counters (an object of [`PAGE_SIZE`]
    /// bytes was a whole page, any other a compressed one, as the `compress` crate promises); the caller
    /// must drop the matching [`Entry`]s without [`Zstore::free`] — their handles are stale. On `Err`
    /// (the pool has no page, refused, or cannot evict at all) nothing changed.
    pub fn evict(&mut self, writeback: &mut dyn FnMut(Handle, &[u8]) -> bool) -> Result<u64, StoreError> {
        let (mut pages, mut bytes, mut whole) = (0u64, 0u64, 0u64);
        let freed = self.pool.evict(&mut |h, obj| {
            let taken = writeback(h, obj);
            if taken {
                pages += 1;
                bytes += obj.len() as u64;
                whole += u64::from(obj.len() == PAGE_SIZE);
            }
            taken
        })?;
        let s = &mut self.stats;
        s.stored_pages = s.stored_pages.saturating_sub(pages);
        s.orig_data_size = s.orig_data_size.saturating_sub(pages * PAGE_SIZE as u64);
        s.compr_data_size = s.compr_data_size.saturating_sub(bytes);
        s.huge_pages = s.huge_pages.saturating_sub(whole);
        Ok(freed)
    }
}
