//! SMP bring-up with 2 CPUs: every CPU of the MADT comes up and reports in with a distinct APIC id, its
//! own per-CPU area, its own GDT and TSS, and its own IST and kernel stacks.
//! Then the last AP overflows its kernel stack: the double fault must be handled on that AP's own
//! IST stack and reported by the fatal path from that CPU (tests/common/smp.rs).
//! An unmap on the boot CPU is shot down on an AP that cached the page.
//! The CPU count comes from tests/Cargo.toml's `smp` table.
#![no_std]
#![no_main]

extern crate alloc;

#[macro_use]
#[path = "common/smp.rs"]
mod smp;

smp_boot_kernel!("smp_boot_2", 2);
