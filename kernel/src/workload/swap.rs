//! The swap part of the demo (`cargo xtask run --workload swap`): the same workload twice in one boot,
//! once with every swap-out going to the virtio-blk swap disk and once with frontswap keeping pages
//! compressed in tmem, then the disk I/O each needed and the share tmem avoided (zcache's headline
//! figure: 58-72 % on a kernel build).
//!
//! The options (`swap_pattern`, `swap_mem`, `swap_factor`, `swap_accesses`, `tmem`,
//! `tmem_max_pool_percent`, `swap_slots`, `swap_fresh`, `fail_frame_every`, `fail_frame_schedule`,
//! `blk_fail_every`, `blk_fail_op`, `blk_fail_kind`, `swap_cpus`, `swap_sharing`, `compressor`) are rows of
//! kopts's table: `cargo xtask run --help-kernel` lists them with their ranges and defaults.
//!
//! A run fails (and so does `cargo xtask run`) when a page comes back changed, a fresh page does not
//! read as zeros, a swap run cannot start or finish, or its teardown leaves tmem pages behind.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use kopts::{Settings, SwapPattern, TmemBackends};
use swap::Pattern;
use tmem::Backend;
use zstats::{IoAvoidedReport, Report, SwapReport, SwapRunReport};

use super::report::{self, Failures};
use super::swap_run::{PageSource, RunResult, RunSpec, run};
use super::swap_smp::{self, Sharing, SmpRunSpec};
use crate::arch::tsc::centi_ns;
use crate::drivers::virtio_blk;
use crate::init::BootFacts;
use crate::mm::frames;
use crate::println;
use crate::swap::{Device, MemMode, SwapConfig};
use swap::CacheMode;

/// The page source the options and the ramdisk ask for.
pub fn source(facts: &BootFacts) -> PageSource {
    if let Some(pct) = facts.settings.swap_fresh() {
        return PageSource::Fresh(usize::from(pct));
    }
    // A ramdisk that does not match its checksum never gets here: boot refuses it.
    if let Some(r) = facts.ramdisk.as_ref().filter(|r| r.pages() > 0) {
        return PageSource::Sample(r.bytes().as_chunks::<4096>().0);
    }
    PageSource::Mixed
}

/// The swap workload's pattern (`swap_pattern`; `all` is expanded by the caller).
pub fn pattern(p: SwapPattern) -> Pattern {
    match p {
        SwapPattern::Sequential => Pattern::Sequential,
        SwapPattern::Random => Pattern::Random,
        SwapPattern::Zipf | SwapPattern::All => Pattern::Zipf,
    }
}

/// tmem's backend from the option's word.
pub fn backend(b: kopts::Backend) -> Backend {
    match b {
        kopts::Backend::Zsmalloc => Backend::Zsmalloc,
        kopts::Backend::Zbud => Backend::Zbud,
        kopts::Backend::Xvmalloc => Backend::Xvmalloc,
        kopts::Backend::Xcfmalloc => Backend::Xcfmalloc,
    }
}

pub fn backend_name(b: Option<Backend>) -> &'static str {
    b.map_or("off", Backend::name)
}

/// A run's configuration as the report names it: `disk`, `tmem-zsmalloc`, …, `zram`.
pub fn config_name(c: &SwapConfig) -> alloc::string::String {
    match (c.device, c.tmem) {
        (Device::Zram, _) => "zram-zsmalloc".into(),
        (Device::Disk, None) => "disk".into(),
        (Device::Disk, Some(b)) => format!("tmem-{}", b.name()),
    }
}

/// The swap configuration the options ask for, for a run with `tmem` (or none) over a region of
/// `region` pages and `mem` pages of memory: `swap_mode`, `swap_device`, `swap_cache`, and tmem's limit
/// (`tmem_max_pool_percent` of N under equal memory, of RAM under `swap_mode=fixed`).
pub fn swap_config(settings: &Settings, region: u64, mem: u64, tmem: Option<Backend>, slots: u64) -> SwapConfig {
    let (mode, limit) = match settings.swap_mode() {
        kopts::SwapMode::Equal => (MemMode::Equal, settings.tmem_limit_pages(mem)),
        kopts::SwapMode::Fixed => (MemMode::Fixed, settings.tmem_limit_pages(frames::stats().managed)),
    };
    SwapConfig {
        region_pages: region,
        budget_pages: mem,
        mode,
        device: Device::Disk,
        cache: match settings.swap_cache() {
            kopts::SwapCacheMode::On => CacheMode::Keep,
            kopts::SwapCacheMode::Exclusive => CacheMode::ExclusiveLoads,
        },
        tmem,
        tmem_limit_pages: limit,
        slots,
        algorithm: super::pools::algorithm(settings),
    }
}

/// The swap slots to use: the option's count (which must fit on the disk), else the whole disk.
pub fn slots(settings: &Settings, failures: &mut Failures) -> Option<u64> {
    let capacity = virtio_blk::disk("swap").map_or(0, |d| d.lock().capacity_pages());
    match settings.swap_slots() {
        Some(n) if n > capacity => {
            failures.add(format!("option swap_slots={n}: the swap disk has only {capacity} pages"));
            None
        }
        Some(n) => Some(n),
        None => Some(capacity),
    }
}

/// One line per run, for people.
pub fn print_run(r: &RunResult) {
    let s = &r.stats;
    println!(
        "  {:<10} {:<14} I/O {:>6} (reads {:>5}, writes {:>5}) | swap-outs {:>5}, swap-ins {:>5}, frontswap \
         stores {:>5} refused {:>4} loads {:>5}, written back {:>4} | mismatches {} | {} ms",
        r.spec.pattern.name(),
        config_name(&r.spec.swap),
        s.io(),
        s.disk_reads,
        s.disk_writes,
        s.swapouts,
        s.swapins,
        s.frontswap_stores,
        s.frontswap_refused,
        s.frontswap_loads,
        s.written_back_pages,
        r.mismatches,
        centi_ns(r.cycles) / 100_000_000,
    );
    if r.stats.over_budget_steps > 0 {
        println!(
            "  {:<25} DOES NOT FIT: {} steps went over the memory of {} pages (nothing more could move)",
            "", r.stats.over_budget_steps, r.spec.swap.budget_pages
        );
    }
    if r.tmem_index_bytes > 0 || r.zram_table_bytes > 0 {
        println!(
            "  {:<25} memory beside the pool frames: tmem's index {} KiB, zram's slot table {} KiB",
            "",
            r.tmem_index_bytes / 1024,
            r.zram_table_bytes / 1024
        );
    }
    if let Some(t) = &r.tmem {
        let pooled = t.stored_pages.saturating_sub(t.same_pages);
        let ratio = (pooled * 4096) as f64 / t.compr_data_size.max(1) as f64;
        println!(
            "  {:<19} tmem at the end: {} pages stored ({} same-filled) in {} pool pages, peak {} of limit {}; \
             compression ratio {ratio:.2}, {:.3} pool pages per pooled page; ephemeral drops {}, full refusals {}",
            "",
            t.stored_pages,
            t.same_pages,
            t.pool_pages,
            r.stats.peak_tmem_pages,
            t.limit_pages,
            t.pool_pages as f64 / pooled.max(1) as f64,
            t.ephemeral_drops,
            t.refused_full,
        );
    }
    if s.out_of_swap > 0 {
        println!(
            "  {:<19} OUT OF SWAP: {} victims kept resident (peak resident {})",
            "", s.out_of_swap, s.peak_resident
        );
    }
}

/// One run as a report object.
pub fn run_report(r: &RunResult) -> SwapRunReport {
    SwapRunReport {
        pattern: r.spec.pattern.name().into(),
        tmem: backend_name(r.spec.swap.tmem).into(),
        region_pages: r.spec.swap.region_pages,
        budget_pages: r.spec.swap.budget_pages,
        accesses: r.accesses,
        mismatches: r.mismatches,
        dirty_zero_fills: r.dirty_zero_fills,
        io: r.stats.io(),
        ms: centi_ns(r.cycles) / 100_000_000,
        swap: report::swap_stats(&r.stats),
        tmem_stats: r.tmem.as_ref().map(report::tmem),
        tmem_index_bytes: r.tmem_index_bytes,
        zram_table_bytes: r.zram_table_bytes,
        series: r.series.clone(),
    }
}

/// What must hold at the end of every swap run, as failures: every page intact, every fresh page zero,
/// tmem emptied by the teardown.
pub fn check_run(r: &RunResult, failures: &mut Failures) {
    check_run_with(r, failures, false)
}

/// [`check_run`], where `faults_injected` says that swap-disk faults were injected on purpose
/// (`blk_fail_every`): then lost pages are the expected outcome of failed swap-ins and not a failure.
pub fn check_run_with(r: &RunResult, failures: &mut Failures, faults_injected: bool) {
    let what = format!("swap {} with tmem {}", r.spec.pattern.name(), backend_name(r.spec.swap.tmem));
    failures.nonzero(r.mismatches, || format!("{what}: {} pages came back changed", r.mismatches));
    failures.nonzero(r.dirty_zero_fills, || format!("{what}: {} fresh pages were not zero", r.dirty_zero_fills));
    // Without injected faults a lost page is a failure (tests/device_faults.rs makes them on purpose).
    if !faults_injected {
        failures.nonzero(r.pages_lost, || {
            format!("{what}: {} pages lost (their swapped copy could not be read)", r.pages_lost)
        });
    }
    if r.pages_lost != r.stats.pages_lost {
        failures.add(format!(
            "{what}: the workload found {} pages lost, the swapper lost {}",
            r.pages_lost, r.stats.pages_lost
        ));
    }
    // Persistent pages only: under `--workload all` cleancache's ephemeral pages share the tmem.
    if let Some(t) = r.tmem_after.filter(|t| t.persistent_pages != 0) {
        failures.add(format!("{what}: tmem kept {} frontswap pages after swapoff", t.persistent_pages));
    }
}

/// The frame fault injection of `fail_frame_every` and `fail_frame_schedule`.
#[derive(Debug, Clone, Copy)]
pub struct FrameFaults {
    /// One allocation in this many fails (0: off).
    pub every: u64,
    pub schedule: kopts::FailSchedule,
    /// The random schedule's seed.
    pub seed: u64,
}

impl FrameFaults {
    /// Turn the injection on (or off, for `every` 0), its counters at zero.
    pub fn arm(&self) {
        match self.schedule {
            kopts::FailSchedule::Every => frames::set_fail_every(self.every),
            kopts::FailSchedule::Random => frames::set_fail_random(self.every, self.seed),
        }
    }

    /// What fails, in words.
    pub fn describe(&self) -> String {
        match self.schedule {
            kopts::FailSchedule::Every => {
                let th = match (self.every % 100, self.every % 10) {
                    (11..=13, _) => "th",
                    (_, 1) => "st",
                    (_, 2) => "nd",
                    (_, 3) => "rd",
                    _ => "th",
                };
                format!("every {}{th} pool or workload frame allocation fails", self.every)
            }
            kopts::FailSchedule::Random => format!(
                "each pool or workload frame allocation fails with chance 1/{} (random, seed {})",
                self.every, self.seed
            ),
        }
    }
}

/// Arm the swap disk's fault injection from `blk_fail_every`, `blk_fail_op` and `blk_fail_kind`.
fn set_disk_faults(settings: &Settings) {
    use crate::drivers::virtio_blk::{FaultKind, FaultOp, Injection};
    let every = settings.blk_fail_every();
    if every == 0 {
        return;
    }
    let op = match settings.blk_fail_op() {
        kopts::BlkFailOp::Any => FaultOp::Any,
        kopts::BlkFailOp::Read => FaultOp::Read,
        kopts::BlkFailOp::Write => FaultOp::Write,
    };
    let kind = match settings.blk_fail_kind() {
        kopts::BlkFailKind::Error => FaultKind::Error,
        kopts::BlkFailKind::Timeout => FaultKind::Timeout,
        kopts::BlkFailKind::WrongToken => FaultKind::WrongToken,
    };
    if let Some(d) = virtio_blk::disk("swap") {
        d.lock().set_injection(Some(Injection { every, at: 0, kind, op }));
    }
}

/// Disarm the injection; how many requests it failed, if it was armed.
fn clear_disk_faults() -> Option<u64> {
    let d = virtio_blk::disk("swap")?;
    let mut d = d.lock();
    let state = d.injection();
    d.set_injection(None);
    state.injection.map(|_| state.injected)
}

/// One configuration with `cpus` workers (`swap_cpus` > 1): printed, checked, and added to the report's
/// `smp_runs`. The accesses are split among the workers, so the run does the same number as one CPU would.
#[allow(clippy::too_many_arguments)]
fn smp_run(
    swap: &SwapConfig,
    pattern: Pattern,
    accesses: u64,
    source: PageSource,
    cpus: usize,
    sharing: Sharing,
    out: &mut SwapReport,
    failures: &mut Failures,
) {
    let config = config_name(swap);
    let spec = SmpRunSpec {
        swap: *swap,
        pattern,
        accesses: accesses / cpus as u64,
        write_every: 4,
        seed: 42,
        source,
        cpus,
        sharing,
    };
    let what = format!("swap {} with {config} on {cpus} CPUs ({})", pattern.name(), sharing.name());
    let r = match swap_smp::run(&spec) {
        Ok(r) => r,
        Err(e) => return failures.add(format!("{what}: {e}")),
    };
    let s = &r.finished.stats;
    let ms = centi_ns(r.cycles) / 100_000_000;
    println!(
        "  {:<10} {config:<14} I/O {:>6} (reads {:>5}, writes {:>5}) | {} CPUs: faults {} ({} raced), swap-outs {}, swap-ins {} | mismatches {} | {ms} ms",
        pattern.name(),
        s.io(),
        s.disk_reads,
        s.disk_writes,
        r.workers.len(),
        s.faults,
        s.raced_faults,
        s.swapouts,
        s.swapins,
        r.mismatches()
    );
    failures.nonzero(r.mismatches(), || format!("{what}: {} owned byte ranges came back changed", r.mismatches()));
    if let Some(e) = r.finished.error {
        failures.add(format!("{what}: teardown: {e}"));
    }
    if let Some(t) = r.finished.tmem_after.filter(|t| t.persistent_pages != 0) {
        failures.add(format!("{what}: tmem kept {} frontswap pages after swapoff", t.persistent_pages));
    }
    out.smp_runs.push(zstats::SmpSwapRunReport {
        config,
        pattern: pattern.name().into(),
        cpus: r.workers.len() as u64,
        sharing: sharing.name().into(),
        accesses: r.accesses(),
        mismatches: r.mismatches(),
        io: s.io(),
        ms,
        swap: report::swap_stats(s),
    });
}

/// Run the swap demo and fill the report's `swap` member.
pub fn run_demo(facts: &BootFacts, report: &mut Report, failures: &mut Failures) {
    let settings = &facts.settings;
    let alg = super::pools::algorithm(settings);
    let budget = settings.swap_mem();
    let region = settings.swap_region_pages();
    let accesses = settings.swap_accesses();
    let fail_every = settings.fail_frame_every().unwrap_or(0);
    let Some(slots) = slots(settings, failures) else { return };
    let patterns: Vec<Pattern> = match settings.swap_pattern() {
        SwapPattern::All => Pattern::ALL.to_vec(),
        p => alloc::vec![pattern(p)],
    };
    let backends: Vec<Backend> = match settings.tmem() {
        TmemBackends::Zsmalloc => alloc::vec![Backend::Zsmalloc],
        TmemBackends::Zbud => alloc::vec![Backend::Zbud],
        TmemBackends::Xvmalloc => alloc::vec![Backend::Xvmalloc],
        TmemBackends::Xcfmalloc => alloc::vec![Backend::Xcfmalloc],
        TmemBackends::Both => alloc::vec![Backend::Zsmalloc, Backend::Zbud],
        TmemBackends::All => Backend::ALL.to_vec(),
    };
    let source = source(facts);
    let base = swap_config(settings, region, budget, None, slots);
    let zram = settings.swap_device() == kopts::SwapDevice::Zram;
    println!(
        "swap: region {region} pages, memory {budget} pages ({}: {}); {accesses} accesses after the fill; \
         {slots} swap slots on the {}; pool cap {} pages; swap cache {:?}; {}; compressor {alg:?}",
        settings.swap_mode().name(),
        match base.mode {
            MemMode::Equal => "resident pages + pool frames <= memory",
            MemMode::Fixed => "resident pages <= memory, the pool on top",
        },
        if zram { "zram device" } else { "virtio-blk disk" },
        base.tmem_limit_pages,
        base.cache,
        source.name()
    );
    let frame_faults = FrameFaults { every: fail_every, schedule: settings.fail_frame_schedule(), seed: 42 };
    let cpus = settings.swap_cpus() as usize;
    let sharing = match settings.swap_sharing() {
        kopts::SwapSharing::Split => Sharing::Split,
        kopts::SwapSharing::Shared => Sharing::Shared,
    };
    if cpus > 1 {
        let up = crate::arch::smp::online_count();
        if settings.blk_fail_every() > 0 {
            failures
                .add(format!("option blk_fail_every: injected disk faults are for swap_cpus=1 runs (given {cpus})"));
            return;
        }
        if fail_every > 0 {
            failures
                .add(format!("option fail_frame_every: injected frame faults are for swap_cpus=1 runs (given {cpus})"));
            return;
        }
        if cpus > up {
            failures
                .add(format!("option swap_cpus={cpus}: only {up} CPUs are up (QEMU -smp, `cargo xtask run --smp N`)"));
            return;
        }
        println!(
            "swap: {cpus} workers, one per CPU, {} sharing; each makes {} accesses after its fill",
            sharing.name(),
            accesses / cpus as u64
        );
    }
    if fail_every > 0 {
        println!("swap: fault injection: {}", frame_faults.describe());
    }
    let mut out = SwapReport::default();
    for &pattern in &patterns {
        let mut io_off = None;
        // Disk only first, then each tmem backend in front of the disk, then zram as the swap device: the
        // three answers at the same N. With swap_device=zram, disk only and zram.
        let configs: Vec<(Option<Backend>, Device)> = if zram {
            alloc::vec![(None, Device::Disk), (None, Device::Zram)]
        } else {
            core::iter::once((None, Device::Disk))
                .chain(backends.iter().map(|&b| (Some(b), Device::Disk)))
                .chain(core::iter::once((None, Device::Zram)))
                .collect()
        };
        for (tmem, device) in configs {
            if cpus > 1 {
                let swap = SwapConfig { device, ..swap_config(settings, region, budget, tmem, slots) };
                smp_run(&swap, pattern, accesses, source, cpus, sharing, &mut out, failures);
                continue;
            }
            frame_faults.arm();
            set_disk_faults(settings);
            let spec = RunSpec {
                swap: SwapConfig { device, ..swap_config(settings, region, budget, tmem, slots) },
                pattern,
                accesses,
                write_every: 4,
                seed: 42,
                source,
            };
            let result = run(&spec);
            frames::set_fail_every(0);
            let disk_faults = clear_disk_faults();
            match result {
                Ok(r) => {
                    print_run(&r);
                    if let Some(n) = disk_faults {
                        println!(
                            "                            swap disk faults injected: {n}; pages lost: {}; swap-outs \
                             failed (pages kept resident): {}",
                            r.stats.pages_lost, r.stats.swapout_failures
                        );
                    } else if r.stats.swapout_failures > 0 {
                        println!(
                            "                            swap-outs failed (pages kept resident): {}; pages lost: {}",
                            r.stats.swapout_failures, r.stats.pages_lost
                        );
                    }
                    check_run_with(&r, failures, disk_faults.is_some());
                    out.runs.push(run_report(&r));
                    match (tmem, device) {
                        (None, Device::Disk) => io_off = Some(r.stats.io()),
                        // A configuration that could not stay within N has no figure to compare.
                        _ if r.stats.over_budget_steps > 0 => {}
                        _ => {
                            if let Some(off) = io_off {
                                let on = r.stats.io();
                                out.io_avoided.push(IoAvoidedReport {
                                    pattern: pattern.name().into(),
                                    tmem: config_name(&r.spec.swap),
                                    io_without: off,
                                    io_with: on,
                                    percent: zstats::percent_avoided(off, on),
                                });
                            }
                        }
                    }
                }
                Err(e) => failures.add(format!(
                    "swap {} with {}: {e}",
                    pattern.name(),
                    config_name(&SwapConfig { device, ..swap_config(settings, region, budget, tmem, slots) })
                )),
            }
        }
    }
    for a in &out.io_avoided {
        println!(
            "swap: {} with tmem ({}): {} disk I/Os instead of {}: {:.1} % of swap I/O avoided",
            a.pattern, a.tmem, a.io_with, a.io_without, a.percent
        );
    }
    report.swap = Some(out);
}
