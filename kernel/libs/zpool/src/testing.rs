//! A model-based test harness every pool crate runs in its own tests (`zpool = { features = ["testing"] }`
//! as a dev-dependency).
//!
//! # How it works
//!
//! [`run_with`] drives a pool with a seeded random mix of operations and mirrors every one in a model, a
//! `BTreeMap<Handle, Vec<u8>>` of what each live object must contain. After every operation it compares
//! the pool's [`PoolStats`] with the model; every [`Config::check_every`] operations, after every compact
//! and at the end it reads every object back. Any disagreement panics with the seed and operation number,
//! so a failure replays exactly. The operations, per 100 draws:
//!
//! | share | operation | what is checked |
//! |---|---|---|
//! | 40 / 10 | malloc (size mix below), then fill through [`MapMode::WriteOnly`] | fresh handle (not live, not among the last 256 freed); `size_of`; slice length; `allocs` +1; `OutOfMemory` is allowed and may only bump `failures` |
//! | 10 / 40 | free a random live object | `Ok`; the handle joins the stale list |
//! | 10 | overwrite through `WriteOnly` with a new per-handle pattern | slice length |
//! | 12 | read through [`MapMode::ReadOnly`] | exact contents |
//! | 8 | [`MapMode::ReadWrite`]: check, then flip a random byte range | exact contents before; the change kept |
//! | 5 | `size_of` a live object | the malloc'd size |
//! | 5 | a stale or forged handle to `free`, `map` and `size_of` | `StaleHandle(h)` exactly, `f` not called, stats unchanged |
//! | 3 | `malloc(0)`, `malloc(max + 1)`, `malloc(usize::MAX)` | `ZeroSize`, `TooLarge { size, max }`, stats unchanged |
//! | 1 | compact | pages drop by the returned count; every object intact |
//! | 6 | evict (if [`Config::evict`]; else a read) with a writeback that records the bytes and refuses one object in five calls | written-back bytes exact; on `Ok(n)` those objects leave the model and pages drop by `n`; on `EvictRefused` nothing changed; `Empty` only when the model is empty |
//!
//! The first pair of shares is malloc/free while the live count is below a target and free/malloc above
//! it; the target is redrawn in `0..=max_live` every 5,000 operations, so the population swings between
//! empty and full and pages are freed and refilled throughout. Sizes are a third small (1..=128), a third
//! near 75 % of a page (2816..=3328, zswap's typical compressed page), a third uniform in 1..=max, with
//! 1 and max themselves drawn one time in 32. Everything is clamped to `1..=max_size()`.
//!
//! At the end the harness frees every object (verifying it first) and returns the pool's
//! [`ZPool::total_pages`], which for every pool in this workspace must be 0.
//!
//! The harness panics (it is test code); the pools themselves never do.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::fmt;

use crate::{Handle, MapMode, PoolError, PoolStats, ZPool};

/// How many recently freed handles the harness remembers (and probes, and refuses to see reissued).
pub const STALE_MEMORY: usize = 256;

/// xorshift64*: small, fast, and good enough to drive tests. Not for anything else.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`; every seed (0 too) gives a distinct non-zero state.
    pub const fn new(seed: u64) -> Rng {
        // splitmix64 finaliser, so that neighbouring seeds start far apart.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng(if z == 0 { 0x2545_f491_4f6c_dd1d } else { z })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n`; 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi` (`lo` when `hi < lo`).
    pub fn between(&mut self, lo: usize, hi: usize) -> usize {
        if hi <= lo { lo } else { lo + self.below((hi - lo) as u64 + 1) as usize }
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Fill `buf` with the pattern of (`handle`, `version`): different handles and versions give different
/// bytes, so an object read through the wrong handle or an old write shows up.
pub fn fill_pattern(handle: Handle, version: u64, buf: &mut [u8]) {
    let mut rng = Rng::new(handle.raw() ^ version.rotate_left(32));
    for chunk in buf.chunks_mut(8) {
        let word = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

/// An object size for a pool whose largest object is `max` (see the module header for the mix).
pub fn object_size(rng: &mut Rng, max: usize) -> usize {
    let max = max.max(1);
    let size = match rng.below(32) {
        0 => 1,
        1 => max,
        n if n % 3 == 0 => rng.between(1, 128),
        n if n % 3 == 1 => rng.between(2816, 3328),
        _ => rng.between(1, max),
    };
    size.clamp(1, max)
}

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub seed: u64,
    /// Operations before the final drain.
    pub ops: u64,
    /// Most objects alive at once.
    pub max_live: usize,
    /// Exercise [`ZPool::evict`]; leave false for a pool that does not evict.
    pub evict: bool,
    /// Read back every object (and call the caller's `check`) every this many operations.
    pub check_every: u64,
}

impl Config {
    /// `ops` operations from `seed`, at most 256 live objects, no eviction, a full check every 4096 ops.
    pub const fn new(seed: u64, ops: u64) -> Config {
        Config { seed, ops, max_live: 256, evict: false, check_every: 4096 }
    }
}

/// What a run did, for the test to print or assert on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Report {
    pub ops: u64,
    pub mallocs: u64,
    pub malloc_oom: u64,
    pub frees: u64,
    pub writes: u64,
    pub reads: u64,
    pub read_writes: u64,
    pub size_checks: u64,
    pub stale_probes: u64,
    pub bad_sizes: u64,
    pub compacts: u64,
    pub pages_compacted: u64,
    pub evictions: u64,
    pub evicted_objects: u64,
    pub evict_refused: u64,
    pub evict_empty: u64,
    pub full_checks: u64,
    pub peak_live: u64,
    pub peak_pages: u64,
    /// The pool's `total_pages()` after everything was freed.
    pub final_pages: u64,
}

/// [`run_with`] with [`Config::new`]`(seed, ops)` and no extra check; returns the final `total_pages()`.
pub fn run<P: ZPool>(pool: &mut P, seed: u64, ops: u64) -> u64 {
    run_with(pool, &Config::new(seed, ops), |_| {}).final_pages
}

/// Run the model against `pool` (see the module header). `check` is called with the pool at every full
/// check — a place for the pool's own consistency checker.
pub fn run_with<P: ZPool>(pool: &mut P, cfg: &Config, check: impl FnMut(&mut P)) -> Report {
    let max = pool.max_size();
    assert!(max > 0, "{}: max_size is 0", pool.name());
    let mut h = Harness {
        pool,
        check,
        cfg: *cfg,
        max,
        rng: Rng::new(cfg.seed),
        objects: BTreeMap::new(),
        live: Vec::new(),
        bytes: 0,
        stale: VecDeque::new(),
        version: 0,
        target: 0,
        op: 0,
        report: Report::default(),
    };
    h.assert_stats();
    while h.op < cfg.ops {
        if h.op.is_multiple_of(5000) {
            h.target = h.rng.below(cfg.max_live as u64 + 1) as usize;
        }
        h.step();
        h.assert_stats();
        h.op += 1;
        if cfg.check_every > 0 && h.op.is_multiple_of(cfg.check_every) {
            h.full_check();
        }
    }
    h.report.ops = h.op;
    h.drain();
    h.report.final_pages = h.pool.total_pages();
    h.report
}

/// Where a run is, for failure messages.
struct At {
    name: &'static str,
    seed: u64,
    op: u64,
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} seed {} op {}", self.name, self.seed, self.op)
    }
}

struct Harness<'p, P, C> {
    pool: &'p mut P,
    check: C,
    cfg: Config,
    max: usize,
    rng: Rng,
    /// The model: what every live object holds.
    objects: BTreeMap<Handle, Vec<u8>>,
    /// The live handles again, for picking one at random.
    live: Vec<Handle>,
    /// Sum of the live objects' sizes.
    bytes: u64,
    /// The last [`STALE_MEMORY`] handles freed or evicted.
    stale: VecDeque<Handle>,
    version: u64,
    target: usize,
    op: u64,
    report: Report,
}

impl<P: ZPool, C: FnMut(&mut P)> Harness<'_, P, C> {
    fn at(&self) -> At {
        At { name: self.pool.name(), seed: self.cfg.seed, op: self.op }
    }

    fn step(&mut self) {
        let grow = self.live.len() < self.target;
        let (malloc, free) = if grow { (40, 10) } else { (10, 40) };
        match self.rng.below(100) {
            r if r < malloc => {
                if self.live.len() >= self.cfg.max_live {
                    self.free()
                } else {
                    self.malloc()
                }
            }
            r if r < malloc + free => self.free(),
            50..60 => self.write(),
            60..72 => self.read(),
            72..80 => self.read_write(),
            80..85 => self.size_check(),
            85..90 => self.stale_probe(),
            90..93 => self.bad_sizes(),
            93 => self.compact(),
            _ if self.cfg.evict => self.evict(),
            _ => self.read(),
        }
    }

    fn pick(&mut self) -> Option<(usize, Handle)> {
        if self.live.is_empty() {
            return None;
        }
        let i = self.rng.below(self.live.len() as u64) as usize;
        Some((i, self.live[i]))
    }

    fn assert_stats(&mut self) {
        let at = self.at();
        let s = self.pool.stats();
        assert_eq!(s.objects, self.objects.len() as u64, "{at}: stats.objects");
        assert_eq!(s.object_bytes, self.bytes, "{at}: stats.object_bytes");
        assert_eq!(s.allocs - s.frees, s.objects, "{at}: allocs - frees");
        assert_eq!(s.pages, self.pool.total_pages(), "{at}: stats.pages vs total_pages");
        self.report.peak_live = self.report.peak_live.max(s.objects);
        self.report.peak_pages = self.report.peak_pages.max(s.pages);
    }

    fn malloc(&mut self) {
        let at = self.at();
        let size = object_size(&mut self.rng, self.max);
        let before = self.pool.stats();
        match self.pool.malloc(size) {
            Ok(h) => {
                assert!(!self.objects.contains_key(&h), "{at}: malloc returned the live handle {h:?}");
                assert!(!self.stale.contains(&h), "{at}: malloc reissued the recently freed handle {h:?}");
                assert_eq!(self.pool.size_of(h), Ok(size), "{at}: size_of a new object");
                assert_eq!(self.pool.stats().allocs, before.allocs + 1, "{at}: allocs");
                let mut bytes = alloc::vec![0; size];
                self.version += 1;
                fill_pattern(h, self.version, &mut bytes);
                let r = self.pool.map(h, MapMode::WriteOnly, |s| {
                    let len = s.len();
                    if len == bytes.len() {
                        s.copy_from_slice(&bytes);
                    }
                    len
                });
                assert_eq!(r, Ok(size), "{at}: WriteOnly map of a new object");
                self.objects.insert(h, bytes);
                self.live.push(h);
                self.bytes += size as u64;
                self.report.mallocs += 1;
            }
            Err(PoolError::OutOfMemory) => {
                let after = self.pool.stats();
                assert_eq!(after, PoolStats { failures: before.failures + 1, ..before }, "{at}: OutOfMemory");
                self.report.malloc_oom += 1;
            }
            Err(e) => panic!("{at}: malloc({size}) failed: {e:?}"),
        }
    }

    fn forget(&mut self, h: Handle) {
        let at = self.at();
        let bytes = self.objects.remove(&h).unwrap_or_else(|| panic!("{at}: {h:?} is not in the model"));
        self.bytes -= bytes.len() as u64;
        if let Some(i) = self.live.iter().position(|&x| x == h) {
            self.live.swap_remove(i);
        }
        if self.stale.len() == STALE_MEMORY {
            self.stale.pop_front();
        }
        self.stale.push_back(h);
    }

    fn free(&mut self) {
        let Some((_, h)) = self.pick() else { return self.malloc() };
        let at = self.at();
        self.verify(h);
        assert_eq!(self.pool.free(h), Ok(()), "{at}: free({h:?})");
        self.forget(h);
        self.report.frees += 1;
    }

    fn write(&mut self) {
        let Some((_, h)) = self.pick() else { return self.malloc() };
        let at = self.at();
        self.version += 1;
        let bytes = self.objects.get_mut(&h).expect("picked from the live list");
        fill_pattern(h, self.version, bytes);
        let r = self.pool.map(h, MapMode::WriteOnly, |s| {
            let len = s.len();
            if len == bytes.len() {
                s.copy_from_slice(bytes);
            }
            len
        });
        assert_eq!(r, Ok(bytes.len()), "{at}: WriteOnly map of {h:?}");
        self.report.writes += 1;
    }

    /// Read `h` back through `ReadOnly` and compare with the model.
    fn verify(&mut self, h: Handle) {
        let at = self.at();
        let expected = &self.objects[&h];
        let r = self.pool.map(h, MapMode::ReadOnly, |s| s == expected.as_slice());
        assert_eq!(r, Ok(true), "{at}: contents of {h:?} ({} bytes)", expected.len());
    }

    fn read(&mut self) {
        let Some((_, h)) = self.pick() else { return self.malloc() };
        self.verify(h);
        self.report.reads += 1;
    }

    fn read_write(&mut self) {
        let Some((_, h)) = self.pick() else { return self.malloc() };
        let at = self.at();
        let bytes = self.objects.get_mut(&h).expect("picked from the live list");
        let a = self.rng.between(0, bytes.len() - 1);
        let b = self.rng.between(a + 1, bytes.len());
        let r = self.pool.map(h, MapMode::ReadWrite, |s| {
            let same = s == bytes.as_slice();
            if same {
                s[a..b].iter_mut().for_each(|x| *x ^= 0x5a);
            }
            same
        });
        assert_eq!(r, Ok(true), "{at}: ReadWrite contents of {h:?}");
        bytes[a..b].iter_mut().for_each(|x| *x ^= 0x5a);
        self.report.read_writes += 1;
    }

    fn size_check(&mut self) {
        let Some((_, h)) = self.pick() else { return self.malloc() };
        let at = self.at();
        assert_eq!(self.pool.size_of(h), Ok(self.objects[&h].len()), "{at}: size_of({h:?})");
        self.report.size_checks += 1;
    }

    /// A handle that must be refused: a recently freed one, a live one with a bit flipped, or noise.
    fn stale_candidate(&mut self) -> Handle {
        loop {
            let h = match self.rng.below(3) {
                0 if !self.stale.is_empty() => self.stale[self.rng.below(self.stale.len() as u64) as usize],
                1 if !self.live.is_empty() => {
                    let live = self.live[self.rng.below(self.live.len() as u64) as usize];
                    Handle::from_raw(live.raw() ^ (1 << self.rng.below(64)))
                }
                _ => Handle::from_raw(self.rng.next_u64()),
            };
            if !self.objects.contains_key(&h) {
                return h;
            }
        }
    }

    fn stale_probe(&mut self) {
        let at = self.at();
        let h = self.stale_candidate();
        let (stats, pages) = (self.pool.stats(), self.pool.total_pages());
        assert_eq!(self.pool.free(h), Err(PoolError::StaleHandle(h)), "{at}: free of stale {h:?}");
        for mode in [MapMode::ReadOnly, MapMode::WriteOnly, MapMode::ReadWrite] {
            let r = self.pool.map(h, mode, |_| panic!("{at}: map of stale {h:?} called the closure"));
            assert_eq!(r, Err(PoolError::StaleHandle(h)), "{at}: {mode:?} map of stale {h:?}");
        }
        assert_eq!(self.pool.size_of(h), Err(PoolError::StaleHandle(h)), "{at}: size_of stale {h:?}");
        assert_eq!(
            (self.pool.stats(), self.pool.total_pages()),
            (stats, pages),
            "{at}: a stale probe changed the pool"
        );
        self.report.stale_probes += 1;
    }

    fn bad_sizes(&mut self) {
        let at = self.at();
        let (stats, pages) = (self.pool.stats(), self.pool.total_pages());
        assert_eq!(self.pool.malloc(0), Err(PoolError::ZeroSize), "{at}: malloc(0)");
        for size in [self.max + 1, usize::MAX] {
            let want = Err(PoolError::TooLarge { size, max: self.max });
            assert_eq!(self.pool.malloc(size), want, "{at}: malloc({size})");
        }
        assert_eq!(
            (self.pool.stats(), self.pool.total_pages()),
            (stats, pages),
            "{at}: a refused malloc changed the pool"
        );
        self.report.bad_sizes += 1;
    }

    fn compact(&mut self) {
        let at = self.at();
        let before = self.pool.total_pages();
        let freed = self.pool.compact().unwrap_or_else(|e| panic!("{at}: compact failed: {e:?}"));
        assert_eq!(self.pool.total_pages(), before - freed, "{at}: compact returned {freed}");
        self.report.compacts += 1;
        self.report.pages_compacted += freed;
        self.full_check();
    }

    fn evict(&mut self) {
        let at = self.at();
        let (stats, pages) = (self.pool.stats(), self.pool.total_pages());
        // One call in five refuses one of the page's objects (the first or the second).
        let refuse_at = if self.rng.percent(20) { Some(self.rng.below(2)) } else { None };
        let mut written: Vec<(Handle, Vec<u8>, bool)> = Vec::new();
        let mut wb = |h: Handle, bytes: &[u8]| {
            let ok = refuse_at != Some(written.len() as u64);
            written.push((h, bytes.to_vec(), ok));
            ok
        };
        let r = self.pool.evict(&mut wb);
        let refused = written.iter().any(|w| !w.2);
        for (i, (h, bytes, _)) in written.iter().enumerate() {
            let expected = self.objects.get(h).unwrap_or_else(|| panic!("{at}: evict wrote back non-live {h:?}"));
            assert!(bytes == expected, "{at}: evict wrote back wrong bytes for {h:?}");
            assert!(!written[..i].iter().any(|w| w.0 == *h), "{at}: evict wrote {h:?} back twice");
        }
        if let Some(i) = written.iter().position(|w| !w.2) {
            assert_eq!(i + 1, written.len(), "{at}: evict kept calling writeback after a refusal");
        }
        match r {
            Ok(n) => {
                assert!(!refused, "{at}: evict succeeded although writeback refused");
                assert!(n >= 1 && !written.is_empty(), "{at}: evict freed {n} pages, wrote back {}", written.len());
                assert_eq!(self.pool.total_pages(), pages - n, "{at}: pages after evicting {n}");
                for (h, _, _) in &written {
                    self.forget(*h);
                }
                let s = self.pool.stats();
                assert_eq!(s.pages_evicted, stats.pages_evicted + n, "{at}: pages_evicted");
                self.report.evictions += 1;
                self.report.evicted_objects += written.len() as u64;
            }
            Err(PoolError::EvictRefused) => {
                assert!(refused, "{at}: EvictRefused although writeback accepted everything");
                assert_eq!(
                    (self.pool.stats(), self.pool.total_pages()),
                    (stats, pages),
                    "{at}: a refused evict changed the pool"
                );
                self.report.evict_refused += 1;
            }
            Err(PoolError::Empty) => {
                assert!(self.objects.is_empty() && written.is_empty(), "{at}: Empty with live objects");
                self.report.evict_empty += 1;
            }
            Err(e) => panic!("{at}: evict failed: {e:?}"),
        }
    }

    fn full_check(&mut self) {
        let handles: Vec<Handle> = self.objects.keys().copied().collect();
        for h in handles {
            self.verify(h);
        }
        (self.check)(self.pool);
        self.report.full_checks += 1;
    }

    fn drain(&mut self) {
        self.full_check();
        while let Some((_, h)) = self.pick() {
            let at = self.at();
            self.verify(h);
            assert_eq!(self.pool.free(h), Ok(()), "{at}: drain free({h:?})");
            self.forget(h);
            self.assert_stats();
        }
        let at = self.at();
        let s = self.pool.stats();
        assert_eq!((s.objects, s.object_bytes), (0, 0), "{at}: stats after freeing everything");
        (self.check)(self.pool);
    }
}
