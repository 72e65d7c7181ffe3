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
//!    with the ratio, from the same run of this command. A kernel listed in `ramdisks` gets its page file
//!    as the ramdisk, as under `cargo xtask test`.
//!
//! The figures are also written to `target/zkernel/bench.json`: `efficiency`, `throughput`, and the
//! kernels' `rounds` and `median`, for the parts that ran.
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
        let (rounds, medians) = kernels(o, &meta, &target)?;
        report.insert("rounds".into(), rounds);
        report.insert("median".into(), medians);
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

/// Build, boot and time every benchmark kernel; print the medians; return the rounds and the medians.
fn kernels(o: &BenchOpts, meta: &Metadata, target: &Path) -> Result<(Value, Value)> {
    qemu::ensure_prerequisites(false)?;
    let dir = target.join("zkernel").join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let table = cargo::kernel_table(meta, TESTS_PACKAGE)?;
    let files = files::prepare(target, None)?;
    let mut results: Rounds = BTreeMap::new();
    for kernel in table.benches {
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
                config.disks.push(qemu::swap_disk(target, &kernel, qemu::SWAP_MIB)?);
                config.disks.push(files.disk());
                let run = qemu::run(&config.args().map_err(anyhow::Error::msg)?, Duration::from_secs(secs), |_| {})?;
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
    Ok((json!(results), json!(medians)))
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
}
