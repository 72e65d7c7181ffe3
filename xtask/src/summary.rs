//! The short summary `cargo xtask run` ends with, drawn from the typed `@@stats` report
//! (`zstats::Report`) — the same data `report.json` holds, never parsed from the console's text — and
//! which console lines a run shows without `--verbose`.
//!
//! | line | from |
//! |---|---|
//! | what ran | `options`, `firmware`, `cpus_up`, the workload's member |
//! | pages stored, ratio, pool frames, against ideal | `pools[]` (pools), `swap.runs[].tmem_stats` and `.swap` (swap, all) |
//! | I/O avoided at equal memory | `swap.io_avoided[]`, `files.percent_avoided` |
//! | what failed | `failures` |
//!
//! *Ratio* is original bytes ÷ compressed bytes (`stored_pages × 4096 ÷ compr_data_size`); *against
//! ideal* is pool frames ÷ the frames the compressed bytes would fill if packed without a byte lost
//! (`compr_data_size ÷ 4096`), so 1.00× is a perfect pool and +N % is what the pool's layout costs.
//!
//! Without `--verbose` the run hides the full counters: the `@@stats` line, the memory blocks the kernel
//! prints at boot and at the end (`frames:`, `heap:`, `kmap:`, `paging:`, `tlb:`, `locks (…):` and their
//! indented lines) and the rows of the pools demo's allocator table (`| …`). Every other line shows.

use zstats::{Report, TmemReport};

/// At most this many lines.
pub const MAX_LINES: usize = 10;

/// Decides, line by line, what the console shows without `--verbose`.
#[derive(Debug, Default)]
pub struct Brief {
    in_counters: bool,
}

impl Brief {
    /// Whether `line` is shown.
    pub fn show(&mut self, line: &str) -> bool {
        const BLOCKS: [&str; 6] = ["frames: ", "heap: ", "kmap: ", "paging: ", "tlb: ", "locks ("];
        if line.starts_with(zstats::PREFIX) || line.starts_with("| ") {
            return false;
        }
        if BLOCKS.iter().any(|b| line.starts_with(b)) {
            self.in_counters = true;
            return false;
        }
        if self.in_counters && line.starts_with("  ") {
            return false;
        }
        self.in_counters = false;
        true
    }
}

fn ratio(t: &TmemReport) -> String {
    if t.compr_data_size == 0 {
        return "-".into();
    }
    format!("{:.2}", (t.stored_pages * 4096) as f64 / t.compr_data_size as f64)
}

/// Pool frames against the ideal `compr_bytes / 4096`: `"1.20x ideal (+20 %)"`.
fn vs_ideal(frames: u64, compr_bytes: u64) -> String {
    if compr_bytes == 0 {
        return "no compressed bytes".into();
    }
    let x = frames as f64 * 4096.0 / compr_bytes as f64;
    format!("{x:.2}x ideal ({:+.0} %)", (x - 1.0) * 100.0)
}

/// The summary lines (at most [`MAX_LINES`]).
pub fn lines(r: &Report) -> Vec<String> {
    let mut out = Vec::new();
    let opts = r.options.split_whitespace().filter(|o| !o.starts_with("ramdisk_fnv=")).collect::<Vec<_>>().join(" ");
    let opts = if opts.is_empty() { String::from("defaults") } else { opts };
    out.push(format!(
        "summary ({}, {} CPUs; options: {opts}; `--verbose` shows every counter):",
        r.firmware, r.cpus_up
    ));
    if !r.pools.is_empty() {
        let main: Vec<_> = r.pools.iter().filter(|p| !p.pool.contains(' ')).collect();
        for p in &main {
            let t =
                TmemReport { stored_pages: p.stored_pages, compr_data_size: p.compr_data_size, ..Default::default() };
            out.push(format!(
                "  {:<10} {} of {} pages stored ({} same-filled), ratio {}, {} pool frames, {}",
                p.pool,
                p.stored_pages,
                p.pages,
                p.same_pages,
                ratio(&t),
                p.mem_used_total / 4096,
                vs_ideal(p.mem_used_total / 4096, p.compr_data_size)
            ));
        }
        let others = r.pools.len() - main.len();
        if others > 0 || !r.pool_table.is_empty() {
            out.push(format!(
                "  and {others} pools by zram's rule, {} rows of the allocator table (`--verbose`)",
                r.pool_table.len()
            ));
        }
        out.push(
            "  I/O avoided: none measured by the pools demo (`--workload swap` measures it at equal memory)".into(),
        );
    }
    if let Some(s) = &r.swap {
        if let Some(first) = s.runs.first() {
            out.push(format!(
                "  swap: {} over {} pages at memory {} pages (resident + pool frames)",
                first.pattern, first.region_pages, first.budget_pages
            ));
        }
        for run in &s.runs {
            let name = match (run.tmem.as_str(), run.swap.zram_writes > 0) {
                (_, true) => "zram-zsmalloc".to_string(),
                ("off", false) => "disk".to_string(),
                (t, false) => format!("tmem-{t}"),
            };
            let mut line = format!("  {name:<15} disk I/O {:>6}", run.io);
            if let Some(t) = &run.tmem_stats {
                line += &format!(
                    ", {} stores; at the end {} pages in {} pool frames (peak {}), ratio {}, {}",
                    run.swap.frontswap_stores,
                    t.stored_pages,
                    t.pool_pages,
                    run.swap.peak_pool_pages,
                    ratio(t),
                    vs_ideal(t.pool_pages, t.compr_data_size)
                );
            } else if run.swap.zram_writes > 0 {
                line += &format!(
                    ", {} pages written to zram, peak {} pool frames",
                    run.swap.zram_writes, run.swap.peak_pool_pages
                );
                if run.swap.over_budget_steps > 0 {
                    line += &format!("; DOES NOT FIT ({} steps over memory)", run.swap.over_budget_steps);
                }
            }
            out.push(line);
        }
        for a in &s.io_avoided {
            out.push(format!(
                "  I/O avoided at equal memory: {} {:.1} % ({} disk I/Os instead of {})",
                a.tmem, a.percent, a.io_with, a.io_without
            ));
        }
        if !s.smp_runs.is_empty() {
            let runs: Vec<String> =
                s.smp_runs.iter().map(|m| format!("{} I/O {} on {} CPUs", m.config, m.io, m.cpus)).collect();
            out.push(format!("  multi-CPU runs: {}", runs.join(", ")));
        }
    }
    if let Some(f) = &r.files {
        out.push(format!(
            "  files: disk reads {} without cleancache, {} with: {:.1} % avoided",
            f.disk_reads_without, f.disk_reads_with, f.percent_avoided
        ));
        if let Some(w) = f.runs.iter().find(|r| r.cleancache != "off") {
            out.push(format!("  cleancache ({}): {} hits of {} reads", w.cleancache, w.cleancache_hits, w.reads));
        }
    }
    if let Some(a) = &r.all {
        out.push(format!(
            "  swap and files over one tmem: swap disk I/O {}, file disk reads {}; {} clean pages dropped ({} for frontswap)",
            a.swap.io, a.files.disk_reads, a.ephemeral_drops, a.dropped_for_frontswap
        ));
    }
    if let Some(s) = &r.sweep {
        let configs: std::collections::BTreeSet<&str> = s.points.iter().map(|p| p.config.as_str()).collect();
        out.push(format!(
            "  sweep: {} runs of {} configurations over a region of {} pages (`cargo xtask bench --sweep` plots them)",
            s.points.len(),
            configs.len(),
            s.region_pages
        ));
    }
    if let Some(s) = &r.soak {
        out.push(format!(
            "  soak: {} rounds, {} operations, {} pages verified; {} disk and {} frame faults injected; {} pages lost ({} expected)",
            s.rounds, s.operations, s.pages_verified, s.device_faults, s.frame_faults, s.pages_lost, s.lost_expected
        ));
    }
    let failed = match r.failures.as_slice() {
        [] => "  failed: nothing; every check held".to_string(),
        [one] => format!("  FAILED: {one}"),
        [first, rest @ ..] => format!("  FAILED: {} checks; the first: {first}", rest.len() + 1),
    };
    out.truncate(MAX_LINES - 1);
    out.push(failed);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use zstats::{IoAvoidedReport, PoolReport, SwapReport, SwapRunReport, SwapStatsReport};

    fn swap_report() -> Report {
        let run = |tmem: &str, io: u64| SwapRunReport {
            pattern: "zipf".into(),
            tmem: tmem.into(),
            region_pages: 3072,
            budget_pages: 1024,
            io,
            ..Default::default()
        };
        let mut with = run("zsmalloc", 5706);
        with.swap = SwapStatsReport { frontswap_stores: 3728, peak_pool_pages: 204, ..Default::default() };
        with.tmem_stats =
            Some(TmemReport { stored_pages: 275, pool_pages: 190, compr_data_size: 378_754, ..Default::default() });
        let mut zram = run("off", 0);
        zram.swap =
            SwapStatsReport { zram_writes: 7153, peak_pool_pages: 1023, over_budget_steps: 9724, ..Default::default() };
        Report {
            firmware: "BIOS".into(),
            cpus_up: 4,
            options: "ramdisk_fnv=331086d667400915 workload=swap".into(),
            swap: Some(SwapReport {
                runs: vec![run("off", 6030), with, zram],
                io_avoided: vec![IoAvoidedReport {
                    pattern: "zipf".into(),
                    tmem: "tmem-zsmalloc".into(),
                    io_without: 6030,
                    io_with: 5706,
                    percent: 5.4,
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_swap_run_in_seven_lines_from_the_report() {
        let l = lines(&swap_report());
        assert_eq!(
            l,
            [
                "summary (BIOS, 4 CPUs; options: workload=swap; `--verbose` shows every counter):",
                "  swap: zipf over 3072 pages at memory 1024 pages (resident + pool frames)",
                "  disk            disk I/O   6030",
                "  tmem-zsmalloc   disk I/O   5706, 3728 stores; at the end 275 pages in 190 pool frames (peak 204), \
                 ratio 2.97, 2.05x ideal (+105 %)",
                "  zram-zsmalloc   disk I/O      0, 7153 pages written to zram, peak 1023 pool frames; DOES NOT FIT \
                 (9724 steps over memory)",
                "  I/O avoided at equal memory: tmem-zsmalloc 5.4 % (5706 disk I/Os instead of 6030)",
                "  failed: nothing; every check held",
            ]
        );
    }

    #[test]
    fn failures_are_the_last_line_and_the_summary_never_exceeds_ten() {
        let mut r = swap_report();
        r.failures = vec!["swap: 3 pages came back changed".into(), "another".into()];
        r.pools = (0..12)
            .map(|i| PoolReport {
                pool: format!("pool{i}"),
                stored_pages: 10,
                pages: 10,
                compr_data_size: 4096 * 5,
                mem_used_total: 4096 * 6,
                ..Default::default()
            })
            .collect();
        let l = lines(&r);
        assert_eq!(l.len(), MAX_LINES);
        assert_eq!(l.last().unwrap(), "  FAILED: 2 checks; the first: swap: 3 pages came back changed");
        assert!(l[1].contains("ratio 2.00, 6 pool frames, 1.20x ideal (+20 %)"), "{}", l[1]);
    }

    #[test]
    fn brief_hides_the_counter_blocks_and_the_stats_line_only() {
        let console = [
            ("zkernel 0.1.0 on BIOS, booted by bootloader 0.11.17", true),
            ("frames: 59802 managed (233 MiB), frame table 1535 KiB", false),
            ("  free 59267 used 359 per-cpu 176", false),
            ("heap: 2 KiB in use of 320 KiB", false),
            ("locks (lock order checked 958 times):", false),
            ("  zcache          7169 acquisitions", false),
            ("swap: region 3072 pages, memory 1024 pages", true),
            ("  zipf       disk           I/O   6030", true),
            ("| perl | zbud | 2047 |", false),
            ("@@stats {\"firmware\":\"BIOS\"}", false),
            ("zkernel: done, powering off", true),
        ];
        let mut b = Brief::default();
        for (line, shown) in console {
            assert_eq!(b.show(line), shown, "{line}");
        }
    }
}
