//! `workload=soak` (`cargo xtask soak [--minutes M]`): random swap, frontswap, cleancache and zram work
//! for `soak_seconds`, with device and frame faults injected throughout, every page checked.
//!
//! # Rounds
//!
//! The soak repeats five kinds of round until its time is up, each with its own faults:
//!
//! | round | work | faults injected | must hold |
//! |---|---|---|---|
//! | `swap-write` | the swap workload (tmem on zsmalloc or zbud in front of the disk, random pattern) | every 7th disk write fails; every 13th pool or workload frame allocation fails; in every round, the first and every 5th tmem store's admission against the heap or page table for a mapping fails (the store is refused, the fault retries) | 0 mismatches, 0 pages lost (a failed write keeps its page) |
//! | `swap-read` | the same | every 41st disk read fails | 0 mismatches; pages lost = reads failed, exactly (each failed swap-in loses its one page) |
//! | `tmem` | frontswap put/get/flush on every CPU at once, each CPU on its own keys of one shared zsmalloc and one zbud pool | every 13th pool frame allocation fails | every hit returns the bytes last put; a key put and not flushed always hits |
//! | `zram` | random writes, reads and discards on the zram device (LZ4, zram's own compressor here) | every 13th pool frame allocation fails | every read returns what was last written (a refused write keeps the old bytes) |
//! | `cleancache` | the file workload (page cache of 32 pages) with cleancache on zsmalloc or zbud, a file invalidated every 8 operations | every 13th pool frame allocation fails | every page read matches the file table's truth; no invalidated page comes from cleancache |
//!
//! At the end: every frame back (the free count where it started, give or take the heap's growth), no
//! pool or workload frame held, tmem and zram gone. A run that breaks any of it lists the reason in
//! `failures` and exits with failure.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use compress::Algorithm;
use fnv1a::fnv1a64;
use frame::Owner;
use pagedata::Rng;
use swap::{CacheMode, Pattern};
use tmem::Backend;
use zstats::{Report, SoakReport};

use super::report::Failures;
use super::swap_run::{PageSource, RunSpec, SwapRun};
use crate::arch::cpu::MAX_CPUS;
use crate::arch::{smp, tsc};
use crate::drivers::virtio_blk::{self, FaultKind, FaultOp, Injection};
use crate::init::BootFacts;
use crate::mm::frames;
use crate::println;
use crate::swap::{Device, MemMode, SwapConfig, SwapError};
use crate::zcache::{self, frontswap};

/// Frame allocations that fail on purpose during every round: one in this many.
const FRAME_FAIL_EVERY: u64 = 13;
/// Heap admissions (a tmem store's promise of metadata memory) and page-table allocations that fail on
/// purpose (`frames::set_meta_fail_every`): the first of every round, then one in this many.
const META_FAIL_EVERY: u64 = 5;
const SWAP_BUDGET: u64 = 96;
const SWAP_REGION: u64 = 3 * SWAP_BUDGET;
const TMEM_OPS_PER_CPU: u64 = 3000;
const TMEM_KEYS: u64 = 48;
const ZRAM_SLOTS: u64 = 256;
const ZRAM_OPS: u64 = 3000;

/// Run the soak and fill the report's `soak` member.
pub fn run_soak(facts: &BootFacts, report: &mut Report, failures: &mut Failures) {
    let seconds = facts.settings.soak_seconds();
    let source = super::swap::source(facts);
    let alg = super::pools::algorithm(&facts.settings);
    let free_at_start = free_frames();
    let deadline = tsc::rdtsc() + tsc::hz().saturating_mul(seconds);
    let mut s = SoakReport { seconds, cpus: smp::online_count() as u64, ..SoakReport::default() };
    println!(
        "soak: {seconds} s of swap, tmem, zram and cleancache rounds on {} CPUs; faults: every 7th disk write or 41st read, \
         every {FRAME_FAIL_EVERY}th pool/workload frame, every {META_FAIL_EVERY}th heap admission or page table",
        s.cpus
    );
    let mut round = 0u64;
    // A line a minute (guest time), so a long soak shows it is alive and how far it got.
    let minute = tsc::hz().saturating_mul(60);
    let mut next_progress = tsc::rdtsc().saturating_add(minute);
    while tsc::rdtsc() < deadline && failures.0.len() < 10 {
        if tsc::rdtsc() >= next_progress {
            next_progress = next_progress.saturating_add(minute);
            println!(
                "soak: {} rounds, {} operations, {} pages verified so far; pages lost {} (expected {}), mismatches {}",
                s.rounds, s.operations, s.pages_verified, s.pages_lost, s.lost_expected, s.mismatches
            );
        }
        let kind = round % 5;
        frames::set_fail_every(FRAME_FAIL_EVERY);
        frames::set_meta_fail_every(META_FAIL_EVERY);
        let r = match kind {
            0 => swap_round(&mut s, source, alg, round, false),
            1 => swap_round(&mut s, source, alg, round, true),
            2 => tmem_round(&mut s, source, alg, round),
            3 => zram_round(&mut s, round),
            _ => cleancache_round(&mut s, alg, round),
        };
        s.frame_faults += frames::injected_failures();
        s.meta_faults += frames::meta_injected_failures();
        frames::set_fail_every(0);
        frames::set_meta_fail_every(0);
        if let Err(why) = r {
            failures.add(format!("soak round {round}: {why}"));
        }
        round += 1;
        s.rounds = round;
    }
    let now = free_frames();
    for owner in [Owner::POOL, Owner::WORKLOAD] {
        let held = frames::owned_by(owner);
        failures.nonzero(held, || format!("soak: {held} {owner:?} frames still held at the end"));
    }
    if free_at_start.saturating_sub(now) > 256 {
        failures.add(format!("soak: free frames {free_at_start} at the start, {now} at the end"));
    }
    println!(
        "soak: {} rounds, {} operations, {} pages verified; faults injected: {} disk, {} frame, {} heap/table; \
         pages lost {} (expected {}), mismatches {}",
        s.rounds,
        s.operations,
        s.pages_verified,
        s.device_faults,
        s.frame_faults,
        s.meta_faults,
        s.pages_lost,
        s.lost_expected,
        s.mismatches
    );
    failures.nonzero(s.mismatches, || format!("soak: {} mismatches", s.mismatches));
    if s.pages_lost != s.lost_expected {
        failures
            .add(format!("soak: {} pages lost, but {} reads were failed on purpose", s.pages_lost, s.lost_expected));
    }
    report.soak = Some(s);
}

fn free_frames() -> u64 {
    frames::drain_pcp();
    frames::stats().free
}

fn swap_round(
    s: &mut SoakReport,
    source: PageSource,
    alg: Algorithm,
    round: u64,
    reads: bool,
) -> Result<(), alloc::string::String> {
    let spec = RunSpec {
        swap: SwapConfig {
            region_pages: SWAP_REGION,
            budget_pages: SWAP_BUDGET,
            mode: MemMode::Equal,
            device: Device::Disk,
            cache: if round % 8 < 4 { CacheMode::ExclusiveLoads } else { CacheMode::Keep },
            tmem: Some(if round % 3 == 0 { Backend::Zbud } else { Backend::Zsmalloc }),
            tmem_limit_pages: SWAP_BUDGET / 5,
            slots: 4 * SWAP_REGION,
            algorithm: alg,
        },
        pattern: Pattern::Random,
        accesses: 4 * SWAP_REGION,
        write_every: 3,
        seed: round,
        source,
    };
    let disk = virtio_blk::disk("swap").ok_or("no swap disk")?;
    let injection = if reads {
        Injection { every: 41, at: 0, kind: FaultKind::Error, op: FaultOp::Read }
    } else {
        Injection { every: 7, at: 0, kind: FaultKind::Error, op: FaultOp::Write }
    };
    disk.lock().set_injection(Some(injection));
    let mut run = SwapRun::start(&spec).map_err(|e| format!("swap start: {e}"))?;
    while run.step() {}
    let p = run.progress();
    let injected = disk.lock().injection().injected;
    disk.lock().set_injection(None);
    let lost = crate::swap::stats().map_or(0, |st| st.pages_lost);
    let end = run.finish();
    s.operations += p.accesses;
    s.pages_verified += p.accesses - p.lost_accesses;
    s.device_faults += injected;
    s.mismatches += p.mismatches + p.dirty_zero_fills;
    s.pages_lost += lost;
    if reads {
        s.lost_expected += injected;
    }
    match end {
        Ok(_) => Ok(()),
        // A failed swap-out is reported at the end of its run: expected when writes fail.
        Err(SwapError::Disk(_)) if !reads => Ok(()),
        Err(e) => Err(format!("swap run: {e}")),
    }
}

/// Each CPU's tally of one tmem round.
static TMEM_TALLY: [[AtomicU64; 3]; MAX_CPUS] = [const { [const { AtomicU64::new(0) }; 3] }; MAX_CPUS];
static TMEM_ROUND: AtomicU64 = AtomicU64::new(0);
static TMEM_SOURCE: spin::Mutex<Option<PageSource>> = spin::Mutex::new(None);

fn tmem_round(s: &mut SoakReport, source: PageSource, alg: Algorithm, round: u64) -> Result<(), alloc::string::String> {
    zcache::set_tunables(zcache::Tunables::ZCACHE);
    zcache::install(4096, alg).map_err(|e| format!("zcache: {e}"))?;
    let cpus = smp::online_count() as u64;
    let slots = cpus * TMEM_KEYS;
    let r = (|| {
        frontswap::init(1, slots, Backend::Zsmalloc).map_err(|e| format!("frontswap: {e}"))?;
        frontswap::init(2, slots, Backend::Zbud).map_err(|e| format!("frontswap: {e}"))?;
        *TMEM_SOURCE.lock() = Some(source);
        TMEM_ROUND.store(round, Ordering::SeqCst);
        for row in &TMEM_TALLY {
            for c in row {
                c.store(0, Ordering::SeqCst);
            }
        }
        smp::run_on_all(tmem_worker);
        for row in &TMEM_TALLY {
            s.operations += row[0].load(Ordering::SeqCst);
            s.pages_verified += row[1].load(Ordering::SeqCst);
            s.mismatches += row[2].load(Ordering::SeqCst);
        }
        for ty in [1, 2] {
            frontswap::invalidate_area(ty).map_err(|e| format!("swapoff: {e}"))?;
        }
        Ok(())
    })();
    if zcache::force_uninstall().is_none() {
        return Err("zcache stayed installed".into());
    }
    r
}

/// One CPU's share of a tmem round: puts, gets and flushes on its own keys of both pools.
fn tmem_worker(cpu: usize) {
    let Some(source) = *TMEM_SOURCE.lock() else { return };
    let cpus = smp::online_count() as u64;
    let mut rng = Rng::new(TMEM_ROUND.load(Ordering::SeqCst) * 1000 + cpu as u64);
    let mut held = vec![None::<u64>; 2 * TMEM_KEYS as usize];
    let mut page = [0u8; 4096];
    let mut sink = |_: u64, _: &[u8; 4096]| false;
    let (mut ops, mut verified, mut bad) = (0, 0, 0);
    for op in 0..TMEM_OPS_PER_CPU {
        let k = rng.below(2 * TMEM_KEYS as usize);
        let ty = 1 + (k as u64 / TMEM_KEYS) as u8;
        let offset = cpu as u64 + cpus * (k as u64 % TMEM_KEYS);
        ops += 1;
        match rng.below(10) {
            0..=3 => {
                source.fill(op + cpu as u64 * 7919, &mut page);
                page[..8].copy_from_slice(&(op | (cpu as u64) << 48).to_le_bytes());
                match frontswap::store(ty, offset, &page, &mut sink) {
                    Ok(o) if o.stored => held[k] = Some(fnv1a64(&page)),
                    Ok(_) => {
                        let _ = frontswap::invalidate_page(ty, offset);
                        held[k] = None;
                    }
                    Err(_) => bad += 1,
                }
            }
            4..=7 => match frontswap::load(ty, offset, &mut page) {
                Ok(true) => {
                    verified += 1;
                    bad += u64::from(held[k] != Some(fnv1a64(&page)));
                }
                Ok(false) => bad += u64::from(held[k].is_some()),
                Err(_) => bad += 1,
            },
            _ => match frontswap::invalidate_page(ty, offset) {
                Ok(()) => held[k] = None,
                Err(_) => bad += 1,
            },
        }
    }
    TMEM_TALLY[cpu][0].store(ops, Ordering::SeqCst);
    TMEM_TALLY[cpu][1].store(verified, Ordering::SeqCst);
    TMEM_TALLY[cpu][2].store(bad, Ordering::SeqCst);
}

fn cleancache_round(s: &mut SoakReport, alg: Algorithm, round: u64) -> Result<(), alloc::string::String> {
    let spec = super::files::FileSpec {
        cache_pages: 32,
        set_factor: 4,
        cleancache: Some(if round % 2 == 0 { Backend::Zsmalloc } else { Backend::Zbud }),
        tmem_limit_pages: 64,
        ops: 40,
        invalidate_every: 8,
        seed: round,
        algorithm: alg,
        cpus: 1,
    };
    let r = super::files::run(&spec).map_err(|e| format!("file run: {e}"))?;
    s.operations += r.reads;
    s.pages_verified += r.reads;
    s.mismatches += r.mismatches + r.stale_hits;
    Ok(())
}

fn zram_round(s: &mut SoakReport, round: u64) -> Result<(), alloc::string::String> {
    crate::zram::install(ZRAM_SLOTS, 0).map_err(|e| format!("zram: {e}"))?;
    let mut rng = Rng::new(round);
    let mut held: Vec<u64> = vec![fnv1a64(&[0u8; 4096]); ZRAM_SLOTS as usize];
    let mut page = [0u8; 4096];
    let mut r = Ok(());
    for op in 0..ZRAM_OPS {
        let slot = rng.below(ZRAM_SLOTS as usize);
        s.operations += 1;
        match rng.below(10) {
            0..=4 => {
                pagedata::mixed_page(op + round * ZRAM_OPS, &mut page);
                match crate::zram::write_page(slot as u64, &page) {
                    Ok(()) => held[slot] = fnv1a64(&page),
                    // Refused (no frame): the slot keeps its old bytes.
                    Err(crate::zram::ZramDevError::Zram(_)) => {}
                    Err(e) => {
                        r = Err(format!("zram write: {e}"));
                        break;
                    }
                }
            }
            5..=8 => match crate::zram::read_page(slot as u64, &mut page) {
                Ok(()) => {
                    s.pages_verified += 1;
                    s.mismatches += u64::from(fnv1a64(&page) != held[slot]);
                }
                Err(e) => {
                    r = Err(format!("zram read: {e}"));
                    break;
                }
            },
            _ => {
                if crate::zram::slot_free_notify(slot as u64).is_ok() {
                    held[slot] = fnv1a64(&[0u8; 4096]);
                }
            }
        }
    }
    crate::zram::uninstall();
    r
}
