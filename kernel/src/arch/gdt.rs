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
//! Per-CPU copies (one TSS and set of IST stacks per CPU) come with SMP; today only the boot CPU runs.

use core::cell::UnsafeCell;
use core::ops::Range;
use core::sync::atomic::{AtomicU64, Ordering};

use spin::Once;
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

// SAFETY: the kernel only takes the stack's address; the bytes are used by the CPU as a stack, by one CPU
// (the boot CPU) at a time.
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

/// The current `[bottom, top)` of each IST stack (0..0 until `init`).
static IST_RANGES: [[AtomicU64; 2]; 3] = [const { [AtomicU64::new(0), AtomicU64::new(0)] }; 3];

/// The addresses `[bottom, top)` of IST stack `slot`: a handler can check it really runs there.
pub fn ist_stack(slot: u16) -> Range<u64> {
    let r = &IST_RANGES[slot as usize];
    r[0].load(Ordering::SeqCst)..r[1].load(Ordering::SeqCst)
}

/// The TSS: the CPU reads it on every IST exception, and [`move_ist_stacks`] updates it once.
struct TssCell(UnsafeCell<TaskStateSegment>);

// SAFETY: written only by `init` (before the TSS is loaded) and `move_ist_stacks` (boot CPU, interrupts
// off); read by the CPU.
unsafe impl Sync for TssCell {}

static TSS: TssCell = TssCell(UnsafeCell::new(TaskStateSegment::new()));

fn set_ist(slot: u16, stack: Range<u64>) {
    let tss = TSS.0.get();
    // SAFETY: the TSS is a static; the IST entries are plain addresses the CPU reads only when it
    // delivers an exception through an IST gate. Callers run on the boot CPU with interrupts off, and
    // the new stack is mapped, so a concurrent NMI sees either the old or the new valid stack.
    unsafe {
        let entry = core::ptr::addr_of_mut!((*tss).interrupt_stack_table[slot as usize]);
        entry.write_unaligned(VirtAddr::new(stack.end));
    }
    IST_RANGES[slot as usize][0].store(stack.start, Ordering::SeqCst);
    IST_RANGES[slot as usize][1].store(stack.end, Ordering::SeqCst);
}

/// Switch the IST stacks to `stacks` (double fault, NMI, machine check), e.g. guard-paged stacks from
/// `mm::stack`. Each must be mapped and at least [`IST_STACK_SIZE`] bytes.
pub fn move_ist_stacks(stacks: [Range<u64>; 3]) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        for (slot, stack) in stacks.into_iter().enumerate() {
            set_ist(slot as u16, stack);
        }
    });
}

struct Selectors {
    code: SegmentSelector,
    data: SegmentSelector,
    tss: SegmentSelector,
}

static GDT: Once<(GlobalDescriptorTable, Selectors)> = Once::new();

/// Build and load the GDT and TSS, reload the segment registers. Call once, before the IDT.
pub fn init() {
    for slot in [DOUBLE_FAULT_IST, NMI_IST, MACHINE_CHECK_IST] {
        // Stacks grow down: the IST entry is the top (one past the highest byte).
        set_ist(slot, BOOT_IST_STACKS[slot as usize].range());
    }
    // SAFETY: the TSS is a static that lives forever; after this point it is only changed through
    // `set_ist`, which writes single IST entries the CPU reads on exception entry.
    let tss: &'static TaskStateSegment = unsafe { &*TSS.0.get() };
    let (gdt, sel) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss = gdt.append(Descriptor::tss_segment(tss));
        (gdt, Selectors { code, data, tss })
    });
    gdt.load();
    // SAFETY: the selectors index descriptors of the GDT just loaded, which lives in a static for the
    // rest of the kernel's life: a 64-bit code segment for CS, a writable data segment for SS/DS/ES, and
    // an available TSS whose IST stacks are statics too.
    unsafe {
        CS::set_reg(sel.code);
        SS::set_reg(sel.data);
        DS::set_reg(sel.data);
        ES::set_reg(sel.data);
        load_tss(sel.tss);
    }
}
