//! The zkernel kernel binary: boot, show the banner and the report, exit QEMU.
//!
//! `cargo xtask run` boots this. The demo grows with the kernel: today it shows what boot learned about
//! the machine; the memory, pool and tmem layers add their live figures here.
#![no_std]
#![no_main]

use bootloader_api::{BootInfo, entry_point};
use zkernel::arch::qemu::{ExitCode, exit};
use zkernel::println;

entry_point!(kernel_main, config = &zkernel::BOOTLOADER_CONFIG);

fn kernel_main(boot_info: &'static mut BootInfo) -> ! {
    let facts = zkernel::init::init(boot_info);
    facts.print_banner();
    println!("@@stats {}", facts.stats_json());
    println!("zkernel: done, powering off");
    exit(ExitCode::Success)
}
