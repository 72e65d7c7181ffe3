//! Benchmark kernel (run by `cargo xtask bench`, not by `cargo xtask test`): how tmem's store path scales
//! with CPUs. xtask boots it with 4 CPUs (tests/Cargo.toml's `smp` table) under multi-threaded TCG
//! (`multi-threaded-tcg`), and prints its figures as a table (docs/smp.md, "Scaling: tmem stores on 1,
//! 2 and 4 CPUs", explains them).
//!
//! # What one run does
//!
//! | step | CPUs | what |
//! |---|---|---|
//! | install | boot CPU | zcache with LZ4 and a 4096-page limit; one persistent zsmalloc pool, swap type 1 |
//! | warm-up | 4 | every CPU fills its [`KEYS`] keys (`cpu + CPUS·k`), so every timed store below replaces a page |
//! | phase 1, 2, 4 | the first k | each CPU makes the same `bench_stores` stores (kernel option, default 3000) into its own keys, round and round |
//! | check | the same k | each CPU loads back every one of its keys and compares it with the page it stored last |
//! | clean up | boot CPU | swapoff (`invalidate_area`), `zcache::uninstall`: tmem empty, no pool frame left |
//!
//! Each phase is timed on the boot CPU with the TSC, from before `smp::run_on_first(k, …)` hands out
//! the work to after the last CPU finished it (wake-ups included), and prints one line:
//!
//! ```text
//! @@bench {"name":"tmem_store_2cpu","ns":…,"cycles":…,"cpus":2,"stores":6000,"ms":…,"stores_per_s":…,
//!          "ratio":1.234,"zcache_acquisitions":6000,"zcache_contentions":…,"in_store_pct":…,
//!          "in_lock_pct":…,"slowest_store_us":…}
//! ```
//!
//! `ns` is wall time per store over all CPUs (so it falls as CPUs are added, if they help); `ratio` is
//! `stores_per_s` over the 1-CPU phase's; the lock figures are zcache's one lock during that phase only.
//! `in_store_pct` is the share of the phase the CPUs spent inside `frontswap::store`, and `in_lock_pct` the
//! share of the phase zcache's lock was held (its hold time, `arch::lock`): a store compresses with its
//! CPU's stream *before* it takes the lock, so only the allocation, the copy and the indexing are under
//! it (docs/smp.md). On 1 CPU `in_lock_pct` is the serial share of the work, which bounds what more CPUs
//! can give. `slowest_store_us` is the longest single store, lock wait included:
//! the lock counts a wait once, however long; this says how long. Two more lines per phase, for the log
//! only, list the other locks taken, the TLB shootdowns, and each CPU's share and slowest store.
//!
//! # Why every put is a fair sample
//!
//! The pages are the perl sample's (the ramdisk) that are not same-filled and compress with LZ4 to at most
//! 3/4 of a page, each with an 8-byte tag (phase, CPU, store number) written over its start, so no two
//! stores are the same page and each is checked by its tag too. zcache's mean-size and page-count rules
//! are turned off and the limit is far above the ≤ 256 pages stored at once, so nothing is refused: a
//! refused store skips the compression and the pool, and would flatter the figure. The run asserts it.
//!
//! # What must hold (else the kernel fails)
//!
//! * 4 CPUs are up; each phase ran on exactly k CPUs.
//! * Every store was kept (none refused, no error); every key loads back exactly the page stored last.
//! * zcache's lock was taken exactly once per store in the phase (nothing else took it); the per-CPU
//!   stream locks were never contended (each CPU takes only its own).
//! * After swapoff tmem holds no page and no frame.
//!
//! The speed figures are never asserted: under TCG they are the host's, shared with everything it runs.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use compress::Algorithm;
use frame::Owner;
use tmem::Backend;
use zkernel::arch::tsc::{centi_ns, cycles_to_ms, hz, rdtsc};
use zkernel::arch::{smp, tlb};
use zkernel::harness::testing::Case;
use zkernel::init::facts;
use zkernel::mm::frames;
use zkernel::println;
use zkernel::zcache::streams::with_stream;
use zkernel::zcache::{self, frontswap};

zkernel::test_kernel!(
    "bench_smp",
    &[Case::returns("four_cpus_are_up", four_cpus_are_up), Case::returns("measure", measure)]
);

/// CPUs the kernel is booted with (tests/Cargo.toml, `smp`), and the phases: the first k of them.
const CPUS: usize = 4;
const PHASES: [usize; 3] = [1, 2, 4];
/// Keys per CPU (offsets `cpu + CPUS·k`): the kopts minimum of `bench_stores`, so every phase
/// overwrites every key of its CPUs.
const KEYS: u64 = 64;
/// The swap type of the one frontswap pool.
const TY: u8 = 1;
/// tmem's limit in pool frames: far above the ≤ CPUS·KEYS pages stored at once, so none is refused.
const TMEM_LIMIT_PAGES: u64 = 4096;
/// The tag written into the first 8 bytes of every stored page for the warm-up (the phases use 1, 2, 4).
const WARM_UP: usize = 0;

/// Stores per CPU per phase (`bench_stores`), the phase running now (its tag), and the sample's usable
/// pages: the workers are plain `fn(usize)` run from `smp`'s mailboxes, so they read these statics.
static STORES: AtomicU64 = AtomicU64::new(0);
static PHASE: AtomicUsize = AtomicUsize::new(0);
static USABLE: spin::Once<Vec<&'static [u8; 4096]>> = spin::Once::new();

/// Per-CPU outcomes of the last phase (each CPU writes only its own row).
struct Tally {
    stored: AtomicU64,
    refused: AtomicU64,
    errors: AtomicU64,
    checked: AtomicU64,
    mismatches: AtomicU64,
    missing: AtomicU64,
    /// TSC cycles inside `frontswap::store` (lock wait included), and the longest single store.
    in_store: AtomicU64,
    slowest: AtomicU64,
}

static TALLY: [Tally; CPUS] = [const {
    Tally {
        stored: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        checked: AtomicU64::new(0),
        mismatches: AtomicU64::new(0),
        missing: AtomicU64::new(0),
        in_store: AtomicU64::new(0),
        slowest: AtomicU64::new(0),
    }
}; CPUS];

fn four_cpus_are_up() {
    assert_eq!(smp::online_count(), CPUS, "tests/Cargo.toml gives this kernel -smp 4");
}

/// The perl sample's pages that reach the pool on every store: not same-filled, LZ4 to ≤ 3/4 page (the
/// tag changes at most a few bytes of that, far from zcache's 7/8-page `zv_max_zsize`).
fn usable() -> &'static [&'static [u8; 4096]] {
    USABLE.call_once(|| {
        let r = facts().ramdisk.expect("xtask attaches the perl sample as this kernel's ramdisk");
        assert_eq!(r.verified, Some(true), "the ramdisk's checksum matches xtask's");
        r.bytes()
            .as_chunks::<4096>()
            .0
            .iter()
            .filter(|p| compress::same_filled(p).is_none())
            .filter(|p| with_stream(Algorithm::Lz4, |c| c.compress(p, 4096 / 4 * 3).is_ok()).unwrap_or(false))
            .collect()
    })
}

/// The page store `i` of CPU `cpu` in phase `phase` puts: a sample page chosen by all three, tagged.
fn page_for(phase: usize, cpu: usize, i: u64, out: &mut [u8; 4096]) {
    let pages = usable();
    let pick = (i * 7 + cpu as u64 * 131 + phase as u64 * 17) % pages.len() as u64;
    out.copy_from_slice(pages[pick as usize]);
    let tag = (phase as u64) << 56 | (cpu as u64) << 48 | i;
    out[..8].copy_from_slice(&tag.to_le_bytes());
}

fn key(cpu: usize, i: u64) -> u64 {
    cpu as u64 + CPUS as u64 * (i % KEYS)
}

/// One CPU's share of a phase: `STORES` stores into its own keys, round and round.
fn store_worker(cpu: usize) {
    let (phase, stores) = (PHASE.load(Ordering::SeqCst), STORES.load(Ordering::SeqCst));
    let t = &TALLY[cpu];
    let mut page = [0u8; 4096];
    // Nothing is ever written back: tmem is far from full. A sink that is called fails the count.
    let mut sink = |_: u64, _: &[u8; 4096]| false;
    let (mut in_store, mut slowest) = (0, 0);
    for i in 0..stores {
        page_for(phase, cpu, i, &mut page);
        let start = rdtsc();
        let r = frontswap::store(TY, key(cpu, i), &page, &mut sink);
        let took = rdtsc() - start;
        (in_store, slowest) = (in_store + took, slowest.max(took));
        match r {
            Ok(o) if o.stored && o.written_back == 0 => t.stored.fetch_add(1, Ordering::Relaxed),
            Ok(_) => t.refused.fetch_add(1, Ordering::Relaxed),
            Err(_) => t.errors.fetch_add(1, Ordering::Relaxed),
        };
    }
    t.in_store.store(in_store, Ordering::Relaxed);
    t.slowest.store(slowest, Ordering::Relaxed);
}

/// After a phase, untimed: load every key of this CPU and compare it with the page stored there last.
fn check_worker(cpu: usize) {
    let (phase, stores) = (PHASE.load(Ordering::SeqCst), STORES.load(Ordering::SeqCst));
    let t = &TALLY[cpu];
    let (mut want, mut got) = ([0u8; 4096], [0u8; 4096]);
    for k in 0..KEYS {
        // The last store into key k: the largest i < stores with i ≡ k (mod KEYS); stores ≥ KEYS.
        let last = k + (stores - 1 - k) / KEYS * KEYS;
        page_for(phase, cpu, last, &mut want);
        t.checked.fetch_add(1, Ordering::Relaxed);
        match frontswap::load(TY, key(cpu, k), &mut got) {
            Ok(true) if got == want => {}
            Ok(true) => _ = t.mismatches.fetch_add(1, Ordering::Relaxed),
            Ok(false) => _ = t.missing.fetch_add(1, Ordering::Relaxed),
            Err(_) => _ = t.errors.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// What one timed phase measured.
struct Phase {
    cycles: u64,
    /// zcache's lock during the phase.
    acquisitions: u64,
    contentions: u64,
    /// The share of the phase each CPU spent inside `frontswap::store`, averaged over the CPUs, in
    /// tenths of a percent: on 1 CPU that is the share of the work done under zcache's lock.
    in_store_permille: u64,
    /// The share of the phase zcache's lock was held, in tenths of a percent.
    in_lock_permille: u64,
    /// The longest single store of any CPU, in microseconds (the lock's counters count a wait once,
    /// however long it was; this shows how long).
    slowest_us: u64,
}

/// Run one phase on the first `cpus` CPUs, then check every key of those CPUs and assert the outcomes
/// (module header).
fn phase(tag: usize, cpus: usize) -> Phase {
    PHASE.store(tag, Ordering::SeqCst);
    for t in &TALLY {
        for c in [&t.stored, &t.refused, &t.errors, &t.checked, &t.mismatches, &t.missing, &t.in_store, &t.slowest] {
            c.store(0, Ordering::SeqCst);
        }
    }
    let (locks0, tlb0) = (zkernel::init::lock_stats(), tlb::stats());
    let [zc0, st0] = zcache::lock_stats();
    let start = rdtsc();
    let ran = smp::run_on_first(cpus, store_worker);
    let cycles = rdtsc() - start;
    let [zc1, st1] = zcache::lock_stats();
    let (locks1, tlb1) = (zkernel::init::lock_stats(), tlb::stats());
    assert_eq!(ran, cpus, "phase {tag}: {ran} CPUs ran it");
    assert_eq!(smp::run_on_first(cpus, check_worker), cpus);

    // For the log: the other locks the phase took and the TLB shootdowns it sent, then where each
    // CPU's time went.
    let mut others = alloc::string::String::new();
    for l in locks1.iter().filter(|l| l.name != "zcache") {
        let before = locks0.iter().find(|b| b.name == l.name).map_or((0, 0), |b| (b.acquisitions, b.contentions));
        let (a, c) = (l.acquisitions - before.0, l.contentions - before.1);
        if a > 0 {
            others += &alloc::format!(" {} {a}/{c},", l.name);
        }
    }
    println!(
        "  phase {tag} on {cpus} CPU(s): other locks (acquisitions/contentions):{others} TLB shootdowns {}",
        tlb1.shootdowns - tlb0.shootdowns
    );
    let (mut per_cpu, mut permille_sum, mut slowest) = (alloc::string::String::new(), 0, 0);
    for (c, t) in TALLY.iter().enumerate().take(cpus) {
        let (busy, slow) = (t.in_store.load(Ordering::SeqCst), t.slowest.load(Ordering::SeqCst));
        let permille = (u128::from(busy) * 1000 / u128::from(cycles.max(1))) as u64;
        let slow_us = centi_ns(slow) / 100_000;
        per_cpu += &alloc::format!(" cpu{c} {}.{} %, slowest {slow_us} us;", permille / 10, permille % 10);
        permille_sum += permille;
        slowest = slowest.max(slow_us);
    }
    println!("  phase {tag}: share of the phase inside frontswap::store, slowest store:{per_cpu}");

    let stores = STORES.load(Ordering::SeqCst);
    let sum = |f: fn(&Tally) -> &AtomicU64| TALLY.iter().map(|t| f(t).load(Ordering::SeqCst)).sum::<u64>();
    let total = cpus as u64 * stores;
    assert_eq!(sum(|t| &t.stored), total, "phase {tag}: stores kept (refused {})", sum(|t| &t.refused));
    assert_eq!(sum(|t| &t.errors), 0, "phase {tag}: frontswap errors");
    assert_eq!(sum(|t| &t.checked), cpus as u64 * KEYS, "phase {tag}: keys checked");
    assert_eq!(
        (sum(|t| &t.mismatches), sum(|t| &t.missing)),
        (0, 0),
        "phase {tag}: keys whose page came back wrong, keys that were gone"
    );
    let acquisitions = zc1.acquisitions - zc0.acquisitions;
    assert_eq!(acquisitions, total, "phase {tag}: zcache's lock is taken once per store and by nothing else");
    assert_eq!(st1.contentions, st0.contentions, "phase {tag}: a CPU waited for another CPU's stream");
    Phase {
        cycles,
        acquisitions,
        contentions: zc1.contentions - zc0.contentions,
        in_store_permille: permille_sum / cpus as u64,
        in_lock_permille: (u128::from(zc1.held_cycles - zc0.held_cycles) * 1000 / u128::from(cycles.max(1))) as u64,
        slowest_us: slowest,
    }
}

fn measure() {
    let stores = facts().settings.bench_stores();
    assert!(stores >= KEYS, "bench_stores={stores}: at least {KEYS}, the keys of each CPU");
    STORES.store(stores, Ordering::SeqCst);
    println!("tsc: {} MHz (calibrated against the PIT)", hz() / 1_000_000);
    let pages = usable().len();
    println!("  {pages} pages of the perl sample are used; {stores} stores per CPU per phase, {KEYS} keys per CPU");
    assert!(pages > 0, "no usable page in the sample");

    // Nothing may be refused (module header): the mean-size and page-count rules off, a large limit.
    zcache::set_tunables(zcache::Tunables {
        zv_max_mean_zsize: 4096,
        zv_page_count_policy_percent: 0,
        ..zcache::Tunables::ZCACHE
    });
    zcache::install(TMEM_LIMIT_PAGES, Algorithm::Lz4).expect("zcache installs");
    frontswap::init(TY, CPUS as u64 * KEYS, Backend::Zsmalloc).expect("a frontswap pool");
    phase(WARM_UP, CPUS);

    let mut one_cpu = 0u64;
    for cpus in PHASES {
        let p = phase(cpus, cpus);
        let total = cpus as u64 * stores;
        let per_s = (u128::from(total) * u128::from(hz()) / u128::from(p.cycles.max(1))) as u64;
        if cpus == 1 {
            one_cpu = per_s;
        }
        let ratio = (u128::from(per_s) * 1000 / u128::from(one_cpu.max(1))) as u64;
        let ns = centi_ns(p.cycles / total);
        let ms = cycles_to_ms(p.cycles);
        let (acq, cont, pm, lm) = (p.acquisitions, p.contentions, p.in_store_permille, p.in_lock_permille);
        println!(
            "  {cpus} CPU(s): {total} stores in {ms} ms, {per_s} stores/s, {}.{:03} x 1 CPU; zcache lock: {acq} \
             acquisitions, {cont} contentions, held {}.{} % of the phase; {}.{} % inside frontswap::store, slowest \
             store {} us",
            ratio / 1000,
            ratio % 1000,
            lm / 10,
            lm % 10,
            pm / 10,
            pm % 10,
            p.slowest_us
        );
        println!(
            "@@bench {{\"name\":\"tmem_store_{cpus}cpu\",\"ns\":{}.{:02},\"cycles\":{},\"cpus\":{cpus},\
             \"stores\":{total},\"ms\":{ms},\"stores_per_s\":{per_s},\"ratio\":{}.{:03},\
             \"zcache_acquisitions\":{acq},\"zcache_contentions\":{cont},\"in_store_pct\":{}.{},\
             \"in_lock_pct\":{}.{},\"slowest_store_us\":{}}}",
            ns / 100,
            ns % 100,
            p.cycles / total,
            ratio / 1000,
            ratio % 1000,
            pm / 10,
            pm % 10,
            lm / 10,
            lm % 10,
            p.slowest_us
        );
    }

    frontswap::invalidate_area(TY).expect("swapoff");
    let last = zcache::uninstall().expect("zcache comes out once its pool is empty");
    assert_eq!((last.stored_pages, last.pool_pages), (0, 0), "tmem empty after swapoff");
    frames::drain_pcp();
    assert_eq!(frames::owned_by(Owner::POOL), 0, "no pool frame is still held");
}
