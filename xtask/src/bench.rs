//! `cargo xtask bench`: speed and density figures, kept out of the tests (these machines are noisy).
//!
//! 1. Pool efficiency: `pool-efficiency` (zkernel-bench, release) prints pool pages per stored object
//!    against the ideal for zbud and zsmalloc on the perl sample, 75 % pages, a uniform size mix and the
//!    anchor model (deterministic, no timing).
//! 2. Host: `cargo bench --package zkernel-bench` (criterion) — the algorithm crates without QEMU. The
//!    per-page costs of the `pages` group (benches/pools.rs) are then read back from criterion's
//!    estimates and printed as ns per page and as a multiple of a plain 4 KiB copy, from this run.
//! 3. Kernel: every benchmark kernel (tests/Cargo.toml, `benches`) is built in release twice, with the
//!    kernel's real temporary mappings (kmap) and with the `direct-map` feature, booted under TCG
//!    `--rounds` times each, alternating, and the medians of its `@@bench` lines are printed side by side
//!    with the ratio, from the same run of this command. Each run's serial output is kept in
//!    `target/zkernel/bench/KERNEL-MODE-roundN.log`. A kernel listed in `ramdisks` gets its page file
//!    as the ramdisk, and one listed in `smp` and `multi-threaded-tcg` its CPU count and
//!    `-accel tcg,thread=multi`, as under `cargo xtask test`. `--filter NAME` boots only the benchmark
//!    kernels whose name contains NAME.
//! 4. Scaling: a kernel whose `@@bench` lines carry `cpus` (bench_smp: tmem stores on 1, 2 and 4 CPUs)
//!    also gets a markdown table — CPUs, stores/s, ratio to 1 CPU, zcache lock acquisitions and
//!    contentions — from *one* of its QEMU runs, never mixed across runs: the kmap run whose ratio at
//!    the most CPUs is the median of the rounds. The ratio at the most CPUs of every run is listed under
//!    it, with the host's core count and how QEMU ran. `--quick` gives it fewer stores
//!    ([`QUICK_BENCH_STORES`], kernel option `bench_stores`).
//!
//! The figures are also written to `target/zkernel/bench.json`: `efficiency`, `throughput`, and the
//! kernels' `rounds` and `median`, and `scaling` (every run's rows, the table shown and its markdown),
//! for the parts that ran.
//!
//! `--pools` runs only the allocator table instead: `pool-table` (zkernel-bench, release) puts every pool
//! (zsmalloc at each chain, zbud, xvmalloc, xcfmalloc) on the same objects — 75 % pages, the perl sample
//! once and 8 times over, sizes uniform in 2048–4096 B, and `--pages FILE` if given — and writes
//! `target/zkernel/pools.md`, `pools.json` and the bar chart `pools.png`.
//!
//! `--sweep` runs only compression at equal memory instead (`sweep.rs`): one boot of the demo kernel with
//! `workload=sweep` runs the swap workload at N = 20 %, 30 %, …, 100 % of the region for each
//! configuration (disk only; frontswap + tmem on zsmalloc, zbud, xvmalloc and xcfmalloc; zram on
//! zsmalloc), on the default page file or `--pages FILE`, and writes `target/zkernel/sweep.md`,
//! `sweep.png` and `sweep.json`, and the memory below which each compressed configuration stops paying.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use boot::{Firmware, QemuConfig};
use cargo_metadata::Metadata;
use clap::Args;
use serde_json::{Map, Value, json};

use crate::test::TESTS_PACKAGE;
use crate::{cargo, files, make_image, pages, qemu, sweep, verdict};

#[derive(Args, Clone, Debug)]
#[command(group(clap::ArgGroup::new("only").args(["pools", "sweep"])))]
pub struct BenchOpts {
    /// Shorter criterion runs (less precise).
    #[arg(long)]
    quick: bool,
    /// Skip the host figures (pool efficiency and criterion).
    #[arg(long)]
    kernel_only: bool,
    /// Skip the benchmark kernels.
    #[arg(long)]
    host_only: bool,
    /// Boots of each benchmark kernel per mode; the table shows the median.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Boot only the benchmark kernels whose name contains NAME (e.g. `--filter bench_smp`).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["pools", "sweep", "host_only"])]
    filter: Option<String>,
    /// Only the allocator table: every pool on the same objects (`pool-table`, release), written to
    /// target/zkernel/pools.md, pools.json and pools.png.
    #[arg(long)]
    pools: bool,
    /// Only compression at equal memory: one boot of the demo kernel with `workload=sweep` (the swap
    /// workload at N = 20 %..100 % of the region, disk only, frontswap + tmem on each pool, zram), written
    /// to target/zkernel/sweep.md, sweep.png and sweep.json.
    #[arg(long, conflicts_with_all = ["quick", "kernel_only", "host_only"])]
    sweep: bool,
    /// With --pools: a page file (raw 4096-byte pages, or gzip) as one more workload. With --sweep: the
    /// page file the kernel swaps (default data/perl-heap.pages.gz).
    #[arg(long, value_name = "FILE", requires = "only")]
    pages: Option<PathBuf>,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

const MODES: [(&str, &[&str]); 2] = [("kmap", &[]), ("direct-map", &["--features", "zkernel/direct-map"])];

/// The criterion group of per-page costs (kernel/libs/bench/benches/pools.rs) and its baseline.
const PAGES_GROUP: &str = "pages";
const BASELINE: &str = "copy_4k";
/// The order the per-page table lists them in; ids not named here follow, sorted.
const PAGES_ORDER: &[&str] = &[
    "copy_4k",
    "lz4_compress",
    "lz4_decompress",
    "deflate1_compress",
    "deflate1_decompress",
    "zsmalloc_malloc_copy_free",
    "zbud_malloc_copy_free",
    "zsmalloc_lz4_store_load_free",
    "zbud_lz4_store_load_free",
    "zsmalloc_deflate1_store_load_free",
    "zbud_deflate1_store_load_free",
    "tmem_zsmalloc_lz4_put_get_flush",
    "tmem_zbud_lz4_put_get_flush",
    "frontswap_lz4_store_load_invalidate",
    "cleancache_lz4_put_get",
];
/// Seconds a benchmark kernel may run unless tests/Cargo.toml's `timeouts` names it.
const KERNEL_TIMEOUT_SECS: u64 = 300;
/// `bench_stores` under `--quick`: stores per CPU per phase of bench_smp (its default is 3000). Given to
/// every benchmark kernel; only bench_smp reads it.
const QUICK_BENCH_STORES: u64 = 600;

pub fn bench(o: &BenchOpts) -> Result<ExitCode> {
    let meta = cargo::metadata()?;
    let target = cargo::target_dir(&meta);
    let out_dir = target.join("zkernel");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    if o.pools {
        pool_table(o.pages.as_deref(), &out_dir)?;
        return Ok(ExitCode::SUCCESS);
    }
    if o.sweep {
        sweep::sweep(o.pages.as_deref(), &out_dir)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut report = Map::new();
    if !o.kernel_only {
        report.insert("efficiency".into(), pool_efficiency(&out_dir)?);
        let started = SystemTime::now();
        let mut cmd = cargo::cargo();
        cmd.args(["bench", "--package", "zkernel-bench", "--benches"]);
        if o.quick {
            cmd.args(["--", "--quick"]);
        }
        eprintln!("xtask: cargo bench --package zkernel-bench");
        if !cmd.status().is_ok_and(|s| s.success()) {
            bail!("the host benchmarks failed");
        }
        let per_page = criterion_group(&criterion_dir(&target).join(PAGES_GROUP), started)?;
        print_per_page(&per_page);
        let base = per_page.iter().find(|(id, _)| id == BASELINE).map(|(_, ns)| *ns);
        report.insert(
            "throughput".into(),
            json!({
                "what": "criterion mean per iteration (one page of the perl sample), this run",
                "group": PAGES_GROUP,
                "baseline": BASELINE,
                "quick": o.quick,
                "ns_per_page": per_page.iter().map(|(id, ns)| (id.clone(), json!(ns))).collect::<Map<_, _>>(),
                "ratio_to_baseline": per_page
                    .iter()
                    .map(|(id, ns)| (id.clone(), json!(base.map(|b| ns / b))))
                    .collect::<Map<_, _>>(),
            }),
        );
    }
    let path = out_dir.join("bench.json");
    if !o.host_only {
        if !o.kernel_only {
            // Saved now too, so a failing benchmark kernel does not lose the host figures.
            save(&path, &report)?;
        }
        let (rounds, medians, scaling) = kernels(o, &meta, &target)?;
        report.insert("rounds".into(), rounds);
        report.insert("median".into(), medians);
        if !scaling.as_object().is_none_or(Map::is_empty) {
            report.insert("scaling".into(), scaling);
        }
    }
    save(&path, &report)?;
    eprintln!("xtask: figures saved to {}", path.display());
    Ok(ExitCode::SUCCESS)
}

fn save(path: &Path, report: &Map<String, Value>) -> Result<()> {
    let text = serde_json::to_string_pretty(report).unwrap_or_default() + "\n";
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Run `pool-efficiency` in release (it prints its table) and return the figures it saved.
fn pool_efficiency(out_dir: &Path) -> Result<Value> {
    let json_path = out_dir.join("pool-efficiency.json");
    let _ = std::fs::remove_file(&json_path);
    eprintln!("xtask: cargo run --release --package zkernel-bench --bin pool-efficiency");
    let status = cargo::cargo()
        .args(["run", "--quiet", "--release", "--package", "zkernel-bench", "--bin", "pool-efficiency", "--"])
        .arg("--json")
        .arg(&json_path)
        .status()
        .context("running pool-efficiency")?;
    if !status.success() {
        bail!("pool-efficiency failed");
    }
    let text = std::fs::read_to_string(&json_path).with_context(|| format!("reading {}", json_path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", json_path.display()))
}

/// Run `pool-table` in release (it prints its table) with its files going to `out_dir`; say where they went.
fn pool_table(pages: Option<&Path>, out_dir: &Path) -> Result<()> {
    eprintln!("xtask: cargo run --release --package zkernel-bench --bin pool-table");
    let mut cmd = cargo::cargo();
    cmd.args(["run", "--quiet", "--release", "--package", "zkernel-bench", "--bin", "pool-table", "--", "--out"]);
    cmd.arg(out_dir);
    if let Some(file) = pages {
        // Absolute, so the file is the one named here whatever directory cargo runs the binary in.
        let file = std::path::absolute(file).with_context(|| format!("page file {}", file.display()))?;
        cmd.arg("--pages").arg(file);
    }
    if !cmd.status().context("running pool-table")?.success() {
        bail!("pool-table failed");
    }
    for name in ["pools.md", "pools.json", "pools.png"] {
        eprintln!("xtask: allocator table: {}", out_dir.join(name).display());
    }
    Ok(())
}

/// Where criterion keeps its results: `$CRITERION_HOME`, else `<target>/criterion`.
fn criterion_dir(target: &Path) -> PathBuf {
    std::env::var_os("CRITERION_HOME").map(PathBuf::from).unwrap_or_else(|| target.join("criterion"))
}

/// The mean (ns per iteration) of every benchmark of the criterion group in `dir` written since `since`,
/// in [`PAGES_ORDER`].
fn criterion_group(dir: &Path, since: SystemTime) -> Result<Vec<(String, f64)>> {
    // File times may be kept to the second: allow for one.
    let since = since - Duration::from_secs(1);
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries.flatten() {
        let file = entry.path().join("new").join("estimates.json");
        let fresh = std::fs::metadata(&file).and_then(|m| m.modified()).is_ok_and(|t| t >= since);
        if !fresh {
            continue;
        }
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let v: Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
        let ns = v["mean"]["point_estimate"].as_f64().with_context(|| format!("{}: no mean", file.display()))?;
        found.push((entry.file_name().to_string_lossy().into_owned(), ns));
    }
    let rank = |id: &str| PAGES_ORDER.iter().position(|o| *o == id).unwrap_or(PAGES_ORDER.len());
    found.sort_by(|a, b| rank(&a.0).cmp(&rank(&b.0)).then_with(|| a.0.cmp(&b.0)));
    if found.is_empty() {
        bail!("criterion wrote no results under {} in this run", dir.display());
    }
    Ok(found)
}

fn print_per_page(per_page: &[(String, f64)]) {
    let base = per_page.iter().find(|(id, _)| id == BASELINE).map(|(_, ns)| *ns);
    println!();
    println!("per page of the perl sample (host, criterion mean, this run; same-filled pages skipped;");
    println!("MB/s counts whole 4 KiB pages, whatever the operation touched)");
    println!("{:<36} {:>10} {:>10} {:>10}", "", "ns/page", "MB/s", "x copy_4k");
    for (id, ns) in per_page {
        let ratio = base.map_or(f64::NAN, |b| ns / b);
        let mb_s = 4096.0 / ns * 1e3;
        println!("{id:<36} {ns:>10.1} {mb_s:>10.0} {ratio:>10.2}");
    }
}

/// kernel → mode → name → ns, one value per round
type Rounds = BTreeMap<String, BTreeMap<String, BTreeMap<String, Vec<f64>>>>;

/// Build, boot and time every benchmark kernel (or those `--filter` names); print the medians and the
/// scaling tables; return the rounds, the medians and the scaling figures.
fn kernels(o: &BenchOpts, meta: &Metadata, target: &Path) -> Result<(Value, Value, Value)> {
    qemu::ensure_prerequisites(false)?;
    let dir = target.join("zkernel").join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let table = cargo::kernel_table(meta, TESTS_PACKAGE)?;
    let benches = select(&table.benches, o.filter.as_deref())?;
    let files = files::prepare(target, None)?;
    let mut results: Rounds = BTreeMap::new();
    let mut scaling: BTreeMap<String, Scaling> = BTreeMap::new();
    for kernel in benches {
        // The kernel's page file, as `cargo xtask test` hands it to a test kernel.
        let ramdisk = match table.ramdisks.get(&kernel) {
            Some(file) => {
                Some(pages::prepare(&cargo::workspace_root().join(file), &target.join("zkernel").join("data"))?)
            }
            None => None,
        };
        let secs = table.timeouts.get(&kernel).copied().unwrap_or(KERNEL_TIMEOUT_SECS);
        let mut images = Vec::new();
        for (mode, features) in MODES {
            let mut extra = vec!["--bin", kernel.as_str()];
            extra.extend_from_slice(features);
            let bins = cargo::build_kernel_bins(TESTS_PACKAGE, true, true, &extra)?;
            let elf = bins.get(&kernel).with_context(|| format!("cargo built no `{kernel}`"))?;
            // Both modes build to the same path: keep a copy per mode.
            let copy = dir.join(format!("{kernel}-{mode}"));
            std::fs::copy(elf, &copy).with_context(|| format!("copying {}", elf.display()))?;
            images.push((
                mode,
                make_image(target, &format!("{kernel}-{mode}"), &copy, true, Firmware::Bios, ramdisk.as_ref())?,
            ));
        }
        // Rounds alternate the modes, so drifts of the (noisy, shared) host hit both alike.
        for round in 0..o.rounds.max(1) {
            for (mode, image) in &images {
                let mut config = QemuConfig::new(image.clone(), Firmware::Bios);
                config.kernel_options.extend(ramdisk.as_ref().map(pages::PageFile::option));
                if o.quick {
                    config.kernel_options.push(format!("bench_stores={QUICK_BENCH_STORES}"));
                }
                config.disks.push(qemu::swap_disk(target, &kernel, qemu::SWAP_MIB)?);
                config.disks.push(files.disk());
                if let Some(&n) = table.smp.get(&kernel) {
                    config.smp = n;
                }
                config.tcg_multi_thread = table.multi_threaded_tcg.contains(&kernel);
                let args = config.args().map_err(anyhow::Error::msg)?;
                let load = load_average();
                let run = qemu::run(&args, Duration::from_secs(secs), |_| {})?;
                // Every run's serial output is kept beside the kernel copies, for the lines no table shows.
                let log = dir.join(format!("{kernel}-{mode}-round{}.log", round + 1));
                std::fs::write(&log, run.lines.join("\n") + "\n")
                    .with_context(|| format!("writing {}", log.display()))?;
                if let Err(why) = verdict::exit_verdict(run.status, run.timed_out, secs) {
                    for l in &run.lines {
                        eprintln!("    | {l}");
                    }
                    bail!("benchmark kernel {kernel} ({mode}) failed: {why}");
                }
                for line in &run.lines {
                    let Some(v) = line.strip_prefix("@@bench ").and_then(|j| serde_json::from_str::<Value>(j).ok())
                    else {
                        continue;
                    };
                    let (Some(name), Some(ns)) = (v["name"].as_str(), v["ns"].as_f64()) else { continue };
                    let per_mode = results.entry(kernel.clone()).or_default().entry(mode.to_string()).or_default();
                    per_mode.entry(name.into()).or_default().push(ns);
                }
                if let Some(tsc) = run.lines.iter().find(|l| l.starts_with("tsc:")) {
                    eprintln!("xtask: {kernel} ({mode}) round {}: {tsc}", round + 1);
                }
                let rows = scaling_rows(&run.lines).with_context(|| format!("benchmark kernel {kernel} ({mode})"))?;
                if !rows.is_empty() {
                    // The table names the accelerator the figures were measured under: never a guess.
                    let accel =
                        args.iter().skip_while(|a| *a != "-accel").nth(1).cloned().with_context(|| {
                            format!("benchmark kernel {kernel}: its QEMU command line has no -accel")
                        })?;
                    let s = scaling.entry(kernel.clone()).or_insert_with(|| Scaling { accel, runs: Vec::new() });
                    s.runs.push(ScalingRun { mode: mode.to_string(), round: round + 1, load, rows });
                }
            }
        }
    }
    let medians: BTreeMap<&String, BTreeMap<&String, BTreeMap<&String, f64>>> = results
        .iter()
        .map(|(k, modes)| {
            (k, modes.iter().map(|(m, names)| (m, names.iter().map(|(n, v)| (n, median(v))).collect())).collect())
        })
        .collect();
    println!();
    println!("median of {} rounds", o.rounds.max(1));
    println!("{:<28} {:>12} {:>12} {:>8}", "ns per operation (TCG)", "kmap", "direct-map", "ratio");
    for (kernel, modes) in &medians {
        println!("{kernel}");
        let empty = BTreeMap::new();
        let kmap = modes.get(&"kmap".to_string()).unwrap_or(&empty);
        let direct = modes.get(&"direct-map".to_string()).unwrap_or(&empty);
        for (name, ns) in kmap {
            let d = direct.get(name).copied().unwrap_or(f64::NAN);
            let ns = *ns;
            println!("  {name:<26} {ns:>12.1} {d:>12.1} {:>7.2}x", ns / d);
        }
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut scaling_json = Map::new();
    for (kernel, s) in &scaling {
        let Some(shown) = shown_run(&s.runs) else { continue };
        let markdown = scaling_markdown(&shown.rows);
        println!();
        println!("{}", scaling_heading(kernel, s, shown, o.rounds.max(1), cores));
        println!();
        print!("{markdown}");
        println!();
        for line in scaling_notes(shown) {
            println!("{line}");
        }
        println!("{}", scaling_spread(&s.runs));
        scaling_json.insert(
            kernel.clone(),
            json!({
                "what": "frontswap stores (LZ4, zsmalloc) per second with the first k CPUs, each CPU the same count; \
                         one QEMU run per entry of `runs`",
                "host_cores": cores,
                "accel": s.accel,
                "shown": { "mode": shown.mode, "round": shown.round, "load_average": shown.load },
                "rows": shown.rows.iter().map(ScalingRow::json).collect::<Vec<_>>(),
                "markdown": markdown,
                "runs": s.runs.iter().map(|r| json!({
                    "mode": r.mode,
                    "round": r.round,
                    "load_average": r.load,
                    "rows": r.rows.iter().map(ScalingRow::json).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            }),
        );
    }
    Ok((json!(results), json!(medians), Value::Object(scaling_json)))
}

/// The benchmark kernels `--filter` selects (all without one); an error when it selects none.
fn select(benches: &[String], filter: Option<&str>) -> Result<Vec<String>> {
    let chosen: Vec<String> = benches.iter().filter(|k| filter.is_none_or(|f| k.contains(f))).cloned().collect();
    if chosen.is_empty() {
        bail!("no benchmark kernel matches --filter {} (they are: {})", filter.unwrap_or(""), benches.join(", "));
    }
    Ok(chosen)
}

/// One phase of a scaling kernel: its `@@bench` line with `cpus` (tests/bench_smp.rs prints them).
#[derive(Debug, Clone, PartialEq)]
struct ScalingRow {
    cpus: u64,
    /// Stores in the phase, over all its CPUs.
    stores: u64,
    stores_per_s: f64,
    /// `stores_per_s` over the 1-CPU phase's, as the kernel computed it.
    ratio: f64,
    /// zcache's lock during the phase.
    acquisitions: u64,
    contentions: u64,
    /// Percent of the phase the CPUs spent inside `frontswap::store` (compression included).
    in_store_pct: f64,
    /// Percent of the phase zcache's lock was held (its hold time): the serial part of a store.
    in_lock_pct: f64,
    /// The longest single store of the phase, lock wait included.
    slowest_store_us: f64,
}

impl ScalingRow {
    fn json(&self) -> Value {
        json!({
            "cpus": self.cpus,
            "stores": self.stores,
            "stores_per_s": self.stores_per_s,
            "ratio": self.ratio,
            "zcache_acquisitions": self.acquisitions,
            "zcache_contentions": self.contentions,
            "in_store_pct": self.in_store_pct,
            "in_lock_pct": self.in_lock_pct,
            "slowest_store_us": self.slowest_store_us,
        })
    }
}

/// One QEMU run of a scaling kernel.
#[derive(Debug, Clone, PartialEq)]
struct ScalingRun {
    mode: String,
    round: usize,
    /// The host's 1-minute load average when the run started (`/proc/loadavg`), if readable: what
    /// else the host's cores were busy with.
    load: Option<f64>,
    rows: Vec<ScalingRow>,
}

/// Every run of one scaling kernel, and QEMU's `-accel` for it.
#[derive(Debug)]
struct Scaling {
    accel: String,
    runs: Vec<ScalingRun>,
}

/// The scaling rows among a run's serial lines: each `@@bench` line that has `cpus`. Such a line missing
/// a field is an error, and so are rows whose CPU counts do not rise from 1.
fn scaling_rows(lines: &[String]) -> Result<Vec<ScalingRow>> {
    let mut rows: Vec<ScalingRow> = Vec::new();
    for line in lines {
        let Some(v) = line.strip_prefix("@@bench ").and_then(|j| serde_json::from_str::<Value>(j).ok()) else {
            continue;
        };
        if v.get("cpus").is_none() {
            continue;
        }
        let int = |k: &str| v[k].as_u64().with_context(|| format!("`{k}` missing or not a count in `{line}`"));
        let num = |k: &str| v[k].as_f64().with_context(|| format!("`{k}` missing or not a number in `{line}`"));
        let row = ScalingRow {
            cpus: int("cpus")?,
            stores: int("stores")?,
            stores_per_s: num("stores_per_s")?,
            ratio: num("ratio")?,
            acquisitions: int("zcache_acquisitions")?,
            contentions: int("zcache_contentions")?,
            in_store_pct: num("in_store_pct")?,
            in_lock_pct: num("in_lock_pct")?,
            slowest_store_us: num("slowest_store_us")?,
        };
        let rising = rows.last().map_or(row.cpus == 1, |last| row.cpus > last.cpus);
        if !rising {
            bail!(
                "scaling rows must start at 1 CPU and rise: {} CPUs after {:?}",
                row.cpus,
                rows.last().map(|r| r.cpus)
            );
        }
        rows.push(row);
    }
    Ok(rows)
}

/// The run whose table is shown: among the kmap runs (all runs if none is kmap), the one whose ratio at
/// its most CPUs is the median (the lower of the two middle ones for an even count).
fn shown_run(runs: &[ScalingRun]) -> Option<&ScalingRun> {
    let mut pick: Vec<&ScalingRun> = runs.iter().filter(|r| r.mode == "kmap" && !r.rows.is_empty()).collect();
    if pick.is_empty() {
        pick = runs.iter().filter(|r| !r.rows.is_empty()).collect();
    }
    let top = |r: &ScalingRun| r.rows.last().map_or(f64::NAN, |row| row.ratio);
    pick.sort_by(|a, b| top(a).total_cmp(&top(b)));
    pick.get(pick.len().saturating_sub(1) / 2).copied()
}

/// The table of one run, as markdown (ends with a newline).
fn scaling_markdown(rows: &[ScalingRow]) -> String {
    let mut s = String::from(
        "| CPUs | stores/s | ratio to 1 CPU | zcache lock acquisitions | contentions |\n|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        s += &format!(
            "| {} | {:.0} | {:.2} | {} | {} |\n",
            r.cpus, r.stores_per_s, r.ratio, r.acquisitions, r.contentions
        );
    }
    s
}

/// What the table is: which kernel and run, how QEMU ran, the host's cores.
fn scaling_heading(kernel: &str, s: &Scaling, shown: &ScalingRun, rounds: usize, cores: usize) -> String {
    let cpus = shown.rows.iter().map(|r| r.cpus.to_string()).collect::<Vec<_>>().join(", ");
    let most = shown.rows.last().map_or(0, |r| r.cpus);
    let per_cpu = shown.rows.first().map_or(0, |r| r.stores);
    let threads = if s.accel.contains("thread=multi") {
        "multi-threaded TCG, one host thread per vCPU"
    } else if s.accel == "kvm" {
        "KVM"
    } else {
        "TCG, threading left to QEMU's default"
    };
    let load = shown.load.map_or(String::new(), |l| format!(", load average {l:.2} as the run began"));
    format!(
        "{kernel}: tmem stores on {cpus} CPUs, {per_cpu} per CPU per phase, all from one QEMU run ({} build, round {} \
         of {rounds}: the median ratio at {most} CPUs); QEMU -smp {most} -accel {} ({threads}); host: {cores} cores \
         (std::thread::available_parallelism){load}",
        shown.mode, shown.round, s.accel
    )
}

/// What the table's run says beyond the table: the bound the 1-CPU phase's serial share puts on the
/// ratios (Amdahl: with a share `s` of the work serial, k CPUs give at most `1 / (s + (1 - s) / k)`), and
/// the slowest single store of each phase.
fn scaling_notes(run: &ScalingRun) -> Vec<String> {
    let mut notes = Vec::new();
    if let [one, more @ ..] = run.rows.as_slice()
        && !more.is_empty()
    {
        let serial = one.in_lock_pct / 100.0;
        let bounds: Vec<String> = more
            .iter()
            .map(|r| format!("{} CPUs <= {:.2}", r.cpus, 1.0 / (serial + (1.0 - serial) / r.cpus as f64)))
            .collect();
        notes.push(format!(
            "on 1 CPU {:.1} % of the phase was inside frontswap::store and {:.1} % under zcache's lock (a store \
             compresses before it takes the lock): with that share serial, the ratio can be at most {}",
            one.in_store_pct,
            one.in_lock_pct,
            bounds.join(", ")
        ));
    }
    let slowest: Vec<String> =
        run.rows.iter().map(|r| format!("{} CPU(s) {:.1} ms", r.cpus, r.slowest_store_us / 1000.0)).collect();
    notes.push(format!("slowest single store (zcache lock wait included): {}", slowest.join(", ")));
    notes
}

/// The host's 1-minute load average now, from `/proc/loadavg` (None where there is none).
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// The ratio at the most CPUs in every run, so the spread the one table hides is in view.
fn scaling_spread(runs: &[ScalingRun]) -> String {
    let mut by_mode: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut most = 0;
    for r in runs {
        if let Some(last) = r.rows.last() {
            most = most.max(last.cpus);
            by_mode.entry(&r.mode).or_default().push(format!("{:.2}", last.ratio));
        }
    }
    let parts: Vec<String> = by_mode.iter().map(|(m, v)| format!("{m} {}", v.join(" "))).collect();
    format!("ratio at {most} CPUs in every run, by round: {}", parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        bench: BenchOpts,
    }

    fn parse(args: &[&str]) -> Result<BenchOpts, clap::error::ErrorKind> {
        Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied())).map(|c| c.bench).map_err(|e| e.kind())
    }

    #[test]
    fn sweep_and_pools_take_pages_and_exclude_each_other() {
        let o = parse(&["--sweep", "--pages", "f.pages"]).unwrap();
        assert!(o.sweep && !o.pools);
        assert_eq!(o.pages, Some(PathBuf::from("f.pages")));
        let o = parse(&["--pools", "--pages", "f.pages"]).unwrap();
        assert!(o.pools && !o.sweep);
        assert!(parse(&["--sweep"]).unwrap().pages.is_none());
        assert_eq!(parse(&["--pages", "f.pages"]).unwrap_err(), clap::error::ErrorKind::MissingRequiredArgument);
        assert_eq!(parse(&["--sweep", "--pools"]).unwrap_err(), clap::error::ErrorKind::ArgumentConflict);
        assert_eq!(parse(&["--sweep", "--quick"]).unwrap_err(), clap::error::ErrorKind::ArgumentConflict);
        // The default `--rounds` is no conflict.
        assert!(parse(&["--sweep", "--rounds", "3"]).is_ok());
    }

    #[test]
    fn filter_picks_benchmark_kernels_and_only_with_kernels_to_boot() {
        assert_eq!(parse(&["--filter", "bench_smp", "--kernel-only"]).unwrap().filter.as_deref(), Some("bench_smp"));
        assert!(parse(&["--quick"]).unwrap().filter.is_none());
        for other in ["--sweep", "--pools", "--host-only"] {
            assert_eq!(parse(&["--filter", "smp", other]).unwrap_err(), clap::error::ErrorKind::ArgumentConflict);
        }
        let benches = ["bench_mm", "bench_pools", "bench_smp"].map(String::from);
        assert_eq!(select(&benches, None).unwrap(), benches);
        assert_eq!(select(&benches, Some("smp")).unwrap(), ["bench_smp"]);
        assert_eq!(select(&benches, Some("bench_p")).unwrap(), ["bench_pools"]);
        let e = select(&benches, Some("nothing")).unwrap_err().to_string();
        assert_eq!(e, "no benchmark kernel matches --filter nothing (they are: bench_mm, bench_pools, bench_smp)");
    }

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(String::from).collect()
    }

    const SMP_RUN: &str = r#"tsc: 2400 MHz (calibrated against the PIT)
@@bench {"name":"tmem_store_1cpu","ns":50000.00,"cycles":120000,"cpus":1,"stores":3000,"ms":150,"stores_per_s":20000,"ratio":1.000,"zcache_acquisitions":3000,"zcache_contentions":0,"in_store_pct":96.0,"in_lock_pct":40.0,"slowest_store_us":180}
@@bench {"name":"other","ns":12.5}
@@bench {"name":"tmem_store_2cpu","ns":31250.00,"cycles":75000,"cpus":2,"stores":6000,"ms":187,"stores_per_s":32000,"ratio":1.600,"zcache_acquisitions":6000,"zcache_contentions":2500,"in_store_pct":97.5,"in_lock_pct":70.0,"slowest_store_us":25000}
@@bench {"name":"tmem_store_4cpu","ns":41666.66,"cycles":100000,"cpus":4,"stores":12000,"ms":500,"stores_per_s":24000,"ratio":1.200,"zcache_acquisitions":12000,"zcache_contentions":9000,"in_store_pct":98.2,"in_lock_pct":90.0,"slowest_store_us":1094028}
case measure ... ok"#;

    #[test]
    fn scaling_rows_are_read_from_the_bench_lines_with_cpus() {
        let rows = scaling_rows(&lines(SMP_RUN)).unwrap();
        assert_eq!(rows.iter().map(|r| r.cpus).collect::<Vec<_>>(), [1, 2, 4]);
        assert_eq!(
            rows[1],
            ScalingRow {
                cpus: 2,
                stores: 6000,
                stores_per_s: 32000.0,
                ratio: 1.6,
                acquisitions: 6000,
                contentions: 2500,
                in_store_pct: 97.5,
                in_lock_pct: 70.0,
                slowest_store_us: 25000.0,
            }
        );
        // A kernel without such lines has no scaling rows.
        assert!(scaling_rows(&lines(r#"@@bench {"name":"copy_4k","ns":300.5}"#)).unwrap().is_empty());
        // A line with `cpus` must have every field, and the CPU counts must rise from 1.
        let missing = r#"@@bench {"name":"x","ns":1,"cpus":1,"stores":3,"stores_per_s":2,"ratio":1.0,"zcache_acquisitions":3,"in_store_pct":9,"slowest_store_us":1}"#;
        let e = format!("{:#}", scaling_rows(&lines(missing)).unwrap_err());
        assert!(e.starts_with("`zcache_contentions` missing or not a count in `@@bench"), "{e}");
        let row = |c: u32| {
            format!(
                r#"@@bench {{"name":"x","ns":1,"cpus":{c},"stores":3,"stores_per_s":2,"ratio":1.0,"zcache_acquisitions":3,"zcache_contentions":0,"in_store_pct":9,"in_lock_pct":5,"slowest_store_us":1}}"#
            )
        };
        assert!(scaling_rows(&[row(2)]).is_err(), "must start at 1 CPU");
        assert!(scaling_rows(&[row(1), row(4), row(2)]).is_err(), "must rise");
        assert!(scaling_rows(&[row(1), row(1)]).is_err(), "must rise");
    }

    #[test]
    fn the_table_is_markdown_of_one_run() {
        let rows = scaling_rows(&lines(SMP_RUN)).unwrap();
        assert_eq!(
            scaling_markdown(&rows),
            "| CPUs | stores/s | ratio to 1 CPU | zcache lock acquisitions | contentions |\n\
             |---:|---:|---:|---:|---:|\n\
             | 1 | 20000 | 1.00 | 3000 | 0 |\n\
             | 2 | 32000 | 1.60 | 6000 | 2500 |\n\
             | 4 | 24000 | 1.20 | 12000 | 9000 |\n"
        );
        let s = Scaling { accel: "tcg,thread=multi".into(), runs: Vec::new() };
        let mut run = ScalingRun { mode: "kmap".into(), round: 2, load: Some(1.5), rows };
        assert_eq!(
            scaling_heading("bench_smp", &s, &run, 3, 2),
            "bench_smp: tmem stores on 1, 2, 4 CPUs, 3000 per CPU per phase, all from one QEMU run (kmap build, \
             round 2 of 3: the median ratio at 4 CPUs); QEMU -smp 4 -accel tcg,thread=multi (multi-threaded TCG, one \
             host thread per vCPU); host: 2 cores (std::thread::available_parallelism), load average 1.50 as the \
             run began"
        );
        // 40 % serial: 1 / (0.4 + 0.6 / 2) = 1.4286, 1 / (0.4 + 0.6 / 4) = 1.8182.
        assert_eq!(
            scaling_notes(&run),
            [
                "on 1 CPU 96.0 % of the phase was inside frontswap::store and 40.0 % under zcache's lock (a store \
                 compresses before it takes the lock): with that share serial, the ratio can be at most 2 CPUs <= 1.43, \
                 4 CPUs <= 1.82",
                "slowest single store (zcache lock wait included): 1 CPU(s) 0.2 ms, 2 CPU(s) 25.0 ms, 4 CPU(s) 1094.0 ms",
            ]
        );
        run.load = None;
        assert!(scaling_heading("bench_smp", &s, &run, 3, 2).ends_with("(std::thread::available_parallelism)"));
    }

    #[test]
    fn the_shown_run_is_the_kmap_run_with_the_median_ratio_at_most_cpus() {
        let run = |mode: &str, round: usize, top: f64| ScalingRun {
            mode: mode.into(),
            round,
            load: None,
            rows: [(1, 1.0), (4, top)]
                .map(|(cpus, ratio)| ScalingRow {
                    cpus,
                    stores: 0,
                    stores_per_s: 0.0,
                    ratio,
                    acquisitions: 0,
                    contentions: 0,
                    in_store_pct: 0.0,
                    in_lock_pct: 0.0,
                    slowest_store_us: 0.0,
                })
                .to_vec(),
        };
        let runs = [run("kmap", 1, 1.3), run("direct-map", 1, 0.2), run("kmap", 2, 0.9), run("kmap", 3, 1.1)].to_vec();
        assert_eq!(shown_run(&runs).map(|r| (r.mode.as_str(), r.round)), Some(("kmap", 3)));
        assert_eq!(shown_run(&runs[..2]).map(|r| r.round), Some(1), "one kmap run: that one");
        assert_eq!(shown_run(&runs[2..]).map(|r| r.round), Some(2), "two: the lower middle");
        assert_eq!(shown_run(&runs[1..2]).map(|r| r.mode.as_str()), Some("direct-map"), "no kmap run: any");
        assert!(shown_run(&[]).is_none());
        assert_eq!(
            scaling_spread(&runs),
            "ratio at 4 CPUs in every run, by round: direct-map 0.20; kmap 1.30 0.90 1.10"
        );
    }
}
