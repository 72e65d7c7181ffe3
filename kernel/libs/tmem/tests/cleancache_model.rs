//! cleancache against an exact model: random put/get/invalidate_page/invalidate_inode/invalidate_fs/
//! init_fs on up to three filesystems over a tmem with a small limit, with frontswap (persistent) traffic
//! competing for the same limit so tmem drops clean pages.
//!
//! The model holds every page cleancache should hold, in store order. tmem drops ephemeral pages oldest
//! first across all ephemeral pools, and only inside a put; so after each put the model drops exactly as
//! many of its oldest pages as tmem's `ephemeral_drops` grew (after removing the put's own key, which tmem
//! flushes before it makes room). Then every get must hit exactly when the model holds the key, with the
//! exact bytes: a miss for a held key is a page lost without a count, a hit after an invalidation or
//! after an earlier hit (exclusivity) is a stale or duplicated page. Counters are compared after every
//! operation, and every key's `contains` periodically.

use std::collections::BTreeMap;

use pagedata::{Rng, random_page, ratio_page};
use pagemem::HostMemory;
use tmem::cleancache::{Cleancache, CleancacheError, CleancacheStats, FsId};
use tmem::frontswap::Frontswap;
use tmem::{Algorithm, Backend, Compressor, Config, PAGE_SIZE, Page, Tmem, TmemError};

const MAX_FS: usize = 3;
const INODES: u64 = 6;
const INDEXES: u32 = 8;
const SWAP_OFFSETS: u64 = 24;

fn make_page(rng: &mut Rng) -> Box<Page> {
    let mut p = Box::new([0; PAGE_SIZE]);
    let seed = rng.next_u64();
    match rng.below(12) {
        0 => {}
        1 => random_page(seed, &mut p),
        n => ratio_page(seed, [5, 20, 40, 55, 66, 70, 30, 10, 50, 60][n - 2], &mut p),
    }
    p
}

/// (fs, inode, index)
type PageKey = (FsId, u64, u32);

struct Run {
    rng: Rng,
    t: Tmem<HostMemory>,
    cc: Cleancache,
    f: Frontswap,
    comp: Compressor,
    /// Live filesystems, and every fs ever invalidated.
    live: Vec<FsId>,
    dead: Vec<FsId>,
    /// What cleancache must hold: key → (store order, page), and store order → key.
    held: BTreeMap<PageKey, (u64, Box<Page>)>,
    order: BTreeMap<u64, PageKey>,
    seq: u64,
    drops: u64,
    want: CleancacheStats,
    hits: u64,
    misses: u64,
    ops: u64,
}

impl Run {
    fn new(seed: u64, limit: u64, accept: u8) -> Run {
        let mut t = Tmem::new(Config { accept_percent: accept, ..Config::new(limit) }.without_zv_rules());
        let mut f = Frontswap::new();
        f.init(&mut t, 0, SWAP_OFFSETS, HostMemory::new(256)).unwrap();
        let mut run = Run {
            rng: Rng::new(seed),
            t,
            cc: Cleancache::new(),
            f,
            comp: Compressor::new(Algorithm::Lz4).unwrap(),
            live: Vec::new(),
            dead: Vec::new(),
            held: BTreeMap::new(),
            order: BTreeMap::new(),
            seq: 0,
            drops: 0,
            want: CleancacheStats::default(),
            hits: 0,
            misses: 0,
            ops: 0,
        };
        run.init_fs();
        run.init_fs();
        run
    }

    fn init_fs(&mut self) {
        let backend = [None, Some(Backend::Zbud), Some(Backend::Zsmalloc)][self.rng.below(3)];
        let fs = self.cc.init_fs_backend(&mut self.t, backend, HostMemory::new(128)).unwrap();
        assert!(!self.live.contains(&fs) && !self.dead.contains(&fs), "fs id {fs:?} reused");
        self.live.push(fs);
        self.want.inited_fs += 1;
    }

    /// A key; one in thirty names a dead or never-made fs.
    fn pick(&mut self) -> PageKey {
        let fs = if self.live.is_empty() || self.rng.below(30) == 0 {
            match self.dead.len() {
                n if n > 0 && self.rng.below(2) == 0 => self.dead[self.rng.below(n)],
                _ => FsId(1000 + self.rng.below(3) as u32),
            }
        } else {
            self.live[self.rng.below(self.live.len())]
        };
        (fs, self.rng.below(INODES as usize) as u64, self.rng.below(INDEXES as usize) as u32)
    }

    fn is_live(&self, fs: FsId) -> bool {
        self.live.contains(&fs)
    }

    fn forget(&mut self, key: PageKey) -> bool {
        match self.held.remove(&key) {
            Some((seq, _)) => {
                self.order.remove(&seq);
                true
            }
            None => false,
        }
    }

    /// tmem's drops since the last look: the model's oldest pages, exactly as many.
    fn account_drops(&mut self) {
        let now = self.t.stats().ephemeral_drops;
        for _ in self.drops..now {
            let (_, key) = self.order.pop_first().expect("tmem dropped a clean page the model does not hold");
            self.held.remove(&key);
        }
        self.drops = now;
    }

    fn step(&mut self) {
        match self.rng.below(1000) {
            0..400 => self.put(),
            400..700 => self.get(),
            700..780 => self.invalidate_page(),
            780..820 => self.invalidate_inode(),
            820..825 => self.fs(),
            825..920 => self.swap_store(),
            _ => self.swap_invalidate(),
        }
        self.account_drops();
        self.ops += 1;
        self.check();
    }

    fn put(&mut self) {
        let key = self.pick();
        let page = make_page(&mut self.rng);
        let r = self.cc.put_page(&mut self.t, &mut self.comp, key.0, key.1, key.2, &page);
        if !self.is_live(key.0) {
            assert_eq!(r, Err(CleancacheError::NoSuchFs(key.0)));
            return;
        }
        self.want.puts += 1;
        // tmem flushes the old copy, then makes room, then stores.
        self.forget(key);
        self.account_drops();
        match r {
            Ok(()) => {
                self.held.insert(key, (self.seq, page));
                self.order.insert(self.seq, key);
                self.seq += 1;
            }
            Err(CleancacheError::Tmem(TmemError::Full | TmemError::Incompressible { .. } | TmemError::OutOfMemory)) => {
                self.want.failed_puts += 1;
            }
            Err(e) => panic!("{key:?}: put: {e:?}"),
        }
    }

    fn get(&mut self) {
        // Mostly keys the model holds: those are the interesting ones.
        let key = match self.held.len() {
            n if n > 0 && self.rng.below(3) != 0 => *self.held.keys().nth(self.rng.below(n)).unwrap(),
            _ => self.pick(),
        };
        let mut out = Box::new([0x5a; PAGE_SIZE]);
        let r = self.cc.get_page(&mut self.t, &mut self.comp, key.0, key.1, key.2, &mut out);
        if !self.is_live(key.0) {
            assert_eq!(r, Err(CleancacheError::NoSuchFs(key.0)));
            return;
        }
        match (r, self.held.remove(&key)) {
            (Ok(true), Some((seq, page))) => {
                assert!(*out == *page, "{key:?}: a hit with other bytes");
                self.order.remove(&seq);
                self.want.succ_gets += 1;
                self.hits += 1;
            }
            (Ok(false), None) => {
                self.want.failed_gets += 1;
                self.misses += 1;
            }
            (Ok(true), None) => {
                panic!("{key:?}: a hit for a page invalidated, dropped, or already got (not exclusive)")
            }
            (Ok(false), Some(_)) => panic!("{key:?}: a miss for a page tmem holds by the model and did not drop"),
            (Err(e), _) => panic!("{key:?}: get: {e:?}"),
        }
    }

    fn invalidate_page(&mut self) {
        let key = self.pick();
        let r = self.cc.invalidate_page(&mut self.t, key.0, key.1, key.2);
        if !self.is_live(key.0) {
            assert_eq!(r, Err(CleancacheError::NoSuchFs(key.0)));
            return;
        }
        let had = self.forget(key);
        assert_eq!(r, Ok(had), "{key:?}");
        self.want.invalidates += 1;
        self.want.invalidated_pages += u64::from(had);
    }

    fn invalidate_inode(&mut self) {
        let (fs, inode, _) = self.pick();
        let r = self.cc.invalidate_inode(&mut self.t, fs, inode);
        if !self.is_live(fs) {
            assert_eq!(r, Err(CleancacheError::NoSuchFs(fs)));
            return;
        }
        let keys: Vec<_> = self.held.keys().filter(|k| k.0 == fs && k.1 == inode).copied().collect();
        for &k in &keys {
            self.forget(k);
        }
        assert_eq!(r, Ok(keys.len() as u64), "({fs:?}, {inode})");
        self.want.invalidated_inodes += 1;
        self.want.invalidated_inode_pages += keys.len() as u64;
    }

    /// umount one fs, or mount a new one.
    fn fs(&mut self) {
        if self.live.len() == MAX_FS || (!self.live.is_empty() && self.rng.below(2) == 0) {
            let fs = self.live.remove(self.rng.below(self.live.len()));
            let keys: Vec<_> = self.held.keys().filter(|k| k.0 == fs).copied().collect();
            for &k in &keys {
                self.forget(k);
            }
            assert_eq!(self.cc.invalidate_fs(&mut self.t, fs), Ok(keys.len() as u64), "{fs:?}");
            assert_eq!(self.cc.invalidate_fs(&mut self.t, fs), Err(CleancacheError::NoSuchFs(fs)));
            self.dead.push(fs);
            self.want.invalidated_fs += 1;
            self.want.invalidated_fs_pages += keys.len() as u64;
        } else {
            self.init_fs();
        }
    }

    /// Swap traffic: persistent pages, which push clean pages out when tmem is full.
    fn swap_store(&mut self) {
        let offset = self.rng.below(SWAP_OFFSETS as usize) as u64;
        let page = make_page(&mut self.rng);
        let _ = self.f.store(&mut self.t, &mut self.comp, 0, offset, &page);
    }

    fn swap_invalidate(&mut self) {
        let offset = self.rng.below(SWAP_OFFSETS as usize) as u64;
        self.f.invalidate_page(&mut self.t, 0, offset).unwrap();
    }

    fn check(&mut self) {
        assert_eq!(self.cc.stats(), self.want);
        for &fs in &self.live {
            let n = self.held.keys().filter(|k| k.0 == fs).count() as u64;
            assert_eq!(self.cc.pages(&self.t, fs), n, "{fs:?}");
        }
        assert_eq!(self.t.stats().ephemeral_pages, self.held.len() as u64);
        if self.ops.is_multiple_of(500) {
            for &fs in self.live.iter().chain(&self.dead) {
                for inode in 0..INODES {
                    for index in 0..INDEXES {
                        let key = (fs, inode, index);
                        assert_eq!(
                            self.cc.contains(&self.t, fs, inode, index),
                            self.held.contains_key(&key),
                            "{key:?}"
                        );
                    }
                }
            }
        }
    }
}

fn run(seed: u64, ops: u64, limit: u64, accept: u8) {
    let mut r = Run::new(seed, limit, accept);
    for _ in 0..ops {
        r.step();
    }
    let s = r.t.stats();
    let c = r.cc.stats();
    println!("seed {seed}: {ops} ops, {} hits, {} misses, {c:?}", r.hits, r.misses);
    println!("  {s:?}");
    assert!(s.ephemeral_drops > 500, "seed {seed}: tmem hardly dropped clean pages: {s:?}");
    assert!(c.succ_gets > 1000 && c.failed_puts > 500, "seed {seed}: {c:?}");
    assert!(c.invalidated_pages > 20 && c.invalidated_inode_pages > 50 && c.invalidated_fs > 20, "seed {seed}: {c:?}");
}

#[test]
fn cleancache_model_tiny_limit() {
    run(21, 50_000, 16, 50);
}

#[test]
fn cleancache_model_small_limit() {
    run(22, 50_000, 32, 90);
}

#[test]
fn cleancache_model_no_hysteresis() {
    run(23, 50_000, 24, 100);
}
