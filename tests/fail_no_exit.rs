//! Harness check: a kernel that never writes an exit code (here it resets by triple fault, and QEMU
//! with `-no-reboot` exits 0) must be reported failed, never passed.
#![no_std]
#![no_main]

use zkernel::harness::testing::Case;

zkernel::test_kernel!("fail_no_exit", &[Case::returns("resets_without_exit_code", resets)]);

fn resets() {
    zkernel::println!("triple-faulting without writing an exit code");
    zkernel::arch::cpu::triple_fault()
}
