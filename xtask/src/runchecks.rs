//! Run checks: `cargo xtask test` boots the demo kernel itself (`cargo xtask run`'s path, not a test
//! kernel) and holds each run to what a user of `run` is promised.
//!
//! | check | run | must |
//! |---|---|---|
//! | `run_stats_pools` … `run_stats_sweep` | each workload, small settings | pass, and its `@@stats` line read back into `zstats::Report` with unknown fields denied, its member present |
//! | `run_swap_on_every_cpu` | `swap_cpus=4 swap_sharing=shared`, small region | pass; one multi-CPU run per configuration (disk, tmem, zram), 4 workers each, zero mismatches, and CPUs raced for pages (`raced_faults` > 0 somewhere) |
//! | `run_fails_on_corrupt_page` | `corrupt_stored=3`: a stored pool object damaged | fail, the kernel's reason on the last line |
//! | `run_fails_on_impossible_config` | `workload=swap swap_slots=1000000` (more than the disk) | fail with the reason |
//! | `run_refuses_bad_option_on_host` | `swap_mem=abc` | fail in under a second, nothing built or booted |
//! | `run_kernel_refuses_unchecked_option` | `swap_mem=abc` passed past the host check | the kernel itself fails the boot, naming the option |
//! | `run_uses_the_pages_given` | a 64-page file, then an *older* 32-page file | the second boot reports 32 pages with a good checksum |
//! | `run_fails_on_wrong_pages` | a page file with a checksum that does not match it | fail: not the page file given |
//! | `run_screenshot_swap` | `cargo xtask screenshot` on a swap run (`swap_mem=256 swap_accesses=2048`) | a PNG that decodes, of the framebuffer's size, with more than `screenshot::MIN_OWNER_COLOURS` owner colours in the map, zsmalloc's and the workload's among them |
//! | `run_report_swap` | `cargo xtask report` on a swap run of the real pages (`swap_mem=256 swap_accesses=2048`) | report.md with the summary and a row per run, and at least 3 PNG plots that decode |
//! | `run_pool_table_matches_host` | `run_stats_pools`'s report, and the host's `pool-table` on the same objects | every pool's stored, refused, pool pages, reserve, object and metadata bytes equal, row by row |
//!
//! They run one at a time after the test kernels (each boots the same disk image).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};

use crate::{BuildOpts, MachineOpts, RunOpts, TestOpts, Workload, cargo, execute_run, pages, prepare_run};

/// One run check: its name and what it does.
#[derive(Debug)]
pub struct RunCheck {
    pub name: &'static str,
    check: fn(&TestOpts) -> Result<String>,
}

/// Every run check, in the order they run.
pub fn checks() -> Vec<RunCheck> {
    vec![
        RunCheck { name: "run_stats_pools", check: |o| stats(o, Workload::Pools, &[]) },
        RunCheck { name: "run_stats_swap", check: |o| stats(o, Workload::Swap, SMALL_SWAP) },
        RunCheck { name: "run_stats_files", check: |o| stats(o, Workload::Files, SMALL_FILES) },
        RunCheck { name: "run_stats_all", check: |o| stats(o, Workload::All, &[SMALL_SWAP, SMALL_FILES].concat()) },
        RunCheck { name: "run_stats_sweep", check: |o| stats(o, Workload::Sweep, TINY_SWEEP) },
        RunCheck { name: "run_swap_on_every_cpu", check: swap_on_every_cpu },
        RunCheck { name: "run_fails_on_corrupt_page", check: corrupt_page },
        RunCheck { name: "run_fails_on_impossible_config", check: impossible_config },
        RunCheck { name: "run_refuses_bad_option_on_host", check: bad_option_on_host },
        RunCheck { name: "run_kernel_refuses_unchecked_option", check: kernel_refuses_option },
        RunCheck { name: "run_uses_the_pages_given", check: pages_given },
        RunCheck { name: "run_fails_on_wrong_pages", check: wrong_pages },
        RunCheck { name: "run_pool_table_matches_host", check: pool_table_matches_host },
        RunCheck { name: "run_screenshot_swap", check: screenshot_swap },
        RunCheck { name: "run_report_swap", check: report_swap },
    ]
}

impl RunCheck {
    /// Run it: `Ok(detail)` when the run did what it must.
    pub fn run(&self, o: &TestOpts) -> Result<String> {
        (self.check)(o)
    }
}

const SMALL_SWAP: &[&str] = &["swap_mem=64", "swap_accesses=768"];
const SMALL_FILES: &[&str] = &["files_cache=32", "files_ops=40"];
/// The sweep's 54 runs on a region of 192 pages.
const TINY_SWEEP: &[&str] = &["swap_mem=64", "swap_accesses=256"];

fn opts(o: &TestOpts, workload: Option<Workload>, options: &[&str]) -> RunOpts {
    RunOpts {
        build: BuildOpts { release: o.release, uefi: o.uefi },
        machine: MachineOpts { kvm: o.kvm, smp: 4, mem: 256, timeout: Some(o.timeout.max(120)) },
        display: false,
        pages: None,
        synthetic: false,
        help_kernel: false,
        verbose: false,
        files: None,
        swap_mib: crate::qemu::SWAP_MIB,
        workload,
        kernel_options: options.iter().map(|s| s.to_string()).collect(),
    }
}

/// Boot and return the outcome, without echoing the console.
fn boot(r: &RunOpts, check_options: bool) -> Result<crate::RunOutcome> {
    let prepared = prepare_run(r, false, check_options, "runcheck")?;
    execute_run(&prepared, false)
}

/// The pools workload's report from `run_stats_pools`, for `run_pool_table_matches_host` (one boot for both).
static POOLS_REPORT: std::sync::Mutex<Option<zstats::Report>> = std::sync::Mutex::new(None);

fn stats(o: &TestOpts, w: Workload, options: &[&str]) -> Result<String> {
    let passed = boot(&opts(o, Some(w), options), true)?.into_result()?;
    if w == Workload::Pools {
        *POOLS_REPORT.lock().expect("no panics hold it") = Some(passed.report.clone());
    }
    let r = &passed.report;
    ensure!(r.failures.is_empty(), "the report lists failures: {:?}", r.failures);
    let member = match w {
        Workload::Pools => !r.pools.is_empty(),
        Workload::Swap => r.swap.as_ref().is_some_and(|s| !s.runs.is_empty()),
        Workload::Files => r.files.as_ref().is_some_and(|f| f.runs.len() == 2),
        Workload::All => r.all.is_some(),
        Workload::Sweep => r.sweep.as_ref().is_some_and(|s| !s.points.is_empty()),
        Workload::Soak => r.soak.is_some(),
    };
    ensure!(member, "the report has no {w:?} member");
    Ok(format!("report read back into zstats::Report, {w:?} member present"))
}

fn swap_on_every_cpu(o: &TestOpts) -> Result<String> {
    let options = ["swap_cpus=4", "swap_sharing=shared", "swap_mem=128", "swap_accesses=1024"];
    let passed = boot(&opts(o, Some(Workload::Swap), &options), true)?.into_result()?;
    let r = &passed.report;
    ensure!(r.failures.is_empty(), "the report lists failures: {:?}", r.failures);
    ensure!(r.cpus_up == 4, "{} CPUs up, not 4", r.cpus_up);
    let swap = r.swap.as_ref().context("no swap member")?;
    let configs: Vec<&str> = swap.smp_runs.iter().map(|s| s.config.as_str()).collect();
    ensure!(configs == ["disk", "tmem-zsmalloc", "zram-zsmalloc"], "multi-CPU runs: {configs:?}");
    ensure!(swap.runs.is_empty(), "single-CPU runs beside the multi-CPU ones");
    for s in &swap.smp_runs {
        ensure!(s.cpus == 4 && s.sharing == "shared", "{}: {} CPUs, {}", s.config, s.cpus, s.sharing);
        ensure!(s.mismatches == 0, "{}: {} mismatches", s.config, s.mismatches);
        ensure!(s.swap.swapouts > 0, "{}: nothing was swapped out", s.config);
    }
    let raced: u64 = swap.smp_runs.iter().map(|s| s.swap.raced_faults).sum();
    ensure!(raced > 0, "no fault found its page already mapped by another CPU: the CPUs never met on a page");
    let swap_lock = r.locks.iter().find(|l| l.name == "swap").context("no `swap` lock in the report")?;
    Ok(format!(
        "3 configurations on 4 CPUs, no mismatch; {raced} raced faults; swap lock {} acquisitions, {} contentions",
        swap_lock.acquisitions, swap_lock.contentions
    ))
}

/// A run that must fail, with a reason containing `why`.
fn must_fail(outcome: crate::RunOutcome, why: &str) -> Result<String> {
    let lines = outcome.lines.len();
    let last = outcome.lines.last().cloned().unwrap_or_default();
    match outcome.into_result() {
        Ok(_) => bail!("the run passed"),
        Err(e) => {
            let msg = format!("{e:#}");
            ensure!(msg.contains(why), "failed, but not for `{why}`: {msg}");
            ensure!(
                last.starts_with("zkernel: FAILED: "),
                "the kernel's last line is not its reason: {last:?} ({lines} lines)"
            );
            Ok(format!("failed as it must: {msg}"))
        }
    }
}

fn corrupt_page(o: &TestOpts) -> Result<String> {
    must_fail(boot(&opts(o, Some(Workload::Pools), &["corrupt_stored=3"]), true)?, "did not read back intact")
}

fn impossible_config(o: &TestOpts) -> Result<String> {
    let r = opts(o, Some(Workload::Swap), &[SMALL_SWAP, &["swap_slots=1000000"]].concat());
    must_fail(boot(&r, true)?, "swap_slots=1000000")
}

fn bad_option_on_host(o: &TestOpts) -> Result<String> {
    let start = Instant::now();
    let r = opts(o, None, &["swap_mem=abc"]);
    let err = match prepare_run(&r, false, true, "runcheck") {
        Ok(_) => bail!("the bad option was accepted"),
        Err(e) => format!("{e:#}"),
    };
    let took = start.elapsed();
    ensure!(err.contains("option swap_mem=abc: not a number"), "wrong message: {err}");
    ensure!(err.contains("nothing was built or booted"), "wrong message: {err}");
    ensure!(took < Duration::from_secs(1), "took {took:?}");
    Ok(format!("refused in {} ms: {err}", took.as_millis()))
}

fn kernel_refuses_option(o: &TestOpts) -> Result<String> {
    must_fail(boot(&opts(o, None, &["swap_mem=abc"]), false)?, "option swap_mem=abc: not a number")
}

/// Two page files made from the sample: A (64 pages) and B (32 pages), B older than A.
fn two_page_files() -> Result<(PathBuf, PathBuf)> {
    let meta = cargo::metadata()?;
    let dir = cargo::target_dir(&meta).join("zkernel").join("runchecks");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let sample = pages::prepare(&cargo::workspace_root().join(pages::DEFAULT_PAGES), &dir)?;
    let bytes = std::fs::read(&sample.path).with_context(|| format!("reading {}", sample.path.display()))?;
    let (a, b) = (dir.join("a.pages"), dir.join("b.pages"));
    std::fs::write(&a, &bytes[..64 * 4096]).context("writing a.pages")?;
    std::fs::write(&b, &bytes[64 * 4096..96 * 4096]).context("writing b.pages")?;
    let set_age = |p: &Path, age: u64| -> Result<()> {
        let f = std::fs::File::options().write(true).open(p)?;
        f.set_modified(SystemTime::now() - Duration::from_secs(age))?;
        Ok(())
    };
    set_age(&b, 3600)?;
    set_age(&a, 0)?;
    Ok((a, b))
}

fn pages_given(o: &TestOpts) -> Result<String> {
    let (a, b) = two_page_files()?;
    let mut first = opts(o, Some(Workload::Pools), &[]);
    first.pages = Some(a);
    let r = boot(&first, true)?.into_result()?;
    ensure!(r.report.pools.first().is_some_and(|p| p.pages == 64), "the first run did not use its 64 pages");
    let mut second = opts(o, Some(Workload::Pools), &[]);
    second.pages = Some(b);
    let out = boot(&second, true)?;
    let banner = out.lines.iter().find(|l| l.starts_with("ramdisk: ")).cloned().unwrap_or_default();
    let r = out.into_result()?;
    ensure!(banner.starts_with("ramdisk: 32 pages") && banner.ends_with("checksum ok"), "banner: {banner:?}");
    ensure!(
        r.report.pools.first().is_some_and(|p| p.pages == 32),
        "the second run did not use the older file's 32 pages"
    );
    Ok(format!("the older file's pages were used: {banner}"))
}

fn wrong_pages(o: &TestOpts) -> Result<String> {
    let (a, _) = two_page_files()?;
    // The option after xtask's own `ramdisk_fnv` wins: the kernel is told to expect other pages.
    let mut r = opts(o, Some(Workload::Pools), &["ramdisk_fnv=0123456789abcdef"]);
    r.pages = Some(a);
    must_fail(boot(&r, true)?, "not the page file given")
}

/// The kernel's allocator table (the pools workload on real frames through kmap) against the host's
/// `pool-table` on the same objects: the same algorithms on the same sizes must give the same counts.
fn pool_table_matches_host(o: &TestOpts) -> Result<String> {
    let cached = POOLS_REPORT.lock().expect("no panics hold it").take();
    let report = match cached {
        Some(r) => r,
        None => boot(&opts(o, Some(Workload::Pools), &[]), true)?.into_result()?.report,
    };
    ensure!(!report.pool_table.is_empty(), "the kernel's report has no pool table");
    let meta = cargo::metadata()?;
    let out = cargo::target_dir(&meta).join("zkernel").join("runchecks").join("pool-table");
    let status = cargo::cargo()
        .args(["run", "--quiet", "--package", "zkernel-bench", "--bin", "pool-table", "--", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .context("running the host's pool-table")?;
    ensure!(status.success(), "the host's pool-table failed");
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("pools.json")).with_context(|| format!("reading {}", out.display()))?,
    )
    .context("parsing the host's pools.json")?;
    let rows = json["rows"].as_array().context("pools.json has no rows")?;
    let mut compared = 0;
    for k in &report.pool_table {
        let host = rows
            .iter()
            .find(|h| h["workload"] == k.workload.as_str() && h["pool"] == k.pool.as_str())
            .with_context(|| format!("the host has no row for {} / {}", k.workload, k.pool))?;
        let field = |name: &str| host[name].as_u64().unwrap_or(u64::MAX);
        let pairs = [
            ("stored", k.stored, field("stored")),
            ("refused", k.refused, field("refused")),
            ("pool_pages", k.pool_pages, field("pool_pages")),
            ("reserve_pages", k.reserve_pages, field("reserve_pages")),
            ("object_bytes", k.object_bytes, field("stored_bytes")),
            ("metadata_bytes", k.metadata_bytes, field("metadata_bytes")),
        ];
        for (name, kernel, host) in pairs {
            ensure!(
                kernel == host,
                "{} / {}: {name} is {kernel} in the kernel, {host} on the host",
                k.workload,
                k.pool
            );
        }
        compared += 1;
    }
    Ok(format!("{compared} rows (workload × pool) equal on the host and in the kernel"))
}

/// `cargo xtask screenshot` on a swap run: the PNG decodes, has the framebuffer's size, and its map
/// shows more than [`crate::screenshot::MIN_OWNER_COLOURS`] owner colours, the pool's and the
/// workload's among them (a picture that draws no pool frame, or draws nothing, fails).
fn screenshot_swap(o: &TestOpts) -> Result<String> {
    let target = cargo::target_dir(&cargo::metadata()?);
    let out = target.join("zkernel").join("runcheck-screenshot.png");
    let shot_opts = crate::screenshot::ScreenshotOpts {
        run: opts(o, Some(Workload::Swap), &["swap_mem=256", "swap_accesses=2048"]),
        at: None,
        out: Some(out),
    };
    let shot = crate::screenshot::take(&shot_opts, false)?;
    ensure!(
        (shot.width, shot.height) == shot.announced,
        "the PNG is {}x{}, the kernel drew on {}x{}",
        shot.width,
        shot.height,
        shot.announced.0,
        shot.announced.1
    );
    if !o.uefi {
        ensure!(shot.announced == (1280, 720), "BIOS framebuffer {:?}, not the 1280x720 VBE mode", shot.announced);
    }
    ensure!(
        shot.owners.len() > crate::screenshot::MIN_OWNER_COLOURS,
        "{} owner colours in the map, want more than {}: {}",
        shot.owners.len(),
        crate::screenshot::MIN_OWNER_COLOURS,
        shot.describe()
    );
    for must in [mempic::Category::Zsmalloc, mempic::Category::Workload] {
        ensure!(shot.owners.contains_key(&must), "no {} frame in the map: {}", must.name(), shot.describe());
    }
    Ok(shot.describe())
}

/// `cargo xtask report` on a swap run of the real pages: report.md with the summary and one row per run,
/// and at least three PNG plots that decode.
fn report_swap(o: &TestOpts) -> Result<String> {
    let target = cargo::target_dir(&cargo::metadata()?);
    let dir = target.join("zkernel").join("runcheck-report");
    let _ = std::fs::remove_dir_all(&dir);
    let report_opts = crate::report::ReportOpts {
        run: opts(o, Some(Workload::Swap), &["swap_mem=256", "swap_accesses=2048"]),
        from: None,
        dir: Some(dir.clone()),
    };
    let w = crate::report::make(&report_opts, false)?;
    let md = std::fs::read_to_string(&w.markdown).with_context(|| format!("reading {}", w.markdown.display()))?;
    for want in ["## Summary", "| disk |", "| tmem-zsmalloc |", "| zram-zsmalloc |", "failed: nothing"] {
        ensure!(md.contains(want), "{} lacks {want:?}", w.markdown.display());
    }
    ensure!(w.plots.len() >= 3, "{} plots, want at least 3", w.plots.len());
    let mut sizes = Vec::new();
    for p in &w.plots {
        let (pw, ph) = crate::report::png_size(p)?;
        ensure!(
            md.contains(&format!("]({})", p.file_name().and_then(|f| f.to_str()).unwrap_or("?"))),
            "report.md does not show {}",
            p.display()
        );
        sizes.push(format!("{} {pw}x{ph}", p.file_name().and_then(|f| f.to_str()).unwrap_or("?")));
    }
    Ok(format!("{} and {} plots that decode: {}", w.markdown.display(), w.plots.len(), sizes.join(", ")))
}
