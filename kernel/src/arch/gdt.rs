//! Global descriptor table and task-state segment: the kernel's segments and its emergency stacks.
//!
//! # Why
//!
//! In 64-bit mode segments are nearly gone, but two things still need a GDT: the code segment the CPU
//! runs in (and returns to from an interrupt), and the TSS, whose *interrupt stack table* (IST) lists
//! known-good stacks the CPU switches to for chosen exceptions. Without one, a kernel stack overflow
//! faults on the guard page, the CPU cannot push the page-fault frame onto the same broken stack, raises
//! a double fault, fails to push that too, and triple-faults: the machine resets with no report.
//! With the double-fault handler on its own IST stack, the overflow is reported instead.
//!
//! # Layout
//!
//! | index | selector | descriptor |
//! |---|---|---|
//! | 0 | — | null |
//! | 1 | 0x08 | kernel code (64-bit) |
//! | 2 | 0x10 | kernel data (for SS/DS/ES) |
//! | 3–4 | 0x18 | TSS (a system descriptor takes two slots) |
//!
//! | IST slot | used by | size |
//! |---|---|---|
//! | [`DOUBLE_FAULT_IST`] | #DF, vector 8 | [`IST_STACK_SIZE`] |
//! | [`NMI_IST`] | NMI, vector 2 | [`IST_STACK_SIZE`] |
//! | [`MACHINE_CHECK_IST`] | #MC, vector 18 | [`IST_STACK_SIZE`] |
//!
//! At first the IST stacks are arrays in `.bss` (nothing else exists that early). Once memory
//! management runs, [`move_ist_stacks`] switches them to stacks from `mm::stack`, which have unmapped
//! guard pages on both sides, so even an overflow of an emergency stack faults instead of corrupting.
//!
//! # One GDT and TSS per CPU
//!
//! Every CPU has its own row in [`GDTS`] and [`TSSS`]: the TSS holds that CPU's IST stacks, and a TSS
//! descriptor may be loaded by one CPU only (`ltr` marks it busy). The boot CPU builds and loads row 0
//! in [`init`]; for an application processor the boot CPU builds row `n` with the AP's guard-paged IST
//! stacks ([`prepare`]) before it starts the AP, and the AP loads it ([`load`]) in its Rust entry.
//! [`current_tss`] reads back what the hardware uses (`sgdt` + `str`), so a test can check that each
//! CPU runs on its own TSS and IST stacks (tests/smp_boot.rs).

use core::cell::UnsafeCell;
use core::ops::Range;
use core::sync::atomic::{AtomicU64, Ordering};

use spin::Once;

use super::cpu::{self, MAX_CPUS};
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::registers::segmentation::SegmentSelector;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
use x86_64::structures::tss::TaskStateSegment;

/// IST slot of the double-fault handler.
pub const DOUBLE_FAULT_IST: u16 = 0;
/// IST slot of the NMI handler (an NMI can arrive at any instruction, even with a bad stack).
pub const NMI_IST: u16 = 1;
/// IST slot of the machine-check handler.
pub const MACHINE_CHECK_IST: u16 = 2;
/// Bytes in each IST stack: enough for the exception report's formatting.
pub const IST_STACK_SIZE: usize = 5 * 4096;

/// Memory for one IST stack. Only the CPU writes it (by switching RSP to its top), so the Rust side
/// never forms a reference to its contents.
#[repr(C, align(16))]
struct IstStack(UnsafeCell<[u8; IST_STACK_SIZE]>);

// SAFETY: the kernel only takes the stack's address; the bytes are used by the CPU as a stack, by the
// boot CPU alone (APs get guard-paged stacks from `mm::stack`).
unsafe impl Sync for IstStack {}

impl IstStack {
    const fn new() -> Self {
        Self(UnsafeCell::new([0; IST_STACK_SIZE]))
    }

    fn range(&self) -> Range<u64> {
        let bottom = self.0.get() as u64;
        bottom..bottom + IST_STACK_SIZE as u64
    }
}

static BOOT_IST_STACKS: [IstStack; 3] = [IstStack::new(), IstStack::new(), IstStack::new()];

/// The current `[bottom, top)` of each CPU's IST stacks (0..0 until set).
static IST_RANGES: [[[AtomicU64; 2]; 3]; MAX_CPUS] =
    [const { [const { [AtomicU64::new(0), AtomicU64::new(0)] }; 3] }; MAX_CPUS];

/// The addresses `[bottom, top)` of this CPU's IST stack `slot`: a handler can check it really runs there.
pub fn ist_stack(slot: u16) -> Range<u64> {
    ist_stack_of(cpu::id(), slot)
}

/// The addresses `[bottom, top)` of CPU `cpu`'s IST stack `slot`.
pub fn ist_stack_of(cpu: usize, slot: u16) -> Range<u64> {
    let r = &IST_RANGES[cpu][slot as usize];
    r[0].load(Ordering::SeqCst)..r[1].load(Ordering::SeqCst)
}

/// A TSS: the CPU reads it on every IST exception.
struct TssCell(UnsafeCell<TaskStateSegment>);

// SAFETY: each row is written only by `set_ist` (by the boot CPU before its owner runs, or by the owner
// with interrupts off) and read by the owning CPU's hardware.
unsafe impl Sync for TssCell {}

static TSSS: [TssCell; MAX_CPUS] = [const { TssCell(UnsafeCell::new(TaskStateSegment::new())) }; MAX_CPUS];

fn set_ist(cpu: usize, slot: u16, stack: Range<u64>) {
    let tss = TSSS[cpu].0.get();
    // SAFETY: the TSS is a static; the IST entries are plain addresses the CPU reads only when it
    // delivers an exception through an IST gate. Callers are the owning CPU with interrupts off, or the
    // boot CPU before the owner starts; the new stack is mapped, so a concurrent NMI sees either the old
    // or the new valid stack.
    unsafe {
        let entry = core::ptr::addr_of_mut!((*tss).interrupt_stack_table[slot as usize]);
        entry.write_unaligned(VirtAddr::new(stack.end));
    }
    IST_RANGES[cpu][slot as usize][0].store(stack.start, Ordering::SeqCst);
    IST_RANGES[cpu][slot as usize][1].store(stack.end, Ordering::SeqCst);
}

/// Switch this CPU's IST stacks to `stacks` (double fault, NMI, machine check), e.g. guard-paged stacks
/// from `mm::stack`. Each must be mapped and at least [`IST_STACK_SIZE`] bytes.
pub fn move_ist_stacks(stacks: [Range<u64>; 3]) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let cpu = cpu::id();
        for (slot, stack) in stacks.into_iter().enumerate() {
            set_ist(cpu, slot as u16, stack);
        }
    });
}

struct Selectors {
    code: SegmentSelector,
    data: SegmentSelector,
    tss: SegmentSelector,
}

static GDTS: [Once<(GlobalDescriptorTable, Selectors)>; MAX_CPUS] = [const { Once::new() }; MAX_CPUS];

fn build(cpu: usize) -> &'static (GlobalDescriptorTable, Selectors) {
    // SAFETY: the TSS is a static that lives forever; after this point it is only changed through
    // `set_ist`, which writes single IST entries the CPU reads on exception entry.
    let tss: &'static TaskStateSegment = unsafe { &*TSSS[cpu].0.get() };
    GDTS[cpu].call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss = gdt.append(Descriptor::tss_segment(tss));
        (gdt, Selectors { code, data, tss })
    })
}

/// Load CPU `cpu`'s GDT and TSS on the CPU running this, and reload the segment registers.
fn load_row(cpu: usize) {
    let (gdt, sel) = GDTS[cpu].get().expect("gdt: row loaded before it was built");
    gdt.load();
    // SAFETY: the selectors index descriptors of the GDT just loaded, which lives in a static for the
    // rest of the kernel's life: a 64-bit code segment for CS, a writable data segment for SS/DS/ES, and
    // an available TSS (this CPU's own row, loaded by no other CPU) whose IST stacks are mapped.
    unsafe {
        CS::set_reg(sel.code);
        SS::set_reg(sel.data);
        DS::set_reg(sel.data);
        ES::set_reg(sel.data);
        load_tss(sel.tss);
    }
}

/// Build and load the boot CPU's GDT and TSS, reload the segment registers. Call once, before the IDT.
pub fn init() {
    for slot in [DOUBLE_FAULT_IST, NMI_IST, MACHINE_CHECK_IST] {
        // Stacks grow down: the IST entry is the top (one past the highest byte).
        set_ist(0, slot, BOOT_IST_STACKS[slot as usize].range());
    }
    build(0);
    load_row(0);
}

/// On the boot CPU, before starting application processor `cpu`: give its TSS the IST stacks
/// `stacks` (double fault, NMI, machine check; mapped, guard-paged) and build its GDT.
pub fn prepare(cpu: usize, stacks: [Range<u64>; 3]) {
    assert!(cpu != 0 && cpu < MAX_CPUS, "gdt::prepare: {cpu} is not an application processor's index");
    for (slot, stack) in stacks.into_iter().enumerate() {
        set_ist(cpu, slot as u16, stack);
    }
    build(cpu);
}

/// On application processor `cpu`, first thing in its Rust entry: load the row [`prepare`] built.
pub fn load(cpu: usize) {
    load_row(cpu);
}

/// The address of CPU `cpu`'s TSS in the table.
pub fn tss_of(cpu: usize) -> u64 {
    TSSS[cpu].0.get() as u64
}

/// What the hardware of the CPU running this uses, read back with `sgdt` and `str`: the GDT's base, the
/// TSS's base (decoded from the descriptor TR selects) and the TSS's three IST tops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveTss {
    pub gdt: u64,
    pub tss: u64,
    pub ist_tops: [u64; 3],
}

/// Read [`LiveTss`] on this CPU.
pub fn current_tss() -> LiveTss {
    let gdtr = x86_64::instructions::tables::sgdt();
    let tr: u16;
    // SAFETY: `str` copies the task register's selector into a register; no memory is touched.
    unsafe { core::arch::asm!("str {0:x}", out(reg) tr, options(nomem, nostack, preserves_flags)) };
    let base = gdtr.base.as_u64();
    let index = u64::from(tr >> 3);
    assert!((index + 1) * 8 < u64::from(gdtr.limit) + 1, "TR selects beyond the GDT");
    // SAFETY: the GDT is loaded (its limit checked above) and lives in a static; a TSS descriptor
    // spans two 8-byte entries at `index`.
    let (low, high) = unsafe {
        let p = (base + index * 8) as *const u64;
        (p.read_volatile(), p.add(1).read_volatile())
    };
    let tss = ((low >> 16) & 0xff_ffff) | (((low >> 56) & 0xff) << 24) | ((high & 0xffff_ffff) << 32);
    let mut ist_tops = [0u64; 3];
    for (i, top) in ist_tops.iter_mut().enumerate() {
        // SAFETY: `tss` is the base of the TSS the CPU uses, a static `TaskStateSegment`; the IST table
        // starts at byte 36 (unaligned, hence the unaligned read).
        *top = unsafe { ((tss + 36 + 8 * i as u64) as *const u64).read_unaligned() };
    }
    LiveTss { gdt: base, tss, ist_tops }
}
