//! frontswap on real page faults: a Zipf workload over a region 3× the resident budget, with the perl
//! sample as page contents, runs to the end with every page checksummed on every access, in three
//! configurations — tmem off (all swap I/O to the virtio-blk disk), tmem with zsmalloc, tmem with zbud —
//! and the tmem runs must need fewer disk I/Os. Then: a tmem limit so small that writeback runs, fault
//! injection (every 7th pool/workload frame allocation fails, or one in 7 at random; the random
//! schedule's own properties; zram under the random one, where it fits and where it does not), a swap
//! device too small (out of swap is reported and no page is lost), and every frame and slot given back.
#![no_std]
#![no_main]

extern crate alloc;

use core::sync::atomic::{AtomicU64, Ordering};

use compress::Algorithm;
use frame::Owner;
use swap::CacheMode;
use swap::Pattern;
use tmem::Backend;
use zkernel::harness::testing::Case;
use zkernel::init::facts;
use zkernel::mm::frames;
use zkernel::println;
use zkernel::swap::{Device, MemMode, SwapConfig};
use zkernel::workload::swap::print_run;
use zkernel::workload::swap_run::{PageSource, RunResult, RunSpec, run};

zkernel::test_kernel!(
    "frontswap",
    &[
        Case::returns("tmem_off_all_io_to_disk", tmem_off_all_io_to_disk),
        Case::returns("tmem_zsmalloc_fewer_ios", tmem_zsmalloc_fewer_ios),
        Case::returns("tmem_zbud_fewer_ios", tmem_zbud_fewer_ios),
        Case::returns("sequential_and_random_patterns", sequential_and_random_patterns),
        Case::returns("full_tmem_writes_back_oldest", full_tmem_writes_back_oldest),
        Case::returns("fault_injection_loses_nothing", fault_injection_loses_nothing),
        Case::returns(
            "random_frame_faults_are_one_in_n_and_repeatable",
            random_frame_faults_are_one_in_n_and_repeatable
        ),
        Case::returns("zram_survives_random_frame_faults", zram_survives_random_frame_faults),
        Case::returns("out_of_swap_is_reported", out_of_swap_is_reported),
        Case::returns("fixed_budget_mode_puts_the_pool_on_top", fixed_budget_mode_puts_the_pool_on_top),
        Case::returns("swap_cache_saves_clean_reclaims", swap_cache_saves_clean_reclaims),
        Case::returns("zram_as_the_swap_device", zram_as_the_swap_device),
        Case::returns("zsmalloc_fragmentation_stays_near_its_floor", zsmalloc_fragmentation_stays_near_its_floor),
        Case::returns("frames_come_back", frames_come_back),
    ]
);

const BUDGET: u64 = 256;
const REGION: u64 = 3 * BUDGET;
const ACCESSES: u64 = 4 * REGION;

/// Free frames before the first run (the frame count every run must return to).
static FREE_AT_START: AtomicU64 = AtomicU64::new(0);
/// Disk I/Os of the tmem-off run.
static IO_OFF: AtomicU64 = AtomicU64::new(0);

fn sample() -> PageSource {
    let r = facts().ramdisk.expect("xtask attaches the perl sample as this kernel's ramdisk");
    assert_eq!(r.verified, Some(true), "the ramdisk's checksum matches xtask's");
    PageSource::Sample(r.bytes().as_chunks::<4096>().0)
}

/// A run at equal memory: resident pages + pool frames ≤ BUDGET, the pool capped at 20 % of it
/// (zswap's default max_pool_percent), the swap cache on.
fn spec(tmem: Option<Backend>, pattern: Pattern) -> RunSpec {
    RunSpec {
        swap: SwapConfig {
            region_pages: REGION,
            budget_pages: BUDGET,
            mode: MemMode::Equal,
            device: Device::Disk,
            cache: CacheMode::Keep,
            tmem,
            tmem_limit_pages: BUDGET / 5,
            slots: 4 * REGION,
            algorithm: Algorithm::Lz4,
        },
        pattern,
        accesses: ACCESSES,
        write_every: 4,
        seed: 7,
        source: sample(),
    }
}

fn free_frames() -> u64 {
    frames::drain_pcp();
    frames::stats().free
}

/// Run, print, and check what every run must satisfy: no mismatch, zero-filled fresh pages, the
/// counters adding up, and nothing left behind.
fn checked(spec: &RunSpec) -> RunResult {
    if FREE_AT_START.load(Ordering::Relaxed) == 0 {
        FREE_AT_START.store(free_frames(), Ordering::Relaxed);
    }
    let r = run(spec).unwrap_or_else(|e| panic!("swap run failed: {e}"));
    print_run(&r);
    let s = &r.stats;
    assert_eq!(r.mismatches, 0, "pages came back changed");
    assert_eq!(r.dirty_zero_fills, 0, "a fresh page was not zero-filled");
    assert_eq!(r.accesses, REGION + spec.accesses);
    assert_eq!(s.zero_fills, REGION, "every page is faulted in fresh exactly once");
    assert_eq!(s.faults, s.zero_fills + s.swapins);
    // Every swap-out is a store, a disk write, a zram write, or a clean page whose copy was kept.
    if spec.swap.device == Device::Zram {
        assert_eq!(s.swapouts, s.zram_writes + s.clean_reclaims_saved);
        assert_eq!(s.swapins, s.zram_reads);
        assert_eq!(s.io(), 0, "zram is the swap device: no disk I/O");
    } else if spec.swap.tmem.is_none() {
        assert_eq!(s.swapouts, s.disk_writes + s.clean_reclaims_saved);
        assert_eq!(s.disk_reads, s.swapins);
    } else {
        assert_eq!(s.swapouts, s.frontswap_stores + s.frontswap_refused + s.clean_reclaims_saved);
        assert_eq!(s.swapins, s.frontswap_loads + s.disk_reads);
    }
    if s.out_of_swap == 0 {
        match spec.swap.mode {
            // Resident pages + pool frames ≤ N at the end of every reclaim (the peak over all of them).
            MemMode::Equal => {
                let n = spec.swap.budget_pages;
                assert!(s.peak_mem_pages <= n, "resident + pool reached {} of {n}", s.peak_mem_pages);
                assert_eq!(s.over_budget_steps, 0, "a step went over the memory size");
                if spec.swap.device == Device::Disk {
                    assert!(s.peak_pool_pages <= spec.swap.tmem_limit_pages + 4, "tmem over its cap");
                }
            }
            MemMode::Fixed => {
                assert_eq!(s.peak_resident, spec.swap.budget_pages, "the resident set stays within its budget")
            }
        }
        assert!(s.swapouts >= REGION - spec.swap.budget_pages);
    }
    assert_eq!(s.slots_used, 0, "teardown frees every slot");
    assert_eq!(frames::owned_by(Owner::WORKLOAD), 0, "teardown frees every workload frame");
    assert_eq!(frames::owned_by(Owner::POOL), 0, "teardown empties every tmem pool");
    r
}

fn tmem_off_all_io_to_disk() {
    let r = checked(&spec(None, Pattern::Zipf));
    let s = &r.stats;
    assert!(r.tmem.is_none());
    assert_eq!((s.frontswap_stores, s.frontswap_loads, s.frontswap_refused), (0, 0, 0));
    assert_eq!(s.disk_writes + s.clean_reclaims_saved, s.swapouts, "a swap-out writes unless its copy was kept");
    assert_eq!(s.disk_reads, s.swapins);
    println!(
        "  tmem off: {} disk reads, {} disk writes ({} clean re-reclaims cost no write)",
        s.disk_reads, s.disk_writes, s.clean_reclaims_saved
    );
    IO_OFF.store(s.io(), Ordering::Relaxed);
}

fn tmem_run(backend: Backend) {
    let off = IO_OFF.load(Ordering::Relaxed);
    assert!(off > 0, "the tmem-off case runs first");
    let r = checked(&spec(Some(backend), Pattern::Zipf));
    let s = &r.stats;
    let t = r.tmem.expect("tmem stats");
    assert!(s.frontswap_stores > 0 && s.frontswap_loads > 0);
    assert!(t.stored_pages > 0, "tmem held pages when the workload ended");
    let after = r.tmem_after.expect("tmem stats");
    assert_eq!((after.stored_pages, after.pool_pages), (0, 0), "teardown empties tmem and its pools");
    println!(
        "  tmem {backend:?}: {} disk reads, {} disk writes; {} I/Os instead of {off}",
        s.disk_reads,
        s.disk_writes,
        s.io()
    );
    // At equal memory the pool's frames come out of the resident set: compression must still win on the
    // perl pages (about 3:1), but by less than with a pool on top (fixed_budget_mode_puts_the_pool_on_top).
    assert!(s.io() < off, "tmem must avoid disk I/O at equal memory: {} vs {off}", s.io());
}

fn tmem_zsmalloc_fewer_ios() {
    tmem_run(Backend::Zsmalloc);
}

fn tmem_zbud_fewer_ios() {
    tmem_run(Backend::Zbud);
}

fn sequential_and_random_patterns() {
    for pattern in [Pattern::Sequential, Pattern::Random] {
        let off = checked(&spec(None, pattern)).stats.io();
        let on = checked(&spec(Some(Backend::Zsmalloc), pattern)).stats.io();
        assert!(on < off, "{pattern:?}: {on} vs {off}");
    }
}

fn full_tmem_writes_back_oldest() {
    let mut sp = spec(Some(Backend::Zsmalloc), Pattern::Zipf);
    sp.swap.tmem_limit_pages = 48;
    let r = checked(&sp);
    let s = &r.stats;
    let t = r.tmem.expect("tmem stats");
    assert!(s.written_back_pages > 0, "a tmem of 48 pages must write back");
    assert_eq!(t.written_back_pages, s.written_back_pages);
    assert!(s.peak_tmem_pages <= 48 + 4, "tmem went {} pages over its limit of 48", s.peak_tmem_pages);
}

fn fault_injection_loses_nothing() {
    frames::set_fail_every(7);
    let r = checked(&spec(Some(Backend::Zsmalloc), Pattern::Zipf));
    let injected = frames::injected_failures();
    frames::set_fail_every(0);
    let s = &r.stats;
    println!(
        "  fault injection: {injected} frame allocations failed, {} fault retries, {} stores refused",
        s.alloc_failures, s.frontswap_refused
    );
    assert!(injected > 0);
    assert!(s.alloc_failures > 0, "workload frame allocations failed and were retried");
    assert!(s.frontswap_refused > 0, "pool frame allocations failed and the stores went to disk");
}

/// The random schedule (`fail_frame_schedule=random`): about one workload frame allocation in N fails,
/// the same ones again for the same seed, others for another seed; and nothing else is counted.
fn random_frame_faults_are_one_in_n_and_repeatable() {
    const CALLS: usize = 4000;
    const N: u64 = 7;
    // Which of CALLS workload frame allocations fail under the schedule armed now.
    let draw = || -> alloc::vec::Vec<bool> {
        (0..CALLS).map(|_| zkernel::mm::frames::OwnedFrame::alloc(Owner::WORKLOAD).is_err()).collect()
    };
    let pattern = |seed: u64| {
        frames::set_fail_random(N, seed);
        let failed = draw();
        let injected = frames::injected_failures();
        frames::set_fail_every(0);
        assert_eq!(injected, failed.iter().filter(|f| **f).count() as u64, "every failure was an injected one");
        failed
    };
    let (a, again, other) = (pattern(42), pattern(42), pattern(43));
    let n = a.iter().filter(|f| **f).count() as u64;
    // 4000 draws at 1/7: mean 571, standard deviation 22; ±20 % is more than 5 deviations.
    let mean = CALLS as u64 / N;
    println!(
        "  random 1 in {N}: {n} of {CALLS} allocations failed (mean {mean}); seed 43: {}",
        other.iter().filter(|f| **f).count()
    );
    assert!(n * 5 > mean * 4 && n * 5 < mean * 6, "{n} failures, expected about {mean}");
    let differ = |x: &[bool], y: &[bool]| x.iter().zip(y).filter(|(p, q)| p != q).count();
    assert_eq!(differ(&a, &again), 0, "the same seed fails the same allocations");
    // Two independent draws at 1/7 differ at each call with chance 2·(1/7)·(6/7), about 980 of 4000.
    let d = differ(&a, &other);
    println!("  seeds 42 and 43 differ at {d} of {CALLS} allocations");
    assert!(d > CALLS / 6, "seeds 42 and 43 fail nearly the same allocations ({d} differ)");
    // Periodic for contrast: exactly every Nth.
    frames::set_fail_every(N);
    let periodic = draw();
    frames::set_fail_every(0);
    let off_schedule = periodic.iter().enumerate().filter(|(i, f)| **f != (*i as u64 + 1).is_multiple_of(N)).count();
    assert_eq!(off_schedule, 0, "every Nth fails, exactly");
}

/// zram as the swap device while one pool or workload frame allocation in 7 fails at random, at two sizes:
/// - where zram fits (half the region as memory, as `zram_as_the_swap_device`): a store whose pool finds
///   no frame is a failed swap-out passed over for the next victim, so the run still fits: no step over;
/// - at the swap demo's tight size (`swap_mem=64`, a region of 192 pages), where zram does not fit and its
///   pool sits at its limit: a reclaim whose eight failures are all pool refusals is zram out of memory,
///   not a broken device, so the step goes over and the run goes on. Before that rule this run failed with the pool's error.
///
/// Nothing fails and nothing is lost in either. The periodic schedule (every 7th) can fail the tight run:
/// each of a fault's nine tries made exactly 7 allocations, so every try's own was a 7th
/// (docs/reliability.md, "Frame faults at a full zram").
fn zram_survives_random_frame_faults() {
    for (region, budget, accesses, fits) in [(REGION, REGION / 2, ACCESSES, true), (192, 64, 768, false)] {
        let mut sp = spec(None, Pattern::Zipf);
        sp.swap.device = Device::Zram;
        sp.swap.region_pages = region;
        sp.swap.budget_pages = budget;
        sp.swap.slots = 4 * region;
        sp.accesses = accesses;
        sp.seed = 42;
        frames::set_fail_random(7, 42);
        let r = run(&sp);
        let injected = frames::injected_failures();
        frames::set_fail_every(0);
        let r = r.unwrap_or_else(|e| panic!("memory {budget}: swap run failed: {e}"));
        print_run(&r);
        let s = &r.stats;
        println!(
            "  zram at memory {budget} of {region}, 1 frame allocation in 7 failing at random: {injected} failed, \
             {} fault retries, {} swap-outs failed, {} steps over memory ({} of them zram out of memory); \
             mismatches {}, lost {}",
            s.alloc_failures, s.swapout_failures, s.over_budget_steps, s.zram_oom_steps, r.mismatches, r.pages_lost
        );
        assert!(injected > 20, "memory {budget}: only {injected} injected failures");
        assert!(s.alloc_failures > 0, "memory {budget}: workload frame allocations failed and were retried");
        assert!(s.swapout_failures > 0, "memory {budget}: zram's pool refused stores");
        assert_eq!(
            (r.mismatches, r.pages_lost, r.lost_accesses, r.dirty_zero_fills),
            (0, 0, 0, 0),
            "memory {budget}: no access failed"
        );
        assert_eq!(r.accesses, region + accesses);
        assert_eq!(s.over_budget_steps == 0, fits, "memory {budget}: {} steps over", s.over_budget_steps);
        // The rule under test ran where zram is full, and only there.
        assert_eq!(
            s.zram_oom_steps > 0,
            !fits,
            "memory {budget}: {} reclaims ended zram out of memory",
            s.zram_oom_steps
        );
        assert_eq!(
            (s.io(), s.swapouts),
            (0, s.zram_writes + s.clean_reclaims_saved),
            "memory {budget}: every swap-out went to zram or kept its copy"
        );
        let after = r.zram_after.expect("zram after teardown");
        assert_eq!((after.orig_data_size, after.mem_used_total), (0, 0), "teardown empties zram");
    }
}

fn out_of_swap_is_reported() {
    let mut sp = spec(None, Pattern::Random);
    sp.swap.slots = 100;
    let r = checked(&sp);
    let s = &r.stats;
    assert!(s.out_of_swap > 0, "100 slots cannot hold {} swapped pages", REGION - BUDGET);
    assert_eq!(s.peak_slots, 100);
    assert!(s.peak_resident > BUDGET, "victims stay resident over the budget");
    assert!(s.over_budget_steps > 0, "the steps that went over are counted");
}

/// The old demo's mode, kept under its name: the pool comes on top of a resident budget. tmem then avoids
/// far more I/O than at equal memory, because it is given extra memory.
fn fixed_budget_mode_puts_the_pool_on_top() {
    let off = IO_OFF.load(Ordering::Relaxed);
    let mut sp = spec(Some(Backend::Zsmalloc), Pattern::Zipf);
    sp.swap.mode = MemMode::Fixed;
    sp.swap.tmem_limit_pages = 4096;
    let r = checked(&sp);
    let s = &r.stats;
    println!("  fixed budget, tmem zsmalloc on top: {} I/Os instead of {off}", s.io());
    // The perl pages compress about 3:1; with the pool on top almost every swap-out fits.
    assert!(s.io() * 4 < off, "tmem on top avoided less than 75 % of the I/O: {} vs {off}", s.io());
}

/// The swap cache: a page swapped in and only read keeps its slot and copy, so reclaiming it again costs
/// no store and no write. zswap's exclusive loads give frontswap copies up at load (disk copies stay).
fn swap_cache_saves_clean_reclaims() {
    let keep = checked(&spec(Some(Backend::Zsmalloc), Pattern::Zipf)).stats;
    let mut sp = spec(Some(Backend::Zsmalloc), Pattern::Zipf);
    sp.swap.cache = CacheMode::ExclusiveLoads;
    let exclusive = checked(&sp).stats;
    let mut sp = spec(None, Pattern::Zipf);
    sp.swap.cache = CacheMode::Off;
    let off = checked(&sp).stats;
    println!(
        "  clean re-reclaims saved: keep {} (dirtied {}), exclusive loads {}, no cache {}",
        keep.clean_reclaims_saved, keep.dirtied_after_swapin, exclusive.clean_reclaims_saved, off.clean_reclaims_saved
    );
    assert!(keep.clean_reclaims_saved > 0, "read-only swap-ins reclaimed again must cost nothing");
    assert!(keep.swapins_kept > 0);
    assert_eq!((off.clean_reclaims_saved, off.swapins_kept), (0, 0), "no swap cache, nothing kept");
    assert!(exclusive.clean_reclaims_saved < keep.clean_reclaims_saved, "exclusive loads keep fewer copies");
}

/// zram as the swap device at equal memory: no disk I/O at all, every page intact, and the device's
/// frames charged against the same memory.
fn zram_as_the_swap_device() {
    let mut sp = spec(None, Pattern::Zipf);
    sp.swap.device = Device::Zram;
    // zram has no disk behind it: the pages it holds (about a third of a frame each) must fit beside the
    // resident set, so this run gets half the region as its memory.
    sp.swap.budget_pages = REGION / 2;
    let r = checked(&sp);
    let s = &r.stats;
    let z = r.zram.expect("zram's mm_stat");
    println!(
        "  zram: {} writes, {} reads, {} refused; mem_used_total {} pages at the end, peak pool {} of memory {}",
        s.zram_writes,
        s.zram_reads,
        s.zram_refused,
        z.mem_used_total / 4096,
        s.peak_pool_pages,
        sp.swap.budget_pages
    );
    assert!(s.zram_writes > 0 && s.zram_reads > 0);
    let after = r.zram_after.expect("zram after teardown");
    assert_eq!((after.orig_data_size, after.mem_used_total), (0, 0), "teardown empties zram");
}

/// The tight churn at equal memory (a pool capped at 20 % of N writes back all the time), sampled every
/// 1000 accesses: zsmalloc's fragmentation (free bytes in partly used zspages ÷ pool bytes) stays within
/// 5 percentage points of its floor (what a full compaction would leave: one partly used zspage per size
/// class), because tmem compacts under pressure as Linux's zs_shrinker does. zbud, which cannot compact,
/// is sampled beside it: pool pages per stored page over the run, for both.
fn zsmalloc_fragmentation_stays_near_its_floor() {
    for backend in [Backend::Zsmalloc, Backend::Zbud] {
        let r = checked(&spec(Some(backend), Pattern::Zipf));
        assert!(r.samples.len() >= 3, "samples every 1000 accesses");
        let mut line = alloc::string::String::new();
        for smp in &r.samples {
            let per = smp.pool_pages as f64 / smp.stored_pages.max(1) as f64;
            match (backend, smp.fragmentation) {
                (Backend::Zsmalloc, Some(f)) => {
                    let (frag, floor) = (f.percent_milli().unwrap_or(0), f.floor_percent_milli().unwrap_or(0));
                    line.push_str(&alloc::format!(
                        " {}:{}.{}%/{}.{}%/{per:.2}",
                        smp.access,
                        frag / 1000,
                        frag % 1000 / 100,
                        floor / 1000,
                        floor % 1000 / 100
                    ));
                    assert!(
                        frag <= floor + 5000,
                        "at access {}: fragmentation {frag} m% is more than 5 points over its floor {floor} m%",
                        smp.access
                    );
                }
                (Backend::Zsmalloc, None) => panic!("a zsmalloc pool reports its fragmentation"),
                _ => line.push_str(&alloc::format!(" {}:{per:.2}", smp.access)),
            }
        }
        println!("  {backend:?} samples (access: fragmentation/floor/pool pages per stored page):{line}");
    }
}

fn frames_come_back() {
    // Every run checked its workload and pool frames; here the free count itself, against the first
    // run's start: only the heap's growth (tmem's tables, the compression stream) and the region's page
    // tables may have stayed.
    let before = FREE_AT_START.load(Ordering::Relaxed);
    let now = free_frames();
    println!("  free frames: {before} before the first run, {now} now");
    let kept = before.saturating_sub(now);
    assert!(kept <= 128, "{kept} frames did not come back");
}
