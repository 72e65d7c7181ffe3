//! A kernel stack overflow lands on the double-fault IST stack and is reported, not a triple fault.
//!
//! Endless recursion walks the boot stack down into the unmapped guard page below it. The page fault
//! cannot push its frame there, so the CPU raises a double fault, whose IDT entry switches to the IST
//! stack from the TSS. Without that switch the machine would reset and QEMU (`-no-reboot`) would exit 0,
//! which the harness reports as a failure.
#![no_std]
#![no_main]

use zkernel::arch::gdt::{DOUBLE_FAULT_IST, ist_stack};
use zkernel::harness::fatal::{Expected, FatalReport};
use zkernel::harness::testing::Case;
use zkernel::init::facts;

zkernel::test_kernel!(
    "double_fault",
    &[Case::fatal("stack_overflow_lands_on_ist", overflow_the_stack, Expected::Exception(8), check)]
);

fn overflow_the_stack() {
    recurse(0);
}

#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    // A frame of 512 bytes that the optimiser cannot remove or turn into a loop.
    let frame = core::hint::black_box([depth; 64]);
    recurse(depth + 1) + core::hint::black_box(frame[7])
}

fn check(r: &FatalReport<'_>) -> Result<(), &'static str> {
    if !ist_stack(DOUBLE_FAULT_IST).contains(&r.handler_rsp) {
        return Err("the double-fault handler did not run on its IST stack");
    }
    if r.error_code != Some(0) {
        return Err("a double fault's error code is always 0");
    }
    // The interrupted code's stack pointer is at the bottom of the boot stack: it ran out.
    let bottom = facts().kernel_stack.start;
    if r.rsp > bottom + 4096 || r.rsp + 4096 < bottom {
        return Err("the interrupted RSP is not at the bottom of the boot stack");
    }
    zkernel::println!("stack overflow caught {} bytes from the stack bottom", r.rsp.abs_diff(bottom));
    Ok(())
}
