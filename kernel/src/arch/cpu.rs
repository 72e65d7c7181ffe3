//! Small CPU helpers: which CPU this is, interrupt context, halting, the stack pointer and control
//! registers.
//!
//! # Which CPU is this: the per-CPU area
//!
//! Every CPU has a [`PerCpu`] area, one row of the static [`AREAS`] table, and its GS base register
//! (MSR `IA32_GS_BASE`) points at its own row. Reading a field is one instruction, `mov rax, gs:[OFF]`:
//! no lock, no table lookup, and no way to read another CPU's row by mistake. The boot CPU installs
//! row 0 as the very first step of `init::init` ([`install_boot`]); each application processor installs
//! its row as the first thing its Rust entry does (`arch::smp`).
//!
//! | offset | field | written by |
//! |---|---|---|
//! | 0 | `this`: the area's own address (a check that GS is set) | [`install`] |
//! | 8 | `id`: the CPU's index, `0..MAX_CPUS` (0 = boot CPU) | [`install`] |
//! | 16 | `apic_id`: the local APIC id the CPU reads from its own APIC | `arch::smp` |
//!
//! Example: on CPU 2, GS base is `&AREAS[2]`, so `id()` executes `mov rax, gs:[8]` and returns 2.
//!
//! Contract: nothing may call [`id`] before [`install_boot`] ran (GS base is 0 then, and `gs:[8]` would
//! read address 8, which is unmapped).

use core::arch::asm;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Most CPUs zkernel supports; per-CPU tables (kmap slots, frame lists, compression streams) have this
/// many rows.
pub const MAX_CPUS: usize = 16;

/// One CPU's area, reached through its GS base (see the module header for the layout).
#[repr(C, align(64))]
#[derive(Debug)]
pub struct PerCpu {
    this: AtomicU64,
    id: AtomicU64,
    apic_id: AtomicU64,
}

const OFF_THIS: usize = 0;
const OFF_ID: usize = 8;
const _: () = assert!(core::mem::offset_of!(PerCpu, this) == OFF_THIS && core::mem::offset_of!(PerCpu, id) == OFF_ID);

/// The per-CPU areas, one row per CPU (cache-line aligned, so two CPUs never share a line of them).
static AREAS: [PerCpu; MAX_CPUS] =
    [const { PerCpu { this: AtomicU64::new(0), id: AtomicU64::new(0), apic_id: AtomicU64::new(u64::MAX) } }; MAX_CPUS];

/// `IA32_GS_BASE`.
const GS_BASE_MSR: u32 = 0xc000_0101;

/// Point this CPU's GS base at row `cpu` of the per-CPU areas. Called once per CPU, first thing.
pub fn install(cpu: usize) {
    assert!(cpu < MAX_CPUS, "cpu index {cpu} beyond MAX_CPUS");
    let area = &AREAS[cpu];
    let addr = area as *const PerCpu as u64;
    area.this.store(addr, Ordering::SeqCst);
    area.id.store(cpu as u64, Ordering::SeqCst);
    let mut msr = x86_64::registers::model_specific::Msr::new(GS_BASE_MSR);
    // SAFETY: IA32_GS_BASE only changes what `gs:`-prefixed accesses address; zkernel uses GS for
    // nothing but the per-CPU area, and `addr` is a static that lives forever.
    unsafe { msr.write(addr) };
}

/// The boot CPU's [`install`]: row 0. `init::init` calls it before anything else.
pub fn install_boot() {
    install(0);
}

/// The CPU running this code, `0..MAX_CPUS`: one load through GS from this CPU's own area.
#[inline(always)]
pub fn id() -> usize {
    let id: u64;
    // SAFETY: GS base points at this CPU's `PerCpu` row (installed before any caller runs, module
    // contract); offset 8 is its `id` field, a u64 only `install` writes.
    unsafe { asm!("mov {}, gs:[{off}]", out(reg) id, off = const OFF_ID, options(nostack, readonly, preserves_flags)) };
    id as usize
}

/// The address of this CPU's per-CPU area, read through GS (tests compare it between CPUs).
pub fn area_addr() -> u64 {
    let this: u64;
    // SAFETY: as in `id`, for the `this` field at offset 0.
    unsafe {
        asm!("mov {}, gs:[{off}]", out(reg) this, off = const OFF_THIS, options(nostack, readonly, preserves_flags))
    };
    this
}

/// The address of CPU `cpu`'s area in the table (what its GS base must hold).
pub fn area_of(cpu: usize) -> u64 {
    &AREAS[cpu] as *const PerCpu as u64
}

/// Record the local APIC id this CPU read from its own APIC.
pub fn set_apic_id(apic_id: u32) {
    AREAS[id()].apic_id.store(u64::from(apic_id), Ordering::SeqCst);
}

/// The local APIC id CPU `cpu` recorded (`None` before it came up).
pub fn apic_id_of(cpu: usize) -> Option<u32> {
    let v = AREAS.get(cpu)?.apic_id.load(Ordering::SeqCst);
    (v != u64::MAX).then_some(v as u32)
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
