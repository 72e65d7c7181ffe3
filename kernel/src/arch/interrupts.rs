//! Interrupt descriptor table: a handler for every CPU exception.
//!
//! # Contract
//!
//! Every exception vector 0–31 that the CPU can raise has a handler. Four of them may return:
//!
//! * **#BP (3)**, `int3`: counted ([`breakpoints`]), logged, and execution continues after the `int3`.
//! * **#PF (14), not present**: first to the handler `init` registered ([`set_page_fault_handler`]:
//!   `mm::fault::dispatch`), which resolves it when a region owns the address (a swap-in, a zero fill).
//! * **#PF (14) and #GP (13) inside a probe** (`arch::probe`), when nothing resolved them: the faulting
//!   instruction is listed in the probe fixup table, so the handler records the fault and resumes at the
//!   probe's fixup — the same idea as Linux's exception tables behind `copy_from_user` and
//!   `get_kernel_nofault`. A #PF tries the region first, as Linux calls `handle_mm_fault` before
//!   `fixup_exception`.
//! * **NMI (2)** when it is a TLB shootdown request (`arch::tlb`).
//!
//! Every other exception is fatal: the registered fatal path ([`set_fatal_handler`]:
//! `harness::fatal::fatal`) prints a report (vector, mnemonic, error
//! code, RIP, RSP, and CR2 plus the decoded error code for a page fault) and exits QEMU with failure — or
//! with success when a test kernel declared that exact event as its expected outcome.
//!
//! Double fault, NMI and machine check run on their own IST stacks (see `arch::gdt`), so they are
//! reported even when the kernel stack is gone.
//!
//! Hardware interrupts stay disabled: the legacy PIC would deliver IRQs on vectors 8–15, on top of the
//! exceptions, so it is masked here, and device interrupts arrive with the LAPIC in a later layer.
//! The boot CPU keeps interrupts off. Parked application processors enable them only to sleep in `hlt`
//! until a wake-up IPI (`arch::smp`); the local APIC's vectors (`arch::apic`) have handlers here.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use spin::Once;
use x86_64::instructions::port::Port;
use x86_64::structures::idt::{InterruptDescriptorTable, InterruptStackFrame, PageFaultErrorCode};

use super::exceptions::{EXCEPTIONS, FatalKind, FatalReport};
use super::{apic, cpu, gdt, probe, smp, tlb};

static IDT: Once<InterruptDescriptorTable> = Once::new();
/// Where fatal events go: `harness::fatal::fatal`, set by `init` (arch does not depend on the harness).
static FATAL: Once<fn(&FatalReport<'_>) -> !> = Once::new();
/// Where not-present page faults go: `mm::fault::dispatch`, set by `init` (arch does not depend on mm).
static PAGE_FAULT: Once<fn(u64, bool) -> bool> = Once::new();

/// Send every fatal event to `handler` (once, at boot).
pub fn set_fatal_handler(handler: fn(&FatalReport<'_>) -> !) {
    FATAL.call_once(|| handler);
}

/// Send every not-present page fault that no probe claims to `handler(address, write)` (once, at boot).
pub fn set_page_fault_handler(handler: fn(u64, bool) -> bool) {
    PAGE_FAULT.call_once(|| handler);
}

/// Report a fatal event through the registered handler, or, before there is one, print it and exit.
pub fn fatal(report: &FatalReport<'_>) -> ! {
    match FATAL.get() {
        Some(handler) => handler(report),
        None => {
            log::error!("FATAL before the fatal path was installed: {:?} at RIP {:#x}", report.kind, report.rip);
            super::qemu::exit(super::qemu::ExitCode::Failed)
        }
    }
}
static BREAKPOINTS: AtomicU64 = AtomicU64::new(0);
/// A function the breakpoint handler runs (in interrupt context), for tests of interrupt-context code.
static BREAKPOINT_HOOK: AtomicUsize = AtomicUsize::new(0);

/// Have every `int3` run `hook` inside the handler (`None` removes it). Tests use this to run code in
/// interrupt context, e.g. a kmap while the interrupted code holds kmap slots.
pub fn set_breakpoint_hook(hook: Option<fn()>) {
    BREAKPOINT_HOOK.store(hook.map_or(0, |f| f as usize), Ordering::SeqCst);
}

/// How many `int3` breakpoints this kernel has taken and returned from.
pub fn breakpoints() -> u64 {
    BREAKPOINTS.load(Ordering::Relaxed)
}

fn report(vector: u8, frame: &InterruptStackFrame, error_code: Option<u64>, cr2: Option<u64>) -> FatalReport<'static> {
    let (mnemonic, name) = EXCEPTIONS.iter().find(|e| e.0 == vector).map_or(("#??", "reserved vector"), |e| (e.1, e.2));
    FatalReport {
        kind: FatalKind::Exception { vector, mnemonic, name },
        error_code,
        rip: frame.instruction_pointer.as_u64(),
        rsp: frame.stack_pointer.as_u64(),
        cr2,
        handler_rsp: cpu::stack_pointer(),
        cpu: cpu::id(),
        panic: None,
    }
}

/// Handlers for exceptions without an error code that are always fatal.
macro_rules! fatal_handler {
    ($name:ident, $vector:expr) => {
        extern "x86-interrupt" fn $name(frame: InterruptStackFrame) {
            fatal(&report($vector, &frame, None, None))
        }
    };
    ($name:ident, $vector:expr, error_code) => {
        extern "x86-interrupt" fn $name(frame: InterruptStackFrame, code: u64) {
            fatal(&report($vector, &frame, Some(code), None))
        }
    };
}

fatal_handler!(divide_error, 0);
fatal_handler!(debug, 1);
fatal_handler!(overflow, 4);
fatal_handler!(bound_range, 5);
fatal_handler!(invalid_opcode, 6);
fatal_handler!(device_not_available, 7);
fatal_handler!(invalid_tss, 10, error_code);
fatal_handler!(segment_not_present, 11, error_code);
fatal_handler!(stack_segment, 12, error_code);
fatal_handler!(x87_floating_point, 16);
fatal_handler!(alignment_check, 17, error_code);
fatal_handler!(simd_floating_point, 19);
fatal_handler!(virtualization, 20);
fatal_handler!(control_protection, 21, error_code);
fatal_handler!(hv_injection, 28);
fatal_handler!(vmm_communication, 29, error_code);
fatal_handler!(security, 30, error_code);

/// An NMI is a TLB shootdown request (`arch::tlb`) when one is pending for this CPU; otherwise fatal.
extern "x86-interrupt" fn nmi(frame: InterruptStackFrame) {
    if tlb::handle_nmi() {
        return;
    }
    fatal(&report(2, &frame, None, None))
}

extern "x86-interrupt" fn breakpoint(frame: InterruptStackFrame) {
    BREAKPOINTS.fetch_add(1, Ordering::Relaxed);
    let hook = BREAKPOINT_HOOK.load(Ordering::SeqCst);
    if hook != 0 {
        // SAFETY: the value was stored from a `fn()` by `set_breakpoint_hook` and is never anything else.
        let hook: fn() = unsafe { core::mem::transmute::<usize, fn()>(hook) };
        cpu::in_interrupt(hook);
    }
    log::debug!("#BP breakpoint at {:#x}, continuing", frame.instruction_pointer.as_u64());
}

extern "x86-interrupt" fn general_protection(mut frame: InterruptStackFrame, code: u64) {
    if probe::fixup(&mut frame, 13, code, None) {
        return;
    }
    fatal(&report(13, &frame, Some(code), None))
}

extern "x86-interrupt" fn page_fault(mut frame: InterruptStackFrame, code: PageFaultErrorCode) {
    let cr2 = cpu::cr2();
    // A not-present fault: mm's dispatcher hands it to the region that owns the address (demand paging
    // or a swap-in, kernel/src/swap). A protection fault is never a region's.
    let not_present = !code.contains(PageFaultErrorCode::PROTECTION_VIOLATION);
    let write = code.contains(PageFaultErrorCode::CAUSED_BY_WRITE);
    if not_present && PAGE_FAULT.get().is_some_and(|handler| handler(cr2, write)) {
        return;
    }
    // Nobody resolved it: a probe or a region copy resumes at its fixup (Linux: handle_mm_fault first,
    // then fixup_exception), anything else is fatal.
    if probe::fixup(&mut frame, 14, code.bits(), Some(cr2)) {
        return;
    }
    fatal(&report(14, &frame, Some(code.bits()), Some(cr2)))
}

extern "x86-interrupt" fn double_fault(frame: InterruptStackFrame, code: u64) -> ! {
    fatal(&report(8, &frame, Some(code), None))
}

extern "x86-interrupt" fn machine_check(frame: InterruptStackFrame) -> ! {
    fatal(&report(18, &frame, None, None))
}

/// The wake-up IPI (`arch::apic::WAKE_VECTOR`): the parked CPU's `hlt` returns; the park loop reads its
/// mailbox (`arch::smp`).
extern "x86-interrupt" fn wake(_frame: InterruptStackFrame) {
    smp::count_wakeup();
    apic::eoi();
}

/// The APIC timer (masked) and APIC error interrupts: acknowledged and otherwise ignored.
extern "x86-interrupt" fn apic_other(_frame: InterruptStackFrame) {
    apic::eoi();
}

/// A spurious interrupt: the architecture says no EOI.
extern "x86-interrupt" fn spurious(_frame: InterruptStackFrame) {}

fn build() -> InterruptDescriptorTable {
    let mut idt = InterruptDescriptorTable::new();
    idt[apic::WAKE_VECTOR].set_handler_fn(wake);
    idt[apic::TIMER_VECTOR].set_handler_fn(apic_other);
    idt[apic::ERROR_VECTOR].set_handler_fn(apic_other);
    idt[apic::SPURIOUS_VECTOR].set_handler_fn(spurious);
    idt.divide_error.set_handler_fn(divide_error);
    idt.debug.set_handler_fn(debug);
    idt.breakpoint.set_handler_fn(breakpoint);
    idt.overflow.set_handler_fn(overflow);
    idt.bound_range_exceeded.set_handler_fn(bound_range);
    idt.invalid_opcode.set_handler_fn(invalid_opcode);
    idt.device_not_available.set_handler_fn(device_not_available);
    idt.invalid_tss.set_handler_fn(invalid_tss);
    idt.segment_not_present.set_handler_fn(segment_not_present);
    idt.stack_segment_fault.set_handler_fn(stack_segment);
    idt.general_protection_fault.set_handler_fn(general_protection);
    idt.page_fault.set_handler_fn(page_fault);
    idt.x87_floating_point.set_handler_fn(x87_floating_point);
    idt.alignment_check.set_handler_fn(alignment_check);
    idt.simd_floating_point.set_handler_fn(simd_floating_point);
    idt.virtualization.set_handler_fn(virtualization);
    idt.cp_protection_exception.set_handler_fn(control_protection);
    idt.hv_injection_exception.set_handler_fn(hv_injection);
    idt.vmm_communication_exception.set_handler_fn(vmm_communication);
    idt.security_exception.set_handler_fn(security);
    // SAFETY: the IST slots name stacks that `gdt::init` installed in the loaded TSS, and
    // no other handler uses them, so these handlers never share a stack with the code they interrupt.
    unsafe {
        idt.double_fault.set_handler_fn(double_fault).set_stack_index(gdt::DOUBLE_FAULT_IST);
    }
    // SAFETY: as above, for the NMI stack.
    unsafe {
        idt.non_maskable_interrupt.set_handler_fn(nmi).set_stack_index(gdt::NMI_IST);
    }
    // SAFETY: as above, for the machine-check stack.
    unsafe {
        idt.machine_check.set_handler_fn(machine_check).set_stack_index(gdt::MACHINE_CHECK_IST);
    }
    idt
}

/// Mask both legacy 8259 PICs so no IRQ can ever arrive on an exception vector.
fn mask_legacy_pic() {
    let mut master = Port::<u8>::new(0x21);
    let mut slave = Port::<u8>::new(0xa1);
    // SAFETY: 0x21 and 0xa1 are the 8259 PICs' interrupt-mask registers; writing 0xff masks every IRQ
    // line and touches no memory.
    unsafe {
        master.write(0xff);
        slave.write(0xff);
    }
}

/// Build and load the IDT. Needs `gdt::init` first (the IST stacks).
pub fn init() {
    mask_legacy_pic();
    IDT.call_once(build).load();
}

/// Load the IDT [`init`] built on this CPU (an application processor; one IDT serves every CPU, the
/// IST indices name each CPU's own stacks through its own TSS).
pub fn load() {
    IDT.get().expect("interrupts::load before interrupts::init").load();
}
