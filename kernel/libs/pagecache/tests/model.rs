//! The page cache over tmem's cleancache and a fake disk, against an exact model.
//!
//! The fake disk holds files whose pages change: rewriting a page or a whole file bumps its version, and
//! the bytes of a page are a function of (file, index, versions). The workload reads (skewed towards a
//! hot set larger than the cache), rewrites pages and files on disk and invalidates them, invalidates
//! without a change, reads past a file's end, and fails disk reads now and then, over a file set four
//! times the cache.
//!
//! The model mirrors the page cache's LRU and cleancache's contents (in tmem's store order: a put to a
//! full tmem drops the oldest clean pages, exactly as many as `ephemeral_drops` grew). So for each read
//! it predicts the source — cache, cleancache or disk — and after each read it checks:
//!
//! - the bytes equal the disk's *current* page: a stale page, from the cache or from cleancache, after a
//!   rewrite and its invalidation, fails;
//! - the source is the predicted one (a cleancache hit for a page the model says was invalidated, got
//!   before, or dropped, fails);
//! - the page cache's counters, the disk's read count (`misses` the cleancache could not serve) and
//!   cleancache's `puts`/`succ_gets` equal the model's.
//!
//! The same operation sequence runs again with [`DiskOnly`], and must read the disk more often.

use std::collections::BTreeMap;

use pagecache::cleancache::{CleancacheLower, Disk, DiskOnly};
use pagecache::{DiskError, Lower, PAGE_SIZE, Page, PageCache, PageCacheError, PageCacheStats, PageKey, Source};
use pagedata::{Rng, random_page, ratio_page};
use pagemem::HostMemory;
use tmem::cleancache::{Cleancache, FsId};
use tmem::{Algorithm, Compressor, Config, Tmem};

const FILES: u32 = 12;
const PAGES: u32 = 16;
const HOT_FILES: u32 = 4;
const CAPACITY: usize = (FILES * PAGES / 4) as usize;

/// The disk: versions of files and pages; a page's bytes are a function of its key and both versions.
#[derive(Default)]
struct FakeDisk {
    file_version: BTreeMap<u32, u64>,
    page_version: BTreeMap<PageKey, u64>,
    fail_next: bool,
    reads: u64,
}

impl FakeDisk {
    fn current(&self, key: PageKey) -> Box<Page> {
        let fv = self.file_version.get(&key.file).copied().unwrap_or(0);
        let pv = self.page_version.get(&key).copied().unwrap_or(0);
        let seed = (u64::from(key.file) << 40) ^ (u64::from(key.index) << 24) ^ (fv << 12) ^ pv;
        let mut p = Box::new([0; PAGE_SIZE]);
        match key.file % 6 {
            0 => random_page(seed, &mut p), // never compresses: cleancache refuses it
            1 => p.fill(key.index as u8),   // same-filled: costs tmem nothing
            n => ratio_page(seed, [20, 40, 55, 70][n as usize - 2], &mut p),
        }
        p[..8].copy_from_slice(&seed.to_le_bytes());
        p
    }
}

impl Disk for FakeDisk {
    fn read_page(&mut self, key: PageKey, out: &mut Page) -> Result<(), DiskError> {
        self.reads += 1;
        if std::mem::take(&mut self.fail_next) {
            out.fill(0xee);
            return Err(DiskError::Io);
        }
        if key.file >= FILES || key.index >= PAGES {
            return Err(DiskError::OutOfRange);
        }
        *out = *self.current(key);
        Ok(())
    }
}

/// What cleancache holds, in store order.
#[derive(Default)]
struct CcModel {
    held: BTreeMap<PageKey, u64>,
    order: BTreeMap<u64, PageKey>,
    seq: u64,
}

impl CcModel {
    fn remove(&mut self, key: PageKey) -> bool {
        self.held.remove(&key).map(|s| self.order.remove(&s)).is_some()
    }

    fn insert(&mut self, key: PageKey) {
        self.held.insert(key, self.seq);
        self.order.insert(self.seq, key);
        self.seq += 1;
    }

    fn drop_oldest(&mut self, n: u64) {
        for _ in 0..n {
            let (_, key) = self.order.pop_first().expect("tmem dropped a page cleancache did not hold");
            self.held.remove(&key);
        }
    }
}

struct Run {
    rng: Rng,
    with_cc: bool,
    tmem: Tmem<HostMemory>,
    comp: Compressor,
    cc: Cleancache,
    fs: FsId,
    disk: FakeDisk,
    pc: PageCache<HostMemory>,
    /// The page cache's LRU, oldest first, and the counters it must show.
    lru: BTreeMap<u64, PageKey>,
    cached: BTreeMap<PageKey, u64>,
    seq: u64,
    want: PageCacheStats,
    model_cc: CcModel,
    /// tmem's `ephemeral_drops` and cleancache's `failed_puts` at the last look.
    drops: u64,
    failed_puts: u64,
    ops: u64,
}

impl Run {
    fn new(seed: u64, with_cc: bool, tmem_limit: u64) -> Run {
        let mut tmem = Tmem::new(Config::new(tmem_limit));
        let mut cc = Cleancache::new();
        let fs = cc.init_fs(&mut tmem, HostMemory::new(256)).unwrap();
        Run {
            rng: Rng::new(seed),
            with_cc,
            tmem,
            comp: Compressor::new(Algorithm::Lz4).unwrap(),
            cc,
            fs,
            disk: FakeDisk::default(),
            pc: PageCache::new(HostMemory::new(CAPACITY + 8), CAPACITY),
            lru: BTreeMap::new(),
            cached: BTreeMap::new(),
            seq: 0,
            want: PageCacheStats { capacity: CAPACITY as u64, ..Default::default() },
            model_cc: CcModel::default(),
            drops: 0,
            failed_puts: 0,
            ops: 0,
        }
    }

    /// Call `f` with the page cache and this run's lower (cleancache and the disk, or the disk alone).
    fn with_lower<R>(&mut self, f: impl FnOnce(&mut PageCache<HostMemory>, &mut dyn Lower) -> R) -> R {
        if self.with_cc {
            let mut lower = CleancacheLower::new(&mut self.tmem, &mut self.comp, &mut self.cc, self.fs, &mut self.disk);
            f(&mut self.pc, &mut lower)
        } else {
            f(&mut self.pc, &mut DiskOnly(&mut self.disk))
        }
    }

    /// A page: mostly from the hot files, sometimes past a file's end.
    fn pick(&mut self) -> PageKey {
        let files = if self.rng.below(10) < 7 { HOT_FILES } else { FILES };
        let index = if self.rng.below(100) == 0 {
            PAGES + self.rng.below(2) as u32
        } else {
            self.rng.below(PAGES as usize) as u32
        };
        PageKey::new(self.rng.below(files as usize) as u32, index)
    }

    fn step(&mut self) {
        match self.rng.below(1000) {
            0..920 => self.read(),
            920..940 => {
                let key = self.pick();
                *self.disk.page_version.entry(key).or_default() += 1;
                self.invalidate_page(key);
            }
            940..950 => {
                let file = self.rng.below(FILES as usize) as u32;
                *self.disk.file_version.entry(file).or_default() += 1;
                self.invalidate_file(file);
            }
            950..975 => {
                let key = self.pick();
                self.invalidate_page(key); // unchanged on disk: allowed, just wasteful
            }
            975..980 => {
                let file = self.rng.below(FILES as usize) as u32;
                self.invalidate_file(file);
            }
            _ => self.disk.fail_next = true,
        }
        self.ops += 1;
        self.check();
    }

    fn read(&mut self) {
        let key = self.pick();
        let mut out = Box::new([0x5a; PAGE_SIZE]);
        let r = self.with_lower(|pc, lower| pc.read(key, &mut out, lower));

        // The model's prediction.
        let predicted = if let Some(seq) = self.cached.remove(&key) {
            self.lru.remove(&seq);
            self.touch(key);
            self.want.hits += 1;
            Source::Cache
        } else {
            self.want.misses += 1;
            if self.cached.len() >= CAPACITY {
                let (_, victim) = self.lru.pop_first().unwrap();
                self.cached.remove(&victim);
                self.want.evictions += 1;
                if self.with_cc {
                    // cleancache's put of the victim: flush its key, make room, store (or refuse).
                    self.model_cc.remove(victim);
                    let drops = self.tmem.stats().ephemeral_drops;
                    self.model_cc.drop_oldest(drops - self.drops);
                    self.drops = drops;
                    let failed = self.cc.stats().failed_puts;
                    if failed == self.failed_puts {
                        self.model_cc.insert(victim);
                    }
                    self.failed_puts = failed;
                }
            }
            if self.model_cc.remove(key) {
                self.want.cleancache_hits += 1;
                Source::Cleancache
            } else {
                self.want.disk_reads += 1;
                Source::Disk
            }
        };

        match r {
            Ok(source) => {
                assert_eq!(source, predicted, "{key:?} (op {})", self.ops);
                assert!(
                    *out == *self.disk.current(key),
                    "{key:?}: {source:?} served stale or wrong bytes (op {})",
                    self.ops
                );
                if source != Source::Cache {
                    self.touch(key);
                }
            }
            Err(PageCacheError::Disk(e)) => {
                assert_eq!(predicted, Source::Disk, "{key:?}: {e:?}");
                let past_end = key.file >= FILES || key.index >= PAGES;
                assert!(e == DiskError::Io || past_end, "{key:?}: {e:?}");
                self.want.disk_errors += 1;
                assert!(!self.pc.contains(key), "{key:?}: a failed read left a page");
            }
            Err(e) => panic!("{key:?}: {e:?}"),
        }
    }

    /// `key` is used now: the most-recent end of the model's LRU.
    fn touch(&mut self, key: PageKey) {
        self.cached.insert(key, self.seq);
        self.lru.insert(self.seq, key);
        self.seq += 1;
    }

    fn invalidate_page(&mut self, key: PageKey) {
        let had = self.with_lower(|pc, lower| pc.invalidate_page(key, lower));
        let want = self.cached.remove(&key).map(|s| self.lru.remove(&s)).is_some();
        assert_eq!(had, want, "{key:?}");
        self.want.invalidations += u64::from(want);
        self.model_cc.remove(key);
    }

    fn invalidate_file(&mut self, file: u32) {
        let n = self.with_lower(|pc, lower| pc.invalidate_file(file, lower));
        let keys: Vec<_> = self.cached.keys().filter(|k| k.file == file).copied().collect();
        for k in &keys {
            let s = self.cached.remove(k).unwrap();
            self.lru.remove(&s);
        }
        assert_eq!(n, keys.len() as u64, "file {file}");
        self.want.invalidations += n;
        self.want.invalidated_files += 1;
        let gone: Vec<_> = self.model_cc.held.keys().filter(|k| k.file == file).copied().collect();
        for k in gone {
            self.model_cc.remove(k);
        }
    }

    fn check(&mut self) {
        self.want.cached_pages = self.cached.len() as u64;
        assert_eq!(self.pc.stats(), self.want, "op {}", self.ops);
        assert_eq!(self.disk.reads, self.want.disk_reads, "every miss cleancache did not serve reads the disk once");
        if self.with_cc {
            assert_eq!(self.tmem.stats().ephemeral_drops, self.drops, "tmem dropped a page outside a put");
            let s = self.cc.stats();
            assert_eq!((s.puts, s.succ_gets), (self.want.evictions, self.want.cleancache_hits));
            assert_eq!(self.cc.pages(&self.tmem, self.fs), self.model_cc.held.len() as u64);
        }
        if self.ops.is_multiple_of(1000) {
            assert!(self.pc.lru().eq(self.lru.values().copied()), "LRU order (op {})", self.ops);
            for file in 0..FILES {
                for index in 0..PAGES {
                    let key = PageKey::new(file, index);
                    let held = self.cc.contains(&self.tmem, self.fs, file.into(), index);
                    assert_eq!(held, self.with_cc && self.model_cc.held.contains_key(&key), "{key:?}");
                }
            }
            assert_eq!(self.pc.memory_mut().frames().stats().used, self.cached.len() as u64);
        }
    }
}

fn run(seed: u64, ops: u64, tmem_limit: u64) {
    let mut with = Run::new(seed, true, tmem_limit);
    let mut without = Run::new(seed, false, tmem_limit);
    for _ in 0..ops {
        with.step();
        without.step();
    }
    let (w, wo) = (with.pc.stats(), without.pc.stats());
    println!("seed {seed}, tmem limit {tmem_limit}: {ops} ops each");
    println!("  with cleancache:    {w:?}");
    println!("                      {:?}", with.cc.stats());
    println!("                      ephemeral_drops {}", with.tmem.stats().ephemeral_drops);
    println!("  without cleancache: {wo:?}");
    // The two runs see the same operations; their page-cache traffic differs only where a failed disk
    // read in one run was a cleancache hit in the other.
    assert!(
        w.disk_reads * 10 < wo.disk_reads * 9,
        "cleancache saved under 10% of the disk reads: {} vs {}",
        w.disk_reads,
        wo.disk_reads
    );
    let c = with.cc.stats();
    assert!(w.cleancache_hits > 1000 && c.failed_puts > 500 && w.disk_errors > 100, "{w:?} {c:?}");
    assert!(with.tmem.stats().ephemeral_drops > 500, "tmem's limit hardly mattered");
    assert!(w.invalidations > 2000 && w.invalidated_files > 500, "{w:?}");
    with.pc.clear();
    assert_eq!(with.pc.memory_mut().frames().stats().used, 0, "every frame back");
}

#[test]
fn page_cache_model_small_tmem() {
    run(31, 60_000, 12);
}

#[test]
fn page_cache_model_larger_tmem() {
    run(32, 60_000, 32);
}
