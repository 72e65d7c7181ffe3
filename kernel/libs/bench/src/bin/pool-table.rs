//! `pool-table`: the allocator table — every pool (zsmalloc at each chain 1..=16, zbud, xvmalloc,
//! xcfmalloc) on the same objects in one run; `cargo xtask bench --pools` runs it in release.
//!
//! The counting is the `no_std` crate `pooltable` (its header defines every column), the same code the
//! kernel's `--workload pools` runs over real frames, so the counts here and there agree exactly;
//! [`zkernel_bench::pooltable`] times it on the host. This binary builds the workloads, runs every pool on
//! each, and writes the figures three ways:
//!
//! | output | what |
//! |---|---|
//! | stdout and `OUT/pools.md` | the markdown table, the notes on each workload and pool, the anchors beside our (a) figures |
//! | `OUT/pools.json` | every figure of every row, the notes and the definitions |
//! | `OUT/pools.png` | grouped bars: one group per workload, one bar per pool (zbud, xvmalloc, xcfmalloc, zsmalloc chains 1, 2, 4, 8, 16), y = pool pages ÷ stored, a black dash on each bar at its ideal |
//!
//! `OUT` is `--out DIR`, else `$CARGO_TARGET_DIR/zkernel`, else the repository's `target/zkernel`.
//!
//! | workload | objects |
//! |---|---|
//! | (a) 75 % pages | 10,000 `ratio_page(seed, THREE_QUARTERS_FRESH)` pages whose LZ4 stored size is 75 % ± 3 % of a page ([`pooltable::three_quarters`]) |
//! | (b) perl, perl ×8 | the perl sample (`data/perl-heap.pages.gz`, checked by [`zkernel_bench::perl_pages`]) compressed with LZ4, once and 8 times over (16,384 objects; same-filled pages are not objects) |
//! | (c) uniform | 10,000 sizes uniform in 2048..=4096 bytes (fixed seed), random bytes |
//! | (d) `--pages FILE` | the pages of FILE (raw or gzip), compressed with LZ4; a missing or malformed file is an error, never replaced |
//!
//! Worked example (a run on this machine, 2026-11-30; the counts are deterministic): on (a) the objects
//! are 2950..=3194 bytes, mean 3090.9 (ideal 0.755 pages each). xvmalloc never lets an object cross a
//! page, and no second object fits in the 900-odd bytes left beside one: 10,000 pool pages, 1.000 per
//! stored page. xcfmalloc cuts the object into two 64-byte-unit blocks where needed and tiles the pages:
//! 7,693 pages in use (0.769, +1.9 % over ideal: 16-byte headers and 64-byte rounding) and 31 empty
//! reserve pages apart. zsmalloc at chain 8: 7,705 (0.770).
//!
//! The chart's text is drawn with DejaVu Sans embedded from the `dejavu` crate (plotters' `ab_glyph`
//! backend): no system font, no fontconfig.
//!
//! Usage: `pool-table [--pages FILE] [--out DIR] [--objects N]`. `--objects N` (default 10,000) sizes (a)
//! and (c): their objects are then the first N of the 10,000 (same seeds, same order), the set the
//! kernel's `--workload pools` table uses when it runs a smaller one, so the two tables' counts compare
//! row by row (`OUT/pools.json` `rows[]` by (`workload`, `pool`) against the kernel report's
//! `pool_table[]`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::register_font;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::{Value, json};
use zkernel_bench::pooltable::{self, Measured, OBJECTS, PoolKind, Workload};

/// Frames of each arena beyond one per object: room for every size class's partly filled zspage at chain 16.
const SPARE_FRAMES: usize = 8192;
/// The pools the chart shows (the table shows every chain).
const CHART_CHAINS: [usize; 5] = [1, 2, 4, 8, 16];

struct Args {
    pages: Option<PathBuf>,
    out: PathBuf,
    /// Objects in (a) and (c): [`OBJECTS`] unless `--objects N`; the kernel's table uses its own count,
    /// and the host run with the same N prints the same counts.
    objects: usize,
}

const USAGE: &str = "usage: pool-table [--pages FILE] [--out DIR] [--objects N]";

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut pages, mut out, mut objects) = (None, None, OBJECTS);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--pages" => pages = Some(PathBuf::from(args.next().ok_or("--pages needs a FILE")?)),
            "--out" => out = Some(PathBuf::from(args.next().ok_or("--out needs a DIR")?)),
            "--objects" => {
                let n = args.next().ok_or("--objects needs a count")?;
                objects = n.parse().ok().filter(|&n| n > 0).ok_or(format!("--objects {n:?}: not a count above 0"))?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} ({USAGE})")),
        }
    }
    let out = out.unwrap_or_else(|| match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => PathBuf::from(t).join("zkernel"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../target/zkernel"),
    });
    Ok(Args { pages, out, objects })
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pool-table: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    // The page file first: a bad one fails before a minute of measuring.
    let file = match &args.pages {
        Some(path) => {
            let pages = pooltable::read_page_file(path)?;
            let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into());
            let what = format!("page file {}", path.display());
            Some(pooltable::compressed("file", &format!("(d) {name}"), &what, &pages)?)
        }
        None => None,
    };
    // (a), (b) x1 and x8, (c): the same objects the kernel's `--workload pools` builds (`pooltable`).
    let perl = pooltable::Sample::perl(zkernel_bench::perl_pages()?, "the perl sample (data/perl-heap.pages.gz)");
    let mut workloads = pooltable::standard_workloads(args.objects, perl)?;
    workloads.extend(file);

    // The counts in `rows`, the two times of each row (malloc ns, free ns) beside them in `times`.
    let mut rows: Vec<(usize, Measured)> = Vec::new();
    let mut times: Vec<(f64, f64)> = Vec::new();
    for (wi, w) in workloads.iter().enumerate() {
        for kind in PoolKind::all() {
            let t = pooltable::measure(kind, w, w.len() + SPARE_FRAMES)?;
            rows.push((wi, t.m));
            times.push((t.malloc_ns, t.free_ns));
        }
    }

    let md = markdown(&workloads, &rows, &times);
    print!("{md}");
    std::fs::create_dir_all(&args.out).map_err(|e| format!("creating {}: {e}", args.out.display()))?;
    let md_path = args.out.join("pools.md");
    std::fs::write(&md_path, &md).map_err(|e| format!("writing {}: {e}", md_path.display()))?;
    let json_path = args.out.join("pools.json");
    let doc =
        serde_json::to_string_pretty(&to_json(&workloads, &rows, &times)).map_err(|e| format!("JSON: {e}"))? + "\n";
    std::fs::write(&json_path, doc).map_err(|e| format!("writing {}: {e}", json_path.display()))?;
    let png_path = args.out.join("pools.png");
    chart(&png_path, &workloads, &rows)?;
    for p in [&md_path, &json_path, &png_path] {
        eprintln!("pool-table: wrote {}", p.display());
    }
    Ok(())
}

/// `1234567` as `1,234,567`.
fn thousands(v: u64) -> String {
    let digits = v.to_string();
    let mut s = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            s.push(',');
        }
        s.push(c);
    }
    s
}

fn markdown(workloads: &[Workload], rows: &[(usize, Measured)], times: &[(f64, f64)]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Every pool on the same objects\n");
    let _ = writeln!(
        s,
        "Fresh pool per row over a host arena; every object malloc'd, written (WriteOnly), read back and compared, then \
         freed. pages / stored = pool pages / stored objects (xcfmalloc: without its 32 empty reserve pages, shown \
         apart); ideal = stored bytes / 4096 / stored; overhead = pool pages / ideal pages - 1; metadata = in-page + \
         side-table bytes at full occupancy; (pages + side) / stored adds the side table, in pages; ns per offered \
         object, wall time of the whole loop (this run, noisy).\n"
    );
    let _ = writeln!(
        s,
        "| workload | pool | stored | pool pages | pages / stored | ideal | overhead vs ideal | metadata bytes (in pages + side) | (pages + side) / stored | malloc ns | free ns | refused |"
    );
    let _ = writeln!(s, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for ((wi, m), (malloc_ns, free_ns)) in rows.iter().zip(times) {
        let pages = match m.reserve_pages {
            0 => thousands(m.pool_pages()),
            r => format!("{} (+{r} reserve)", thousands(m.pool_pages())),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.3} | {:.3} | {:+.1} % | {} ({} + {}) | {:.3} | {:.0} | {:.0} | {} |",
            workloads[*wi].label,
            m.pool.label(),
            thousands(m.stored),
            pages,
            m.pages_per_stored(),
            m.ideal_per_stored(),
            m.overhead_pct(),
            thousands(m.metadata()),
            thousands(m.metadata_in_pages),
            thousands(m.metadata_side),
            m.memory_per_stored(),
            malloc_ns,
            free_ns,
            m.refused
        );
    }
    let _ = writeln!(s, "\n## Notes\n");
    for w in workloads {
        for n in &w.notes {
            let _ = writeln!(s, "- {}: {n}.", w.label);
        }
        // Refusals, one line per workload: pools with the same count and max_size together.
        let mut refusals: Vec<(u64, usize, Vec<String>)> = Vec::new();
        for (_, m) in rows.iter().filter(|(wi, m)| workloads[*wi].key == w.key && m.refused > 0) {
            match refusals.iter_mut().find(|(n, max, _)| (*n, *max) == (m.refused, m.max_size)) {
                Some((_, _, pools)) => pools.push(m.pool.label()),
                None => refusals.push((m.refused, m.max_size, vec![m.pool.label()])),
            }
        }
        if !refusals.is_empty() {
            let parts: Vec<String> = refusals
                .iter()
                .map(|(n, max, pools)| {
                    let who = if pools.len() > 2 && pools.iter().all(|p| p.starts_with("zsmalloc")) {
                        format!("zsmalloc at all {} chains", pools.len())
                    } else {
                        pools.join(", ")
                    };
                    format!("{who}: {n} (above {max} B)")
                })
                .collect();
            let _ = writeln!(
                s,
                "- {}: refused as larger than the pool's max_size, of {} offered — {}; each pool's figures are over the \
                 objects it stored.",
                w.label,
                w.len(),
                parts.join("; ")
            );
        }
        if let Some((_, m)) = rows.iter().find(|(wi, m)| workloads[*wi].key == w.key && m.reserve_pages > 0) {
            let _ = writeln!(
                s,
                "- {}: {} with its {} reserve pages: {} pages, {:.3} per stored object.",
                w.label,
                m.pool.label(),
                m.reserve_pages,
                thousands(m.total_pages),
                m.total_pages_per_stored()
            );
        }
    }
    let _ = writeln!(s, "\nmetadata, by pool:\n");
    for kind in [PoolKind::Zbud, PoolKind::Xvmalloc, PoolKind::Xcfmalloc, PoolKind::Zsmalloc { chain: 4 }] {
        let name = if let PoolKind::Zsmalloc { .. } = kind { "zsmalloc".into() } else { kind.label() };
        let _ = writeln!(s, "- {name}: {}", kind.metadata_rule());
    }
    let _ = writeln!(s, "\n## Anchors (shared/anchors.md) beside (a)\n");
    let _ = writeln!(s, "| pool | anchor | ours: pages / stored | ours: (pages + side) / stored |");
    let _ = writeln!(s, "|---|---|--:|--:|");
    for (kind, anchor) in [
        (PoolKind::Xvmalloc, "0.95 (2011 letter); 65,892 / 65,925 = 0.9995 (v2)"),
        (PoolKind::Xcfmalloc, "0.77 (2011 letter); 50,848 pages + 114,980 x 24 B = 0.7811 (v2)"),
    ] {
        if let Some((_, m)) = rows.iter().find(|(wi, m)| workloads[*wi].key == "p75" && m.pool == kind) {
            let _ = writeln!(
                s,
                "| {} | {anchor} | {:.4} | {:.4} |",
                kind.label(),
                m.pages_per_stored(),
                m.memory_per_stored()
            );
        }
    }
    s
}

fn to_json(workloads: &[Workload], rows: &[(usize, Measured)], times: &[(f64, f64)]) -> Value {
    let rows: Vec<Value> = rows
        .iter()
        .zip(times)
        .map(|((wi, m), (malloc_ns, free_ns))| {
            json!({
                "workload": workloads[*wi].key,
                "workload_label": workloads[*wi].label,
                "pool": m.pool.key(),
                "pool_label": m.pool.label(),
                "chain": match m.pool { PoolKind::Zsmalloc { chain } => Some(chain), _ => None },
                "offered": m.offered,
                "stored": m.stored,
                "stored_bytes": m.stored_bytes,
                "refused": m.refused,
                "max_size": m.max_size,
                "pool_pages": m.pool_pages(),
                "reserve_pages": m.reserve_pages,
                "pool_pages_with_reserve": m.total_pages,
                "pages_per_stored": m.pages_per_stored(),
                "pages_per_stored_with_reserve": m.total_pages_per_stored(),
                "ideal_per_stored": m.ideal_per_stored(),
                "overhead_pct": m.overhead_pct(),
                "metadata_bytes": m.metadata(),
                "metadata_in_pages": m.metadata_in_pages,
                "metadata_side": m.metadata_side,
                "memory_per_stored": m.memory_per_stored(),
                "malloc_ns": malloc_ns,
                "free_ns": free_ns,
                "verified": m.verified,
            })
        })
        .collect();
    let metadata: serde_json::Map<String, Value> = [PoolKind::Zbud, PoolKind::Xvmalloc, PoolKind::Xcfmalloc]
        .into_iter()
        .map(|k| (k.label(), json!(k.metadata_rule())))
        .chain([("zsmalloc".to_string(), json!(PoolKind::Zsmalloc { chain: 4 }.metadata_rule()))])
        .collect();
    json!({
        "definitions": {
            "pages_per_stored": "pool pages (xcfmalloc: without its reserve) / stored objects",
            "ideal_per_stored": "stored bytes / 4096 / stored objects",
            "overhead_pct": "(pool pages / ideal pages - 1) x 100",
            "memory_per_stored": "(pool pages + metadata_side / 4096) / stored objects",
            "malloc_ns": "wall time of the malloc + WriteOnly-map loop / offered objects",
            "free_ns": "wall time of the free loop / offered objects",
        },
        "metadata": metadata,
        "workloads": workloads.iter().map(|w| json!({
            "key": w.key, "label": w.label, "offered": w.len(), "distinct": w.objects.len(),
            "mean_size": w.mean_size(), "notes": w.notes,
        })).collect::<Vec<_>>(),
        "rows": rows,
    })
}

/// The pools the chart shows, and their colours.
fn chart_pools() -> Vec<(PoolKind, RGBColor)> {
    let mut v = vec![
        (PoolKind::Zbud, RGBColor(140, 140, 140)),
        (PoolKind::Xvmalloc, RGBColor(214, 39, 40)),
        (PoolKind::Xcfmalloc, RGBColor(255, 127, 14)),
    ];
    let blues = [(198, 219, 239), (158, 202, 225), (107, 174, 214), (49, 130, 189), (8, 69, 148)];
    v.extend(
        CHART_CHAINS.iter().zip(blues).map(|(&chain, (r, g, b))| (PoolKind::Zsmalloc { chain }, RGBColor(r, g, b))),
    );
    v
}

fn chart(path: &Path, workloads: &[Workload], rows: &[(usize, Measured)]) -> Result<(), String> {
    register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
        .map_err(|_| "the embedded DejaVu Sans is not a font".to_string())?;
    register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold())
        .map_err(|_| "the embedded DejaVu Sans Bold is not a font".to_string())?;
    let err = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
    let pools = chart_pools();
    let groups = workloads.len();
    let slot = 1.0 / (pools.len() as f64 + 1.5);
    let bar = |g: usize, p: usize| {
        let x0 = g as f64 - 0.5 + slot * (0.75 + p as f64);
        (x0, x0 + slot * 0.9)
    };
    let find = |g: usize, kind: PoolKind| rows.iter().find(|(wi, m)| *wi == g && m.pool == kind).map(|(_, m)| m);
    // Room above the tallest bar for the legend (upper right), clear of the bars.
    let top = rows.iter().map(|(_, m)| m.pages_per_stored()).fold(1.0, f64::max) * 1.45;

    let root = BitMapBackend::new(path, (1800, 950)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut c = ChartBuilder::on(&root)
        .caption(
            "Pool pages per stored object, every pool on the same objects (lower is better; black dash: ideal)",
            ("sans-serif", 28).into_font().style(FontStyle::Bold),
        )
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5..groups as f64 - 0.5, 0.0..top)
        .map_err(|e| err(&e))?;
    c.configure_mesh()
        .disable_x_mesh()
        // A group's label at its centre, the whole numbers (steps of 1 are the coarsest that give `groups` labels).
        .x_labels(groups)
        .x_label_formatter(&|x| {
            let g = x.round();
            if (x - g).abs() < 1e-6 && g >= 0.0 {
                workloads.get(g as usize).map_or(String::new(), |w| w.label.clone())
            } else {
                String::new()
            }
        })
        .x_label_style(("sans-serif", 20))
        .y_label_style(("sans-serif", 18))
        .y_desc("pool pages / stored objects")
        .axis_desc_style(("sans-serif", 20))
        .draw()
        .map_err(|e| err(&e))?;
    for (p, (kind, colour)) in pools.iter().enumerate() {
        let bars: Vec<_> = (0..groups)
            .filter_map(|g| find(g, *kind).map(|m| (g, m)))
            .map(|(g, m)| {
                let (x0, x1) = bar(g, p);
                Rectangle::new([(x0, 0.0), (x1, m.pages_per_stored())], colour.filled())
            })
            .collect();
        c.draw_series(bars)
            .map_err(|e| err(&e))?
            .label(kind.label())
            .legend(move |(x, y)| Rectangle::new([(x, y - 7), (x + 18, y + 7)], colour.filled()));
        let values = (0..groups).filter_map(|g| find(g, *kind).map(|m| (g, m))).map(|(g, m)| {
            let (x0, x1) = bar(g, p);
            Text::new(
                format!("{:.2}", m.pages_per_stored()),
                ((x0 + x1) / 2.0, m.pages_per_stored() + top * 0.008),
                ("sans-serif", 13).into_text_style(&root).pos(Pos::new(HPos::Center, VPos::Bottom)),
            )
        });
        c.draw_series(values).map_err(|e| err(&e))?;
    }
    // Each bar's own ideal (its stored set may differ by refusals), drawn over the bars.
    let ideals = pools.iter().enumerate().flat_map(|(p, (kind, _))| {
        (0..groups).filter_map(move |g| find(g, *kind).map(|m| (g, m))).map(move |(g, m)| {
            let (x0, x1) = bar(g, p);
            PathElement::new(vec![(x0, m.ideal_per_stored()), (x1, m.ideal_per_stored())], BLACK.stroke_width(3))
        })
    });
    c.draw_series(ideals)
        .map_err(|e| err(&e))?
        .label("ideal: stored bytes / 4096 / stored")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(3)));
    c.draw_series(std::iter::once(DashedPathElement::new(
        vec![(-0.5, 1.0), (groups as f64 - 0.5, 1.0)],
        6,
        4,
        BLACK.mix(0.5).stroke_width(1),
    )))
    .map_err(|e| err(&e))?
    .label("1.0: one page per stored page")
    .legend(|(x, y)| DashedPathElement::new(vec![(x, y), (x + 18, y)], 4, 3, BLACK.mix(0.5).stroke_width(1)));
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 17))
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
