//! Small CPU helpers: which CPU this is, interrupt context, halting, the stack pointer and control
//! registers.

use core::arch::asm;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Most CPUs zkernel supports; per-CPU tables (kmap slots, frame lists, compression streams) have this
/// many rows.
pub const MAX_CPUS: usize = 16;

/// The CPU running this code, `0..MAX_CPUS`. Only the boot CPU runs until SMP bring-up; then this reads
/// the per-CPU area.
pub fn id() -> usize {
    0
}

/// How deep each CPU is in interrupt or exception handlers that declared themselves ([`in_interrupt`]).
static IRQ_DEPTH: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];

/// Run `f` as interrupt context on this CPU: code that must behave differently there (kmap takes its
/// slots from the CPU's interrupt stack of slots) asks [`interrupt_depth`]. Exception and interrupt
/// handlers that touch frames call this.
pub fn in_interrupt<R>(f: impl FnOnce() -> R) -> R {
    let depth = &IRQ_DEPTH[id()];
    depth.fetch_add(1, Ordering::SeqCst);
    let r = f();
    depth.fetch_sub(1, Ordering::SeqCst);
    r
}

/// How many [`in_interrupt`] scopes this CPU is inside now (0: task context).
pub fn interrupt_depth() -> usize {
    IRQ_DEPTH[id()].load(Ordering::SeqCst)
}

/// Stop this CPU for good: interrupts off, `hlt` forever.
pub fn halt_forever() -> ! {
    x86_64::instructions::interrupts::disable();
    loop {
        x86_64::instructions::hlt();
    }
}

/// The current stack pointer (to tell which stack a handler runs on).
#[inline(always)]
pub fn stack_pointer() -> u64 {
    let rsp: u64;
    // SAFETY: reading RSP into a register has no side effects and touches no memory.
    unsafe { asm!("mov {}, rsp", out(reg) rsp, options(nomem, nostack, preserves_flags)) };
    rsp
}

/// CR2: the linear address of the last page fault.
pub fn cr2() -> u64 {
    x86_64::registers::control::Cr2::read_raw()
}

/// Reset the machine the hard way, with a triple fault (Linux's `reboot=t`): load an empty IDT and
/// raise an exception. The CPU cannot deliver it, nor the double fault that follows, and shuts down;
/// QEMU started with `-no-reboot` then exits with status 0. The harness check `fail_no_exit` uses it
/// to prove that a kernel which never writes an exit code is reported as failed.
pub fn triple_fault() -> ! {
    use x86_64::VirtAddr;
    use x86_64::structures::DescriptorTablePointer;
    let empty = DescriptorTablePointer { limit: 0, base: VirtAddr::new(0) };
    // SAFETY: deliberately invalid: after this no interrupt or exception can be delivered, and the
    // int3 below resets the CPU. Nothing runs afterwards that could rely on the old IDT.
    unsafe {
        x86_64::instructions::tables::lidt(&empty);
        asm!("int3", options(nomem, nostack));
    }
    halt_forever()
}
