//! Per-page costs of compressed memory on the host, on the real perl sample: what a page costs to
//! compress, to decompress, to place in a pool, and to go through the whole store and back.
//!
//! Every benchmark is in the group `pages`, one page per iteration, cycling through the sample's 2048
//! pages (`data/perl-heap.pages.gz`) (same-filled pages skipped: they never reach a compressor or a pool). `copy_4k`, a plain page
//! copy, is the baseline `cargo xtask bench` divides by.
//!
//! | id | one iteration |
//! |---|---|
//! | `copy_4k` | copy the page |
//! | `lz4_compress`, `deflate1_compress` | compress the page |
//! | `lz4_decompress`, `deflate1_decompress` | decompress its stored bytes (made once, beforehand) |
//! | `zsmalloc_malloc_copy_free`, `zbud_malloc_copy_free` | malloc an object of the page's LZ4-stored size, copy the bytes in, free it |
//! | `<pool>_<compressor>_store_load_free` | `Zstore::store`, `load`, `free` of the page |
//! | `tmem_<pool>_lz4_put_get_flush` | `Tmem::put`, `get`, `flush_page` of the page in a persistent pool: tmem's keys and LRU on top of the store |
//! | `frontswap_lz4_store_load_invalidate` | `Frontswap::store`, `load`, `invalidate_page`: one swap-out and swap-in |
//! | `cleancache_lz4_put_get` | `Cleancache::put_page`, then `get_page`, which removes it (exclusive): one eviction and re-read |
//!
//! The pool benchmarks run on a pool already holding the whole sample (stored once beforehand), so a
//! malloc finds partly used pages as it would in a working system, rather than an empty pool that
//! allocates and frees a frame on every iteration. The pool and store benchmarks cycle only through the
//! pages the store keeps (those compressing to at most the policy's threshold).

use std::hint::black_box;
use std::time::Duration;

use compress::{Algorithm, Compressor, MAX_STORED, PAGE_SIZE, same_filled};
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime};
use pagemem::HostMemory;
use tmem::cleancache::Cleancache;
use tmem::frontswap::Frontswap;
use tmem::{Backend, Config, Key, PoolId, PoolKind, Tmem};
use zbud::Zbud;
use zpool::{MapMode, ZPool};
use zsmalloc::Zsmalloc;
use zstore::{Entry, Policy, Zstore};

type Page = [u8; PAGE_SIZE];

/// Frames for a pool holding the whole sample plus the pages under test.
const FRAMES: usize = 4096;

const ALGORITHMS: [(&str, Algorithm); 2] = [("lz4", Algorithm::Lz4), ("deflate1", Algorithm::Deflate { level: 1 })];

/// The sample's pages (`data/perl-heap.pages.gz`, checked by `zkernel_bench::perl_pages`) that are not
/// same-filled. Without the sample there is nothing to measure: say why and stop.
fn pages() -> Vec<&'static Page> {
    let sample = zkernel_bench::perl_pages().unwrap_or_else(|e| {
        eprintln!("benches/pools: {e}");
        std::process::exit(1)
    });
    sample.iter().filter(|p| same_filled(p).is_none()).collect()
}

/// Each page's stored bytes under `alg` (threshold: none, so every page has them).
fn stored(pages: &[&Page], alg: Algorithm) -> Vec<Vec<u8>> {
    let mut c = Compressor::new(alg).expect("a valid algorithm");
    pages.iter().map(|p| c.compress(p, MAX_STORED).expect("every page fits MAX_STORED").to_vec()).collect()
}

/// An endless cycle over `items`, for one item per iteration.
fn cycle<'a, T>(items: &'a [T]) -> impl FnMut() -> &'a T + 'a {
    let mut i = 0;
    move || {
        let item = &items[i];
        i = if i + 1 == items.len() { 0 } else { i + 1 };
        item
    }
}

fn group(c: &mut Criterion) -> BenchmarkGroup<'_, WallTime> {
    let mut g = c.benchmark_group("pages");
    g.throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g
}

fn copy_and_compress(c: &mut Criterion) {
    let pages = pages();
    let mut g = group(c);
    let mut out: Box<Page> = Box::new([0; PAGE_SIZE]);
    let mut next = cycle(&pages);
    g.bench_function("copy_4k", |b| {
        b.iter(|| {
            out.copy_from_slice(black_box(next()).as_slice());
            black_box(&mut out);
        })
    });
    for (name, alg) in ALGORITHMS {
        let mut comp = Compressor::new(alg).expect("a valid algorithm");
        let mut next = cycle(&pages);
        g.bench_function(format!("{name}_compress"), |b| {
            b.iter(|| comp.compress(black_box(next()), MAX_STORED).map(<[u8]>::len).expect("fits"))
        });
        let stored = stored(&pages, alg);
        let mut next = cycle(&stored);
        g.bench_function(format!("{name}_decompress"), |b| {
            b.iter(|| {
                comp.decompress(black_box(next()), &mut out).expect("round trip");
                black_box(&mut out);
            })
        });
    }
    g.finish();
}

/// malloc + copy-in + free of an object of each kept page's LZ4-stored size, on a pool holding the sample.
fn malloc_copy_free<P: ZPool>(g: &mut BenchmarkGroup<'_, WallTime>, mut pool: P, objects: &[Vec<u8>]) {
    let background: Vec<_> = objects
        .iter()
        .map(|o| {
            let h = pool.malloc(o.len()).expect("room for the sample");
            pool.map(h, MapMode::WriteOnly, |s| s.copy_from_slice(o)).expect("a live handle");
            h
        })
        .collect();
    let mut next = cycle(objects);
    g.bench_function(format!("{}_malloc_copy_free", pool.name()), |b| {
        b.iter(|| {
            let o = next();
            let h = pool.malloc(o.len()).expect("room");
            pool.map(h, MapMode::WriteOnly, |s| s.copy_from_slice(black_box(o))).expect("a live handle");
            pool.free(h).expect("a live handle");
        })
    });
    for h in background {
        pool.free(h).expect("a live handle");
    }
}

fn pools(c: &mut Criterion) {
    let pages = pages();
    let threshold = Policy::DEFAULT.threshold;
    let lz4: Vec<Vec<u8>> = stored(&pages, Algorithm::Lz4).into_iter().filter(|s| s.len() <= threshold).collect();
    let mut g = group(c);
    malloc_copy_free(&mut g, Zsmalloc::new(HostMemory::new(FRAMES)), &lz4);
    malloc_copy_free(&mut g, Zbud::new(HostMemory::new(FRAMES)), &lz4);
    for (name, alg) in ALGORITHMS {
        let kept: Vec<&Page> =
            pages.iter().zip(stored(&pages, alg)).filter(|(_, s)| s.len() <= threshold).map(|(p, _)| *p).collect();
        store_load_free(&mut g, Zstore::new(Zsmalloc::new(HostMemory::new(FRAMES)), Policy::DEFAULT), name, alg, &kept);
        store_load_free(&mut g, Zstore::new(Zbud::new(HostMemory::new(FRAMES)), Policy::DEFAULT), name, alg, &kept);
    }
    g.finish();
}

/// `Zstore` store + load + free of each kept page, on a store holding the sample.
fn store_load_free<P: ZPool>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    mut z: Zstore<P>,
    alg_name: &str,
    alg: Algorithm,
    pages: &[&Page],
) {
    let mut comp = Compressor::new(alg).expect("a valid algorithm");
    let background: Vec<Entry> = pages.iter().map(|p| z.store(&mut comp, p).expect("a kept page")).collect();
    let mut out: Box<Page> = Box::new([0; PAGE_SIZE]);
    let mut next = cycle(pages);
    g.bench_function(format!("{}_{alg_name}_store_load_free", z.pool().name()), |b| {
        b.iter(|| {
            let e = z.store(&mut comp, black_box(next())).expect("a kept page");
            z.load(&mut comp, &e, &mut out).expect("round trip");
            z.free(e).expect("a live entry");
            black_box(&mut out);
        })
    });
    for e in background {
        z.free(e).expect("a live entry");
    }
}

/// A tmem holding the kept pages in a pool of `kind`, for the tmem benchmarks (keys from 1 << 20 up
/// are free for the page under test). zcache's admission rules are off: these time the put/get path, and
/// `zv_max_mean_zsize` would refuse some of the sample's larger pages.
fn tmem_with(kind: PoolKind, backend: Backend, pages: &[&Page], comp: &mut Compressor) -> (Tmem<HostMemory>, PoolId) {
    let mut t = Tmem::new(Config::new(FRAMES as u64).without_zv_rules());
    let pool = t.new_pool(kind, Some(backend), HostMemory::new(FRAMES)).expect("a pool");
    for (i, p) in pages.iter().enumerate() {
        t.put(comp, Key::new(pool, 0, i as u32), p).expect("a kept page");
    }
    (t, pool)
}

fn tmem(c: &mut Criterion) {
    let pages = pages();
    let threshold = Policy::DEFAULT.threshold;
    let kept: Vec<&Page> = pages
        .iter()
        .zip(stored(&pages, Algorithm::Lz4))
        .filter(|(_, s)| s.len() <= threshold)
        .map(|(p, _)| *p)
        .collect();
    let mut comp = Compressor::new(Algorithm::Lz4).expect("lz4");
    let mut out: Box<Page> = Box::new([0; PAGE_SIZE]);
    let mut g = group(c);
    for backend in [Backend::Zsmalloc, Backend::Zbud] {
        let (mut t, pool) = tmem_with(PoolKind::Persistent, backend, &kept, &mut comp);
        let key = Key::new(pool, 1 << 20, 0);
        let mut next = cycle(&kept);
        g.bench_function(format!("tmem_{}_lz4_put_get_flush", backend.name()), |b| {
            b.iter(|| {
                t.put(&mut comp, key, black_box(next())).expect("a kept page");
                t.get(&mut comp, key, &mut out).expect("round trip");
                t.flush_page(key).expect("a live pool");
                black_box(&mut out);
            })
        });
    }
    let mut t = Tmem::new(Config::new(FRAMES as u64).without_zv_rules());
    let mut fs = Frontswap::new();
    fs.init(&mut t, 0, 1 << 16, HostMemory::new(FRAMES)).expect("swapon");
    for (i, p) in kept.iter().enumerate() {
        fs.store(&mut t, &mut comp, 0, i as u64, p).expect("a kept page");
    }
    let mut next = cycle(&kept);
    g.bench_function("frontswap_lz4_store_load_invalidate", |b| {
        b.iter(|| {
            fs.store(&mut t, &mut comp, 0, 1 << 15, black_box(next())).expect("a kept page");
            assert!(fs.load(&mut t, &mut comp, 0, 1 << 15, &mut out).expect("a live type"));
            fs.invalidate_page(&mut t, 0, 1 << 15).expect("a live type");
            black_box(&mut out);
        })
    });
    let mut t = Tmem::new(Config::new(FRAMES as u64).without_zv_rules());
    let mut cc = Cleancache::new();
    let fsid = cc.init_fs(&mut t, HostMemory::new(FRAMES)).expect("mount");
    for (i, p) in kept.iter().enumerate() {
        cc.put_page(&mut t, &mut comp, fsid, 1, i as u32, p).expect("a kept page");
    }
    let mut next = cycle(&kept);
    g.bench_function("cleancache_lz4_put_get", |b| {
        b.iter(|| {
            cc.put_page(&mut t, &mut comp, fsid, 2, 0, black_box(next())).expect("a kept page");
            assert!(cc.get_page(&mut t, &mut comp, fsid, 2, 0, &mut out).expect("a live fs"));
            black_box(&mut out);
        })
    });
    g.finish();
}

criterion_group!(benches, copy_and_compress, pools, tmem);
criterion_main!(benches);
