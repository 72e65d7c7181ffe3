//! zkernel: a small x86_64 unikernel for teaching and measuring in-kernel memory compression.
//!
//! This crate is everything that only makes sense on the target (`x86_64-unknown-none`); the algorithms
//! live in the `no_std` crates under `kernel/libs/`, which the host tests run with plain `cargo test`.
//! The kernel binary (`src/main.rs`) and every test kernel (`tests/*.rs`) link this library, declare
//! their entry point with [`bootloader_api::entry_point!`] (or [`test_kernel!`]) and the shared
//! [`BOOTLOADER_CONFIG`], and call [`init::init`] first. See `docs/boot.md` for the walk from firmware to
//! `kernel_main`.
//!
//! # One room per stage of a page's journey
//!
//! | stage of the journey | module | chapter |
//! |---|---|---|
//! | the CPU: descriptor tables, exceptions, the fault's first stop | [`arch`] | `docs/boot.md` |
//! | frames, page tables, kmap, the heap, stacks; the fault dispatcher and regions | [`mm`] | `docs/memory.md` |
//! | the serial console, PCI, virtio-blk (swap and file disks), fw_cfg, the ramdisk | [`drivers`] | `docs/boot.md`, `docs/swap.md`, `docs/filedisk.md` |
//! | a workload page: fault-in, reclaim, swap entries, the swap disk | [`swap`] | `docs/swap.md` |
//! | the shared tmem, the frontswap and cleancache glue, compression streams | [`zcache`] | `docs/swap.md`, `docs/cleancache.md`, `docs/compression.md` |
//! | the zram device: compressed RAM as the swap device | [`zram`] | `docs/equal-memory.md` |
//! | a file page: the file disk and the page cache | [`fs`] | `docs/filedisk.md`, `docs/cleancache.md` |
//! | boot, in order | [`init`] | `docs/boot.md` |
//! | the fatal path and the test-kernel runner | [`harness`] | `docs/boot.md` |
//! | the demos: pools, swap, files, all | [`workload`] | `README.md` |
//!
//! Which room may use which is a table in `xtask/src/archcheck.rs`, checked by `cargo xtask lint`:
//! arch sits at the bottom and reaches mm and the harness only through handlers `init` registers;
//! nothing depends on `workload`.
//!
//! Unsafe code is denied here and allowed only in `arch`, `mm` and `drivers`, each block with a
//! `// SAFETY:` line. Everything above them reaches memory through safe calls: `mm::frames::OwnedFrame`,
//! `mm::region::Region`, `mm::KernelMemory`.
#![no_std]
#![feature(abi_x86_interrupt)]
#![deny(unsafe_code)]

extern crate alloc;

#[allow(unsafe_code)]
pub mod arch;
#[allow(unsafe_code)]
pub mod drivers;
pub mod fs;
pub mod harness;
pub mod init;
#[allow(unsafe_code)]
pub mod mm;
pub mod swap;
pub mod workload;
pub mod zcache;
pub mod zram;

pub use init::BOOTLOADER_CONFIG;

/// Declare a test kernel: its entry point boots the kernel (`init::init`) and runs the cases.
#[macro_export]
macro_rules! test_kernel {
    ($name:expr, $cases:expr) => {
        bootloader_api::entry_point!(__test_kernel_main, config = &$crate::BOOTLOADER_CONFIG);
        fn __test_kernel_main(boot_info: &'static mut bootloader_api::BootInfo) -> ! {
            $crate::init::init(boot_info);
            $crate::harness::testing::run($name, $cases)
        }
    };
}
