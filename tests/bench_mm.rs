//! Benchmark kernel (run by `cargo xtask bench`, not by `cargo xtask test`): frame allocator and kmap
//! costs on real frames under QEMU. xtask builds it twice — with kmap's temporary mappings and with the
//! `direct-map` feature — and prints both side by side.
//!
//! Each figure is one `@@bench {"name":…,"ns":…}` line: the mean over `N` operations, timed with the
//! TSC calibrated against the PIT. A closing case checks the counters the loops must have moved, so a
//! loop the compiler removed would fail the run instead of reporting an impossible figure.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::hint::black_box;

use frame::{Owner, Pfn};
use zkernel::arch::tsc::{centi_ns, hz, rdtsc};
use zkernel::harness::testing::Case;
use zkernel::mm::{frames, kmap};
use zkernel::println;

zkernel::test_kernel!("bench_mm", &[Case::returns("measure", measure)]);

const N: usize = 20_000;

fn report(name: &str, cycles: u64, ops: usize) {
    let per = cycles / ops as u64;
    let c = centi_ns(per);
    println!("@@bench {{\"name\":\"{name}\",\"ns\":{}.{:02},\"cycles\":{per}}}", c / 100, c % 100);
}

/// Map the benchmark's own frame.
fn view(p: Pfn) -> kmap::Kmap {
    // SAFETY: `p` was allocated by the benchmark and nothing else reaches it.
    unsafe { kmap::kmap_local(p) }.unwrap()
}

/// Free a frame the benchmark allocated and no longer maps.
fn free(p: Pfn) {
    // SAFETY: the benchmark holds no view of the frame when it frees it.
    unsafe { frames::free(p, 0) }.unwrap();
}

fn time(f: impl FnOnce()) -> u64 {
    let t = rdtsc();
    f();
    rdtsc() - t
}

fn measure() {
    println!("tsc: {} MHz (calibrated against the PIT)", hz() / 1_000_000);
    let mut held: Vec<Pfn> = Vec::with_capacity(N);
    // Warm up: every frame used below has last owner KMAP_TEST, so no allocation scrubs.
    for _ in 0..2 {
        for _ in 0..N {
            held.push(frames::alloc(0, Owner::KMAP_TEST).unwrap());
        }
        while let Some(p) = held.pop() {
            free(p);
        }
    }
    let s0 = frames::stats();
    let c = time(|| {
        for _ in 0..N {
            held.push(frames::alloc(0, Owner::KMAP_TEST).unwrap());
        }
    });
    report("frame_alloc_order0_buddy", c, N);
    let c = time(|| {
        while let Some(p) = held.pop() {
            free(p);
        }
    });
    report("frame_free_order0_buddy", c, N);
    let c = time(|| {
        for _ in 0..N {
            let p = frames::alloc_page(Owner::KMAP_TEST).unwrap();
            // SAFETY: the frame was never mapped.
            unsafe { frames::free_page(black_box(p)) }.unwrap();
        }
    });
    report("frame_alloc_free_pcp", c, N);
    let c = time(|| {
        for _ in 0..N {
            let p = frames::alloc(0, Owner::KMAP_TEST).unwrap();
            free(black_box(p));
        }
    });
    report("frame_alloc_free_buddy", c, N);
    let s1 = frames::stats();

    let page = frames::alloc(0, Owner::KMAP_TEST).unwrap();
    let k0 = kmap::stats();
    let c = time(|| {
        for _ in 0..N {
            let m = view(page);
            black_box(m.addr());
        }
    });
    report("kmap_map_unmap", c, N);
    let c = time(|| {
        for i in 0..N {
            let mut m = view(page);
            m.bytes()[(i * 64) % 4096] = i as u8; // the first touch after a map takes a TLB miss
        }
    });
    report("kmap_map_touch_unmap", c, N);
    let c = time(|| {
        for _ in 0..N {
            let mut m = view(page);
            black_box(m.bytes().iter().fold(0u64, |a, &b| a + b as u64));
        }
    });
    report("kmap_map_read4k_unmap", c, N);
    let k1 = kmap::stats();
    free(page);

    // The loops really ran: counters moved by exactly the operations timed.
    // Two loops allocated N frames each from the buddy lists; the per-CPU loop adds its refills.
    assert!(s1.allocs - s0.allocs >= 2 * N as u64, "buddy allocations: {}", s1.allocs - s0.allocs);
    assert_eq!(k1.maps - k0.maps, 3 * N as u64);
    assert_eq!(k1.unmaps - k0.unmaps, 3 * N as u64);
}
