//! The zkernel kernel binary: boot, show the banner and the report, exit QEMU.
//!
//! `cargo xtask run` boots this. The demo grows with the kernel: it shows what boot learned about the
//! machine and memory, then stores pages in zsmalloc and zbud (`pooldemo`) and shows memory again; the
//! tmem layer will add its figures here.
#![no_std]
#![no_main]

extern crate alloc;

use bootloader_api::{BootInfo, entry_point};
use zkernel::arch::qemu::{ExitCode, exit};
use zkernel::println;

entry_point!(kernel_main, config = &zkernel::BOOTLOADER_CONFIG);

fn kernel_main(boot_info: &'static mut BootInfo) -> ! {
    let facts = zkernel::init::init(boot_info);
    facts.print_banner();
    let pools = zkernel::pooldemo::run(facts);
    facts.print_memory();
    println!("@@stats {}", facts.stats_json(&alloc::format!("\"pools\":{pools}")));
    println!("zkernel: done, powering off");
    exit(ExitCode::Success)
}
