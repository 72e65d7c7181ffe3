//! tmem against a reference model: random put/get/flush_page/flush_object/destroy_pool/new_pool/writeback
//! over several pools of both kinds and both backends, under a small memory limit so the full state and
//! ephemeral drops really happen.
//!
//! The model is a plain map from key to (store order, page). After every operation:
//!
//! - its result is the model's prediction (a get returns the exact bytes, a flush the exact count, …);
//! - ephemeral keys may have vanished, but exactly as many as `ephemeral_drops` grew, and never a
//!   persistent key: persistent pages leave only by flush, destroy, writeback or a failed put;
//! - tmem's counters equal the model's.
//!
//! Periodically every key of the key space is checked with `contains`, and every pool's oldest page.

use std::collections::BTreeMap;

use pagedata::{Rng, random_page, ratio_page};
use pagemem::HostMemory;
use tmem::{
    Algorithm, Backend, Compressor, Config, EphemeralReclaim, Key, PAGE_SIZE, Page, PoolId, PoolKind, Tmem, TmemError,
    TmemStats,
};

const OIDS: u64 = 4;
const INDEXES: u32 = 8;
const MAX_POOLS: usize = 6;

/// A page of a random kind; `true` if it does not compress below the threshold.
fn make_page(rng: &mut Rng) -> (Box<Page>, bool) {
    let mut p = Box::new([0; PAGE_SIZE]);
    let seed = rng.next_u64();
    let incompressible = match rng.below(16) {
        0 => false, // zero page
        1 => {
            p.fill(seed as u8);
            false
        }
        2 => {
            random_page(seed, &mut p);
            true
        }
        n => {
            ratio_page(seed, [3, 10, 20, 35, 50, 60, 66][n % 7], &mut p);
            false
        }
    };
    (p, incompressible)
}

struct Slot {
    seq: u64,
    page: Box<Page>,
}

struct Model {
    pages: BTreeMap<Key, Slot>,
    live: Vec<(PoolId, PoolKind)>,
    dead: Vec<PoolId>,
    seq: u64,
    /// The counters tmem must show, except the sizes, which are checked separately.
    want: TmemStats,
}

impl Model {
    fn kind(&self, pool: PoolId) -> Option<PoolKind> {
        self.live.iter().find(|(id, _)| *id == pool).map(|&(_, k)| k)
    }

    fn keys_of(&self, pool: PoolId) -> Vec<Key> {
        self.pages.range(Key::new(pool, 0, 0)..=Key::new(pool, u64::MAX, u32::MAX)).map(|(k, _)| *k).collect()
    }

    fn oldest(&self, pool: PoolId) -> Option<Key> {
        self.pages
            .range(Key::new(pool, 0, 0)..=Key::new(pool, u64::MAX, u32::MAX))
            .min_by_key(|(_, s)| s.seq)
            .map(|(k, _)| *k)
    }
}

struct Run {
    rng: Rng,
    t: Tmem<HostMemory>,
    m: Model,
    comp: Compressor,
    ops: u64,
    /// Puts refused `Full`, ephemeral drops, out-of-memory retries seen: proof the run exercised them.
    seen_full: u64,
}

impl Run {
    fn new(seed: u64, limit: u64, accept: u8, comp: Compressor, reclaim: EphemeralReclaim) -> Run {
        let config = Config { accept_percent: accept, ephemeral_reclaim: reclaim, ..Config::new(limit) };
        let t = Tmem::new(config.without_zv_rules());
        let m =
            Model { pages: BTreeMap::new(), live: Vec::new(), dead: Vec::new(), seq: 0, want: TmemStats::default() };
        let mut r = Run { rng: Rng::new(seed), t, m, comp, ops: 0, seen_full: 0 };
        for (kind, backend) in [
            (PoolKind::Persistent, Backend::Zsmalloc),
            (PoolKind::Persistent, Backend::Zbud),
            (PoolKind::Ephemeral, Backend::Zbud),
            (PoolKind::Ephemeral, Backend::Zsmalloc),
            (PoolKind::Persistent, Backend::Xvmalloc),
        ] {
            r.new_pool(kind, Some(backend));
        }
        r
    }

    fn new_pool(&mut self, kind: PoolKind, backend: Option<Backend>) {
        // Mostly roomy arenas (the limit binds first); now and then a small one, for out-of-memory.
        let frames = if self.rng.below(4) == 0 { 6 } else { 96 };
        let id = self.t.new_pool(kind, backend, HostMemory::new(frames)).unwrap();
        assert!(self.m.live.iter().all(|(p, _)| *p != id) && !self.m.dead.contains(&id), "fresh id {id:?}");
        self.m.live.push((id, kind));
        self.m.want.created_pools += 1;
    }

    /// A pool for the next operation: now and then a destroyed one.
    fn pick_pool(&mut self) -> PoolId {
        if !self.m.dead.is_empty() && self.rng.below(40) == 0 {
            return self.m.dead[self.rng.below(self.m.dead.len())];
        }
        self.m.live[self.rng.below(self.m.live.len())].0
    }

    /// A key: with `held_percent` % chance one the model holds, else anywhere in the key space of a pool.
    fn pick_key(&mut self, held_percent: usize) -> Key {
        if !self.m.pages.is_empty() && self.rng.below(100) < held_percent {
            let n = self.rng.below(self.m.pages.len());
            if let Some(k) = self.m.pages.keys().nth(n) {
                return *k;
            }
        }
        let pool = self.pick_pool();
        Key::new(pool, self.rng.below(OIDS as usize) as u64, self.rng.below(INDEXES as usize) as u32)
    }

    fn step(&mut self) {
        let before = self.t.stats();
        let total_before = self.t.total_pages();
        let mut put_key = None;
        match self.rng.below(1000) {
            0..670 => put_key = Some(self.put()),
            670..850 => self.get(),
            850..910 => self.flush_page(),
            910..930 => self.flush_object(),
            930..960 => self.writeback(),
            960..990 => put_key = Some(self.put()),
            990..995 => {
                if self.m.live.len() < MAX_POOLS {
                    let kind = if self.rng.below(2) == 0 { PoolKind::Persistent } else { PoolKind::Ephemeral };
                    let backend = [None, Some(Backend::Zsmalloc), Some(Backend::Zbud), Some(Backend::Xvmalloc)]
                        [self.rng.below(4)];
                    self.new_pool(kind, backend);
                }
            }
            _ => {
                if self.m.live.len() > 2 {
                    self.destroy();
                }
            }
        }
        self.ops += 1;
        self.reconcile(&before, total_before, put_key);
        if self.ops.is_multiple_of(500) {
            self.full_check();
        }
    }

    fn no_such_pool<T: std::fmt::Debug + PartialEq>(&mut self, pool: PoolId, r: Result<T, TmemError>) -> bool {
        if self.m.kind(pool).is_some() {
            return false;
        }
        assert_eq!(r, Err(TmemError::NoSuchPool(pool)));
        self.m.want.no_such_pool += 1;
        true
    }

    /// Returns the key and whether the put was refused `Full`.
    fn put(&mut self) -> (Key, Result<(), TmemError>) {
        let key = self.pick_key(20);
        let (page, incompressible) = make_page(&mut self.rng);
        let r = self.t.put(&mut self.comp, key, &page);
        if self.no_such_pool(key.pool, r) {
            return (key, r);
        }
        let w = &mut self.m.want;
        w.puts += 1;
        if self.m.pages.remove(&key).is_some() {
            w.puts_replaced += 1;
        }
        match r {
            Ok(()) => {
                assert!(!incompressible, "{key:?}: an incompressible page was stored");
                self.m.pages.insert(key, Slot { seq: self.m.seq, page });
                self.m.seq += 1;
            }
            Err(TmemError::Full) => w.refused_full += 1,
            Err(TmemError::Incompressible { .. }) => {
                assert!(incompressible, "{key:?}: a compressible page was refused as incompressible");
                w.put_failures += 1;
                w.reject_compress_poor += 1;
            }
            Err(TmemError::OutOfMemory) => {
                w.put_failures += 1;
                w.reject_alloc_fail += 1;
            }
            Err(e) => panic!("{key:?}: put: {e:?}"),
        }
        assert!(!(r.is_err() && self.t.contains(key)), "{key:?}: a failed put left a page");
        (key, r)
    }

    fn get(&mut self) {
        let key = self.pick_key(70);
        let mut out = Box::new([0x5a; PAGE_SIZE]);
        let r = self.t.get(&mut self.comp, key, &mut out);
        if self.no_such_pool(key.pool, r) {
            return;
        }
        let w = &mut self.m.want;
        w.gets += 1;
        match self.m.pages.get(&key) {
            Some(slot) => {
                assert_eq!(r, Ok(()), "{key:?}");
                assert!(*out == *slot.page, "{key:?}: get returned other bytes");
                w.get_hits += 1;
                if self.m.kind(key.pool) == Some(PoolKind::Ephemeral) {
                    self.m.pages.remove(&key);
                }
            }
            None => {
                assert_eq!(r, Err(TmemError::NotFound), "{key:?}");
                w.get_misses += 1;
            }
        }
    }

    fn flush_page(&mut self) {
        let key = self.pick_key(70);
        let r = self.t.flush_page(key);
        if self.no_such_pool(key.pool, r) {
            return;
        }
        let had = self.m.pages.remove(&key).is_some();
        assert_eq!(r, Ok(had), "{key:?}");
        self.m.want.flush_pages += u64::from(had);
    }

    fn flush_object(&mut self) {
        let key = self.pick_key(70);
        let r = self.t.flush_object(key.pool, key.oid);
        if self.no_such_pool(key.pool, r) {
            return;
        }
        let gone: Vec<Key> = self.m.keys_of(key.pool).into_iter().filter(|k| k.oid == key.oid).collect();
        for k in &gone {
            self.m.pages.remove(k);
        }
        assert_eq!(r, Ok(gone.len() as u64), "{key:?}");
        if !gone.is_empty() {
            self.m.want.flush_objects += 1;
            self.m.want.flush_object_pages += gone.len() as u64;
        }
    }

    fn writeback(&mut self) {
        let pool = self.pick_pool();
        let accept = self.rng.below(4) != 0;
        let mut handed = None;
        let r = self.t.writeback_oldest(&mut self.comp, pool, &mut |key, page| {
            handed = Some((key, Box::new(*page)));
            accept
        });
        if self.no_such_pool(pool, r) {
            return;
        }
        if self.m.kind(pool) == Some(PoolKind::Ephemeral) {
            assert_eq!(r, Err(TmemError::NotPersistent(pool)));
            assert!(handed.is_none());
            return;
        }
        let Some(oldest) = self.m.oldest(pool) else {
            assert_eq!(r, Ok(None));
            assert!(handed.is_none());
            return;
        };
        let (key, page) = handed.expect("the sink was called");
        assert_eq!(key, oldest, "writeback takes the oldest page");
        assert!(*page == *self.m.pages[&key].page, "{key:?}: the sink got other bytes");
        if accept {
            assert_eq!(r, Ok(Some(key)));
            self.m.pages.remove(&key);
            self.m.want.written_back_pages += 1;
        } else {
            assert_eq!(r, Ok(None));
        }
    }

    fn destroy(&mut self) {
        let pool = self.pick_pool();
        let r = self.t.destroy_pool(pool);
        if self.no_such_pool(pool, r) {
            return;
        }
        let keys = self.m.keys_of(pool);
        for k in &keys {
            self.m.pages.remove(k);
        }
        assert_eq!(r, Ok(keys.len() as u64));
        self.m.live.retain(|(p, _)| *p != pool);
        self.m.dead.push(pool);
        self.m.want.destroyed_pools += 1;
        self.m.want.destroyed_pages += keys.len() as u64;
    }

    fn reconcile(&mut self, before: &TmemStats, total_before: u64, put: Option<(Key, Result<(), TmemError>)>) {
        let after = self.t.stats();
        let drops = after.ephemeral_drops - before.ephemeral_drops;
        if drops > 0 {
            let vanished: Vec<Key> = self.m.pages.keys().filter(|k| !self.t.contains(**k)).copied().collect();
            for k in &vanished {
                assert_eq!(self.m.kind(k.pool), Some(PoolKind::Ephemeral), "{k:?}: a persistent page vanished");
                self.m.pages.remove(k);
            }
            assert_eq!(vanished.len() as u64, drops, "ephemeral pages vanished ≠ ephemeral_drops");
            let evicted = after.zbud_frames_evicted - before.zbud_frames_evicted;
            assert!(evicted <= after.ephemeral_frames_freed - before.ephemeral_frames_freed);
            if self.t.config().ephemeral_reclaim == EphemeralReclaim::ObjectOrder {
                assert_eq!(evicted, 0, "object order never evicts");
            }
            self.m.want.ephemeral_drops += drops;
        }
        assert_eq!(after.stored_pages, self.m.pages.len() as u64, "a page vanished without a drop");
        let ephemeral = self.m.pages.keys().filter(|k| self.m.kind(k.pool) == Some(PoolKind::Ephemeral)).count();
        assert_eq!(after.ephemeral_pages, ephemeral as u64);

        if let Some((_, r)) = put {
            let limit = after.limit_pages;
            if !before.full && total_before < limit {
                assert_ne!(r, Err(TmemError::Full), "refused below the limit");
                assert!(drops == 0 || after.oom_retries > before.oom_retries, "dropped below the limit without OOM");
            }
            if r == Err(TmemError::Full) {
                self.seen_full += 1;
                assert!(after.full);
                assert_eq!(ephemeral, 0, "refused while ephemeral pages were left to drop");
                assert!(self.t.total_pages() >= after.accept_pages);
            }
            if r.is_ok() {
                assert!(!after.full);
            }
        }

        let w = &self.m.want;
        let counters = |s: &TmemStats| {
            [
                s.puts,
                s.puts_replaced,
                s.put_failures,
                s.refused_full,
                s.reject_compress_poor,
                s.reject_alloc_fail,
                s.gets,
                s.get_hits,
                s.get_misses,
                s.flush_pages,
                s.flush_objects,
                s.flush_object_pages,
                s.created_pools,
                s.destroyed_pools,
                s.destroyed_pages,
                s.ephemeral_drops,
                s.written_back_pages,
                s.no_such_pool,
                s.corrupt,
                s.free_errors,
                s.leaked_pages,
            ]
        };
        assert_eq!(counters(&after), counters(w), "counters (see `counters` for the order)");
        assert_eq!(after.zbud_evict_failures, 0, "every evicted object had its key");
        assert_eq!(after.pools, self.m.live.len() as u64);
    }

    fn full_check(&mut self) {
        for &(pool, _) in &self.m.live {
            for oid in 0..OIDS {
                for index in 0..INDEXES {
                    let key = Key::new(pool, oid, index);
                    assert_eq!(self.t.contains(key), self.m.pages.contains_key(&key), "{key:?}");
                }
            }
            assert_eq!(self.t.oldest(pool), self.m.oldest(pool), "{pool:?}");
            let ps = self.t.pool_stats(pool).unwrap();
            assert_eq!(ps.stored_pages, self.m.keys_of(pool).len() as u64);
            assert_eq!(ps.store.stored_pages, ps.stored_pages);
        }
        for &pool in &self.m.dead {
            assert_eq!(self.t.pool_pages(pool), 0);
        }
        let s = self.t.stats();
        assert_eq!(s.pool_pages, self.t.total_pages());
    }
}

fn run(seed: u64, ops: u64, limit: u64, accept: u8, comp: Compressor) -> TmemStats {
    run_with(seed, ops, limit, accept, comp, EphemeralReclaim::ObjectOrder)
}

fn run_with(seed: u64, ops: u64, limit: u64, accept: u8, comp: Compressor, reclaim: EphemeralReclaim) -> TmemStats {
    let mut r = Run::new(seed, limit, accept, comp, reclaim);
    let (mut pages, mut frames, mut full) = (0, 0, 0);
    for _ in 0..ops {
        r.step();
        pages += r.m.pages.len() as u64;
        frames += r.t.total_pages();
        full += u64::from(r.t.is_full());
    }
    r.full_check();
    let s = r.t.stats();
    assert!(r.seen_full > 0, "seed {seed}: never refused Full");
    assert!(s.pool_limit_hit > 1, "seed {seed}: the limit was never hit twice: {s:?}");
    assert!(s.ephemeral_drops > 0, "seed {seed}: no ephemeral drop");
    println!(
        "seed {seed}: {ops} ops, mean {} pages in {} frames, full {} % of the time",
        pages / ops,
        frames / ops,
        full * 100 / ops
    );
    println!("  {s:?}");
    s
}

fn lz4() -> Compressor {
    Compressor::new(Algorithm::Lz4).unwrap()
}

#[test]
fn model_lz4_tight_limit() {
    run(1, 50_000, 48, 90, lz4());
}

#[test]
fn model_lz4_wide_hysteresis() {
    run(2, 50_000, 64, 50, lz4());
}

#[test]
fn model_lz4_no_hysteresis() {
    let s = run(3, 50_000, 40, 100, lz4());
    assert!(s.oom_retries > 0, "small arenas ran out of memory: {s:?}");
}

#[test]
fn model_deflate() {
    run(4, 50_000, 32, 80, Compressor::new(Algorithm::Deflate { level: 1 }).unwrap());
}

#[test]
fn model_lz4_zbud_frame_eviction() {
    let s = run_with(5, 50_000, 48, 90, lz4(), EphemeralReclaim::ZbudFrames);
    assert!(s.zbud_frames_evicted > 0, "zbud frames were evicted: {s:?}");
    assert!(s.ephemeral_frames_freed >= s.zbud_frames_evicted);
}
