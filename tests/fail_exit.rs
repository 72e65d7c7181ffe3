//! Harness check: a kernel that writes the failure code (0x11, QEMU status 35) must be reported failed.
//!
//! `cargo xtask test` runs it as a check of the harness itself (it passes when the harness reports it
//! as "kernel reported failure"); `cargo xtask test --filter fail_exit` judges it like any test kernel
//! and so shows the failure.
#![no_std]
#![no_main]

use zkernel::harness::testing::Case;

zkernel::test_kernel!("fail_exit", &[Case::returns("asserts_something_false", asserts_something_false)]);

fn asserts_something_false() {
    assert_eq!(core::hint::black_box(1 + 1), 3, "this kernel fails on purpose");
}
