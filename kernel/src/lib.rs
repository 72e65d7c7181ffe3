//! zkernel: a small x86_64 unikernel for teaching and measuring in-kernel memory compression.
//!
//! This crate is everything that only makes sense on the target (`x86_64-unknown-none`): the arch layer
//! (GDT, IDT, exceptions), the serial console, drivers, the boot sequence and the test-kernel harness.
//! The algorithms live in the `no_std` crates under `kernel/libs/`, which the host tests run with plain
//! `cargo test`; this crate wires them to real hardware.
//!
//! The kernel binary (`src/main.rs`) and every test kernel (`tests/*.rs`) link this library, declare
//! their entry point with [`bootloader_api::entry_point!`] and the shared [`BOOTLOADER_CONFIG`], and call
//! [`init::init`] first. See `docs/boot.md` for the walk from firmware to `kernel_main`.
#![no_std]
#![feature(abi_x86_interrupt)]

extern crate alloc;

pub mod arch;
pub mod console;
pub mod drivers;
pub mod fatal;
pub mod filecache;
pub mod fs;
pub mod init;
pub mod mm;
pub mod pooldemo;
pub mod swap;
pub mod swapdemo;
pub mod testing;
pub mod zcache;
pub mod zcomp;

pub use init::BOOTLOADER_CONFIG;
