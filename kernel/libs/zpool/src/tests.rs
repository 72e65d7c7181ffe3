//! The interface's small pieces, and the harness run on a toy pool (one object per frame) — correct, and
//! with planted bugs the harness must catch.

use frame::{FrameError, Owner, Pfn};
use pagemem::{FrameSource, HostMemory, MemError, PAGE, PageMemory};

use crate::testing::{self, Config, Rng};
use crate::{Handle, MapMode, PoolError, PoolStats, ZPool};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bug {
    None,
    /// Every 50th `WriteOnly` map writes into a scratch buffer instead of the object.
    DropsWrites,
    /// Freed slots keep their generation, so a freed handle comes back.
    NoGenerations,
    /// `free` forgets to subtract the object's size from `object_bytes`.
    MiscountsBytes,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    pfn: Option<Pfn>,
    size: usize,
    generation: u32,
    /// Allocation sequence number, for eviction order.
    seq: u64,
}

/// Each object gets a frame of its own; the handle is `generation << 32 | slot`.
#[derive(Debug)]
struct Toy {
    mem: HostMemory,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    stats: PoolStats,
    seq: u64,
    maps: u64,
    bug: Bug,
}

impl Toy {
    fn new(frames: usize, bug: Bug) -> Toy {
        Toy {
            mem: HostMemory::new(frames),
            slots: Vec::new(),
            free_slots: Vec::new(),
            stats: PoolStats::default(),
            seq: 0,
            maps: 0,
            bug,
        }
    }

    fn lookup(&self, h: Handle) -> Result<(usize, Pfn), PoolError> {
        let i = (h.raw() & 0xffff_ffff) as usize;
        match self.slots.get(i) {
            Some(&Slot { pfn: Some(pfn), generation, .. }) if u64::from(generation) == h.raw() >> 32 => Ok((i, pfn)),
            _ => Err(PoolError::StaleHandle(h)),
        }
    }

    fn release(&mut self, i: usize) {
        let s = &mut self.slots[i];
        self.stats.objects -= 1;
        self.stats.frees += 1;
        self.stats.pages -= 1;
        if self.bug != Bug::MiscountsBytes {
            self.stats.object_bytes -= s.size as u64;
        }
        s.pfn = None;
        if self.bug != Bug::NoGenerations {
            s.generation = s.generation.wrapping_add(1).max(1);
        }
        self.free_slots.push(i as u32);
    }
}

impl ZPool for Toy {
    fn name(&self) -> &'static str {
        "toy"
    }

    fn max_size(&self) -> usize {
        PAGE
    }

    fn malloc(&mut self, size: usize) -> Result<Handle, PoolError> {
        if size == 0 {
            return Err(PoolError::ZeroSize);
        }
        if size > PAGE {
            return Err(PoolError::TooLarge { size, max: PAGE });
        }
        let pfn = self.mem.alloc_frame(Owner::POOL).map_err(|e| {
            self.stats.failures += 1;
            PoolError::from(e)
        })?;
        let i = self.free_slots.pop().map_or_else(
            || {
                self.slots.push(Slot { generation: 1, ..Slot::default() });
                self.slots.len() - 1
            },
            |i| i as usize,
        );
        self.seq += 1;
        let s = &mut self.slots[i];
        s.pfn = Some(pfn);
        s.size = size;
        s.seq = self.seq;
        self.stats.objects += 1;
        self.stats.object_bytes += size as u64;
        self.stats.pages += 1;
        self.stats.allocs += 1;
        Ok(Handle::from_raw(u64::from(s.generation) << 32 | i as u64))
    }

    fn free(&mut self, handle: Handle) -> Result<(), PoolError> {
        let (i, pfn) = self.lookup(handle)?;
        self.mem.free_frame(pfn)?;
        self.release(i);
        Ok(())
    }

    fn map<R>(&mut self, handle: Handle, mode: MapMode, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, PoolError> {
        let (i, pfn) = self.lookup(handle)?;
        let size = self.slots[i].size;
        self.maps += 1;
        if self.bug == Bug::DropsWrites && mode == MapMode::WriteOnly && self.maps % 50 == 0 {
            return Ok(f(&mut vec![0; size]));
        }
        Ok(self.mem.with_page(pfn, |p| f(&mut p[..size]))?)
    }

    fn size_of(&self, handle: Handle) -> Result<usize, PoolError> {
        let (i, _) = self.lookup(handle)?;
        Ok(self.slots[i].size)
    }

    fn total_pages(&self) -> u64 {
        self.stats.pages
    }

    fn metadata_growth(&self) -> usize {
        if self.free_slots.is_empty() { crate::vec_growth(&self.slots, 1) } else { 0 }
    }

    fn stats(&self) -> PoolStats {
        self.stats
    }

    fn compact(&mut self) -> Result<u64, PoolError> {
        Ok(0)
    }

    fn evict(&mut self, writeback: &mut dyn FnMut(Handle, &[u8]) -> bool) -> Result<u64, PoolError> {
        let Some((i, s)) = self.slots.iter().enumerate().filter(|(_, s)| s.pfn.is_some()).min_by_key(|(_, s)| s.seq)
        else {
            return Err(PoolError::Empty);
        };
        let (pfn, size) = (s.pfn.expect("filtered"), s.size);
        let h = Handle::from_raw(u64::from(s.generation) << 32 | i as u64);
        let bytes = self.mem.with_page(pfn, |p| p[..size].to_vec())?;
        if !writeback(h, &bytes) {
            return Err(PoolError::EvictRefused);
        }
        self.mem.free_frame(pfn)?;
        self.release(i);
        self.stats.pages_evicted += 1;
        Ok(1)
    }
}

#[test]
fn handles_round_trip_through_raw() {
    let h = Handle::from_raw(0xdead_beef_0000_0001);
    assert_eq!(h.raw(), 0xdead_beef_0000_0001);
    assert_eq!(Handle::from_raw(h.raw()), h);
    assert!(Handle::from_raw(1) < Handle::from_raw(2));
}

#[test]
fn frame_errors_become_pool_errors() {
    assert_eq!(PoolError::from(FrameError::OutOfMemory { order: 0 }), PoolError::OutOfMemory);
    let e = FrameError::DoubleFree(Pfn(0x100));
    assert_eq!(PoolError::from(e), PoolError::Frame(e));
    assert_eq!(PoolError::from(MemError::NoSlot), PoolError::Memory(MemError::NoSlot));
}

#[test]
fn errors_say_what_went_wrong() {
    let cases = [
        (PoolError::ZeroSize, "0 bytes"),
        (PoolError::TooLarge { size: 5000, max: 4032 }, "5000 bytes is above the maximum 4032"),
        (PoolError::OutOfMemory, "out of memory"),
        (PoolError::StaleHandle(Handle::from_raw(0x42)), "handle 0x42 is not live"),
        (PoolError::EvictRefused, "eviction refused"),
        (PoolError::Empty, "no page"),
        (PoolError::Memory(MemError::NoSlot), "NoSlot"),
        (PoolError::Frame(FrameError::DoubleFree(Pfn(0x100))), "0x100 is already free"),
    ];
    for (e, want) in cases {
        let s = e.to_string();
        assert!(s.contains(want), "{s:?} should contain {want:?}");
    }
}

#[test]
fn rng_is_deterministic_and_stays_in_range() {
    let (mut a, mut b) = (Rng::new(7), Rng::new(7));
    assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
    assert_ne!(Rng::new(0).next_u64(), Rng::new(1).next_u64());
    let mut r = Rng::new(0);
    let mut seen = [false; 10];
    for _ in 0..10_000 {
        let x = r.between(5, 14);
        assert!((5..=14).contains(&x));
        seen[x - 5] = true;
        assert!(r.below(3) < 3);
    }
    assert!(seen.iter().all(|&s| s), "every value of a small range comes up");
    assert_eq!(r.below(0), 0);
    assert_eq!(r.between(9, 3), 9);
}

#[test]
fn object_sizes_follow_the_mix() {
    let mut r = Rng::new(3);
    let sizes: Vec<usize> = (0..30_000).map(|_| testing::object_size(&mut r, 4032)).collect();
    assert!(sizes.iter().all(|&s| (1..=4032).contains(&s)));
    let small = sizes.iter().filter(|&&s| s <= 128).count();
    let three_quarters = sizes.iter().filter(|&&s| (2816..=3328).contains(&s)).count();
    assert!(small > 9_000 && three_quarters > 9_000, "small {small}, ~3 KiB {three_quarters}");
    assert!(sizes.contains(&1) && sizes.contains(&4032));
    // A pool with small objects only still gets valid sizes.
    assert!((0..1000).all(|_| (1..=100).contains(&testing::object_size(&mut r, 100))));
}

#[test]
fn patterns_differ_by_handle_and_version() {
    let (mut a, mut b, mut c) = ([0u8; 37], [0u8; 37], [0u8; 37]);
    testing::fill_pattern(Handle::from_raw(1), 1, &mut a);
    testing::fill_pattern(Handle::from_raw(2), 1, &mut b);
    testing::fill_pattern(Handle::from_raw(1), 2, &mut c);
    assert!(a != b && a != c && b != c);
}

#[test]
fn harness_passes_a_correct_pool() {
    let mut pool = Toy::new(512, Bug::None);
    let cfg = Config { evict: true, ..Config::new(1, 30_000) };
    let r = testing::run_with(&mut pool, &cfg, |_| {});
    println!("{r:#?}");
    assert_eq!(r.final_pages, 0);
    assert_eq!(r.ops, 30_000);
    for (what, n) in [
        ("mallocs", r.mallocs),
        ("frees", r.frees),
        ("writes", r.writes),
        ("reads", r.reads),
        ("read_writes", r.read_writes),
        ("size_checks", r.size_checks),
        ("stale_probes", r.stale_probes),
        ("bad_sizes", r.bad_sizes),
        ("compacts", r.compacts),
        ("evictions", r.evictions),
        ("evict_refused", r.evict_refused),
    ] {
        assert!(n > 0, "the run exercised {what}");
    }
    assert_eq!(r.malloc_oom, 0);
    assert!(r.peak_live > 100, "the population swings: peak {}", r.peak_live);
    assert_eq!(pool.mem.frames().stats().used, 0, "every frame went back");
    assert_eq!(testing::run(&mut pool, 2, 5_000), 0, "the plain entry point, eviction off");
}

#[test]
fn harness_accepts_out_of_memory() {
    let mut pool = Toy::new(16, Bug::None);
    let cfg = Config { evict: true, ..Config::new(5, 5_000) };
    let r = testing::run_with(&mut pool, &cfg, |_| {});
    assert!(r.malloc_oom > 0);
    assert_eq!(pool.stats().failures, r.malloc_oom);
    assert_eq!(r.final_pages, 0);
}

#[test]
#[should_panic(expected = "contents of")]
fn harness_catches_lost_writes() {
    testing::run(&mut Toy::new(512, Bug::DropsWrites), 1, 30_000);
}

#[test]
#[should_panic(expected = "reissued the recently freed handle")]
fn harness_catches_reissued_handles() {
    testing::run(&mut Toy::new(512, Bug::NoGenerations), 1, 30_000);
}

#[test]
#[should_panic(expected = "stats.object_bytes")]
fn harness_catches_miscounted_bytes() {
    testing::run(&mut Toy::new(512, Bug::MiscountsBytes), 1, 30_000);
}

/// `vec_growth` names the block `Vec` really allocates when it grows: nothing while the pushes fit, else
/// at least the doubled capacity.
#[test]
fn vec_growth_is_the_block_a_full_vec_allocates() {
    let mut v: alloc::vec::Vec<u64> = alloc::vec::Vec::new();
    assert_eq!(crate::vec_growth(&v, 1), 4 * 8, "an empty Vec allocates 4 elements first");
    for i in 0..1000u64 {
        let (cap, growth) = (v.capacity(), crate::vec_growth(&v, 1));
        v.push(i);
        if v.capacity() == cap {
            assert_eq!(growth, 0, "push {i} fitted");
        } else {
            assert_eq!(growth, v.capacity() * 8, "push {i} grew {cap} -> {}", v.capacity());
        }
    }
    let mut w: alloc::vec::Vec<u64> = alloc::vec::Vec::with_capacity(10);
    w.extend(0..8);
    assert_eq!((crate::vec_growth(&w, 2), crate::vec_growth(&w, 3)), (0, 20 * 8));
}
