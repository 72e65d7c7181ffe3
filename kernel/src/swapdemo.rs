//! The swap part of the demo (`cargo xtask run --workload swap`): the same workload twice in one boot,
//! once with every swap-out going to the virtio-blk swap disk and once with frontswap keeping pages
//! compressed in tmem, then the disk I/O each needed and the share tmem avoided (zcache's headline
//! figure: 58-72 % on a kernel build).
//!
//! | option | meaning (default) |
//! |---|---|
//! | `swap_pattern=sequential\|random\|zipf\|all` | access pattern after the fill (zipf) |
//! | `swap_budget=N` | resident budget in pages (1024) |
//! | `swap_factor=N` | region = N × budget (3) |
//! | `swap_accesses=N` | accesses after the fill (4 × region) |
//! | `tmem=zsmalloc\|zbud\|both` | tmem backend of the tmem run (zsmalloc; `both` runs each) |
//! | `tmem_max_pool_percent=N` | tmem's limit, percent of RAM (20, as zswap) |
//! | `swap_slots=N` | swap slots used (the whole disk) |
//! | `swap_fresh=N` | synthetic pages compressing to about N % (otherwise the ramdisk, else a mix) |
//! | `fail_frame_every=N` | every Nth pool or workload frame allocation fails (fault injection) |
//! | `compressor=lz4\|deflate`, `deflate_level=N` | as for the pools demo |

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use kopts::Options;
use swap::Pattern;
use tmem::Backend;

use crate::arch::tsc::centi_ns;
use crate::drivers::virtio_blk;
use crate::filecache::FileSpec;
use crate::init::BootFacts;
use crate::mm::frames;
use crate::println;
use crate::swap::SwapConfig;
use crate::swap::workload::{PageSource, RunResult, RunSpec, run};

/// The page source the options and the ramdisk ask for.
pub fn source(facts: &BootFacts, options: &Options) -> PageSource {
    if let Some(pct) = options.get("swap_fresh").and_then(|v| v.parse::<usize>().ok()) {
        return PageSource::Fresh(pct.min(100));
    }
    if let Some(r) = facts.ramdisk.as_ref().filter(|r| r.verified != Some(false) && r.pages() > 0) {
        return PageSource::Sample(r.bytes().as_chunks::<4096>().0);
    }
    PageSource::Mixed
}

fn backend_name(b: Option<Backend>) -> &'static str {
    match b {
        None => "off",
        Some(Backend::Zsmalloc) => "zsmalloc",
        Some(Backend::Zbud) => "zbud",
    }
}

/// One line per run, for people.
pub fn print_run(r: &RunResult) {
    let s = &r.stats;
    println!(
        "  {:<10} {:<8} I/O {:>6} (reads {:>5}, writes {:>5}) | swap-outs {:>5}, swap-ins {:>5}, frontswap \
         stores {:>5} refused {:>4} loads {:>5}, written back {:>4} | mismatches {} | {} ms",
        r.spec.pattern.name(),
        backend_name(r.spec.swap.tmem),
        s.io(),
        s.disk_reads,
        s.disk_writes,
        s.swapouts,
        s.swapins,
        s.frontswap_stores,
        s.frontswap_refused,
        s.frontswap_loads,
        s.written_back,
        r.mismatches,
        centi_ns(r.cycles) / 100_000_000,
    );
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

/// JSON of one run.
pub fn run_json(r: &RunResult) -> String {
    let mut j = format!(
        "{{\"pattern\":\"{}\",\"tmem\":\"{}\",\"region_pages\":{},\"budget_pages\":{},\"accesses\":{},\
         \"mismatches\":{},\"io\":{},\"ms\":{},\"swap\":{}",
        r.spec.pattern.name(),
        backend_name(r.spec.swap.tmem),
        r.spec.swap.region_pages,
        r.spec.swap.budget_pages,
        r.accesses,
        r.mismatches,
        r.stats.io(),
        centi_ns(r.cycles) / 100_000_000,
        r.stats.json()
    );
    if let Some(t) = &r.tmem {
        let _ = write!(
            j,
            ",\"tmem_stats\":{{\"stored_pages\":{},\"same_pages\":{},\"pool_pages\":{},\"limit_pages\":{},\
             \"orig_data_size\":{},\"compr_data_size\":{},\"ephemeral_drops\":{},\"refused_full\":{},\
             \"written_back_pages\":{},\"puts\":{},\"gets\":{}}}",
            t.stored_pages,
            t.same_pages,
            t.pool_pages,
            t.limit_pages,
            t.stored_pages * 4096,
            t.compr_data_size,
            t.ephemeral_drops,
            t.refused_full,
            t.written_back_pages,
            t.puts,
            t.gets
        );
    }
    j.push('}');
    j
}

/// tmem's limit in pages for `percent` of the RAM the frame allocator manages.
pub fn tmem_limit(percent: u64) -> u64 {
    frames::stats().managed * percent.min(100) / 100
}

/// Run the swap demo; returns the `"swap":…` JSON member's value.
pub fn run_demo(facts: &BootFacts) -> String {
    let options = Options::new(facts.options);
    let alg = crate::pooldemo::algorithm(&options);
    let budget = options.number("swap_budget", 1024).max(1);
    let region = budget * options.number("swap_factor", 3).max(1);
    let accesses = options.number("swap_accesses", 4 * region);
    let fail_every = options.number("fail_frame_every", 0);
    let capacity = virtio_blk::disk("swap").map_or(0, |d| d.lock().capacity_pages());
    let slots = options.number("swap_slots", capacity).min(capacity);
    let limit = tmem_limit(options.number("tmem_max_pool_percent", 20));
    let patterns: Vec<Pattern> = match options.get("swap_pattern") {
        Some("all") => Pattern::ALL.to_vec(),
        Some(p) => Pattern::parse(p).into_iter().collect(),
        None => alloc::vec![Pattern::Zipf],
    };
    let backends: Vec<Backend> = match options.get("tmem") {
        Some("zbud") => alloc::vec![Backend::Zbud],
        Some("both") => alloc::vec![Backend::Zsmalloc, Backend::Zbud],
        _ => alloc::vec![Backend::Zsmalloc],
    };
    let source = source(facts, &options);
    println!(
        "swap: region {region} pages over a resident budget of {budget}; {accesses} accesses after the fill; \
         {} swap slots on the virtio-blk disk; tmem limit {limit} pages; {}; compressor {alg:?}",
        slots,
        source.name()
    );
    if fail_every > 0 {
        println!("swap: fault injection: every {fail_every}th pool or workload frame allocation fails");
    }
    let mut json = String::from("{\"runs\":[");
    let mut first = true;
    let mut summary = Vec::new();
    for &pattern in &patterns {
        let mut io_off = None;
        let configs = core::iter::once(None).chain(backends.iter().copied().map(Some));
        for tmem in configs {
            frames::set_fail_every(fail_every);
            let spec = RunSpec {
                swap: SwapConfig {
                    region_pages: region,
                    budget_pages: budget,
                    tmem,
                    tmem_limit_pages: limit,
                    slots,
                    algorithm: alg,
                },
                pattern,
                accesses,
                write_every: 4,
                seed: 42,
                source,
            };
            let result = run(&spec);
            frames::set_fail_every(0);
            match result {
                Ok(r) => {
                    print_run(&r);
                    if !first {
                        json.push(',');
                    }
                    first = false;
                    json.push_str(&run_json(&r));
                    match tmem {
                        None => io_off = Some(r.stats.io()),
                        Some(b) => {
                            if let Some(off) = io_off {
                                summary.push((pattern, b, off, r.stats.io()));
                            }
                        }
                    }
                }
                Err(e) => println!("  {:<10} {:<8} FAILED: {e}", pattern.name(), backend_name(tmem)),
            }
        }
    }
    json.push_str("],\"io_avoided\":[");
    for (i, (pattern, b, off, on)) in summary.iter().enumerate() {
        let avoided = 100.0 * (1.0 - *on as f64 / (*off).max(1) as f64);
        println!(
            "swap: {} with tmem ({}): {on} disk I/Os instead of {off}: {avoided:.1} % of swap I/O avoided",
            pattern.name(),
            backend_name(Some(*b))
        );
        if i > 0 {
            json.push(',');
        }
        let _ = write!(
            json,
            "{{\"pattern\":\"{}\",\"tmem\":\"{}\",\"io_without\":{off},\"io_with\":{on},\"percent\":{avoided:.1}}}",
            pattern.name(),
            backend_name(Some(*b))
        );
    }
    json.push_str("]}");
    json
}

/// `cargo xtask run --workload all`: the swap and the file workloads at once over one zcache, so
/// frontswap's pressure on the shared limit shows as cleancache pages dropped (`ephemeral_drops`).
/// The tmem limit defaults to 1 % of RAM here (`tmem_max_pool_percent`), small enough to fill.
pub fn run_all(facts: &BootFacts) -> String {
    use crate::filecache::{self, FileRun};
    use crate::swap::workload::SwapRun;

    let options = Options::new(facts.options);
    let alg = crate::pooldemo::algorithm(&options);
    let limit = tmem_limit(options.number("tmem_max_pool_percent", 1));
    let budget = options.number("swap_budget", 1024).max(1);
    let region = budget * options.number("swap_factor", 3).max(1);
    let capacity = virtio_blk::disk("swap").map_or(0, |d| d.lock().capacity_pages());
    let swap_spec = RunSpec {
        swap: SwapConfig {
            region_pages: region,
            budget_pages: budget,
            tmem: Some(Backend::Zsmalloc),
            tmem_limit_pages: limit,
            slots: options.number("swap_slots", capacity).min(capacity),
            algorithm: alg,
        },
        pattern: options.get("swap_pattern").and_then(Pattern::parse).unwrap_or(Pattern::Zipf),
        accesses: options.number("swap_accesses", 4 * region),
        write_every: 4,
        seed: 42,
        source: source(facts, &options),
    };
    let file_spec =
        FileSpec { cleancache: Some(filecache::backend_from(&options)), ..filecache::spec_from(&options, alg, limit) };
    println!(
        "all: the swap workload (region {region} pages, budget {budget}) and the file workload (cache {} pages) \
         together over one tmem of {limit} pool pages: frontswap (zsmalloc) and cleancache ({})",
        file_spec.cache_pages,
        file_spec.cleancache.map_or("off", |b| b.name())
    );
    if crate::zcache::install(limit, alg).is_err() {
        println!("all: zcache is already installed");
        return String::from("null");
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
        crate::zcache::force_uninstall();
    } else {
        crate::zcache::uninstall();
    }
    match result {
        Ok((s, f)) => {
            print_run(&s);
            filecache::print_run(&f);
            let drops = f.tmem.map_or(0, |t| t.ephemeral_drops);
            let for_swap = s.stats.cleancache_dropped;
            println!(
                "all: tmem dropped {drops} cleancache pages, {for_swap} of them to make room for frontswap's stores; \
                 frontswap stored {} pages, refused {}, wrote back {}",
                s.stats.frontswap_stores, s.stats.frontswap_refused, s.stats.written_back
            );
            format!(
                "{{\"swap\":{},\"files\":{},\"ephemeral_drops\":{drops},\"dropped_for_frontswap\":{for_swap}}}",
                run_json(&s),
                filecache::run_json(&f)
            )
        }
        Err(e) => {
            println!("all: FAILED: {e}");
            String::from("null")
        }
    }
}
