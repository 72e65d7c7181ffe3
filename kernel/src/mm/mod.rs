//! Memory management: frames, page tables, temporary mappings, the heap and kernel stacks.
//!
//! # The journey of a frame (docs/memory.md tells it at length)
//!
//! 1. The bootloader's memory map lists usable RAM (`memmap`).
//! 2. [`init`] takes a few frames with the early allocator ([`early`]) to build the kmap window and to
//!    map the `FrameInfo` table, then hands every other usable frame to the buddy allocator ([`frames`]).
//! 3. Anyone needing memory asks [`frames`] for a block; to touch its bytes they map it into a kmap
//!    slot ([`kmap`]) or into a region of their own with [`paging`].
//!
//! # Bootstrapping without a direct map
//!
//! To edit page tables you must reach page-table frames, and to reach a frame you need a mapping — a
//! page-table edit. zkernel breaks the circle once, at boot, with the bootloader's *recursive* PML4
//! entry (an entry that points at the PML4 itself, so every table appears at a computable address):
//!
//! | step | through | what |
//! |---|---|---|
//! | 1 | recursive entry | link a PDPT, PD and PT for the kmap window into the PML4 (early frames, zeroed) |
//! | 2 | recursive entry | point the window PT's last entry at the PT itself (the window's self-map) |
//! | 3 | kmap | remove the recursive entry; from now on every table is reached through kmap |
//! | 4 | kmap + paging | map the `FrameInfo` table (early frames), build the buddy allocator |
//! | 5 | buddy + paging | switch the heap to its main arena (mapped on the first allocation), kernel stacks with guard pages |

pub mod early;
pub mod fault;
pub mod frames;
pub mod heap;
pub mod kmap;
pub mod paging;
pub mod region;
pub mod stack;
pub mod trace;

use core::mem::size_of;

use frame::{FrameAllocator, FrameError, FrameInfo, Owner, Pfn};
use memmap::layout::{FRAME_TABLE_BASE, KMAP_BASE, pml4_index};
use memmap::{Kind, Region};
use pagemem::{FrameSource, MemError, PageMemory};
use spin::Once;
use x86_64::VirtAddr;
use x86_64::structures::paging::PageTableFlags;

use early::EarlyFrames;
use kmap::{KmapError, SELF_SLOT, kmap_local, kmap_pair};

/// What boot did with memory, for the report and the tests.
#[derive(Debug, Clone, Copy)]
pub struct MmFacts {
    /// Frames the frame table covers, `[start, end)`.
    pub span: (Pfn, Pfn),
    /// Frames the early allocator handed out (window tables, frame-table pages and their tables).
    pub early_frames: u64,
    /// Bytes of the `FrameInfo` table.
    pub frame_table_bytes: u64,
    /// Frames the buddy allocator manages.
    pub managed: u64,
    /// Free frames right after boot (before the heap and stacks took theirs).
    pub free_at_init: u64,
}

static FACTS: Once<MmFacts> = Once::new();

/// Memory facts; `None` before [`init`].
pub fn facts() -> Option<&'static MmFacts> {
    FACTS.get()
}

fn sign_extend(addr: u64) -> u64 {
    ((addr << 16) as i64 >> 16) as u64
}

/// The address of a table through the recursive PML4 entry `r`: `rec(r, a, b, c)` with the path's
/// indices shifted in from the right.
fn rec(r: u64, a: u64, b: u64, c: u64) -> u64 {
    sign_extend((r << 39) | (a << 30) | (b << 21) | (c << 12))
}

/// Write entry `index` of the table at virtual address `table` (reached through the recursive entry).
///
/// # Safety
///
/// `table` must be the recursive view of a live page table, and the new entry must not unmap anything
/// in use.
unsafe fn write_entry(table: u64, index: u64, value: u64) {
    // SAFETY: the caller guarantees `table` maps a page table; entries are 8-byte aligned words.
    unsafe { ((table + 8 * index) as *mut u64).write_volatile(value) };
}

/// Zero the page at `va`.
///
/// # Safety
///
/// `va` must map a frame nothing else uses.
unsafe fn zero_page(va: u64) {
    // SAFETY: per the caller, the page is mapped and ours.
    unsafe { core::ptr::write_bytes(va as *mut u8, 0, 4096) };
}

/// Steps 1–3 of the module table: build the kmap window, then drop the recursive entry.
fn build_kmap_window(r: u64, early: &mut EarlyFrames) -> Result<(), FrameError> {
    let k = pml4_index(KMAP_BASE) as u64;
    let pml4 = rec(r, r, r, r);
    let table_flags = (PageTableFlags::PRESENT | PageTableFlags::WRITABLE).bits();
    // SAFETY: the bootloader set up `r` as a recursive entry, so `pml4` is the PML4 and the other
    // addresses are the tables below entry `k`, which is unused (checked) and so touches nothing mapped.
    unsafe {
        assert_eq!(((pml4 + 8 * k) as *const u64).read_volatile(), 0, "PML4 slot {k} of the kmap window is taken");
        let (pdpt, pd, pt) = (early.alloc()?, early.alloc()?, early.alloc()?);
        write_entry(pml4, k, pdpt.addr() | table_flags);
        x86_64::instructions::tlb::flush(VirtAddr::new(rec(r, r, r, k)));
        zero_page(rec(r, r, r, k));
        write_entry(rec(r, r, r, k), 0, pd.addr() | table_flags);
        x86_64::instructions::tlb::flush(VirtAddr::new(rec(r, r, k, 0)));
        zero_page(rec(r, r, k, 0));
        write_entry(rec(r, r, k, 0), 0, pt.addr() | table_flags);
        x86_64::instructions::tlb::flush(VirtAddr::new(rec(r, k, 0, 0)));
        zero_page(rec(r, k, 0, 0));
        let self_flags = table_flags | PageTableFlags::NO_EXECUTE.bits();
        write_entry(rec(r, k, 0, 0), SELF_SLOT as u64, pt.addr() | self_flags);
    }
    // The window's tables were linked before they were zeroed: drop any translation the CPU may have
    // cached from their old contents before the first slot is used.
    x86_64::instructions::tlb::flush_all();
    kmap::set_ready();
    // Step 3: from here on tables are reached through kmap only.
    // SAFETY: nothing else runs yet; the PML4 frame is only touched here.
    let mut top = unsafe { kmap_local(paging::pml4()) }.map_err(|_| FrameError::OutOfMemory { order: 0 })?;
    top.table()[r as usize].set_unused();
    drop(top);
    x86_64::instructions::tlb::flush_all();
    Ok(())
}

/// Step 4: map the frame table with early frames and build the buddy allocator.
fn build_frame_allocator(
    regions: &[Region],
    early: &mut EarlyFrames,
) -> Result<(FrameAllocator<'static>, u64), paging::MapError> {
    let usable = || regions.iter().filter(|r| r.kind == Kind::Usable).filter_map(|r| r.frames());
    let start = Pfn::from_addr(usable().map(|f| f.start).min().unwrap_or(0));
    let end = Pfn::from_addr(usable().map(|f| f.end).max().unwrap_or(0));
    let len = FrameAllocator::table_len(start, end);
    let bytes = (len * size_of::<FrameInfo>()) as u64;
    for page in 0..bytes.div_ceil(4096) {
        let pfn = early.alloc().map_err(paging::MapError::OutOfFrames)?;
        let flags = PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE;
        // SAFETY: the early frame is fresh and the frame-table region belongs to this function.
        unsafe { paging::map_unchecked(FRAME_TABLE_BASE + page * 4096, pfn, flags, early)? };
    }
    let base = FRAME_TABLE_BASE as *mut FrameInfo;
    for i in 0..len {
        // SAFETY: the table's pages were just mapped writable and belong to it alone; writing whole
        // values initialises every entry before a reference to one is formed.
        unsafe { base.add(i).write(FrameInfo::reserved()) };
    }
    // SAFETY: `len` entries at `base` are mapped, initialised, and never mapped or referenced elsewhere.
    let table: &'static mut [FrameInfo] = unsafe { core::slice::from_raw_parts_mut(base, len) };
    let mut buddy = FrameAllocator::new(table, start);
    let (held_start, held_end) = early.used();
    for f in usable() {
        let (s, e) = (Pfn::from_addr(f.start), Pfn::from_addr(f.end));
        // Every usable frame except those the early allocator handed out.
        for (a, b) in [(s, e.min(held_start)), (s.max(held_end), e)] {
            if a < b
                && let Err(err) = buddy.add_free_range(a, b)
            {
                log::warn!("memory map region {:#x}..{:#x} not added: {err:?}", a.addr(), b.addr());
            }
        }
    }
    Ok((buddy, bytes))
}

/// Bring up memory management (the module table's steps). `recursive` is the bootloader's recursive
/// PML4 index; `phys_offset` its direct map (only in the `direct-map` build).
pub fn init(regions: &[Region], recursive: u16, phys_offset: Option<u64>) {
    #[cfg(feature = "direct-map")]
    kmap::set_phys_offset(phys_offset.expect("the direct-map build needs the bootloader's physical-memory mapping"));
    #[cfg(not(feature = "direct-map"))]
    let _ = phys_offset;
    let mut early = EarlyFrames::new(regions).expect("no usable memory in the memory map");
    build_kmap_window(u64::from(recursive), &mut early).expect("mm: no frames for the kmap window");
    let (buddy, table_bytes) = build_frame_allocator(regions, &mut early).expect("mm: cannot map the frame table");
    let stats = buddy.stats();
    let span = buddy.span();
    let (a, b) = early.used();
    frames::install(buddy);
    FACTS.call_once(|| MmFacts {
        span,
        early_frames: b.0 - a.0,
        frame_table_bytes: table_bytes,
        managed: stats.managed,
        free_at_init: stats.free,
    });
    heap::init_main();
}

/// [`PageMemory`] and [`FrameSource`] for the algorithm crates, on kmap and the frame allocator.
///
/// Each value serves one frame owner (a pool's: [`Owner::ZSMALLOC`], [`Owner::ZBUD`], … or the generic
/// [`Owner::POOL`]; or [`Owner::PAGE_CACHE`] for the page cache) and reaches only frames allocated for
/// that owner: every map checks the frame table
/// first, so a pool handing it a wrong frame number gets [`MemError::Foreign`], never another
/// subsystem's memory. Those owners' frames are reached by nothing but these values, and each pool
/// maps one object at a time under its own lock, which is what makes the methods safe (asterinas's
/// "the frame allocator is a safe plug-in": misuse corrupts only the pool's own frames).
#[derive(Debug)]
pub struct KernelMemory {
    owner: Owner,
}

impl KernelMemory {
    /// Memory for frames of `owner`. Only the owners whose frames nothing else maps may be served: the
    /// pools' ([`Owner::is_pool`]) and the page cache's.
    pub fn new(owner: Owner) -> Self {
        assert!(
            owner.is_pool() || owner == Owner::PAGE_CACHE,
            "KernelMemory::new: owner {} is not one KernelMemory may serve",
            owner.name()
        );
        KernelMemory { owner }
    }

    fn check(&self, pfn: Pfn) -> Result<(), MemError> {
        match frames::info(pfn) {
            Some(i) if i.owner() == self.owner => Ok(()),
            _ => Err(MemError::Foreign(pfn)),
        }
    }
}

fn mem_err(e: KmapError) -> MemError {
    match e {
        KmapError::SameFrame(p) => MemError::SameFrame(p),
        KmapError::AlreadyMapped(_) | KmapError::NoFreeSlot | KmapError::NotReady => MemError::NoSlot,
    }
}

impl PageMemory for KernelMemory {
    fn with_page<R>(&mut self, pfn: Pfn, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, MemError> {
        self.check(pfn)?;
        // SAFETY: the frame is allocated to this value's owner, whose frames only `KernelMemory` values
        // reach, one mapping at a time under the user's lock (type doc); kmap refuses an alias on this CPU.
        let mut m = unsafe { kmap_local(pfn) }.map_err(mem_err)?;
        Ok(crate::arch::lock::no_lock_section(|| f(m.bytes())))
    }

    fn with_pages2<R>(&mut self, a: Pfn, b: Pfn, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, MemError> {
        self.check(a)?;
        self.check(b)?;
        // SAFETY: as in `with_page`, for both frames; kmap_pair refuses the same frame twice.
        let mut m = unsafe { kmap_pair(a, b) }.map_err(mem_err)?;
        Ok(crate::arch::lock::no_lock_section(|| f(m.bytes())))
    }
}

impl FrameSource for KernelMemory {
    /// A pool crate asks for [`Owner::POOL`]; a value serving a named pool records the frame under that
    /// pool's owner, so the frame table (and the memory picture) tells zsmalloc's frames from zbud's.
    fn alloc_frame(&mut self, owner: Owner) -> Result<Pfn, FrameError> {
        if owner != self.owner && !(owner == Owner::POOL && self.owner.is_pool()) {
            return Err(FrameError::Foreign(Pfn(0)));
        }
        frames::alloc_page(self.owner)
    }

    fn free_frame(&mut self, pfn: Pfn) -> Result<(), FrameError> {
        self.check(pfn).map_err(|_| FrameError::Foreign(pfn))?;
        // SAFETY: the frame is this owner's (checked), reached only through `KernelMemory` values, and a
        // pool frees a frame only once it has stopped using it (the `FrameSource` contract).
        unsafe { frames::free_page(pfn) }
    }
}
