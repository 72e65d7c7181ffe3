//! kmap: per-CPU temporary mappings, the only way the kernel reaches most physical frames.
//!
//! # Why
//!
//! zkernel maps no direct view of RAM (design.md), like a 32-bit Linux kernel with HIGHMEM. To touch a
//! frame — a page-table page, a pool page, a workload page — the kernel maps it for a moment into a slot
//! of a small per-CPU window, uses it, and unmaps it: Linux's `kmap_local_page()` / `kunmap_local()`.
//! zsmalloc's `zs_map_object` and zcache's page copies are built on exactly this.
//!
//! # Vocabulary and layout
//!
//! The window is one page-table page (PT) covering 2 MiB at [`KMAP_BASE`]; entry *i* maps slot *i*.
//! Entry 511 maps the PT page itself, so a slot's PTE is an ordinary memory word at
//! `KMAP_BASE + 511 * 4096 + 8 * i` (Linux keeps the same pointer, `kmap_pte`).
//!
//! | PT entries | use |
//! |---|---|
//! | `cpu * 24 + 0 .. cpu * 24 + 16` | CPU `cpu`'s task-context slot stack ([`TASK_SLOTS`]) |
//! | `cpu * 24 + 16 .. cpu * 24 + 24` | CPU `cpu`'s interrupt-context slot stack ([`IRQ_SLOTS`]) |
//! | 511 | the PT page itself |
//!
//! # Contract
//!
//! * [`kmap_local`] maps a frame in the next free slot of the current CPU and context and returns a
//!   [`Kmap`] guard; dropping the guard unmaps the slot and `invlpg`s it. Guards must drop in reverse
//!   order of creation (LIFO); dropping out of order is a kernel bug and panics.
//! * Code running in an interrupt or exception handler wraps its kmaps in [`in_interrupt`]: it gets
//!   the CPU's separate interrupt stack of slots, so it can never pop a slot the interrupted code holds.
//! * A full stack is [`KmapError::NoFreeSlot`], never a corruption. Mapping a frame that this CPU already
//!   has mapped is [`KmapError::AlreadyMapped`]: two live views of one frame would alias.
//! * `kmap_local` and `kmap_pair` are `unsafe`: the caller must own the frame (kmap cannot see the
//!   kernel's permanent mappings of heap, stack or page-table frames). Safe wrappers sit one level up:
//!   `mm::KernelMemory` for the pools, the page-table walker for its tables.
//! * Slot bookkeeping runs with interrupts off. NMI handlers must not kmap.
//! * [`kmap_pair`] maps two frames in two adjacent slots: an object that spans the end of one frame and
//!   the start of another (a zsmalloc object across two zspage frames) reads as one contiguous slice.
//!   That is zsmalloc's *page-table* method (`USE_PGTABLE_MAPPING`, used on ARM until Linux 5.8); x86
//!   Linux copies the two parts through a per-CPU buffer instead (`zsmalloc::SpanMap::Copy` here).
//! * A guard is bound to its CPU (not `Send`).
//!
//! With the `direct-map` feature (a measurement build only) the bootloader maps all of RAM and
//! [`kmap_local`] is just an address computation, so `cargo xtask bench` can show what the temporary
//! mappings cost. [`kmap_pair`] always uses the window: two frames are adjacent only there.

use core::marker::PhantomData;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use frame::Pfn;
use memmap::layout::KMAP_BASE;
use x86_64::VirtAddr;
use x86_64::structures::paging::{PageTable, PageTableFlags};

pub use crate::arch::cpu::MAX_CPUS;
/// Slots in each CPU's task-context stack.
pub const TASK_SLOTS: usize = 16;
/// Slots in each CPU's interrupt-context stack.
pub const IRQ_SLOTS: usize = 8;
const SLOTS_PER_CPU: usize = TASK_SLOTS + IRQ_SLOTS;
/// PT entry that maps the PT page itself.
pub const SELF_SLOT: usize = 511;
const _: () = assert!(MAX_CPUS * SLOTS_PER_CPU <= SELF_SLOT);

/// Why a frame could not be mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KmapError {
    /// Every slot of this CPU's stack (for the current context) is in use.
    NoFreeSlot,
    /// This CPU already has the frame mapped in another slot.
    AlreadyMapped(Pfn),
    /// `kmap_pair` was given the same frame twice.
    SameFrame(Pfn),
    /// kmap is used before `init` built the window.
    NotReady,
}

/// The slot stacks of one CPU.
struct CpuSlots {
    task_top: AtomicUsize,
    irq_top: AtomicUsize,
    /// Frame number + 1 mapped in each slot (0 = empty), for the alias check.
    mapped: [AtomicU64; SLOTS_PER_CPU],
}

impl CpuSlots {
    const fn new() -> Self {
        Self {
            task_top: AtomicUsize::new(0),
            irq_top: AtomicUsize::new(0),
            mapped: [const { AtomicU64::new(0) }; SLOTS_PER_CPU],
        }
    }
}

static CPUS: [CpuSlots; MAX_CPUS] = [const { CpuSlots::new() }; MAX_CPUS];
static READY: AtomicBool = AtomicBool::new(false);
static MAPS: AtomicU64 = AtomicU64::new(0);
static UNMAPS: AtomicU64 = AtomicU64::new(0);
static INVLPG: AtomicU64 = AtomicU64::new(0);
static MAX_DEPTH: AtomicUsize = AtomicUsize::new(0);
#[cfg(feature = "direct-map")]
static PHYS_OFFSET: AtomicU64 = AtomicU64::new(0);

/// kmap counters for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KmapStats {
    pub maps: u64,
    pub unmaps: u64,
    pub invlpg: u64,
    /// Deepest task-context nesting seen.
    pub max_depth: usize,
}

pub fn stats() -> KmapStats {
    KmapStats {
        maps: MAPS.load(Ordering::Relaxed),
        unmaps: UNMAPS.load(Ordering::Relaxed),
        invlpg: INVLPG.load(Ordering::Relaxed),
        max_depth: MAX_DEPTH.load(Ordering::Relaxed),
    }
}

pub use crate::arch::cpu::{id as cpu_id, in_interrupt};

fn slot_addr(slot: usize) -> u64 {
    KMAP_BASE + (slot as u64) * 4096
}

/// The PTE of `slot`, reached through the window's self-mapping.
fn pte(slot: usize) -> *mut u64 {
    (slot_addr(SELF_SLOT) + 8 * slot as u64) as *mut u64
}

/// Mark the window usable (`mm::init` calls this once the window's page table exists).
pub(super) fn set_ready() {
    READY.store(true, Ordering::SeqCst);
}

/// The direct-map build: where the bootloader mapped all of RAM.
#[cfg(feature = "direct-map")]
pub(super) fn set_phys_offset(offset: u64) {
    PHYS_OFFSET.store(offset, Ordering::SeqCst);
}

/// Reserve `n` slots on the current CPU's stack for this context; returns the first slot index.
/// Runs with interrupts off, so an interrupt cannot take the same slot between the check and the update.
fn push(n: usize, pfns: &[Pfn]) -> Result<(usize, bool), KmapError> {
    x86_64::instructions::interrupts::without_interrupts(|| push_locked(n, pfns))
}

fn push_locked(n: usize, pfns: &[Pfn]) -> Result<(usize, bool), KmapError> {
    if !READY.load(Ordering::Acquire) {
        return Err(KmapError::NotReady);
    }
    let cpu_index = cpu_id();
    let cpu = &CPUS[cpu_index];
    let irq = crate::arch::cpu::interrupt_depth() > 0;
    let (top, cap, base) = if irq {
        (&cpu.irq_top, IRQ_SLOTS, cpu_index * SLOTS_PER_CPU + TASK_SLOTS)
    } else {
        (&cpu.task_top, TASK_SLOTS, cpu_index * SLOTS_PER_CPU)
    };
    let t = top.load(Ordering::SeqCst);
    if t + n > cap {
        return Err(KmapError::NoFreeSlot);
    }
    for &pfn in pfns {
        if cpu.mapped.iter().any(|m| m.load(Ordering::Relaxed) == pfn.0 + 1) {
            return Err(KmapError::AlreadyMapped(pfn));
        }
    }
    for (i, &pfn) in pfns.iter().enumerate() {
        let local = base - cpu_index * SLOTS_PER_CPU + t + i;
        cpu.mapped[local].store(pfn.0 + 1, Ordering::Relaxed);
    }
    top.store(t + n, Ordering::SeqCst);
    if !irq {
        MAX_DEPTH.fetch_max(t + n, Ordering::Relaxed);
    }
    Ok((base + t, irq))
}

/// Release `n` slots starting at `first`; they must be the top of their stack.
fn pop(first: usize, n: usize, irq: bool) {
    x86_64::instructions::interrupts::without_interrupts(|| pop_locked(first, n, irq))
}

fn pop_locked(first: usize, n: usize, irq: bool) {
    let cpu_index = first / SLOTS_PER_CPU;
    let cpu = &CPUS[cpu_index];
    let (top, base) = if irq {
        (&cpu.irq_top, cpu_index * SLOTS_PER_CPU + TASK_SLOTS)
    } else {
        (&cpu.task_top, cpu_index * SLOTS_PER_CPU)
    };
    let t = top.load(Ordering::SeqCst);
    assert!(
        first + n == base + t,
        "kunmap out of LIFO order: slot {first} released while the stack top is slot {}",
        base + t
    );
    for i in 0..n {
        cpu.mapped[first - cpu_index * SLOTS_PER_CPU + i].store(0, Ordering::Relaxed);
    }
    top.store(t - n, Ordering::SeqCst);
}

fn map_slot(slot: usize, pfn: Pfn) -> u64 {
    // One PTE read, so checked in release builds too: a slot mapped twice is a kmap bug.
    // SAFETY: as below; reading the PTE of a slot reserved by `push`.
    assert_eq!(unsafe { pte(slot).read_volatile() }, 0, "kmap slot {slot} was not empty");
    let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE;
    // SAFETY: `pte(slot)` is a PTE of the kmap window's page table, reachable through its self-mapping
    // (set up by `mm::init` before READY); `push` reserved the slot for this caller alone. No TLB entry
    // can exist for a non-present PTE, so no flush is needed on the way in.
    unsafe { pte(slot).write_volatile(pfn.addr() | flags.bits()) };
    MAPS.fetch_add(1, Ordering::Relaxed);
    super::trace::kmapped(slot, pfn);
    slot_addr(slot)
}

fn unmap_slot(slot: usize) {
    // SAFETY: as in `map_slot`; the slot's guard is being dropped, so nothing uses the mapping any more.
    unsafe { pte(slot).write_volatile(0) };
    x86_64::instructions::tlb::flush(VirtAddr::new(slot_addr(slot)));
    UNMAPS.fetch_add(1, Ordering::Relaxed);
    INVLPG.fetch_add(1, Ordering::Relaxed);
}

/// A frame mapped in a kmap slot; unmapped on drop.
#[derive(Debug)]
pub struct Kmap {
    slot: usize,
    irq: bool,
    va: u64,
    pfn: Pfn,
    _not_send: PhantomData<*mut ()>,
}

/// Map `pfn` in the current CPU's next free slot.
///
/// # Safety
///
/// The caller owns the frame for the guard's lifetime: nothing else reads or writes its bytes (through
/// another mapping, the heap, a stack, a page table in use…). A frame the caller allocated and has not
/// mapped elsewhere qualifies. kmap itself refuses a second slot for the same frame on this CPU
/// ([`KmapError::AlreadyMapped`]), but it cannot see the kernel's permanent mappings.
pub unsafe fn kmap_local(pfn: Pfn) -> Result<Kmap, KmapError> {
    let (slot, irq) = push(1, &[pfn])?;
    #[cfg(not(feature = "direct-map"))]
    let va = map_slot(slot, pfn);
    #[cfg(feature = "direct-map")]
    let va = {
        MAPS.fetch_add(1, Ordering::Relaxed);
        PHYS_OFFSET.load(Ordering::Relaxed) + pfn.addr()
    };
    Ok(Kmap { slot, irq, va, pfn, _not_send: PhantomData })
}

impl Kmap {
    /// The virtual address of the mapping (valid until the guard drops).
    pub fn addr(&self) -> u64 {
        self.va
    }

    pub fn pfn(&self) -> Pfn {
        self.pfn
    }

    /// The frame's bytes.
    pub fn bytes(&mut self) -> &mut [u8; 4096] {
        // SAFETY: the slot maps `pfn` writable at `va` for as long as this guard lives; the guard is the
        // only view of the frame (the `kmap_local` contract, and `push` refuses a second slot) and
        // `&mut self` makes the returned reference exclusive and no longer-lived than the guard.
        unsafe { &mut *(self.va as *mut [u8; 4096]) }
    }

    /// The frame viewed as a page table (for the page-table walker).
    pub fn table(&mut self) -> &mut PageTable {
        // SAFETY: as in `bytes`; `PageTable` is 4096 bytes of plain `u64` entries, valid for any contents.
        unsafe { &mut *(self.va as *mut PageTable) }
    }
}

impl Drop for Kmap {
    fn drop(&mut self) {
        #[cfg(not(feature = "direct-map"))]
        unmap_slot(self.slot);
        #[cfg(feature = "direct-map")]
        UNMAPS.fetch_add(1, Ordering::Relaxed);
        pop(self.slot, 1, self.irq);
    }
}

/// Two frames mapped in two adjacent slots: `a`'s bytes followed by `b`'s.
#[derive(Debug)]
pub struct KmapPair {
    slot: usize,
    irq: bool,
    va: u64,
    _not_send: PhantomData<*mut ()>,
}

/// Map `a` and `b` so that they read as one contiguous 8192-byte slice.
///
/// # Safety
///
/// As for [`kmap_local`], for both frames.
pub unsafe fn kmap_pair(a: Pfn, b: Pfn) -> Result<KmapPair, KmapError> {
    if a == b {
        return Err(KmapError::SameFrame(a));
    }
    let (slot, irq) = push(2, &[a, b])?;
    let va = map_slot(slot, a);
    let vb = map_slot(slot + 1, b);
    assert_eq!(vb, va + 4096, "a kmap pair's slots are adjacent");
    Ok(KmapPair { slot, irq, va, _not_send: PhantomData })
}

impl KmapPair {
    pub fn addr(&self) -> u64 {
        self.va
    }

    /// Both frames' bytes, `a` first.
    pub fn bytes(&mut self) -> &mut [u8; 8192] {
        // SAFETY: slots `slot` and `slot + 1` are adjacent pages of the window mapping `a` and `b` for as
        // long as this guard lives, exclusively (see `Kmap::bytes`).
        unsafe { &mut *(self.va as *mut [u8; 8192]) }
    }
}

impl Drop for KmapPair {
    fn drop(&mut self) {
        unmap_slot(self.slot + 1);
        unmap_slot(self.slot);
        pop(self.slot, 2, self.irq);
    }
}
