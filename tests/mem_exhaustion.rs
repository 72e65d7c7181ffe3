//! Running out of heap and of page-table frames in the middle of a swap storm: stores are refused (the
//! pages go to the disk), faults retry, nothing panics and no page is lost or changed.
//!
//! | case | exhausted | what must hold |
//! |---|---|---|
//! | `heap_and_page_tables_run_out_in_a_swap_storm` | the first page table of the fresh region and then every 3rd (`frames::set_meta_fail_every`); the heap capped a quarter MiB above where it stands and filled with ballast until admission says no (`mm::heap::set_limit`, `admit`) | page-table refusals retried by the fault (`alloc_failures`), tmem puts refused by the metadata gate (`refused_metadata`) while others were stored, the heap never mapped past its cap; 0 mismatches, 0 lost |
//! | `memory_comes_back` | — | with the cap lifted and the ballast freed, the same storm stores again with no refusal; every workload and pool frame is back |
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use compress::Algorithm;
use swap::{CacheMode, Pattern};
use tmem::Backend;
use zkernel::harness::testing::Case;
use zkernel::init::facts;
use zkernel::mm::{frames, heap};
use zkernel::println;
use zkernel::swap::{Device, MemMode, SwapConfig};
use zkernel::workload::swap_run::{PageSource, Progress, RunSpec, SwapRun};

zkernel::test_kernel!(
    "mem_exhaustion",
    &[
        Case::returns("heap_and_page_tables_run_out_in_a_swap_storm", heap_and_page_tables_run_out_in_a_swap_storm),
        Case::returns("memory_comes_back", memory_comes_back),
    ]
);

const BUDGET: u64 = 96;
const REGION: u64 = 3 * BUDGET;

static FREE_AT_START: AtomicU64 = AtomicU64::new(0);
static HEAP_AT_START: AtomicU64 = AtomicU64::new(0);

fn free_frames() -> u64 {
    frames::drain_pcp();
    frames::stats().free
}

fn spec() -> RunSpec {
    let r = facts().ramdisk.expect("xtask attaches the perl sample as this kernel's ramdisk");
    assert_eq!(r.verified, Some(true));
    RunSpec {
        swap: SwapConfig {
            region_pages: REGION,
            budget_pages: BUDGET,
            mode: MemMode::Equal,
            device: Device::Disk,
            cache: CacheMode::ExclusiveLoads,
            tmem: Some(Backend::Zsmalloc),
            tmem_limit_pages: BUDGET / 2,
            slots: 4 * REGION,
            algorithm: Algorithm::Lz4,
        },
        pattern: Pattern::Zipf,
        accesses: 4 * REGION,
        write_every: 3,
        seed: 23,
        source: PageSource::Sample(r.bytes().as_chunks::<4096>().0),
    }
}

/// A whole storm: its progress and the tmem and swap counters at its end.
fn storm(run: &mut SwapRun) -> (Progress, tmem::TmemStats, zkernel::swap::SwapStats) {
    while run.step() {}
    let tmem = zkernel::zcache::stats().expect("tmem is installed while the run lives");
    let swap = zkernel::swap::stats().expect("the swapper is installed while the run lives");
    (run.progress(), tmem, swap)
}

fn heap_and_page_tables_run_out_in_a_swap_storm() {
    FREE_AT_START.store(free_frames(), Ordering::Relaxed);
    HEAP_AT_START.store(heap::stats().mapped, Ordering::Relaxed);
    let mut run = SwapRun::start(&spec()).expect("the swapper installs");
    // The ballast's own table is allocated before the cap, so pushing onto it never grows the heap.
    let mut ballast: Vec<Box<[u8; 4096]>> = Vec::with_capacity(1024);
    // A quarter MiB more than is mapped now: the admissions below grow the heap to its cap.
    let cap = heap::stats().mapped + 256 * 1024;
    heap::set_limit(Some(cap));
    // Fill the heap until it cannot promise a put plus 16 KiB: a few dozen stores still fit, then none.
    while heap::admit(tmem::PUT_METADATA_BYTES + 16 * 1024) && ballast.len() < ballast.capacity() {
        ballast.push(Box::new([0x5a; 4096]));
    }
    let (_, refused_before) = heap::admissions();
    // The region's tables do not exist yet: its first touch needs one, and that one is refused.
    frames::set_meta_fail_every(3);
    let (p, t, s) = storm(&mut run);
    let mapped = heap::stats().mapped;
    let table_faults = frames::meta_injected_failures();
    frames::set_meta_fail_every(0);
    let end = run.finish().map(|_| ());
    heap::set_limit(None);
    let (_, refused) = heap::admissions();
    println!(
        "  heap capped at {cap} bytes, {} KiB of ballast; {} accesses: tmem stored {} pages, refused {} for \
         metadata ({} admissions refused); {table_faults} heap/table allocations refused, {} fault retries; \
         mismatches {}, lost {}, lost accesses {}; run end: {end:?}",
        ballast.len() * 4,
        p.accesses,
        t.puts - t.put_failures - t.refused_full,
        t.refused_metadata,
        refused - refused_before,
        s.alloc_failures,
        p.mismatches,
        p.pages_lost,
        p.lost_accesses,
    );
    drop(ballast);
    assert!(t.refused_metadata > 10, "stores were refused for want of heap");
    assert!(t.puts - t.put_failures - t.refused_full > 10, "stores were admitted before the heap ran out");
    assert!(table_faults >= 1 && s.alloc_failures >= 1, "the first page table was refused and the fault retried");
    assert!(mapped <= cap, "the heap grew past its cap: {mapped} > {cap}");
    assert!(s.disk_writes > 0, "refused stores went to the disk");
    assert_eq!((p.mismatches, p.pages_lost, p.lost_accesses, p.dirty_zero_fills), (0, 0, 0, 0));
    assert_eq!(end, Ok(()), "the run ends clean");
}

fn memory_comes_back() {
    let mut run = SwapRun::start(&spec()).expect("the swapper installs");
    let (p, t, _) = storm(&mut run);
    assert_eq!(run.finish().map(|_| ()), Ok(()));
    println!(
        "  stored {} pages, refused {} for metadata; mismatches {}",
        t.puts - t.put_failures - t.refused_full,
        t.refused_metadata,
        p.mismatches
    );
    assert_eq!((t.refused_metadata, p.mismatches, p.pages_lost), (0, 0, 0));
    let (before, now) = (FREE_AT_START.load(Ordering::Relaxed), free_frames());
    let heap_grew = (heap::stats().mapped - HEAP_AT_START.load(Ordering::Relaxed)) / 4096;
    println!("  free frames: {before} before, {now} now; the heap grew by {heap_grew} frames");
    // The heap keeps what it grew (it never shrinks) and the region's page tables stay (a few).
    let gone = before.saturating_sub(now).saturating_sub(heap_grew);
    assert!(gone <= 8, "{gone} frames did not come back");
    assert_eq!(frames::owned_by(frame::Owner::WORKLOAD), 0);
    assert_eq!(frames::owned_by(frame::Owner::POOL), 0);
}
