//! The zkernel kernel binary: boot, show the banner and the report, exit QEMU.
//!
//! `cargo xtask run` boots this. The demo grows with the kernel: it shows what boot learned about the
//! machine and memory, then runs the workload the options ask for and shows memory again:
//!
//! * `workload=pools` (default): store pages in zsmalloc and zbud on real frames (`pooldemo`);
//! * `workload=swap` (`cargo xtask run --workload swap`): the same swap workload without and with tmem
//!   behind frontswap, and the disk I/O tmem avoided (`swapdemo`);
//! * `workload=files`: the page cache over the file disk without and with cleancache (`filecache`);
//! * `workload=all`: both at once over one tmem, so cleancache pages dropped for frontswap show.
#![no_std]
#![no_main]

extern crate alloc;

use bootloader_api::{BootInfo, entry_point};
use kopts::Options;
use zkernel::arch::qemu::{ExitCode, exit};
use zkernel::println;

entry_point!(kernel_main, config = &zkernel::BOOTLOADER_CONFIG);

fn kernel_main(boot_info: &'static mut BootInfo) -> ! {
    let facts = zkernel::init::init(boot_info);
    facts.print_banner();
    let member = match Options::new(facts.options).get("workload") {
        Some("swap") => alloc::format!("\"swap\":{}", zkernel::swapdemo::run_demo(facts)),
        Some("files") => alloc::format!("\"files\":{}", zkernel::filecache::run_demo(facts)),
        Some("all") => alloc::format!("\"all\":{}", zkernel::swapdemo::run_all(facts)),
        _ => alloc::format!("\"pools\":{}", zkernel::pooldemo::run(facts)),
    };
    facts.print_memory();
    println!("@@stats {}", facts.stats_json(&member));
    println!("zkernel: done, powering off");
    exit(ExitCode::Success)
}
