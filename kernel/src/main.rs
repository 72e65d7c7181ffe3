//! The zkernel kernel binary: boot, show the banner, run the workload the options ask for, report,
//! exit QEMU with success only when every check of the run held.
//!
//! `cargo xtask run` boots this. The workloads live in `zkernel::workload`:
//!
//! * `workload=pools` (default): store pages in zsmalloc and zbud on real frames;
//! * `workload=swap` (`cargo xtask run --workload swap`): the same swap workload without and with tmem
//!   behind frontswap, and the disk I/O tmem avoided;
//! * `workload=files`: the page cache over the file disk without and with cleancache;
//! * `workload=all`: both at once over one tmem, so cleancache pages dropped for frontswap show;
//! * `workload=shell` (`cargo xtask run --shell`): the serial shell, commands typed or replayed from a file.
#![no_std]
#![no_main]

extern crate alloc;

use bootloader_api::{BootInfo, entry_point};
use zkernel::arch::qemu::{ExitCode, exit};
use zkernel::println;

entry_point!(kernel_main, config = &zkernel::BOOTLOADER_CONFIG);

fn kernel_main(boot_info: &'static mut BootInfo) -> ! {
    let facts = zkernel::init::init(boot_info); // boot; a bad option or page file ends here
    facts.print_banner(); //                        the machine, the options, memory
    let mut report = facts.report();
    let what = alloc::format!("workload {:?}", facts.settings.workload());
    zkernel::workload::picture::start(facts.framebuffer, &what); // the live memory picture, if a framebuffer
    let t0 = zkernel::arch::tsc::rdtsc();
    zkernel::workload::run(facts, &mut report); //   the demo, with its own checks
    zkernel::workload::picture::finish(zkernel::arch::tsc::rdtsc() - t0); // its last redraw and its cost
    facts.print_memory(); //                        memory again, after the workload gave it back
    let boot = facts.report();
    report.memory = boot.memory;
    report.frames = boot.frames;
    report.heap = boot.heap;
    report.kmap = boot.kmap;
    report.paging = boot.paging;
    report.cpus_up = boot.cpus_up;
    report.tlb_shootdowns = boot.tlb_shootdowns;
    report.locks = boot.locks;
    println!("{}", zstats::to_line(&report)); //     for programs: xtask saves it as report.json
    // A run that cannot stand behind its figures fails, with the reason on the last line.
    if let Some(first) = report.failures.first() {
        println!("zkernel: FAILED: {} check(s) did not hold; the first: {first}", report.failures.len());
        exit(ExitCode::Failed)
    }
    println!("zkernel: done, powering off");
    exit(ExitCode::Success)
}
