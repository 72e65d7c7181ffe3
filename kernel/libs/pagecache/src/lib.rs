//! The page cache: a bounded set of file pages in RAM, keyed by (file, index), with an LRU, that reads
//! through cleancache and the disk on a miss — Linux's `mm/filemap.c` and `mm/readahead.c`, cut down to
//! what a read-only file disk needs.
//!
//! # Why
//!
//! A disk read costs tens of microseconds on real hardware (much more under QEMU); reading the same file
//! page twice is waste. Linux therefore keeps every file page it has read in the *page cache*
//! (`struct address_space` per inode, `i_pages` indexed by page index) and serves repeated reads from
//! RAM. RAM is finite, so the page cache is the first thing reclaim takes from: *clean* pages — identical
//! to the disk — can simply be forgotten. cleancache (`tmem::cleancache`) is the second chance for such
//! a page: compressed in tmem, it is cheaper to get back than from the disk. This crate is the page cache
//! that sits above it: a fixed number of frames, no readahead, no dirty pages (the disk is read-only).
//!
//! # Vocabulary
//!
//! | term | meaning | Linux |
//! |---|---|---|
//! | file, index | which file (its inode number) and which 4 KiB page of it: a [`PageKey`] | `page->mapping->host->i_ino`, `page->index` |
//! | cached page | a frame owned by the page cache ([`Owner::PAGE_CACHE`]) holding one file page | a `struct page` in `mapping->i_pages` |
//! | LRU | all cached pages, least recently used first; a hit moves a page to the most recent end | the inactive/active lists of `mm/vmscan.c` (one list here) |
//! | capacity | the most pages cached at once | what memory pressure sets in Linux |
//! | evict | the LRU page leaves; it is clean, so its bytes are offered to cleancache and its frame is freed | `__delete_from_page_cache` → `cleancache_put_page` |
//! | lower | what is below the cache: cleancache and the disk ([`Lower`]) | `cleancache_get_page` and `->readpage` |
//! | invalidate | the disk's copy changed: drop the cached page, and cleancache's copy, without a put | `truncate_inode_pages` → `cleancache_invalidate_inode` |
//!
//! # Layout
//!
//! ```text
//!   PageCache ── pages: BTreeMap<PageKey, Cached { pfn, seq }>   (Linux: one xarray per inode)
//!             ── lru:   BTreeMap<seq, PageKey>                   (oldest first; Linux: a list_head in each page)
//!             ── mem:   M: PageMemory + FrameSource              (the frames; read and written only through
//!                                                                 `with_page`, a kmap in the kernel)
//! ```
//!
//! Every use of a page takes the next value of one sequence, so the LRU is an ordered map: the first
//! entry is the least recently used page, and a hit is O(log n) (remove the old seq, insert the new).
//!
//! # The read path (Linux `filemap_read` → `page_cache_sync_readahead` → `do_mpage_readpage`)
//!
//! [`PageCache::read`]:
//!
//! 1. **Lookup** (`find_get_page`): a hit copies the page out, moves it to the most-recent end of the
//!    LRU and returns [`Source::Cache`].
//! 2. **Make room** (reclaim, `shrink_page_list`): on a miss with the cache full, the LRU page is
//!    evicted *first*: its bytes are copied out, its frame is freed, and the bytes go to
//!    [`Lower::evicted`] — `cleancache_put_page`. Evicting first keeps the cache within its capacity at
//!    every moment, and the freed frame is there for the new page (or for tmem's pool).
//! 3. **Allocate** (`page_cache_alloc` + `add_to_page_cache_lru`): a frame for the new page. If the
//!    allocator refuses, evict one more page and retry, until the cache is empty; then the read is
//!    served *uncached* (counted in `uncached_reads`) — a clean page may always be left out.
//! 4. **Fill**: [`Lower::cleancache_get`] first (`cleancache_get_page`; a hit is exclusive, the page is
//!    now only here) → [`Source::Cleancache`]; else [`Lower::read_disk`] (`->readpage`) →
//!    [`Source::Disk`]. A disk error frees the new frame and returns [`PageCacheError::Disk`]: nothing
//!    half-filled is ever cached (Linux: `!PageUptodate` → the page is removed and `-EIO` returned).
//! 5. **Insert** at the most-recent end of the LRU.
//!
//! # Worked example
//!
//! Capacity 2; file 1 has pages 0, 1 and 2 on disk; cleancache is empty.
//!
//! ```text
//!   read (1,0)   miss, not full; cleancache misses; disk read          LRU: (1,0)              Disk
//!   read (1,1)   miss, not full; disk read                             LRU: (1,0) (1,1)        Disk
//!   read (1,0)   hit: moved to the recent end                          LRU: (1,1) (1,0)        Cache
//!   read (1,2)   miss, full: evict (1,1) → cleancache holds it; disk   LRU: (1,0) (1,2)        Disk
//!   read (1,1)   miss, full: evict (1,0) → cleancache; cleancache hit  LRU: (1,2) (1,1)        Cleancache
//!   file 1 rewritten on disk: invalidate_file(1) drops (1,2) (1,1) and cleancache's (1,0), no puts
//!   read (1,0)   miss; cleancache misses (invalidated); disk: the new bytes                    Disk
//! ```
//!
//! stats: hits 1, misses 5, cleancache_hits 1, disk_reads 4, evictions 2, invalidations 2.
//!
//! # Contracts
//!
//! - At most `capacity` pages are cached at any moment, each in its own frame from `mem`; every frame is
//!   freed when its page leaves: eviction, invalidation, [`PageCache::clear`], or dropping the cache.
//! - [`Lower::evicted`] sees only pages that leave by eviction (a miss that needs room, a refused frame,
//!   [`PageCache::shrink`], a lower [`PageCache::set_capacity`]): clean pages whose disk copy is current.
//!   Invalidated pages never reach it, and every invalidation is passed down ([`Lower::invalidate_page`],
//!   [`Lower::invalidate_file`]) so cleancache cannot serve stale bytes either.
//! - A read returns the bytes its source gave, or an error with nothing new cached; `out` then holds
//!   garbage. A page whose frame cannot be mapped on a hit ([`PageCacheError::Mem`]) stays cached.
//! - No operation panics; the heap is used only for the two indexes (one node per cached page).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::collections::BTreeMap;
use core::fmt;

use pagemem::{FrameSource, PageMemory};
pub use pagemem::{MemError, Owner, Pfn};

pub mod cleancache;

#[cfg(test)]
mod tests;

/// Bytes in a page.
pub const PAGE_SIZE: usize = pagemem::PAGE;

/// One page of data.
pub type Page = [u8; PAGE_SIZE];

/// The name of a file page: the file's inode number and the page's index in it (Linux: the page's
/// `mapping` and `index`). Ordered by file, then index, so one file's pages are one range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageKey {
    pub file: u32,
    pub index: u32,
}

impl PageKey {
    pub const fn new(file: u32, index: u32) -> Self {
        PageKey { file, index }
    }
}

/// Why the disk could not read a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskError {
    /// No such file, or the index is past its end.
    OutOfRange,
    /// The device failed the request.
    Io,
}

/// Where a read's bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The page cache held the page.
    Cache,
    /// A miss served by cleancache (and the page is cached now).
    Cleancache,
    /// A miss read from the disk.
    Disk,
}

/// Why a read failed. Nothing new is cached after one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageCacheError {
    /// The disk read failed.
    Disk(DiskError),
    /// A cached page's frame could not be mapped (the page stays cached).
    Mem(MemError),
}

impl fmt::Display for PageCacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PageCacheError::Disk(DiskError::OutOfRange) => write!(f, "read past the end of the file"),
            PageCacheError::Disk(DiskError::Io) => write!(f, "disk I/O error"),
            PageCacheError::Mem(e) => write!(f, "cannot map a page-cache frame: {e:?}"),
        }
    }
}

/// What is below the page cache: cleancache and the disk. The kernel implements it over tmem's cleancache
/// and its virtio disk; [`cleancache::CleancacheLower`] is that composition over any [`cleancache::Disk`].
pub trait Lower {
    /// A clean page left the cache by eviction: offer it to cleancache (`cleancache_put_page`). Its frame
    /// is already freed; `page` is a copy.
    fn evicted(&mut self, key: PageKey, page: &Page);

    /// A miss, before the disk: copy cleancache's page into `out` and return true (the get is exclusive:
    /// cleancache no longer holds it), or return false (`cleancache_get_page`).
    fn cleancache_get(&mut self, key: PageKey, out: &mut Page) -> bool;

    /// Read the page from the disk into `out` (`->readpage`).
    fn read_disk(&mut self, key: PageKey, out: &mut Page) -> Result<(), DiskError>;

    /// The disk's copy of `key` changed or went away: drop cleancache's copy (`cleancache_invalidate_page`).
    fn invalidate_page(&mut self, key: PageKey);

    /// The disk's copy of `file` changed or went away: drop all its pages from cleancache
    /// (`cleancache_invalidate_inode`).
    fn invalidate_file(&mut self, file: u32);
}

/// The page cache's counters. Every miss is served by cleancache or issues one disk read:
/// `misses == cleancache_hits + disk_reads`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PageCacheStats {
    /// Reads served from the cache.
    pub hits: u64,
    /// Reads that missed (Linux counts these as page-cache misses in `mm_filemap_add_to_page_cache`).
    pub misses: u64,
    /// Of `misses`: served by cleancache.
    pub cleancache_hits: u64,
    /// Of `misses`: disk reads issued, failed ones included.
    pub disk_reads: u64,
    /// Of `disk_reads`: failed (nothing was cached).
    pub disk_errors: u64,
    /// Pages evicted; each was handed to [`Lower::evicted`] unless its frame could not be mapped.
    pub evictions: u64,
    /// Of `evictions`: pages dropped without going to [`Lower::evicted`] because their frame could not
    /// be mapped (they are clean; nothing is lost but the second chance).
    pub evict_map_errors: u64,
    /// Cached pages dropped by `invalidate_page` and `invalidate_file`.
    pub invalidations: u64,
    /// `invalidate_file` calls.
    pub invalidated_files: u64,
    /// Frame allocations retried after evicting one more page.
    pub alloc_retries: u64,
    /// Reads served but not cached: no frame even with the cache empty, a capacity of 0, or a new frame
    /// that could not be mapped.
    pub uncached_reads: u64,
    /// Frames the memory refused to take back (an inconsistency; should stay 0).
    pub free_errors: u64,
    /// Pages cached now.
    pub cached_pages: u64,
    /// The capacity, in pages.
    pub capacity: u64,
}

/// One cached page: its frame and its place in the LRU.
#[derive(Debug, Clone, Copy)]
struct Cached {
    pfn: Pfn,
    seq: u64,
}

/// A bounded page cache over frames from `M` (see the module header).
#[derive(Debug)]
pub struct PageCache<M: PageMemory + FrameSource> {
    mem: M,
    capacity: usize,
    pages: BTreeMap<PageKey, Cached>,
    /// Cached pages by last use, oldest first.
    lru: BTreeMap<u64, PageKey>,
    /// The next use's sequence number.
    seq: u64,
    stats: PageCacheStats,
}

impl<M: PageMemory + FrameSource> PageCache<M> {
    /// An empty cache of at most `capacity` pages, taking its frames from `mem`.
    pub fn new(mem: M, capacity: usize) -> Self {
        PageCache { mem, capacity, pages: BTreeMap::new(), lru: BTreeMap::new(), seq: 0, stats: Default::default() }
    }

    /// Read page `key` into `out`: from the cache, else from cleancache or the disk through `lower`
    /// (the module header's read path). On `Err` nothing new is cached and `out` holds garbage.
    pub fn read(&mut self, key: PageKey, out: &mut Page, lower: &mut dyn Lower) -> Result<Source, PageCacheError> {
        // 1. Lookup.
        if let Some(&Cached { pfn, seq }) = self.pages.get(&key) {
            self.mem.with_page(pfn, |p| out.copy_from_slice(p)).map_err(PageCacheError::Mem)?;
            self.touch(key, seq);
            self.stats.hits += 1;
            return Ok(Source::Cache);
        }
        self.stats.misses += 1;
        // 2. Make room; `out` is free to serve as the eviction's buffer.
        while self.pages.len() >= self.capacity && self.evict_lru(lower, out) {}
        // 3. Allocate.
        let pfn = self.alloc_frame(lower, out);
        // 4. Fill.
        let source = if lower.cleancache_get(key, out) {
            self.stats.cleancache_hits += 1;
            Source::Cleancache
        } else {
            self.stats.disk_reads += 1;
            if let Err(e) = lower.read_disk(key, out) {
                self.stats.disk_errors += 1;
                if let Some(pfn) = pfn {
                    self.free_frame(pfn);
                }
                return Err(PageCacheError::Disk(e));
            }
            Source::Disk
        };
        // 5. Insert.
        let Some(pfn) = pfn else {
            self.stats.uncached_reads += 1;
            return Ok(source);
        };
        if self.mem.with_page(pfn, |p| p.copy_from_slice(out)).is_err() {
            self.free_frame(pfn);
            self.stats.uncached_reads += 1;
            return Ok(source);
        }
        let seq = self.next_seq();
        self.pages.insert(key, Cached { pfn, seq });
        self.lru.insert(seq, key);
        Ok(source)
    }

    fn next_seq(&mut self) -> u64 {
        let seq = self.seq;
        self.seq += 1;
        seq
    }

    /// Move `key` (last used at `seq`) to the most-recent end of the LRU.
    fn touch(&mut self, key: PageKey, seq: u64) {
        let new = self.next_seq();
        self.lru.remove(&seq);
        self.lru.insert(new, key);
        if let Some(c) = self.pages.get_mut(&key) {
            c.seq = new;
        }
    }

    /// A frame for a new page, evicting more pages while the allocator refuses; `None` if even an empty
    /// cache gets none (or the capacity is 0). `buf` is scratch for the evictions.
    fn alloc_frame(&mut self, lower: &mut dyn Lower, buf: &mut Page) -> Option<Pfn> {
        if self.capacity == 0 {
            return None;
        }
        loop {
            match self.mem.alloc_frame(Owner::PAGE_CACHE) {
                Ok(pfn) => return Some(pfn),
                Err(_) if self.evict_lru(lower, buf) => self.stats.alloc_retries += 1,
                Err(_) => return None,
            }
        }
    }

    fn free_frame(&mut self, pfn: Pfn) {
        if self.mem.free_frame(pfn).is_err() {
            self.stats.free_errors += 1;
        }
    }

    /// Remove `key`'s page from both indexes and free its frame, without telling `Lower`.
    fn remove(&mut self, key: PageKey) -> bool {
        let Some(c) = self.pages.remove(&key) else { return false };
        self.lru.remove(&c.seq);
        self.free_frame(c.pfn);
        true
    }

    /// Evict the least recently used page: copy it into `buf`, free its frame, hand the copy to
    /// `lower.evicted`. False if the cache is empty.
    fn evict_lru(&mut self, lower: &mut dyn Lower, buf: &mut Page) -> bool {
        let Some((_, key)) = self.lru.pop_first() else { return false };
        let Some(c) = self.pages.remove(&key) else { return true }; // both indexes always agree
        let copied = self.mem.with_page(c.pfn, |p| buf.copy_from_slice(p)).is_ok();
        self.free_frame(c.pfn);
        self.stats.evictions += 1;
        if copied {
            lower.evicted(key, buf);
        } else {
            self.stats.evict_map_errors += 1;
        }
        true
    }

    /// Whether `key`'s page is cached (does not count as a use).
    pub fn contains(&self, key: PageKey) -> bool {
        self.pages.contains_key(&key)
    }

    /// The disk's copy of `key` changed or went away: drop the cached page without offering it to
    /// cleancache, and tell `lower` to drop cleancache's copy. True if the page was cached.
    pub fn invalidate_page(&mut self, key: PageKey, lower: &mut dyn Lower) -> bool {
        let had = self.remove(key);
        self.stats.invalidations += u64::from(had);
        lower.invalidate_page(key);
        had
    }

    /// The disk's copy of `file` changed or went away (truncate, rewrite, delete): drop all its cached
    /// pages without offering them to cleancache, and tell `lower` to drop cleancache's. Returns the
    /// cached pages dropped.
    pub fn invalidate_file(&mut self, file: u32, lower: &mut dyn Lower) -> u64 {
        let keys: alloc::vec::Vec<PageKey> =
            self.pages.range(PageKey::new(file, 0)..=PageKey::new(file, u32::MAX)).map(|(k, _)| *k).collect();
        for &key in &keys {
            self.remove(key);
        }
        let n = keys.len() as u64;
        self.stats.invalidations += n;
        self.stats.invalidated_files += 1;
        lower.invalidate_file(file);
        n
    }

    /// Reclaim: evict up to `pages` least recently used pages through `lower.evicted` (Linux's
    /// `shrink_page_list` over clean file pages, or `drop_caches`). Returns the pages evicted.
    pub fn shrink(&mut self, pages: usize, lower: &mut dyn Lower) -> u64 {
        let mut buf = alloc::boxed::Box::new([0u8; PAGE_SIZE]);
        let mut n = 0;
        while n < pages as u64 && self.evict_lru(lower, &mut buf) {
            n += 1;
        }
        n
    }

    /// Change the capacity; pages above a lower one are evicted through `lower.evicted`, oldest first.
    pub fn set_capacity(&mut self, capacity: usize, lower: &mut dyn Lower) {
        self.capacity = capacity;
        let excess = self.pages.len().saturating_sub(capacity);
        self.shrink(excess, lower);
    }

    /// Drop every page and free its frame, telling nobody (teardown; cleancache, if it holds pages of
    /// these files, is the caller's to invalidate). Returns the pages dropped.
    pub fn clear(&mut self) -> u64 {
        let n = self.pages.len() as u64;
        for c in core::mem::take(&mut self.pages).into_values() {
            self.free_frame(c.pfn);
        }
        self.lru.clear();
        n
    }

    /// Pages cached now.
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The cached pages, least recently used first: the order they would be evicted in.
    pub fn lru(&self) -> impl Iterator<Item = PageKey> + '_ {
        self.lru.values().copied()
    }

    /// The frames' memory (host tests read the allocator's counters through it).
    pub fn memory(&self) -> &M {
        &self.mem
    }

    pub fn memory_mut(&mut self) -> &mut M {
        &mut self.mem
    }

    /// The counters, with the current sizes.
    pub fn stats(&self) -> PageCacheStats {
        PageCacheStats { cached_pages: self.pages.len() as u64, capacity: self.capacity as u64, ..self.stats }
    }
}

impl<M: PageMemory + FrameSource> Drop for PageCache<M> {
    /// Every cached page's frame goes back to the memory.
    fn drop(&mut self) {
        self.clear();
    }
}
