//! Benchmark kernel (run by `cargo xtask bench`, not by `cargo xtask test`): the cost of storing and
//! loading real pages through the pools on real frames under QEMU, and what the temporary mappings add.
//! xtask builds it with kmap and with the `direct-map` feature and prints both side by side.
//!
//! Every figure is per page (or per object) of the perl sample (the ramdisk), as one
//! `@@bench {"name":…,"ns":…}` line. The pair to read together is `zsmalloc_map_all_pair` and
//! `zsmalloc_map_all_copy`: the same objects mapped read-only, those that span two frames once through
//! two adjacent kmap slots (kmap_pair) and once by copying both halves into the pool's buffer. The
//! closing asserts check that the loops did what they claim, so a loop the compiler removed fails.
#![no_std]
#![no_main]

extern crate alloc;

#[path = "common/pools.rs"]
mod pools;

use alloc::vec::Vec;
use core::hint::black_box;

use pools::{DEFLATE_1, LZ4, TestPool, load, perl_pages, pool_owned_frames, store};
use zbud::Zbud;
use zkernel::arch::tsc::{centi_ns, hz, rdtsc};
use zkernel::harness::testing::Case;
use zkernel::mm::kmap;
use zkernel::println;
use zkernel::zcache::streams::with_stream;
use zpool::{MapMode, ZPool};
use zsmalloc::{Config, SpanMap, Zsmalloc};
use zstore::{Algorithm, Entry, Policy, Zstore};

zkernel::test_kernel!("bench_pools", &[Case::returns("measure", measure)]);

fn report(name: &str, cycles: u64, ops: usize) {
    let per = cycles / ops.max(1) as u64;
    let c = centi_ns(per);
    println!("@@bench {{\"name\":\"{name}\",\"ns\":{}.{:02},\"cycles\":{per}}}", c / 100, c % 100);
}

fn time(f: impl FnOnce()) -> u64 {
    let t = rdtsc();
    f();
    rdtsc() - t
}

/// The sample's pages that reach a pool: not same-filled, and compressing below the store's threshold
/// (one page of the sample does not).
fn pages() -> Vec<&'static [u8; 4096]> {
    let threshold = Policy::DEFAULT.threshold;
    perl_pages()
        .iter()
        .filter(|p| compress::same_filled(p).is_none())
        .filter(|p| with_stream(LZ4, |c| c.compress(p, threshold).is_ok()).unwrap())
        .collect()
}

/// Store every page, load every page, free every page: three figures per page for `name`.
fn store_load_free<P: TestPool>(name: &str, pool: P, alg: Algorithm) -> Zstore<P> {
    let pages = pages();
    let mut z = Zstore::new(pool, Policy::DEFAULT);
    let mut entries: Vec<Entry> = Vec::with_capacity(pages.len());
    let c = time(|| {
        for p in &pages {
            entries.push(store(&mut z, alg, p).unwrap());
        }
    });
    report(&alloc::format!("{name}_store"), c, pages.len());
    let mut out = [0u8; 4096];
    let c = time(|| {
        for e in &entries {
            load(&mut z, alg, e, &mut out).unwrap();
            black_box(&out);
        }
    });
    report(&alloc::format!("{name}_load"), c, pages.len());
    // The last page loaded is right (every page is checked by the test kernels).
    assert!(out == *pages[pages.len() - 1]);
    let n = entries.len();
    let c = time(|| {
        for e in entries.drain(..) {
            z.free(e).unwrap();
        }
    });
    report(&alloc::format!("{name}_free"), c, n);
    assert_eq!(z.pool().mem().held(), 0);
    z
}

/// Map every object of a pool full of the sample's LZ4 pages read-only once, per object.
fn map_all(name: &str, span: SpanMap) {
    let pages = pages();
    let cfg = Config { span, ..Config::default() };
    let mut z = Zstore::new(Zsmalloc::with_config(pools::memory(u64::MAX), cfg).unwrap(), Policy::DEFAULT);
    let entries: Vec<Entry> = pages.iter().map(|p| store(&mut z, LZ4, p).unwrap()).collect();
    let handles: Vec<_> = entries.iter().filter_map(Entry::handle).collect();
    let k0 = kmap::stats();
    let mut sum = 0u64;
    let c = time(|| {
        for &h in &handles {
            sum += z.pool_mut().map(h, MapMode::ReadOnly, |b| b[0] as u64 + b[b.len() - 1] as u64).unwrap();
        }
    });
    report(name, c, handles.len());
    black_box(sum);
    let k1 = kmap::stats();
    assert!(k1.maps - k0.maps >= handles.len() as u64, "every object was mapped through kmap");
    for e in entries {
        z.free(e).unwrap();
    }
}

fn measure() {
    println!("tsc: {} MHz (calibrated against the PIT)", hz() / 1_000_000);
    let pages = pages();
    let mut buf = [0u8; 4096];
    let c = time(|| {
        for p in &pages {
            buf.copy_from_slice(*p);
            black_box(&buf);
        }
    });
    report("copy_4k", c, pages.len());

    for (name, alg) in [("lz4", LZ4), ("deflate1", DEFLATE_1)] {
        let mut stored: Vec<Vec<u8>> = Vec::with_capacity(pages.len());
        let c = time(|| {
            for p in &pages {
                stored.push(with_stream(alg, |s| s.compress(p, usize::MAX).unwrap().to_vec()).unwrap());
            }
        });
        report(&alloc::format!("{name}_compress"), c, pages.len());
        let c = time(|| {
            for s in &stored {
                with_stream(alg, |d| d.decompress(s, &mut buf).unwrap()).unwrap();
            }
        });
        report(&alloc::format!("{name}_decompress"), c, pages.len());
        assert!(buf == *pages[pages.len() - 1]);
    }

    store_load_free("zsmalloc_lz4", Zsmalloc::new(pools::memory(u64::MAX)), LZ4);
    store_load_free("zbud_lz4", Zbud::new(pools::memory(u64::MAX)), LZ4);
    store_load_free("zsmalloc_deflate1", Zsmalloc::new(pools::memory(u64::MAX)), DEFLATE_1);
    map_all("zsmalloc_map_all_pair", SpanMap::Pair);
    map_all("zsmalloc_map_all_copy", SpanMap::Copy);
    assert_eq!(pool_owned_frames(), 0);
}
