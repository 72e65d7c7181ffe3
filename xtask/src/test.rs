//! `cargo xtask test`: host unit tests, then every test kernel, the harness checks, the run checks,
//! and last the docs' Try-it blocks.
//!
//! Output: one line per host package, per test kernel (with its case lines indented below it), per
//! harness check, per run check and per Try-it block (`docs.rs`), then exactly `N passed, M failed`
//! (`, K skipped` when a filter left some out). Host packages count their individual tests; a test
//! kernel, a check or a Try-it block counts one.
//!
//! A *harness check* (tests/Cargo.toml, `harness-checks`) is a kernel that must fail in a stated way —
//! write the failure code, hang, or never write an exit code. It passes when the harness gives exactly
//! that verdict, so every run proves the harness cannot be fooled into a pass. Named by `--filter`
//! alone, it runs as an ordinary test kernel and shows its failure.

use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use boot::{Firmware, QemuConfig};
use cargo_metadata::Metadata;

use crate::verdict::{self, Failure, Observed};
use crate::{TestOpts, cargo, files, make_image, pages, qemu};

pub const TESTS_PACKAGE: &str = "zkernel-tests";
/// Seconds added to a per-kernel timeout under UEFI, for OVMF's own start-up.
const UEFI_ALLOWANCE_SECS: u64 = 10;

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: usize,
}

fn line(kind: &str, name: &str, result: &str) {
    let label = format!("{kind} {name} ");
    println!("{label:.<44} {result}");
}

pub fn test(o: &TestOpts) -> Result<ExitCode> {
    let started = Instant::now();
    let meta = cargo::metadata()?;
    let matches = |name: &str| o.filter.as_deref().is_none_or(|f| name.contains(f));
    let mut t = Tally::default();

    // 1. Host unit tests of the portable crates, xtask and boot.
    let host = cargo::host_packages(&meta);
    let selected: Vec<&String> = host.iter().filter(|p| matches(p)).collect();
    t.skipped += host.len() - selected.len();
    if !selected.is_empty() {
        host_tests(&selected, &mut t)?;
    }

    // 2. Test kernels and harness checks.
    let table = cargo::kernel_table(&meta, TESTS_PACKAGE)?;
    let kernels: Vec<String> = test_kernels(&meta)?.into_iter().filter(|k| !table.benches.contains(k)).collect();
    let (checks, timeouts, ramdisks) = (&table.harness_checks, &table.timeouts, &table.ramdisks);
    let wanted: Vec<&String> = kernels.iter().filter(|k| matches(k)).collect();
    t.skipped += kernels.len() - wanted.len();
    if !wanted.is_empty() {
        let fw = if o.uefi { Firmware::Uefi } else { Firmware::Bios };
        let ovmf = qemu::ensure_prerequisites(o.uefi)?;
        let bins = cargo::build_kernel_bins(TESTS_PACKAGE, o.release, true, &[])?;
        let target = cargo::target_dir(&meta);
        // One read-only file disk for all the kernels of this run.
        let files = files::prepare(&target, None)?;
        let (plain, as_checks): (Vec<&String>, Vec<&String>) =
            // A harness check runs as a plain (failing) kernel only when the filter names it exactly.
            wanted.into_iter().partition(|k| !checks.contains_key(*k) || o.filter.as_deref() == Some(k.as_str()));
        // Images and command lines first, then the runs, `jobs` QEMUs at a time.
        let mut queue = Vec::new();
        for (name, expect) in plain.iter().map(|k| (*k, None)).chain(as_checks.iter().map(|k| (*k, checks.get(*k)))) {
            let elf = bins.get(name.as_str()).with_context(|| format!("cargo built no test kernel `{name}`"))?;
            let pages = match ramdisks.get(name.as_str()) {
                Some(file) => {
                    Some(pages::prepare(&cargo::workspace_root().join(file), &target.join("zkernel").join("data"))?)
                }
                None => None,
            };
            let image = make_image(&target, name, elf, o.release, fw, pages.as_ref())?;
            let mut config = QemuConfig::new(image, fw);
            config.kernel_options.extend(pages.as_ref().map(pages::PageFile::option));
            config.disks.push(qemu::swap_disk(&target, name, qemu::SWAP_MIB)?);
            config.disks.push(files.disk());
            config.ovmf = ovmf.clone();
            config.kvm = o.kvm;
            // tests/Cargo.toml pins a kernel's CPU count (smp_boot_1 …); otherwise --smp, else the default.
            if let Some(n) = table.smp.get(name.as_str()).copied().or(o.smp) {
                config.smp = n;
            }
            config.tcg_multi_thread = table.multi_threaded_tcg.contains(name);
            // tests/Cargo.toml's timeouts count from QEMU's start; under UEFI, OVMF adds ~5 s before the kernel.
            let firmware_allowance = if o.uefi { UEFI_ALLOWANCE_SECS } else { 0 };
            let secs = timeouts.get(name.as_str()).map_or(o.timeout, |t| (t + firmware_allowance).min(o.timeout));
            queue.push((name, expect, config.args().map_err(anyhow::Error::msg)?, secs));
        }
        let runs = run_parallel(&queue, o.jobs.max(1), |(_, _, args, secs)| {
            qemu::run(args, Duration::from_secs(*secs), |_| {})
        });
        for ((name, expect, _, secs), run) in queue.iter().zip(runs) {
            let (name, expect, secs) = (*name, *expect, *secs);
            let run = match run {
                Ok(run) => run,
                Err(e) => {
                    line(if expect.is_some() { "check" } else { "kernel" }, name, &format!("FAILED: {e:#}"));
                    t.failed += 1;
                    continue;
                }
            };
            let cases: Vec<(String, bool)> = run
                .lines
                .iter()
                .filter_map(|l| verdict::parse_case_line(l).map(|(n, ok)| (n.to_string(), ok)))
                .collect();
            let announced = run.lines.iter().find_map(|l| {
                let rest = l.strip_prefix(&format!("test kernel {name}: "))?;
                rest.strip_suffix(" case(s)")?.parse().ok()
            });
            let observed = Observed {
                cases_expected: announced,
                status: run.status,
                timed_out: run.timed_out,
                timeout_secs: secs,
                cases_ok: cases.iter().filter(|c| c.1).count(),
                cases_failed: cases.iter().filter(|c| !c.1).count(),
            };
            let v = verdict::classify(&observed);
            let took = format!("{:.1} s", run.elapsed.as_secs_f64());
            match expect {
                None => {
                    match &v {
                        Ok(()) => line("kernel", name, &format!("ok ({took})")),
                        Err(why) => line("kernel", name, &format!("FAILED: {why} ({took})")),
                    }
                    for (case, ok) in &cases {
                        println!("    case {case} ... {}", if *ok { "ok" } else { "FAILED" });
                    }
                    tally(&mut t, v.is_ok());
                    if o.show_output {
                        show_output(&run, usize::MAX);
                    } else if v.is_err() {
                        show_output(&run, 40);
                    }
                }
                Some(expected) => {
                    let got = v.as_ref().err().map(Failure::key).unwrap_or("pass");
                    // The kernel must have started, so the failure is its own and not the firmware's.
                    let started = run.lines.iter().any(|l| l.starts_with(&format!("test kernel {name}:")));
                    let ok = got == expected && started;
                    let seen = match &v {
                        Ok(()) => "passed".to_string(),
                        Err(why) if started => why.to_string(),
                        Err(why) => format!("{why}, before the kernel printed anything"),
                    };
                    let verdict = if ok { "ok" } else { "FAILED" };
                    line("check", name, &format!("{verdict}: must fail as {expected}, reported: {seen} ({took})"));
                    tally(&mut t, ok);
                    if !ok {
                        show_output(&run, 40);
                    }
                }
            }
        }
    }

    // 3. Run checks: the demo kernel booted as `cargo xtask run` boots it (runchecks.rs).
    for check in crate::runchecks::checks() {
        if !matches(check.name) {
            t.skipped += 1;
            continue;
        }
        let start = Instant::now();
        let r = check.run(o);
        let took = format!("{:.1} s", start.elapsed().as_secs_f64());
        let ok = r.is_ok();
        match r {
            Ok(detail) => line("check", check.name, &format!("ok: {detail} ({took})")),
            Err(e) => line("check", check.name, &format!("FAILED: {e:#} ({took})")),
        }
        tally(&mut t, ok);
    }

    // 4. The docs check: every Try-it block of README.md and docs/*.md (docs.rs).
    docs_check(&matches, &mut t)?;

    println!("(took {:.1} s)", started.elapsed().as_secs_f64());
    let skipped = if t.skipped > 0 { format!(", {} skipped", t.skipped) } else { String::new() };
    println!("{} passed, {} failed{skipped}", t.passed, t.failed);
    Ok(if t.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Run each distinct Try-it command once, one at a time, and judge every block that names it.
/// Each block counts one test, named `docs/FILE.md:LINE`. Inside a Try-it command (a nested
/// `cargo xtask test`) the check is skipped, so it cannot run itself.
fn docs_check(matches: &dyn Fn(&str) -> bool, t: &mut Tally) -> Result<()> {
    let blocks = crate::docs::collect(&cargo::workspace_root())?;
    let nested = std::env::var_os(crate::docs::NESTED_ENV).is_some();
    let wanted: Vec<&crate::docs::TryIt> = blocks.iter().filter(|b| !nested && matches(&b.name())).collect();
    t.skipped += blocks.len() - wanted.len();
    if wanted.is_empty() {
        return Ok(());
    }
    let start = Instant::now();
    let mut commands: Vec<&str> = Vec::new();
    for b in &wanted {
        if !commands.contains(&b.command.as_str()) {
            commands.push(&b.command);
        }
    }
    let root = cargo::workspace_root();
    for command in &commands {
        let run = crate::docs::run_command(&root, command);
        let took = match &run {
            Ok(r) => format!("{:.1} s", r.elapsed.as_secs_f64()),
            Err(_) => String::new(),
        };
        for (i, b) in wanted.iter().filter(|b| b.command == *command).enumerate() {
            let verdict = match &run {
                Ok(r) => crate::docs::judge(b, r),
                Err(e) => Err(format!("{}: `{command}` could not run: {e:#}", b.name())),
            };
            // The time is the command's, shown on the first block that ran it.
            let shown = if i == 0 { format!("`{command}` ({took})") } else { "same command".to_string() };
            match &verdict {
                Ok(()) => line("docs", &b.name(), &format!("ok: {} lines, {shown}", b.expect.len())),
                Err(why) => line("docs", &b.name(), &format!("FAILED: {why}")),
            }
            tally(t, verdict.is_ok());
        }
    }
    println!(
        "docs: {} Try-it blocks, {} distinct commands, {:.1} s",
        wanted.len(),
        commands.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Run `f` on every item with `jobs` worker threads; results come back in the items' order.
fn run_parallel<T: Sync, R: Send>(items: &[T], jobs: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<R>>> = std::sync::Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(items.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    results.lock().expect("no worker panics")[i] = Some(r);
                }
            });
        }
    });
    results.into_inner().expect("no worker panics").into_iter().map(|r| r.expect("every item ran")).collect()
}

fn tally(t: &mut Tally, ok: bool) {
    if ok {
        t.passed += 1;
    } else {
        t.failed += 1;
    }
}

/// Print the last `last` serial lines of a run (all of them with `usize::MAX`) and QEMU's stderr.
fn show_output(run: &qemu::Run, last: usize) {
    if last >= run.lines.len() {
        println!("    --- serial output ---");
    } else {
        println!("    --- serial output (last {last} lines) ---");
    }
    for l in run.lines.iter().skip(run.lines.len().saturating_sub(last)) {
        println!("    | {l}");
    }
    if !run.stderr.trim().is_empty() {
        println!("    --- QEMU stderr ---");
        for l in run.stderr.lines() {
            println!("    | {l}");
        }
    }
}

/// Build the host packages' tests once, then run each package and count its tests.
fn host_tests(packages: &[&String], t: &mut Tally) -> Result<()> {
    let pkg_args: Vec<String> = packages.iter().flat_map(|p| ["--package".to_string(), p.to_string()]).collect();
    let build = cargo::cargo().arg("test").arg("--no-run").args(&pkg_args).stdout(Stdio::null()).output();
    let build = build.context("running cargo test --no-run")?;
    if !build.status.success() {
        print!("{}", String::from_utf8_lossy(&build.stderr));
        line("host", "build", "FAILED: the host tests do not compile");
        t.failed += 1;
        return Ok(());
    }
    for p in packages {
        let out = cargo::cargo()
            .args(["test", "--package", p])
            .output()
            .with_context(|| format!("running cargo test --package {p}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let (mut passed, mut failed) = (0, 0);
        for l in stdout.lines().filter_map(|l| l.strip_prefix("test result: ")) {
            passed += count(l, " passed");
            failed += count(l, " failed");
        }
        if !out.status.success() && failed == 0 {
            failed = 1; // it failed without a parsable result (a crash, a doctest that did not build)
        }
        t.passed += passed;
        t.failed += failed;
        if failed == 0 {
            line("host", p, &format!("ok ({passed} tests)"));
        } else {
            line("host", p, &format!("FAILED ({failed} of {} tests)", passed + failed));
            print!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        }
    }
    Ok(())
}

/// The number before `what` in a libtest summary such as `ok. 8 passed; 0 failed; 0 ignored`.
fn count(summary: &str, what: &str) -> usize {
    summary
        .split(';')
        .find_map(|part| {
            part.trim().trim_start_matches("ok. ").trim_start_matches("FAILED. ").strip_suffix(what.trim_start())
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// The test kernels: the `[[bin]]` targets of `tests/Cargo.toml`. Every `tests/*.rs` must be one,
/// so a new scenario file can never be silently left out.
fn test_kernels(meta: &Metadata) -> Result<Vec<String>> {
    let pkg =
        cargo::package(meta, TESTS_PACKAGE).ok_or_else(|| anyhow!("no {TESTS_PACKAGE} package in the workspace"))?;
    let bins: Vec<_> = pkg.targets.iter().filter(|t| t.is_bin()).collect();
    let dir = cargo::workspace_root().join("tests");
    let entries = std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "rs") && !bins.iter().any(|t| t.src_path == path) {
            bail!("{} is not listed as a [[bin]] in tests/Cargo.toml", path.display());
        }
    }
    let mut names: Vec<String> = bins.iter().map(|t| t.name.clone()).collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn libtest_summaries_are_counted() {
        let s = "ok. 8 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s";
        assert_eq!((count(s, " passed"), count(s, " failed")), (8, 0));
        let s = "FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s";
        assert_eq!((count(s, " passed"), count(s, " failed")), (3, 2));
    }
}
