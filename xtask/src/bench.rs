//! `cargo xtask bench`: speed figures, kept out of the tests (these machines are noisy).
//!
//! 1. Host: `cargo bench --package zkernel-bench` (criterion) — the algorithm crates without QEMU.
//! 2. Kernel: every benchmark kernel (tests/Cargo.toml, `benches`) is built in release twice, with the
//!    kernel's real temporary mappings (kmap) and with the `direct-map` feature, booted under TCG
//!    `--rounds` times each, alternating, and the medians of its `@@bench` lines are printed side by side
//!    with the ratio, from the same run of this command.
//!
//! The figures are also written to `target/zkernel/bench.json`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use boot::{Firmware, QemuConfig};
use clap::Args;
use serde_json::{Value, json};

use crate::test::{TESTS_PACKAGE, bench_kernels};
use crate::{cargo, make_image, qemu, verdict};

#[derive(Args, Clone, Debug)]
pub struct BenchOpts {
    /// Shorter criterion runs (less precise).
    #[arg(long)]
    quick: bool,
    /// Skip the host (criterion) benchmarks.
    #[arg(long)]
    kernel_only: bool,
    /// Skip the benchmark kernels.
    #[arg(long)]
    host_only: bool,
    /// Boots of each benchmark kernel per mode; the table shows the median.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
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

pub fn bench(o: &BenchOpts) -> Result<ExitCode, String> {
    if !o.kernel_only {
        let mut cmd = cargo::cargo();
        cmd.args(["bench", "--package", "zkernel-bench", "--benches"]);
        if o.quick {
            cmd.args(["--", "--quick"]);
        }
        eprintln!("xtask: cargo bench --package zkernel-bench");
        if !cmd.status().is_ok_and(|s| s.success()) {
            return Err("the host benchmarks failed".into());
        }
    }
    if o.host_only {
        return Ok(ExitCode::SUCCESS);
    }
    qemu::ensure_prerequisites(false)?;
    let meta = cargo::metadata()?;
    let target = cargo::target_dir(&meta);
    let dir = target.join("zkernel").join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    // kernel → mode → name → ns, one value per round
    let mut results: BTreeMap<String, BTreeMap<String, BTreeMap<String, Vec<f64>>>> = BTreeMap::new();
    for kernel in bench_kernels(&meta) {
        let mut images = Vec::new();
        for (mode, features) in MODES {
            let mut extra = vec!["--bin", kernel.as_str()];
            extra.extend_from_slice(features);
            let bins = cargo::build_kernel_bins(TESTS_PACKAGE, true, true, &extra)?;
            let elf = bins.get(&kernel).ok_or_else(|| format!("cargo built no `{kernel}`"))?;
            // Both modes build to the same path: keep a copy per mode.
            let copy = dir.join(format!("{kernel}-{mode}"));
            std::fs::copy(elf, &copy).map_err(|e| format!("copying {}: {e}", elf.display()))?;
            images.push((mode, make_image(&target, &format!("{kernel}-{mode}"), &copy, true, Firmware::Bios, None)?));
        }
        // Rounds alternate the modes, so drifts of the (noisy, shared) host hit both alike.
        for round in 0..o.rounds.max(1) {
            for (mode, image) in &images {
                let config = QemuConfig::new(image.clone(), Firmware::Bios);
                let run = qemu::run(&config.args()?, Duration::from_secs(300), |_| {})?;
                if let Err(why) = verdict::exit_verdict(run.status, run.timed_out, 300) {
                    for l in &run.lines {
                        eprintln!("    | {l}");
                    }
                    return Err(format!("benchmark kernel {kernel} ({mode}) failed: {why}"));
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
    let path = target.join("zkernel").join("bench.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&json!({ "rounds": results, "median": medians })).unwrap_or_default() + "\n",
    )
    .map_err(|e| format!("writing {}: {e}", path.display()))?;
    eprintln!("xtask: figures saved to {}", path.display());
    Ok(ExitCode::SUCCESS)
}
