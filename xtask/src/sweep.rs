//! `cargo xtask bench --sweep`: compression at equal memory — the disk I/O each configuration needs at
//! each memory size, the table, the plot, and where compression stops paying.
//!
//! # Why
//!
//! The swap demo (`workload=swap`) gives tmem its pool *on top of* the resident budget, so compression
//! always wins: it is extra memory. The fair question, the one zcache's and zram's authors had to answer
//! on small machines, is whether a frame of compressed pages is worth more than a frame of plain ones. So
//! the kernel's `workload=sweep` runs the same swap workload (same pages, same accesses) at each memory
//! size N = 20 %, 30 %, …, 100 % of the region, and N counts everything the configuration keeps for the
//! region: resident pages plus pool frames. This file boots that kernel once and turns its one `@@stats`
//! report (`zstats::SweepReport`) into figures.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | region | the demand-paged memory of the swap workload, `swap_factor` × `swap_mem` pages: 100 % of the axis |
//! | N | the memory a run may use, in pages: resident region pages + pool frames ≤ N (`SweepPoint::mem_pages`) |
//! | configuration | `disk` (no compression), `tmem-zsmalloc`, `tmem-zbud`, `tmem-xvmalloc`, `tmem-xcfmalloc` (frontswap + tmem on that pool), `zram-zsmalloc` (a zram swap device) |
//! | baseline | `disk`: what every compressed configuration is compared with, at the same N |
//! | I/O | swap-disk pages read + written in one run (`SweepPoint::io`) |
//! | does not fit | the configuration could not keep resident + pool ≤ N (zram full, say): the point has no figure |
//! | compared N | an N at which disk-only ran, fitted and did some I/O, and the configuration ran: where it could pay |
//! | pays at N | the configuration fits and does fewer I/Os than disk-only at that N |
//! | crossover | the memory below which compression stops paying: the largest compared N at which it does not pay |
//!
//! # Outputs (under `target/zkernel/`)
//!
//! | file | what |
//! |---|---|
//! | `sweep.md` (also printed) | rows = N (pages, % of region); a column per configuration with its I/O or "does not fit"; then, per compressed configuration, the I/O avoided against disk-only in %; then one crossover line per compressed configuration |
//! | `sweep.png` | x = N in % of the region, y = I/O, one line per configuration (broken where it does not fit), legend, title naming the page file and the region |
//! | `sweep.json` | the page file, the y scale, the crossovers (typed and as lines), and the kernel's whole report |
//!
//! The y axis is logarithmic when the figures span a wide range — the largest I/O at least
//! [`LOG_RATIO`] times the smallest, a zero counted as 1 — so the compressed configurations' small
//! figures stay readable beside disk-only's; a zero is then drawn on the bottom edge ([`LOG_FLOOR`]).
//! Otherwise it is linear from 0.
//!
//! # Worked example
//!
//! The test `table_and_crossovers_of_a_constructed_sweep` checks these figures exactly (region 1000
//! pages; 100 % is left out of the comparison because disk-only did no I/O there — nothing to avoid):
//!
//! | N | disk | tmem-zsmalloc | tmem-zbud | zram-zsmalloc |
//! |---:|---:|---:|---:|---:|
//! | 200 (20 %) | 9000 | does not fit | 8500 | 5000 |
//! | 400 (40 %) | 6000 | 2500 | 6200 | 2000 |
//! | 600 (60 %) | 3000 | 800 | 2000 | 900 |
//! | 800 (80 %) | 1000 | 150 | 600 | 1200 |
//!
//! tmem-zsmalloc does not fit at 20 % and pays from 40 % up: it stops paying at 20 % (200 pages) and
//! below. tmem-zbud loses at 40 % and wins above it: it stops paying at 40 %, and it also pays at 20 %
//! below that (the sweep says so rather than hide it). zram-zsmalloc wins up to 60 % and loses at 80 %,
//! the largest N compared: it pays only at 20 %, 40 % and 60 %.
//!
//! # Contracts
//!
//! - The kernel does the measuring; this file only reads, checks and draws. A report that breaks the
//!   sweep's invariants (no points, no `disk` baseline, a configuration twice at one N, two percents for
//!   one N, `io` not reads + writes, a mismatch) is a [`SweepError`], never a figure.
//! - A point that does not fit is never drawn and never compared as a number: at that N the
//!   configuration does not pay.
//! - The kernel option is `workload=sweep`; the run uses the default page file unless `--pages` names one,
//!   a BIOS image, and a [`TIMEOUT_SECS`] timeout.

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use plotters::prelude::*;
use plotters::style::register_font;
use serde::Serialize;
use serde_json::json;
use zstats::{SweepPoint, SweepReport, percent_avoided};

use crate::{BuildOpts, MachineOpts, RunOpts, execute_run, prepare_run, qemu};

/// The configuration every other one is compared with: no compression, every swap-out to the disk.
pub const BASELINE: &str = "disk";
/// Seconds the one boot may take: 6 configurations × 9 sizes of the swap workload under TCG.
pub const TIMEOUT_SECS: u64 = 900;
/// The name of the sweep's swap disk (`target/zkernel/disks/…`), apart from `run`'s.
const SWAP_NAME: &str = "sweep";
/// The plot's size in pixels.
pub const PNG_SIZE: (u32, u32) = (1400, 850);
/// Log y axis when the largest I/O is at least this many times the smallest (a zero counts as 1).
pub const LOG_RATIO: u64 = 100;
/// Where a zero is drawn on a log axis: the bottom edge.
pub const LOG_FLOOR: f64 = 0.5;

/// Why a sweep report cannot be drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepError {
    /// The report has no points.
    NoPoints,
    /// No point of the baseline (`disk`): nothing to compare with.
    NoBaseline,
    /// A configuration appears twice at one N.
    Duplicate { config: String, mem_pages: u64 },
    /// Two points at one N give different percents of the region.
    PercentDiffers { mem_pages: u64, first: u64, second: u64 },
    /// A point's `io` is not its `disk_reads + disk_writes`.
    IoNotSum { config: String, mem_pages: u64, io: u64, reads: u64, writes: u64 },
    /// Pages did not read back identical: the run's figures stand for nothing.
    Mismatches { config: String, mem_pages: u64, count: u64 },
}

impl fmt::Display for SweepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SweepError::NoPoints => write!(f, "the sweep has no points"),
            SweepError::NoBaseline => write!(f, "the sweep has no `{BASELINE}` point to compare with"),
            SweepError::Duplicate { config, mem_pages } => write!(f, "{config} appears twice at N = {mem_pages} pages"),
            SweepError::PercentDiffers { mem_pages, first, second } => {
                write!(f, "N = {mem_pages} pages is {first} % of the region in one point and {second} % in another")
            }
            SweepError::IoNotSum { config, mem_pages, io, reads, writes } => {
                write!(f, "{config} at N = {mem_pages} pages: io {io} is not disk_reads {reads} + disk_writes {writes}")
            }
            SweepError::Mismatches { config, mem_pages, count } => {
                write!(f, "{config} at N = {mem_pages} pages: {count} page(s) did not read back identical")
            }
        }
    }
}

impl std::error::Error for SweepError {}

/// A memory size N: in pages and in percent of the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Memory {
    pub mem_pages: u64,
    pub percent: u64,
}

/// Where compression stops paying for one configuration, over the compared N.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Crossover {
    /// Fewer disk I/Os than disk-only at every compared N, `from` the smallest `to` the largest.
    PaysEverywhere { from: Memory, to: Memory },
    /// Disk-only does as well or better at every compared N.
    NeverPays { from: Memory, to: Memory },
    /// `at` is the largest compared N at which disk-only does as well or better; the configuration
    /// pays at every compared N above it, the smallest being `pays_from` (`None` when `at` is the
    /// largest compared N). `pays_below`: the compared N below `at` at which it pays all the same.
    StopsPaying { at: Memory, pays_from: Option<Memory>, pays_below: Vec<Memory> },
    /// No compared N: disk-only never fitted with I/O to avoid where this configuration ran.
    NoComparison,
}

/// A sweep report checked and arranged: columns (configurations) and rows (N).
#[derive(Debug)]
pub struct Sweep<'a> {
    report: &'a SweepReport,
    /// The baseline first, then the other configurations in the order the kernel first ran them.
    configs: Vec<&'a str>,
    /// Every N, smallest first.
    rows: Vec<Memory>,
}

impl<'a> Sweep<'a> {
    /// Check `report` against the sweep's invariants and arrange it.
    pub fn new(report: &'a SweepReport) -> Result<Self, SweepError> {
        if report.points.is_empty() {
            return Err(SweepError::NoPoints);
        }
        let mut seen = BTreeSet::new();
        let mut rows: Vec<Memory> = Vec::new();
        let mut configs: Vec<&str> = Vec::new();
        for p in &report.points {
            if !seen.insert((p.config.as_str(), p.mem_pages)) {
                return Err(SweepError::Duplicate { config: p.config.clone(), mem_pages: p.mem_pages });
            }
            match rows.iter().find(|r| r.mem_pages == p.mem_pages) {
                Some(r) if r.percent != p.percent => {
                    return Err(SweepError::PercentDiffers {
                        mem_pages: p.mem_pages,
                        first: r.percent,
                        second: p.percent,
                    });
                }
                Some(_) => {}
                None => rows.push(Memory { mem_pages: p.mem_pages, percent: p.percent }),
            }
            if p.disk_reads.checked_add(p.disk_writes) != Some(p.io) {
                return Err(SweepError::IoNotSum {
                    config: p.config.clone(),
                    mem_pages: p.mem_pages,
                    io: p.io,
                    reads: p.disk_reads,
                    writes: p.disk_writes,
                });
            }
            if p.mismatches != 0 {
                return Err(SweepError::Mismatches {
                    config: p.config.clone(),
                    mem_pages: p.mem_pages,
                    count: p.mismatches,
                });
            }
            if !configs.contains(&p.config.as_str()) {
                configs.push(&p.config);
            }
        }
        let Some(at) = configs.iter().position(|c| *c == BASELINE) else {
            return Err(SweepError::NoBaseline);
        };
        let baseline = configs.remove(at);
        configs.insert(0, baseline);
        rows.sort_by_key(|r| r.mem_pages);
        Ok(Sweep { report, configs, rows })
    }

    /// The compressed configurations: every one but the baseline.
    pub fn compressed(&self) -> &[&'a str] {
        &self.configs[1..]
    }

    /// The point of `config` at N = `mem_pages`, if the kernel ran it.
    pub fn point(&self, config: &str, mem_pages: u64) -> Option<&'a SweepPoint> {
        self.report.points.iter().find(|p| p.config == config && p.mem_pages == mem_pages)
    }

    /// For `config`, every compared N (smallest first) and whether the configuration pays there.
    fn compared(&self, config: &str) -> Vec<(Memory, bool)> {
        self.rows
            .iter()
            .filter_map(|r| {
                let disk = self.point(BASELINE, r.mem_pages).filter(|d| d.fits && d.io > 0)?;
                let p = self.point(config, r.mem_pages)?;
                Some((*r, p.fits && p.io < disk.io))
            })
            .collect()
    }

    /// Where compression stops paying for `config`: the largest compared N at which disk-only does as
    /// well or better (fewer or equal I/Os, or `config` does not fit).
    pub fn crossover(&self, config: &str) -> Crossover {
        let compared = self.compared(config);
        let (Some(first), Some(last)) = (compared.first(), compared.last()) else {
            return Crossover::NoComparison;
        };
        let (from, to) = (first.0, last.0);
        let Some(at) = compared.iter().rposition(|(_, pays)| !pays) else {
            return Crossover::PaysEverywhere { from, to };
        };
        if compared.iter().all(|(_, pays)| !pays) {
            return Crossover::NeverPays { from, to };
        }
        Crossover::StopsPaying {
            at: compared[at].0,
            pays_from: compared.get(at + 1).map(|c| c.0),
            pays_below: compared[..at].iter().filter(|(_, pays)| *pays).map(|c| c.0).collect(),
        }
    }

    /// One line per compressed configuration: where compression stops paying.
    pub fn crossover_lines(&self) -> Vec<String> {
        self.compressed().iter().map(|c| crossover_line(c, &self.crossover(c))).collect()
    }

    /// The markdown table and the crossover lines; `source` names the page file.
    pub fn markdown(&self, source: &str) -> String {
        let r = self.report;
        let mut md = String::new();
        let _ = writeln!(md, "# Disk I/O at equal memory\n");
        let _ = writeln!(
            md,
            "Page file `{source}` (the kernel's page source: `{}`); region {} pages; {} accesses per run.",
            r.pages, r.region_pages, r.accesses
        );
        let _ = writeln!(
            md,
            "Each cell is one run's swap-disk I/O (pages read + written) with N pages of memory: resident \
             pages + pool frames never exceeded N. \"does not fit\": the configuration could not stay within \
             N, so there is no figure; \"—\": no figure. \"avoided\": the share of disk-only's I/O the \
             configuration avoided at the same N.\n"
        );
        let mut head = vec!["N (pages)".to_string(), "N (% of region)".to_string()];
        head.extend(self.configs.iter().map(|c| c.to_string()));
        head.extend(self.compressed().iter().map(|c| format!("avoided: {c}")));
        let _ = writeln!(md, "| {} |", head.join(" | "));
        let _ = writeln!(md, "|{}", "---:|".repeat(head.len()));
        for row in &self.rows {
            let mut cells = vec![row.mem_pages.to_string(), format!("{} %", row.percent)];
            cells.extend(self.configs.iter().map(|c| match self.point(c, row.mem_pages) {
                None => "—".to_string(),
                Some(p) if !p.fits => "does not fit".to_string(),
                Some(p) => p.io.to_string(),
            }));
            let disk = self.point(BASELINE, row.mem_pages).filter(|d| d.fits && d.io > 0);
            cells.extend(self.compressed().iter().map(|c| {
                match (disk, self.point(c, row.mem_pages).filter(|p| p.fits)) {
                    (Some(d), Some(p)) => format!("{:.1} %", percent_avoided(d.io, p.io)),
                    _ => "—".to_string(),
                }
            }));
            let _ = writeln!(md, "| {} |", cells.join(" | "));
        }
        let _ = writeln!(md, "\n## Where compression stops paying\n");
        let _ = writeln!(
            md,
            "The largest N at which disk-only does as well or better (as few or fewer I/Os, or the \
             configuration does not fit). N at which disk-only did no I/O are not compared: nothing to avoid.\n"
        );
        for line in self.crossover_lines() {
            let _ = writeln!(md, "- {line}");
        }
        md
    }

    /// Whether the plot's y axis is logarithmic: the fitting points' I/O spans [`LOG_RATIO`] or more.
    pub fn log_scale(&self) -> bool {
        let ios = || self.report.points.iter().filter(|p| p.fits).map(|p| p.io);
        match (ios().min(), ios().max()) {
            (Some(min), Some(max)) => max >= LOG_RATIO.saturating_mul(min.max(1)),
            _ => false,
        }
    }

    /// Draw the line plot to `path` (PNG, [`PNG_SIZE`]); `source` names the page file in the title.
    pub fn plot(&self, path: &Path, source: &str) -> Result<(), String> {
        register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| "the embedded DejaVu Sans is not a font".to_string())?;
        register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold())
            .map_err(|_| "the embedded DejaVu Sans Bold is not a font".to_string())?;
        let err = |e: &dyn fmt::Display| format!("drawing {}: {e}", path.display());
        let r = self.report;
        let (first, last) = match (self.rows.first(), self.rows.last()) {
            (Some(f), Some(l)) => (f.percent as f64, l.percent as f64),
            _ => return Err(err(&SweepError::NoPoints)),
        };
        let x_range = first - 5.0..last + 5.0;
        let max = self.report.points.iter().filter(|p| p.fits).map(|p| p.io).max().unwrap_or(0).max(1) as f64;
        let log = self.log_scale();
        let caption = format!("Disk I/O at equal memory: {source}, region {} pages", r.region_pages);
        let y_desc = format!(
            "swap-disk I/O, pages read + written ({})",
            if log { "log scale; 0 on the bottom edge" } else { "linear" }
        );
        let x_desc = "memory N = resident pages + pool frames, % of the region";

        let root = BitMapBackend::new(path, PNG_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(caption, ("sans-serif", 28).into_font().style(FontStyle::Bold))
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(100);
        // The two scales are two chart types; the drawing below is the same for both.
        macro_rules! draw {
            ($chart:expr, $y:expr) => {{
                let mut c = $chart;
                let y = $y;
                c.configure_mesh()
                    .x_labels(self.rows.len().max(2))
                    .x_label_formatter(&|x| format!("{x:.0} %"))
                    .y_label_formatter(&|v| if *v < 1.0 { "0".to_string() } else { format!("{v:.0}") })
                    .x_label_style(("sans-serif", 18))
                    .y_label_style(("sans-serif", 18))
                    .x_desc(x_desc)
                    .y_desc(y_desc.as_str())
                    .axis_desc_style(("sans-serif", 20))
                    .draw()
                    .map_err(|e| err(&e))?;
                for (i, config) in self.configs.iter().enumerate() {
                    let colour = colour(config, i);
                    let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
                    let mut no_fit = Vec::new();
                    for row in &self.rows {
                        match self.point(config, row.mem_pages) {
                            None => {}
                            Some(p) if !p.fits => {
                                no_fit.push(format!("{} %", row.percent));
                                segments.push(Vec::new());
                            }
                            Some(p) => {
                                if let Some(s) = segments.last_mut() {
                                    s.push((row.percent as f64, y(p.io)));
                                }
                            }
                        }
                    }
                    let label = if no_fit.is_empty() {
                        config.to_string()
                    } else {
                        format!("{config} (does not fit at {})", no_fit.join(", "))
                    };
                    c.draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
                        .map_err(|e| err(&e))?
                        .label(label)
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(3)));
                    for s in segments.iter().filter(|s| !s.is_empty()) {
                        c.draw_series(LineSeries::new(s.iter().copied(), colour.stroke_width(3)))
                            .map_err(|e| err(&e))?;
                        c.draw_series(s.iter().map(|&xy| Circle::new(xy, 5, colour.filled()))).map_err(|e| err(&e))?;
                    }
                }
                c.configure_series_labels()
                    .position(SeriesLabelPosition::UpperRight)
                    .background_style(WHITE.mix(0.9))
                    .border_style(BLACK)
                    .label_font(("sans-serif", 18))
                    .draw()
                    .map_err(|e| err(&e))?;
            }};
        }
        if log {
            let chart = builder.build_cartesian_2d(x_range, (LOG_FLOOR..max * 2.0).log_scale()).map_err(|e| err(&e))?;
            draw!(chart, |io: u64| (io as f64).max(LOG_FLOOR));
        } else {
            let chart = builder.build_cartesian_2d(x_range, 0.0..max * 1.1).map_err(|e| err(&e))?;
            draw!(chart, |io: u64| io as f64);
        }
        root.present().map_err(|e| err(&e))?;
        Ok(())
    }
}

/// A configuration's colour in the plot: fixed for the known ones, a palette colour for others.
pub fn colour(config: &str, index: usize) -> RGBColor {
    match config {
        "disk" => RGBColor(0, 0, 0),
        "tmem-zsmalloc" => RGBColor(31, 119, 180),
        "tmem-zbud" => RGBColor(140, 140, 140),
        "tmem-xvmalloc" => RGBColor(214, 39, 40),
        "tmem-xcfmalloc" => RGBColor(255, 127, 14),
        "zram-zsmalloc" => RGBColor(44, 160, 44),
        _ => {
            let (r, g, b) = Palette99::pick(index).rgb();
            RGBColor(r, g, b)
        }
    }
}

/// `20 %, 40 % and 60 %`
fn percents(ms: &[Memory]) -> String {
    let p: Vec<String> = ms.iter().map(|m| format!("{} %", m.percent)).collect();
    match p.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// The crossover of `config` as one line of text.
pub fn crossover_line(config: &str, c: &Crossover) -> String {
    match c {
        Crossover::PaysEverywhere { from, to } => {
            format!("{config}: pays at every N measured ({} % to {} % of the region)", from.percent, to.percent)
        }
        Crossover::NeverPays { from, to } => format!(
            "{config}: never pays: disk-only does as well or better at every N measured ({} % to {} % of the region)",
            from.percent, to.percent
        ),
        Crossover::StopsPaying { at, pays_from: Some(up), pays_below } => {
            let mut line = format!(
                "{config}: stops paying at {} % of the region ({} pages) and below; pays from {} % ({} pages) up",
                at.percent, at.mem_pages, up.percent, up.mem_pages
            );
            if !pays_below.is_empty() {
                let _ = write!(line, "; below that it pays again at {}", percents(pays_below));
            }
            line
        }
        Crossover::StopsPaying { at, pays_from: None, pays_below } => format!(
            "{config}: disk-only does as well or better at the largest N measured, {} % ({} pages); it pays only at {}",
            at.percent,
            at.mem_pages,
            percents(pays_below)
        ),
        Crossover::NoComparison => format!("{config}: no N at which both it and disk-only ran with disk I/O to avoid"),
    }
}

/// The run `cargo xtask run -- workload=sweep` would make, with the sweep's timeout and swap disk name.
fn run_opts(pages: Option<&Path>) -> RunOpts {
    RunOpts {
        build: BuildOpts { release: false, uefi: false },
        machine: MachineOpts { kvm: false, smp: 4, mem: 256, timeout: Some(TIMEOUT_SECS) },
        display: false,
        pages: pages.map(Path::to_path_buf),
        synthetic: false,
        help_kernel: false,
        verbose: false,
        files: None,
        swap_mib: qemu::SWAP_MIB,
        workload: Some(crate::Workload::Sweep),
        shell: false,
        script: None,
        kernel_options: Vec::new(),
    }
}

/// `cargo xtask bench --sweep [--pages FILE]`: boot the sweep once, write `sweep.json`, `sweep.md` and
/// `sweep.png` to `out_dir`, print the table and the crossover lines.
pub fn sweep(pages: Option<&Path>, out_dir: &Path) -> Result<()> {
    let prepared = prepare_run(&run_opts(pages), false, true, SWAP_NAME)?;
    eprintln!("xtask: {} {}", qemu::QEMU, prepared.args.join(" "));
    let passed = execute_run(&prepared, true)?.into_result()?;
    let report = passed.report;
    let source = prepared
        .pages
        .as_ref()
        .and_then(|p| p.source.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "synthetic pages".to_string());
    let paths: [PathBuf; 3] = ["sweep.json", "sweep.md", "sweep.png"].map(|n| out_dir.join(n));
    let [json_path, md_path, png_path] = &paths;
    let sweep = report.sweep.as_ref().context("the kernel's report has no `sweep` member")?;
    let checked = Sweep::new(sweep);
    // The report is saved first, checked or not, so a bad sweep can be looked at.
    let crossovers: Vec<_> = match &checked {
        Ok(s) => s
            .compressed()
            .iter()
            .map(|c| {
                let x = s.crossover(c);
                json!({ "config": c, "line": crossover_line(c, &x), "crossover": x })
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let log = checked.as_ref().is_ok_and(Sweep::log_scale);
    let saved = json!({
        "page_file": source,
        "y_scale": if log { "log" } else { "linear" },
        "crossover": crossovers,
        "report": report,
    });
    let text = serde_json::to_string_pretty(&saved).context("rendering sweep.json")? + "\n";
    std::fs::write(json_path, text).with_context(|| format!("writing {}", json_path.display()))?;
    let s = checked.with_context(|| format!("the sweep cannot be drawn (report saved to {})", json_path.display()))?;
    if !report.failures.is_empty() {
        bail!("the kernel lists failures: {:?}", report.failures);
    }
    let md = s.markdown(&source);
    std::fs::write(md_path, &md).with_context(|| format!("writing {}", md_path.display()))?;
    s.plot(png_path, &source).map_err(anyhow::Error::msg)?;
    println!("\n{md}");
    eprintln!("xtask: y axis: {}", if log { "log scale (a wide range)" } else { "linear" });
    for p in &paths {
        eprintln!("xtask: sweep: {}", p.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn point(config: &str, percent: u64, io: Option<u64>) -> SweepPoint {
        let io_or_0 = io.unwrap_or(0);
        SweepPoint {
            config: config.into(),
            mem_pages: percent * 10,
            percent,
            io: io_or_0,
            disk_reads: io_or_0 / 2,
            disk_writes: io_or_0 - io_or_0 / 2,
            fits: io.is_some(),
            mismatches: 0,
            peak_pool_pages: 0,
            peak_resident: percent * 10,
            clean_reclaims_saved: 0,
            ms: 1000,
        }
    }

    /// The header's worked example, plus tmem-xvmalloc (never pays) and tmem-xcfmalloc (pays at every
    /// N), in the kernel's order (not the baseline first).
    fn example() -> SweepReport {
        let series: [(&str, [Option<u64>; 5]); 6] = [
            ("tmem-zsmalloc", [None, Some(2500), Some(800), Some(150), Some(0)]),
            ("disk", [Some(9000), Some(6000), Some(3000), Some(1000), Some(0)]),
            ("tmem-zbud", [Some(8500), Some(6200), Some(2000), Some(600), Some(0)]),
            ("tmem-xvmalloc", [Some(9100), Some(6000), Some(3100), Some(1100), Some(0)]),
            ("tmem-xcfmalloc", [Some(8000), Some(5000), Some(2000), Some(500), Some(0)]),
            ("zram-zsmalloc", [Some(5000), Some(2000), Some(900), Some(1200), Some(0)]),
        ];
        let mut points = Vec::new();
        for (config, ios) in series {
            for (percent, io) in [20, 40, 60, 80, 100].into_iter().zip(ios) {
                points.push(point(config, percent, io));
            }
        }
        SweepReport { region_pages: 1000, accesses: 5000, pages: "ramdisk".into(), points }
    }

    fn m(percent: u64) -> Memory {
        Memory { mem_pages: percent * 10, percent }
    }

    #[test]
    fn table_and_crossovers_of_a_constructed_sweep() {
        let report = example();
        let s = Sweep::new(&report).unwrap();
        // The baseline first, then the kernel's order.
        assert_eq!(
            s.configs,
            ["disk", "tmem-zsmalloc", "tmem-zbud", "tmem-xvmalloc", "tmem-xcfmalloc", "zram-zsmalloc"]
        );
        assert_eq!(
            s.crossover("tmem-zsmalloc"),
            Crossover::StopsPaying { at: m(20), pays_from: Some(m(40)), pays_below: vec![] }
        );
        assert_eq!(
            s.crossover("tmem-zbud"),
            Crossover::StopsPaying { at: m(40), pays_from: Some(m(60)), pays_below: vec![m(20)] }
        );
        // Equal I/O at 40 % is "as well": disk-only wins ties.
        assert_eq!(s.crossover("tmem-xvmalloc"), Crossover::NeverPays { from: m(20), to: m(80) });
        assert_eq!(s.crossover("tmem-xcfmalloc"), Crossover::PaysEverywhere { from: m(20), to: m(80) });
        assert_eq!(
            s.crossover("zram-zsmalloc"),
            Crossover::StopsPaying { at: m(80), pays_from: None, pays_below: vec![m(20), m(40), m(60)] }
        );
        assert_eq!(s.crossover("tmem-nothing"), Crossover::NoComparison);
        let expected = "\
# Disk I/O at equal memory

Page file `perl-heap.pages.gz` (the kernel's page source: `ramdisk`); region 1000 pages; 5000 accesses per run.
Each cell is one run's swap-disk I/O (pages read + written) with N pages of memory: resident pages + pool frames never exceeded N. \"does not fit\": the configuration could not stay within N, so there is no figure; \"—\": no figure. \"avoided\": the share of disk-only's I/O the configuration avoided at the same N.

| N (pages) | N (% of region) | disk | tmem-zsmalloc | tmem-zbud | tmem-xvmalloc | tmem-xcfmalloc | zram-zsmalloc | avoided: tmem-zsmalloc | avoided: tmem-zbud | avoided: tmem-xvmalloc | avoided: tmem-xcfmalloc | avoided: zram-zsmalloc |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
| 200 | 20 % | 9000 | does not fit | 8500 | 9100 | 8000 | 5000 | — | 5.6 % | -1.1 % | 11.1 % | 44.4 % |
| 400 | 40 % | 6000 | 2500 | 6200 | 6000 | 5000 | 2000 | 58.3 % | -3.3 % | 0.0 % | 16.7 % | 66.7 % |
| 600 | 60 % | 3000 | 800 | 2000 | 3100 | 2000 | 900 | 73.3 % | 33.3 % | -3.3 % | 33.3 % | 70.0 % |
| 800 | 80 % | 1000 | 150 | 600 | 1100 | 500 | 1200 | 85.0 % | 40.0 % | -10.0 % | 50.0 % | -20.0 % |
| 1000 | 100 % | 0 | 0 | 0 | 0 | 0 | 0 | — | — | — | — | — |

## Where compression stops paying

The largest N at which disk-only does as well or better (as few or fewer I/Os, or the configuration does not fit). N at which disk-only did no I/O are not compared: nothing to avoid.

- tmem-zsmalloc: stops paying at 20 % of the region (200 pages) and below; pays from 40 % (400 pages) up
- tmem-zbud: stops paying at 40 % of the region (400 pages) and below; pays from 60 % (600 pages) up; below that it pays again at 20 %
- tmem-xvmalloc: never pays: disk-only does as well or better at every N measured (20 % to 80 % of the region)
- tmem-xcfmalloc: pays at every N measured (20 % to 80 % of the region)
- zram-zsmalloc: disk-only does as well or better at the largest N measured, 80 % (800 pages); it pays only at 20 %, 40 % and 60 %
";
        assert_eq!(s.markdown("perl-heap.pages.gz"), expected);
        // 9100 / max(0, 1) spans more than 100: log scale. Without the zeros, 9100 / 150 is 60.7: linear.
        assert!(s.log_scale());
        let mut narrow = example();
        narrow.points.retain(|p| p.percent < 100);
        assert!(!Sweep::new(&narrow).unwrap().log_scale());
    }

    #[test]
    fn a_config_that_never_fits_never_pays_and_missing_points_are_skipped() {
        let mut r = example();
        r.points.retain(|p| p.config == "disk" || p.config == "zram-zsmalloc");
        for p in r.points.iter_mut().filter(|p| p.config == "zram-zsmalloc") {
            *p = point("zram-zsmalloc", p.percent, None);
        }
        // No zram point at 60 %: that N is not compared, and its cell is "—".
        r.points.retain(|p| !(p.config == "zram-zsmalloc" && p.percent == 60));
        let s = Sweep::new(&r).unwrap();
        assert_eq!(s.crossover("zram-zsmalloc"), Crossover::NeverPays { from: m(20), to: m(80) });
        let md = s.markdown("x");
        assert!(md.contains("| 600 | 60 % | 3000 | — | — |\n"), "{md}");
        assert!(md.contains("| 800 | 80 % | 1000 | does not fit | — |\n"), "{md}");
    }

    #[test]
    fn reports_that_break_the_invariants_are_refused() {
        assert_eq!(Sweep::new(&SweepReport::default()).unwrap_err(), SweepError::NoPoints);
        let mut r = example();
        r.points.retain(|p| p.config != "disk");
        assert_eq!(Sweep::new(&r).unwrap_err(), SweepError::NoBaseline);
        let mut r = example();
        r.points.push(point("tmem-zbud", 40, Some(1)));
        assert_eq!(Sweep::new(&r).unwrap_err(), SweepError::Duplicate { config: "tmem-zbud".into(), mem_pages: 400 });
        let mut r = example();
        r.points[7].percent = 61;
        let e = Sweep::new(&r).unwrap_err();
        assert_eq!(e, SweepError::PercentDiffers { mem_pages: 600, first: 60, second: 61 });
        assert_eq!(e.to_string(), "N = 600 pages is 60 % of the region in one point and 61 % in another");
        let mut r = example();
        r.points[1].io += 1;
        let e = Sweep::new(&r).unwrap_err();
        assert_eq!(e.to_string(), "tmem-zsmalloc at N = 400 pages: io 2501 is not disk_reads 1250 + disk_writes 1250");
        let mut r = example();
        r.points[2].mismatches = 3;
        let e = Sweep::new(&r).unwrap_err();
        assert_eq!(e, SweepError::Mismatches { config: "tmem-zsmalloc".into(), mem_pages: 600, count: 3 });
    }

    // -----------------------------------------------------------------------------------------------
    // A small PNG reader: chunks with their CRC, IHDR, IDAT inflated and unfiltered (8-bit RGB only).
    // -----------------------------------------------------------------------------------------------

    /// Width, height and the RGB pixels of an 8-bit RGB, non-interlaced PNG; panics on anything else.
    fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<[u8; 3]>) {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        let (mut at, mut ihdr, mut idat) = (8, None, Vec::new());
        loop {
            let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            let kind = &bytes[at + 4..at + 8];
            let data = &bytes[at + 8..at + 8 + len];
            let crc = u32::from_be_bytes(bytes[at + 8 + len..at + 12 + len].try_into().unwrap());
            let mut c = flate2::Crc::new();
            c.update(&bytes[at + 4..at + 8 + len]);
            assert_eq!(c.sum(), crc, "CRC of a {} chunk", String::from_utf8_lossy(kind));
            match kind {
                b"IHDR" => ihdr = Some(data.to_vec()),
                b"IDAT" => idat.extend_from_slice(data),
                b"IEND" => break,
                _ => {}
            }
            at += 12 + len;
        }
        let ihdr = ihdr.expect("an IHDR chunk");
        let w = u32::from_be_bytes(ihdr[0..4].try_into().unwrap());
        let h = u32::from_be_bytes(ihdr[4..8].try_into().unwrap());
        assert_eq!(&ihdr[8..13], &[8, 2, 0, 0, 0], "8-bit RGB, deflate, adaptive filters, not interlaced");
        let mut raw = Vec::new();
        flate2::read::ZlibDecoder::new(&idat[..]).read_to_end(&mut raw).unwrap();
        let stride = w as usize * 3;
        assert_eq!(raw.len(), h as usize * (1 + stride));
        let mut out = vec![0u8; h as usize * stride];
        for y in 0..h as usize {
            let filter = raw[y * (1 + stride)];
            let line = &raw[y * (1 + stride) + 1..(y + 1) * (1 + stride)];
            for x in 0..stride {
                let a = if x >= 3 { out[y * stride + x - 3] } else { 0 };
                let b = if y > 0 { out[(y - 1) * stride + x] } else { 0 };
                let c = if x >= 3 && y > 0 { out[(y - 1) * stride + x - 3] } else { 0 };
                let predictor = match filter {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                    4 => {
                        let p = i16::from(a) + i16::from(b) - i16::from(c);
                        let (pa, pb, pc) =
                            ((p - i16::from(a)).abs(), (p - i16::from(b)).abs(), (p - i16::from(c)).abs());
                        if pa <= pb && pa <= pc {
                            a
                        } else if pb <= pc {
                            b
                        } else {
                            c
                        }
                    }
                    f => panic!("filter type {f}"),
                };
                out[y * stride + x] = line[x].wrapping_add(predictor);
            }
        }
        (w, h, out.chunks(3).map(|p| [p[0], p[1], p[2]]).collect())
    }

    #[test]
    fn the_plot_is_a_png_with_a_line_per_configuration() {
        let dir = std::env::temp_dir().join(format!("zkernel-sweep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let report = example();
        let s = Sweep::new(&report).unwrap();
        let path = dir.join("sweep.png");
        s.plot(&path, "perl-heap.pages.gz").unwrap();
        let (w, h, pixels) = decode_png(&std::fs::read(&path).unwrap());
        assert_eq!((w, h), PNG_SIZE);
        assert!(pixels.iter().filter(|p| **p == [255, 255, 255]).count() > pixels.len() / 2, "a white background");
        // Each compressed configuration's colour covers more than its legend swatch and markers would:
        // its line was drawn. (Black, disk-only's, is also the text's, so it proves nothing.)
        for config in s.compressed() {
            let RGBColor(r, g, b) = colour(config, 0);
            let n = pixels.iter().filter(|p| **p == [r, g, b]).count();
            assert!(n > 1500, "{config}: {n} pixels of its colour");
        }
        // A configuration absent from the plot has no pixels of its colour.
        let RGBColor(r, g, b) = RGBColor(44, 160, 44);
        let mut no_zram = example();
        no_zram.points.retain(|p| p.config != "zram-zsmalloc");
        Sweep::new(&no_zram).unwrap().plot(&path, "x").unwrap();
        let (_, _, pixels) = decode_png(&std::fs::read(&path).unwrap());
        assert_eq!(pixels.iter().filter(|p| **p == [r, g, b]).count(), 0);
        // The linear axis draws too.
        let mut narrow = example();
        narrow.points.retain(|p| p.percent < 100);
        let s = Sweep::new(&narrow).unwrap();
        assert!(!s.log_scale());
        s.plot(&path, "x").unwrap();
        assert_eq!(decode_png(&std::fs::read(&path).unwrap()).0, PNG_SIZE.0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
