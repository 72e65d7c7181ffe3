//! frontswap against a model of what the swap layer sees: random store/load/invalidate_page/
//! invalidate_area/writeback on two swap types over a tmem with a tiny limit, plus an ephemeral
//! (cleancache-like) pool competing for the same limit.
//!
//! The fake swap device is a map from (type, offset) to page: a store frontswap refuses is written there,
//! as the swap layer would, and so is every page writeback hands out. What the device holds for an offset
//! frontswap took is *stale* on purpose — it is the previous page — so a frontswap that let a load miss
//! (or serve an old copy) after a refused duplicate store is caught: every load, frontswap first and the
//! device on a miss, must return the last page stored at that offset.

use std::collections::BTreeMap;

use pagedata::{Rng, random_page, ratio_page};
use pagemem::HostMemory;
use tmem::frontswap::{Frontswap, FrontswapError, FrontswapStats};
use tmem::{Algorithm, Compressor, Config, Key, PAGE_SIZE, Page, PoolId, PoolKind, Tmem, TmemError};

const TYPES: u8 = 2;
const MAX_OFFSETS: u64 = 48;

fn make_page(rng: &mut Rng) -> Box<Page> {
    let mut p = Box::new([0; PAGE_SIZE]);
    let seed = rng.next_u64();
    match rng.below(10) {
        0 => {}
        1 => random_page(seed, &mut p),
        n => ratio_page(seed, [5, 20, 40, 55, 66, 70, 30, 10][n - 2], &mut p),
    }
    p
}

type Slot = (u8, u64);

struct Run {
    rng: Rng,
    t: Tmem<HostMemory>,
    f: Frontswap,
    comp: Compressor,
    cache: PoolId,
    /// The last page stored at each live slot: what a swap-in must get.
    expected: BTreeMap<Slot, Box<Page>>,
    /// The fake swap device.
    device: BTreeMap<Slot, Box<Page>>,
    /// The slots frontswap should hold, with their store order.
    held: BTreeMap<Slot, u64>,
    seq: u64,
    inited: [bool; TYPES as usize],
    want: FrontswapStats,
    refused_dups: u64,
    ops: u64,
}

impl Run {
    fn new(seed: u64, limit: u64, accept: u8) -> Run {
        let mut t = Tmem::new(Config { accept_percent: accept, ..Config::new(limit) }.without_zv_rules());
        let mut f = Frontswap::new();
        for ty in 0..TYPES {
            f.init(&mut t, ty, MAX_OFFSETS, HostMemory::new(64)).unwrap();
        }
        let cache = t.new_pool(PoolKind::Ephemeral, None, HostMemory::new(64)).unwrap();
        Run {
            rng: Rng::new(seed),
            t,
            f,
            comp: Compressor::new(Algorithm::Lz4).unwrap(),
            cache,
            expected: BTreeMap::new(),
            device: BTreeMap::new(),
            held: BTreeMap::new(),
            seq: 0,
            inited: [true; TYPES as usize],
            want: FrontswapStats::default(),
            refused_dups: 0,
            ops: 0,
        }
    }

    /// A slot; one in forty is past the area's end.
    fn pick(&mut self) -> Slot {
        let ty = self.rng.below(TYPES as usize) as u8;
        let offset = if self.rng.below(40) == 0 {
            MAX_OFFSETS + self.rng.below(4) as u64
        } else {
            self.rng.below(MAX_OFFSETS as usize) as u64
        };
        (ty, offset)
    }

    /// The error a call on `slot` must give if the type or offset is wrong.
    fn bad(&self, (ty, offset): Slot) -> Option<FrontswapError> {
        if !self.inited[ty as usize] {
            Some(FrontswapError::NoSuchType(ty))
        } else if offset >= MAX_OFFSETS {
            Some(FrontswapError::BadOffset { offset, max_offsets: MAX_OFFSETS })
        } else {
            None
        }
    }

    fn step(&mut self) {
        match self.rng.below(100) {
            0..42 => self.store(),
            42..70 => self.load(),
            70..80 => self.invalidate_page(),
            80..91 => self.writeback(),
            91..98 => self.cache_put(),
            _ => self.area(),
        }
        self.ops += 1;
        self.check();
    }

    fn store(&mut self) {
        let slot = self.pick();
        let page = make_page(&mut self.rng);
        let r = self.f.store(&mut self.t, &mut self.comp, slot.0, slot.1, &page);
        if let Some(e) = self.bad(slot) {
            assert_eq!(r, Err(e));
            return;
        }
        let dup = self.held.remove(&slot).is_some();
        match r {
            Ok(()) => {
                self.want.succ_stores += 1;
                self.held.insert(slot, self.seq);
                self.seq += 1;
            }
            Err(FrontswapError::Tmem(TmemError::Full | TmemError::Incompressible { .. } | TmemError::OutOfMemory)) => {
                self.want.failed_stores += 1;
                if dup {
                    self.want.failed_dup_stores += 1;
                    self.refused_dups += 1;
                }
                // The swap layer writes a refused page to the device.
                self.device.insert(slot, page.clone());
            }
            Err(e) => panic!("{slot:?}: store: {e:?}"),
        }
        self.expected.insert(slot, page);
    }

    fn load(&mut self) {
        // Mostly slots that hold a page: those are the ones the swap layer reads.
        let slot = match self.expected.len() {
            n if n > 0 && self.rng.below(5) != 0 => *self.expected.keys().nth(self.rng.below(n)).unwrap(),
            _ => self.pick(),
        };
        let mut out = Box::new([0x5a; PAGE_SIZE]);
        let r = self.f.load(&mut self.t, &mut self.comp, slot.0, slot.1, &mut out);
        if let Some(e) = self.bad(slot) {
            assert_eq!(r, Err(e));
            return;
        }
        match r {
            Ok(true) => {
                assert!(self.held.contains_key(&slot), "{slot:?}: served by frontswap without a store");
                self.want.loads += 1;
            }
            Ok(false) => {
                assert!(!self.held.contains_key(&slot), "{slot:?}: frontswap lost a page");
                match self.device.get(&slot) {
                    Some(p) => *out = **p,
                    None => {
                        assert!(!self.expected.contains_key(&slot), "{slot:?}: the page is nowhere");
                        return;
                    }
                }
            }
            Err(e) => panic!("{slot:?}: load: {e:?}"),
        }
        let want = self.expected.get(&slot).unwrap_or_else(|| panic!("{slot:?}: a page for a slot never stored"));
        assert!(*out == **want, "{slot:?}: swap-in returned a stale or wrong page");
    }

    fn invalidate_page(&mut self) {
        let slot = self.pick();
        let r = self.f.invalidate_page(&mut self.t, slot.0, slot.1);
        if let Some(e) = self.bad(slot) {
            assert_eq!(r, Err(e));
            return;
        }
        let had = self.held.remove(&slot).is_some();
        assert_eq!(r, Ok(had), "{slot:?}");
        self.want.invalidates += u64::from(had);
        // The swap slot is free: nothing valid is left anywhere.
        self.expected.remove(&slot);
        self.device.remove(&slot);
    }

    fn writeback(&mut self) {
        let ty = self.rng.below(TYPES as usize) as u8;
        let accept = self.rng.below(5) != 0;
        let mut handed = None;
        let r = self.f.writeback_oldest(&mut self.t, &mut self.comp, ty, &mut |offset, page| {
            handed = Some((offset, Box::new(*page)));
            accept
        });
        if !self.inited[ty as usize] {
            assert_eq!(r, Err(FrontswapError::NoSuchType(ty)));
            return;
        }
        let oldest = self.held.iter().filter(|((t, _), _)| *t == ty).min_by_key(|(_, seq)| **seq).map(|(s, _)| *s);
        let Some(slot) = oldest else {
            assert_eq!((r, handed.is_none()), (Ok(None), true));
            return;
        };
        let (offset, page) = handed.expect("the sink was called");
        assert_eq!((ty, offset), slot, "writeback takes the oldest page");
        assert!(*page == *self.expected[&slot], "{slot:?}: writeback handed out other bytes");
        if accept {
            assert_eq!(r, Ok(Some(offset)));
            self.device.insert(slot, page);
            self.held.remove(&slot);
            self.want.written_back += 1;
        } else {
            assert_eq!(r, Ok(None));
        }
    }

    /// Some cleancache traffic on the same tmem: its pages are what a full tmem drops first.
    fn cache_put(&mut self) {
        let key = Key::new(self.cache, self.rng.below(8) as u64, self.rng.below(8) as u32);
        let page = make_page(&mut self.rng);
        match self.t.put(&mut self.comp, key, &page) {
            Ok(()) | Err(TmemError::Full | TmemError::Incompressible { .. } | TmemError::OutOfMemory) => {}
            Err(e) => panic!("cleancache put: {e:?}"),
        }
    }

    /// swapoff, or swapon of an area that is off.
    fn area(&mut self) {
        let ty = self.rng.below(TYPES as usize) as u8;
        if self.inited[ty as usize] {
            if self.rng.below(6) != 0 {
                return; // swapoff is rare
            }
            let held = self.held.keys().filter(|(t, _)| *t == ty).count() as u64;
            assert_eq!(self.f.invalidate_area(&mut self.t, ty), Ok(held));
            self.held.retain(|(t, _), _| *t != ty);
            self.expected.retain(|(t, _), _| *t != ty);
            self.device.retain(|(t, _), _| *t != ty);
            self.inited[ty as usize] = false;
            self.want.invalidated_areas += 1;
        } else {
            self.f.init(&mut self.t, ty, MAX_OFFSETS, HostMemory::new(64)).unwrap();
            self.inited[ty as usize] = true;
        }
    }

    fn check(&mut self) {
        assert_eq!(self.f.stats(), self.want);
        for ty in 0..TYPES {
            let held = self.held.keys().filter(|(t, _)| *t == ty).count() as u64;
            assert_eq!(self.f.pages(ty), held, "type {ty}");
            if let Some(pool) = self.f.pool(ty) {
                assert_eq!(self.t.pool_pages(pool), held, "type {ty}: tmem and the map disagree");
            }
        }
        if self.ops.is_multiple_of(200) {
            for ty in 0..TYPES {
                for offset in 0..MAX_OFFSETS + 2 {
                    assert_eq!(self.f.contains(ty, offset), self.held.contains_key(&(ty, offset)), "({ty}, {offset})");
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
    println!("seed {seed}: {ops} ops, refused duplicate stores {}, {:?}", r.refused_dups, r.f.stats());
    println!("  {s:?}");
    assert!(r.refused_dups > 100, "seed {seed}: too few refused duplicate stores");
    assert!(s.refused_full > 100 && s.ephemeral_drops > 100, "seed {seed}: the limit hardly mattered: {s:?}");
}

#[test]
fn frontswap_model_tiny_limit() {
    run(11, 40_000, 16, 50);
}

#[test]
fn frontswap_model_small_limit() {
    run(12, 40_000, 48, 90);
}

#[test]
fn frontswap_model_no_hysteresis() {
    run(13, 40_000, 36, 100);
}
