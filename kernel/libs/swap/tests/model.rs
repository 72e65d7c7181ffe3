//! A model of the kernel's swapper, run on the host: equal-memory accounting and the swap cache
//! together, against a fake tmem pool and a fake swap disk.
//!
//! # Why
//!
//! The kernel's swapper (`kernel/src/swap`) cannot be stepped a hundred thousand times under QEMU with
//! a check after every step. This model does what the swapper does, in the order `swap::budget` and
//! `swap::cache` tell it to, with the real [`Clock`], [`SwapMap`], [`SwapCache`] and [`make_room`], and
//! fakes only the hardware: page-table entries, frames, tmem and the disk.
//!
//! # Vocabulary and layout
//!
//! | part | model | the kernel's |
//! |---|---|---|
//! | a page's contents | a version number, +1 on every write (the truth is `Page::truth`) | the page's bytes |
//! | PTE | [`Pte`]: empty, present (frame version, accessed, dirty, writable) or a swap entry | `mm::paging::Pte` |
//! | tmem pool | [`Pool`]: objects packed first-fit into zspages of `chunk` frames; an empty zspage is freed; a store that needs a new zspage over `limit` frames is refused | zsmalloc under tmem |
//! | compressed size | [`size_of`]: a per-(page, version) table, 0 (same-filled, no memory) to 4096 | LZ4 |
//! | swap disk | [`Disk`]: slot → (page, version), writes and writebacks counted apart | virtio-blk |
//!
//! # What is checked
//!
//! * After **every** step: R + P ≤ N (equal memory) or R ≤ budget (fixed), whenever `make_room` said it fits
//!   (always, with a slot for every page).
//! * Every read, every swap-in: the version is the last one written (no stale page, no lost page).
//! * Every reclaim, against an oracle that looks only at the fake world (is the page's swap-in copy still
//!   at its slot, with the current version?): a clean re-reclaim does no store and no disk write; any
//!   other reclaim does exactly one, and the slot then holds the current version.
//! * Every few hundred steps and at the end, a full audit: slots used = swap entries + kept copies, every
//!   pool object belongs to a live entry or a kept copy (nothing leaks), kept clean copies are current.
//! * At the end, the cache's counters equal the oracle's, exactly.
//!
//! # Worked example
//!
//! `scripted_run_has_exact_counters` below walks seven accesses by hand.

use std::collections::{BTreeMap, VecDeque};

use pagedata::Rng;
use swap::budget::{Accounting, FixedBudget, MemoryBudget, Reclaimer, make_room};
use swap::cache::{Backing, CacheMode, Reclaim, SwapCache, SwapCacheStats, SwapCopy, SwapIn};
use swap::{Clock, SlotError, SwapMap};

/// How dirtiness reaches the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dirty {
    /// The PTE's D bit, read at reclaim from the exchanged PTE.
    Bit,
    /// Kept pages are mapped read-only; the first write faults.
    WriteFault,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pte {
    None,
    Present { version: u64, accessed: bool, dirty: bool, writable: bool },
    Swap(u64),
}

#[derive(Debug, Clone, Copy)]
struct Page {
    truth: u64,
    pte: Pte,
    /// The slot of the page's last swap-in (the oracle's memory; the cache's is its own).
    swapin_slot: Option<u64>,
}

const SIZES: [u64; 8] = [0, 300, 700, 1200, 1900, 2600, 3300, 4096];

/// The compressed size of `page` at `version`: deterministic, spread over [`SIZES`].
fn size_of(page: u64, version: u64) -> u64 {
    let mut x = page.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ version.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 29;
    SIZES[(x % SIZES.len() as u64) as usize]
}

#[derive(Debug, Clone, Copy)]
struct Obj {
    page: u64,
    version: u64,
    bytes: u64,
    zspage: Option<usize>,
    seq: u64,
}

#[derive(Debug, Clone, Copy)]
struct Zspage {
    free: u64,
    objects: u64,
}

/// The fake tmem pool (one frontswap pool, keyed by slot).
#[derive(Debug)]
struct Pool {
    chunk: u64,
    limit: u64,
    zspages: Vec<Option<Zspage>>,
    live: u64,
    objs: BTreeMap<u64, Obj>,
    order: VecDeque<(u64, u64)>,
    seq: u64,
    puts: u64,
    refused: u64,
}

impl Pool {
    fn new(chunk: u64, limit: u64) -> Self {
        Self {
            chunk,
            limit,
            zspages: Vec::new(),
            live: 0,
            objs: BTreeMap::new(),
            order: VecDeque::new(),
            seq: 0,
            puts: 0,
            refused: 0,
        }
    }

    fn frames(&self) -> u64 {
        self.live * self.chunk
    }

    /// frontswap_store: `false` when a new zspage would take the pool over its limit.
    fn store(&mut self, slot: u64, page: u64, version: u64) -> bool {
        assert!(!self.objs.contains_key(&slot), "duplicate store at slot {slot}: the old copy was not invalidated");
        let bytes = size_of(page, version);
        let cap = self.chunk * 4096;
        let zspage = if bytes == 0 {
            None
        } else if let Some(i) = self.zspages.iter().position(|z| z.is_some_and(|z| z.free >= bytes)) {
            Some(i)
        } else {
            if (self.live + 1) * self.chunk > self.limit {
                self.refused += 1;
                return false;
            }
            self.live += 1;
            let z = Some(Zspage { free: cap, objects: 0 });
            match self.zspages.iter().position(Option::is_none) {
                Some(i) => {
                    self.zspages[i] = z;
                    Some(i)
                }
                None => {
                    self.zspages.push(z);
                    Some(self.zspages.len() - 1)
                }
            }
        };
        if let Some(i) = zspage {
            let z = self.zspages[i].as_mut().unwrap();
            z.free -= bytes;
            z.objects += 1;
        }
        self.seq += 1;
        self.objs.insert(slot, Obj { page, version, bytes, zspage, seq: self.seq });
        self.order.push_back((self.seq, slot));
        self.puts += 1;
        true
    }

    fn get(&self, slot: u64) -> Option<(u64, u64)> {
        self.objs.get(&slot).map(|o| (o.page, o.version))
    }

    /// frontswap_invalidate_page.
    fn invalidate(&mut self, slot: u64) -> Option<Obj> {
        let o = self.objs.remove(&slot)?;
        if let Some(i) = o.zspage {
            let z = self.zspages[i].as_mut().unwrap();
            z.free += o.bytes;
            z.objects -= 1;
            if z.objects == 0 {
                self.zspages[i] = None;
                self.live -= 1;
            }
        }
        Some(o)
    }

    /// The oldest object, taken out (for writeback).
    fn take_oldest(&mut self) -> Option<(u64, Obj)> {
        while let Some((seq, slot)) = self.order.pop_front() {
            if self.objs.get(&slot).is_some_and(|o| o.seq == seq) {
                let o = self.invalidate(slot)?;
                return Some((slot, o));
            }
        }
        None
    }
}

#[derive(Debug, Default)]
struct Disk {
    slots: BTreeMap<u64, (u64, u64)>,
    writes: u64,
    writebacks: u64,
    reads: u64,
}

#[derive(Debug, Clone, Copy)]
struct Config {
    pages: u64,
    slots: u64,
    acct: Accounting,
    mode: CacheMode,
    dirty: Dirty,
    chunk: u64,
    tmem_limit: u64,
    /// Percent of accesses that write.
    write_percent: u64,
    /// Pages most accesses go to.
    hot: u64,
    seed: u64,
}

/// What the oracle expects the cache's counters to be.
#[derive(Debug, Default, Clone, Copy)]
struct Oracle {
    saved: u64,
    saved_stores: u64,
    dirtied: u64,
    swapins: u64,
    swapins_from_pool: u64,
    kept_written_back: u64,
    reclaims: u64,
    over_steps: u64,
}

#[derive(Debug)]
struct Sim {
    cfg: Config,
    pages: Vec<Page>,
    clock: Clock,
    map: SwapMap,
    cache: SwapCache,
    pool: Pool,
    disk: Disk,
    oracle: Oracle,
    zero_fills: u64,
    /// Most pool frames after any step.
    peak_pool: u64,
    /// The last `make_room` could not make room (out of swap): the step may stand over budget until the
    /// next one that can.
    over: bool,
}

impl Sim {
    fn new(cfg: Config) -> Self {
        Self {
            cfg,
            pages: vec![Page { truth: 0, pte: Pte::None, swapin_slot: None }; cfg.pages as usize],
            clock: Clock::new(),
            map: SwapMap::new(cfg.slots),
            cache: SwapCache::new(cfg.mode),
            pool: Pool::new(cfg.chunk, cfg.tmem_limit),
            disk: Disk::default(),
            oracle: Oracle::default(),
            zero_fills: 0,
            peak_pool: 0,
            over: false,
        }
    }

    /// What a load of `slot` would return: frontswap first, then the disk; only for a slot in use.
    fn world_copy(&self, slot: u64) -> Option<(u64, u64)> {
        if !self.map.is_used(slot) {
            return None;
        }
        self.pool.get(slot).or_else(|| self.disk.slots.get(&slot).copied())
    }

    /// Drop a copy the cache gave back: invalidate frontswap, free the slot.
    fn drop_copy(&mut self, c: SwapCopy) {
        self.pool.invalidate(c.slot);
        self.map.free(c.slot).expect("a kept slot is in use");
    }

    /// One access by the workload: a fault first if the page is not present.
    fn access(&mut self, p: u64, write: bool) {
        let pi = p as usize;
        if !matches!(self.pages[pi].pte, Pte::Present { .. }) {
            self.fault_in(p);
        }
        let Pte::Present { version, writable, .. } = self.pages[pi].pte else { unreachable!() };
        assert_eq!(version, self.pages[pi].truth, "page {p} reads a stale version");
        if write && !writable {
            // A write fault on a read-only kept page.
            let before = self.pages[pi].swapin_slot.and_then(|s| self.world_copy(s));
            let copy = self.cache.observe_dirty(p, true).expect("only kept pages are mapped read-only");
            assert_eq!(before, Some((p, version)), "a kept page's copy must be current until written");
            self.oracle.dirtied += 1;
            self.drop_copy(copy);
        }
        let pg = &mut self.pages[pi];
        let Pte::Present { version, accessed, dirty, writable } = &mut pg.pte else { unreachable!() };
        *accessed = true;
        if write {
            pg.truth += 1;
            *version = pg.truth;
            *dirty = true;
            *writable = true;
        }
    }

    fn fault_in(&mut self, p: u64) {
        let room = make_room(self.cfg.acct, 1, self).unwrap();
        if !room.fits {
            self.oracle.over_steps += 1;
        }
        self.over = !room.fits;
        let pi = p as usize;
        let version = match self.pages[pi].pte {
            Pte::None => {
                assert_eq!(self.pages[pi].truth, 0, "page {p} lost: its PTE is empty but it was written");
                self.zero_fills += 1;
                0
            }
            Pte::Swap(slot) => {
                let (backing, got) = match self.pool.get(slot) {
                    Some(v) => (Backing::Frontswap, v),
                    None => {
                        self.disk.reads += 1;
                        (Backing::Disk, *self.disk.slots.get(&slot).expect("a swap entry's slot holds a copy"))
                    }
                };
                assert!(self.map.is_used(slot));
                assert_eq!(got, (p, self.pages[pi].truth), "page {p}: a stale or foreign copy at slot {slot}");
                self.oracle.swapins += 1;
                if backing == Backing::Frontswap {
                    self.oracle.swapins_from_pool += 1;
                }
                self.pages[pi].swapin_slot = Some(slot);
                got.1
            }
            Pte::Present { .. } => unreachable!(),
        };
        // Map first (D clear), then tell the cache.
        let mut writable = true;
        if let Pte::Swap(slot) = self.pages[pi].pte {
            let backing = if self.pool.get(slot).is_some() { Backing::Frontswap } else { Backing::Disk };
            match self.cache.swapped_in(p, SwapCopy { slot, backing }).unwrap() {
                SwapIn::Keep => writable = self.cfg.dirty == Dirty::Bit,
                SwapIn::Release(c) => {
                    assert_eq!(c.slot, slot);
                    self.drop_copy(c);
                }
            }
        }
        self.pages[pi].pte = Pte::Present { version, accessed: true, dirty: false, writable };
        self.clock.insert(p);
    }

    /// Store `page` at `slot`: frontswap, and if tmem is full, write its oldest page back once and try
    /// again (the kernel's `frontswap::store`), else the disk.
    fn store(&mut self, page: u64, slot: u64) {
        let version = self.pages[page as usize].truth;
        let mut stored = self.pool.store(slot, page, version);
        if !stored && self.writeback_one() {
            stored = self.pool.store(slot, page, version);
        }
        if stored {
            self.cache.stored(Backing::Frontswap);
        } else {
            self.disk.slots.insert(slot, (page, version));
            self.disk.writes += 1;
            self.cache.stored(Backing::Disk);
        }
    }

    fn writeback_one(&mut self) -> bool {
        let Some((slot, o)) = self.pool.take_oldest() else { return false };
        self.disk.slots.insert(slot, (o.page, o.version));
        self.disk.writebacks += 1;
        let kept = self.cache.written_back(slot);
        let resident = matches!(self.pages[o.page as usize].pte, Pte::Present { .. });
        if resident && self.cache.mode() != CacheMode::Off {
            self.oracle.kept_written_back += 1;
        }
        assert_eq!(kept.is_some(), resident, "slot {slot} written back: kept iff its page is resident");
        true
    }

    /// Full audit of the world against the truth.
    fn audit(&self) {
        let mut swap_entries = 0;
        let mut referenced = BTreeMap::new();
        for (i, pg) in self.pages.iter().enumerate() {
            let p = i as u64;
            match pg.pte {
                Pte::None => assert_eq!(pg.truth, 0, "page {p} lost"),
                Pte::Present { version, dirty, .. } => {
                    assert_eq!(version, pg.truth);
                    if let Some(c) = self.cache.copy_of(p) {
                        referenced.insert(c.slot, p);
                        if !dirty {
                            assert_eq!(self.world_copy(c.slot), Some((p, pg.truth)), "kept copy of {p} not current");
                        }
                    }
                }
                Pte::Swap(s) => {
                    swap_entries += 1;
                    assert_eq!(self.world_copy(s), Some((p, pg.truth)), "page {p} lost at slot {s}");
                    referenced.insert(s, p);
                }
            }
        }
        assert_eq!(self.map.used(), swap_entries + self.cache.len() as u64, "slot leak");
        for (slot, o) in &self.pool.objs {
            assert_eq!(referenced.get(slot), Some(&o.page), "pool object at slot {slot} leaked");
        }
        assert_eq!(
            self.clock.len() as u64,
            self.pages.iter().filter(|p| matches!(p.pte, Pte::Present { .. })).count() as u64
        );
    }

    fn resident(&self) -> u64 {
        self.clock.len() as u64
    }

    /// The cache's counters must equal the oracle's and the fake world's.
    fn check_counters(&self) {
        let s: SwapCacheStats = self.cache.stats;
        let o = self.oracle;
        assert_eq!(s.clean_reclaims_saved, o.saved);
        assert_eq!(s.saved_stores, o.saved_stores);
        assert_eq!(s.saved_writes, o.saved - o.saved_stores);
        assert_eq!(s.dirtied_after_swapin, o.dirtied);
        assert_eq!(s.stores, self.pool.puts);
        assert_eq!(s.writes, self.disk.writes);
        assert_eq!(s.written_back, o.kept_written_back);
        assert_eq!(s.swapins_kept + s.swapins_released, o.swapins);
        assert_eq!(o.reclaims, s.clean_reclaims_saved + s.stores + s.writes);
        match self.cfg.mode {
            CacheMode::Off => assert_eq!((s.swapins_kept, s.clean_reclaims_saved), (0, 0)),
            CacheMode::Keep => assert_eq!(s.swapins_released, 0),
            CacheMode::ExclusiveLoads => {
                assert_eq!(s.swapins_released, o.swapins_from_pool);
                assert_eq!(s.saved_stores, 0, "an exclusive load keeps no frontswap copy");
            }
        }
    }

    fn run(&mut self, steps: u64) {
        let mut rng = Rng::new(self.cfg.seed);
        for step in 0..steps {
            let p = if rng.below(4) != 0 {
                rng.below(self.cfg.hot.min(self.cfg.pages) as usize) as u64
            } else {
                rng.below(self.cfg.pages as usize) as u64
            };
            let write = (rng.below(100) as u64) < self.cfg.write_percent;
            self.access(p, write);
            let (r, pool) = (self.resident(), self.pool.frames());
            self.peak_pool = self.peak_pool.max(pool);
            if !self.over {
                assert!(
                    self.cfg.acct.holds(r, pool),
                    "step {step}: resident {r} + pool {pool} breaks {:?} ({:?})",
                    self.cfg.acct,
                    self.cfg
                );
            }
            if step % 499 == 0 {
                self.audit();
            }
        }
        self.audit();
        self.check_counters();
    }
}

impl Reclaimer for Sim {
    type Error = SlotError;

    fn resident(&self) -> u64 {
        self.clock.len() as u64
    }

    fn pool_pages(&self) -> u64 {
        self.pool.frames()
    }

    fn reclaim_one(&mut self) -> Result<bool, SlotError> {
        let pages = &mut self.pages;
        let Some(v) = self.clock.victim(|q| match &mut pages[q as usize].pte {
            Pte::Present { accessed, .. } => core::mem::replace(accessed, false),
            _ => false,
        }) else {
            return Ok(false);
        };
        let vi = v as usize;
        // The oracle, from the world alone and before any slot moves: is the page's swap-in copy still
        // there, current (clean) or an older version (stale)?
        let truth = self.pages[vi].truth;
        let old_copy = self.pages[vi].swapin_slot.and_then(|s| self.world_copy(s));
        let clean_expected = old_copy == Some((v, truth));
        let stale_expected = matches!(old_copy, Some((pg, ver)) if pg == v && ver != truth);
        // The entry first: the kept slot, else a new one (out of slots: give up a kept copy once).
        let slot = match self.cache.copy_of(v) {
            Some(c) => c.slot,
            None => match self.map.alloc() {
                Ok(s) => s,
                Err(SlotError::Full { .. }) => match self.cache.evict(None) {
                    Some((_, c)) => {
                        self.drop_copy(c);
                        self.map.alloc()?
                    }
                    None => {
                        self.clock.insert(v);
                        return Ok(false);
                    }
                },
                Err(e) => return Err(e),
            },
        };
        // Exchange the PTE for the swap entry; D comes from the old PTE.
        let old = core::mem::replace(&mut self.pages[vi].pte, Pte::Swap(slot));
        let Pte::Present { version, dirty, .. } = old else { panic!("victim {v} was not present") };
        assert_eq!(version, truth);
        self.pages[vi].swapin_slot = None;
        let (puts, writes) = (self.pool.puts, self.disk.writes);
        match self.cache.reclaim(v, dirty) {
            Reclaim::Clean(c) => {
                assert_eq!(c.slot, slot);
                assert!(clean_expected, "page {v}: the cache calls it clean but its copy is not current");
            }
            Reclaim::Rewrite(c) => {
                assert_eq!(c.slot, slot);
                assert!(stale_expected, "page {v}: rewrite of a copy that was not stale");
                self.pool.invalidate(slot);
                self.store(v, slot);
            }
            Reclaim::Store => {
                assert!(!clean_expected && !stale_expected, "page {v}: its copy was still kept");
                self.store(v, slot);
            }
        }
        let ios = (self.pool.puts - puts) + (self.disk.writes - writes);
        if clean_expected {
            assert_eq!(ios, 0, "a clean re-reclaim stored or wrote");
            self.oracle.saved += 1;
            if self.pool.get(slot).is_some() {
                self.oracle.saved_stores += 1;
            }
        } else {
            assert_eq!(ios, 1, "a reclaim that needed a store did {ios}");
        }
        if stale_expected {
            self.oracle.dirtied += 1;
        }
        assert_eq!(self.world_copy(slot), Some((v, truth)), "slot {slot} does not hold page {v}'s last version");
        self.oracle.reclaims += 1;
        Ok(true)
    }

    fn shrink_pool(&mut self) -> Result<bool, SlotError> {
        // A kept frontswap copy first: no I/O. Then the oldest pool page goes to the disk.
        if let Some((_, c)) = self.cache.evict(Some(Backing::Frontswap)) {
            assert!(self.pool.get(c.slot).is_some());
            self.drop_copy(c);
            return Ok(true);
        }
        Ok(self.writeback_one())
    }
}

fn equal(n: u64, percent: u8) -> Accounting {
    Accounting::Equal(MemoryBudget::new(n).unwrap().with_max_pool_percent(percent).unwrap())
}

fn config(acct: Accounting, pages: u64, hot: u64, seed: u64) -> Config {
    Config {
        pages,
        slots: pages,
        acct,
        mode: CacheMode::Keep,
        dirty: Dirty::Bit,
        chunk: 1,
        tmem_limit: acct.pool_cap().unwrap_or(u64::MAX),
        write_percent: 20,
        hot,
        seed,
    }
}

/// (a) The accounting: R + P ≤ N after every one of 100 000 steps, for N from 1 frame up, pools of 1- and
/// 4-frame zspages, tmem limited to the cap (the kernel's rule) or not at all (the loop's backstop).
#[test]
fn equal_memory_holds_after_every_step() {
    let cases: &[(u64, u8, u64, u64)] = &[
        // (N, max pool %, zspage frames, tmem limit: 0 = the cap, else that many frames)
        (1, 100, 1, 0),
        (2, 100, 1, 0),
        (3, 50, 1, 0),
        (6, 70, 4, 0),
        (5, 100, 4, u64::MAX),
        (8, 25, 1, u64::MAX),
        (16, 50, 4, 0),
        (64, 20, 4, u64::MAX),
    ];
    for (i, &(n, percent, chunk, limit)) in cases.iter().enumerate() {
        let acct = equal(n, percent);
        let mut cfg = config(acct, 3 * n + 5, n + 1, 100 + i as u64);
        cfg.chunk = chunk;
        cfg.tmem_limit = if limit == 0 { acct.pool_cap().unwrap() } else { limit };
        cfg.mode = [CacheMode::Keep, CacheMode::ExclusiveLoads, CacheMode::Off][i % 3];
        let mut sim = Sim::new(cfg);
        sim.run(100_000);
        assert_eq!(sim.oracle.over_steps, 0, "N = {n}: every step fit (a slot for every page)");
        // The workload really swapped: more pages than N, so reclaim and swap-ins happened.
        assert!(sim.oracle.reclaims > 1000 && sim.oracle.swapins > 1000, "N = {n}: {:?}", sim.oracle);
        if n >= 3 && limit == u64::MAX {
            // Without tmem's own limit, only the loop's shrink keeps the pool at its cap.
            assert!(sim.disk.writebacks + sim.cache.stats.evicted > 0, "N = {n}: the pool was never shrunk");
        }
        let cap = acct.pool_cap().unwrap();
        assert!(sim.peak_pool <= cap && (cap == 0 || sim.peak_pool > 0), "N = {n}: peak pool {}", sim.peak_pool);
    }
}

/// The legacy accounting: R ≤ budget after every step, the pool on top and bounded only by tmem.
#[test]
fn fixed_budget_holds_resident_only() {
    let acct = Accounting::Fixed(FixedBudget::new(6).unwrap());
    let mut cfg = config(acct, 40, 12, 7);
    cfg.tmem_limit = 5;
    let mut sim = Sim::new(cfg);
    sim.run(100_000);
    assert_eq!(sim.oracle.over_steps, 0);
    // The pool reached its own limit on top of the 6 resident pages: 11 frames in all at its peak.
    assert_eq!(sim.peak_pool, 5);
}

/// Fewer slots than pages: reclaim can run out of swap. Pages are never lost, reads never stale, and
/// the budget is broken only after a `make_room` that reported it, until one makes room again.
#[test]
fn out_of_swap_loses_nothing() {
    let acct = equal(6, 50);
    let mut cfg = config(acct, 30, 10, 9);
    cfg.slots = 20;
    let mut sim = Sim::new(cfg);
    sim.run(100_000);
    assert!(sim.oracle.over_steps > 0, "the run never ran out of swap: the case tests nothing");
    assert!(sim.cache.stats.evicted > 0, "out of slots never took a kept copy");
}

/// (b) The swap cache, every mode and both ways of learning dirtiness, 100 000 steps each: reads are
/// current, clean re-reclaims cost nothing, written pages are stored again; counters exact.
#[test]
fn swap_cache_modes_against_the_oracle() {
    let mut saved = BTreeMap::new();
    for (i, mode) in [CacheMode::Off, CacheMode::Keep, CacheMode::ExclusiveLoads].into_iter().enumerate() {
        for dirty in [Dirty::Bit, Dirty::WriteFault] {
            for write_percent in [0, 10, 60] {
                let acct = equal(24, 40);
                let mut cfg = config(acct, 64, 30, 1000 + i as u64 * 10 + write_percent);
                cfg.mode = mode;
                cfg.dirty = dirty;
                cfg.write_percent = write_percent;
                cfg.chunk = 2;
                let mut sim = Sim::new(cfg);
                sim.run(100_000);
                assert_eq!(sim.oracle.over_steps, 0);
                let s = sim.cache.stats;
                if mode != CacheMode::Off && write_percent < 100 {
                    assert!(s.clean_reclaims_saved > 0, "{mode:?} {dirty:?} {write_percent}%: nothing saved");
                }
                if mode != CacheMode::Off && write_percent > 0 {
                    assert!(s.dirtied_after_swapin > 0, "{mode:?} {dirty:?} {write_percent}%: no page dirtied");
                }
                saved.insert((i, dirty == Dirty::Bit, write_percent), s.clean_reclaims_saved);
            }
        }
    }
    // Keeping copies saves more than exclusive loads, which saves more than nothing.
    for d in [true, false] {
        for w in [0, 10, 60] {
            assert!(saved[&(1, d, w)] > saved[&(2, d, w)], "{d} {w}: {saved:?}");
            assert!(saved[&(2, d, w)] > saved[&(0, d, w)], "{d} {w}: {saved:?}");
        }
    }
}

/// Seven accesses traced by hand. Fixed budget of 2 resident pages, tmem unlimited (every store is
/// accepted), Keep, dirty bit.
#[test]
fn scripted_run_has_exact_counters() {
    let acct = Accounting::Fixed(FixedBudget::new(2).unwrap());
    let mut cfg = config(acct, 3, 3, 0);
    cfg.tmem_limit = u64::MAX;
    let mut sim = Sim::new(cfg);
    // 1. write 0, write 1: two zero-filled pages (version 1 each), resident [0, 1], both accessed.
    sim.access(0, true);
    sim.access(1, true);
    // 2. read 2: reclaim. The clock gives 0 and 1 a second chance (clearing their bits), takes 0:
    //    no copy → Store at slot 0 (frontswap). Resident [1, 2].
    sim.access(2, false);
    assert_eq!(sim.pages[0].pte, Pte::Swap(0));
    // 3. read 0: reclaim takes 1 (its bit was cleared in step 2) → Store at slot 1. 0 is swapped in from
    //    slot 0 and kept. Resident [2, 0].
    sim.access(0, false);
    assert_eq!(sim.cache.copy_of(0), Some(SwapCopy { slot: 0, backing: Backing::Frontswap }));
    // 4. read 1: 2 and 0 are accessed: second chances, then 2 goes → Store at slot 2. 1 is kept from
    //    slot 1. Resident [0, 1].
    sim.access(1, false);
    // 5. read 2: 0's bit was cleared in step 4: 0 goes, clean → no store (saved 1). 2 kept from slot 2.
    sim.access(2, false);
    assert_eq!(sim.pages[0].pte, Pte::Swap(0));
    // 6. write 1 (resident: D set), then read 0: 1 and 2 get second chances, then 1 goes, dirty →
    //    Rewrite at its slot 1 (dirtied 1, a 4th store). 0 is kept again from slot 0.
    sim.access(1, true);
    sim.access(0, false);
    assert_eq!(sim.pages[1].pte, Pte::Swap(1));
    assert_eq!(
        sim.cache.stats,
        SwapCacheStats {
            swapins_kept: 4,
            clean_reclaims_saved: 1,
            saved_stores: 1,
            dirtied_after_swapin: 1,
            stores: 4,
            ..Default::default()
        }
    );
    assert_eq!((sim.pool.puts, sim.disk.writes, sim.zero_fills), (4, 0, 3));
    assert_eq!(sim.map.used(), 3);
    sim.audit();
    sim.check_counters();
}
