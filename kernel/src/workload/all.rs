//! `cargo xtask run --workload all`: the swap and the file workloads at once over one zcache, so
//! frontswap's pressure on the shared limit shows as cleancache pages dropped (`ephemeral_drops`).
//! The tmem limit defaults to 1 % of RAM here (`tmem_max_pool_percent`), small enough to fill.

use alloc::format;
use alloc::string::String;

use compress::Algorithm;
use tmem::Backend;
use zstats::{AllReport, Report};

use super::files::{self, FileRun, FileSpec};
use super::report::Failures;
use super::swap::{self as swapdemo, print_run, source};
use super::swap_run::{RunSpec, SwapRun};
use crate::init::BootFacts;
use crate::println;
use crate::swap::SwapConfig;
use crate::zcache;

/// The swap and file workloads of one shared zcache with `limit` pool pages: `--workload all`'s, and
/// the serial shell's.
pub(super) fn specs(facts: &BootFacts, alg: Algorithm, limit: u64, slots: u64) -> (RunSpec, FileSpec) {
    let settings = &facts.settings;
    let swap_spec = RunSpec {
        // One tmem for both workloads, installed by the caller with the RAM-percent limit; the swap run's
        // accounting still charges its memory with every frame that tmem holds.
        // The pool on top of the resident budget (swap_mode=fixed): its frames are shared with cleancache,
        // whose pages the swap run cannot give back, so charging them to the swap run's N would measure
        // cleancache, not compression.
        swap: SwapConfig {
            tmem_limit_pages: limit,
            mode: crate::swap::MemMode::Fixed,
            ..swapdemo::swap_config(
                settings,
                settings.swap_region_pages(),
                settings.swap_mem(),
                Some(Backend::Zsmalloc),
                slots,
            )
        },
        pattern: swapdemo::pattern(settings.swap_pattern()),
        accesses: settings.swap_accesses(),
        write_every: 4,
        seed: 42,
        source: source(facts),
    };
    let file_spec = FileSpec {
        cleancache: Some(swapdemo::backend(settings.cleancache())),
        ..files::spec_from(settings, alg, limit)
    };
    (swap_spec, file_spec)
}

/// Run both workloads over one zcache and fill the report's `all` member.
pub fn run_all(facts: &BootFacts, report: &mut Report, failures: &mut Failures) {
    let settings = &facts.settings;
    let alg = super::pools::algorithm(settings);
    let limit = settings.tmem_limit_pages(crate::mm::frames::stats().managed);
    let budget = settings.swap_mem();
    let region = settings.swap_region_pages();
    let Some(slots) = swapdemo::slots(settings, failures) else { return };
    let (swap_spec, file_spec) = specs(facts, alg, limit, slots);
    println!(
        "all: the swap workload (region {region} pages, budget {budget}) and the file workload (cache {} pages) \
         together over one tmem of {limit} pool pages: frontswap (zsmalloc) and cleancache ({})",
        file_spec.cache_pages,
        file_spec.cleancache.map_or("off", |b| b.name())
    );
    if let Err(e) = zcache::install(limit, alg) {
        failures.add(format!("all: {e}"));
        return;
    }
    let result = (|| {
        let mut files = FileRun::start(&file_spec).map_err(|e| format!("files: {e}"))?;
        let mut swap = SwapRun::start(&swap_spec).map_err(|e| format!("swap: {e}"))?;
        // Spread the swap accesses evenly over the file operations.
        let per_op = (region + swap_spec.accesses).div_ceil(file_spec.ops.max(1)).max(1);
        let mut swapping = true;
        loop {
            let more_files = files.step().map_err(|e| format!("files: {e}"))?;
            for _ in 0..per_op {
                swapping = swapping && swap.step();
            }
            if !more_files && !swapping {
                break;
            }
        }
        let s = swap.finish().map_err(|e| format!("swap: {e}"))?;
        let f = files.finish();
        Ok::<_, String>((s, f))
    })();
    if result.is_err() {
        // Whatever the failed run left: its region, its pools.
        crate::swap::uninstall();
        zcache::force_uninstall();
    } else if zcache::uninstall().is_none() {
        failures.add(String::from("all: zcache still had live pools after both workloads ended"));
    }
    match result {
        Ok((s, f)) => {
            print_run(&s);
            files::print_run(&f);
            swapdemo::check_run(&s, failures);
            files::check_run(&f, failures);
            let drops = f.tmem.map_or(0, |t| t.ephemeral_drops);
            let for_swap = s.stats.cleancache_dropped;
            println!(
                "all: tmem dropped {drops} cleancache pages, {for_swap} of them to make room for frontswap's stores; \
                 frontswap stored {} pages, refused {}, wrote back {}",
                s.stats.frontswap_stores, s.stats.frontswap_refused, s.stats.written_back_pages
            );
            report.all = Some(AllReport {
                swap: swapdemo::run_report(&s),
                files: files::run_report(&f),
                ephemeral_drops: drops,
                dropped_for_frontswap: for_swap,
            });
        }
        Err(e) => failures.add(format!("all: {e}")),
    }
}
