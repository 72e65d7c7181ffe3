//! What the `zsmalloc` and `zbud` test kernels share: the real page sample from the ramdisk, a store over
//! a pool on real frames (kmap), and the cases both pools must pass. Each kernel picks its pool by
//! passing a constructor; the cases are written once, here.
//!
//! "Every frame came back" is checked twice: the pool's frame budget ([`Limited`]) holds no frame, and
//! no frame in the whole frame table is still owned by the pool ([`pool_owned_frames`]).

#![allow(dead_code)] // each kernel that includes this module uses a subset of it

use alloc::vec::Vec;

use frame::Owner;
use pagemem::Limited;
use zkernel::init::facts;
use zkernel::mm::{KernelMemory, frames};
use zkernel::println;
use zkernel::zcache::streams::with_stream;
use zpool::{Handle, MapMode, PoolError, ZPool};
use zstore::{Algorithm, Entry, Policy, StoreError, StoreStats, Zstore};

pub type Page = [u8; 4096];
pub type Mem = Limited<KernelMemory>;

pub const LZ4: Algorithm = Algorithm::Lz4;
pub const DEFLATE_1: Algorithm = Algorithm::Deflate { level: 1 };
pub const DEFLATE_6: Algorithm = Algorithm::Deflate { level: 6 };

/// A pool on [`Mem`], so the cases can read its frame budget.
pub trait TestPool: ZPool {
    fn mem(&self) -> &Mem;
}

impl TestPool for zbud::Zbud<Mem> {
    fn mem(&self) -> &Mem {
        self.memory()
    }
}

impl TestPool for zsmalloc::Zsmalloc<Mem> {
    fn mem(&self) -> &Mem {
        self.memory()
    }
}

/// The perl sample, handed over by xtask as the ramdisk (tests/Cargo.toml, `ramdisks`).
pub fn perl_pages() -> &'static [Page] {
    let r = facts().ramdisk.expect("xtask attaches the perl sample as this kernel's ramdisk");
    assert_eq!(r.verified, Some(true), "the ramdisk's checksum matches xtask's");
    let pages = r.bytes().as_chunks::<4096>().0;
    assert_eq!(pages.len(), 2048, "the sample is 2048 pages");
    pages
}

/// Real frames through kmap, at most `limit` of them held at once.
pub fn memory(limit: u64) -> Mem {
    Limited::new(KernelMemory::new(frame::Owner::POOL), limit)
}

/// Frames in the whole frame table whose owner is a pool.
pub fn pool_owned_frames() -> u64 {
    frames::owned_by(Owner::POOL)
}

/// Store `page` through this CPU's stream for `alg`.
pub fn store<P: ZPool>(z: &mut Zstore<P>, alg: Algorithm, page: &Page) -> Result<Entry, StoreError> {
    with_stream(alg, |c| z.store(c, page)).expect("a valid algorithm")
}

/// Load `entry` into `out` through this CPU's stream for `alg`.
pub fn load<P: ZPool>(z: &mut Zstore<P>, alg: Algorithm, entry: &Entry, out: &mut Page) -> Result<(), StoreError> {
    with_stream(alg, |c| z.load(c, entry, out)).expect("a valid algorithm")
}

/// Store every perl page with `alg`, read every one back and compare byte for byte, free them all, and
/// check that every frame went back. Returns the store's counters at full occupancy.
pub fn round_trip_sample<P: TestPool>(make: impl FnOnce(Mem) -> P, alg: Algorithm) -> StoreStats {
    assert_eq!(pool_owned_frames(), 0, "no pool frames before the run");
    let pages = perl_pages();
    let mut z = Zstore::new(make(memory(u64::MAX)), Policy::DEFAULT);
    let mut entries = Vec::with_capacity(pages.len());
    for p in pages {
        match store(&mut z, alg, p) {
            Ok(e) => entries.push(Some(e)),
            Err(StoreError::Incompressible { .. }) => entries.push(None),
            Err(e) => panic!("store: {e}"),
        }
    }
    let full = z.stats();
    let mut out = [0u8; 4096];
    for (i, (p, e)) in pages.iter().zip(&entries).enumerate() {
        if let Some(e) = e {
            out.fill(0xa5);
            load(&mut z, alg, e, &mut out).unwrap_or_else(|err| panic!("page {i}: {err}"));
            assert!(out == *p, "page {i} differs after the round trip");
        }
    }
    let pool_pages = z.pool().total_pages();
    assert_eq!(pool_owned_frames(), pool_pages, "the frame table agrees with the pool's page count");
    for e in entries.into_iter().flatten() {
        z.free(e).unwrap();
    }
    let s = z.stats();
    assert_eq!((s.stored_pages, s.compr_data_size, s.mem_used_total), (0, 0, 0), "{s:?}");
    assert_eq!(z.pool().mem().held(), 0, "the pool gave back every frame it took");
    assert_eq!(pool_owned_frames(), 0, "no frame is still owned by a pool");
    println!(
        "{} {:?}: {} stored ({} same-filled, {} refused as poor), {} B compressed in {} pool pages: \
         {:.3} pool pages per stored page, ideal {:.3}",
        z.pool().name(),
        alg,
        full.stored_pages,
        full.same_pages,
        full.reject_compress_poor,
        full.compr_data_size,
        full.mem_used_total / 4096,
        full.mem_used_total as f64 / full.orig_data_size as f64,
        full.compr_data_size as f64 / full.orig_data_size as f64,
    );
    assert!(full.stored_pages + full.reject_compress_poor == pages.len() as u64);
    full
}

/// Bad input on real frames: corrupt stored bytes, stale and forged handles, double frees, sizes out of
/// range. Each is a typed error, and every other page still reads back exactly.
pub fn bad_input_is_refused<P: TestPool>(make: impl FnOnce(Mem) -> P) {
    let pages = &perl_pages()[..256];
    let mut z = Zstore::new(make(memory(u64::MAX)), Policy::DEFAULT);
    let entries: Vec<Option<Entry>> = pages.iter().map(|p| store(&mut z, LZ4, p).ok()).collect();
    let compressed: Vec<usize> =
        (0..entries.len()).filter(|&i| matches!(entries[i], Some(Entry::Compressed { .. }))).collect();
    assert!(compressed.len() > 100);

    // 1. Flip one bit in every fourth compressed page: each load says Corrupt, never a wrong page.
    let mut out = [0u8; 4096];
    for (n, &i) in compressed.iter().enumerate().filter(|(n, _)| n % 4 == 0) {
        let e = entries[i].as_ref().unwrap();
        let at = (n * 7919) % e.stored_len();
        z.pool_mut().map(e.handle().unwrap(), MapMode::ReadWrite, |b| b[at] ^= 1 << (n % 8)).unwrap();
        let r = load(&mut z, DEFLATE_1, e, &mut out);
        assert!(matches!(r, Err(StoreError::Corrupt | StoreError::UnknownAlgorithm(_))), "page {i}: {r:?}");
    }
    assert_eq!(z.stats().corrupt_loads, compressed.len().div_ceil(4) as u64);

    // 2. Stale, double-freed and forged handles, and sizes out of range, change nothing.
    let pool = z.pool_mut();
    let victim = pool.malloc(100).unwrap();
    pool.free(victim).unwrap();
    let before = pool.stats();
    assert_eq!(pool.free(victim), Err(PoolError::StaleHandle(victim)), "double free");
    assert_eq!(pool.map(victim, MapMode::ReadOnly, |_| ()), Err(PoolError::StaleHandle(victim)));
    let forged = Handle::from_raw(0x5a5a_5a5a_5a5a_5a5a);
    assert_eq!(pool.free(forged), Err(PoolError::StaleHandle(forged)));
    assert_eq!(pool.size_of(forged), Err(PoolError::StaleHandle(forged)));
    assert_eq!(pool.malloc(0), Err(PoolError::ZeroSize));
    let max = pool.max_size();
    assert_eq!(pool.malloc(max + 1), Err(PoolError::TooLarge { size: max + 1, max }));
    assert_eq!(pool.stats(), before, "refused operations changed nothing");

    // 3. Every page not deliberately corrupted still reads back exactly; then everything is freed.
    for (n, &i) in compressed.iter().enumerate().filter(|(n, _)| n % 4 != 0) {
        load(&mut z, LZ4, entries[i].as_ref().unwrap(), &mut out).unwrap();
        assert!(out == pages[i], "page {i}, not corrupted, reads back ({n})");
    }
    for e in entries.into_iter().flatten() {
        z.free(e).unwrap();
    }
    assert_eq!((z.pool().total_pages(), z.pool().mem().held(), pool_owned_frames()), (0, 0, 0));
}

/// A pool whose frame budget runs out refuses the store with `OutOfMemory` and keeps what it has.
pub fn out_of_frames_is_refused<P: TestPool>(make: impl FnOnce(Mem) -> P) {
    const BUDGET: u64 = 8;
    let pages = perl_pages();
    let mut z = Zstore::new(make(memory(BUDGET)), Policy::DEFAULT);
    let mut kept = Vec::new();
    let mut refused = 0;
    for (i, p) in pages.iter().enumerate().take(300) {
        match store(&mut z, LZ4, p) {
            Ok(e) => kept.push((i, e)),
            Err(StoreError::Pool(PoolError::OutOfMemory)) => refused += 1,
            Err(StoreError::Incompressible { .. }) => {}
            Err(e) => panic!("page {i}: {e}"),
        }
    }
    let s = z.stats();
    assert!(refused > 0, "a budget of {BUDGET} frames runs out");
    assert_eq!(s.reject_alloc_fail, refused);
    assert_eq!(z.pool().mem().held(), BUDGET);
    assert_eq!(pool_owned_frames(), BUDGET);
    let mut out = [0u8; 4096];
    for (i, e) in &kept {
        load(&mut z, LZ4, e, &mut out).unwrap();
        assert!(out == pages[*i], "page {i} kept before the pool filled up reads back");
    }
    println!("{} in {BUDGET} frames: kept {}, refused {refused}", z.pool().name(), kept.len());
    for (_, e) in kept {
        z.free(e).unwrap();
    }
    assert_eq!((z.pool().mem().held(), pool_owned_frames()), (0, 0));
}
