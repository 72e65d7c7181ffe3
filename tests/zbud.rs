//! zbud on real frames: the perl sample stored with LZ4 and deflate through per-CPU streams, read back
//! byte for byte, freed with every frame returned; bad input refused; eviction from the LRU writes back
//! exact bytes and frees whole frames.
#![no_std]
#![no_main]

extern crate alloc;

#[path = "common/pools.rs"]
mod pools;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use pools::{DEFLATE_1, DEFLATE_6, LZ4, Mem, TestPool, load, perl_pages, pool_owned_frames, store};
use zbud::Zbud;
use zkernel::harness::testing::Case;
use zkernel::zcache::streams::with_stream;
use zpool::{PoolError, ZPool};
use zstore::{Entry, Policy, Zstore};

zkernel::test_kernel!(
    "zbud",
    &[
        Case::returns("perl_sample_round_trips_lz4", perl_sample_round_trips_lz4),
        Case::returns("perl_sample_round_trips_deflate_1", perl_sample_round_trips_deflate_1),
        Case::returns("perl_sample_round_trips_deflate_6", perl_sample_round_trips_deflate_6),
        Case::returns("eviction_writes_back_the_lru_page", eviction_writes_back_the_lru_page),
        Case::returns("bad_input_is_refused", bad_input_is_refused),
        Case::returns("out_of_frames_is_refused", out_of_frames_is_refused),
    ]
);

fn zbud(mem: Mem) -> Zbud<Mem> {
    Zbud::new(mem)
}

fn perl_sample_round_trips_lz4() {
    let s = pools::round_trip_sample(zbud, LZ4);
    // zbud keeps at most two objects a page: never fewer pages than half the compressed ones.
    assert!(s.mem_used_total * 2 >= (s.stored_pages - s.same_pages) * 4096);
}

fn perl_sample_round_trips_deflate_1() {
    pools::round_trip_sample(zbud, DEFLATE_1);
}

fn perl_sample_round_trips_deflate_6() {
    pools::round_trip_sample(zbud, DEFLATE_6);
}

fn eviction_writes_back_the_lru_page() {
    let pages = &perl_pages()[..512];
    let mut z = Zstore::new(zbud(pools::memory(u64::MAX)), Policy::DEFAULT);
    // handle -> page index, for the pages kept compressed in the pool
    let mut by_handle = BTreeMap::new();
    let mut entries = Vec::new();
    for (i, p) in pages.iter().enumerate() {
        if let Ok(e @ Entry::Compressed { .. }) = store(&mut z, LZ4, p) {
            by_handle.insert(e.handle().unwrap(), i);
            entries.push(e);
        }
    }
    let first_lru = z.pool().lru()[z.pool().lru().len() - 1];
    let pool_pages = z.pool().total_pages();
    let (mut evicted_pages, mut written_back) = (0, 0);
    let mut out = [0u8; 4096];
    // Evict until the pool is empty: every object handed to writeback must decompress to its page.
    loop {
        let mut wb = Vec::new();
        match z.pool_mut().evict(&mut |h, bytes| {
            wb.push((h, bytes.to_vec()));
            true
        }) {
            Ok(n) => evicted_pages += n,
            Err(PoolError::Empty) => break,
            Err(e) => panic!("evict: {e}"),
        }
        if evicted_pages == 1 {
            assert!(!z.pool().lru().contains(&first_lru), "the first eviction took the least recent page");
        }
        assert!((1..=2).contains(&wb.len()), "a zbud page holds one or two objects");
        for (h, bytes) in wb {
            let i = by_handle[&h];
            with_stream(LZ4, |c| c.decompress(&bytes, &mut out)).unwrap().unwrap();
            assert!(out == pages[i], "written-back object of page {i} is exact");
            written_back += 1;
        }
    }
    assert_eq!(evicted_pages, pool_pages, "every eviction freed one whole page");
    assert_eq!(written_back, entries.len(), "every object was written back exactly once");
    assert_eq!((z.pool().mem().held(), pool_owned_frames()), (0, 0));
    // The store's entries are stale now: loading one says so.
    let r = load(&mut z, LZ4, &entries[0], &mut out);
    assert_eq!(r, Err(zstore::StoreError::Pool(PoolError::StaleHandle(entries[0].handle().unwrap()))));
}

fn bad_input_is_refused() {
    pools::bad_input_is_refused(zbud);
}

fn out_of_frames_is_refused() {
    pools::out_of_frames_is_refused(zbud);
}
