//! Fuzz target `compress_decode`: the stored-page decoder (`compress`, and `zstore`'s load through a
//! pool object) fed arbitrary stored bytes; and compress → decompress round trips of arbitrary pages.
//!
//! # Why
//!
//! Stored bytes live in pool memory for as long as the page is away; whatever happens to them (a pool
//! bug, a stray write, the `corrupt_stored` test option) reaches [`Compressor::decompress`], whose
//! contract is `Ok` only for the exact page and otherwise `Err(Corrupt)` or `Err(UnknownAlgorithm)`,
//! never a panic, and no allocation. Both decoders (lz4_flex, miniz_oxide's inflate) are third-party
//! code fed our bytes.
//!
//! # Input layout
//!
//! | byte 0 | what the input is |
//! |---|---|
//! | 1 (LZ4) or 2 (deflate) | stored bytes, whole: the decoder path |
//! | anything else, `a` | the page (bytes 1.., zero-padded or cut to 4096) for a round trip with algorithm `a % 11`: 0 is LZ4, 1..=10 deflate at that level |
//!
//! # What is checked
//!
//! Decoder path: an LZ4 and a deflate compressor give the same answer (any compressor decodes any
//! algorithm) and the same page on `Ok`; [`Zstore::load`] of the same bytes placed in a zsmalloc object
//! gives the matching answer ([`StoreError::Corrupt`] for `Corrupt`) and the same page.
//!
//! Round trip: [`Compressor::compress`] with threshold [`MAX_STORED`] never refuses, returns at most
//! [`MAX_STORED`] bytes starting with the algorithm's id, and the *other* compressor decodes them to
//! the page; [`compress::same_filled`] and [`compress::fill_same`] agree.
//!
//! # Worked example
//!
//! `corpus/compress_decode/zero-page.lz4` is the 32 stored bytes of compress's header example
//! (`01 68 10 57 8c 1f 00 01 00 ff …`): both compressors decode it to a zero page, and so does the store.
#![no_main]

use std::cell::RefCell;

use compress::{Algorithm, Compressor, DecompressError, MAX_STORED, PAGE_SIZE};
use libfuzzer_sys::fuzz_target;
use zkernel_fuzz::SharedArena;
use zpool::{MapMode, PoolError, ZPool};
use zsmalloc::Zsmalloc;
use zstore::{Entry, Policy, StoreError, Zstore};

/// Per-thread state, made once: a compressor per algorithm and level (deflate's is ≈ 310 KiB and slow
/// to make), and a store over zsmalloc.
struct State {
    /// Index 0: LZ4; index `l` in 1..=10: deflate at level `l`.
    comps: Vec<Compressor>,
    store: Zstore<Zsmalloc<SharedArena>>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State {
        comps: (0..=10u8)
            .map(|i| {
                let alg = if i == 0 { Algorithm::Lz4 } else { Algorithm::Deflate { level: i } };
                Compressor::new(alg).expect("levels 1..=10 are valid")
            })
            .collect(),
        store: Zstore::new(Zsmalloc::new(SharedArena::get()), Policy::DEFAULT),
    });
}

fn decode(s: &mut State, stored: &[u8]) {
    let mut by_lz4 = Box::new([0x5a; PAGE_SIZE]);
    let mut by_deflate = Box::new([0xa5; PAGE_SIZE]);
    let r = s.comps[0].decompress(stored, &mut by_lz4);
    let r2 = s.comps[1].decompress(stored, &mut by_deflate);
    assert_eq!(r, r2, "the LZ4 and the deflate compressor disagree");
    assert!(matches!(r, Ok(()) | Err(DecompressError::Corrupt | DecompressError::UnknownAlgorithm(_))), "{r:?}");
    if r.is_ok() {
        assert!(by_lz4 == by_deflate, "two decodes of the same bytes gave different pages");
    }

    // The same bytes as a pool object, loaded through the store.
    if stored.is_empty() || stored.len() > s.store.pool().max_size() {
        return;
    }
    let handle = match s.store.pool_mut().malloc(stored.len()) {
        Ok(h) => h,
        Err(PoolError::OutOfMemory) => return,
        Err(e) => panic!("malloc({}) of a fresh pool: {e:?}", stored.len()),
    };
    s.store.pool_mut().map(handle, MapMode::WriteOnly, |obj| obj.copy_from_slice(stored)).expect("a live handle maps");
    let entry = Entry::Compressed { handle, len: stored.len() as u32, algorithm: stored[0] };
    let mut loaded = Box::new([0x3c; PAGE_SIZE]);
    let lr = s.store.load(&mut s.comps[0], &entry, &mut loaded);
    let want = r.map_err(StoreError::from);
    assert_eq!(lr, want, "Zstore::load disagrees with Compressor::decompress");
    if lr.is_ok() {
        assert!(loaded == by_lz4, "the store loaded another page");
    }
    s.store.free(entry).expect("the store frees its entry");
    assert_eq!(s.store.pool().stats().objects, 0);
}

fn round_trip(s: &mut State, selector: u8, bytes: &[u8]) {
    let mut page = Box::new([0u8; PAGE_SIZE]);
    let n = bytes.len().min(PAGE_SIZE);
    page[..n].copy_from_slice(&bytes[..n]);
    let which = usize::from(selector % 11);
    let stored = s.comps[which].compress(&page, MAX_STORED).expect("threshold MAX_STORED never refuses").to_vec();
    assert!(stored.len() <= MAX_STORED);
    assert_eq!(stored[0], s.comps[which].algorithm().id());
    let other = if which == 0 { 1 } else { 0 };
    let mut back = Box::new([0xffu8; PAGE_SIZE]);
    s.comps[other].decompress(&stored, &mut back).expect("stored bytes decode");
    assert!(back == page, "the round trip changed the page");
    if let Some(word) = compress::same_filled(&page) {
        let mut filled = Box::new([0u8; PAGE_SIZE]);
        compress::fill_same(&mut filled, word);
        assert!(filled == page);
    }
}

fuzz_target!(|data: &[u8]| {
    STATE.with(|state| {
        let s = &mut *state.borrow_mut();
        match data.split_first() {
            Some((&id, _)) if id == Algorithm::Lz4.id() || id == Algorithm::Deflate { level: 1 }.id() => {
                decode(s, data)
            }
            Some((&selector, page)) => round_trip(s, selector, page),
            None => decode(s, data),
        }
    });
});
