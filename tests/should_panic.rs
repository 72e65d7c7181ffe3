//! A panic is reported with its location and message, and ends the kernel (passes only if it panics).
#![no_std]
#![no_main]

extern crate alloc;

use zkernel::harness::fatal::{Expected, FatalReport};
use zkernel::harness::testing::Case;

zkernel::test_kernel!("should_panic", &[Case::fatal("panic_is_reported", panics, Expected::Panic, check)]);

fn panics() {
    let answer = core::hint::black_box(41);
    assert_eq!(answer, 42, "expected panic: the answer is off by one");
}

fn check(r: &FatalReport<'_>) -> Result<(), &'static str> {
    let info = r.panic.ok_or("no panic info")?;
    let loc = info.location().ok_or("panic without a location")?;
    if !loc.file().ends_with("should_panic.rs") {
        return Err("panic location is not in should_panic.rs");
    }
    let message = alloc::format!("{}", info.message());
    if message.contains("the answer is off by one") { Ok(()) } else { Err("panic message lost") }
}
