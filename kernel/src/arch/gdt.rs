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
//! Per-CPU copies (one TSS and set of IST stacks per CPU) come with SMP; today only the boot CPU runs.

use core::cell::UnsafeCell;
use core::ops::Range;

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

static IST_STACKS: [IstStack; 3] = [IstStack::new(), IstStack::new(), IstStack::new()];

/// The addresses `[bottom, top)` of IST stack `slot`: a handler can check it really runs there.
pub fn ist_stack(slot: u16) -> Range<u64> {
    IST_STACKS[slot as usize].range()
}

struct Selectors {
    code: SegmentSelector,
    data: SegmentSelector,
    tss: SegmentSelector,
}

static TSS: Once<TaskStateSegment> = Once::new();
static GDT: Once<(GlobalDescriptorTable, Selectors)> = Once::new();

/// Build and load the GDT and TSS, reload the segment registers. Call once, before the IDT.
pub fn init() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        for slot in [DOUBLE_FAULT_IST, NMI_IST, MACHINE_CHECK_IST] {
            // Stacks grow down: the IST entry is the top (one past the highest byte).
            tss.interrupt_stack_table[slot as usize] = VirtAddr::new(ist_stack(slot).end);
        }
        tss
    });
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
