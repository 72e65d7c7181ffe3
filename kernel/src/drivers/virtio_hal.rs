//! The memory a device may touch: the `virtio-drivers` crate's [`Hal`] on zkernel's frames and page tables.
//!
//! # Why a HAL at all
//!
//! A virtio device reads and writes guest memory by *physical* address (DMA), while the driver code works
//! with *virtual* addresses. The `virtio-drivers` crate leaves the translation between the two to the
//! kernel, through four questions ([`Hal`]): give me zeroed, physically contiguous memory for rings and
//! buffers (`dma_alloc`); take it back (`dma_dealloc`); where can I reach this device register block
//! (`mmio_phys_to_virt`); what physical address should the device use for this buffer (`share`). Linux
//! answers the same questions with `dma_alloc_coherent`, `pci_iomap` and `dma_map_single`.
//!
//! zkernel has no direct map of RAM (design.md), so every answer involves a page-table entry: DMA frames
//! and register blocks live in a region of their own, [`IO_BASE`] (PML4 slot 500).
//!
//! # Layout of the I/O region
//!
//! | range | what | how a virtual address is found |
//! |---|---|---|
//! | `IO_BASE + 0 .. + 256 GiB` | DMA window: frames lent to devices, write-back cached | `IO_BASE + physical address` |
//! | `IO_BASE + 256 GiB .. + 512 GiB` | BAR windows: device registers, uncached (PCD + PWT) | handed out in order, recorded |
//!
//! The DMA window is a direct map *only of frames lent to devices*: a DMA frame at physical `0x3f2000`
//! is mapped at `IO_BASE + 0x3f2000` while it is allocated and unmapped when it is freed, so turning
//! either address into the other is one subtraction and a contiguous block stays contiguous. x86 DMA is
//! cache-coherent, so DMA memory is mapped write-back like any RAM; device registers must not be
//! cached (a read has side effects, a write must reach the device), so BAR windows are mapped with
//! caching disabled.
//!
//! # Bounce buffers and `share`
//!
//! `share(buffer)` must answer with a physical address at which the device finds the buffer's bytes
//! *contiguously*. A buffer in the DMA window qualifies by construction (its frames came from one buddy
//! block). An arbitrary kernel buffer may not: a heap or stack buffer that crosses a page boundary can
//! sit on two unrelated frames, and a buffer in a kmap slot would be remapped under the device's feet.
//! So the block driver ([`super::virtio_blk`]) never hands the device its caller's memory: each disk
//! owns a *bounce page* in the DMA window and copies a page in before a write and out after a read.
//! The only other buffers the crate shares are its own request header and status byte on the stack
//! when it asks for the disk's serial number at probe time; `share` translates those through the page
//! tables ([`paging::translate`]), and if such a buffer crosses onto a frame that does not follow the
//! previous one, copies it into a fresh DMA frame for the request (a one-slot `swiotlb`), counted in
//! [`HalStats::bounced`].
//!
//! # Contracts
//!
//! * DMA frames are the frame allocator's blocks of owner [`Owner::DMA`], `2^order` frames for a
//!   request of `pages` pages; [`HalStats::dma_frames`] counts the frames lent right now.
//! * A BAR is mapped once, whole, when the driver registers it ([`map_bar`]); `mmio_phys_to_virt` only
//!   looks windows up (and maps a missing range as a window of its own).
//! * Everything runs with interrupts masked on the boot CPU today; the state is behind spin locks so
//!   more CPUs can come later.

use alloc::vec::Vec;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use frame::{Owner, Pfn};
use memmap::layout::IO_BASE;
use spin::Mutex;
use virtio_drivers::PhysAddr;
use x86_64::structures::paging::PageTableFlags;

use crate::mm::frames::{self, BuddyTables};
use crate::mm::paging::{self, MapError};

/// The crate's side of the contract, for tests that call the HAL directly.
pub use virtio_drivers::{BufferDirection, Hal};

const PAGE: u64 = 4096;
/// Size of each half of the I/O region.
const HALF: u64 = 256 << 30;
/// The DMA window: frame at physical `p` ↔ `DMA_BASE + p`.
const DMA_BASE: u64 = IO_BASE;
/// The BAR windows.
const MMIO_BASE: u64 = IO_BASE + HALF;
/// Largest BAR this driver maps (virtio-pci's register BAR is 16 KiB under QEMU).
pub const MAX_BAR_BYTES: u64 = 16 << 20;

static DMA_FRAMES: AtomicU64 = AtomicU64::new(0);
static DMA_ALLOCS: AtomicU64 = AtomicU64::new(0);
static DMA_FREES: AtomicU64 = AtomicU64::new(0);
static BOUNCED: AtomicU64 = AtomicU64::new(0);
static MMIO_PAGES: AtomicU64 = AtomicU64::new(0);

/// Counters of the I/O region, for the tests and the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HalStats {
    /// Frames lent to devices right now (rings, bounce pages).
    pub dma_frames: u64,
    pub dma_allocs: u64,
    pub dma_frees: u64,
    /// Buffers `share` had to copy into a fresh DMA frame (not physically contiguous).
    pub bounced: u64,
    /// Pages of device registers mapped (uncached).
    pub mmio_pages: u64,
}

pub fn stats() -> HalStats {
    HalStats {
        dma_frames: DMA_FRAMES.load(Ordering::Relaxed),
        dma_allocs: DMA_ALLOCS.load(Ordering::Relaxed),
        dma_frees: DMA_FREES.load(Ordering::Relaxed),
        bounced: BOUNCED.load(Ordering::Relaxed),
        mmio_pages: MMIO_PAGES.load(Ordering::Relaxed),
    }
}

/// Why DMA memory or a BAR window could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoMapError {
    OutOfFrames,
    /// The frames lie beyond the 256 GiB the DMA window can map.
    BeyondWindow(u64),
    /// A BAR larger than [`MAX_BAR_BYTES`], or the BAR half of the region is full.
    TooLarge(u64),
    Map(MapError),
}

fn order_of(pages: usize) -> u8 {
    pages.max(1).next_power_of_two().trailing_zeros() as u8
}

/// Lend `pages` zeroed, physically contiguous pages to devices: (physical address, virtual address).
pub fn dma_alloc_pages(pages: usize) -> Result<(u64, NonNull<u8>), IoMapError> {
    let order = order_of(pages);
    let pfn = frames::alloc(order, Owner::DMA).map_err(|_| IoMapError::OutOfFrames)?;
    let pa = pfn.addr();
    let free = |pfn: Pfn| {
        // SAFETY: the block was allocated above and its mappings (if any) were removed before this runs.
        let _ = unsafe { frames::free(pfn, order) };
    };
    if pa + (pages as u64) * PAGE > HALF {
        free(pfn);
        return Err(IoMapError::BeyondWindow(pa));
    }
    let flags = PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE;
    for i in 0..pages as u64 {
        // SAFETY: the frames were just allocated for this caller and the DMA window's page for them is
        // theirs alone (the window maps frame `p` only at `DMA_BASE + p`, and only while it is lent).
        let mapped = unsafe { paging::map(DMA_BASE + pa + i * PAGE, Pfn(pfn.0 + i), flags, &mut BuddyTables) };
        if let Err(e) = mapped {
            for j in 0..i {
                // SAFETY: page `j` was mapped just above and nothing references it yet.
                let _ = unsafe { paging::unmap(DMA_BASE + pa + j * PAGE) };
            }
            free(pfn);
            return Err(IoMapError::Map(e));
        }
    }
    let va = (DMA_BASE + pa) as *mut u8;
    // SAFETY: `pages` pages at `va` were mapped writable above and belong to this allocation alone.
    unsafe { core::ptr::write_bytes(va, 0, pages * PAGE as usize) };
    DMA_FRAMES.fetch_add(1 << order, Ordering::Relaxed);
    DMA_ALLOCS.fetch_add(1, Ordering::Relaxed);
    Ok((pa, NonNull::new(va).expect("the DMA window is not at address 0")))
}

/// Take back pages lent with [`dma_alloc_pages`]. `false` when `pa`/`va`/`pages` do not describe one.
///
/// # Safety
///
/// The pages came from [`dma_alloc_pages`] with this `pages`, and neither the device nor any reference
/// uses them any more.
pub unsafe fn dma_free_pages(pa: u64, va: NonNull<u8>, pages: usize) -> bool {
    if va.as_ptr() as u64 != DMA_BASE + pa || !pa.is_multiple_of(PAGE) {
        return false;
    }
    for i in 0..pages as u64 {
        // SAFETY: the caller's promise: nothing uses these pages any more.
        match unsafe { paging::unmap(DMA_BASE + pa + i * PAGE) } {
            Ok(pfn) if pfn.addr() == pa + i * PAGE => {}
            _ => return false,
        }
    }
    let order = order_of(pages);
    // SAFETY: the block was allocated at this order by `dma_alloc_pages` and is unmapped now.
    if unsafe { frames::free(Pfn::from_addr(pa), order) }.is_err() {
        return false;
    }
    DMA_FRAMES.fetch_sub(1 << order, Ordering::Relaxed);
    DMA_FREES.fetch_add(1, Ordering::Relaxed);
    true
}

/// One mapped BAR (or register range): `[phys, phys + len)` at `va`.
#[derive(Debug, Clone, Copy)]
struct Window {
    phys: u64,
    len: u64,
    va: u64,
}

struct Windows {
    list: Vec<Window>,
    next_va: u64,
}

static WINDOWS: Mutex<Windows> = Mutex::new(Windows { list: Vec::new(), next_va: MMIO_BASE });

fn find_window(list: &[Window], phys: u64, len: u64) -> Option<u64> {
    list.iter().find(|w| phys >= w.phys && phys + len <= w.phys + w.len).map(|w| w.va + (phys - w.phys))
}

/// Map `[phys, phys + len)` of device registers uncached (once: a range inside a window already mapped
/// is found, not mapped again). Returns the virtual address of `phys`.
///
/// # Safety
///
/// The range is device memory (a BAR the firmware assigned), not RAM, and stays assigned to the device
/// while the mapping is used.
pub unsafe fn map_bar(phys: u64, len: u64) -> Result<u64, IoMapError> {
    if len == 0 || len > MAX_BAR_BYTES {
        return Err(IoMapError::TooLarge(len));
    }
    let mut w = WINDOWS.lock();
    if let Some(va) = find_window(&w.list, phys, len) {
        return Ok(va);
    }
    let start = phys & !(PAGE - 1);
    let end = (phys + len).next_multiple_of(PAGE);
    let base = w.next_va;
    if base + (end - start) > IO_BASE + 2 * HALF {
        return Err(IoMapError::TooLarge(len));
    }
    let flags = PageTableFlags::WRITABLE
        | PageTableFlags::NO_CACHE
        | PageTableFlags::WRITE_THROUGH
        | PageTableFlags::NO_EXECUTE;
    for (i, page) in (start..end).step_by(PAGE as usize).enumerate() {
        // SAFETY: the caller promises the range is device memory; the virtual pages are fresh ones of the
        // BAR half of the I/O region (handed out in order, never reused), so nothing else maps them.
        unsafe { paging::map(base + i as u64 * PAGE, Pfn::from_addr(page), flags, &mut BuddyTables) }
            .map_err(IoMapError::Map)?;
        MMIO_PAGES.fetch_add(1, Ordering::Relaxed);
    }
    // A guard page between windows: an overrun faults instead of reaching the next device.
    w.next_va = base + (end - start) + PAGE;
    w.list.push(Window { phys: start, len: end - start, va: base });
    Ok(base + (phys - start))
}

/// The physical address of `len` bytes at `va`, if they lie on physically contiguous frames.
fn contiguous_phys(va: u64, len: usize) -> Option<u64> {
    if (DMA_BASE..DMA_BASE + HALF).contains(&va) {
        return Some(va - DMA_BASE);
    }
    let first = va & !(PAGE - 1);
    let last = (va + len as u64 - 1) & !(PAGE - 1);
    let (base, _) = paging::translate(first).ok()?;
    let mut page = first + PAGE;
    while page <= last {
        let (pfn, _) = paging::translate(page).ok()?;
        if pfn.addr() != base.addr() + (page - first) {
            return None;
        }
        page += PAGE;
    }
    Some(base.addr() + (va - first))
}

/// Buffers copied into a fresh DMA block by `share`: (physical address of the copy, pages).
static BOUNCES: Mutex<Vec<(u64, usize)>> = Mutex::new(Vec::new());

/// zkernel's answers to `virtio-drivers` (see the module header).
#[derive(Debug)]
pub struct ZkHal;

// SAFETY: `dma_alloc` returns zeroed, page-aligned memory mapped for this allocation alone (the DMA
// window maps each lent frame once) until `dma_dealloc`; `mmio_phys_to_virt` returns an uncached
// mapping of the device range that no Rust reference covers; `share` returns a physical address where
// the device finds the buffer's bytes contiguously (directly, or a bounce copy `unshare` copies back).
unsafe impl Hal for ZkHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        match dma_alloc_pages(pages) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("virtio: no DMA memory for {pages} page(s): {e:?}");
                (0, NonNull::dangling()) // the crate turns physical address 0 into `Error::DmaError`
            }
        }
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        // SAFETY: the crate's contract: these are the values `dma_alloc` returned and nothing uses them.
        if unsafe { dma_free_pages(paddr, vaddr, pages) } { 0 } else { -1 }
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        let found = find_window(&WINDOWS.lock().list, paddr, size as u64);
        // SAFETY: the crate's contract: `paddr..paddr + size` lies in a BAR the device was assigned.
        let va = found.map_or_else(|| unsafe { map_bar(paddr, size as u64) }, Ok);
        let va = va.unwrap_or_else(|e| panic!("virtio_hal: cannot map device registers at {paddr:#x}: {e:?}"));
        NonNull::new(va as *mut u8).expect("BAR windows are not at address 0")
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let va = buffer.as_ptr() as *mut u8 as u64;
        let len = buffer.len();
        if let Some(pa) = contiguous_phys(va, len) {
            return pa;
        }
        // Not contiguous (or not translatable): copy into a fresh DMA block for this request.
        let pages = len.div_ceil(PAGE as usize);
        let (pa, copy) = dma_alloc_pages(pages)
            .unwrap_or_else(|e| panic!("virtio_hal: share: no DMA memory for a {len}-byte bounce: {e:?}"));
        if direction != BufferDirection::DeviceToDriver {
            // SAFETY: the caller's contract: `buffer` is valid for `len` bytes; `copy` is a fresh DMA block
            // of at least `len` bytes; they do not overlap.
            unsafe { core::ptr::copy_nonoverlapping(va as *const u8, copy.as_ptr(), len) };
        }
        BOUNCES.lock().push((pa, pages));
        BOUNCED.fetch_add(1, Ordering::Relaxed);
        pa
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        let bounce = {
            let mut list = BOUNCES.lock();
            list.iter().position(|b| b.0 == paddr).map(|i| list.swap_remove(i))
        };
        let Some((pa, pages)) = bounce else { return };
        let copy = (DMA_BASE + pa) as *mut u8;
        if direction != BufferDirection::DriverToDevice {
            // SAFETY: as in `share`; the device is done with the request, so the copy is stable.
            unsafe { core::ptr::copy_nonoverlapping(copy, buffer.as_ptr() as *mut u8, buffer.len()) };
        }
        // SAFETY: the bounce block was allocated by `share` for this request, which the device has finished.
        let freed = unsafe { dma_free_pages(pa, NonNull::new(copy).expect("not null"), pages) };
        // Checked in release builds too: a bounce block the frame allocator refuses is a bookkeeping bug.
        assert!(freed, "virtio_hal: a bounce block could not be freed");
    }
}
