//! The local APIC: each CPU's interrupt controller, used here to start the other CPUs and wake them.
//!
//! # Why
//!
//! Every x86 CPU has a local APIC. Software reaches another CPU only through it: an *inter-processor
//! interrupt* (IPI) is a write to the sender's interrupt command register (ICR) naming the target's
//! APIC id. The start-up sequence (INIT, then two STARTUPs, `arch::smp`) and the wake-up of a parked
//! CPU are IPIs. The register work is done by the `x2apic` crate; this file picks the mode, translates
//! ids between the two modes and keeps the vectors in one place.
//!
//! # Vocabulary and modes
//!
//! | mode | registers | APIC id in the ID register | ICR destination |
//! |---|---|---|---|
//! | xAPIC | 4 KiB of MMIO at the MADT's address, mapped uncached by `drivers::smp` | bits 24–31 | bits 56–63 |
//! | x2APIC | MSRs `0x800..` (no mapping) | the whole 32 bits | bits 32–63 |
//!
//! The `x2apic` crate picks x2APIC when CPUID.1:ECX bit 21 says the CPU has it, and xAPIC otherwise
//! (QEMU's TCG `qemu64` CPU of our machines: xAPIC). It writes the raw register values, so the shift of
//! the xAPIC columns is done here ([`id`], [`send_init`], …).
//!
//! | vector | what | handler |
//! |---|---|---|
//! | [`WAKE_VECTOR`] | wake a parked CPU (its mailbox has work) | `arch::interrupts`: EOI, return |
//! | [`TIMER_VECTOR`] | the APIC timer (masked; programmed by the crate's `enable`) | EOI, return |
//! | [`ERROR_VECTOR`] | APIC errors | EOI, return |
//! | [`SPURIOUS_VECTOR`] | spurious interrupts | return (no EOI, by the architecture) |
//!
//! Example: the boot CPU wakes CPU 2 (APIC id 2) in xAPIC mode: [`send_ipi`]`(2, WAKE_VECTOR)` writes
//! ICR high = `2 << 24`, ICR low = `0xf0` (fixed delivery, physical destination).
//!
//! # Contracts
//!
//! * [`set_xapic_base`] runs before the first use of the APIC on any CPU (xAPIC mode needs the mapping).
//! * Each CPU calls [`enable_local`] once before it sends or receives IPIs.
//! * A `LocalApic` value of the crate is built per call: it is `!Send`, the registers it reaches are the
//!   calling CPU's own, and building one touches no hardware.

use core::sync::atomic::{AtomicU64, Ordering};

use x2apic::lapic::{LocalApic, LocalApicBuilder};

/// Vector of the wake-up IPI.
pub const WAKE_VECTOR: u8 = 0xf0;
/// Vector of the (masked) APIC timer.
pub const TIMER_VECTOR: u8 = 0xf1;
/// Vector of APIC error interrupts.
pub const ERROR_VECTOR: u8 = 0xf2;
/// Vector of spurious interrupts.
pub const SPURIOUS_VECTOR: u8 = 0xff;

/// Virtual address of the xAPIC register page (0 until [`set_xapic_base`]).
static XAPIC_VA: AtomicU64 = AtomicU64::new(0);

/// Whether this CPU has an x2APIC (CPUID.1:ECX bit 21), the test the `x2apic` crate makes.
pub fn has_x2apic() -> bool {
    // CPUID leaf 1 exists on every x86_64 CPU; the instruction only writes registers.
    let leaf = core::arch::x86_64::__cpuid(1);
    leaf.ecx & (1 << 21) != 0
}

/// "x2APIC" or "xAPIC": the mode [`lapic`] uses.
pub fn mode_name() -> &'static str {
    if has_x2apic() { "x2APIC" } else { "xAPIC" }
}

/// Record where the xAPIC registers are mapped (uncached), for every CPU.
pub fn set_xapic_base(va: u64) {
    XAPIC_VA.store(va, Ordering::SeqCst);
}

fn lapic() -> LocalApic {
    LocalApicBuilder::new()
        .timer_vector(usize::from(TIMER_VECTOR))
        .error_vector(usize::from(ERROR_VECTOR))
        .spurious_vector(usize::from(SPURIOUS_VECTOR))
        .set_xapic_base(XAPIC_VA.load(Ordering::SeqCst))
        .build()
        .expect("apic: no xAPIC mapping and no x2APIC (set_xapic_base first)")
}

/// An APIC id as the ICR's destination field wants it.
fn dest(apic_id: u32) -> u32 {
    if has_x2apic() { apic_id } else { apic_id << 24 }
}

/// Enable this CPU's local APIC (x2APIC mode when present), with its timer masked and LINT0/1 masked.
pub fn enable_local() {
    let mut l = lapic();
    // SAFETY: the registers are this CPU's own (mapped by `set_xapic_base` in xAPIC mode). Enabling
    // masks the local interrupt pins; the timer the crate starts is masked again at once, and interrupts
    // are off here, so nothing is delivered before the handlers of `arch::interrupts` are loaded.
    unsafe {
        l.enable();
        l.disable_timer();
    }
}

/// This CPU's local APIC id, read from its own APIC.
pub fn id() -> u32 {
    // SAFETY: reading the ID register has no side effects.
    let raw = unsafe { lapic().id() };
    if has_x2apic() { raw } else { raw >> 24 }
}

/// Wait until the ICR has sent the last IPI (xAPIC's delivery-status bit; x2APIC writes complete at once).
fn wait_icr_idle(l: &LocalApic) {
    // SAFETY: reading the ICR has no side effects.
    while !has_x2apic() && unsafe { l.get_ipi_delivery_status() } {
        core::hint::spin_loop();
    }
}

/// Send an INIT IPI to `apic_id` (the first step of starting an application processor).
pub fn send_init(apic_id: u32) {
    let mut l = lapic();
    // SAFETY: INIT resets the target CPU to its wait-for-SIPI state; the caller targets an AP that runs
    // no kernel code yet (`arch::smp::start_ap`).
    unsafe { l.send_init_ipi(dest(apic_id)) };
    wait_icr_idle(&l);
}

/// Send a STARTUP IPI: `apic_id` starts in real mode at physical `page * 4096`.
pub fn send_startup(apic_id: u32, page: u8) {
    let mut l = lapic();
    // SAFETY: the target is in wait-for-SIPI (after `send_init`) and the caller placed the trampoline at
    // `page`.
    unsafe { l.send_sipi(page, dest(apic_id)) };
    wait_icr_idle(&l);
}

/// Send a fixed IPI with `vector` to `apic_id`.
pub fn send_ipi(apic_id: u32, vector: u8) {
    let mut l = lapic();
    // SAFETY: every vector sent has a handler in the shared IDT (`arch::interrupts`).
    unsafe { l.send_ipi(vector, dest(apic_id)) };
    wait_icr_idle(&l);
}

/// Send a non-maskable interrupt to `apic_id` (TLB shootdown, `arch::tlb`).
pub fn send_nmi(apic_id: u32) {
    let mut l = lapic();
    // SAFETY: the NMI handler (`arch::interrupts`) serves pending shootdowns and treats any other NMI
    // as fatal; the sender set up the request first.
    unsafe { l.send_nmi(dest(apic_id)) };
    wait_icr_idle(&l);
}

/// Signal end of interrupt to this CPU's APIC.
pub fn eoi() {
    let mut l = lapic();
    // SAFETY: called at the end of a handler of an APIC-delivered interrupt on this CPU.
    unsafe { l.end_of_interrupt() };
}
