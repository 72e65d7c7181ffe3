//! SMP bring-up with 4 CPUs: every CPU of the MADT comes up and reports in with a distinct APIC id, its
//! own per-CPU area, its own GDT and TSS, and its own IST and kernel stacks.
//! Then the last AP overflows its kernel stack: the double fault must be handled on that AP's own
//! IST stack and reported by the fatal path from that CPU (tests/common/smp.rs).
//! An unmap on the boot CPU is shot down on an AP that cached the page.
//! The CPU count comes from tests/Cargo.toml's `smp` table.
#![no_std]
#![no_main]

extern crate alloc;

#[path = "common/smp.rs"]
mod smp;

use zkernel::harness::fatal::Expected;
use zkernel::harness::testing::Case;

zkernel::test_kernel!(
    "smp_boot",
    &[
        Case::returns("every_cpu_reports_in", every_cpu_reports_in),
        Case::returns("unmap_is_shot_down_on_other_cpus", smp::unmap_is_shot_down_on_other_cpus),
        Case::fatal(
            "double_fault_on_an_ap_lands_on_its_ist",
            smp::overflow_on_last_ap,
            Expected::Exception(8),
            smp::check_ap_double_fault
        ),
    ]
);

fn every_cpu_reports_in() {
    smp::every_cpu_reports_in(4);
}
