//! The swap subsystem when the swap disk fails (fault injection in `drivers::virtio_blk`): nothing is
//! lost but what the failed request carried, and only where no other copy exists.
//!
//! | case | injected | what must hold |
//! |---|---|---|
//! | `failed_swap_outs_keep_pages_resident` | every 3rd disk write fails (tmem off) | each failed swap-out maps its page back and reclaim takes the next victim: `swapout_failures` equals the failed writes, no step over budget, 0 mismatches, 0 pages lost, no run error |
//! | `a_disk_that_fails_every_write_fails_the_run_and_loses_nothing` | every disk write fails (tmem off) | each reclaim gives up after `swap::MAX_FAILED_SWAPOUTS` failures, steps go over budget, the run reports the first error; 0 mismatches, 0 pages lost |
//! | `failed_writeback_keeps_pages_in_tmem` | every disk write fails, with a tmem so small that writeback must run | no page written back, none lost, 0 mismatches: each page stays in tmem or resident |
//! | `frame_and_disk_faults_together_lose_nothing` | every 13th workload frame allocation and every 7th disk write fail together (the soak's mix) | a fault whose frame allocation failed reclaims, that swap-out fails, the allocation is retried: no access fails, every failed write is a counted `swapout_failures`, no step over budget, no run error, 0 mismatches, 0 lost |
//! | `failed_swap_in_loses_that_page_only` | the 5th disk read fails (tmem off) | exactly one page lost; every access to it fails with "page lost", every other page reads back intact |
//! | `corrupt_tmem_copies_are_lost_pages` | a byte flipped in two compressed copies in tmem: the oldest (then writeback runs) and another | writeback skips the corrupt oldest page and writes back the next; both pages are lost (their loads fail the check), no other page is |
//! | `frames_and_slots_accounted` | — | the free frame count is back where it started |
//! | `timeout_marks_the_disk_broken` | a read that never completes, then a wrong-token answer | the request fails with `Timeout`, every later one with `Broken`: the device may still write the bounce page (last: the disk stays broken) |
#![no_std]
#![no_main]

extern crate alloc;

use core::sync::atomic::{AtomicU64, Ordering};

use compress::Algorithm;
use swap::{CacheMode, Pattern};
use tmem::Backend;
use zkernel::drivers::virtio_blk::{self, BlkError, FaultKind, FaultOp, Injection};
use zkernel::harness::testing::Case;
use zkernel::init::facts;
use zkernel::mm::frames;
use zkernel::println;
use zkernel::swap::{Device, MemMode, SwapConfig, SwapError};
use zkernel::workload::swap_run::{PageSource, RunSpec, SwapRun};

zkernel::test_kernel!(
    "device_faults",
    &[
        Case::returns("failed_swap_outs_keep_pages_resident", failed_swap_outs_keep_pages_resident),
        Case::returns(
            "a_disk_that_fails_every_write_fails_the_run_and_loses_nothing",
            a_disk_that_fails_every_write_fails_the_run_and_loses_nothing,
        ),
        Case::returns("failed_writeback_keeps_pages_in_tmem", failed_writeback_keeps_pages_in_tmem),
        Case::returns("frame_and_disk_faults_together_lose_nothing", frame_and_disk_faults_together_lose_nothing),
        Case::returns("failed_swap_in_loses_that_page_only", failed_swap_in_loses_that_page_only),
        Case::returns("corrupt_tmem_copies_are_lost_pages", corrupt_tmem_copies_are_lost_pages),
        Case::returns("frames_and_slots_accounted", frames_and_slots_accounted),
        Case::returns("timeout_marks_the_disk_broken", timeout_marks_the_disk_broken),
    ]
);

const BUDGET: u64 = 96;
const REGION: u64 = 3 * BUDGET;

static FREE_AT_START: AtomicU64 = AtomicU64::new(0);

fn free_frames() -> u64 {
    frames::drain_pcp();
    frames::stats().free
}

fn sample() -> PageSource {
    let r = facts().ramdisk.expect("xtask attaches the perl sample as this kernel's ramdisk");
    assert_eq!(r.verified, Some(true));
    PageSource::Sample(r.bytes().as_chunks::<4096>().0)
}

fn spec(tmem: Option<Backend>) -> RunSpec {
    RunSpec {
        swap: SwapConfig {
            region_pages: REGION,
            budget_pages: BUDGET,
            mode: MemMode::Equal,
            device: Device::Disk,
            // Every swap-in gives its copy up: a clean page reclaimed again must be written again, so
            // writes keep coming and injected write errors keep landing.
            cache: CacheMode::ExclusiveLoads,
            tmem,
            tmem_limit_pages: BUDGET / 5,
            slots: 4 * REGION,
            algorithm: Algorithm::Lz4,
        },
        pattern: Pattern::Zipf,
        accesses: 4 * REGION,
        write_every: 3,
        seed: 17,
        source: sample(),
    }
}

fn inject(inj: Option<Injection>) {
    virtio_blk::disk("swap").expect("the swap disk").lock().set_injection(inj);
}

fn injected() -> u64 {
    virtio_blk::disk("swap").expect("the swap disk").lock().injection().injected
}

/// Run `spec` step by step: the progress, the swapper's counters at the end, and the run's error.
fn run_with_stats(
    spec: &RunSpec,
) -> (zkernel::workload::swap_run::Progress, zkernel::swap::SwapStats, Option<SwapError>) {
    let mut run = SwapRun::start(spec).expect("the swapper installs");
    while run.step() {}
    let progress = run.progress();
    let stats = zkernel::swap::stats().expect("installed");
    let error = run.finish().err();
    (progress, stats, error)
}

/// [`run_with_stats`] under the injection the caller set, which it clears: also the failed writes, and
/// one line with what the swap-out cases assert on.
fn run_failing_writes(
    spec: &RunSpec,
) -> (zkernel::workload::swap_run::Progress, zkernel::swap::SwapStats, Option<SwapError>, u64) {
    let (p, stats, error) = run_with_stats(spec);
    let n = injected();
    inject(None);
    println!(
        "  {} accesses, {n} disk writes failed, {} swap-outs failed, {} written; over budget {} steps; \
         mismatches {}, lost {}; run error: {error:?}",
        p.accesses, stats.swapout_failures, stats.disk_writes, stats.over_budget_steps, p.mismatches, p.pages_lost
    );
    (p, stats, error, n)
}

fn failed_swap_outs_keep_pages_resident() {
    FREE_AT_START.store(free_frames(), Ordering::Relaxed);
    inject(Some(Injection { every: 3, at: 0, kind: FaultKind::Error, op: FaultOp::Write }));
    let (p, stats, error, n) = run_failing_writes(&spec(None));
    assert!(n > 10, "only {n} injected write errors");
    assert_eq!((p.mismatches, p.pages_lost, p.dirty_zero_fills), (0, 0, 0));
    // tmem is off: every disk write is a swap-out, so every failed write is a failed swap-out.
    assert_eq!(stats.swapout_failures, n, "each failed write is one failed swap-out");
    // A failed swap-out is passed over for the next victim: the run stays within its memory and passes.
    assert_eq!(stats.over_budget_steps, 0, "reclaim found another page each time");
    assert_eq!(error, None, "an occasional failed swap-out is counted, not a run error");
}

/// A disk that fails every write: each make_room gives up after swap::MAX_FAILED_SWAPOUTS failures and
/// the access goes over budget; the run reports the first error, and still loses nothing.
fn a_disk_that_fails_every_write_fails_the_run_and_loses_nothing() {
    let mut s = spec(None);
    s.accesses = REGION;
    inject(Some(Injection { every: 1, at: 0, kind: FaultKind::Error, op: FaultOp::Write }));
    let (p, stats, error, n) = run_failing_writes(&s);
    assert_eq!(stats.disk_writes, 0, "no write succeeded");
    assert_eq!(stats.swapout_failures, n);
    // Every access past the budget gave up after the bound, no more, no fewer.
    assert_eq!(stats.swapout_failures % swap::MAX_FAILED_SWAPOUTS, 0, "make_room gives up after exactly the bound");
    assert!(stats.over_budget_steps > 0, "the region cannot fit, so steps went over");
    assert_eq!((p.mismatches, p.pages_lost, p.lost_accesses), (0, 0, 0));
    assert_eq!(error, Some(SwapError::Disk(BlkError::Injected)), "the run reports its first swap-out error");
}

fn failed_writeback_keeps_pages_in_tmem() {
    let mut s = spec(Some(Backend::Zsmalloc));
    s.swap.tmem_limit_pages = 16;
    let mut run = SwapRun::start(&s).expect("the swapper installs");
    // The fill and a first stretch with a healthy disk: tmem fills up and writes back as usual.
    for _ in 0..2 * REGION {
        run.step();
    }
    let before = zkernel::swap::stats().expect("installed");
    let stored_before = zkernel::zcache::stats().expect("tmem").persistent_pages;
    // From now on every disk write fails: writeback cannot move tmem's oldest pages out.
    inject(Some(Injection { every: 1, at: 0, kind: FaultKind::Error, op: FaultOp::Write }));
    while run.step() {}
    let p = run.progress();
    let n = injected();
    let stats = zkernel::swap::stats().expect("installed");
    let stored_after = zkernel::zcache::stats().expect("tmem").persistent_pages;
    let error = run.finish().err();
    inject(None);
    println!(
        "  healthy: written back {}; then {n} disk writes failed: {} writebacks failed, written back {} more; \
         tmem pages {stored_before} -> {stored_after}; mismatches {}, lost {}; run error: {error:?}",
        before.written_back_pages,
        stats.writeback_failures - before.writeback_failures,
        stats.written_back_pages - before.written_back_pages,
        p.mismatches,
        p.pages_lost
    );
    assert!(before.written_back_pages > 0, "writeback ran while the disk was healthy");
    assert!(stats.writeback_failures > before.writeback_failures, "writeback was tried on the failing disk");
    assert_eq!(stats.written_back_pages, before.written_back_pages, "no failed write counts as written back");
    assert_eq!((p.mismatches, p.pages_lost), (0, 0), "every page stayed in tmem or resident");
}

/// The soak found it: a fault's frame allocation failed, its reclaim's swap-out failed on the disk, and
/// the fault gave up (the access failed although no page was lost).
fn frame_and_disk_faults_together_lose_nothing() {
    inject(Some(Injection { every: 7, at: 0, kind: FaultKind::Error, op: FaultOp::Write }));
    frames::set_fail_every(13);
    let (p, stats, error) = run_with_stats(&spec(None));
    let frame_faults = frames::injected_failures();
    frames::set_fail_every(0);
    let n = injected();
    inject(None);
    println!(
        "  {frame_faults} frame allocations and {n} disk writes failed ({} swap-outs failed); {} accesses, \
         over budget {} steps, mismatches {}, lost {}; run error: {error:?}",
        stats.swapout_failures, p.accesses, stats.over_budget_steps, p.mismatches, p.pages_lost
    );
    assert!(frame_faults > 10 && n > 10, "both kinds of fault were injected");
    assert_eq!((p.mismatches, p.pages_lost, p.lost_accesses), (0, 0, 0), "no access failed");
    assert_eq!(stats.swapout_failures, n, "each failed write is one failed swap-out, passed over");
    assert_eq!((stats.over_budget_steps, error), (0, None), "the run stayed within its memory and passed");
}

fn failed_swap_in_loses_that_page_only() {
    inject(Some(Injection { every: 0, at: 5, kind: FaultKind::Error, op: FaultOp::Read }));
    let mut run = SwapRun::start(&spec(None)).expect("the swapper installs");
    while run.step() {}
    let p = run.progress();
    let stats = zkernel::swap::stats().expect("installed");
    let n = injected();
    let region = zkernel::swap::region().expect("installed");
    // The lost page is still lost: find it and access it twice more.
    let lost: alloc::vec::Vec<u64> = (0..REGION)
        .filter(|&page| {
            let mut b = [0u8; 8];
            matches!(region.read_at(page, 0, &mut b), Err(zkernel::mm::region::RegionError::PageLost { .. }))
        })
        .collect();
    drop(region);
    let error = run.finish().err();
    inject(None);
    println!(
        "  {n} disk read failed; pages lost: swapper {}, workload {} ({} failed accesses), found again {lost:?}; mismatches {}",
        stats.pages_lost, p.pages_lost, p.lost_accesses, p.mismatches
    );
    assert_eq!(n, 1, "exactly the 5th read failed");
    assert_eq!((stats.pages_lost, p.pages_lost), (1, 1), "exactly one page lost");
    assert_eq!(lost.len(), 1, "the lost page still fails, and only it");
    assert!(p.lost_accesses >= 1);
    assert_eq!(p.mismatches, 0, "every other page intact");
    assert_eq!(error, None, "a lost page is counted, not a run error");
}

/// The region page whose PTE holds the swap entry of slot `offset`.
fn page_of_slot(region: &zkernel::mm::region::Region, offset: u64) -> Option<u64> {
    (0..REGION).find(|&p| {
        region.entry(p).is_ok_and(
            |e| matches!(swap::SwapEntry::classify(e.raw()), swap::entry::Pte::Swap(s) if s.offset == offset),
        )
    })
}

fn corrupt_tmem_copies_are_lost_pages() {
    use zkernel::zcache::frontswap;
    let mut run = SwapRun::start(&spec(Some(Backend::Zsmalloc))).expect("the swapper installs");
    for _ in 0..2 * REGION {
        run.step();
    }
    let region = zkernel::swap::region().expect("installed");
    // The oldest page in tmem (writeback's next), and another one in tmem.
    let oldest = frontswap::oldest(0).expect("tmem holds pages");
    let other =
        (0..4 * REGION).find(|&o| o != oldest && zkernel::zcache::with(|z| z.frontswap.contains(0, o)) == Some(true));
    let other = other.expect("a second page in tmem");
    let (page_a, page_b) =
        (page_of_slot(&region, oldest).expect("oldest's page"), page_of_slot(&region, other).expect("other's page"));
    assert_eq!(frontswap::corrupt(0, oldest), Ok(true));
    assert_eq!(frontswap::corrupt(0, other), Ok(true));
    let skipped_before = frontswap::frontswap_stats().expect("installed").corrupt_skipped;
    // Writeback now meets the corrupt oldest page: it must skip it and write back the next one.
    assert_eq!(zkernel::swap::shrink_pool_once(), Ok(true), "writeback went on past the corrupt page");
    let skipped = frontswap::frontswap_stats().expect("installed").corrupt_skipped - skipped_before;
    // Both pages are lost now; nothing else is.
    let mut b = [0u8; 8];
    let a_lost = matches!(region.read_at(page_a, 0, &mut b), Err(zkernel::mm::region::RegionError::PageLost { .. }));
    let b_lost = matches!(region.read_at(page_b, 0, &mut b), Err(zkernel::mm::region::RegionError::PageLost { .. }));
    drop(region);
    while run.step() {}
    let p = run.progress();
    let stats = zkernel::swap::stats().expect("installed");
    let tmem = zkernel::zcache::stats().expect("tmem");
    let error = run.finish().err();
    println!(
        "  corrupted slots {oldest} (oldest, page {page_a}) and {other} (page {page_b}); writeback skipped {skipped}; \
         lost: {a_lost}/{b_lost}, swapper {} pages, workload {}; tmem corrupt loads {}; mismatches {}",
        stats.pages_lost, p.pages_lost, tmem.corrupt, p.mismatches
    );
    assert_eq!(skipped, 1, "writeback skipped exactly the corrupt oldest page");
    assert!(a_lost && b_lost, "both corrupted pages are lost");
    assert_eq!(stats.pages_lost, 2, "exactly the two corrupted pages");
    assert_eq!(p.mismatches, 0, "every other page intact");
    assert_eq!(error, None);
}

fn frames_and_slots_accounted() {
    let before = FREE_AT_START.load(Ordering::Relaxed);
    let now = free_frames();
    println!("  free frames: {before} before the first run, {now} now");
    assert!(before.saturating_sub(now) <= 64, "{} frames did not come back", before - now);
    assert_eq!(frames::owned_by(frame::Owner::WORKLOAD), 0);
    assert_eq!(frames::owned_by(frame::Owner::POOL), 0);
}

fn timeout_marks_the_disk_broken() {
    let disk = virtio_blk::disk("swap").expect("the swap disk");
    let mut page = [0u8; 4096];
    disk.lock().set_injection(Some(Injection { every: 0, at: 1, kind: FaultKind::Timeout, op: FaultOp::Read }));
    let first = disk.lock().read_page(0, &mut page);
    let second = disk.lock().read_page(1, &mut page);
    let write = disk.lock().write_page(1, &page);
    println!("  a read that never completes: {first:?}; then {second:?}, {write:?}");
    assert_eq!(first, Err(BlkError::Timeout));
    assert_eq!((second, write), (Err(BlkError::Broken), Err(BlkError::Broken)));
    assert!(disk.lock().is_broken());
}
