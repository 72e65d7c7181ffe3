//! Fuzz target `pool_forged_handles`: zsmalloc and zbud fed forged, stale and live handles.
//!
//! # Why
//!
//! A handle is a `u64` the caller keeps (tmem stores it in its pampd, zram in its table), so any value
//! can come back: a freed one, one of another pool, a flipped bit. The pools promise (zpool's module
//! header) that `map`, `free` and `size_of` refuse every handle that is not live with exactly
//! `StaleHandle(h)`, change nothing when they do, and never touch another object's bytes. The pools'
//! own tests probe a few forged handles per run; here libFuzzer chooses them, starting from live ones.
//!
//! # Input
//!
//! An [`Input`] (`arbitrary`): a zsmalloc chain length and span method, then up to [`MAX_OPS`]
//! operations, each run on both pools. A [`Target`] names a handle relative to the pool's own:
//!
//! | target | handle |
//! |---|---|
//! | `Live(i)` | live object `i % live` |
//! | `Flipped { i, mask }` | live object `i % live` with the bits of `mask` flipped |
//! | `Freed(i)` | a handle freed earlier in this input |
//! | `Raw(x)` | `x` as it is |
//!
//! # What is checked
//!
//! After every operation, against a model (handle → the bytes the object must hold):
//!
//! - a handle the model holds: `map` gives exactly its bytes at its size (and keeps a `ReadWrite`
//!   change), `size_of` its size, `free` succeeds and the handle leaves the model;
//! - any other handle: `Err(StaleHandle(h))` with that `h`, the closure not called, the pool's
//!   counters unchanged;
//! - `malloc(0)` is `ZeroSize`, above `max_size` `TooLarge`, else a handle not live before, or
//!   `OutOfMemory`; the counters' live object count equals the model's.
//!
//! At the end: every live object's bytes, the pool's own `verify`, then every object freed, zero
//! pages held, and the shared arena has all its frames back.
//!
//! # Worked example
//!
//! Ops `Malloc(100)`, `Free(Live(0))`, `Map(Freed(0))`: zsmalloc issues a handle, frees it, then
//! refuses it on `map` with `StaleHandle` of that same value; zbud does the same with its own handle.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use zbud::Zbud;
use zkernel_fuzz::SharedArena;
use zpool::{Handle, MapMode, PoolError, ZPool};
use zsmalloc::{Config, SpanMap, Zsmalloc};

/// Operations per input (more are ignored).
const MAX_OPS: usize = 256;
/// Live objects per pool at most (a `Malloc` beyond is skipped): keeps both pools far inside the arena.
const MAX_LIVE: usize = 48;

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Target {
    Live(u8),
    Flipped { i: u8, mask: u64 },
    Freed(u8),
    Raw(u64),
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Op {
    /// `size % (max_size + 2)`: 0 and `max_size + 1` are the refused sizes.
    Malloc(u16),
    Free(Target),
    /// Read the object; with `write`, `ReadWrite` and flip its first byte.
    Map {
        target: Target,
        write: bool,
    },
    SizeOf(Target),
    Compact,
}

#[derive(Debug, Arbitrary)]
struct Input {
    chain: u8,
    copy_spans: bool,
    ops: Vec<Op>,
}

/// A pool under test and what it must hold.
struct Checked<P> {
    pool: P,
    live: BTreeMap<Handle, Vec<u8>>,
    freed: Vec<Handle>,
    /// Objects ever allocated: a different fill for each.
    made: u64,
}

impl<P: ZPool> Checked<P> {
    fn resolve(&self, t: Target) -> Handle {
        let nth = |i: u8, of: usize| usize::from(i) % of.max(1);
        let live = |i| self.live.keys().nth(nth(i, self.live.len())).copied();
        match t {
            Target::Live(i) => live(i).unwrap_or(Handle::from_raw(0)),
            Target::Flipped { i, mask } => Handle::from_raw(live(i).map_or(0, Handle::raw) ^ mask),
            Target::Freed(i) => self.freed.get(nth(i, self.freed.len())).copied().unwrap_or(Handle::from_raw(0)),
            Target::Raw(x) => Handle::from_raw(x),
        }
    }

    /// A refusal must be `StaleHandle(h)` and leave the counters alone.
    fn stale<T: std::fmt::Debug>(&self, h: Handle, r: Result<T, PoolError>, before: zpool::PoolStats, what: &str) {
        assert_eq!(r.map(|_| ()), Err(PoolError::StaleHandle(h)), "{}: {what} of a handle not live", self.pool.name());
        assert_eq!(self.pool.stats(), before, "{}: a refused {what} changed the counters", self.pool.name());
    }

    fn step(&mut self, op: Op) {
        let name = self.pool.name();
        let before = self.pool.stats();
        match op {
            Op::Malloc(size) => {
                let max = self.pool.max_size();
                let size = usize::from(size) % (max + 2);
                if size != 0 && size <= max && self.live.len() >= MAX_LIVE {
                    return;
                }
                match self.pool.malloc(size) {
                    Ok(h) => {
                        assert!(size != 0 && size <= max, "{name}: malloc({size}) accepted");
                        assert!(!self.live.contains_key(&h), "{name}: malloc reissued the live handle {h:?}");
                        self.made += 1;
                        let fill: Vec<u8> = (0..size).map(|i| (self.made as usize * 31 + i * 7) as u8).collect();
                        let r = self.pool.map(h, MapMode::WriteOnly, |obj| {
                            assert_eq!(obj.len(), size, "{name}: a fresh object's slice");
                            obj.copy_from_slice(&fill);
                        });
                        assert_eq!(r, Ok(()), "{name}: map of a fresh handle");
                        assert_eq!(self.pool.size_of(h), Ok(size));
                        self.live.insert(h, fill);
                    }
                    Err(PoolError::ZeroSize) => assert_eq!(size, 0),
                    Err(PoolError::TooLarge { size: s, max: m }) => assert_eq!((s, m), (size, max)),
                    Err(PoolError::OutOfMemory) => {}
                    Err(e) => panic!("{name}: malloc({size}): {e:?}"),
                }
            }
            Op::Free(t) => {
                let h = self.resolve(t);
                let r = self.pool.free(h);
                if self.live.remove(&h).is_some() {
                    assert_eq!(r, Ok(()), "{name}: free of a live handle");
                    self.freed.push(h);
                } else {
                    self.stale(h, r, before, "free");
                }
            }
            Op::Map { target, write } => {
                let h = self.resolve(target);
                let mode = if write { MapMode::ReadWrite } else { MapMode::ReadOnly };
                let mut seen = None;
                let r = self.pool.map(h, mode, |obj| {
                    seen = Some(obj.to_vec());
                    if write {
                        obj[0] = !obj[0];
                    }
                });
                match self.live.get_mut(&h) {
                    Some(want) => {
                        assert_eq!(r, Ok(()), "{name}: map of a live handle");
                        assert!(seen.as_deref() == Some(&want[..]), "{name}: {h:?} holds other bytes");
                        if write {
                            want[0] = !want[0];
                        }
                    }
                    None => {
                        assert!(seen.is_none(), "{name}: map ran the closure for a handle not live");
                        self.stale(h, r, before, "map");
                    }
                }
            }
            Op::SizeOf(t) => {
                let h = self.resolve(t);
                let r = self.pool.size_of(h);
                match self.live.get(&h) {
                    Some(want) => assert_eq!(r, Ok(want.len()), "{name}: size_of a live handle"),
                    None => self.stale(h, r, before, "size_of"),
                }
            }
            Op::Compact => {
                let pages = self.pool.total_pages();
                let freed = self.pool.compact().unwrap_or_else(|e| panic!("{name}: compact: {e:?}"));
                assert_eq!(self.pool.total_pages(), pages - freed, "{name}: compact's count");
            }
        }
        assert_eq!(self.pool.stats().objects, self.live.len() as u64, "{name}: live objects");
    }

    /// Every live object's bytes, then free them all; the pool must then hold no page.
    fn drain(&mut self) {
        let name = self.pool.name();
        for (&h, want) in &self.live {
            let got = self.pool.map(h, MapMode::ReadOnly, |obj| obj.to_vec());
            assert!(got.as_deref() == Ok(&want[..]), "{name}: {h:?} holds other bytes at the end");
        }
        for h in std::mem::take(&mut self.live).into_keys() {
            assert_eq!(self.pool.free(h), Ok(()), "{name}: free at the end");
        }
        assert_eq!(self.pool.total_pages(), 0, "{name}: pages held with no object");
    }
}

fuzz_target!(|input: Input| {
    let cfg = Config {
        max_pages_per_zspage: 1 + usize::from(input.chain) % zsmalloc::ZS_MAX_PAGES_PER_ZSPAGE,
        span: if input.copy_spans { SpanMap::Copy } else { SpanMap::Pair },
    };
    let zs = Zsmalloc::with_config(SharedArena::get(), cfg).expect("chains 1..=16 are valid");
    let mut zs = Checked { pool: zs, live: BTreeMap::new(), freed: Vec::new(), made: 0 };
    let mut zb = Checked { pool: Zbud::new(SharedArena::get()), live: BTreeMap::new(), freed: Vec::new(), made: 0 };
    for &op in input.ops.iter().take(MAX_OPS) {
        zs.step(op);
        zb.step(op);
    }
    assert_eq!(zs.pool.verify(), Ok(()), "zsmalloc's own invariants");
    assert_eq!(zb.pool.verify(), Ok(()), "zbud's own invariants");
    zs.drain();
    zb.drain();
    drop((zs, zb));
    assert_eq!(SharedArena::get().used_frames(), 0, "frames not given back to the arena");
});
