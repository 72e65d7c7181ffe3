//! The hot path allocates nothing: [`Compressor::compress`] and [`Compressor::decompress`] run under a
//! global allocator that counts this thread's allocations.
//!
//! The library forbids `unsafe`; this test crate needs it only to install the counting allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use compress::{Algorithm, Compressor, MAX_STORED, PAGE_SIZE, fill_same};

/// Forwards to [`System`], counting allocations made by the current thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the allocator may run while the thread's locals are being torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `System`'s
// guarantees are ours; counting touches only a const-initialised thread-local `Cell`, which allocates
// nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from `System`, with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` came from `System` with `layout`; the caller upholds the rest of the contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn compress_and_decompress_allocate_nothing() {
    // A zero page, a same-filled one, a text-like one that compresses, and a random one that does not.
    let mut pages = vec![[0u8; PAGE_SIZE]; 4];
    fill_same(&mut pages[1], 0x0123_4567_89ab_cdef);
    for (i, b) in pages[2].iter_mut().enumerate() {
        *b = b"the quick brown fox jumps over the lazy dog; "[i % 45] ^ (i / 1000) as u8;
    }
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for b in pages[3].iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let algorithms = [Algorithm::Lz4, Algorithm::Deflate { level: 1 }, Algorithm::Deflate { level: 10 }];
    let mut compressors: Vec<Compressor> = algorithms.iter().map(|&a| Compressor::new(a).unwrap()).collect();
    let mut stored = [0u8; MAX_STORED];
    let mut back = [0u8; PAGE_SIZE];

    let before = allocations();
    let mut checked = 0;
    for c in &mut compressors {
        for page in &pages {
            let len = {
                let s = c.compress(page, MAX_STORED).unwrap();
                stored[..s.len()].copy_from_slice(s);
                s.len()
            };
            let _ = c.compress(page, PAGE_SIZE / 2);
            c.decompress(&stored[..len], &mut back).unwrap();
            // A failing decompress must not allocate either (no error formatting, no boxing).
            let _ = c.decompress(&stored[..len - 1], &mut back);
            checked += usize::from(back == *page);
        }
    }
    let after = allocations();
    assert_eq!(checked, algorithms.len() * pages.len());
    assert_eq!(after - before, 0, "allocations on the hot path");
    // The counter does count: building a compressor allocates.
    drop(Compressor::new(Algorithm::Lz4).unwrap());
    assert!(allocations() > after);
}
