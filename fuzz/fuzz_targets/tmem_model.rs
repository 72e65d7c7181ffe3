//! Fuzz target `tmem_model`: tmem's API fed operation sequences libFuzzer chooses, against a model.
//!
//! # Why
//!
//! `kernel/libs/tmem/tests/model.rs` drives tmem with seeded random operations; libFuzzer instead
//! *steers* the sequence towards new code (a put that replaces in a full pool of a destroyed id, a
//! writeback right after a compaction, …), with a tiny limit so that full states, ephemeral drops and
//! out-of-memory retries come within a few operations. The model here is the same idea cut down to what
//! must hold for any sequence: a get returns the exact bytes put, pages vanish only as tmem says.
//!
//! # Input
//!
//! An [`Input`] (`arbitrary`): the limit (1..=64 frames), the accept percent, the reclaim mode, whether
//! zcache's persistent-page rules are on, the compressor, then up to [`MAX_OPS`] [`Op`]s. Pool ids are
//! `0..16` as given: ids tmem never issued or destroyed must give `NoSuchPool`. Keys are `oid % 4`,
//! `index % 8`, so operations meet. Two pools (persistent zsmalloc, ephemeral zbud) exist from the start.
//!
//! # What is checked
//!
//! | op | rule |
//! |---|---|
//! | any, on a pool not live | `Err(NoSuchPool(id))` |
//! | put | `Ok`, or `Full`, `Incompressible`, `OutOfMemory`, `PageCountPolicy`; the key's old page is gone either way, and after `Ok` it holds the new one |
//! | get | held: `Ok` and the exact bytes (an ephemeral page then leaves); else `NotFound` |
//! | flush page / object / destroy | the exact number of pages the model held there |
//! | new pool | `Ok` with an id never seen |
//! | writeback | ephemeral pool: `NotPersistent`; else the model's oldest page, handed over with its exact bytes, gone iff accepted |
//! | compact | `Ok` |
//!
//! After every operation pages missing from tmem must be ephemeral and exactly `ephemeral_drops` more
//! than before; `stored_pages` equals the model's count. At the end: every key's `contains` and every
//! persistent page's bytes, then every pool destroyed with no free error, no leaked page, nothing
//! corrupt, and the shared arena has all its frames back.
//!
//! # Worked example
//!
//! `Put { pool: 1, oid: 0, index: 0, page }` then `Get { pool: 1, … }`: pool 1 is the ephemeral zbud pool,
//! the get returns the page and removes it; a second get is `NotFound`.
#![no_main]

use std::cell::RefCell;
use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tmem::{
    Algorithm, Backend, Compressor, Config, EphemeralReclaim, Key, PAGE_SIZE, Page, PoolId, PoolKind, Tmem, TmemError,
};
use zkernel_fuzz::{SharedArena, make_page};

const MAX_OPS: usize = 200;
const MAX_POOLS: usize = 6;
const POOL_IDS: u8 = 16;
const OIDS: u8 = 4;
const INDEXES: u8 = 8;

#[derive(Debug, Clone, Copy, Arbitrary)]
struct PageSpec {
    seed: u32,
    /// Bytes of noise at the start (`% 4097`): 0 is same-filled, 4096 incompressible.
    noise: u16,
    fill: u8,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Op {
    Put {
        pool: u8,
        oid: u8,
        index: u8,
        page: PageSpec,
    },
    Get {
        pool: u8,
        oid: u8,
        index: u8,
    },
    FlushPage {
        pool: u8,
        oid: u8,
        index: u8,
    },
    FlushObject {
        pool: u8,
        oid: u8,
    },
    Destroy {
        pool: u8,
    },
    /// `backend % 5`: 0 is the kind's default, else [`Backend::ALL`]`[backend % 5 - 1]`.
    NewPool {
        ephemeral: bool,
        backend: u8,
    },
    Writeback {
        pool: u8,
        accept: bool,
    },
    Compact,
}

#[derive(Debug, Arbitrary)]
struct Input {
    limit: u8,
    accept_percent: u8,
    zbud_frames: bool,
    zv_rules: bool,
    deflate: bool,
    ops: Vec<Op>,
}

thread_local! {
    /// LZ4 and deflate level 1, made once (deflate's state is ≈ 310 KiB).
    static COMPS: RefCell<[Compressor; 2]> = RefCell::new([
        Compressor::new(Algorithm::Lz4).expect("LZ4"),
        Compressor::new(Algorithm::Deflate { level: 1 }).expect("deflate 1"),
    ]);
}

struct Held {
    seq: u64,
    page: Box<Page>,
}

struct Model {
    pages: BTreeMap<Key, Held>,
    kinds: BTreeMap<PoolId, PoolKind>,
    seen: Vec<PoolId>,
    seq: u64,
}

impl Model {
    fn range(pool: PoolId) -> std::ops::RangeInclusive<Key> {
        Key::new(pool, 0, 0)..=Key::new(pool, u64::MAX, u32::MAX)
    }

    fn keys_where(&self, pool: PoolId, oid: Option<u64>) -> Vec<Key> {
        self.pages.range(Self::range(pool)).map(|(k, _)| *k).filter(|k| oid.is_none_or(|o| k.oid == o)).collect()
    }

    fn oldest(&self, pool: PoolId) -> Option<Key> {
        self.pages.range(Self::range(pool)).min_by_key(|(_, h)| h.seq).map(|(k, _)| *k)
    }
}

fn key(pool: u8, oid: u8, index: u8) -> Key {
    Key::new(PoolId(u32::from(pool % POOL_IDS)), u64::from(oid % OIDS), u32::from(index % INDEXES))
}

struct Run<'c> {
    t: Tmem<SharedArena>,
    m: Model,
    comp: &'c mut Compressor,
}

impl Run<'_> {
    fn new_pool(&mut self, kind: PoolKind, backend: Option<Backend>) {
        let id = self.t.new_pool(kind, backend, SharedArena::get()).expect("a fresh pool id");
        assert!(!self.m.seen.contains(&id), "pool id {id:?} issued twice");
        self.m.seen.push(id);
        self.m.kinds.insert(id, kind);
    }

    /// `r` for a pool the model does not have: must be `NoSuchPool`. True if it was so handled.
    fn no_such_pool<T: std::fmt::Debug + PartialEq>(&self, pool: PoolId, r: &Result<T, TmemError>) -> bool {
        if self.m.kinds.contains_key(&pool) {
            return false;
        }
        assert_eq!(*r, Err(TmemError::NoSuchPool(pool)));
        true
    }

    fn step(&mut self, op: Op) {
        let drops_before = self.t.stats().ephemeral_drops;
        match op {
            Op::Put { pool, oid, index, page } => {
                let k = key(pool, oid, index);
                let page = make_page(page.seed, page.noise % (PAGE_SIZE as u16 + 1), page.fill);
                let r = self.t.put(self.comp, k, &page);
                if !self.no_such_pool(k.pool, &r) {
                    self.m.pages.remove(&k);
                    match r {
                        Ok(()) => {
                            self.m.pages.insert(k, Held { seq: self.m.seq, page });
                            self.m.seq += 1;
                        }
                        Err(
                            TmemError::Full
                            | TmemError::Incompressible { .. }
                            | TmemError::OutOfMemory
                            | TmemError::PageCountPolicy { .. },
                        ) => assert!(!self.t.contains(k), "{k:?}: a failed put left a page"),
                        Err(e) => panic!("{k:?}: put: {e:?}"),
                    }
                }
            }
            Op::Get { pool, oid, index } => {
                let k = key(pool, oid, index);
                let mut out = Box::new([0x5a; PAGE_SIZE]);
                let r = self.t.get(self.comp, k, &mut out);
                if !self.no_such_pool(k.pool, &r) {
                    match self.m.pages.get(&k) {
                        Some(held) => {
                            assert_eq!(r, Ok(()), "{k:?}: get of a held page");
                            assert!(*out == *held.page, "{k:?}: get returned other bytes");
                            if self.m.kinds[&k.pool] == PoolKind::Ephemeral {
                                self.m.pages.remove(&k);
                            }
                        }
                        None => assert_eq!(r, Err(TmemError::NotFound), "{k:?}"),
                    }
                }
            }
            Op::FlushPage { pool, oid, index } => {
                let k = key(pool, oid, index);
                let r = self.t.flush_page(k);
                if !self.no_such_pool(k.pool, &r) {
                    let had = self.m.pages.remove(&k).is_some();
                    assert_eq!(r, Ok(had), "{k:?}");
                }
            }
            Op::FlushObject { pool, oid } => {
                let k = key(pool, oid, 0);
                let r = self.t.flush_object(k.pool, k.oid);
                if !self.no_such_pool(k.pool, &r) {
                    let gone = self.m.keys_where(k.pool, Some(k.oid));
                    for g in &gone {
                        self.m.pages.remove(g);
                    }
                    assert_eq!(r, Ok(gone.len() as u64), "{k:?}");
                }
            }
            Op::Destroy { pool } => {
                let id = key(pool, 0, 0).pool;
                let r = self.t.destroy_pool(id);
                if !self.no_such_pool(id, &r) {
                    let gone = self.m.keys_where(id, None);
                    for g in &gone {
                        self.m.pages.remove(g);
                    }
                    assert_eq!(r, Ok(gone.len() as u64), "{id:?}");
                    self.m.kinds.remove(&id);
                }
            }
            Op::NewPool { ephemeral, backend } => {
                if self.m.kinds.len() < MAX_POOLS && self.m.seen.len() < usize::from(POOL_IDS) {
                    let kind = if ephemeral { PoolKind::Ephemeral } else { PoolKind::Persistent };
                    let backend = match backend % 5 {
                        0 => None,
                        b => Some(Backend::ALL[usize::from(b) - 1]),
                    };
                    self.new_pool(kind, backend);
                }
            }
            Op::Writeback { pool, accept } => {
                let id = key(pool, 0, 0).pool;
                let mut handed = None;
                let r = self.t.writeback_oldest(self.comp, id, &mut |k, page| {
                    handed = Some((k, Box::new(*page)));
                    accept
                });
                if !self.no_such_pool(id, &r) {
                    if self.m.kinds[&id] == PoolKind::Ephemeral {
                        assert_eq!(r, Err(TmemError::NotPersistent(id)));
                        assert!(handed.is_none());
                    } else if let Some(oldest) = self.m.oldest(id) {
                        let (k, page) = handed.expect("the sink was called");
                        assert_eq!(k, oldest, "writeback takes the oldest page");
                        assert!(*page == *self.m.pages[&k].page, "{k:?}: the sink got other bytes");
                        if accept {
                            assert_eq!(r, Ok(Some(k)));
                            self.m.pages.remove(&k);
                        } else {
                            assert_eq!(r, Ok(None));
                        }
                    } else {
                        assert_eq!(r, Ok(None));
                        assert!(handed.is_none());
                    }
                }
            }
            Op::Compact => {
                self.t.compact().expect("compact");
            }
        }
        self.reconcile(drops_before);
    }

    /// Pages tmem dropped on its own: only ephemeral ones, exactly as many as `ephemeral_drops` says.
    fn reconcile(&mut self, drops_before: u64) {
        let s = self.t.stats();
        let vanished: Vec<Key> = self.m.pages.keys().filter(|k| !self.t.contains(**k)).copied().collect();
        for k in &vanished {
            assert_eq!(self.m.kinds.get(&k.pool), Some(&PoolKind::Ephemeral), "{k:?}: a persistent page vanished");
            self.m.pages.remove(k);
        }
        assert_eq!(vanished.len() as u64, s.ephemeral_drops - drops_before, "pages vanished ≠ ephemeral_drops");
        assert_eq!(s.stored_pages, self.m.pages.len() as u64, "stored_pages");
        assert_eq!(s.pools, self.m.kinds.len() as u64, "live pools");
    }

    fn finish(mut self) {
        for id in self.m.seen.clone() {
            for oid in 0..OIDS {
                for index in 0..INDEXES {
                    let k = key(id.0 as u8, oid, index);
                    assert_eq!(self.t.contains(k), self.m.pages.contains_key(&k), "{k:?}: contains");
                }
            }
        }
        let persistent: Vec<Key> =
            self.m.pages.keys().filter(|k| self.m.kinds[&k.pool] == PoolKind::Persistent).copied().collect();
        for k in persistent {
            let mut out = Box::new([0xa5; PAGE_SIZE]);
            assert_eq!(self.t.get(self.comp, k, &mut out), Ok(()), "{k:?}: final get");
            assert!(*out == *self.m.pages[&k].page, "{k:?}: final get returned other bytes");
        }
        for id in self.m.kinds.keys().copied().collect::<Vec<_>>() {
            let held = self.m.keys_where(id, None).len() as u64;
            assert_eq!(self.t.destroy_pool(id), Ok(held), "{id:?}: final destroy");
        }
        let s = self.t.stats();
        assert_eq!((s.free_errors, s.leaked_pages, s.corrupt), (0, 0, 0), "free errors, leaked pages, corrupt");
        assert_eq!(self.t.total_pages(), 0);
    }
}

fuzz_target!(|input: Input| {
    let mut config = Config {
        accept_percent: input.accept_percent,
        ephemeral_reclaim: if input.zbud_frames { EphemeralReclaim::ZbudFrames } else { EphemeralReclaim::ObjectOrder },
        ..Config::new(1 + u64::from(input.limit % 64))
    };
    if !input.zv_rules {
        config = config.without_zv_rules();
    }
    COMPS.with(|comps| {
        let comps = &mut *comps.borrow_mut();
        let comp = &mut comps[usize::from(input.deflate)];
        let m = Model { pages: BTreeMap::new(), kinds: BTreeMap::new(), seen: Vec::new(), seq: 0 };
        let mut run = Run { t: Tmem::new(config), m, comp };
        run.new_pool(PoolKind::Persistent, Some(Backend::Zsmalloc));
        run.new_pool(PoolKind::Ephemeral, Some(Backend::Zbud));
        for &op in input.ops.iter().take(MAX_OPS) {
            run.step(op);
        }
        run.finish();
    });
    assert_eq!(SharedArena::get().used_frames(), 0, "frames not given back to the arena");
});
