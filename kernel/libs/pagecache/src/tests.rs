//! Host tests of the page cache's rules over a recording fake [`Lower`]; the randomised run with tmem's
//! cleancache against a model is `tests/model.rs`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use pagemem::{FrameError, HostMemory, Limited};

use super::*;
use crate::cleancache::{CleancacheLower, Disk};

/// What the fake lower saw, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Evicted(PageKey),
    Get(PageKey, bool),
    Disk(PageKey),
    InvalidatePage(PageKey),
    InvalidateFile(u32),
}

/// The bytes of page `key` at `version` of its file: the key and version up front, a pattern after.
fn content(key: PageKey, version: u32) -> Box<Page> {
    let mut p = Box::new([0u8; PAGE_SIZE]);
    p[..4].copy_from_slice(&key.file.to_le_bytes());
    p[4..8].copy_from_slice(&key.index.to_le_bytes());
    p[8..12].copy_from_slice(&version.to_le_bytes());
    for (i, b) in p[12..].iter_mut().enumerate() {
        *b = (i as u32 ^ key.file.wrapping_mul(31) ^ key.index.wrapping_mul(7) ^ version) as u8;
    }
    p
}

/// A disk of `files` files of `pages` pages each, plus an exclusive cleancache that never refuses.
#[derive(Default)]
struct Fake {
    files: u32,
    pages: u32,
    version: BTreeMap<u32, u32>,
    io_error: bool,
    cc: BTreeMap<PageKey, Box<Page>>,
    calls: Vec<Call>,
}

impl Fake {
    fn new(files: u32, pages: u32) -> Fake {
        Fake { files, pages, ..Fake::default() }
    }

    fn current(&self, key: PageKey) -> Box<Page> {
        content(key, self.version.get(&key.file).copied().unwrap_or(0))
    }

    fn take_calls(&mut self) -> Vec<Call> {
        core::mem::take(&mut self.calls)
    }
}

impl Lower for Fake {
    fn evicted(&mut self, key: PageKey, page: &Page) {
        assert!(*page == *self.current(key), "{key:?}: evicted bytes are not the page's");
        self.calls.push(Call::Evicted(key));
        self.cc.insert(key, Box::new(*page));
    }

    fn cleancache_get(&mut self, key: PageKey, out: &mut Page) -> bool {
        let hit = self.cc.remove(&key).map(|p| *out = *p).is_some();
        self.calls.push(Call::Get(key, hit));
        hit
    }

    fn read_disk(&mut self, key: PageKey, out: &mut Page) -> Result<(), DiskError> {
        self.calls.push(Call::Disk(key));
        if self.io_error {
            out.fill(0xee); // a half-done transfer
            return Err(DiskError::Io);
        }
        if key.file >= self.files || key.index >= self.pages {
            return Err(DiskError::OutOfRange);
        }
        *out = *self.current(key);
        Ok(())
    }

    fn invalidate_page(&mut self, key: PageKey) {
        self.calls.push(Call::InvalidatePage(key));
        self.cc.remove(&key);
    }

    fn invalidate_file(&mut self, file: u32) {
        self.calls.push(Call::InvalidateFile(file));
        self.cc.retain(|k, _| k.file != file);
    }
}

fn k(file: u32, index: u32) -> PageKey {
    PageKey::new(file, index)
}

fn read<M: PageMemory + FrameSource>(pc: &mut PageCache<M>, lower: &mut Fake, key: PageKey) -> Source {
    let mut out = Box::new([0x5a; PAGE_SIZE]);
    let source = pc.read(key, &mut out, lower).unwrap();
    assert!(*out == *lower.current(key), "{key:?}: read returned other bytes");
    source
}

fn free_frames(pc: &mut PageCache<HostMemory>) -> u64 {
    pc.memory_mut().frames().stats().free
}

#[test]
fn the_headers_worked_example() {
    let mut pc = PageCache::new(HostMemory::new(16), 2);
    let mut l = Fake::new(2, 3);
    assert_eq!(read(&mut pc, &mut l, k(1, 0)), Source::Disk);
    assert_eq!(read(&mut pc, &mut l, k(1, 1)), Source::Disk);
    assert_eq!(read(&mut pc, &mut l, k(1, 0)), Source::Cache);
    assert_eq!(pc.lru().collect::<Vec<_>>(), [k(1, 1), k(1, 0)]);
    assert_eq!(read(&mut pc, &mut l, k(1, 2)), Source::Disk);
    assert_eq!(pc.lru().collect::<Vec<_>>(), [k(1, 0), k(1, 2)]);
    assert!(l.cc.contains_key(&k(1, 1)));
    assert_eq!(read(&mut pc, &mut l, k(1, 1)), Source::Cleancache);
    assert_eq!(pc.lru().collect::<Vec<_>>(), [k(1, 2), k(1, 1)]);
    assert_eq!(l.cc.keys().copied().collect::<Vec<_>>(), [k(1, 0)], "the get was exclusive");
    *l.version.entry(1).or_default() += 1; // file 1 rewritten on disk
    assert_eq!(pc.invalidate_file(1, &mut l), 2);
    assert!(l.cc.is_empty() && pc.is_empty());
    assert_eq!(read(&mut pc, &mut l, k(1, 0)), Source::Disk, "the new bytes, checked by `read`");
    let s = pc.stats();
    assert_eq!((s.hits, s.misses, s.cleancache_hits, s.disk_reads), (1, 5, 1, 4));
    assert_eq!((s.evictions, s.invalidations, s.invalidated_files), (2, 2, 1));
    assert_eq!((s.cached_pages, s.capacity), (1, 2));
}

#[test]
fn a_hit_moves_the_page_to_the_recent_end_and_the_lru_page_is_evicted() {
    let mut pc = PageCache::new(HostMemory::new(16), 3);
    let mut l = Fake::new(1, 10);
    for i in 0..3 {
        read(&mut pc, &mut l, k(0, i));
    }
    assert_eq!(pc.lru().collect::<Vec<_>>(), [k(0, 0), k(0, 1), k(0, 2)]);
    read(&mut pc, &mut l, k(0, 0));
    read(&mut pc, &mut l, k(0, 1));
    assert_eq!(pc.lru().collect::<Vec<_>>(), [k(0, 2), k(0, 0), k(0, 1)]);
    l.take_calls();
    read(&mut pc, &mut l, k(0, 5));
    // Evict first, then ask cleancache, then the disk.
    assert_eq!(l.take_calls(), [Call::Evicted(k(0, 2)), Call::Get(k(0, 5), false), Call::Disk(k(0, 5))]);
    assert_eq!(pc.lru().collect::<Vec<_>>(), [k(0, 0), k(0, 1), k(0, 5)]);
    assert!(!pc.contains(k(0, 2)) && pc.len() == 3);
    let s = pc.stats();
    assert_eq!((s.hits, s.misses, s.disk_reads, s.evictions), (2, 4, 4, 1));
}

#[test]
fn invalidation_never_reaches_evicted_and_is_passed_down() {
    let mut pc = PageCache::new(HostMemory::new(16), 8);
    let mut l = Fake::new(3, 4);
    for f in 0..3 {
        for i in 0..2 {
            read(&mut pc, &mut l, k(f, i));
        }
    }
    l.cc.insert(k(1, 3), l.current(k(1, 3))); // an older eviction of file 1
    l.take_calls();
    assert_eq!(pc.invalidate_file(1, &mut l), 2);
    assert!(pc.invalidate_page(k(2, 0), &mut l));
    assert!(!pc.invalidate_page(k(2, 3), &mut l), "not cached: still passed down");
    assert_eq!(
        l.take_calls(),
        [Call::InvalidateFile(1), Call::InvalidatePage(k(2, 0)), Call::InvalidatePage(k(2, 3))],
        "no Evicted: invalidated data must not go to cleancache"
    );
    assert!(l.cc.is_empty(), "cleancache's copy of file 1 went too");
    assert_eq!(pc.lru().collect::<Vec<_>>(), [k(0, 0), k(0, 1), k(2, 1)]);
    assert_eq!(pc.invalidate_file(7, &mut l), 0);
    let s = pc.stats();
    assert_eq!((s.invalidations, s.invalidated_files, s.evictions), (3, 2, 0));
}

#[test]
fn a_disk_error_caches_nothing_and_keeps_every_frame() {
    let mut pc = PageCache::new(HostMemory::new(16), 2);
    let mut l = Fake::new(1, 4);
    let free = free_frames(&mut pc);
    let mut out = Box::new([0; PAGE_SIZE]);
    assert_eq!(pc.read(k(0, 9), &mut out, &mut l), Err(PageCacheError::Disk(DiskError::OutOfRange)));
    assert_eq!(pc.read(k(5, 0), &mut out, &mut l), Err(PageCacheError::Disk(DiskError::OutOfRange)));
    read(&mut pc, &mut l, k(0, 0));
    read(&mut pc, &mut l, k(0, 1));
    l.io_error = true;
    assert_eq!(pc.read(k(0, 2), &mut out, &mut l), Err(PageCacheError::Disk(DiskError::Io)));
    assert!(!pc.contains(k(0, 2)), "no half-filled page");
    assert_eq!(pc.lru().collect::<Vec<_>>(), [k(0, 1)], "the eviction came first and stands");
    assert_eq!(free_frames(&mut pc), free - 1, "the new page's frame went back");
    l.io_error = false;
    assert_eq!(read(&mut pc, &mut l, k(0, 2)), Source::Disk, "and the next read is whole");
    let s = pc.stats();
    assert_eq!((s.misses, s.disk_reads, s.disk_errors, s.cached_pages), (6, 6, 3, 2));
}

#[test]
fn clear_and_drop_give_every_frame_back() {
    let mut pc = PageCache::new(HostMemory::new(64), 40);
    let mut l = Fake::new(4, 16);
    let free = free_frames(&mut pc);
    for i in 0..60 {
        read(&mut pc, &mut l, k(i % 4, i / 4));
    }
    assert_eq!(free_frames(&mut pc), free - 40);
    let owned = (0..64)
        .filter(|i| {
            let pfn = Pfn(HostMemory::BASE.0 + i);
            pc.memory_mut().frames().info(pfn).is_some_and(|f| f.owner() == Owner::PAGE_CACHE)
        })
        .count();
    assert_eq!(owned, 40, "each cached page is a frame owned by the page cache");
    assert_eq!(pc.clear(), 40);
    assert_eq!((pc.len(), free_frames(&mut pc)), (0, free));
    read(&mut pc, &mut l, k(0, 0)); // still usable

    // Dropping the cache frees its frames too.
    let shared = Shared(Rc::new(RefCell::new(HostMemory::new(16))));
    let mut pc = PageCache::new(Shared(shared.0.clone()), 8);
    for i in 0..8 {
        read(&mut pc, &mut l, k(1, i));
    }
    assert_eq!(shared.0.borrow_mut().frames().stats().used, 8);
    drop(pc);
    assert_eq!(shared.0.borrow_mut().frames().stats().used, 0);
}

/// A memory two owners share, to look at it after the cache is dropped.
struct Shared(Rc<RefCell<HostMemory>>);

impl PageMemory for Shared {
    fn with_page<R>(&mut self, pfn: Pfn, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, MemError> {
        self.0.borrow_mut().with_page(pfn, f)
    }

    fn with_pages2<R>(&mut self, a: Pfn, b: Pfn, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, MemError> {
        self.0.borrow_mut().with_pages2(a, b, f)
    }
}

impl FrameSource for Shared {
    fn alloc_frame(&mut self, owner: Owner) -> Result<Pfn, FrameError> {
        self.0.borrow_mut().alloc_frame(owner)
    }

    fn free_frame(&mut self, pfn: Pfn) -> Result<(), FrameError> {
        self.0.borrow_mut().free_frame(pfn)
    }
}

#[test]
fn a_refused_frame_evicts_one_more_then_serves_uncached() {
    // Room for 4 pages, but only 2 frames.
    let mut pc = PageCache::new(Limited::new(HostMemory::new(16), 2), 4);
    let mut l = Fake::new(1, 8);
    read(&mut pc, &mut l, k(0, 0));
    read(&mut pc, &mut l, k(0, 1));
    l.take_calls();
    assert_eq!(read(&mut pc, &mut l, k(0, 2)), Source::Disk);
    assert_eq!(l.take_calls(), [Call::Evicted(k(0, 0)), Call::Get(k(0, 2), false), Call::Disk(k(0, 2))]);
    assert_eq!(pc.lru().collect::<Vec<_>>(), [k(0, 1), k(0, 2)]);
    assert_eq!(pc.stats().alloc_retries, 1);

    // No frame at all: every read is served, none cached, nothing else disturbed.
    pc.memory_mut().set_limit(0);
    assert_eq!(read(&mut pc, &mut l, k(0, 0)), Source::Cleancache, "the page evicted above");
    assert!(pc.is_empty(), "both pages were evicted looking for a frame");
    assert_eq!(read(&mut pc, &mut l, k(0, 3)), Source::Disk);
    assert_eq!(pc.memory().held(), 0);
    let s = pc.stats();
    assert_eq!((s.uncached_reads, s.alloc_retries, s.evictions), (2, 3, 3));
}

#[test]
fn capacity_zero_caches_nothing() {
    let mut pc = PageCache::new(HostMemory::new(4), 0);
    let mut l = Fake::new(1, 4);
    for _ in 0..2 {
        assert_eq!(read(&mut pc, &mut l, k(0, 1)), Source::Disk);
    }
    let s = pc.stats();
    assert_eq!((s.misses, s.uncached_reads, s.evictions, s.cached_pages), (2, 2, 0, 0));
}

#[test]
fn shrink_and_a_lower_capacity_evict_oldest_first() {
    let mut pc = PageCache::new(HostMemory::new(16), 6);
    let mut l = Fake::new(1, 8);
    for i in 0..6 {
        read(&mut pc, &mut l, k(0, i));
    }
    read(&mut pc, &mut l, k(0, 0));
    l.take_calls();
    assert_eq!(pc.shrink(2, &mut l), 2);
    pc.set_capacity(2, &mut l);
    assert_eq!(
        l.take_calls(),
        [1, 2, 3, 4].map(|i| Call::Evicted(k(0, i))),
        "reclaim hands clean pages to cleancache, oldest first"
    );
    assert_eq!(pc.lru().collect::<Vec<_>>(), [k(0, 5), k(0, 0)]);
    assert_eq!(pc.shrink(10, &mut l), 2);
    assert_eq!((pc.len(), pc.capacity(), pc.stats().evictions), (0, 2, 6));
}

/// The glue over the real cleancache: an eviction lands in tmem, a miss takes it back out.
#[test]
fn cleancache_lower_composes_the_page_cache_with_tmem() {
    use tmem::cleancache::Cleancache;
    use tmem::{Algorithm, Compressor, Config, Tmem};

    struct FakeDisk(Fake);
    impl Disk for FakeDisk {
        fn read_page(&mut self, key: PageKey, out: &mut Page) -> Result<(), DiskError> {
            self.0.read_disk(key, out)
        }
    }

    let mut tmem = Tmem::new(Config::new(64));
    let mut comp = Compressor::new(Algorithm::Lz4).unwrap();
    let mut cc = Cleancache::new();
    let fs = cc.init_fs(&mut tmem, HostMemory::new(64)).unwrap();
    let mut disk = FakeDisk(Fake::new(2, 4));
    let mut pc = PageCache::new(HostMemory::new(8), 2);
    let mut out = Box::new([0; PAGE_SIZE]);
    let mut read = |pc: &mut PageCache<HostMemory>, tmem: &mut Tmem<HostMemory>, cc: &mut Cleancache, key| {
        let mut lower = CleancacheLower::new(tmem, &mut comp, cc, fs, &mut disk);
        let source = pc.read(key, &mut out, &mut lower).unwrap();
        assert!(*out == *lower.disk.0.current(key));
        source
    };
    for i in 0..3 {
        assert_eq!(read(&mut pc, &mut tmem, &mut cc, k(1, i)), Source::Disk);
    }
    assert!(cc.contains(&tmem, fs, 1, 0), "the evicted page is in tmem");
    assert_eq!(read(&mut pc, &mut tmem, &mut cc, k(1, 0)), Source::Cleancache);
    assert!(!cc.contains(&tmem, fs, 1, 0), "exclusive");
    assert!(cc.contains(&tmem, fs, 1, 1), "evicted to make room for it");
    let mut lower = CleancacheLower::new(&mut tmem, &mut comp, &mut cc, fs, &mut disk);
    assert_eq!(pc.invalidate_file(1, &mut lower), 2);
    assert_eq!(cc.pages(&tmem, fs), 0, "invalidate_file reached cleancache");
    let s = cc.stats();
    assert_eq!((s.puts, s.succ_gets, s.failed_gets, s.invalidated_inode_pages), (2, 1, 3, 1));
}
