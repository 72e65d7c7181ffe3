//! SMP bring-up with 1 CPU: every CPU of the MADT comes up and reports in with a distinct APIC id, its
//! own per-CPU area, its own GDT and TSS, and its own IST and kernel stacks.
//! The CPU count comes from tests/Cargo.toml's `smp` table.
#![no_std]
#![no_main]

extern crate alloc;

// The double-fault case needs an application processor: with one CPU it is left out.
#[allow(dead_code)]
#[path = "common/smp.rs"]
mod smp;

use zkernel::harness::testing::Case;

zkernel::test_kernel!("smp_boot_1", &[Case::returns("every_cpu_reports_in", every_cpu_reports_in)]);

fn every_cpu_reports_in() {
    smp::every_cpu_reports_in(1);
}
