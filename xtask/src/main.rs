//! `cargo xtask`: the one entry point to build, run, test and debug zkernel.
//!
//! | command | what it does |
//! |---|---|
//! | `build` | kernel ELF → BIOS or UEFI disk image under `target/zkernel/images/` |
//! | `run` | build, boot in QEMU (TCG, timeout), pass the serial console through, save the report |
//! | `test` | host unit tests, then every test kernel in `tests/`, judged by QEMU's exit status, the run checks, and the docs' Try-it blocks (`docs.rs`) |
//! | `bench` | criterion benchmarks on the host, then benchmark kernels built with kmap and with a direct map |
//! | `gdb` | boot stopped at the first instruction with the gdb stub, print the gdb command line |
//! | `capture` | dump the anonymous pages of a Linux process to a page file that `run --pages` replays |
//! | `fuzz` | the cargo-fuzz targets of `fuzz/` for a bounded time each; executions, coverage and crashes per target |
//! | `mutants` | cargo-mutants on the host crates of the issue, one crate or all; caught, missed, unviable and the score per crate |
//! | `soak` | a release kernel running swap, tmem and zram rounds with device and frame faults injected for `--minutes`; every page checked, lost pages exactly the injected ones |
//! | `drawings` | the book's drawings: `docs/drawings/*.dot` rendered to SVG with Graphviz; `--check` compares the committed SVGs with their sources |
//! | `screenshot` | boot a run (default `--workload swap`) and save the live memory picture as a PNG through QEMU's QMP `screendump` |
//! | `report` | a swap run on the real pages, then `target/zkernel/report.md` and four PNG plots of its time series |
//! | `lint` | the architecture check of `kernel/src` (`archcheck.rs`), then rustfmt check and clippy (host crates and kernel target), warnings are errors |
//!
//! See README.md for the options and `verdict.rs` for how a run is judged.

mod archcheck;
mod bench;
mod capture;
mod cargo;
mod docs;
mod drawings;
mod files;
mod fuzz;
mod mutants;
mod pages;
mod qemu;
mod report;
mod runchecks;
mod screenshot;
mod soak;
mod summary;
mod sweep;
mod test;
mod verdict;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use boot::{Firmware, QemuConfig};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, run, test and debug zkernel")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the kernel and its disk image.
    Build(BuildOpts),
    /// Build, boot in QEMU and show the demo and report.
    Run(RunOpts),
    /// Host unit tests, then every QEMU test kernel; ends with `N passed, M failed`.
    Test(TestOpts),
    /// Host benchmarks (criterion), then the benchmark kernels with kmap and with a direct map.
    Bench(bench::BenchOpts),
    /// Boot with the gdb stub, stopped before the first instruction.
    Gdb(RunOpts),
    /// Dump the anonymous pages of a Linux process (`--pid PID` or `-- CMD ARGS`) to a page file for
    /// `run --pages`.
    Capture(capture::CaptureOpts),
    /// The architecture check of kernel/src, then rustfmt --check and clippy on host crates and the
    /// kernel target.
    Lint(LintOpts),
    /// Run the cargo-fuzz targets of fuzz/ (one, or all in turn) for `--time` seconds each; fails on a
    /// crash and names the saved input.
    Fuzz(fuzz::FuzzOpts),
    /// Boot a run (default `--workload swap`) and save the kernel's memory picture as a PNG through QEMU's
    /// monitor: at the middle of the first run with a pool, or `--at SECS` after QEMU started.
    Screenshot(screenshot::ScreenshotOpts),
    /// Boot a swap run on the repository's real pages (or read `--from report.json`) and write
    /// target/zkernel/report.md with four PNG plots of the run over time.
    Report(report::ReportOpts),
    /// cargo-mutants on frame, zbud, zsmalloc, tmem, zstore, zpool, compress, swap (or one of them); prints
    /// caught, missed, unviable and the score per crate and fails if a mutant was missed.
    Mutants(mutants::MutantsOpts),
    /// A release kernel running swap, tmem and zram rounds with device and frame faults injected for
    /// `--minutes` (default 30); fails on a mismatch or a page lost that was not injected.
    Soak(soak::SoakOpts),
    /// Render the book's drawings (docs/drawings/*.dot → .svg) with Graphviz, or `--check` that the
    /// committed SVGs match their sources (no Graphviz needed).
    Drawings(drawings::DrawingsOpts),
}

#[derive(Args, Clone, Debug)]
struct LintOpts {
    /// Run only the architecture check (which kernel module may use which).
    #[arg(long)]
    arch_only: bool,
    /// Print the architecture table (xtask/src/archcheck.rs) and stop.
    #[arg(long, conflicts_with = "arch_only")]
    arch_table: bool,
}

#[derive(Args, Clone, Debug, Default)]
pub struct BuildOpts {
    /// Build with optimisations.
    #[arg(long)]
    release: bool,
    /// Make a UEFI (GPT) image instead of a BIOS (MBR) one.
    #[arg(long)]
    uefi: bool,
}

#[derive(Args, Clone, Debug)]
pub struct MachineOpts {
    /// Use KVM instead of TCG (slower on the paravirtual KVM of our machines; UEFI fails there).
    #[arg(long)]
    kvm: bool,
    /// Number of CPUs.
    #[arg(long, default_value_t = 4)]
    smp: u32,
    /// Memory in MiB.
    #[arg(long, default_value_t = 256)]
    mem: u32,
    /// Kill QEMU after this many seconds.
    #[arg(long)]
    timeout: Option<u64>,
}

/// The demo workloads of `cargo xtask run --workload`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Pools,
    Swap,
    Files,
    All,
    Sweep,
    Soak,
    Shell,
}

#[derive(Args, Clone, Debug)]
pub struct RunOpts {
    #[command(flatten)]
    build: BuildOpts,
    #[command(flatten)]
    machine: MachineOpts,
    /// Show QEMU's display window.
    #[arg(long)]
    display: bool,
    /// A page file (raw 4096-byte pages, optionally gzip) handed to the kernel as its ramdisk; default
    /// `data/perl-heap.pages.gz`, the repository's real sample.
    #[arg(long, value_name = "FILE")]
    pages: Option<PathBuf>,
    /// No page file: the kernel makes synthetic pages of mixed compressibility instead.
    #[arg(long)]
    synthetic: bool,
    /// Print every kernel option (name, accepted values, default, meaning) and stop.
    #[arg(long)]
    help_kernel: bool,
    /// Show every line of the serial console, the full counters and the `@@stats` line included
    /// (without it the memory counters, the allocator table's rows and `@@stats` are hidden; the run
    /// ends with a short summary either way).
    #[arg(long)]
    verbose: bool,
    /// Pack this directory as the read-only file disk (virtio-blk serial "files") instead of the
    /// default set (the repository's docs, sources and data/).
    #[arg(long, value_name = "DIR")]
    files: Option<PathBuf>,
    /// Size of the fresh (sparse) swap disk attached as virtio-blk serial "swap".
    #[arg(long, value_name = "N", default_value_t = qemu::SWAP_MIB)]
    swap_mib: u64,
    /// What the demo runs: `pools` (zsmalloc and zbud on the pages), `swap` (a demand-paged workload 3x its
    /// memory budget, without and with tmem behind frontswap, and the disk I/O avoided), `files` (a page
    /// cache over the file disk without and with cleancache) or `all` (swap and files over one tmem).
    #[arg(long, value_name = "WORKLOAD")]
    workload: Option<Workload>,
    /// The serial shell (`workload=shell`), typed in this terminal: every key goes to the kernel's
    /// serial port. `help` lists the commands, `exit` ends the run.
    #[arg(long, conflicts_with = "script")]
    shell: bool,
    /// The serial shell fed from FILE: one command per line, each sent when the shell prompts, so a
    /// lesson replays exactly. Blank lines and lines starting with `#` are not sent; the last command
    /// must be `exit`.
    #[arg(long, value_name = "FILE")]
    script: Option<PathBuf>,
    /// Kernel options, `key=value` (after `--`), e.g. `cargo xtask run -- loglevel=debug memmap=full`.
    #[arg(last = true)]
    kernel_options: Vec<String>,
}

#[derive(Args, Clone, Debug)]
pub struct TestOpts {
    /// Boot the test kernels with UEFI images.
    #[arg(long)]
    uefi: bool,
    /// Build the test kernels with optimisations.
    #[arg(long)]
    release: bool,
    /// Run only host packages, test kernels and harness checks whose name contains this.
    #[arg(long)]
    filter: Option<String>,
    /// Use KVM instead of TCG.
    #[arg(long)]
    kvm: bool,
    /// Per-test-kernel timeout in seconds (tests/Cargo.toml may set a shorter one).
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// QEMU instances to run at once (default: the number of CPUs).
    #[arg(long, default_value_t = std::thread::available_parallelism().map_or(1, |n| n.get()))]
    jobs: usize,
    /// Print each test kernel's whole serial output, also when it passes (the figures its cases print).
    #[arg(long)]
    show_output: bool,
    /// CPUs for every test kernel that tests/Cargo.toml's `smp` table does not pin (default: QEMU
    /// config's 4), e.g. `--smp 1` to run the suite on one CPU.
    #[arg(long)]
    smp: Option<u32>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Build(o) => build(&o, None).map(|(elf, img)| {
            println!("kernel: {}\nimage:  {}", elf.display(), img.display());
            ExitCode::SUCCESS
        }),
        Cmd::Run(o) => run(&o, false),
        Cmd::Gdb(o) => run(&o, true),
        Cmd::Test(o) => test::test(&o),
        Cmd::Bench(o) => bench::bench(&o),
        Cmd::Lint(o) => lint(&o),
        Cmd::Fuzz(o) => fuzz::fuzz(&o),
        Cmd::Mutants(o) => mutants::mutants(&o),
        Cmd::Soak(o) => soak::soak(&o),
        Cmd::Drawings(o) => drawings::drawings(&o),
        Cmd::Screenshot(o) => screenshot::screenshot(&o),
        Cmd::Report(o) => report::report(&o),
        Cmd::Capture(o) => cargo::metadata()
            .and_then(|meta| capture::capture(&o, &cargo::target_dir(&meta).join("zkernel").join("captures")))
            .map(|s| {
                capture::print_summary(&s);
                ExitCode::SUCCESS
            }),
    };
    // `{:#}` prints the whole chain on one line, outermost context first: `what: why: deeper why`.
    result.unwrap_or_else(|e| {
        eprintln!("xtask: {e:#}");
        ExitCode::FAILURE
    })
}

fn firmware(uefi: bool) -> Firmware {
    if uefi { Firmware::Uefi } else { Firmware::Bios }
}

/// `target/zkernel/images/<profile>/<name>-<firmware>.img`
pub fn image_path(target: &Path, name: &str, release: bool, fw: Firmware) -> PathBuf {
    let profile = if release { "release" } else { "debug" };
    target.join("zkernel").join("images").join(profile).join(format!("{name}-{}.img", fw.name()))
}

/// Make the disk image of one kernel ELF, with an optional ramdisk (reused when up to date).
///
/// An image with a ramdisk is named after the ramdisk's content (`NAME-<fnv>`), never its path or
/// mtime: a different page file, older or newer, always gets its own image, so a run can never boot the
/// pages of an earlier run. Older images of the same kernel with other pages are removed.
pub fn make_image(
    target: &Path,
    name: &str,
    elf: &Path,
    release: bool,
    fw: Firmware,
    ramdisk: Option<&pages::PageFile>,
) -> Result<PathBuf> {
    let img = match ramdisk {
        Some(p) => {
            let keyed = format!("{name}-pages-{:016x}", p.fnv);
            prune_images(target, name, release, fw, &keyed);
            image_path(target, &keyed, release, fw)
        }
        None => image_path(target, name, release, fw),
    };
    let xtask_exe = std::env::current_exe().ok();
    let rd = ramdisk.map(|p| p.path.as_path());
    boot::disk_image(elf, fw, &img, rd, xtask_exe.as_deref()).map_err(anyhow::Error::msg)?;
    Ok(img)
}

/// Remove `NAME-pages-*` images of this profile and firmware other than `keep` (old page files).
fn prune_images(target: &Path, name: &str, release: bool, fw: Firmware, keep: &str) {
    let keep = image_path(target, keep, release, fw);
    let Some(dir) = keep.parent() else { return };
    let prefix = format!("{name}-pages-");
    let suffix = format!("-{}.img", fw.name());
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let file = entry.file_name().to_string_lossy().into_owned();
        if path != keep && file.starts_with(&prefix) && file.ends_with(&suffix) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

fn build(o: &BuildOpts, ramdisk: Option<&pages::PageFile>) -> Result<(PathBuf, PathBuf)> {
    let meta = cargo::metadata()?;
    let bins = cargo::build_kernel_bins("zkernel", o.release, false, &[])?;
    let elf = bins.get("zkernel").context("cargo built no `zkernel` binary")?.clone();
    let img = make_image(&cargo::target_dir(&meta), "zkernel", &elf, o.release, firmware(o.uefi), ramdisk)?;
    Ok((elf, img))
}

/// The kernel options a run passes, checked on the host against kopts's table (the one the kernel
/// checks them with too), so a typo fails in a moment, before anything is built or booted.
fn check_kernel_options(options: &[String]) -> Result<()> {
    let joined = options.join(" ");
    if let Err(errors) = kopts::Settings::parse(&joined) {
        for e in &errors {
            eprintln!("xtask: option error: {e}");
        }
        let first = errors.first().map(ToString::to_string).unwrap_or_default();
        anyhow::bail!(
            "{} bad kernel option(s), nothing was built or booted; the first: {first} \
             (`cargo xtask run --help-kernel` lists every option)",
            errors.len()
        );
    }
    Ok(())
}

fn run(o: &RunOpts, gdb: bool) -> Result<ExitCode> {
    if o.help_kernel {
        print!("{}", kopts::help_text());
        return Ok(ExitCode::SUCCESS);
    }
    let prepared = prepare_run(o, gdb, true, "zkernel")?;
    if gdb {
        println!("QEMU is stopped at the first instruction with the gdb stub on :1234. In another terminal:");
        // The image names its sources by remapped prefixes (cargo::path_prefixes); map them back.
        let substitute: String = cargo::path_prefixes()?
            .iter()
            .map(|p| format!(" -ex 'set substitute-path {} {}'", p.image, p.local.display()))
            .collect();
        println!(
            "    gdb{substitute} -ex 'add-symbol-file {} -o {:#x}' -ex 'target remote :1234' -ex 'break kernel_main' -ex continue",
            prepared.elf.display(),
            memmap::layout::KERNEL_BASE
        );
    }
    eprintln!("xtask: {} {}", qemu::QEMU, prepared.args.join(" "));
    let meta = cargo::metadata()?;
    let report_path = cargo::target_dir(&meta).join("zkernel").join("report.json");
    let _ = std::fs::remove_file(&report_path);
    let mut brief = summary::Brief::default();
    let outcome = execute_run_shown(&prepared, true, |line| o.verbose || brief.show(line))?;
    // The summary comes from the typed report, also for a run that failed (its failures are in it).
    if let Some(report) = outcome.stats.as_deref().and_then(|l| zstats::from_line(l).ok()) {
        for line in summary::lines(&report) {
            println!("{line}");
        }
    }
    let report = outcome.into_result()?;
    let pretty = serde_json::to_string_pretty(&report.report).context("rendering the report")?;
    std::fs::write(&report_path, pretty + "\n").with_context(|| format!("writing {}", report_path.display()))?;
    eprintln!("xtask: report saved to {}", report_path.display());
    eprintln!("xtask: kernel exited with success in {:.1} s", report.elapsed.as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// A run of the demo kernel, built and ready to boot.
#[derive(Debug)]
pub struct PreparedRun {
    pub elf: PathBuf,
    pub args: Vec<String>,
    pub timeout: Duration,
    pub pages: Option<pages::PageFile>,
    /// What the serial port receives (the shell's input).
    pub input: qemu::Input,
}

/// Build everything `o` asks for: check the kernel options on the host (unless `check_options` is off,
/// which only the harness check of the kernel's own refusal uses), pick the page file, build the kernel
/// and its image, the swap disk `swap_name` and the file disk, and the QEMU command line.
pub fn prepare_run(o: &RunOpts, gdb: bool, check_options: bool, swap_name: &str) -> Result<PreparedRun> {
    let mut kernel_options = o.kernel_options.clone();
    if let Some(w) = o.workload {
        let name = match w {
            Workload::Pools => "pools",
            Workload::Swap => "swap",
            Workload::Files => "files",
            Workload::All => "all",
            Workload::Sweep => "sweep",
            Workload::Soak => "soak",
            Workload::Shell => "shell",
        };
        kernel_options.push(format!("workload={name}"));
    }
    let input = shell_input(o)?;
    if !matches!(input, qemu::Input::None) {
        anyhow::ensure!(
            o.workload.is_none_or(|w| w == Workload::Shell),
            "--shell and --script run the shell workload; leave out --workload"
        );
        kernel_options.push("workload=shell".into());
    }
    if check_options {
        check_kernel_options(&kernel_options)?;
    }
    let ovmf = qemu::ensure_prerequisites(o.build.uefi)?;
    let meta = cargo::metadata()?;
    let target = cargo::target_dir(&meta);
    let data_dir = target.join("zkernel").join("data");
    let pages = match (&o.pages, o.synthetic) {
        (Some(_), true) => anyhow::bail!("--pages and --synthetic exclude each other"),
        (Some(file), false) => Some(pages::prepare(file, &data_dir)?),
        (None, false) => {
            let default = cargo::workspace_root().join(pages::DEFAULT_PAGES);
            Some(
                pages::prepare(&default, &data_dir)
                    .context("the default page file (give --pages FILE or --synthetic)")?,
            )
        }
        (None, true) => None,
    };
    let (elf, image) = build(&o.build, pages.as_ref())?;
    let mut config = QemuConfig::new(image, firmware(o.build.uefi));
    config.ovmf = ovmf;
    config.smp = o.machine.smp;
    config.mem_mib = o.machine.mem;
    config.kvm = o.machine.kvm;
    config.display = o.display;
    config.gdb = gdb;
    config.kernel_options = kernel_options;
    config.disks.push(qemu::swap_disk(&target, swap_name, o.swap_mib)?);
    let files = files::prepare(&target, o.files.as_deref())?;
    eprintln!("xtask: {}", files.describe());
    config.disks.push(files.disk());
    match &pages {
        Some(p) => {
            eprintln!(
                "xtask: pages: {} ({} pages, FNV-1a {:016x}), the kernel's ramdisk",
                p.source.display(),
                p.pages,
                p.fnv
            );
            // The checksum goes first, so a test's own `ramdisk_fnv=` after it wins (the later word wins).
            config.kernel_options.insert(0, p.option());
        }
        None => eprintln!("xtask: pages: none (--synthetic): the kernel makes synthetic pages"),
    }
    let args = config.args().map_err(anyhow::Error::msg)?;
    let default_timeout = if gdb { 3600 } else { 300 };
    let timeout = Duration::from_secs(o.machine.timeout.unwrap_or(default_timeout));
    Ok(PreparedRun { elf, args, timeout, pages, input })
}

/// The prompt of the kernel's serial shell (`kernel/src/workload/shell.rs`, `PROMPT`).
pub const SHELL_PROMPT: &str = "zk> ";

/// The lines of a shell script: blank lines and `#` comments dropped, each line trimmed; the last must
/// be `exit`, or the run could only end at its timeout.
pub fn script_lines(text: &str) -> Result<Vec<String>> {
    let lines: Vec<String> =
        text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect();
    anyhow::ensure!(
        lines.last().is_some_and(|l| l == "exit"),
        "the script's last command is {:?}, not `exit`: the shell would wait for input until the timeout",
        lines.last().map_or("(none)", |l| l.as_str())
    );
    Ok(lines)
}

/// What the kernel's serial port gets: the terminal for `--shell`, the script's lines for `--script`.
fn shell_input(o: &RunOpts) -> Result<qemu::Input> {
    if o.shell {
        return Ok(qemu::Input::Terminal);
    }
    let Some(path) = &o.script else { return Ok(qemu::Input::None) };
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the script {}", path.display()))?;
    let lines = script_lines(&text).with_context(|| format!("script {}", path.display()))?;
    Ok(qemu::Input::Script { prompt: SHELL_PROMPT.into(), lines })
}

/// What a boot of the demo kernel gave.
#[derive(Debug)]
pub struct RunOutcome {
    pub lines: Vec<String>,
    pub verdict: std::result::Result<(), verdict::Failure>,
    /// The kernel's own reason, from its last `zkernel: FAILED: …` line.
    pub failed: Option<String>,
    /// The last `@@stats` line.
    pub stats: Option<String>,
    pub elapsed: Duration,
}

/// A run that passed, with its report read back into the shared types.
#[derive(Debug)]
pub struct PassedRun {
    pub report: zstats::Report,
    pub elapsed: Duration,
}

impl RunOutcome {
    /// The run's verdict: the report when the kernel passed and its report reads back (unknown fields
    /// denied), else an error whose message ends with the kernel's own reason.
    pub fn into_result(self) -> Result<PassedRun> {
        if let Err(why) = self.verdict {
            match self.failed {
                Some(reason) => anyhow::bail!("the kernel failed the run ({why}): {reason}"),
                None => return Err(why.into()),
            }
        }
        // A run whose report cannot be read back into the shared types has no figures to stand behind.
        let line = self.stats.context("the kernel exited with success but printed no @@stats report")?;
        let report = zstats::from_line(&line)
            .map_err(|e| anyhow::anyhow!("the kernel's @@stats report does not read back: {e}"))?;
        Ok(PassedRun { report, elapsed: self.elapsed })
    }
}

/// Boot a prepared run; `echo` passes the serial console through.
pub fn execute_run(p: &PreparedRun, echo: bool) -> Result<RunOutcome> {
    execute_run_shown(p, echo, |_| echo)
}

/// Boot a prepared run, passing through the console lines `show` picks (and QEMU's stderr on a
/// failure, when `echo`).
pub fn execute_run_shown(p: &PreparedRun, echo: bool, mut show: impl FnMut(&str) -> bool) -> Result<RunOutcome> {
    let mut stats = None;
    let mut failed = None;
    let mut lines = Vec::new();
    // At a terminal, QEMU's output is passed through as it comes (a prompt has no newline).
    let terminal = matches!(p.input, qemu::Input::Terminal);
    let r = qemu::run_with_input(&p.args, p.timeout, p.input.clone(), |line| {
        if !terminal && show(line) {
            println!("{line}");
        }
        if line.starts_with(zstats::PREFIX) {
            stats = Some(line.to_string());
        }
        if let Some(why) = line.strip_prefix("zkernel: FAILED: ") {
            failed = Some(why.to_string());
        }
        lines.push(line.to_string());
    })?;
    let verdict = verdict::exit_verdict(r.status, r.timed_out, p.timeout.as_secs());
    if verdict.is_err() && echo && !r.stderr.trim().is_empty() {
        eprintln!("QEMU stderr:\n{}", r.stderr.trim_end());
    }
    Ok(RunOutcome { lines, verdict, failed, stats, elapsed: r.elapsed })
}

/// The architecture check of `kernel/src`: every problem on its own line (stdout), then a summary.
fn arch_check() -> Result<()> {
    let root = cargo::workspace_root();
    let shown = Path::new("kernel").join("src");
    eprintln!("xtask: architecture check of {}", shown.display());
    let report = archcheck::check(&root.join(&shown), archcheck::TABLE)?;
    for p in &report.problems {
        println!("{}", p.render(&shown));
    }
    if !report.problems.is_empty() {
        anyhow::bail!(
            "architecture check: {} problem(s) in {} ({} files); the table is in xtask/src/archcheck.rs \
             (`cargo xtask lint --arch-table` prints it)",
            report.problems.len(),
            shown.display(),
            report.files
        );
    }
    println!("archcheck: {} files, {} uses between modules, all allowed", report.files, report.uses.len());
    Ok(())
}

fn lint(o: &LintOpts) -> Result<ExitCode> {
    if o.arch_table {
        println!("{}", archcheck::render_table(archcheck::TABLE));
        return Ok(ExitCode::SUCCESS);
    }
    arch_check()?;
    if o.arch_only {
        return Ok(ExitCode::SUCCESS);
    }
    let steps: [&[&str]; 3] = [
        &["fmt", "--all", "--", "--check"],
        &[
            "clippy",
            "--workspace",
            "--exclude",
            "zkernel",
            "--exclude",
            "zkernel-tests",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[
            "clippy",
            "--package",
            "zkernel",
            "--package",
            "zkernel-tests",
            "--target",
            cargo::KERNEL_TARGET,
            "--",
            "-D",
            "warnings",
        ],
    ];
    for args in steps {
        eprintln!("xtask: cargo {}", args.join(" "));
        let ok = cargo::cargo().args(args).status().is_ok_and(|s| s.success());
        if !ok {
            anyhow::bail!("`cargo {}` failed", args.join(" "));
        }
    }
    println!("lint: architecture, rustfmt and clippy clean");
    Ok(ExitCode::SUCCESS)
}
