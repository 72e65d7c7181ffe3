//! Harness check: a kernel that hangs must be killed by the timeout and reported failed.
#![no_std]
#![no_main]

use zkernel::harness::testing::Case;

zkernel::test_kernel!("fail_hang", &[Case::returns("hangs_forever", hangs_forever)]);

fn hangs_forever() {
    zkernel::println!("halting with interrupts off: only the harness timeout ends this");
    zkernel::arch::cpu::halt_forever()
}
