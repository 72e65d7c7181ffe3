//! Paging: zkernel's own walker and mapper over the x86_64 four-level page tables.
//!
//! # Layout (Intel SDM vol. 3, 4.5)
//!
//! ```text
//!  63     48 47    39 38    30 29    21 20    12 11         0
//! +---------+--------+--------+--------+--------+------------+
//! | sign ext| PML4 i | PDPT i |  PD i  |  PT i  |   offset   |   virtual address
//! +---------+--------+--------+--------+--------+------------+
//!
//!  63  62    52 51                    12 11  9 8 7 6 5 4 3 2 1 0
//! +--+--------+------------------------+-----+-+-+-+-+-+-+-+-+-+
//! |NX| avail  |   physical frame       |avail|G|H|D|A|C|W|U|W|P|   entry (H = huge page)
//! +--+--------+------------------------+-----+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Every table is one frame. With no direct map, the walker reaches each table frame through a kmap
//! slot: map it, read or write one entry, unmap, descend. New tables come from a [`TableFrames`]
//! source (the early allocator during boot, the buddy allocator after) and are zeroed through kmap.
//!
//! # Contract
//!
//! * All calls act on the active address space (CR3) and 4 KiB pages.
//! * [`map`] refuses to replace a present mapping ([`MapError::AlreadyMapped`]); change one with
//!   [`set_flags`] or [`unmap`] it first.
//! * Only the lower half and the stacks, heap and I/O regions can be changed here; the kernel image, the
//!   kmap window, the frame table and the bootloader's mappings are [`MapError::Reserved`].
//! * `map`, `unmap` and `set_flags` are `unsafe`: a mapping is a claim on a frame and an address
//!   range, which the caller must own. Changes are serialised by a lock taken with interrupts off.
//! * Every change is followed by `invlpg` of that page (counted in [`stats`]). A change that removes
//!   a mapping or a right (`unmap`, `set_flags`, `write_leaf` over a present entry) is also shot down
//!   on the other CPUs that may cache it (`arch::tlb`, an NMI each) before the call returns, so the
//!   caller may reuse the frame at once. kmap slots are per-CPU and need none (`mm::kmap`).
//! * A walk that meets a huge page stops with [`MapError::HugePage`]: zkernel's regions never use them.
//! * Unmapping leaves empty intermediate tables in place (they are reused by the next mapping there).
//! * [`read_leaf`] / [`write_leaf`] read and replace a leaf entry as a typed [`Pte`], present or not:
//!   the swap subsystem keeps swap entries in non-present PTEs (`kernel/src/swap`), through the safe
//!   [`super::region::Region`] API. [`test_and_clear_accessed`] is the clock's look at a page's accessed
//!   bit.

use core::sync::atomic::{AtomicU64, Ordering};

use frame::{FrameError, Pfn};
use x86_64::VirtAddr;
use x86_64::registers::control::Cr3;
use x86_64::structures::paging::PageTableFlags;
use x86_64::structures::paging::page_table::PageTableEntry;

use crate::arch::lock::Lock;
use memmap::layout::{DYNAMIC_BASE, HEAP_BASE, STACKS_BASE, pml4_index};
use x86_64::instructions::interrupts::without_interrupts;

use super::kmap::{self, Kmap, KmapError};

/// Why a mapping operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// The page is already mapped (to this frame).
    AlreadyMapped { va: u64, pfn: Pfn },
    /// Nothing is mapped at this page.
    NotMapped(u64),
    /// The walk met a 2 MiB or 1 GiB page.
    HugePage(u64),
    /// Not a canonical address, or not 4 KiB aligned.
    BadAddress(u64),
    /// An address in a region the kernel manages itself (kernel image, kmap window, frame table,
    /// bootloader mappings): only the lower half, the stacks, heap and I/O regions go through here.
    Reserved(u64),
    /// No frame for a new page table.
    OutOfFrames(FrameError),
    /// No kmap slot to reach a table.
    Kmap(KmapError),
}

impl From<KmapError> for MapError {
    fn from(e: KmapError) -> Self {
        MapError::Kmap(e)
    }
}

/// Where new page-table frames come from.
pub trait TableFrames {
    fn alloc_table(&mut self) -> Result<Pfn, FrameError>;
}

static MAPS: AtomicU64 = AtomicU64::new(0);
static UNMAPS: AtomicU64 = AtomicU64::new(0);
static INVLPG: AtomicU64 = AtomicU64::new(0);
static TABLES: AtomicU64 = AtomicU64::new(0);

/// Paging counters for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PagingStats {
    pub maps: u64,
    pub unmaps: u64,
    pub invlpg: u64,
    /// Page-table frames this walker allocated.
    pub tables: u64,
}

pub fn stats() -> PagingStats {
    PagingStats {
        maps: MAPS.load(Ordering::Relaxed),
        unmaps: UNMAPS.load(Ordering::Relaxed),
        invlpg: INVLPG.load(Ordering::Relaxed),
        tables: TABLES.load(Ordering::Relaxed),
    }
}

/// The index of `va` in the table of `level` (4 = PML4 … 1 = PT).
pub const fn index(va: u64, level: u32) -> usize {
    ((va >> (12 + 9 * (level - 1))) & 511) as usize
}

/// The frame of the active PML4.
pub fn pml4() -> Pfn {
    Pfn::from_addr(Cr3::read().0.start_address().as_u64())
}

fn check(va: u64) -> Result<(), MapError> {
    if VirtAddr::try_new(va).is_err() || va % 4096 != 0 {
        return Err(MapError::BadAddress(va));
    }
    let slot = pml4_index(va);
    // The I/O region (DMA buffers and PCI BAR windows, `drivers::virtio_hal`) is mapped here too.
    let io = slot == pml4_index(memmap::layout::IO_BASE);
    let open = va < DYNAMIC_BASE || slot == pml4_index(STACKS_BASE) || slot == pml4_index(HEAP_BASE) || io;
    if open { Ok(()) } else { Err(MapError::Reserved(va)) }
}

/// Serialises page-table changes; taken with interrupts off, so no interrupt handler can walk the
/// tables half-way through a change (and handlers that would need it must not run with it held).
static LOCK: Lock<()> = Lock::new("paging", 50, ());

/// The page-table lock's counters.
pub fn lock_stats() -> crate::arch::lock::LockStats {
    LOCK.stats()
}

fn locked<R>(f: impl FnOnce() -> R) -> R {
    without_interrupts(|| {
        let _guard = LOCK.lock();
        f()
    })
}

fn entry_pfn(raw: u64) -> Pfn {
    Pfn::from_addr(raw & 0x000f_ffff_ffff_f000)
}

/// Map a page-table frame. Page-table frames belong to this module and are only touched under `LOCK`
/// (or by `mm::init` before anything else runs), so the mapping is the only view of the frame.
fn map_table(pfn: Pfn) -> Result<Kmap, MapError> {
    // SAFETY: see above: the walker owns every page-table frame it maps, one view at a time.
    Ok(unsafe { kmap::kmap_local(pfn) }?)
}

/// Zero a fresh table frame through kmap.
fn zero_table(pfn: Pfn) -> Result<(), MapError> {
    map_table(pfn)?.bytes().fill(0);
    Ok(())
}

/// Walk from the PML4 to the PT that maps `va`, creating missing tables when `frames` is given.
fn walk(va: u64, mut frames: Option<&mut dyn TableFrames>) -> Result<Pfn, MapError> {
    let mut table = pml4();
    for level in [4, 3, 2] {
        let mut g = map_table(table)?;
        let e = &mut g.table()[index(va, level)];
        let flags = e.flags();
        if flags.contains(PageTableFlags::PRESENT) {
            if flags.contains(PageTableFlags::HUGE_PAGE) {
                return Err(MapError::HugePage(va));
            }
            table = entry_pfn(e.addr().as_u64());
            continue;
        }
        let Some(source) = frames.as_deref_mut() else { return Err(MapError::NotMapped(va)) };
        let new = source.alloc_table().map_err(MapError::OutOfFrames)?;
        zero_table(new)?;
        let e = &mut g.table()[index(va, level)];
        e.set_addr(x86_64::PhysAddr::new(new.addr()), PageTableFlags::PRESENT | PageTableFlags::WRITABLE);
        TABLES.fetch_add(1, Ordering::Relaxed);
        table = new;
    }
    Ok(table)
}

fn invlpg(va: u64) {
    x86_64::instructions::tlb::flush(VirtAddr::new(va));
    INVLPG.fetch_add(1, Ordering::Relaxed);
}

/// Map the 4 KiB page at `va` to `pfn` with `flags` (PRESENT is added).
///
/// # Safety
///
/// The caller owns `pfn` (nothing else reads or writes it, and it is not freed while mapped) and the
/// address range of `va` (nothing else maps or uses that page).
pub unsafe fn map(va: u64, pfn: Pfn, flags: PageTableFlags, frames: &mut dyn TableFrames) -> Result<(), MapError> {
    check(va)?;
    // SAFETY: forwarded from the caller.
    unsafe { map_unchecked(va, pfn, flags, frames) }
}

/// [`map`] without the region check, for `mm::init` mapping the frame table.
///
/// # Safety
///
/// As for [`map`].
pub(super) unsafe fn map_unchecked(
    va: u64,
    pfn: Pfn,
    flags: PageTableFlags,
    frames: &mut dyn TableFrames,
) -> Result<(), MapError> {
    locked(|| map_locked(va, pfn, flags, frames))
}

fn map_locked(va: u64, pfn: Pfn, flags: PageTableFlags, frames: &mut dyn TableFrames) -> Result<(), MapError> {
    let pt = walk(va, Some(frames))?;
    let mut g = map_table(pt)?;
    let e = &mut g.table()[index(va, 1)];
    if e.flags().contains(PageTableFlags::PRESENT) {
        return Err(MapError::AlreadyMapped { va, pfn: entry_pfn(e.addr().as_u64()) });
    }
    e.set_addr(x86_64::PhysAddr::new(pfn.addr()), flags | PageTableFlags::PRESENT);
    drop(g);
    invlpg(va);
    MAPS.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Run `f` on the PT entry of `va`'s page, which must be present.
fn with_present_leaf<R>(va: u64, f: impl FnOnce(&mut PageTableEntry) -> R) -> Result<R, MapError> {
    let pt = walk(va, None)?;
    let mut g = map_table(pt)?;
    let e = &mut g.table()[index(va, 1)];
    if !e.flags().contains(PageTableFlags::PRESENT) {
        return Err(MapError::NotMapped(va));
    }
    Ok(f(e))
}

/// Remove the mapping of `va`; returns the frame it mapped (the caller decides whether to free it).
///
/// # Safety
///
/// The caller owns the page at `va`: no reference into it is live.
pub unsafe fn unmap(va: u64) -> Result<Pfn, MapError> {
    check(va)?;
    let pfn = locked(|| {
        with_present_leaf(va, |e| {
            let pfn = entry_pfn(e.addr().as_u64());
            e.set_unused();
            pfn
        })
    })?;
    invlpg(va);
    crate::arch::tlb::shootdown(va); // other CPUs drop it too before the caller reuses the frame
    UNMAPS.fetch_add(1, Ordering::Relaxed);
    Ok(pfn)
}

/// Change the flags of a present mapping (PRESENT is kept).
///
/// # Safety
///
/// The caller owns the page at `va`, and no live reference into it relies on the access being removed.
pub unsafe fn set_flags(va: u64, flags: PageTableFlags) -> Result<(), MapError> {
    check(va)?;
    locked(|| with_present_leaf(va, |e| e.set_addr(e.addr(), flags | PageTableFlags::PRESENT)))?;
    invlpg(va);
    crate::arch::tlb::shootdown(va); // a right taken away must be gone on every CPU
    Ok(())
}

/// The frame and flags `va`'s page is mapped to.
pub fn translate(va: u64) -> Result<(Pfn, PageTableFlags), MapError> {
    let page = va & !0xfff;
    if VirtAddr::try_new(page).is_err() {
        return Err(MapError::BadAddress(va));
    }
    locked(|| with_present_leaf(page, |e| (entry_pfn(e.addr().as_u64()), e.flags())))
}

// ---- Leaf entries, for regions (the swap subsystem) -------------------------------------------------

/// A leaf page-table entry (PTE) as the CPU reads it: the frame's address in bits 12–51 and the flag bits
/// around it (the drawing at the top of this file). Present or not: a non-present entry may carry a
/// swap entry (`swap::entry`), which only its bit 0 being clear makes invisible to the CPU.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Pte(u64);

impl Pte {
    /// Bits 12–51: the physical address of the frame.
    pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
    /// The empty entry: nothing mapped, nothing swapped.
    pub const EMPTY: Pte = Pte(0);

    /// An entry from its raw value.
    pub const fn from_raw(raw: u64) -> Pte {
        Pte(raw)
    }

    /// A present entry mapping `pfn` with `flags` (`PRESENT` is added).
    pub fn mapping(pfn: Pfn, flags: PageTableFlags) -> Pte {
        // Flag bits never reach the address field, whatever `flags` holds.
        Pte(pfn.addr() & Self::ADDR_MASK | ((flags | PageTableFlags::PRESENT).bits() & !Self::ADDR_MASK))
    }

    /// The raw value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// Bit 0: the CPU may use the entry.
    pub const fn is_present(self) -> bool {
        self.0 & 1 != 0
    }

    /// The frame a present entry maps.
    pub fn pfn(self) -> Option<Pfn> {
        self.is_present().then(|| Pfn::from_addr(self.0 & Self::ADDR_MASK))
    }

    /// The flag bits (everything outside the address).
    pub fn flags(self) -> PageTableFlags {
        PageTableFlags::from_bits_retain(self.0 & !Self::ADDR_MASK)
    }

    /// Bit 6, D: the CPU wrote through this entry since the bit was last clear.
    pub fn is_dirty(self) -> bool {
        self.is_present() && self.flags().contains(PageTableFlags::DIRTY)
    }
}

impl core::fmt::Debug for Pte {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Pte({:#x})", self.0)
    }
}
//
// A swapped-out page's PTE is not present but not empty: it holds a swap entry (`swap::entry`). These
// calls read and write a leaf entry as a raw `u64`, whatever it holds, so `kernel/src/swap` can put a
// swap entry where a mapping was and find it again in the page-fault handler.

/// The PT entry of `va`'s page; [`Pte::EMPTY`] when no page table covers `va` yet (nothing was ever
/// mapped).
pub fn read_leaf(va: u64) -> Result<Pte, MapError> {
    let page = va & !0xfff;
    check(page)?;
    locked(|| match walk(page, None) {
        Ok(pt) => Ok(Pte(raw(&map_table(pt)?.table()[index(page, 1)]))),
        Err(MapError::NotMapped(_)) => Ok(Pte::EMPTY),
        Err(e) => Err(e),
    })
}

/// An entry as the CPU sees it: address bits and flag bits together.
fn raw(e: &PageTableEntry) -> u64 {
    e.addr().as_u64() | e.flags().bits()
}

/// The entry as the word the page walkers of every CPU also write: a CPU sets the accessed and dirty
/// bits of a cached mapping on its own, with a locked read-modify-write, at any moment. A change that
/// must not lose such a bit (unmapping: the dirty bit says whether the page must be written out;
/// clearing the accessed bit) is therefore one atomic exchange or `fetch_and`, never a read and a
/// write: another CPU's write landing between the two would set D in an entry about to be replaced,
/// and reclaim would drop the page as clean. tests/smp_stress.rs writes while reclaim runs to show it.
fn atomic(e: &mut PageTableEntry) -> &AtomicU64 {
    let p = e as *mut PageTableEntry as *mut u64;
    // SAFETY: `PageTableEntry` is `repr(transparent)` over a `u64` and entries are 8-byte aligned in
    // their table; the reference is exclusive for the borrow (the table lock is held), and the only other
    // writers are page walkers, whose writes are atomic too.
    unsafe { AtomicU64::from_ptr(p) }
}

/// Replace the PT entry of `va`'s page with `new` (a mapping or a non-present swap entry), creating
/// missing tables from `frames`; returns the old raw entry. Counts a map when `new` is present and an
/// unmap when the old entry was, and flushes the page's TLB entry.
///
/// # Safety
///
/// As for [`map`] when `new` maps a frame (the caller owns it and the page); as for [`unmap`] when the
/// old entry was present (no reference into the page is live, and the caller takes over its frame).
pub unsafe fn write_leaf(va: u64, new: Pte, frames: &mut dyn TableFrames) -> Result<Pte, MapError> {
    check(va)?;
    let old = locked(|| {
        let pt = walk(va, Some(frames))?;
        let mut g = map_table(pt)?;
        let e = &mut g.table()[index(va, 1)];
        // One exchange: the old entry comes back with every A/D bit any CPU set up to this instant.
        Ok::<Pte, MapError>(Pte(atomic(e).swap(new.raw(), Ordering::SeqCst)))
    })?;
    invlpg(va);
    if old.is_present() {
        // Another CPU may cache the old mapping: it must drop it before the frame is reused.
        crate::arch::tlb::shootdown(va);
    }
    if new.is_present() {
        MAPS.fetch_add(1, Ordering::Relaxed);
    }
    if old.is_present() {
        UNMAPS.fetch_add(1, Ordering::Relaxed);
    }
    Ok(old)
}

/// The accessed bit of `va`'s present mapping, cleared on the way (the clock's "second chance" test,
/// Linux's `ptep_test_and_clear_young`). The TLB entry is flushed so the CPU sets the bit again on
/// the next access.
pub fn test_and_clear_accessed(va: u64) -> Result<bool, MapError> {
    check(va)?;
    let was = locked(|| {
        with_present_leaf(va, |e| {
            // Atomically: a dirty bit set by another CPU meanwhile must survive (see `atomic`).
            let a = PageTableFlags::ACCESSED.bits();
            atomic(e).fetch_and(!a, Ordering::SeqCst) & a != 0
        })
    })?;
    if was {
        invlpg(va);
    }
    Ok(was)
}
