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
//! | `run_shell_script` | `--script tests/scripts/shell-tour.txt`: every shell command, a bad command and a bad argument, through QEMU's stdin and COM1 | every answer has its command's shape and figures that agree (steps add up across commands, `stats` reads back), the two bad lines each get one `error:` line, the shell runs on to `exit` and the run passes |
//! | `run_trace_page` | `--script tests/scripts/trace-page.txt`, `swap_cache=exclusive`, small workloads | page 16's trace in order: clock victim, swap_out, frontswap_store, compress, tmem_put, zs_malloc spanning two frames, kmap of the page and of both object frames in adjacent slots, frame freed; then fault, frontswap_load, tmem_get, zs_map_object, kmaps, decompress, mapped, zs_free; and a cleancache put and exclusive get of inode 0, the values agreeing from step to step |
//! | `run_screenshot_swap` | `cargo xtask screenshot` on a swap run (`swap_mem=256 swap_accesses=2048`) | a PNG that decodes, of the framebuffer's size, with more than `screenshot::MIN_OWNER_COLOURS` owner colours in the map, zsmalloc's and the workload's among them |
//! | `run_report_swap` | `cargo xtask report` on a swap run of the real pages (`swap_mem=256 swap_accesses=2048`) | report.md with the summary and a row per run, and at least 3 PNG plots that decode |
//! | `run_image_names_no_local_path` | the demo kernel's build, not booted | the ELF (which the bootloader loads whole) holds none of this machine's prefixes: the toolchain's sources, cargo's home, the workspace (`cargo::path_prefixes`), so its size and the frames left to manage are the same on every machine |
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
        RunCheck { name: "run_shell_script", check: shell_script },
        RunCheck { name: "run_trace_page", check: trace_page },
        RunCheck { name: "run_screenshot_swap", check: screenshot_swap },
        RunCheck { name: "run_report_swap", check: report_swap },
        RunCheck { name: "run_image_names_no_local_path", check: image_names_no_local_path },
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
        shell: false,
        script: None,
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
        Workload::Shell => r.swap.is_some() || r.files.is_some(),
    };
    ensure!(member, "the report has no {w:?} member");
    Ok(format!("report read back into zstats::Report, {w:?} member present"))
}

fn image_names_no_local_path(o: &TestOpts) -> Result<String> {
    let prepared = prepare_run(&opts(o, None, &[]), false, true, "runcheck")?;
    let elf = std::fs::read(&prepared.elf).with_context(|| format!("reading {}", prepared.elf.display()))?;
    let prefixes = cargo::path_prefixes()?;
    for p in &prefixes {
        let local = p.local.to_string_lossy();
        if let Some(at) = elf.windows(local.len()).position(|w| w == local.as_bytes()) {
            bail!(
                "{} names `{local}` at byte {at}: the image's size would depend on where this machine keeps it \
                 (it should read `{}`)",
                prepared.elf.display(),
                p.image
            );
        }
    }
    let names: Vec<String> = prefixes.iter().map(|p| p.local.display().to_string()).collect();
    Ok(format!("{} bytes, none of {}", elf.len(), names.join(", ")))
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

/// The lesson `run_shell_script` replays, from the workspace root.
pub const SHELL_TOUR: &str = "tests/scripts/shell-tour.txt";

/// One command of a shell transcript and the lines it answered with.
#[derive(Debug)]
struct Answer {
    command: String,
    lines: Vec<String>,
}

/// Split a shell run's serial output into commands (`zk> CMD`, as the shell echoes what it read) and
/// their answers; what follows `exit` is the run's end and belongs to no command.
fn transcript(lines: &[String]) -> Vec<Answer> {
    let mut out: Vec<Answer> = Vec::new();
    let mut open = false;
    for line in lines {
        if let Some(cmd) = line.strip_prefix(crate::SHELL_PROMPT) {
            out.push(Answer { command: cmd.trim().to_string(), lines: Vec::new() });
            open = cmd.trim() != "exit";
        } else if open && let Some(a) = out.last_mut() {
            // The file disk's mount logs a line on the first `files`, and the memory picture notes its
            // redraws during `swap`; they are the kernel's, not the shell's.
            if !line.starts_with("[INFO ") && !line.starts_with("picture: ") {
                a.lines.push(line.clone());
            }
        }
    }
    out
}

/// The first number after `prefix` in `line`.
fn number_after(line: &str, prefix: &str) -> Option<u64> {
    let rest = &line[line.find(prefix)? + prefix.len()..];
    rest.trim_start().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// Every answer of the tour has the shape its command promises, with figures that agree with each other
/// and with the final report.
fn check_tour(answers: &[Answer], report: &zstats::Report) -> Result<()> {
    let names: Vec<&str> = answers.iter().map(|a| a.command.split(' ').next().unwrap_or("")).collect();
    for c in shell::COMMANDS {
        ensure!(names.contains(&c.name), "the lesson never runs `{}`", c.name);
    }
    ensure!(answers.last().is_some_and(|a| a.command == "exit"), "the shell did not read `exit` last");
    let mut swap_total = 0;
    let mut file_total = 0;
    let mut pools_seen_with_zsmalloc = false;
    for a in answers {
        let l = &a.lines;
        let has = |p: &str| l.iter().any(|x| x.starts_with(p));
        let what = || format!("`{}` answered {:?}", a.command, l);
        let mut words = a.command.split(' ');
        match (words.next().unwrap_or(""), words.next()) {
            ("help", None) => {
                ensure!(l.first().is_some_and(|x| x == "commands:"), "{}", what());
                for c in shell::COMMANDS {
                    ensure!(l.iter().any(|x| x.starts_with(&format!("  {}", c.name))), "help lacks {}", c.name);
                }
                ensure!(l.len() == 1 + shell::COMMANDS.len(), "{}", what());
            }
            ("mem", None) => {
                ensure!(l.len() == 3 && has("mem: ") && has("mem: free blocks by order: 0:"), "{}", what());
                let owners = l.iter().find(|x| x.starts_with("mem: frames by owner: "));
                ensure!(
                    l[1].contains(" 10:") && owners.is_some_and(|x| x.contains("heap ") && x.contains("stack ")),
                    "{}",
                    what()
                );
            }
            ("cpus", None) => ensure!(has("cpus: 4 up of 4") && has("cpus: ") && l.len() >= 3, "{}", what()),
            ("tmem", None) => {
                ensure!(has("tmem: ") && l.iter().any(|x| x.starts_with("tmem: puts ")), "{}", what());
                let pools = number_after(&l[0], "tmem:").context("no pool count")?;
                ensure!(l.iter().filter(|x| x.starts_with("  pool ")).count() as u64 == pools, "{}", what());
            }
            ("pools", None) => {
                if has("pool 0 (persistent, zsmalloc)") {
                    pools_seen_with_zsmalloc = true;
                    ensure!(has("  zsmalloc: ") && has("  class  size"), "{}", what());
                    ensure!(
                        l.iter()
                            .filter(|x| x.starts_with("  ") && x.trim_start().starts_with(char::is_numeric))
                            .count()
                            > 0,
                        "{}",
                        what()
                    );
                } else {
                    ensure!(l == &["pools: tmem holds no pool yet (`swap N` and `files N` create them)"], "{}", what());
                }
            }
            ("swap", Some(n)) if n.bytes().all(|b| b.is_ascii_digit()) => {
                let n: u64 = n.parse()?;
                swap_total += n;
                let line = l.first().context("swap printed nothing")?;
                ensure!(line.starts_with(&format!("swap: {n} accesses made, {swap_total} of ")), "{}", what());
                ensure!(line.ends_with("mismatches 0"), "{}", what());
            }
            ("files", Some(n)) => {
                let n: u64 = n.parse()?;
                file_total += n;
                ensure!(
                    l.first().is_some_and(|x| x.starts_with(&format!("files: {n} operations made, {file_total} of "))),
                    "{}",
                    what()
                );
                ensure!(has("files: cleancache puts "), "{}", what());
            }
            ("compact", None) => {
                let line = l.first().context("compact printed nothing")?;
                let freed = number_after(line, "compact:").context("no frames freed")?;
                let (before, after) = line
                    .split_once("pool frames ")
                    .and_then(|(_, r)| r.split_once(" -> "))
                    .context("no pool frames")?;
                ensure!(before.parse::<u64>()? - after.parse::<u64>()? == freed, "{}", what());
            }
            ("trace", Some("page")) => {
                ensure!(l.first().is_some_and(|x| x.starts_with("trace: on: swap page 5")), "{}", what())
            }
            ("trace", Some("off")) => ensure!(l == &["trace: off"], "{}", what()),
            ("stats", None) => {
                ensure!(l.len() == 1 && l[0].starts_with(zstats::PREFIX), "{}", what());
                let live = zstats::from_line(&l[0]).map_err(|e| anyhow::anyhow!("stats does not read back: {e}"))?;
                let swap = live.swap.as_ref().and_then(|s| s.runs.first()).context("stats has no swap run")?;
                ensure!(swap.accesses == swap_total, "stats: {} accesses, the shell made {swap_total}", swap.accesses);
                ensure!(live.files.as_ref().is_some_and(|f| f.runs.len() == 1), "stats has no file run");
            }
            ("frobnicate", None) => {
                ensure!(l == &["error: unknown command `frobnicate` (`help` lists the commands)"], "{}", what())
            }
            ("swap", Some("many")) => {
                ensure!(l == &["error: `swap many`: the argument must be a number from 1 to 100000"], "{}", what())
            }
            ("exit", None) => {}
            _ => bail!("the lesson has a command this check does not know: `{}`", a.command),
        }
    }
    ensure!(pools_seen_with_zsmalloc, "`pools` never showed frontswap's zsmalloc pool");
    let swap = report.swap.as_ref().and_then(|s| s.runs.first()).context("the final report has no swap run")?;
    ensure!(
        swap.accesses == swap_total && swap.mismatches == 0,
        "final swap run: {} accesses, {} mismatches",
        swap.accesses,
        swap.mismatches
    );
    let files = report.files.as_ref().and_then(|f| f.runs.first()).context("the final report has no file run")?;
    ensure!(files.mismatches == 0 && files.stale_hits == 0, "final file run: {files:?}");
    Ok(())
}

/// `cargo xtask run --script tests/scripts/shell-tour.txt`: the lesson's lines go in through QEMU's
/// stdin and the guest's COM1, one per prompt; every command must answer with its shape, the bad
/// command and the bad argument with one `error:` line each, and the shell must run on to `exit` and a
/// passing report.
fn shell_script(o: &TestOpts) -> Result<String> {
    let mut r = opts(o, None, &["swap_mem=64", "swap_accesses=768", "files_cache=32", "files_ops=40"]);
    r.script = Some(cargo::workspace_root().join(SHELL_TOUR));
    let outcome = boot(&r, true)?;
    let answers = transcript(&outcome.lines);
    let passed = outcome.into_result()?;
    ensure!(passed.report.failures.is_empty(), "the report lists failures: {:?}", passed.report.failures);
    check_tour(&answers, &passed.report)?;
    Ok(format!("{} commands answered as they must, the two bad ones with an error; the run passed", answers.len()))
}

/// The lesson `run_trace_page` replays, and the options it needs (see the script's header).
pub const TRACE_SCRIPT: &str = "tests/scripts/trace-page.txt";
const TRACE_OPTIONS: &[&str] =
    &["swap_mem=64", "swap_accesses=768", "swap_cache=exclusive", "files_cache=32", "files_ops=40"];
/// The page the script follows: with those options its first store is an object spanning two frames.
const TRACED_PAGE: u64 = 16;

/// Every number in `s`, decimal or `0x` hex, in order.
fn numbers(s: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for w in s.split(|c: char| !c.is_ascii_alphanumeric()) {
        if let Some(h) = w.strip_prefix("0x") {
            if let Ok(n) = u64::from_str_radix(h, 16) {
                out.push(n);
            }
        } else if !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()) {
            out.push(w.parse().unwrap_or(u64::MAX));
        }
    }
    out
}

/// Walks trace lines in order: each step must come after the one before.
struct Steps<'a> {
    lines: &'a [&'a str],
    at: usize,
}

impl<'a> Steps<'a> {
    /// The next line from here that starts with `prefix` and satisfies `ok`; the walk moves past it.
    fn next(&mut self, what: &str, prefix: &str, ok: impl Fn(&str) -> bool) -> Result<&'a str> {
        let from = self.at;
        match self.lines[from..].iter().position(|l| l.starts_with(prefix) && ok(l)) {
            Some(i) => {
                self.at = from + i + 1;
                Ok(self.lines[from + i])
            }
            None => bail!("trace step `{what}` ({prefix}…) missing after line {from} of the trace"),
        }
    }
}

/// The journey of the traced page out to zsmalloc (an object spanning two frames) and back, in order,
/// with the values agreeing from step to step.
fn check_swap_journey(trace: &[&str]) -> Result<String> {
    let page = format!("trace: page {TRACED_PAGE}: ");
    // The first swap-out whose store spans two frames.
    let starts: Vec<usize> = (0..trace.len()).filter(|&i| trace[i].starts_with(&format!("{page}swap_out:"))).collect();
    let start = starts
        .iter()
        .copied()
        .find(|&i| {
            trace[i..]
                .iter()
                .skip(1)
                .take_while(|l| !l.starts_with(&format!("{page}swap_out:")))
                .any(|l| l.starts_with("trace:   zs_malloc(") && l.contains("spans two frames"))
        })
        .context("no swap-out of the traced page stored an object spanning two frames")?;
    ensure!(
        start > 0 && trace[start - 1].starts_with(&format!("{page}clock victim")),
        "no clock victim line before the swap-out"
    );
    let mut s = Steps { lines: trace, at: start };
    let out = s.next("swap_out", &format!("{page}swap_out: frame pfn "), |_| true)?;
    let n = numbers(out);
    let (frame, offset) = (n[1], n[3]);
    ensure!(out.contains("swap entry (type 0, offset"), "{out}");
    s.next("frontswap_store", &format!("trace: frontswap_store(type 0, offset {offset})"), |_| true)?;
    let len = numbers(s.next("compress", "trace:   compress: lz4 4096 -> ", |_| true)?)[1];
    let put = s.next("tmem put", "trace: tmem_put(pool ", |l| l.ends_with("persistent pool over zsmalloc"))?;
    let key = numbers(put)[..3].to_vec();
    let malloc = s.next("zs_malloc", &format!("trace:   zs_malloc({len} bytes): class size "), |l| {
        l.contains("spans two frames")
    })?;
    let m = numbers(malloc);
    let (a, b) = (m[m.len() - 2], m[m.len() - 1]);
    s.next("kmap of the page's frame", "trace:   kmap slot ", |l| {
        l.ends_with(&format!("-> pfn {frame:#x} (the page's frame)"))
    })?;
    let first = s.next("kmap of the object's first frame", "trace:   kmap slot ", |l| {
        l.ends_with(&format!("-> pfn {a:#x} (the object)"))
    })?;
    let second = s.next("kmap of the object's second frame", "trace:   kmap slot ", |l| {
        l.ends_with(&format!("-> pfn {b:#x} (the object)"))
    })?;
    ensure!(
        numbers(second)[0] == numbers(first)[0] + 1,
        "the spanning object was not mapped in two adjacent slots: {first} / {second}"
    );
    s.next("frame freed", &format!("{page}frame pfn {frame:#x} freed"), |_| true)?;
    // Back in, in reverse.
    let fault = s.next(
        "fault",
        &format!("{page}fault: not present, PTE holds swap entry (type 0, offset {offset}); new frame pfn "),
        |_| true,
    )?;
    let new = *numbers(fault).last().context("no frame")?;
    s.next("frontswap_load", &format!("trace: frontswap_load(type 0, offset {offset}): hit"), |_| true)?;
    s.next("tmem get", &format!("trace: tmem_get(pool {}, oid {}, index {})", key[0], key[1], key[2]), |_| true)?;
    let map = s.next("zs_map_object", &format!("trace:   zs_map_object({len} bytes): class size "), |l| {
        l.contains("spans two frames")
    })?;
    let m = numbers(map);
    let (a2, b2) = (m[m.len() - 2], m[m.len() - 1]);
    s.next("kmap of the new frame", "trace:   kmap slot ", |l| {
        l.ends_with(&format!("-> pfn {new:#x} (the page's frame)"))
    })?;
    let first = s.next("kmap of the object's first frame", "trace:   kmap slot ", |l| {
        l.ends_with(&format!("-> pfn {a2:#x} (the object)"))
    })?;
    let second = s.next("kmap of the object's second frame", "trace:   kmap slot ", |l| {
        l.ends_with(&format!("-> pfn {b2:#x} (the object)"))
    })?;
    ensure!(numbers(second)[0] == numbers(first)[0] + 1, "the load did not map the object in two adjacent slots");
    s.next("decompress", &format!("trace:   decompress: {len} -> 4096 bytes"), |_| true)?;
    s.next("mapped", &format!("{page}mapped at frame pfn {new:#x}"), |_| true)?;
    s.next(
        "free",
        &format!("trace: frontswap_invalidate_page(pool {}, oid {}, index {}): zs_free: ", key[0], key[1], key[2]),
        |_| true,
    )?;
    Ok(format!("page {TRACED_PAGE}: out at offset {offset}, {len} bytes spanning pfn {a:#x}+{b:#x}, back in 18 steps"))
}

/// A cleancache page of the traced file put into tmem and got back (exclusively), in order.
fn check_cleancache_journey(trace: &[&str]) -> Result<String> {
    let mut s = Steps { lines: trace, at: 0 };
    let put = s.next("cleancache_put", "trace: cleancache_put(fs ", |l| l.contains(", inode 0, index "))?;
    let p = numbers(put);
    let (fs, index) = (p[0], p[2]);
    let len = numbers(s.next("compress", "trace:   compress: 4096 -> ", |_| true)?)[1];
    let tput = s.next("tmem put", "trace: tmem_put(pool ", |l| {
        l.contains(&format!(", oid 0, index {index}): ephemeral pool"))
    })?;
    let key = numbers(tput)[..3].to_vec();
    let zbud = s.next("zbud object", &format!("trace:   zbud: {len} bytes in the "), |_| true)?;
    let pfn = numbers(zbud)[1];
    s.next("kmap of the object", "trace:   kmap slot ", |l| l.ends_with(&format!("-> pfn {pfn:#x} (the object)")))?;
    s.next("cleancache_get", &format!("trace: cleancache_get(fs {fs}, inode 0, index {index}): hit"), |_| true)?;
    s.next("tmem get", &format!("trace: tmem_get(pool {}, oid {}, index {})", key[0], key[1], key[2]), |_| true)?;
    let zbud = s.next("zbud object", &format!("trace:   zbud: {len} bytes in the "), |_| true)?;
    let pfn = numbers(zbud)[1];
    s.next("kmap of the object", "trace:   kmap slot ", |l| l.ends_with(&format!("-> pfn {pfn:#x} (the object)")))?;
    s.next("decompress", &format!("trace:   decompress: {len} -> 4096 bytes"), |_| true)?;
    s.next(
        "free",
        &format!("trace: exclusive get: tmem_flush_page(pool {}, oid {}, index {}): zbud free", key[0], key[1], key[2]),
        |_| true,
    )?;
    Ok(format!("inode 0 index {index}: put ({len} bytes in zbud) and got back"))
}

/// `--script tests/scripts/trace-page.txt`: the trace of page 16 out to zsmalloc (spanning two frames)
/// and back, and of a cleancache page put and got, each step in its order with matching values.
fn trace_page(o: &TestOpts) -> Result<String> {
    let mut r = opts(o, None, TRACE_OPTIONS);
    r.script = Some(cargo::workspace_root().join(TRACE_SCRIPT));
    let outcome = boot(&r, true)?;
    let trace: Vec<&str> = outcome.lines.iter().map(String::as_str).filter(|l| l.starts_with("trace: ")).collect();
    let swap = check_swap_journey(&trace)?;
    let files = check_cleancache_journey(&trace)?;
    let passed = outcome.into_result()?;
    ensure!(passed.report.failures.is_empty(), "the report lists failures: {:?}", passed.report.failures);
    Ok(format!("{swap}; {files}"))
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
