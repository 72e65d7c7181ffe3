//! Boot basics: the serial console, the heap, breakpoints, and faults caught by probes.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use zkernel::arch::interrupts::breakpoints;
use zkernel::arch::probe::{self, Fault};
use zkernel::drivers::console;
use zkernel::harness::testing::Case;
use zkernel::init::{KERNEL_BASE, facts};
use zkernel::mm::heap;

/// A canonical lower-half address nothing maps (the bootloader maps only the kernel's upper half and a
/// few identity-mapped pages below 4 GiB).
const UNMAPPED: u64 = 0x0000_7fff_dead_0000;
/// Bits 48..63 not a copy of bit 47: any access raises #GP, not #PF.
const NON_CANONICAL: u64 = 0x8000_0000_0000_0000;

zkernel::test_kernel!(
    "boot_basic",
    &[
        Case::returns("serial_works", serial_works),
        Case::returns("boot_facts_are_sane", boot_facts_are_sane),
        Case::returns("heap_allocation_works", heap_allocation_works),
        Case::returns("breakpoint_returns", breakpoint_returns),
        Case::returns("probe_reads_and_writes_mapped_memory", probe_reads_and_writes_mapped_memory),
        Case::returns("unmapped_read_is_caught", unmapped_read_is_caught),
        Case::returns("unmapped_write_is_caught", unmapped_write_is_caught),
        Case::returns("non_canonical_access_is_caught", non_canonical_access_is_caught),
    ]
);

fn serial_works() {
    // The harness also requires this kernel's case lines on the serial console to pass it at all.
    assert_eq!(console::self_test(), Ok(()));
    zkernel::println!("serial: COM1 answers");
}

fn boot_facts_are_sane() {
    let f = facts();
    assert_ne!(f.firmware, memmap::Firmware::Unknown);
    assert!(matches!(f.cpus, Some(n) if n >= 1), "cpus = {:?}", f.cpus);
    assert!(f.memory.usable_regions >= 1 && f.memory.regions > f.memory.usable_regions);
    // xtask boots test kernels with 256 MiB; at least 200 MiB of it must be usable.
    assert!(f.memory.usable_mib() >= 200, "usable {} MiB", f.memory.usable_mib());
    assert_eq!(f.kernel_image.start, KERNEL_BASE);
    assert!(f.kernel_stack.contains(&zkernel::arch::cpu::stack_pointer()), "running on the boot stack");
}

fn heap_allocation_works() {
    let before = heap::stats();
    let boxed = Box::new(0x5eed_u64);
    let v: Vec<u64> = (0..10_000).collect();
    let mut s = String::new();
    write!(s, "{} {}", *boxed, v.len()).unwrap();
    assert_eq!(s, "24301 10000");
    assert_eq!(v.iter().sum::<u64>(), 49_995_000);
    let during = heap::stats();
    assert!(during.used >= before.used + 10_000 * 8, "{before:?} -> {during:?}");
    drop((boxed, v, s));
    assert_eq!(heap::stats().used, before.used, "every byte returned");
}

fn breakpoint_returns() {
    let before = breakpoints();
    x86_64::instructions::interrupts::int3();
    x86_64::instructions::interrupts::int3();
    assert_eq!(breakpoints(), before + 2);
}

fn probe_reads_and_writes_mapped_memory() {
    let mut word: u64 = 0x1122_3344_5566_7788;
    let addr = core::ptr::addr_of_mut!(word) as u64;
    // SAFETY: `word` is a live, aligned local this function owns.
    assert_eq!(unsafe { probe::read_u64(addr) }, Ok(0x1122_3344_5566_7788));
    // SAFETY: as above.
    assert_eq!(unsafe { probe::write_u64(addr, 42) }, Ok(()));
    assert_eq!(core::hint::black_box(word), 42);
}

fn unmapped_read_is_caught() {
    // SAFETY: nothing is mapped at UNMAPPED, so no memory is read; the fault is the point.
    let r = unsafe { probe::read_u64(UNMAPPED) };
    // Error code 0: page not present, read, kernel mode.
    assert_eq!(r, Err(Fault { vector: 14, error_code: 0, address: Some(UNMAPPED) }));
}

fn unmapped_write_is_caught() {
    // SAFETY: nothing is mapped at UNMAPPED, so nothing is written.
    let r = unsafe { probe::write_u64(UNMAPPED + 8, 1) };
    // Error code 2: page not present, write, kernel mode.
    assert_eq!(r, Err(Fault { vector: 14, error_code: 2, address: Some(UNMAPPED + 8) }));
}

fn non_canonical_access_is_caught() {
    // SAFETY: a non-canonical address can never be accessed; the CPU raises #GP before any access.
    let r = unsafe { probe::read_u64(NON_CANONICAL) };
    assert_eq!(r, Err(Fault { vector: 13, error_code: 0, address: None }));
}
