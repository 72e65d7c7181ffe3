//! `cargo xtask`: the one entry point to build, run, test and debug zkernel.
//!
//! | command | what it does |
//! |---|---|
//! | `build` | kernel ELF → BIOS or UEFI disk image under `target/zkernel/images/` |
//! | `run` | build, boot in QEMU (TCG, timeout), pass the serial console through, save the report |
//! | `test` | host unit tests, then every test kernel in `tests/`, judged by QEMU's exit status |
//! | `bench` | criterion benchmarks on the host, then benchmark kernels built with kmap and with a direct map |
//! | `gdb` | boot stopped at the first instruction with the gdb stub, print the gdb command line |
//! | `lint` | the architecture check of `kernel/src` (`archcheck.rs`), then rustfmt check and clippy (host crates and kernel target), warnings are errors |
//!
//! See README.md for the options and `verdict.rs` for how a run is judged.

mod archcheck;
mod bench;
mod cargo;
mod files;
mod pages;
mod qemu;
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
    /// The architecture check of kernel/src, then rustfmt --check and clippy on host crates and the
    /// kernel target.
    Lint(LintOpts),
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

#[derive(Args, Clone)]
struct BuildOpts {
    /// Build with optimisations.
    #[arg(long)]
    release: bool,
    /// Make a UEFI (GPT) image instead of a BIOS (MBR) one.
    #[arg(long)]
    uefi: bool,
}

#[derive(Args, Clone)]
struct MachineOpts {
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
enum Workload {
    Pools,
    Swap,
    Files,
    All,
}

#[derive(Args, Clone)]
struct RunOpts {
    #[command(flatten)]
    build: BuildOpts,
    #[command(flatten)]
    machine: MachineOpts,
    /// Show QEMU's display window.
    #[arg(long)]
    display: bool,
    /// A page file (raw 4096-byte pages, optionally gzip) handed to the kernel as its ramdisk.
    #[arg(long, value_name = "FILE")]
    pages: Option<PathBuf>,
    /// Pack this directory as the read-only file disk (virtio-blk serial "files") instead of the
    /// default set (the repository's docs and sources and ../shared/data).
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
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// QEMU instances to run at once (default: the number of CPUs).
    #[arg(long, default_value_t = std::thread::available_parallelism().map_or(1, |n| n.get()))]
    jobs: usize,
    /// Print each test kernel's whole serial output, also when it passes (the figures its cases print).
    #[arg(long)]
    show_output: bool,
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
pub fn make_image(
    target: &Path,
    name: &str,
    elf: &Path,
    release: bool,
    fw: Firmware,
    ramdisk: Option<&Path>,
) -> Result<PathBuf> {
    let img = image_path(target, name, release, fw);
    let xtask_exe = std::env::current_exe().ok();
    boot::disk_image(elf, fw, &img, ramdisk, xtask_exe.as_deref()).map_err(anyhow::Error::msg)?;
    Ok(img)
}

fn build(o: &BuildOpts, ramdisk: Option<&Path>) -> Result<(PathBuf, PathBuf)> {
    let meta = cargo::metadata()?;
    let bins = cargo::build_kernel_bins("zkernel", o.release, false, &[])?;
    let elf = bins.get("zkernel").context("cargo built no `zkernel` binary")?.clone();
    // An image with a ramdisk gets its own name, so the plain image stays valid.
    let name = if ramdisk.is_some() { "zkernel-ramdisk" } else { "zkernel" };
    let img = make_image(&cargo::target_dir(&meta), name, &elf, o.release, firmware(o.uefi), ramdisk)?;
    Ok((elf, img))
}

fn run(o: &RunOpts, gdb: bool) -> Result<ExitCode> {
    let ovmf = qemu::ensure_prerequisites(o.build.uefi)?;
    let meta = cargo::metadata()?;
    let pages = match &o.pages {
        Some(file) => Some(pages::prepare(file, &cargo::target_dir(&meta).join("zkernel").join("data"))?),
        None => None,
    };
    let (elf, image) = build(&o.build, pages.as_ref().map(|p| p.path.as_path()))?;
    let mut config = QemuConfig::new(image, firmware(o.build.uefi));
    config.ovmf = ovmf;
    config.smp = o.machine.smp;
    config.mem_mib = o.machine.mem;
    config.kvm = o.machine.kvm;
    config.display = o.display;
    config.gdb = gdb;
    config.kernel_options = o.kernel_options.clone();
    config.disks.push(qemu::swap_disk(&cargo::target_dir(&meta), "zkernel", o.swap_mib)?);
    let files = files::prepare(&cargo::target_dir(&meta), o.files.as_deref())?;
    eprintln!("xtask: {}", files.describe());
    config.disks.push(files.disk());
    if let Some(w) = o.workload {
        let name = match w {
            Workload::Pools => "pools",
            Workload::Swap => "swap",
            Workload::Files => "files",
            Workload::All => "all",
        };
        config.kernel_options.push(format!("workload={name}"));
    }
    if let Some(p) = &pages {
        eprintln!("xtask: ramdisk {} ({} pages)", p.path.display(), p.pages);
        config.kernel_options.push(p.option());
    }
    let args = config.args().map_err(anyhow::Error::msg)?;
    let default_timeout = if gdb { 3600 } else { 300 };
    let timeout = Duration::from_secs(o.machine.timeout.unwrap_or(default_timeout));
    if gdb {
        println!("QEMU is stopped at the first instruction with the gdb stub on :1234. In another terminal:");
        println!(
            "    gdb -ex 'add-symbol-file {} -o {:#x}' -ex 'target remote :1234' -ex 'break kernel_main' -ex continue",
            elf.display(),
            memmap::layout::KERNEL_BASE
        );
    }
    eprintln!("xtask: {} {}", qemu::QEMU, args.join(" "));
    let report_path = cargo::target_dir(&meta).join("zkernel").join("report.json");
    let mut last_stats = None;
    let r = qemu::run(&args, timeout, |line| {
        println!("{line}");
        if let Some(json) = line.strip_prefix("@@stats ") {
            last_stats = Some(json.to_string());
        }
    })?;
    if let Some(json) = last_stats {
        match serde_json::from_str::<serde_json::Value>(&json) {
            Ok(v) => {
                let pretty = serde_json::to_string_pretty(&v).unwrap_or(json);
                std::fs::write(&report_path, pretty + "\n")
                    .with_context(|| format!("writing {}", report_path.display()))?;
                eprintln!("xtask: report saved to {}", report_path.display());
            }
            Err(e) => eprintln!("xtask: the kernel's @@stats line is not valid JSON ({e}); not saved"),
        }
    }
    match verdict::exit_verdict(r.status, r.timed_out, timeout.as_secs()) {
        Ok(()) => {
            eprintln!("xtask: kernel exited with success in {:.1} s", r.elapsed.as_secs_f64());
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            if !r.stderr.trim().is_empty() {
                eprintln!("QEMU stderr:\n{}", r.stderr.trim_end());
            }
            Err(why.into())
        }
    }
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
