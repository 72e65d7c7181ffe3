//! The memory paths under concurrency, with 4 CPUs (tests/Cargo.toml's `smp` table):
//!
//! | case | what runs on every CPU at once | what must hold |
//! |---|---|---|
//! | `tmem_ops_on_every_cpu` | ≥ 10^5 frontswap put/get/flush in total on one shared zsmalloc pool and one shared zbud pool, each CPU on its own keys | every hit returns the bytes last put (FNV-1a); a key put and not flushed always hits |
//! | `shared_swap_region` | the swap workload, every CPU on its own stripe of *every* page, while reclaim (on whichever CPU faults) swaps pages the others are using | zero mismatches, zero dirty first touches, nothing left in tmem, every slot free |
//! | `split_swap_region` | the swap workload, each CPU on its own slice of the region | as above |
//! | `write_lands_before_unmap_or_after_swapin` | CPU 1 writes an ever-growing counter into one page while the boot CPU reclaims that page again and again | the page never holds less than the last write that completed before it was read: no write went into a freed frame |
//! | `files_on_every_cpu` | the file workload over one page cache with cleancache (zsmalloc) under it, files invalidated as it goes | every page read matches the file table's truth, no invalidated page served from cleancache, tmem empty at the end |
//! | `freed_frames_stay_poisoned` | — | every freed workload and pool frame still holds its free-time poison (every byte in debug builds, the first and last cache line in release builds) |
//! | `frames_and_slots_accounted` | — | the free frame count is back where it started |
//! | `lock_counts` | — | the locks were taken and the counts print, as the seeds printed theirs |
//!
//! No case has a time limit of its own: a deadlock shows as the harness timeout.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use compress::Algorithm;
use fnv1a::fnv1a64;
use frame::Owner;
use swap::{CacheMode, Pattern};
use tmem::Backend;
use zkernel::arch::smp;
use zkernel::harness::testing::Case;
use zkernel::init::facts;
use zkernel::mm::frames;
use zkernel::println;
use zkernel::swap::{Device, MemMode, SwapConfig};
use zkernel::workload::files::{self, FileSpec};
use zkernel::workload::swap_run::PageSource;
use zkernel::workload::swap_smp::{self, Sharing, SmpRunResult, SmpRunSpec};
use zkernel::zcache::{self, frontswap};

zkernel::test_kernel!(
    "smp_stress",
    &[
        Case::returns("four_cpus_are_up", four_cpus_are_up),
        Case::returns("tmem_ops_on_every_cpu", tmem_ops_on_every_cpu),
        Case::returns("shared_swap_region", shared_swap_region),
        Case::returns("split_swap_region", split_swap_region),
        Case::returns("write_lands_before_unmap_or_after_swapin", write_lands_before_unmap_or_after_swapin),
        Case::returns("files_on_every_cpu", files_on_every_cpu),
        Case::returns("freed_frames_stay_poisoned", freed_frames_stay_poisoned),
        Case::returns("frames_and_slots_accounted", frames_and_slots_accounted),
        Case::returns("lock_counts", lock_counts),
    ]
);

const CPUS: usize = 4;
static FREE_AT_START: AtomicU64 = AtomicU64::new(0);

fn sample() -> &'static [[u8; 4096]] {
    let r = facts().ramdisk.expect("xtask attaches the perl sample as this kernel's ramdisk");
    assert_eq!(r.verified, Some(true), "the ramdisk's checksum matches xtask's");
    r.bytes().as_chunks::<4096>().0
}

fn free_frames() -> u64 {
    frames::drain_pcp();
    frames::stats().free
}

fn four_cpus_are_up() {
    FREE_AT_START.store(free_frames(), Ordering::Relaxed);
    assert_eq!(smp::online_count(), CPUS, "tests/Cargo.toml gives this kernel -smp 4");
}

// ------------------------------------------------------------------------------------------------
// tmem on every CPU
// ------------------------------------------------------------------------------------------------

/// Operations per CPU: 4 × 26,000 = 104,000 in total.
const OPS_PER_CPU: u64 = 26_000;
/// Keys per CPU in each of the two pools (offsets `cpu + CPUS·k`).
const KEYS: usize = 48;
/// The two shared pools: swap type 1 on zsmalloc, type 2 on zbud.
const TYPES: [(u8, Backend); 2] = [(1, Backend::Zsmalloc), (2, Backend::Zbud)];

#[derive(Debug, Clone, Copy, Default)]
struct TmemTally {
    puts: u64,
    stored: u64,
    gets: u64,
    hits: u64,
    flushes: u64,
    mismatches: u64,
    lost: u64,
    errors: u64,
}

static TALLY: spin::Mutex<[Option<TmemTally>; CPUS]> = spin::Mutex::new([None; CPUS]);

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// One CPU's share: random puts (40 %), gets (40 %) and flushes (20 %) on its own keys of both pools.
fn tmem_worker(cpu: usize) {
    let pages = sample();
    let mut rng = 0x9e37_79b9_7f4a_7c15 ^ ((cpu as u64 + 1) * 0x1234_5678_9abc_def1);
    // The FNV-1a of what each key holds, or None.
    let mut held = vec![[None::<u64>; KEYS]; TYPES.len()];
    let mut t = TmemTally::default();
    let mut page = [0u8; 4096];
    let mut sink = |_: u64, _: &[u8; 4096]| false;
    for op in 0..OPS_PER_CPU {
        let r = xorshift(&mut rng);
        let ti = (r & 1) as usize;
        let k = ((r >> 1) % KEYS as u64) as usize;
        let (ty, _) = TYPES[ti];
        let offset = (cpu + CPUS * k) as u64;
        match (r >> 32) % 10 {
            0..=3 => {
                t.puts += 1;
                page = pages[((r >> 8) % pages.len() as u64) as usize];
                page[..8].copy_from_slice(&(op | (cpu as u64) << 56).to_le_bytes());
                match frontswap::store(ty, offset, &page, &mut sink) {
                    Ok(o) if o.stored => {
                        t.stored += 1;
                        held[ti][k] = Some(fnv1a64(&page));
                    }
                    Ok(_) => {
                        // Refused: whatever the key held before is not to be trusted; drop it.
                        let _ = frontswap::invalidate_page(ty, offset);
                        held[ti][k] = None;
                    }
                    Err(_) => t.errors += 1,
                }
            }
            4..=7 => {
                t.gets += 1;
                match frontswap::load(ty, offset, &mut page) {
                    Ok(true) => {
                        t.hits += 1;
                        if held[ti][k] != Some(fnv1a64(&page)) {
                            t.mismatches += 1;
                        }
                    }
                    Ok(false) => {
                        if held[ti][k].is_some() {
                            t.lost += 1;
                        }
                    }
                    Err(_) => t.errors += 1,
                }
            }
            _ => {
                t.flushes += 1;
                match frontswap::invalidate_page(ty, offset) {
                    Ok(()) => held[ti][k] = None,
                    Err(_) => t.errors += 1,
                }
            }
        }
    }
    TALLY.lock()[cpu] = Some(t);
}

fn tmem_ops_on_every_cpu() {
    zcache::set_tunables(zcache::Tunables::ZCACHE);
    zcache::install(4096, Algorithm::Lz4).expect("zcache installs");
    for (ty, backend) in TYPES {
        frontswap::init(ty, (CPUS * KEYS) as u64, backend).expect("a frontswap pool per type");
    }
    let before = zcache::lock_stats()[0];
    let start = zkernel::arch::tsc::rdtsc();
    let ran = smp::run_on_all(tmem_worker);
    let cycles = zkernel::arch::tsc::rdtsc() - start;
    let after = zcache::lock_stats()[0];
    let tallies = TALLY.lock();
    let mut sum = TmemTally::default();
    for (c, t) in tallies.iter().enumerate() {
        let t = t.unwrap_or_else(|| panic!("cpu{c} reported no tally"));
        println!(
            "  cpu{c}: {} puts ({} stored), {} gets ({} hits), {} flushes; mismatches {}, lost {}, errors {}",
            t.puts, t.stored, t.gets, t.hits, t.flushes, t.mismatches, t.lost, t.errors
        );
        sum.puts += t.puts;
        sum.stored += t.stored;
        sum.gets += t.gets;
        sum.hits += t.hits;
        sum.flushes += t.flushes;
        sum.mismatches += t.mismatches;
        sum.lost += t.lost;
        sum.errors += t.errors;
    }
    let ops = sum.puts + sum.gets + sum.flushes;
    let acq = after.acquisitions - before.acquisitions;
    let cont = after.contentions - before.contentions;
    println!(
        "  {ran} CPUs, {ops} tmem operations in {} ms; zcache lock: {acq} acquisitions, {cont} contentions",
        zkernel::arch::tsc::cycles_to_ms(cycles)
    );
    for (ty, _) in TYPES {
        frontswap::invalidate_area(ty).expect("swapoff of each type");
    }
    let last = zcache::uninstall().expect("zcache comes out once both pools are empty");
    assert_eq!(ran, CPUS);
    assert!(ops >= 100_000, "{ops} operations");
    assert_eq!((sum.mismatches, sum.lost, sum.errors), (0, 0, 0), "mismatches, lost pages, errors");
    assert!(sum.stored > 0 && sum.hits > 0, "the pools stored and served pages");
    // Every operation took zcache's one lock at least once.
    assert!(acq >= ops, "{acq} acquisitions for {ops} operations");
    assert_eq!((last.stored_pages, last.pool_pages), (0, 0), "tmem empty after swapoff");
}

// ------------------------------------------------------------------------------------------------
// The swap workload on every CPU
// ------------------------------------------------------------------------------------------------

const BUDGET: u64 = 192;
const REGION: u64 = 3 * BUDGET;

fn smp_spec(sharing: Sharing) -> SmpRunSpec {
    SmpRunSpec {
        swap: SwapConfig {
            region_pages: REGION,
            budget_pages: BUDGET,
            mode: MemMode::Equal,
            device: Device::Disk,
            cache: CacheMode::Keep,
            tmem: Some(Backend::Zsmalloc),
            tmem_limit_pages: BUDGET / 5,
            slots: 4 * REGION,
            algorithm: Algorithm::Lz4,
        },
        pattern: Pattern::Zipf,
        accesses: 2 * REGION,
        write_every: 3,
        seed: 11,
        source: PageSource::Sample(sample()),
        cpus: CPUS,
        sharing,
    }
}

fn check_run(r: &SmpRunResult) {
    let s = &r.finished.stats;
    for w in &r.workers {
        println!(
            "  cpu{}: {} accesses, {} mismatches, {} dirty first touches, {} ms",
            w.cpu,
            w.accesses,
            w.mismatches,
            w.dirty_zero_fills,
            zkernel::arch::tsc::cycles_to_ms(w.cycles)
        );
    }
    println!(
        "  {} sharing: faults {}, swap-outs {}, swap-ins {}, frontswap stores {} loads {}, disk writes {} reads {}, over budget {}",
        r.spec.sharing.name(),
        s.faults,
        s.swapouts,
        s.swapins,
        s.frontswap_stores,
        s.frontswap_loads,
        s.disk_writes,
        s.disk_reads,
        s.over_budget_steps
    );
    assert_eq!(r.workers.len(), CPUS, "every CPU ran a worker");
    assert_eq!(r.mismatches(), 0, "every owned byte came back as written");
    assert!(r.finished.error.is_none(), "teardown: {:?}", r.finished.error);
    assert!(s.swapouts > 0 && s.swapins > 0, "the region was swapped");
    let after = r.finished.tmem_after.expect("the run had tmem");
    assert_eq!(after.stored_pages, 0, "tmem empty after teardown");
    assert_eq!(s.slots_used, 0, "every swap slot free after teardown");
    let expected =
        CPUS as u64 * (if r.spec.sharing == Sharing::Shared { REGION } else { REGION / CPUS as u64 } + 2 * REGION);
    assert_eq!(r.accesses(), expected, "every worker made its accesses");
}

fn shared_swap_region() {
    let r = swap_smp::run(&smp_spec(Sharing::Shared)).unwrap_or_else(|e| panic!("shared run: {e}"));
    check_run(&r);
    // Several CPUs on each page: reclaim unmapped pages other CPUs had cached, so shootdowns were sent.
    assert!(zkernel::arch::tlb::stats().shootdowns > 0, "no TLB shootdown was needed?");
}

fn split_swap_region() {
    let r = swap_smp::run(&smp_spec(Sharing::Split)).unwrap_or_else(|e| panic!("split run: {e}"));
    check_run(&r);
}

// ------------------------------------------------------------------------------------------------
// A write racing with reclaim of its page
// ------------------------------------------------------------------------------------------------

/// The page the writer hammers, and the counter it wrote last (published after the write completed).
const RACE_PAGE: u64 = 5;
static LAST_WRITTEN: AtomicU64 = AtomicU64::new(0);
static STOP: AtomicBool = AtomicBool::new(false);
static WRITER_FAULTED: AtomicU64 = AtomicU64::new(0);
const RECLAIMS: u64 = 300;

fn racer(cpu: usize) {
    let region = zkernel::swap::region().expect("installed");
    if cpu == 0 {
        // The reclaimer: page the writer's page out again and again; after each, read it back.
        let mut worst = u64::MAX;
        let mut outs = 0;
        for _ in 0..RECLAIMS {
            // Let the writer get a few writes in through its (fresh) translation first.
            let seen = LAST_WRITTEN.load(Ordering::SeqCst);
            while LAST_WRITTEN.load(Ordering::SeqCst) < seen + 3 {
                core::hint::spin_loop();
            }
            if zkernel::swap::reclaim_page(RACE_PAGE).expect("reclaim") {
                outs += 1;
            }
            let done_before = LAST_WRITTEN.load(Ordering::SeqCst);
            // One 8-byte load: a byte copy could see half of the writer's store in flight (a torn value,
            // not a lost write — the first version of this test read with a copy and saw one).
            let v = region.read_u64(RACE_PAGE, 0).expect("read back");
            // The page holds at least the last write that completed before this read began.
            if v < done_before {
                worst = worst.min(v);
                println!("  LOST: page holds {v}, but {done_before} had been written");
            }
        }
        STOP.store(true, Ordering::SeqCst);
        RACE_OUTS.store(outs, Ordering::SeqCst);
        RACE_LOST.store(u64::from(worst != u64::MAX), Ordering::SeqCst);
    } else if cpu == 1 {
        let faults_before = zkernel::swap::stats().map_or(0, |s| s.faults);
        let mut v = 0u64;
        while !STOP.load(Ordering::SeqCst) {
            v += 1;
            region.write_u64(RACE_PAGE, 0, v).expect("write");
            LAST_WRITTEN.store(v, Ordering::SeqCst);
        }
        WRITER_FAULTED.store(zkernel::swap::stats().map_or(0, |s| s.faults) - faults_before, Ordering::SeqCst);
    }
}

static RACE_OUTS: AtomicU64 = AtomicU64::new(0);
static RACE_LOST: AtomicU64 = AtomicU64::new(0);

fn write_lands_before_unmap_or_after_swapin() {
    let mut spec = smp_spec(Sharing::Shared);
    spec.swap.region_pages = 16;
    spec.swap.budget_pages = 64;
    // Both dispositions of the page at reclaim: written out (dirty) and dropped with its kept copy
    // (clean) — a lost dirty bit would take the second path with new bytes in the frame.
    zkernel::swap::install(spec.swap).expect("swap installs");
    let region = zkernel::swap::region().expect("installed");
    region.write_at(RACE_PAGE, 0, &0u64.to_le_bytes()).expect("first touch");
    drop(region);
    let ran = smp::run_on_first(2, racer);
    let finished = zkernel::swap::uninstall().expect("installed");
    let (outs, lost) = (RACE_OUTS.load(Ordering::SeqCst), RACE_LOST.load(Ordering::SeqCst));
    let last = LAST_WRITTEN.load(Ordering::SeqCst);
    let s = finished.stats;
    println!(
        "  {RECLAIMS} reclaims of the written page ({outs} swapped it out), {last} writes by cpu1, {} faults meanwhile; \
         swap-outs {} (clean {}), swap-ins {}, shootdowns so far {}",
        WRITER_FAULTED.load(Ordering::SeqCst),
        s.swapouts,
        s.clean_reclaims_saved,
        s.swapins,
        zkernel::arch::tlb::stats().shootdowns
    );
    assert_eq!(ran, 2);
    assert_eq!(lost, 0, "a write was lost");
    assert!(finished.error.is_none(), "{:?}", finished.error);
    assert!(outs >= RECLAIMS / 2, "the page was reclaimed only {outs} times");
    assert!(WRITER_FAULTED.load(Ordering::SeqCst) > 0, "the writer never faulted: no race was made");
}

// ------------------------------------------------------------------------------------------------
// The file workload on every CPU
// ------------------------------------------------------------------------------------------------

fn files_on_every_cpu() {
    let spec = FileSpec {
        cache_pages: 96,
        set_factor: 4,
        cleancache: Some(Backend::Zsmalloc),
        tmem_limit_pages: 4096,
        ops: 160,
        invalidate_every: 16,
        seed: 5,
        algorithm: Algorithm::Lz4,
        cpus: CPUS,
    };
    let r = files::run(&spec).unwrap_or_else(|e| panic!("file run on {CPUS} CPUs: {e}"));
    files::print_run(&r);
    let lock = r.lock.expect("a run on several CPUs reports its page cache lock");
    // One acquisition per page read, per invalidation and per finished operation.
    assert_eq!(lock.acquisitions, r.reads + r.invalidations + spec.ops, "page cache lock acquisitions");
    assert_eq!((r.mismatches, r.stale_hits), (0, 0), "wrong bytes, stale hits");
    assert_eq!(r.invalidations, spec.ops / spec.invalidate_every, "every 16th operation of the run invalidated a file");
    assert!(r.reads >= spec.ops, "{} reads for {} operations", r.reads, spec.ops);
    assert!(r.cache.cleancache_hits > 0, "cleancache served pages");
    let after = r.tmem_after.expect("cleancache ran");
    assert_eq!(after.ephemeral_pages, 0, "tmem empty after umount");
    assert!(!zcache::installed(), "the run removed the zcache it installed");
}

// ------------------------------------------------------------------------------------------------
// Accounting
// ------------------------------------------------------------------------------------------------

fn freed_frames_stay_poisoned() {
    for owner in [Owner::WORKLOAD, Owner::POOL] {
        match frames::check_freed_poison(owner) {
            Ok(n) => println!("  {n} freed {owner:?} frames checked: poison intact"),
            Err(pfn) => panic!("freed {owner:?} frame {:#x} was written after its free", pfn.0),
        }
    }
    assert!(frames::check_freed_poison(Owner::WORKLOAD).unwrap() > 0, "no freed workload frame to check");
}

fn frames_and_slots_accounted() {
    let before = FREE_AT_START.load(Ordering::Relaxed);
    let now = free_frames();
    println!("  free frames: {before} before the first run, {now} now");
    // What may stay: heap growth (tmem's tables, worker buffers) and the region's page tables.
    let kept = before.saturating_sub(now);
    assert!(kept <= 160, "{kept} frames did not come back");
    assert_eq!(frames::owned_by(Owner::WORKLOAD), 0, "no workload frame is still held");
    assert_eq!(frames::owned_by(Owner::POOL), 0, "no pool frame is still held");
    assert!(zkernel::swap::stats().is_none() && !zcache::installed(), "everything uninstalled");
}

fn lock_counts() {
    zkernel::init::print_locks();
    let locks = zkernel::init::lock_stats();
    let find = |name: &str| locks.iter().find(|l| l.name == name).copied();
    for name in ["swap", "zcache", "frames.buddy", "frames.pcp", "paging", "tlb"] {
        let l = find(name).unwrap_or_else(|| panic!("lock `{name}` was never taken"));
        assert!(l.contentions <= l.acquisitions);
    }
    if zkernel::arch::lock::CHECKS_ORDER {
        assert!(zkernel::arch::lock::order_checks() > 0, "debug builds check the lock order");
    } else {
        // `cargo xtask test --release`: the lock-order checker is compiled out (docs/reliability.md).
        println!("  SKIPPED (release build): the lock-order check");
        assert_eq!(zkernel::arch::lock::order_checks(), 0);
    }
}
