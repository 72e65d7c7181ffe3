//! `cargo xtask soak [--minutes M]`: boot a release kernel with `workload=soak` (kernel/src/workload/
//! soak.rs) on the repository's real pages and 4 CPUs, let it run swap, tmem and zram rounds with
//! device and frame faults injected for M minutes, and hold it to what it must show at the end:
//!
//! | check | from the `@@stats` report's `soak` member |
//! |---|---|
//! | the kernel passed (no failure line) | `failures` empty |
//! | every page read back intact | `mismatches` = 0 |
//! | the pages lost are exactly the injected swap-in read failures | `pages_lost` = `lost_expected` |
//! | faults were really injected, work really done | `device_faults`, `frame_faults`, `meta_faults`, `operations` > 0 |
//!
//! It prints one summary line (operations, faults injected, pages verified, pages lost) and fails with the
//! reason on the last line otherwise. Not part of `cargo xtask test`; CI runs `--minutes 1`.

use anyhow::{Result, ensure};
use std::process::ExitCode;

use crate::{BuildOpts, MachineOpts, RunOpts, Workload, execute_run, prepare_run, qemu};

#[derive(clap::Args, Clone, Debug)]
pub struct SoakOpts {
    /// How long the kernel runs its rounds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=1440))]
    minutes: u64,
    /// CPUs (the tmem rounds run on all of them).
    #[arg(long, default_value_t = 4)]
    smp: u32,
    /// A debug kernel instead of the release one (slower; keeps the debug-only checks: lock order,
    /// freed-frame poison).
    #[arg(long)]
    debug: bool,
}

/// Boot, run, check. Seconds QEMU gets beyond the soak itself: boot, the last round, the report.
const MARGIN_SECS: u64 = 240;

pub fn soak(o: &SoakOpts) -> Result<ExitCode> {
    let seconds = o.minutes * 60;
    let run = RunOpts {
        build: BuildOpts { release: !o.debug, uefi: false },
        machine: MachineOpts { kvm: false, smp: o.smp, mem: 256, timeout: Some(seconds + MARGIN_SECS) },
        display: false,
        pages: None,
        synthetic: false,
        help_kernel: false,
        verbose: false,
        files: None,
        swap_mib: qemu::SWAP_MIB,
        workload: Some(Workload::Soak),
        shell: false,
        script: None,
        kernel_options: vec![format!("soak_seconds={seconds}")],
    };
    let prepared = prepare_run(&run, false, true, "soak")?;
    eprintln!("xtask: {} {}", qemu::QEMU, prepared.args.join(" "));
    let passed = execute_run(&prepared, true)?.into_result()?;
    let s = passed.report.soak.ok_or_else(|| anyhow::anyhow!("the report has no soak member"))?;
    println!(
        "soak: {} min on {} CPUs ({} build): {} rounds, {} operations, {} pages verified; faults injected: {} disk, \
         {} frame, {} heap/table; pages lost {} (injected swap-in read failures {}); mismatches {}",
        o.minutes,
        s.cpus,
        if o.debug { "debug" } else { "release" },
        s.rounds,
        s.operations,
        s.pages_verified,
        s.device_faults,
        s.frame_faults,
        s.meta_faults,
        s.pages_lost,
        s.lost_expected,
        s.mismatches
    );
    ensure!(s.mismatches == 0, "soak: {} pages came back changed", s.mismatches);
    ensure!(s.pages_lost == s.lost_expected, "soak: {} pages lost, {} expected", s.pages_lost, s.lost_expected);
    ensure!(
        s.operations > 0 && s.device_faults > 0 && s.frame_faults > 0 && s.meta_faults > 0,
        "soak: no work or no fault injected"
    );
    Ok(ExitCode::SUCCESS)
}
