//! `workload=sweep` (`cargo xtask bench --sweep`): compression at equal memory, as a curve. One boot runs
//! the same swap workload (same pages, same accesses) at each memory size N from 20 % to 100 % of the
//! region, once per configuration, and counts the swap-disk I/O each needed:
//!
//! | configuration | what is in RAM besides the resident pages |
//! |---|---|
//! | `disk` | nothing: every swap-out goes to the virtio-blk disk |
//! | `tmem-zsmalloc`, `tmem-zbud`, `tmem-xvmalloc`, `tmem-xcfmalloc` | frontswap's tmem pool on that allocator, capped at `tmem_max_pool_percent` of N, writing its oldest pages back to the disk when full |
//! | `zram-zsmalloc` | a zram swap device: every swapped page compressed in RAM, no disk behind it |
//!
//! Every run is at equal memory: resident pages + pool frames ≤ N at every step. A configuration that
//! cannot keep that (zram full at small N) is listed with `fits: false` and no figure. The report's
//! `sweep` member has one point per run; xtask draws the table and the plot and finds, for each
//! configuration, the memory below which compression stops paying.

use alloc::format;
use alloc::vec::Vec;

use tmem::Backend;
use zstats::{Report, SweepPoint, SweepReport};

use super::report::Failures;
use super::swap::{config_name, slots, source, swap_config};
use super::swap_run::{RunSpec, run};
use crate::arch::tsc::centi_ns;
use crate::init::BootFacts;
use crate::println;
use crate::swap::Device;

/// The memory sizes, in percent of the region.
const PERCENTS: [u64; 9] = [20, 30, 40, 50, 60, 70, 80, 90, 100];

/// Run the sweep and fill the report's `sweep` member.
pub fn run_sweep(facts: &BootFacts, report: &mut Report, failures: &mut Failures) {
    let settings = &facts.settings;
    let region = settings.swap_region_pages();
    let accesses = settings.swap_accesses();
    let Some(slots) = slots(settings, failures) else { return };
    let source = source(facts);
    let configs: Vec<(Option<Backend>, Device)> = core::iter::once((None, Device::Disk))
        .chain(Backend::ALL.iter().map(|&b| (Some(b), Device::Disk)))
        .chain(core::iter::once((None, Device::Zram)))
        .collect();
    println!(
        "sweep: region {region} pages, {accesses} accesses after the fill, {}; memory N from 20 % to 100 % of \
         the region; resident pages + pool frames <= N at every step",
        source.name()
    );
    println!(
        "  {:>6} {:>5}  {}",
        "N",
        "%",
        configs
            .iter()
            .map(|&(t, d)| format!(
                "{:>15}",
                config_name(&crate::swap::SwapConfig { device: d, ..swap_config(settings, region, region, t, slots) })
            ))
            .collect::<Vec<_>>()
            .join("")
    );
    let mut out = SweepReport {
        region_pages: region,
        accesses: region + accesses,
        pages: source.name().into(),
        points: Vec::new(),
    };
    for pct in PERCENTS {
        let mem = (region * pct / 100).max(1);
        let mut line = format!("  {mem:>6} {pct:>4}%  ");
        for &(tmem, device) in &configs {
            let cfg = crate::swap::SwapConfig { device, ..swap_config(settings, region, mem, tmem, slots) };
            let spec = RunSpec {
                swap: cfg,
                pattern: super::swap::pattern(settings.swap_pattern()),
                accesses,
                write_every: 4,
                seed: 42,
                source,
            };
            let config = config_name(&cfg);
            match run(&spec) {
                Ok(r) => {
                    let s = &r.stats;
                    let fits = s.over_budget_steps == 0 && s.out_of_swap == 0;
                    failures.nonzero(r.mismatches, || {
                        format!("sweep {config} at N={mem}: {} pages came back changed", r.mismatches)
                    });
                    line.push_str(&if fits { format!("{:>15}", s.io()) } else { format!("{:>15}", "does not fit") });
                    out.points.push(SweepPoint {
                        config,
                        mem_pages: mem,
                        percent: pct,
                        io: s.io(),
                        disk_reads: s.disk_reads,
                        disk_writes: s.disk_writes,
                        fits,
                        mismatches: r.mismatches,
                        peak_pool_pages: s.peak_pool_pages,
                        peak_resident: s.peak_resident,
                        clean_reclaims_saved: s.clean_reclaims_saved,
                        ms: centi_ns(r.cycles) / 100_000_000,
                    });
                }
                Err(e) => failures.add(format!("sweep {config} at N={mem}: {e}")),
            }
        }
        println!("{line}");
    }
    report.sweep = Some(out);
}
