//! An unexpected page fault is reported (vector, error code, RIP, CR2) and ends the kernel.
#![no_std]
#![no_main]

use zkernel::harness::fatal::{Expected, FatalKind, FatalReport};
use zkernel::harness::testing::Case;

/// A canonical lower-half address nothing maps.
const UNMAPPED: u64 = 0x0000_7fff_beef_0000;

zkernel::test_kernel!(
    "page_fault",
    &[Case::fatal("unmapped_write_is_reported", write_unmapped, Expected::Exception(14), check)]
);

fn write_unmapped() {
    // SAFETY: deliberately invalid: UNMAPPED is not mapped, so the write faults and writes nothing; the
    // page-fault handler ends the kernel and this function never continues.
    unsafe { core::ptr::write_volatile(UNMAPPED as *mut u64, 0xdead) };
}

fn check(r: &FatalReport<'_>) -> Result<(), &'static str> {
    match r.kind {
        FatalKind::Exception { vector: 14, mnemonic: "#PF", .. } => {}
        _ => return Err("not reported as #PF"),
    }
    if r.cr2 != Some(UNMAPPED) {
        return Err("CR2 is not the address written");
    }
    // Error code 2: page not present, write, kernel mode.
    if r.error_code != Some(2) {
        return Err("error code is not 'not-present write, kernel mode'");
    }
    let f = write_unmapped as fn() as usize as u64;
    if !(f..f + 256).contains(&r.rip) {
        return Err("RIP does not point into the faulting function");
    }
    Ok(())
}
