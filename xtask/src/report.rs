//! `cargo xtask report`: a swap run on the repository's real pages (`data/perl-heap.pages.gz`, or
//! `--pages FILE`), then `target/zkernel/report.md` with the run's summary, a table of its runs and
//! four PNG plots of its time series, drawn from the typed report (`report.json`).
//!
//! | file | what |
//! |---|---|
//! | `report.md` | what ran, the summary (`summary::lines`), one row per run, the plots |
//! | `report-pool.png` | pool frames and pages stored over the run, for each run with a pool (tmem, zram) |
//! | `report-ratio.png` | compression ratio (`stored_pages × 4096 / compr_data_size`) over the run |
//! | `report-io.png` | swap-disk I/O so far (reads + writes) over the run, every run |
//! | `report-frag.png` | zsmalloc's free bytes inside partly used zspages over the run (tmem) |
//!
//! The points are the kernel's `swap.runs[].series` (`zstats::SeriesPoint`, one every
//! `max(64, accesses / 64)` accesses). `--from FILE` draws from a saved `report.json` instead of booting.
//! The plots use plotters' bitmap backend with DejaVu Sans embedded (no system font), as `bench`'s do.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use plotters::prelude::*;
use plotters::style::register_font;
use zstats::{Report, SwapRunReport};

use crate::{RunOpts, Workload, cargo, execute_run_shown, prepare_run, summary};

/// Plot size in pixels.
const PNG_SIZE: (u32, u32) = (1000, 560);

#[derive(Args, Clone, Debug)]
pub struct ReportOpts {
    #[command(flatten)]
    pub run: RunOpts,
    /// Draw from this saved report.json instead of booting a run.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// Write report.md and the plots here (default target/zkernel).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// What `report` wrote.
#[derive(Debug)]
pub struct Written {
    pub markdown: PathBuf,
    pub plots: Vec<PathBuf>,
}

pub fn report(o: &ReportOpts) -> Result<std::process::ExitCode> {
    let w = make(o, true)?;
    println!("xtask: report written to {} with {} plots:", w.markdown.display(), w.plots.len());
    for p in &w.plots {
        println!("  {}", p.display());
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Boot the swap run (or read `--from`), then write the report.
pub fn make(o: &ReportOpts, echo: bool) -> Result<Written> {
    let target = cargo::target_dir(&cargo::metadata()?).join("zkernel");
    let dir = o.dir.clone().unwrap_or_else(|| target.clone());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (report, source) = match &o.from {
        Some(file) => {
            let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
            let r: Report = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a zkernel report.json", file.display()))?;
            (r, file.display().to_string())
        }
        None => {
            let mut run = o.run.clone();
            run.workload.get_or_insert(Workload::Swap);
            let prepared = prepare_run(&run, false, true, "report")?;
            let source =
                prepared.pages.as_ref().map_or("synthetic pages".to_string(), |p| p.source.display().to_string());
            let mut brief = summary::Brief::default();
            let passed =
                execute_run_shown(&prepared, echo, |l| echo && (run.verbose || brief.show(l)))?.into_result()?;
            let json = serde_json::to_string_pretty(&passed.report).context("rendering the report")?;
            let path = dir.join("report.json");
            std::fs::write(&path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
            (passed.report, source)
        }
    };
    write(&report, &source, &dir)
}

/// The runs with a time series, named as the console names them.
fn runs(r: &Report) -> Vec<(String, &SwapRunReport)> {
    let mut out = Vec::new();
    if let Some(s) = &r.swap {
        out.extend(s.runs.iter().map(|run| (run_name(run), run)));
    }
    if let Some(a) = &r.all {
        out.push((format!("all: {}", run_name(&a.swap)), &a.swap));
    }
    out.retain(|(_, run)| !run.series.is_empty());
    out
}

fn run_name(run: &SwapRunReport) -> String {
    match (run.tmem.as_str(), run.swap.zram_writes > 0) {
        (_, true) => "zram-zsmalloc".into(),
        ("off", false) => "disk".into(),
        (t, false) => format!("tmem-{t}"),
    }
}

type Series = (String, RGBColor, Vec<(f64, f64)>);

/// A run's second line (pages stored beside its pool frames): its colour halfway to white.
fn lighter(c: RGBColor) -> RGBColor {
    let up = |v: u8| v + (255 - v) / 2;
    RGBColor(up(c.0), up(c.1), up(c.2))
}

/// Write report.md and the plots for `r` into `dir`; `source` names the pages.
pub fn write(r: &Report, source: &str, dir: &Path) -> Result<Written> {
    let runs = runs(r);
    ensure!(
        !runs.is_empty(),
        "the report has no swap run with a time series (swap.runs[].series): `cargo xtask report` boots one"
    );
    let colour = |i: usize, name: &str| crate::sweep::colour(name.trim_start_matches("all: "), i);
    let each =
        |f: &dyn Fn(&zstats::SeriesPoint) -> Option<f64>, only: &dyn Fn(&SwapRunReport) -> bool| -> Vec<Series> {
            runs.iter()
                .enumerate()
                .filter(|(_, (_, run))| only(run))
                .map(|(i, (name, run))| {
                    let pts = run.series.iter().filter_map(|p| f(p).map(|y| (p.access as f64, y))).collect();
                    (name.clone(), colour(i, name), pts)
                })
                .collect()
        };
    let has_pool = |run: &SwapRunReport| run.series.iter().any(|p| p.pool_pages > 0);
    let mut pool = each(&|p| Some(p.pool_pages as f64), &has_pool);
    for s in &mut pool {
        s.0 += " pool frames";
    }
    let stored: Vec<Series> = each(&|p| Some(p.stored_pages as f64), &has_pool)
        .into_iter()
        .map(|(n, c, pts)| (format!("{n} pages stored"), lighter(c), pts))
        .collect();
    pool.extend(stored);
    let ratio = each(
        &|p| (p.compr_data_size > 0).then(|| (p.stored_pages * 4096) as f64 / p.compr_data_size as f64),
        &has_pool,
    );
    let io = each(&|p| Some((p.disk_reads + p.disk_writes) as f64), &|_| true);
    let frag = each(&|p| Some(p.frag_free_bytes as f64 / 1024.0), &|run| run.tmem != "off");
    let x = "accesses (the fill of every page first, then the pattern)";
    let plots = [
        ("report-pool.png", "Pool frames and pages stored", "pages", pool),
        ("report-ratio.png", "Compression ratio of the pages held", "original bytes / compressed bytes", ratio),
        ("report-io.png", "Swap-disk I/O so far", "pages read + written", io),
        ("report-frag.png", "zsmalloc: free bytes inside partly used zspages", "KiB", frag),
    ];
    let mut written = Vec::new();
    let mut md_plots = String::new();
    for (file, caption, y, series) in plots {
        if series.iter().all(|s| s.2.is_empty()) {
            md_plots += &format!("No {caption} plot: no run had such points.\n\n");
            continue;
        }
        let path = dir.join(file);
        line_plot(&path, caption, x, y, &series).map_err(anyhow::Error::msg)?;
        md_plots += &format!("### {caption}\n\n![{caption}]({file})\n\n");
        written.push(path);
    }
    let mut md = String::from("# zkernel run report\n\n");
    md += &format!(
        "Pages: `{source}`. Options: `{}`. {} on {} CPUs. Written by `cargo xtask report` from the run's \
         `@@stats` report (`report.json`); the time series are `swap.runs[].series`.\n\n",
        if r.options.is_empty() { "(none)" } else { &r.options },
        r.firmware,
        r.cpus_up
    );
    md += "## Summary\n\n```text\n";
    for l in summary::lines(r) {
        md += &l;
        md += "\n";
    }
    md += "```\n\n## Runs\n\n";
    md += "| run | accesses | disk I/O | swap-outs | swap-ins | frontswap stores | written back | peak pool frames | ms |\n";
    md += "|---|---|---|---|---|---|---|---|---|\n";
    for (name, run) in &runs {
        let s = &run.swap;
        md += &format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            run.accesses,
            run.io,
            s.swapouts,
            s.swapins,
            s.frontswap_stores,
            s.written_back_pages,
            s.peak_pool_pages,
            run.ms
        );
    }
    md += "\n## Over time\n\n";
    md += "Each point is the kernel's counters after that many accesses (one every `max(64, accesses / 64)`).\n\n";
    md += &md_plots;
    let markdown = dir.join("report.md");
    std::fs::write(&markdown, md).with_context(|| format!("writing {}", markdown.display()))?;
    if written.len() < 3 {
        bail!("only {} plots had points; the report needs a swap run with a pool", written.len());
    }
    Ok(Written { markdown, plots: written })
}

/// One line plot: each series a coloured line with its name in the legend.
fn line_plot(path: &Path, caption: &str, x_desc: &str, y_desc: &str, series: &[Series]) -> Result<(), String> {
    register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
        .map_err(|_| "the embedded DejaVu Sans is not a font".to_string())?;
    let err = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
    let xs = series.iter().flat_map(|s| s.2.iter().map(|p| p.0));
    let ys = series.iter().flat_map(|s| s.2.iter().map(|p| p.1));
    let x_max = xs.fold(1.0f64, f64::max);
    let y_max = ys.fold(0.0f64, f64::max).max(1e-9) * 1.1;
    let root = BitMapBackend::new(path, PNG_SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 26))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| if y_max < 10.0 { format!("{v:.2}") } else { format!("{v:.0}") })
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()
        .map_err(|e| err(&e))?;
    for (name, colour, pts) in series.iter().filter(|s| !s.2.is_empty()) {
        let c = *colour;
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(3)))
            .map_err(|e| err(&e))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Whether `path` is a PNG that decodes; its size.
pub fn png_size(path: &Path) -> Result<(u32, u32)> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = png::Decoder::new(file).read_info().with_context(|| format!("{} is not a PNG", path.display()))?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).with_context(|| format!("decoding {}", path.display()))?;
    Ok((info.width, info.height))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zstats::{SeriesPoint, SwapReport, SwapStatsReport, TmemReport};

    fn small_report() -> Report {
        let series = |pool: u64, io_per: u64| -> Vec<SeriesPoint> {
            (1..=5)
                .map(|i| SeriesPoint {
                    access: i * 64,
                    resident: 60,
                    pool_pages: pool * i,
                    stored_pages: 3 * pool * i,
                    compr_data_size: 4096 * pool * i,
                    disk_reads: io_per * i,
                    disk_writes: io_per * i,
                    frag_free_bytes: if pool > 0 { 1000 * i } else { 0 },
                })
                .collect()
        };
        let run = |tmem: &str, pool: u64, io: u64| SwapRunReport {
            pattern: "zipf".into(),
            tmem: tmem.into(),
            region_pages: 192,
            budget_pages: 64,
            accesses: 320,
            io: 10 * io,
            series: series(pool, io),
            tmem_stats: (tmem != "off").then(|| TmemReport {
                stored_pages: 15,
                pool_pages: 5,
                compr_data_size: 20480,
                ..Default::default()
            }),
            swap: SwapStatsReport { swapouts: 30, ..Default::default() },
            ..Default::default()
        };
        Report {
            firmware: "BIOS".into(),
            cpus_up: 4,
            options: "workload=swap swap_mem=64".into(),
            swap: Some(SwapReport { runs: vec![run("off", 0, 2), run("zsmalloc", 2, 1)], ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn a_small_report_gives_markdown_and_four_decodable_plots() {
        let dir = std::env::temp_dir().join(format!("zkernel-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let w = write(&small_report(), "data/perl-heap.pages.gz", &dir).unwrap();
        assert_eq!(w.plots.len(), 4);
        for p in &w.plots {
            assert_eq!(png_size(p).unwrap(), PNG_SIZE, "{}", p.display());
        }
        let md = std::fs::read_to_string(&w.markdown).unwrap();
        for want in [
            "Pages: `data/perl-heap.pages.gz`",
            "| disk | 320 | 20 | 30 |",
            "| tmem-zsmalloc | 320 | 10 | 30 |",
            "![Compression ratio of the pages held](report-ratio.png)",
            "  tmem-zsmalloc   disk I/O     10",
            "  failed: nothing; every check held",
        ] {
            assert!(md.contains(want), "report.md lacks {want:?}:\n{md}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_report_without_series_is_refused() {
        let mut r = small_report();
        for run in &mut r.swap.as_mut().unwrap().runs {
            run.series.clear();
        }
        let e = write(&r, "x", &std::env::temp_dir()).unwrap_err();
        assert!(format!("{e:#}").contains("no swap run with a time series"), "{e:#}");
    }
}
